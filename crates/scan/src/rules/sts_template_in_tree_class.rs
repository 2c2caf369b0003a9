//! `STS_TEMPLATE_IN_TREE_CLASS`: a StatefulSet claim template names an in-tree class, so scale-ups create in-tree PVs.

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::{ClusterView, WorkloadKind};

/// See the module documentation.
#[derive(Debug)]
pub struct StsTemplateInTreeClass;

impl Rule for StsTemplateInTreeClass {
    fn code(&self) -> &'static str {
        "STS_TEMPLATE_IN_TREE_CLASS"
    }
    fn severity(&self) -> Severity {
        Severity::Info
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StatefulSet]
    }
    fn description(&self) -> &'static str {
        "A StatefulSet's volumeClaimTemplates name an in-tree class (new replicas get in-tree PVs)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for w in view
            .workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::StatefulSet)
        {
            for (template, class, plugin) in &w.in_tree_claim_templates {
                out.push(
                    self.finding(
                        w.object.clone(),
                        format!(
                            "Claim template {template:?} uses class {class:?} ({}): every new replica gets an in-tree PV, and the template cannot be changed in place.",
                            plugin.name
                        ),
                        format!(
                            "`csi-migrate migrate statefulset {} -n {} --to-storageclass <{} class>` recreates the set with the new class; update the manifest in Git/Helm to match.",
                            w.object.name, w.namespace, plugin.csi_driver
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
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let gp2 = storage_class("gp2", "kubernetes.io/aws-ebs", json!({}));
        let gp3 = storage_class("gp3", "ebs.csi.aws.com", json!({}));
        let mut default_gp2 = gp2.clone();
        default_gp2["metadata"]["annotations"] =
            json!({"storageclass.kubernetes.io/is-default-class": "true"});
        let mut no_class = stateful_set("db", "pg", 3, "x");
        no_class["spec"]["volumeClaimTemplates"][0]["spec"]
            .as_object_mut()
            .map(|s| s.remove("storageClassName"));
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "in-tree class",
                vec![gp2.clone(), stateful_set("db", "pg", 3, "gp2")],
                &["StatefulSet/db/pg"],
            ),
            (
                "csi class",
                vec![gp2, gp3, stateful_set("db", "pg", 3, "gp3")],
                &[],
            ),
            (
                "no class, in-tree default",
                vec![default_gp2, no_class],
                &["StatefulSet/db/pg"],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&StsTemplateInTreeClass, input), *expected, "{name}");
        }
    }
}
