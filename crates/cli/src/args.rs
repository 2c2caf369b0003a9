//! The command line: every subcommand and flag, parsed by clap; no behaviour here.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand, ValueEnum};

/// Move Kubernetes volumes off in-tree storage plugins onto CSI drivers, in place:
/// same disks, same claim names, no data copy.
#[derive(Debug, Parser)]
#[command(version, propagate_version = true, max_term_width = 100)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Translate StorageClasses, PersistentVolumes and Pods between in-tree and CSI form.
    ///
    /// Reads YAML or JSON (single objects, multi-document YAML, v1 Lists, `kubectl get -o
    /// json|yaml` output) from files or stdin, translates every StorageClass,
    /// PersistentVolume and Pod inline volume it can, and passes other objects through
    /// unchanged. A Pod with inline in-tree volumes is replaced by the CSI
    /// PersistentVolumes they map to. Exit code 2 if any object cannot be translated.
    ///
    /// With --jsonl, reads one request per line and writes one response per line:
    ///   {"op": "sc_to_csi"|"pv_to_csi"|"pv_to_intree"|"inline_to_csi", "object": {...},
    ///    "podNamespace": "ns"}  →  {"ok": true, "object": {...}} | {"ok": false, "error": "..."}
    #[command(verbatim_doc_comment)]
    Translate(TranslateArgs),

    /// Serve the admission webhook that keeps a cluster from sliding back to in-tree volumes.
    ///
    /// Certificate, key and policy files are re-read when they change. See deploy/webhook/.
    Webhook(WebhookArgs),

    /// Run the simulated cluster (kube-sim) until stopped, for trying csi-migrate safely.
    ///
    /// Writes a kubeconfig that kubectl and csi-migrate accept; point KUBECONFIG at it.
    Sim(SimArgs),
}

#[derive(Debug, clap::Args)]
pub struct WebhookArgs {
    /// PEM certificate (chain) the webhook serves.
    #[arg(long, value_name = "FILE")]
    pub tls_cert: PathBuf,

    /// PEM private key of the certificate.
    #[arg(long, value_name = "FILE")]
    pub tls_key: PathBuf,

    /// Address for AdmissionReviews and health checks.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:8443")]
    pub listen: SocketAddr,

    /// Address for Prometheus metrics (plain HTTP); none when unset.
    #[arg(long, value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,

    /// Policy file (YAML): per-rule deny|warn|allow and namespace exemptions. Default: warn.
    #[arg(long, value_name = "FILE")]
    pub policy: Option<PathBuf>,
}

#[derive(Debug, clap::Args)]
pub struct SimArgs {
    /// Address to serve the API on; port 0 picks a free port.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:6443")]
    pub listen: SocketAddr,

    /// Serve HTTPS with a fresh CA (written into the kubeconfig).
    #[arg(long)]
    pub tls: bool,

    /// Where to write the kubeconfig; stdout when unset.
    #[arg(long, value_name = "FILE")]
    pub kubeconfig_out: Option<PathBuf>,

    /// Starting state. Only `empty` exists until the simulated controllers land.
    #[arg(long, value_name = "NAME", default_value = "empty", value_parser = ["empty"])]
    pub scenario: String,

    /// Watch events kept for resuming watches; older resourceVersions get 410 Expired.
    #[arg(long, value_name = "N", default_value_t = 10_000)]
    pub watch_history: usize,
}

#[derive(Debug, clap::Args)]
pub struct TranslateArgs {
    /// File to read; `-` is stdin (default). Repeatable.
    #[arg(short = 'f', long = "filename", value_name = "FILE")]
    pub files: Vec<PathBuf>,

    /// Direction of the translation.
    #[arg(long, value_enum, default_value_t = Target::Csi)]
    pub to: Target,

    /// Output format.
    #[arg(short = 'o', long, value_enum, default_value_t = OutputFormat::Yaml, conflicts_with = "jsonl")]
    pub output: OutputFormat,

    /// Answer JSON Lines requests (one per input line, streaming) instead of translating manifests.
    #[arg(long, conflicts_with = "to")]
    pub jsonl: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Target {
    /// In-tree objects to CSI objects.
    Csi,
    /// CSI PersistentVolumes back to in-tree ones (rollback).
    Intree,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OutputFormat {
    /// YAML documents separated by `---`.
    Yaml,
    /// One JSON object, or a v1 List when there are several.
    Json,
}
