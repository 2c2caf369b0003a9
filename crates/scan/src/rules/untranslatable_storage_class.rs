//! `UNTRANSLATABLE_STORAGE_CLASS`: an in-tree StorageClass whose parameters the translation rejects.

use crate::report::{Finding, Severity};
use crate::rules::{Rule, class_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct UntranslatableStorageClass;

impl Rule for UntranslatableStorageClass {
    fn code(&self) -> &'static str {
        "UNTRANSLATABLE_STORAGE_CLASS"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StorageClass]
    }
    fn description(&self) -> &'static str {
        "An in-tree StorageClass cannot be translated to a CSI class (provisioning from it fails under migration)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let mut classes: Vec<_> = view.storage_classes.iter().collect();
        classes.sort_by_key(|(name, _)| **name);
        for (name, sc) in classes {
            let Some(plugin) = view.class_plugin(name).filter(|p| p.translatable) else {
                continue;
            };
            if let Err(error) = view.translator.storage_class_to_csi(plugin.name, sc) {
                out.push(
                    self.finding(
                        class_object(name),
                        format!("StorageClass {name:?} cannot be translated for {}: {error}. New claims of this class fail to provision under CSI migration.", plugin.csi_driver),
                        format!("Create a {} StorageClass with equivalent parameters and point new claims (and the migration target) at it.", plugin.csi_driver),
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
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "plain",
                vec![storage_class(
                    "gp2",
                    "kubernetes.io/aws-ebs",
                    json!({"type": "gp2"}),
                )],
                &[],
            ),
            (
                "zone and zones",
                vec![storage_class(
                    "bad",
                    "kubernetes.io/gce-pd",
                    json!({"zone": "a", "zones": "a,b"}),
                )],
                &["StorageClass/bad"],
            ),
            (
                "csi class",
                vec![storage_class(
                    "csi",
                    "ebs.csi.aws.com",
                    json!({"zone": "a", "zones": "b"}),
                )],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&UntranslatableStorageClass, input),
                *expected,
                "{name}"
            );
        }
    }
}
