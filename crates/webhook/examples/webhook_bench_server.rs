//! Runs the webhook for benchmarks: makes a CA and a leaf for 127.0.0.1 in a directory, then serves until ctrl-c/SIGTERM.
//!
//! ```text
//! webhook_bench_server DIR [LISTEN] [METRICS_LISTEN]
//! ```
//! writes `DIR/ca.crt`, `DIR/tls.crt`, `DIR/tls.key` and `DIR/addr` (the bound address),
//! listens on LISTEN (default 127.0.0.1:0). Logs go to stderr at `RUST_LOG` (default `info`).

use std::path::PathBuf;

use anyhow::Context;
use csi_migrate_webhook::{BoundWebhook, ServeConfig, shutdown_signal};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose};

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .init();
    let mut args = std::env::args().skip(1);
    let dir = PathBuf::from(
        args.next()
            .context("usage: webhook_bench_server DIR [LISTEN] [METRICS_LISTEN]")?,
    );
    let listen = args
        .next()
        .unwrap_or_else(|| "127.0.0.1:0".to_owned())
        .parse()?;
    let metrics_listen = args.next().map(|a| a.parse()).transpose()?;
    std::fs::create_dir_all(&dir)?;

    let ca_key = KeyPair::generate()?;
    let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
    ca_params
        .distinguished_name
        .push(DnType::CommonName, "csi-migrate bench CA");
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key)?;
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate()?;
    let leaf = CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()])?
        .signed_by(&leaf_key, &issuer)?;
    std::fs::write(dir.join("ca.crt"), ca_cert.pem())?;
    std::fs::write(dir.join("tls.crt"), leaf.pem())?;
    std::fs::write(dir.join("tls.key"), leaf_key.serialize_pem())?;

    let mut config = ServeConfig::new(dir.join("tls.crt"), dir.join("tls.key"), listen);
    config.metrics_listen = metrics_listen;
    // A benchmark server stops at once (no load balancer to drain from).
    config.shutdown_delay = std::time::Duration::ZERO;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let bound = BoundWebhook::bind(config)?;
        std::fs::write(dir.join("addr"), bound.local_addr().to_string())?;
        eprintln!("listening on {}", bound.local_addr());
        bound.run(shutdown_signal()).await?;
        anyhow::Ok(())
    })
}
