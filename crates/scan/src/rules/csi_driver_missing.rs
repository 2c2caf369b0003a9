//! `CSI_DRIVER_MISSING`: an in-tree plugin is in use but its CSI driver has no CSIDriver object.

use crate::report::{Finding, Severity};
use crate::rules::{Rule, driver_object, plural};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct CsiDriverMissing;

impl Rule for CsiDriverMissing {
    fn code(&self) -> &'static str {
        "CSI_DRIVER_MISSING"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiDriver]
    }
    fn requires(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiDriver]
    }
    fn description(&self) -> &'static str {
        "The CSI driver that replaces an in-tree plugin in use has no CSIDriver object."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for plugin in view.plugins_in_use.values() {
            if view.csi_drivers.contains(plugin.csi_driver) {
                continue;
            }
            let pvs = view
                .in_tree_volumes
                .iter()
                .filter(|v| v.plugin.name == plugin.name)
                .count();
            let inline = view
                .inline_volumes
                .iter()
                .filter(|v| v.plugin.name == plugin.name)
                .count();
            out.push(
                self.finding(
                    driver_object(plugin.csi_driver),
                    format!(
                        "{} and {} use {} but the cluster has no CSIDriver {:?}: the driver is not installed (or not registered), so migrated and converted volumes cannot attach or mount.",
                        plural(pvs, "PV"),
                        plural(inline, "inline volume"),
                        plugin.name,
                        plugin.csi_driver
                    ),
                    format!(
                        "Install the {} CSI driver ({}) and check that its CSIDriver object exists: `kubectl get csidriver {}`.",
                        plugin.display_name, plugin.csi_driver, plugin.csi_driver
                    ),
                )
                .for_plugin(plugin.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "driver present",
                vec![ebs_pv("a", None), csi_driver("ebs.csi.aws.com")],
                &[],
            ),
            (
                "driver absent",
                vec![ebs_pv("a", None)],
                &["CSIDriver/ebs.csi.aws.com"],
            ),
            (
                "other driver only",
                vec![ebs_pv("a", None), csi_driver("pd.csi.storage.gke.io")],
                &["CSIDriver/ebs.csi.aws.com"],
            ),
            (
                "in-tree class without volumes counts",
                vec![storage_class("std", "kubernetes.io/gce-pd", json!({}))],
                &["CSIDriver/pd.csi.storage.gke.io"],
            ),
            ("nothing in-tree", vec![csi_driver("ebs.csi.aws.com")], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&CsiDriverMissing, input), *expected, "{name}");
        }
    }
}
