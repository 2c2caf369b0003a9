//! `PV_RELEASED_OR_FAILED`: an in-tree PV in phase Released or Failed (its claim is gone, or reclaim failed).

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct PvReleasedOrFailed;

impl Rule for PvReleasedOrFailed {
    fn code(&self) -> &'static str {
        "PV_RELEASED_OR_FAILED"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "An in-tree PV is Released or Failed: no claim uses it, so there is nothing to migrate in place."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for volume in &view.in_tree_volumes {
            let phase = volume.pv.status.as_ref().and_then(|s| s.phase.as_deref());
            let Some(phase @ ("Released" | "Failed")) = phase else {
                continue;
            };
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!(
                        "In-tree PV {:?} is {phase}: its claim is gone{}, so no workload migration will touch it, and with reclaim policy Delete its disk may be deleted at any time.",
                        volume.name(),
                        if phase == "Failed" { " or its reclaim failed" } else { "" }
                    ),
                    "Decide what the disk is: delete the PV if it is garbage, or set Retain and convert it on its own with `csi-migrate translate` and a new claim.".to_owned(),
                )
                .for_plugin(volume.plugin.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let with_phase = |phase: &str| {
            let mut pv = ebs_pv("a", None);
            pv["status"]["phase"] = phase.into();
            pv
        };
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("bound", vec![with_phase("Bound")], &[]),
            (
                "released",
                vec![with_phase("Released")],
                &["PersistentVolume/a"],
            ),
            (
                "failed",
                vec![with_phase("Failed")],
                &["PersistentVolume/a"],
            ),
            ("available", vec![with_phase("Available")], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&PvReleasedOrFailed, input), *expected, "{name}");
        }
    }
}
