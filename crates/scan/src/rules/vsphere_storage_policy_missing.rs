//! `VSPHERE_STORAGE_POLICY_MISSING`: an in-tree vSphere class names a storage policy vCenter does not have.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, class_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereStoragePolicyMissing;

impl Rule for VsphereStoragePolicyMissing {
    fn code(&self) -> &'static str {
        "VSPHERE_STORAGE_POLICY_MISSING"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StorageClass]
    }
    fn description(&self) -> &'static str {
        "With --vcenter: an in-tree vSphere class's storagePolicyName is not a storage policy in vCenter."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let Some(known) = view
            .snapshot
            .vcenter
            .as_ref()
            .and_then(|f| f.storage_policies.as_ref())
        else {
            return;
        };
        let mut classes: Vec<_> = view
            .storage_classes
            .iter()
            .filter(|(_, sc)| sc.provisioner == vsphere::PLUGIN_NAME)
            .collect();
        classes.sort_by_key(|(name, _)| **name);
        for (name, sc) in classes {
            // in-tree parameter keys are case-insensitive
            let policy = sc
                .parameters
                .iter()
                .flatten()
                .find(|(key, _)| key.eq_ignore_ascii_case("storagePolicyName"))
                .map(|(_, value)| value.as_str())
                .filter(|value| !value.is_empty());
            if let Some(policy) = policy
                && !known.contains(policy)
            {
                out.push(
                    self.finding(
                        class_object(name),
                        format!(
                            "parameters.storagePolicyName {policy:?} is not a storage policy in vCenter."
                        ),
                        "Create the policy in vCenter or give it back its old name: the CSI driver resolves migrated volumes' policy by name.".to_owned(),
                    )
                    .for_plugin(vsphere::PLUGIN_NAME),
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
    use crate::snapshot::VcenterFacts;

    #[test]
    fn table() {
        let known = Some(["vSAN Default Storage Policy".to_owned()].into());
        let cases: &[(&str, serde_json::Value, bool, &[&str])] = &[
            (
                "known policy",
                json!({"storagePolicyName": "vSAN Default Storage Policy"}),
                true,
                &[],
            ),
            (
                "unknown policy",
                json!({"storagepolicyname": "gold"}),
                true,
                &["StorageClass/thin"],
            ),
            (
                "no policy parameter",
                json!({"diskformat": "thin"}),
                true,
                &[],
            ),
            (
                "policies not listed",
                json!({"storagePolicyName": "gold"}),
                false,
                &[],
            ),
        ];
        for (name, parameters, listed, expected) in cases {
            let mut snapshot = snapshot(&[
                storage_class("thin", "kubernetes.io/vsphere-volume", parameters.clone()),
                storage_class(
                    "gp2",
                    "kubernetes.io/aws-ebs",
                    json!({"storagePolicyName": "x"}),
                ),
            ]);
            snapshot.vcenter = Some(VcenterFacts {
                storage_policies: if *listed { known.clone() } else { None },
                ..VcenterFacts::default()
            });
            let got: Vec<String> = findings_in(&VsphereStoragePolicyMissing, &snapshot)
                .iter()
                .map(|f| f.object.to_string())
                .collect();
            assert_eq!(got, *expected, "{name}");
        }
    }
}
