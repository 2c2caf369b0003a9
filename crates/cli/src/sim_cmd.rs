//! `csi-migrate sim`: serves the simulated cluster and writes its kubeconfig.

use std::io::Write;
use std::sync::Arc;

use anyhow::anyhow;
use std::time::Duration;

use kube_sim::controllers::{self, ControllerSettings};
use kube_sim::faults::{FaultConfig, Faults};
use kube_sim::kubeconfig::kubeconfig;
use kube_sim::scenario::{self, Scenario};
use kube_sim::{Store, serve_with_faults};

use crate::args::SimArgs;
use crate::{Failure, init_logging, runtime};

/// Runs the command until SIGTERM or ctrl-c.
pub fn run(args: &SimArgs) -> Result<(), Failure> {
    init_logging();
    runtime()?.block_on(async {
        let restored = match &args.state_file {
            Some(path) if path.exists() => {
                Some(Store::load(path, args.watch_history).map_err(Failure::bad_input)?)
            }
            _ => None,
        };
        let fresh = restored.is_none();
        let store = Arc::new(restored.unwrap_or_else(|| Store::new(args.watch_history)));
        for backing in &args.vsphere_datastore {
            let Some((name, dir)) = backing.split_once('=') else {
                return Err(Failure::bad_input(anyhow!(
                    "--vsphere-datastore {backing:?}: expected NAME=DIR"
                )));
            };
            store.cloud().back_vsphere_datastore(name, dir.into());
        }
        let faults = Arc::new(Faults::default());
        faults.set(fault_config(args)?);
        let server = serve_with_faults(store.clone(), args.listen, args.tls, faults)
            .await
            .map_err(Failure::bad_input)?;
        let settings = ControllerSettings {
            lag: Duration::from_millis(args.controller_lag_ms),
            ..ControllerSettings::default()
        };
        let scenario: Scenario = args.scenario.parse().map_err(Failure::bad_input)?;
        if fresh {
            scenario::apply(&store, scenario, Duration::from_secs(30))
                .await
                .map_err(Failure::failed)?;
        }
        let running_controllers = controllers::spawn(store.clone(), settings);
        let first_class_disks =
            tokio::spawn(kube_sim::cloud::learn_first_class_disks(store.clone()));
        let saver = args
            .state_file
            .clone()
            .map(|path| tokio::spawn(save_while_changing(store.clone(), path)));
        let config = kubeconfig(&server.url, server.ca_pem.as_deref());
        match &args.kubeconfig_out {
            Some(path) => {
                std::fs::write(path, &config).map_err(|e| {
                    Failure::bad_input(anyhow!("cannot write {}: {e}", path.display()))
                })?;
                tracing::info!(url = %server.url, kubeconfig = %path.display(), "kube-sim serving");
            }
            None => {
                let mut out = std::io::stdout().lock();
                out.write_all(config.as_bytes())?;
                out.flush()?;
            }
        }
        csi_migrate_webhook::shutdown_signal().await;
        running_controllers.abort();
        first_class_disks.abort();
        if let Some(saver) = saver {
            saver.abort();
        }
        if let Some(path) = &args.state_file {
            store
                .save(path)
                .map_err(|e| Failure::failed(anyhow!("cannot save {}: {e}", path.display())))?;
        }
        server.shutdown();
        Ok(())
    })
}

/// The `--faults` JSON (inline or `@file`) with `--seed` applied.
fn fault_config(args: &SimArgs) -> Result<FaultConfig, Failure> {
    let mut config = match args.faults.as_deref() {
        None => FaultConfig::default(),
        Some(text) => {
            let json = match text.strip_prefix('@') {
                Some(path) => std::fs::read_to_string(path).map_err(|e| {
                    Failure::bad_input(anyhow!("cannot read --faults file {path}: {e}"))
                })?,
                None => text.to_owned(),
            };
            serde_json::from_str(&json)
                .map_err(|e| Failure::bad_input(anyhow!("invalid --faults: {e}")))?
        }
    };
    config.seed = args.seed;
    Ok(config)
}

/// Saves the cluster to `path` every second while its resourceVersion moves.
async fn save_while_changing(store: Arc<Store>, path: std::path::PathBuf) {
    let mut saved = None;
    loop {
        let version = store.resource_version();
        if saved != Some(version) {
            match store.save(&path) {
                Ok(()) => saved = Some(version),
                Err(error) => {
                    tracing::warn!(%error, path = %path.display(), "cannot save the cluster state")
                }
            }
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
