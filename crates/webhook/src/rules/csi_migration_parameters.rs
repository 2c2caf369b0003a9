//! Rule `csiMigrationParameters`: a vSphere CSI StorageClass must not carry migration-only parameters.
//!
//! Kubernetes' in-tree → CSI translation adds `csimigration` and the `*-migrationparam` keys
//! to the requests it sends to `csi.vsphere.vmware.com`; a user-written StorageClass with
//! them makes the driver treat every new volume as a migrated in-tree one. The vSphere
//! driver's own webhook denies them with an exact, case-sensitive key match; this rule
//! matches case-insensitively, because the driver lower-cases keys before reading them.

use csi_migrate_translate::Translator;
use csi_migrate_translate::plugins::vsphere::MIGRATION_ONLY_PARAMETERS;
use k8s_openapi::api::storage::v1::StorageClass;

use super::{Finding, ObjectName, Rule};

/// The in-tree vSphere plugin, whose CSI driver this rule is about.
pub const VSPHERE_IN_TREE_PLUGIN: &str = "kubernetes.io/vsphere-volume";

/// What to write instead of a migration-only parameter, where there is something.
fn replacement(key: &str) -> Option<&'static str> {
    match key {
        "datastore-migrationparam" => Some("datastoreurl"),
        "diskformat-migrationparam" => Some("nothing (thin is the only format)"),
        "csimigration" => None,
        _ => Some("storagepolicyname naming an SPBM policy"),
    }
}

/// Denies a StorageClass for the vSphere CSI driver that sets migration-only parameters.
pub fn check(sc: &StorageClass, translator: &Translator) -> Option<Finding> {
    let driver = translator
        .csi_driver_for_in_tree(VSPHERE_IN_TREE_PLUGIN)
        .ok()?;
    if sc.provisioner != driver {
        return None;
    }
    let mut found: Vec<&str> = sc
        .parameters
        .iter()
        .flatten()
        .filter(|(key, _)| {
            MIGRATION_ONLY_PARAMETERS
                .iter()
                .any(|m| m.eq_ignore_ascii_case(key))
        })
        .map(|(key, _)| key.as_str())
        .collect();
    if found.is_empty() {
        return None;
    }
    found.sort_unstable();
    let name = ObjectName {
        kind: "StorageClass",
        namespace: None,
        name: sc.metadata.name.as_deref().unwrap_or_default(),
    };
    let mut hints: Vec<String> = Vec::new();
    for key in &found {
        if let Some(instead) = replacement(&key.to_ascii_lowercase())
            && !hints.iter().any(|h| h.ends_with(instead))
        {
            hints.push(format!("instead of {key} use {instead}"));
        }
    }
    let mut message = format!(
        "{name} for provisioner {driver} sets migration-only parameters {}: \
         only Kubernetes' in-tree-to-CSI translation may set them; remove them",
        found.join(", ")
    );
    if !hints.is_empty() {
        message.push_str(" (");
        message.push_str(&hints.join("; "));
        message.push(')');
    }
    Some(Finding::new(Rule::CsiMigrationParameters, message))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::fixtures::storage_class;
    use serde_json::json;

    #[test]
    fn table() {
        let t = Translator::new();
        let cases = [
            (
                "csi.vsphere.vmware.com",
                json!({"storagepolicyname": "gold"}),
                None,
            ),
            ("csi.vsphere.vmware.com", json!({}), None),
            (
                "csi.vsphere.vmware.com",
                json!({"csimigration": "true"}),
                Some(vec!["csimigration"]),
            ),
            (
                "csi.vsphere.vmware.com",
                json!({"datastore-migrationparam": "ds1", "csimigration": "true", "fstype": "ext4"}),
                Some(vec![
                    "csimigration",
                    "datastore-migrationparam",
                    "use datastoreurl",
                ]),
            ),
            (
                "csi.vsphere.vmware.com",
                json!({"hostfailurestotolerate-migrationparam": "1", "iopslimit-migrationparam": "10"}),
                Some(vec![
                    "hostfailurestotolerate-migrationparam",
                    "iopslimit-migrationparam",
                    "storagepolicyname",
                ]),
            ),
            (
                "csi.vsphere.vmware.com",
                json!({"CSIMigration": "true"}),
                Some(vec!["CSIMigration"]),
            ),
            (
                "csi.vsphere.vmware.com",
                json!({"diskformat-migrationparam": "thin"}),
                Some(vec!["thin is the only"]),
            ),
            // Only the vSphere driver reads these keys.
            ("ebs.csi.aws.com", json!({"csimigration": "true"}), None),
            // In-tree classes are other rules' business.
            (
                "kubernetes.io/vsphere-volume",
                json!({"csimigration": "true"}),
                None,
            ),
        ];
        for (provisioner, params, want) in cases {
            let got = check(&storage_class(provisioner, params.clone()), &t);
            match want {
                None => assert!(got.is_none(), "{provisioner} {params}: {got:?}"),
                Some(needles) => {
                    let got = got.unwrap();
                    assert_eq!(got.rule, Rule::CsiMigrationParameters);
                    assert!(
                        got.message.starts_with(
                            "StorageClass \"sc\" for provisioner csi.vsphere.vmware.com"
                        )
                    );
                    for needle in needles {
                        assert!(got.message.contains(needle), "{params}: {}", got.message);
                    }
                }
            }
        }
    }

    #[test]
    fn every_migration_only_parameter_is_caught() {
        let t = Translator::new();
        assert_eq!(MIGRATION_ONLY_PARAMETERS.len(), 9);
        for key in MIGRATION_ONLY_PARAMETERS {
            let sc = storage_class("csi.vsphere.vmware.com", json!({ *key: "x" }));
            let finding = check(&sc, &t).unwrap();
            assert!(finding.message.contains(key), "{}", finding.message);
        }
    }
}
