//! `CSI_DRIVER_NOT_ON_NODE`: a node's CSINode does not list the CSI driver of an in-tree plugin in use.

use crate::report::{Finding, ObjectRef, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct CsiDriverNotOnNode;

impl Rule for CsiDriverNotOnNode {
    fn code(&self) -> &'static str {
        "CSI_DRIVER_NOT_ON_NODE"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiNode, ResourceKind::Node]
    }
    fn requires(&self) -> &'static [ResourceKind] {
        &[ResourceKind::Node, ResourceKind::CsiNode]
    }
    fn description(&self) -> &'static str {
        "A node cannot mount volumes of an in-tree plugin in use: its CSINode lacks the CSI driver."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for node in view.nodes.keys() {
            let csi_node = view.csi_nodes.get(node);
            for plugin in view.plugins_in_use.values() {
                let registered = csi_node
                    .and_then(|n| n.spec.drivers.iter().find(|d| d.name == plugin.csi_driver))
                    .is_some();
                if registered {
                    continue;
                }
                let message = match csi_node {
                    None => format!(
                        "Node {node:?} has no CSINode object, so no CSI driver is registered there; pods with {} volumes scheduled to it will not start.",
                        plugin.display_name
                    ),
                    Some(_) => format!(
                        "CSI driver {} is not registered on node {node:?} (missing from its CSINode); pods with {} volumes scheduled to it will stay in ContainerCreating.",
                        plugin.csi_driver, plugin.display_name
                    ),
                };
                out.push(
                    self.finding(
                        ObjectRef::cluster("CSINode", node),
                        message,
                        format!(
                            "Make the {} node plugin run on {node:?} (DaemonSet tolerations and node selectors), or cordon the node and keep these workloads off it.",
                            plugin.csi_driver
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
        let ebs = "ebs.csi.aws.com";
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "registered everywhere",
                vec![
                    ebs_pv("a", None),
                    node("n1", "linux"),
                    csi_node("n1", &[ebs], ""),
                ],
                &[],
            ),
            (
                "missing on one node",
                vec![
                    ebs_pv("a", None),
                    node("n1", "linux"),
                    node("n2", "linux"),
                    csi_node("n1", &[ebs], ""),
                    csi_node("n2", &["other"], ""),
                ],
                &["CSINode/n2"],
            ),
            (
                "no CSINode at all",
                vec![ebs_pv("a", None), node("n1", "linux")],
                &["CSINode/n1"],
            ),
            ("no in-tree usage", vec![node("n1", "linux")], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&CsiDriverNotOnNode, input), *expected, "{name}");
        }
    }
}
