//! `csi-migrate scan`: loads a dump or a live cluster, runs the scan, prints the report, sets the exit code.

use std::io::{self, IsTerminal, Write};

use anyhow::anyhow;
use csi_migrate_scan::load::{files, live};
use csi_migrate_scan::render;
use csi_migrate_scan::{ClusterSnapshot, ScanOptions, ServerVersion, Severity, VersionSource};

use crate::args::{FailOn, ScanArgs, ScanOutput};
use crate::{Failure, runtime};

/// Runs the command.
pub fn run(args: &ScanArgs) -> Result<(), Failure> {
    let namespace = if args.all_namespaces {
        None
    } else {
        args.namespace.clone()
    };
    let mut snapshot = if args.from.is_empty() {
        load_live(args, namespace.as_deref())?
    } else {
        files::load_paths(&args.from).map_err(Failure::bad_input)?
    };
    if let Some(text) = &args.server_version {
        let version = ServerVersion::parse(text, VersionSource::User).ok_or_else(|| {
            Failure::bad_input(anyhow!(
                "--server-version {text:?} is not a version like 1.31"
            ))
        })?;
        snapshot.server_version = Some(version);
    }
    if let Some(vcenter) = crate::plan_cmd::vcenter_config(&args.vcenter)? {
        snapshot.vcenter = Some(runtime()?.block_on(vcenter_facts(&vcenter, &snapshot))?);
    }

    let report = csi_migrate_scan::scan(&snapshot, &ScanOptions { namespace });
    let mut out = io::stdout().lock();
    match args.output {
        ScanOutput::Table => {
            out.write_all(render::table::render(&report, io::stdout().is_terminal()).as_bytes())?
        }
        // Streamed: the JSON of a large cluster is hundreds of megabytes; written in
        // 1 MiB blocks (the default 8 KiB makes over ten thousand writes of it).
        ScanOutput::Json => {
            let mut buffered = io::BufWriter::with_capacity(1 << 20, &mut out);
            render::json::write(&report, &mut buffered)?;
            buffered.flush()?;
        }
        ScanOutput::Markdown => out.write_all(render::markdown::render(&report).as_bytes())?,
    }
    out.flush()?;

    let threshold = match args.fail_on {
        FailOn::Blocker => Some(Severity::Blocker),
        FailOn::Warning => Some(Severity::Warning),
        FailOn::Never => None,
    };
    let failing = threshold.map(|t| (t, report.count_at_least(t)));
    // Freeing a large cluster's snapshot and report object by object takes a good part
    // of a second; the process is about to exit, and the OS takes the pages back at once.
    std::mem::forget(report);
    std::mem::forget(snapshot);
    if let Some((threshold, failing)) = failing
        && failing > 0
    {
        return Err(Failure::failed(anyhow!(
            "scan found {failing} finding(s) of severity {threshold} or worse (--fail-on {threshold})"
        )));
    }
    Ok(())
}

fn load_live(args: &ScanArgs, namespace: Option<&str>) -> Result<ClusterSnapshot, Failure> {
    let options = live::LiveOptions {
        kubeconfig: args.kubeconfig.clone(),
        context: args.context.clone(),
        namespace: namespace.map(str::to_owned),
    };
    runtime()?.block_on(async {
        let client = live::client(&options).await.map_err(Failure::bad_input)?;
        live::load_cluster(client, namespace)
            .await
            .map_err(Failure::failed)
    })
}

/// Asks vCenter about every in-tree vSphere PV's datastore and VMDK, the in-tree classes'
/// storage policies and its version; the scan's vSphere rules judge the answers.
async fn vcenter_facts(
    vcenter: &csi_migrate_migrate::VcenterConfig,
    snapshot: &ClusterSnapshot,
) -> Result<csi_migrate_scan::snapshot::VcenterFacts, Failure> {
    use csi_migrate_scan::snapshot::{VcenterDisk, VcenterFacts};
    use csi_migrate_vsphere::{
        VcenterClient, VolumePath, storage_policy_parameter, supports_registration,
    };

    if vcenter.datacenters.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "no vCenter datacenter to search: pass --vcenter-datacenters or set `datacenters` in --vsphere-config"
        )));
    }
    let paths: Vec<VolumePath> = snapshot
        .persistent_volumes
        .iter()
        .filter_map(|pv| pv.spec.as_ref()?.vsphere_volume.as_ref())
        .filter_map(|v| VolumePath::parse(&v.volume_path).ok())
        .collect();
    let with_policies = snapshot.storage_classes.iter().any(|sc| {
        sc.provisioner == "kubernetes.io/vsphere-volume"
            && sc
                .parameters
                .as_ref()
                .and_then(storage_policy_parameter)
                .is_some()
    });
    let failed = |e: csi_migrate_vsphere::VsphereError| {
        Failure::failed(anyhow!("cannot check the vSphere volumes in vCenter: {e}"))
    };
    let mut client =
        VcenterClient::new(&vcenter.url, vcenter.client_options.clone()).map_err(failed)?;
    client.login(&vcenter.credentials).await.map_err(failed)?;
    let gathered = client
        .gather_facts(&paths, &vcenter.datacenters, with_policies)
        .await;
    let _ = client.logout().await;
    let facts = gathered.map_err(failed)?;
    let host = vcenter
        .url
        .split_once("://")
        .map_or(vcenter.url.as_str(), |(_, rest)| rest)
        .split('/')
        .next()
        .unwrap_or_default()
        .to_owned();
    Ok(VcenterFacts {
        host,
        registration_supported: supports_registration(&facts.about),
        api_version: facts.about.api_version,
        build: facts.about.build,
        datacenters: facts.datacenters,
        disks: facts
            .disks
            .into_iter()
            .map(|(path, disk)| {
                (
                    path,
                    VcenterDisk {
                        datacenter: disk.datacenter,
                        vmdk_exists: disk.vmdk_exists,
                    },
                )
            })
            .collect(),
        storage_policies: facts.storage_policies,
    })
}
