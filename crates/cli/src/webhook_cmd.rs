//! `csi-migrate webhook`: serves the admission webhook until SIGTERM or ctrl-c.

use csi_migrate_webhook::{ServeConfig, serve, shutdown_signal};

use crate::args::WebhookArgs;
use crate::{Failure, init_logging, runtime};

/// Runs the command.
pub fn run(args: WebhookArgs) -> Result<(), Failure> {
    init_logging();
    let mut config = ServeConfig::new(args.tls_cert, args.tls_key, args.listen);
    config.metrics_listen = args.metrics_listen;
    config.policy = args.policy;
    // Every start-up failure (certificate, policy, address) is bad input.
    runtime()?
        .block_on(serve(config, shutdown_signal()))
        .map_err(Failure::bad_input)
}
