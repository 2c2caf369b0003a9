//! The `-o table` output: grouped, wrapped to 80 columns, coloured only when asked (stdout is a terminal).

use std::fmt::Write;

use crate::render::{count, grouped};
use crate::report::{Readiness, Report, Severity};

/// Terminal width the table is laid out for.
pub const WIDTH: usize = 80;
/// Findings shown per code before "… and N more".
pub const FINDINGS_PER_CODE: usize = 20;
/// Workloads shown before "… and N more".
pub const WORKLOADS_SHOWN: usize = 100;

const RESET: &str = "\x1b[0m";
const BOLD: &str = "\x1b[1m";

fn paint(colour: bool, code: &str, text: &str) -> String {
    if colour {
        format!("{code}{text}{RESET}")
    } else {
        text.to_owned()
    }
}

fn severity_colour(severity: Severity) -> &'static str {
    match severity {
        Severity::Blocker => "\x1b[1;31m",
        Severity::Warning => "\x1b[33m",
        Severity::Info => "\x1b[36m",
    }
}

fn readiness_colour(readiness: Readiness) -> &'static str {
    match readiness {
        Readiness::Ready => "\x1b[32m",
        Readiness::Blocked => "\x1b[1;31m",
        Readiness::Manual => "\x1b[33m",
    }
}

/// Wraps `text` to `WIDTH`, every line indented by `indent` spaces (the first by `first`).
pub(crate) fn wrap(text: &str, first: &str, indent: usize) -> String {
    let pad = " ".repeat(indent);
    let mut out = String::new();
    let mut line = first.to_owned();
    let mut line_has_word = false;
    for word in text.split_whitespace() {
        if line_has_word && line.chars().count() + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = pad.clone();
            line_has_word = false;
        }
        if line_has_word {
            line.push(' ');
        }
        line.push_str(word);
        line_has_word = true;
    }
    out.push_str(line.trim_end());
    out.push('\n');
    out
}

