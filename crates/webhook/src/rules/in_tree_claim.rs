//! Rule `inTreePersistentVolumeClaim`: a new claim (or StatefulSet claim template) on an in-tree class.
//!
//! The claim's class is its `volume.beta.kubernetes.io/storage-class` annotation if set,
//! else `spec.storageClassName` (the order Kubernetes uses). A claim with no class at all
//! gets the cluster's default class: the API server's DefaultStorageClass admission plugin
//! fills `storageClassName` in before validating webhooks run, so the webhook normally sees
//! it; if it is still missing (a StatefulSet claim template, or a cluster without that
//! plugin) the default class is looked up in the known classes. `storageClassName: ""`
//! means "no class" (static binding) and has no default.
//!
//! A claim is on an in-tree class when, in this order of precedence:
//! 1. its class is listed in the policy's `inTreeStorageClasses` (name → in-tree
//!    provisioner): an explicit override, and the only source without cluster access;
//! 2. its class is known from the cluster ([`KnownClasses`], the webhook's StorageClass
//!    cache) and that class's provisioner is an in-tree plugin;
//! 3. its `volume.kubernetes.io/storage-provisioner` or
//!    `volume.beta.kubernetes.io/storage-provisioner` annotation names an in-tree plugin
//!    (claims restored from a backup carry these).

use std::collections::BTreeMap;

use csi_migrate_translate::Translator;
use k8s_openapi::api::core::v1::PersistentVolumeClaim;

use super::{Finding, KnownClasses, ObjectName, Rule};
use crate::policy::{Policy, PolicyRule};

/// The deprecated annotation that named a claim's class before `spec.storageClassName`.
pub const BETA_STORAGE_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";
/// Annotations the PV controller sets to the provisioner of a claim's class.
pub const STORAGE_PROVISIONER_ANNOTATIONS: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// Which class a claim asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ClaimClass<'a> {
    /// A class by name.
    Named(&'a str),
    /// `storageClassName: ""`: no class, no default.
    Empty,
    /// No class given: the cluster default applies.
    Default,
}

fn claim_class(claim: &PersistentVolumeClaim) -> ClaimClass<'_> {
    let annotation = claim
        .metadata
        .annotations
        .as_ref()
        .and_then(|a| a.get(BETA_STORAGE_CLASS_ANNOTATION));
    let spec = claim
        .spec
        .as_ref()
        .and_then(|spec| spec.storage_class_name.as_ref());
    match annotation.or(spec).map(String::as_str) {
        Some("") => ClaimClass::Empty,
        Some(name) => ClaimClass::Named(name),
        None => ClaimClass::Default,
    }
}

/// The in-tree provisioner of class `class`, and where that came from.
fn in_tree_class(
    class: &str,
    policy: &Policy,
    classes: &dyn KnownClasses,
    translator: &Translator,
) -> Option<(String, &'static str)> {
    if let Some(provisioner) = policy.in_tree_class_provisioner(class) {
        return Some((
            provisioner.to_owned(),
            "listed as in-tree by the webhook policy",
        ));
    }
    classes
        .provisioner(class)
        .filter(|p| translator.is_migratable_in_tree_plugin(p))
        .map(|p| (p, "in-tree"))
}

