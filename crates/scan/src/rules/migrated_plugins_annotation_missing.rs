//! `MIGRATED_PLUGINS_ANNOTATION_MISSING`: a CSINode's `storage.alpha.kubernetes.io/migrated-plugins` lacks an in-tree plugin in use.

use crate::report::{Finding, ObjectRef, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// The annotation the kubelet sets on its CSINode, listing the plugins it migrates.
pub const MIGRATED_PLUGINS_ANNOTATION: &str = "storage.alpha.kubernetes.io/migrated-plugins";

/// See the module documentation.
#[derive(Debug)]
pub struct MigratedPluginsAnnotationMissing;

impl Rule for MigratedPluginsAnnotationMissing {
    fn code(&self) -> &'static str {
        "MIGRATED_PLUGINS_ANNOTATION_MISSING"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiNode]
    }
    fn requires(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiNode]
    }
    fn description(&self) -> &'static str {
        "The kubelet on a node does not migrate an in-tree plugin in use (CSINode annotation)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for (name, csi_node) in &view.csi_nodes {
            let migrated: Vec<&str> = csi_node
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(MIGRATED_PLUGINS_ANNOTATION))
                .map(|v| v.split(',').map(str::trim).collect())
                .unwrap_or_default();
            for plugin in view.plugins_in_use.values().filter(|p| p.kubelet_migrates) {
                if migrated.contains(&plugin.name) {
                    continue;
                }
                out.push(
                    self.finding(
                        ObjectRef::cluster("CSINode", name),
                        format!(
                            "The kubelet on node {name:?} does not list {} in {MIGRATED_PLUGINS_ANNOTATION}: it does not hand in-tree {} volumes to the CSI driver, so the ones still in-tree may fail to attach or mount there.",
                            plugin.name, plugin.display_name
                        ),
                        format!(
                            "Upgrade or reconfigure the kubelet on {name:?} (CSIMigration for {} on, node drained first); volumes converted to native CSI by csi-migrate do not depend on this.",
                            plugin.display_name
                        ),
                    )
                    .for_plugin(plugin.name),
                );
            }
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
                "listed among others",
                vec![
                    ebs_pv("a", None),
                    csi_node("n1", &[], "kubernetes.io/gce-pd, kubernetes.io/aws-ebs"),
                ],
                &[],
            ),
            (
                "not listed",
                vec![
                    ebs_pv("a", None),
                    csi_node("n1", &[], "kubernetes.io/gce-pd"),
                ],
                &["CSINode/n1"],
            ),
            (
                "empty",
                vec![ebs_pv("a", None), csi_node("n1", &[], "")],
                &["CSINode/n1"],
            ),
            (
                "rbd is never migrated by the kubelet",
                vec![rbd_pv(), csi_node("n1", &[], "")],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&MigratedPluginsAnnotationMissing, input),
                *expected,
                "{name}"
            );
        }
    }

    fn rbd_pv() -> serde_json::Value {
        serde_json::json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "r"},
            "spec": {"rbd": {"monitors": ["10.0.0.1:6789"], "image": "img"}}})
    }
}
