//! The `-o markdown` output: a report to attach to a change request.

use std::fmt::Write;

use crate::render::{count, grouped};
use crate::report::{Report, Severity};

/// Findings listed per code before "… and N more".
pub const FINDINGS_PER_CODE: usize = 100;

fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

/// Renders the report as Markdown.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    let s = &report.summary;
    out.push_str("# In-tree to CSI migration readiness\n\n");
    let _ = writeln!(out, "- Report schema: `{}`", report.schema_version);
    let _ = writeln!(
        out,
        "- Kubernetes version: {}",
        report
            .server_version
            .map(|v| format!(
                "{v} ({})",
                match v.source {
                    crate::VersionSource::ApiServer => "from the API server",
                    crate::VersionSource::User => "given by the operator",
                    crate::VersionSource::Kubelet => "at least; newest kubelet",
                }
            ))
            .unwrap_or_else(|| "unknown".to_owned())
    );
    let _ = writeln!(
        out,
        "- Scope: {}",
        report
            .namespace
            .as_deref()
            .map(|n| format!("namespace `{n}`"))
            .unwrap_or_else(|| "all namespaces".to_owned())
    );
    let _ = writeln!(
        out,
        "- Result: **{}**, {}, {} info",
        count(s.blockers, "blocker"),
        count(s.warnings, "warning"),
        s.infos
    );
    let _ = writeln!(
        out,
        "- Workloads on in-tree storage: {} ({} ready, {} blocked, {} manual)",
        s.workloads, s.workloads_ready, s.workloads_blocked, s.workloads_manual
    );

    out.push_str("\n## In-tree usage\n\n");
    if report.inventory.plugins.is_empty() {
        out.push_str("Nothing in scope uses an in-tree volume plugin.\n");
    } else {
        out.push_str("| Plugin | CSI driver | StorageClasses | PVs | PVCs | Inline volumes |\n");
        out.push_str("|---|---|---:|---:|---:|---:|\n");
        for p in &report.inventory.plugins {
            let _ = writeln!(
                out,
                "| `{}` | `{}` | {} | {} | {} | {} |",
                p.plugin,
                p.csi_driver,
                p.storage_classes,
                p.persistent_volumes,
                p.persistent_volume_claims,
                p.inline_volumes
            );
        }
        if !report.inventory.in_tree_default_storage_classes.is_empty() {
            let _ = writeln!(
                out,
                "\nThe default StorageClass is in-tree: {}.",
                report
                    .inventory
                    .in_tree_default_storage_classes
                    .iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            );
        }
    }

    for (severity, groups) in grouped(&report.findings) {
        let title = match severity {
            Severity::Blocker => "Blockers",
            Severity::Warning => "Warnings",
            Severity::Info => "Information",
        };
        let _ = writeln!(out, "\n## {title}\n");
        for (code, findings) in groups {
            let _ = writeln!(out, "### `{code}` ({})\n", findings.len());
            out.push_str("| Object | Finding | Remedy |\n|---|---|---|\n");
            for f in findings.iter().take(FINDINGS_PER_CODE) {
                let _ = writeln!(
                    out,
                    "| `{}` | {} | {} |",
                    f.object,
                    cell(&f.message),
                    cell(&f.remedy)
                );
            }
            if findings.len() > FINDINGS_PER_CODE {
                let _ = writeln!(
                    out,
                    "\n… and {} more; the JSON report (`-o json`) lists them all.",
                    findings.len() - FINDINGS_PER_CODE
                );
            }
            out.push('\n');
        }
    }

    out.push_str("\n## Workloads\n\n");
    if report.workloads.is_empty() {
        out.push_str("No workload uses in-tree storage.\n");
    } else {
        out.push_str("| Workload | Readiness | In-tree claims | Blockers | Warnings | Note |\n");
        out.push_str("|---|---|---|---|---|---|\n");
        for w in &report.workloads {
            let codes = |c: &[&str]| {
                c.iter()
                    .map(|c| format!("`{c}`"))
                    .collect::<Vec<_>>()
                    .join(", ")
            };
            let _ = writeln!(
                out,
                "| `{}` | {} | {} | {} | {} | {} |",
                w.workload,
                w.readiness.as_str(),
                cell(&w.in_tree_claims.join(", ")),
                codes(&w.blockers),
                codes(&w.warnings),
                cell(w.note.as_deref().unwrap_or_default())
            );
        }
    }
    out
}
