//! `csi-migrate sim`: serves the simulated cluster and writes its kubeconfig.

use std::io::Write;
use std::sync::Arc;

use anyhow::anyhow;
use std::time::Duration;

use kube_sim::controllers::{self, ControllerSettings};
use kube_sim::kubeconfig::kubeconfig;
use kube_sim::scenario::{self, Scenario};
use kube_sim::{Store, serve};

use crate::args::SimArgs;
use crate::{Failure, init_logging, runtime};

/// Runs the command until SIGTERM or ctrl-c.
pub fn run(args: &SimArgs) -> Result<(), Failure> {
    init_logging();
    runtime()?.block_on(async {
        let store = Arc::new(Store::new(args.watch_history));
        let server = serve(store.clone(), args.listen, args.tls)
            .await
            .map_err(Failure::bad_input)?;
        let settings = ControllerSettings {
            lag: Duration::from_millis(args.controller_lag_ms),
            ..ControllerSettings::default()
        };
        let scenario: Scenario = args.scenario.parse().map_err(Failure::bad_input)?;
        scenario::apply(&store, scenario, Duration::from_secs(30))
            .await
            .map_err(Failure::failed)?;
        let running_controllers = controllers::spawn(store, settings);
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
        server.shutdown();
        Ok(())
    })
}
