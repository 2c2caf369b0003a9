//! Rule `inTreePersistentVolumeClaim`: a new claim (or StatefulSet claim template) on an in-tree class.
//!
//! The webhook has no cluster access, so it cannot look a class up. It decides from what
//! the claim itself says, in this order:
//! 1. `spec.storageClassName` (or the deprecated `volume.beta.kubernetes.io/storage-class`
//!    annotation) is listed in the policy's `inTreeStorageClasses` (name → in-tree provisioner);
//! 2. the `volume.kubernetes.io/storage-provisioner` or
//!    `volume.beta.kubernetes.io/storage-provisioner` annotation names an in-tree plugin
//!    (claims restored from a backup carry these).
//!
//! A claim without a class (the cluster default) is never reported: the default class is
//! unknown here, and the `inTreeStorageClass` rule is what keeps in-tree classes out.

use std::collections::BTreeMap;

use csi_migrate_translate::Translator;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::{Finding, ObjectName, Rule};
use crate::policy::{Policy, PolicyRule};

/// The deprecated annotation that named a claim's class before `spec.storageClassName`.
pub const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
/// Annotations the PV controller sets to the provisioner of a claim's class.
pub const STORAGE_PROVISIONER_ANNOTATIONS: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// Reports a claim on an in-tree class. `name` says how to call the claim in the message
/// (a PVC, or a StatefulSet's claim template).
pub fn check(
    claim: &PersistentVolumeClaim,
    name: ObjectName<'_>,
    policy: &Policy,
    translator: &Translator,
) -> Option<Finding> {
    let annotations = claim.metadata.annotations.as_ref();
    let annotation = |key: &str| {
        annotations
            .and_then(|a: &BTreeMap<String, String>| a.get(key))
            .map(String::as_str)
    };
    let class = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.storage_class_name.as_deref())
        .or_else(|| annotation(BETA_STORAGE_CLASS_ANNOTATION))
        .filter(|class| !class.is_empty());

    let (in_tree, because) = if let Some((class, provisioner)) =
        class.and_then(|class| policy.in_tree_class_provisioner(class).map(|p| (class, p)))
    {
        (
            provisioner,
            format!(
                "uses StorageClass {class:?}, which the webhook policy lists as in-tree ({provisioner})"
            ),
        )
    } else {
        let (key, provisioner) = STORAGE_PROVISIONER_ANNOTATIONS.iter().find_map(|key| {
            annotation(key)
                .filter(|p| translator.is_migratable_in_tree_plugin(p))
                .map(|p| (*key, p))
        })?;
        (
            provisioner,
            format!("is provisioned by the in-tree plugin {provisioner} (annotation {key})"),
        )
    };
    let instead = match translator.csi_driver_for_in_tree(in_tree) {
        Ok(driver) => format!("use a StorageClass whose provisioner is {driver}"),
        Err(_) => "use a StorageClass with a CSI provisioner".to_owned(),
    };
    Some(Finding::new(
        Rule::Policy(PolicyRule::InTreePersistentVolumeClaim),
        format!("{name} {because}; {instead}"),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::fixtures::pvc;
    use serde_json::json;

    #[test]
    fn table() {
        let t = Translator::new();
        let policy = Policy::from_yaml("inTreeStorageClasses:\n  standard: kubernetes.io/gce-pd\n  thin: kubernetes.io/vsphere-volume\n").unwrap();
        let name = ObjectName {
            kind: "PersistentVolumeClaim",
            namespace: Some("ns"),
            name: "data",
        };
        let cases = [
            (None, json!({}), None),
            (Some("premium-rwo"), json!({}), None),
            (Some(""), json!({}), None),
            (
                Some("standard"),
                json!({}),
                Some(vec![
                    "StorageClass \"standard\"",
                    "(kubernetes.io/gce-pd)",
                    "pd.csi.storage.gke.io",
                ]),
            ),
            (
                Some("thin"),
                json!({}),
                Some(vec!["csi.vsphere.vmware.com"]),
            ),
            (
                None,
                json!({"volume.beta.kubernetes.io/storage-class": "standard"}),
                Some(vec!["\"standard\""]),
            ),
            (
                Some("gp2"),
                json!({"volume.kubernetes.io/storage-provisioner": "kubernetes.io/aws-ebs"}),
                Some(vec![
                    "in-tree plugin kubernetes.io/aws-ebs (annotation volume.kubernetes.io/storage-provisioner)",
                    "ebs.csi.aws.com",
                ]),
            ),
            (
                None,
                json!({"volume.beta.kubernetes.io/storage-provisioner": "kubernetes.io/cinder"}),
                Some(vec!["cinder.csi.openstack.org"]),
            ),
            // With CSI migration on, the controller writes the CSI driver: not in-tree.
            (
                Some("gp2"),
                json!({"volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"}),
                None,
            ),
        ];
        for (class, annotations, want) in cases {
            let got = check(&pvc(class, annotations.clone()), name, &policy, &t);
            match want {
                None => assert!(got.is_none(), "{class:?} {annotations}: {got:?}"),
                Some(needles) => {
                    let got = got.unwrap();
                    assert_eq!(
                        got.rule,
                        Rule::Policy(PolicyRule::InTreePersistentVolumeClaim)
                    );
                    assert!(
                        got.message
                            .starts_with("PersistentVolumeClaim \"data\" in namespace \"ns\""),
                        "{}",
                        got.message
                    );
                    for needle in needles {
                        assert!(got.message.contains(needle), "{class:?}: {}", got.message);
                    }
                }
            }
        }
    }
}