/// Renders the report for a terminal.
pub fn render(report: &Report, colour: bool) -> String {
    let mut out = String::new();
    let s = &report.summary;
    let scope = match &report.namespace {
        Some(ns) => format!("namespace {ns}"),
        None => "all namespaces".to_owned(),
    };
    let version = match report.server_version {
        Some(v) => format!("Kubernetes {v}"),
        None => "Kubernetes version unknown".to_owned(),
    };
    let _ = writeln!(
        out,
        "{}",
        paint(
            colour,
            BOLD,
            &format!("csi-migrate scan: {scope}, {version}")
        )
    );
    let verdict = format!(
        "{}, {}, {} info",
        count(s.blockers, "blocker"),
        count(s.warnings, "warning"),
        s.infos
    );
    let verdict_colour = if s.blockers > 0 {
        severity_colour(Severity::Blocker)
    } else if s.warnings > 0 {
        severity_colour(Severity::Warning)
    } else {
        readiness_colour(Readiness::Ready)
    };
    let _ = writeln!(out, "{}", paint(colour, verdict_colour, &verdict));

    out.push('\n');
    let _ = writeln!(out, "{}", paint(colour, BOLD, "IN-TREE USAGE"));
    if report.inventory.plugins.is_empty() {
        out.push_str("  Nothing in scope uses an in-tree volume plugin.\n");
    } else {
        let _ = writeln!(
            out,
            "  {:<16}{:<26}{:>4}{:>8}{:>8}{:>8}",
            "PLUGIN", "CSI DRIVER", "SC", "PV", "PVC", "INLINE"
        );
        for p in &report.inventory.plugins {
            let short = p.plugin.strip_prefix("kubernetes.io/").unwrap_or(&p.plugin);
            let _ = writeln!(
                out,
                "  {:<16}{:<26}{:>4}{:>8}{:>8}{:>8}",
                short,
                p.csi_driver,
                p.storage_classes,
                p.persistent_volumes,
                p.persistent_volume_claims,
                p.inline_volumes
            );
        }
        if !report.inventory.in_tree_default_storage_classes.is_empty() {
            out.push_str(&wrap(
                &format!(
                    "Default StorageClass is in-tree: {}",
                    report.inventory.in_tree_default_storage_classes.join(", ")
                ),
                "  ",
                4,
            ));
        }
        if !report.inventory.claim_templates.is_empty() {
            let _ = writeln!(
                out,
                "  StatefulSet claim templates on in-tree classes: {}",
                report.inventory.claim_templates.len()
            );
        }
    }

    for (severity, groups) in grouped(&report.findings) {
        out.push('\n');
        let title = match severity {
            Severity::Blocker => "BLOCKERS",
            Severity::Warning => "WARNINGS",
            Severity::Info => "INFO",
        };
        let _ = writeln!(out, "{}", paint(colour, severity_colour(severity), title));
        for (code, findings) in groups {
            let _ = writeln!(
                out,
                "  {} ({})",
                paint(colour, severity_colour(severity), code),
                findings.len()
            );
            for finding in findings.iter().take(FINDINGS_PER_CODE) {
                out.push_str(&wrap(&finding.object.to_string(), "    ", 6));
                out.push_str(&wrap(&finding.message, "      ", 6));
                out.push_str(&wrap(&finding.remedy, "      fix: ", 11));
            }
            if findings.len() > FINDINGS_PER_CODE {
                let _ = writeln!(
                    out,
                    "    … and {} more (see -o json)",
                    findings.len() - FINDINGS_PER_CODE
                );
            }
        }
    }

    out.push('\n');
    let _ = writeln!(
        out,
        "{}",
        paint(
            colour,
            BOLD,
            &format!(
                "WORKLOADS ({} ready, {} blocked, {} manual)",
                s.workloads_ready, s.workloads_blocked, s.workloads_manual
            )
        )
    );
    if report.workloads.is_empty() {
        out.push_str("  No workload uses in-tree storage.\n");
    }
    for w in report.workloads.iter().take(WORKLOADS_SHOWN) {
        let status = format!("{:<8}", w.readiness.as_str());
        let mut facts = Vec::new();
        if let Some(r) = w.replicas {
            facts.push(count(r.max(0) as usize, "replica"));
        }
        if !w.in_tree_claims.is_empty() {
            facts.push(format!(
                "{} of {} claims in-tree",
                w.in_tree_claims.len(),
                w.claims.len()
            ));
        }
        if !w.inline_volumes.is_empty() {
            facts.push(count(w.inline_volumes.len(), "inline volume"));
        }
        if !w.in_tree_claim_templates.is_empty() {
            facts.push(count(
                w.in_tree_claim_templates.len(),
                "in-tree claim template",
            ));
        }
        let line = format!("{} ({})", w.workload, facts.join(", "));
        let first = format!(
            "  {} ",
            paint(colour, readiness_colour(w.readiness), &status)
        );
        // Colour codes are invisible: wrap as if the status were plain.
        let wrapped = wrap(&line, &format!("  {status} "), 11);
        out.push_str(&wrapped.replacen(&format!("  {status} "), &first, 1));
        if !w.blockers.is_empty() {
            out.push_str(&wrap(&w.blockers.join(", "), "           blockers: ", 21));
        }
        if !w.warnings.is_empty() {
            out.push_str(&wrap(&w.warnings.join(", "), "           warnings: ", 21));
        }
        if let Some(note) = &w.note {
            out.push_str(&wrap(note, "           ", 11));
        }
    }
    if report.workloads.len() > WORKLOADS_SHOWN {
        let _ = writeln!(
            out,
            "  … and {} more (see -o json)",
            report.workloads.len() - WORKLOADS_SHOWN
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrap_keeps_lines_within_the_width() {
        let text = "word ".repeat(60);
        let wrapped = wrap(&text, "    fix: ", 9);
        assert!(wrapped.lines().all(|l| l.chars().count() <= WIDTH));
        assert!(wrapped.starts_with("    fix: word"));
        assert!(
            wrapped
                .lines()
                .skip(1)
                .all(|l| l.starts_with("         word"))
        );
    }

    #[test]
    fn a_word_longer_than_the_line_is_kept_whole() {
        let long = "x".repeat(100);
        assert_eq!(wrap(&long, "  ", 2), format!("  {long}\n"));
    }
}
