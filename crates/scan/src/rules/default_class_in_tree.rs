//! `DEFAULT_CLASS_IN_TREE`: the default StorageClass has an in-tree provisioner, so new claims keep landing on in-tree volumes.

use crate::report::{Finding, Severity};
use crate::rules::{Rule, class_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct DefaultClassInTree;

impl Rule for DefaultClassInTree {
    fn code(&self) -> &'static str {
        "DEFAULT_CLASS_IN_TREE"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StorageClass]
    }
    fn description(&self) -> &'static str {
        "The default StorageClass is in-tree: every claim without a class creates more in-tree PVs."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for sc in &view.default_classes {
            let Some(plugin) = crate::plugins::plugin_by_name(&sc.provisioner) else {
                continue;
            };
            let name = sc.metadata.name.as_deref().unwrap_or_default();
            out.push(
                self.finding(
                    class_object(name),
                    format!("The default StorageClass {name:?} uses in-tree {}: claims that name no class keep creating in-tree PVs.", plugin.name),
                    format!("Create a StorageClass for {}, mark it default (storageclass.kubernetes.io/is-default-class: \"true\") and remove the mark from {name:?}.", plugin.csi_driver),
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
        let mut default_gp2 = storage_class("gp2", "kubernetes.io/aws-ebs", json!({}));
        default_gp2["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
        let mut default_csi = storage_class("gp3", "ebs.csi.aws.com", json!({}));
        default_csi["metadata"]["annotations"] =
            json!({"storageclass.beta.kubernetes.io/is-default-class": "true"});
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "in-tree default",
                vec![default_gp2.clone()],
                &["StorageClass/gp2"],
            ),
            ("csi default", vec![default_csi], &[]),
            (
                "in-tree, not default",
                vec![storage_class("gp2", "kubernetes.io/aws-ebs", json!({}))],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&DefaultClassInTree, input), *expected, "{name}");
        }
    }
}
