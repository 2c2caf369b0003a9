//! `csi-migrate webhook`: serves the admission webhook until SIGTERM or ctrl-c.

use csi_migrate_scan::load::live::{LiveOptions, client};
use csi_migrate_webhook::{ClusterAccess, ServeConfig, serve, shutdown_signal};

use crate::args::{ClassSource, ClusterArgs, WebhookArgs};
use crate::{Failure, init_logging_as, runtime};

/// Whether this process runs in a Kubernetes pod (the kubelet sets this variable).
fn in_a_pod() -> bool {
    std::env::var_os("KUBERNETES_SERVICE_HOST").is_some_and(|v| !v.is_empty())
}

/// Whether to watch the cluster's StorageClasses, per `--storage-classes`.
fn wants_cluster(source: ClassSource, cluster: &ClusterArgs, in_a_pod: bool) -> bool {
    match source {
        ClassSource::Cluster => true,
        ClassSource::Policy => false,
        ClassSource::Auto => cluster.kubeconfig.is_some() || cluster.context.is_some() || in_a_pod,
    }
}

/// Runs the command.
pub fn run(args: WebhookArgs) -> Result<(), Failure> {
    init_logging_as(args.log_format);
    let mut config = ServeConfig::new(args.tls_cert, args.tls_key, args.listen);
    config.metrics_listen = args.metrics_listen;
    config.policy = args.policy;
    config.shutdown_delay = args.shutdown_delay;
    let watch_classes = wants_cluster(args.storage_classes, &args.cluster, in_a_pod());
    let options = LiveOptions {
        kubeconfig: args.cluster.kubeconfig,
        context: args.cluster.context,
        namespace: None,
    };
    runtime()?.block_on(async move {
        if watch_classes {
            // A kubeconfig that cannot be loaded is bad input; the API server being
            // unreachable is not (the cache retries, and /readyz stays 503 meanwhile).
            let client = client(&options).await.map_err(|e| {
                Failure::bad_input(anyhow::anyhow!(
                    "cannot watch StorageClasses (--storage-classes): {e}"
                ))
            })?;
            config.cluster = Some(ClusterAccess(client));
        } else {
            tracing::info!(
                "no cluster access: claims are judged by the policy's inTreeStorageClasses names only"
            );
        }
        // Every start-up failure (certificate, policy, address) is bad input.
        serve(config, shutdown_signal())
            .await
            .map_err(Failure::bad_input)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::PathBuf;

    #[test]
    fn when_the_cluster_is_watched() {
        let none = ClusterArgs {
            kubeconfig: None,
            context: None,
        };
        let file = ClusterArgs {
            kubeconfig: Some(PathBuf::from("/k")),
            context: None,
        };
        let context = ClusterArgs {
            kubeconfig: None,
            context: Some("c".into()),
        };
        let cases = [
            (ClassSource::Auto, &none, false, false),
            (ClassSource::Auto, &none, true, true),
            (ClassSource::Auto, &file, false, true),
            (ClassSource::Auto, &context, false, true),
            (ClassSource::Cluster, &none, false, true),
            (ClassSource::Policy, &file, true, false),
        ];
        for (source, cluster, pod, want) in cases {
            assert_eq!(
                wants_cluster(source, cluster, pod),
                want,
                "{source:?} {cluster:?} pod={pod}"
            );
        }
    }
}