/// Reports a claim on an in-tree class. `name` says how to call the claim in the message
/// (a PVC, or a StatefulSet's claim template); `classes` is what is known of the cluster's
/// StorageClasses ([`super::NoClasses`] without cluster access).
pub fn check(
    claim: &PersistentVolumeClaim,
    name: ObjectName<'_>,
    policy: &Policy,
    classes: &dyn KnownClasses,
    translator: &Translator,
) -> Option<Finding> {
    let by_class = match claim_class(claim) {
        ClaimClass::Named(class) => in_tree_class(class, policy, classes, translator)
            .map(|(p, how)| (format!("uses StorageClass {class:?} ({how}: {p})"), p)),
        ClaimClass::Default => classes.default_class().and_then(|(class, _)| {
            in_tree_class(&class, policy, classes, translator).map(|(p, how)| {
                (
                    format!(
                        "has no class, so gets the default StorageClass {class:?} ({how}: {p})"
                    ),
                    p,
                )
            })
        }),
        ClaimClass::Empty => None,
    };
    let (because, in_tree) = match by_class {
        Some(found) => found,
        None => {
            let annotations = claim.metadata.annotations.as_ref();
            let (key, provisioner) = STORAGE_PROVISIONER_ANNOTATIONS.iter().find_map(|key| {
                annotations
                    .and_then(|a: &BTreeMap<String, String>| a.get(*key))
                    .filter(|p| translator.is_migratable_in_tree_plugin(p))
                    .map(|p| (*key, p.clone()))
            })?;
            (
                format!("is provisioned by the in-tree plugin {provisioner} (annotation {key})"),
                provisioner,
            )
        }
    };
    let instead = match translator.csi_driver_for_in_tree(&in_tree) {
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
    use crate::rules::NoClasses;
    use crate::rules::fixtures::{pvc, storage_class};
    use k8s_openapi::api::storage::v1::StorageClass;
    use serde_json::{Value, json};

    fn name() -> ObjectName<'static> {
        ObjectName {
            kind: "PersistentVolumeClaim",
            namespace: Some("ns"),
            name: "data",
        }
    }

    fn assert_finding(got: Option<Finding>, needles: &[&str], case: &str) {
        let got = got.unwrap_or_else(|| panic!("{case}: no finding"));
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
        assert!(got.message.len() <= 256, "{}", got.message);
        for needle in needles {
            assert!(got.message.contains(needle), "{case}: {}", got.message);
        }
    }

    #[test]
    fn by_policy_names_and_annotations() {
        let t = Translator::new();
        let policy = Policy::from_yaml("inTreeStorageClasses:\n  standard: kubernetes.io/gce-pd\n  thin: kubernetes.io/vsphere-volume\n").unwrap();
        type Case<'a> = (Option<&'a str>, Value, Option<Vec<&'a str>>);
        let cases: Vec<Case<'_>> = vec![
            (None, json!({}), None),
            (Some("premium-rwo"), json!({}), None),
            (Some(""), json!({}), None),
            (
                Some("standard"),
                json!({}),
                Some(vec![
                    "uses StorageClass \"standard\" (listed as in-tree by the webhook policy: kubernetes.io/gce-pd)",
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
            // The annotation wins over the field, as in Kubernetes.
            (
                Some("premium-rwo"),
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
            let case = format!("{class:?} {annotations}");
            let got = check(&pvc(class, annotations), name(), &policy, &NoClasses, &t);
            match want {
                None => assert!(got.is_none(), "{case}: {got:?}"),
                Some(needles) => assert_finding(got, &needles, &case),
            }
        }
    }

    fn class(name: &str, provisioner: &str, default: Option<&str>, created: &str) -> StorageClass {
        let mut sc = storage_class(provisioner, json!({}));
        sc.metadata.name = Some(name.to_owned());
        sc.metadata.creation_timestamp = Some(
            k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(created.parse().unwrap()),
        );
        if let Some(key) = default {
            sc.metadata.annotations = Some([(key.to_owned(), "true".to_owned())].into());
        }
        sc
    }

    #[test]
    fn by_the_cluster_classes() {
        let t = Translator::new();
        let cluster = vec![
            class(
                "standard",
                "pd.csi.storage.gke.io",
                None,
                "2024-01-01T00:00:00Z",
            ),
            class(
                "old-disks",
                "kubernetes.io/gce-pd",
                None,
                "2024-01-01T00:00:00Z",
            ),
            class("nfs", "example.com/nfs", None, "2024-01-01T00:00:00Z"),
            class(
                "legacy-default",
                "kubernetes.io/aws-ebs",
                Some(crate::rules::BETA_DEFAULT_CLASS_ANNOTATION),
                "2024-01-01T00:00:00Z",
            ),
        ];
        let no_policy = Policy::default();
        let cases: Vec<(Option<&str>, Option<Vec<&str>>)> = vec![
            (
                Some("old-disks"),
                Some(vec![
                    "uses StorageClass \"old-disks\" (in-tree: kubernetes.io/gce-pd)",
                    "use a StorageClass whose provisioner is pd.csi.storage.gke.io",
                ]),
            ),
            (Some("standard"), None),
            (Some("nfs"), None),
            (Some("unknown"), None),
            (Some(""), None),
            (
                None,
                Some(vec![
                    "has no class, so gets the default StorageClass \"legacy-default\" (in-tree: kubernetes.io/aws-ebs)",
                    "ebs.csi.aws.com",
                ]),
            ),
        ];
        for (class_name, want) in cases {
            let case = format!("{class_name:?}");
            let got = check(
                &pvc(class_name, json!({})),
                name(),
                &no_policy,
                &cluster,
                &t,
            );
            match want {
                None => assert!(got.is_none(), "{case}: {got:?}"),
                Some(needles) => assert_finding(got, &needles, &case),
            }
        }
        // The policy's names override the cluster: a class listed there is in-tree with the
        // listed provisioner even when the cluster says otherwise.
        let policy =
            Policy::from_yaml("inTreeStorageClasses:\n  standard: kubernetes.io/vsphere-volume\n")
                .unwrap();
        let got = check(
            &pvc(Some("standard"), json!({})),
            name(),
            &policy,
            &cluster,
            &t,
        );
        assert_finding(
            got,
            &[
                "listed as in-tree by the webhook policy",
                "csi.vsphere.vmware.com",
            ],
            "override",
        );

        // A newer CSI default class takes over from the older in-tree one.
        let mut newer = cluster.clone();
        newer.push(class(
            "csi-default",
            "ebs.csi.aws.com",
            Some(crate::rules::DEFAULT_CLASS_ANNOTATION),
            "2025-01-01T00:00:00Z",
        ));
        assert!(check(&pvc(None, json!({})), name(), &no_policy, &newer, &t).is_none());
        // "false" is not default.
        let mut not_default = cluster.clone();
        not_default[3].metadata.annotations = Some(
            [(
                crate::rules::BETA_DEFAULT_CLASS_ANNOTATION.to_owned(),
                "false".to_owned(),
            )]
            .into(),
        );
        assert!(check(&pvc(None, json!({})), name(), &no_policy, &not_default, &t).is_none());
    }
}
