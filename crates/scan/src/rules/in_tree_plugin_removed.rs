//! `IN_TREE_PLUGIN_REMOVED`: the server's release no longer has the in-tree plugin code; its volumes run only through the CSI driver.

use crate::report::{Finding, Severity};
use crate::rules::{Rule, driver_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct InTreePluginRemoved;

impl Rule for InTreePluginRemoved {
    fn code(&self) -> &'static str {
        "IN_TREE_PLUGIN_REMOVED"
    }
    fn severity(&self) -> Severity {
        Severity::Info
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiDriver]
    }
    fn description(&self) -> &'static str {
        "The in-tree plugin code is gone from this Kubernetes version; its volumes depend on CSI migration."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let Some(version) = view.server_version else {
            return;
        };
        for p in view.plugins_in_use.values() {
            if p.translation_removed_in.is_some() || !version.at_least(1, p.in_tree_removed_in) {
                continue;
            }
            out.push(
                self.finding(
                    driver_object(p.csi_driver),
                    format!(
                        "Kubernetes {version} has no in-tree {} code (removed in 1.{}): every {} volume here is served by {} through CSI migration, with none of the CSI-only features (snapshots, expansion of migrated volumes, VolumeAttributesClass).",
                        p.display_name, p.in_tree_removed_in, p.name, p.csi_driver
                    ),
                    "Convert the volumes to native CSI PVs with csi-migrate to get the CSI features; keep the driver healthy until then.".to_owned(),
                )
                .for_plugin(p.name),
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
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "1.27 ebs removed",
                vec![ebs_pv("a", None), server_version(27)],
                &["CSIDriver/ebs.csi.aws.com"],
            ),
            (
                "1.26 ebs still in-tree",
                vec![ebs_pv("a", None), server_version(26)],
                &[],
            ),
            ("unknown version", vec![ebs_pv("a", None)], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&InTreePluginRemoved, input), *expected, "{name}");
        }
    }
}
