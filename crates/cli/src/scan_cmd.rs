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

    let report = csi_migrate_scan::scan(&snapshot, &ScanOptions { namespace });
    let mut out = io::stdout().lock();
    match args.output {
        ScanOutput::Table => {
            out.write_all(render::table::render(&report, io::stdout().is_terminal()).as_bytes())?
        }
        // Streamed: the JSON of a large cluster is hundreds of megabytes.
        ScanOutput::Json => {
            let mut buffered = io::BufWriter::new(&mut out);
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
    if let Some(threshold) = threshold {
        let failing = report.count_at_least(threshold);
        if failing > 0 {
            return Err(Failure::failed(anyhow!(
                "scan found {failing} finding(s) of severity {threshold} or worse (--fail-on {threshold})"
            )));
        }
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
