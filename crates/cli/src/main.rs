//! `csi-migrate`: moves Kubernetes volumes off in-tree storage plugins onto CSI drivers.

mod args;
mod demo_cmd;
mod gdc_compat;
mod manifest_io;
mod migrate_cmd;
mod plan_cmd;
mod progress;
mod scan_cmd;
mod sim_cmd;
mod targets;
mod translate_cmd;
mod webhook_cmd;

use std::io::{self, Write};
use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::args::{Cli, Command};

/// Exit code for a job that failed or found blockers.
pub const EXIT_FAILED: u8 = 1;
/// Exit code for bad usage or bad input.
pub const EXIT_BAD_INPUT: u8 = 2;

/// An error together with the exit code it maps to.
#[derive(Debug)]
pub struct Failure {
    /// The exit code.
    pub code: u8,
    /// What went wrong, with its causes.
    pub error: anyhow::Error,
}

impl Failure {
    /// Bad usage or input: exit code 2.
    pub fn bad_input(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: EXIT_BAD_INPUT,
            error: error.into(),
        }
    }

    /// The job failed: exit code 1.
    pub fn failed(error: impl Into<anyhow::Error>) -> Self {
        Self {
            code: EXIT_FAILED,
            error: error.into(),
        }
    }
}

impl From<io::Error> for Failure {
    fn from(error: io::Error) -> Self {
        Self::failed(error)
    }
}

/// The name we were called by: `kubectl csi-migrate` when run as a kubectl plugin.
fn display_name() -> &'static str {
    let argv0 = std::env::args_os().next().unwrap_or_default();
    let file = std::path::Path::new(&argv0).file_name().unwrap_or_default();
    if file.to_string_lossy().starts_with("kubectl-") {
        "kubectl csi-migrate"
    } else {
        "csi-migrate"
    }
}

/// A Tokio runtime for the commands that serve or talk to a cluster.
pub fn runtime() -> Result<tokio::runtime::Runtime, Failure> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::failed(anyhow::anyhow!("cannot start the async runtime: {e}")))
}

/// Logs to stderr as text, filtered by `RUST_LOG` (default `info`).
pub fn init_logging() {
    init_logging_as(args::LogFormat::Text);
}

/// Logs to stderr, filtered by `RUST_LOG` (default `info`): text (ANSI colours only when
/// stderr is a terminal) or one JSON object per line.
pub fn init_logging_as(format: args::LogFormat) {
    use std::io::IsTerminal;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(io::stderr);
    let _ = match format {
        args::LogFormat::Text => builder.with_ansi(io::stderr().is_terminal()).try_init(),
        args::LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(false)
            .with_span_list(false)
            .try_init(),
    };
}

fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error
        .chain()
        .filter_map(|e| e.downcast_ref::<io::Error>())
        .any(|e| e.kind() == io::ErrorKind::BrokenPipe)
}

fn main() -> ExitCode {
    // Exactly one TLS crypto provider in the process; installed before any TLS use.
    let _ = rustls::crypto::ring::default_provider().install_default();
    let name = display_name();
    let matches = Cli::command().name(name).bin_name(name).get_matches();
    let cli = match Cli::from_arg_matches(&matches) {
        Ok(cli) => cli,
        Err(e) => e.exit(),
    };
    let result = match cli.command {
        Command::Translate(args) => translate_cmd::run(&args),
        Command::Scan(args) => scan_cmd::run(&args),
        Command::Webhook(args) => webhook_cmd::run(args),
        Command::Sim(args) => sim_cmd::run(&args),
        Command::Demo(args) => demo_cmd::run(&args),
        Command::Plan(args) => plan_cmd::run(&args),
        Command::Migrate(args) => migrate_cmd::run(&args),
        Command::Resume(args) => migrate_cmd::resume(&args),
        Command::Rollback(args) => migrate_cmd::rollback(&args),
        Command::Preflight(args) => gdc_compat::preflight(args),
        Command::RollingMigration(args) => gdc_compat::rolling_migration(args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        // A reader that went away (`| head`) is not an error.
        Err(failure) if is_broken_pipe(&failure.error) => ExitCode::SUCCESS,
        Err(failure) => {
            let _ = writeln!(io::stderr().lock(), "error: {:#}", failure.error);
            ExitCode::from(failure.code)
        }
    }
}
