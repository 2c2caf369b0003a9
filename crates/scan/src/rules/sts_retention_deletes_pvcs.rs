//! `STS_RETENTION_DELETES_PVCS`: a StatefulSet on in-tree storage whose `persistentVolumeClaimRetentionPolicy` deletes claims.

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::{ClusterView, WorkloadKind};

/// See the module documentation.
#[derive(Debug)]
pub struct StsRetentionDeletesPvcs;

impl Rule for StsRetentionDeletesPvcs {
    fn code(&self) -> &'static str {
        "STS_RETENTION_DELETES_PVCS"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StatefulSet]
    }
    fn description(&self) -> &'static str {
        "A StatefulSet deletes its claims when deleted or scaled down (whenDeleted/whenScaled: Delete)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for w in view
            .workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::StatefulSet)
        {
            let Some(policy) = w
                .stateful_set
                .and_then(|s| s.spec.persistent_volume_claim_retention_policy.as_ref())
            else {
                continue;
            };
            let mut deleting = Vec::new();
            if policy.when_deleted.as_deref() == Some("Delete") {
                deleting.push("whenDeleted: Delete");
            }
            if policy.when_scaled.as_deref() == Some("Delete") {
                deleting.push("whenScaled: Delete");
            }
            if deleting.is_empty() {
                continue;
            }
            out.push(self.finding(
                w.object.clone(),
                format!(
                    "StatefulSet {}/{} has persistentVolumeClaimRetentionPolicy {}: its claims carry owner references, and deleting the set without orphaning (or scaling it down) deletes them, and with reclaim policy Delete their disks.",
                    w.namespace,
                    w.object.name,
                    deleting.join(", ")
                ),
                "csi-migrate orphan-deletes the set after setting Retain on every PV; do not delete or scale the set by hand during migration, or set the policy to Retain/Retain first.".to_owned(),
            ));
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
        let with_policy = |policy: serde_json::Value| {
            let mut sts = stateful_set("db", "pg", 3, "gp2");
            sts["spec"]["persistentVolumeClaimRetentionPolicy"] = policy;
            vec![
                storage_class("gp2", "kubernetes.io/aws-ebs", json!({})),
                sts,
            ]
        };
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "retain",
                with_policy(json!({"whenDeleted": "Retain", "whenScaled": "Retain"})),
                &[],
            ),
            (
                "when deleted",
                with_policy(json!({"whenDeleted": "Delete"})),
                &["StatefulSet/db/pg"],
            ),
            (
                "when scaled",
                with_policy(json!({"whenScaled": "Delete"})),
                &["StatefulSet/db/pg"],
            ),
            ("unset", with_policy(json!(null)), &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&StsRetentionDeletesPvcs, input),
                *expected,
                "{name}"
            );
        }
    }
}
