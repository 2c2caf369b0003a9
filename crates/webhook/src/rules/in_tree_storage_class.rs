//! Rule `inTreeStorageClass`: a StorageClass whose provisioner is an in-tree plugin.
//!
//! The finding names the CSI provisioner and the parameters Kubernetes' own translation
//! would use, minus the vSphere migration-only keys (which rule `csiMigrationParameters`
//! forbids in a user-written class).

use csi_migrate_translate::Translator;
use csi_migrate_translate::plugins::vsphere::MIGRATION_ONLY_PARAMETERS;
use k8s_openapi::api::storage::v1::StorageClass;

use super::{Finding, ObjectName, Rule, format_parameters};
use crate::policy::PolicyRule;

/// Reports a StorageClass with an in-tree provisioner and what to write instead.
pub fn check(sc: &StorageClass, translator: &Translator) -> Option<Finding> {
    let in_tree = sc.provisioner.as_str();
    if !translator.is_migratable_in_tree_plugin(in_tree) {
        return None;
    }
    let name = ObjectName {
        kind: "StorageClass",
        namespace: None,
        name: sc.metadata.name.as_deref().unwrap_or_default(),
    };
    let mut message = format!("{name} uses the in-tree provisioner {in_tree}");
    let driver = match translator.csi_driver_for_in_tree(in_tree) {
        Ok(driver) => driver,
        Err(error) => {
            message.push_str(&format!("; it has no known CSI driver: {error}"));
            return Some(Finding::new(
                Rule::Policy(PolicyRule::InTreeStorageClass),
                message,
            ));
        }
    };
    // The translation rewrites parameters only; the provisioner is the plugin's CSI driver.
    match translator.storage_class_to_csi(in_tree, sc) {
        Ok(csi) => {
            let params = csi.parameters.unwrap_or_default();
            let kept = params.iter().filter(|(k, _)| {
                !MIGRATION_ONLY_PARAMETERS
                    .iter()
                    .any(|m| m.eq_ignore_ascii_case(k))
            });
            let shown = format_parameters(kept);
            message.push_str(&format!("; use provisioner {driver}"));
            if shown.is_empty() {
                message.push_str(" (no parameters needed)");
            } else {
                message.push_str(&format!(" with parameters {shown}"));
            }
            if let Some((_, datastore)) = sc
                .parameters
                .iter()
                .flatten()
                .find(|(k, _)| k.eq_ignore_ascii_case("datastore"))
            {
                message.push_str(&format!(
                    " and datastoreurl set to the URL of datastore {datastore:?}"
                ));
            }
        }
        Err(error) => message.push_str(&format!(
            "; use provisioner {driver} (its parameters could not be translated: {error})"
        )),
    }
    Some(Finding::new(
        Rule::Policy(PolicyRule::InTreeStorageClass),
        message,
    ))
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
            ("ebs.csi.aws.com", json!({"type": "gp3"}), None),
            ("kubernetes.io/no-provisioner", json!({}), None),
            ("example.com/nfs", json!({}), None),
            (
                "kubernetes.io/aws-ebs",
                json!({"type": "gp2", "fsType": "xfs"}),
                Some(vec![
                    "in-tree provisioner kubernetes.io/aws-ebs",
                    "use provisioner ebs.csi.aws.com",
                    "type=gp2",
                ]),
            ),
            (
                "kubernetes.io/gce-pd",
                json!({}),
                Some(vec!["use provisioner pd.csi.storage.gke.io"]),
            ),
            (
                "kubernetes.io/azure-disk",
                json!({}),
                Some(vec!["use provisioner disk.csi.azure.com"]),
            ),
            (
                "kubernetes.io/azure-file",
                json!({}),
                Some(vec!["use provisioner file.csi.azure.com"]),
            ),
            (
                "kubernetes.io/cinder",
                json!({}),
                Some(vec!["use provisioner cinder.csi.openstack.org"]),
            ),
            (
                "kubernetes.io/portworx-volume",
                json!({}),
                Some(vec!["use provisioner pxd.portworx.com"]),
            ),
            (
                "kubernetes.io/rbd",
                json!({}),
                Some(vec!["rbd.csi.ceph.com"]),
            ),
            (
                "kubernetes.io/vsphere-volume",
                json!({"storagepolicyname": "gold", "datastore": "ds1"}),
                Some(vec![
                    "use provisioner csi.vsphere.vmware.com",
                    "storagepolicyname=gold",
                    "datastoreurl set to the URL of datastore \"ds1\"",
                ]),
            ),
        ];
        for (provisioner, params, want) in cases {
            let got = check(&storage_class(provisioner, params.clone()), &t);
            match want {
                None => assert!(got.is_none(), "{provisioner}: {got:?}"),
                Some(needles) => {
                    let got = got.unwrap();
                    assert_eq!(got.rule, Rule::Policy(PolicyRule::InTreeStorageClass));
                    for needle in needles {
                        assert!(
                            got.message.contains(needle),
                            "{provisioner}: {}",
                            got.message
                        );
                    }
                    assert!(!got.message.contains("migrationparam"), "{}", got.message);
                    assert!(!got.message.contains("csimigration"), "{}", got.message);
                }
            }
        }
    }
}
