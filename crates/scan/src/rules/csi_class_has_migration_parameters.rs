//! `CSI_CLASS_HAS_MIGRATION_PARAMETERS`: a vSphere CSI class sets parameters only the migration translation may set.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, class_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct CsiClassHasMigrationParameters;

impl Rule for CsiClassHasMigrationParameters {
    fn code(&self) -> &'static str {
        "CSI_CLASS_HAS_MIGRATION_PARAMETERS"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StorageClass]
    }
    fn description(&self) -> &'static str {
        "A csi.vsphere.vmware.com class carries migration-only parameters (csimigration, *-migrationparam)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let mut classes: Vec<_> = view
            .storage_classes
            .iter()
            .filter(|(_, sc)| sc.provisioner == vsphere::DRIVER_NAME)
            .collect();
        classes.sort_by_key(|(name, _)| **name);
        for (name, sc) in classes {
            // The driver lower-cases keys, so `CSIMigration` counts even though the vendor webhook misses it.
            let keys: Vec<&str> = sc
                .parameters
                .iter()
                .flatten()
                .map(|(k, _)| k.as_str())
                .filter(|k| {
                    vsphere::MIGRATION_ONLY_PARAMETERS
                        .iter()
                        .any(|m| m.eq_ignore_ascii_case(k))
                })
                .collect();
            if keys.is_empty() {
                continue;
            }
            out.push(
                self.finding(
                    class_object(name),
                    format!(
                        "CSI StorageClass {name:?} sets migration-only parameters ({}): the driver treats its claims as migrated in-tree volumes, and the vSphere validating webhook rejects such classes.",
                        keys.join(", ")
                    ),
                    "Recreate the class without csimigration and *-migrationparam keys (use datastoreurl / storagepolicyname), then use it as the migration target.".to_owned(),
                )
                .for_plugin(vsphere::PLUGIN_NAME),
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
        let csi = "csi.vsphere.vmware.com";
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "clean",
                vec![storage_class(
                    "a",
                    csi,
                    json!({"storagepolicyname": "gold"}),
                )],
                &[],
            ),
            (
                "csimigration",
                vec![storage_class("a", csi, json!({"csimigration": "true"}))],
                &["StorageClass/a"],
            ),
            (
                "upper case",
                vec![storage_class(
                    "a",
                    csi,
                    json!({"Datastore-MigrationParam": "ds"}),
                )],
                &["StorageClass/a"],
            ),
            (
                "in-tree class may not even have them",
                vec![storage_class(
                    "a",
                    "kubernetes.io/vsphere-volume",
                    json!({"csimigration": "true"}),
                )],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&CsiClassHasMigrationParameters, input),
                *expected,
                "{name}"
            );
        }
    }
}
