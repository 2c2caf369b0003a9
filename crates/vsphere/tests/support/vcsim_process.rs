//! Builds (`scripts/build-vcsim`) and starts VMware's vCenter simulator for tests; shared by
//! the vsphere, migrate and cli test crates through `#[path]`. A build or start failure
//! panics: the tests never skip silently.

use std::path::{Path, PathBuf};
use std::process::Command;

pub use csi_migrate_vsphere::simulator::Vcsim as VcsimProcess;

/// Builds vcsim (a no-op when up to date) and returns the binary's path.
pub fn build_vcsim() -> PathBuf {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let build = Command::new(workspace.join("scripts/build-vcsim"))
        .current_dir(&workspace)
        .output()
        .expect("cannot run scripts/build-vcsim");
    assert!(
        build.status.success(),
        "scripts/build-vcsim failed (install golang-go and golang-github-vmware-govmomi-dev, see .ci/run):\n{}{}",
        String::from_utf8_lossy(&build.stdout),
        String::from_utf8_lossy(&build.stderr)
    );
    PathBuf::from(
        String::from_utf8_lossy(&build.stdout)
            .lines()
            .last()
            .expect("build-vcsim printed no path")
            .trim(),
    )
}

/// Builds and starts vcsim accepting only `user`/`password`, with `extra` arguments.
pub fn start_vcsim(user: &str, password: &str, extra: &[&str]) -> VcsimProcess {
    let binary = build_vcsim();
    VcsimProcess::start(&binary, user, password, extra)
        .unwrap_or_else(|e| panic!("{e} (see scripts/build-vcsim)"))
}
