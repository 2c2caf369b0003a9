//! Renderers: a [`crate::Report`] as a terminal table, versioned JSON, or a Markdown change-request report. Pure: report in, text out.

pub mod json;
pub mod markdown;
pub mod table;

use crate::report::{Finding, Severity};

/// The findings of one code.
pub(crate) type CodeGroup<'r> = (&'static str, Vec<&'r Finding>);

/// Findings grouped by severity (most serious first) and then by code, in report order.
pub(crate) fn grouped(findings: &[Finding]) -> Vec<(Severity, Vec<CodeGroup<'_>>)> {
    let mut out = Vec::new();
    for severity in Severity::ALL {
        let mut groups: Vec<CodeGroup<'_>> = Vec::new();
        for finding in findings.iter().filter(|f| f.severity == severity) {
            match groups.iter_mut().find(|(code, _)| *code == finding.code) {
                Some((_, list)) => list.push(finding),
                None => groups.push((finding.code, vec![finding])),
            }
        }
        if !groups.is_empty() {
            out.push((severity, groups));
        }
    }
    out
}

/// `1 blocker` / `2 blockers`.
pub(crate) fn count(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}
