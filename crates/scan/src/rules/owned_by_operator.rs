//! `OWNED_BY_OPERATOR`: a workload (or its claim) on in-tree storage is owned by a custom resource, whose operator would fight the migration.

use k8s_openapi::apimachinery::pkg::apis::meta::v1::OwnerReference;

use crate::report::{Finding, ObjectRef, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// API groups whose owners are Kubernetes' own controllers.
const BUILT_IN_GROUPS: &[&str] = &["", "apps", "batch"];

/// The first owner reference that is not a built-in controller.
fn operator_owner(owners: Option<&Vec<OwnerReference>>) -> Option<&OwnerReference> {
    owners?.iter().find(|o| {
        let group = o.api_version.rsplit_once('/').map(|(g, _)| g).unwrap_or("");
        !BUILT_IN_GROUPS.contains(&group)
    })
}

/// See the module documentation.
#[derive(Debug)]
pub struct OwnedByOperator;

impl Rule for OwnedByOperator {
    fn code(&self) -> &'static str {
        "OWNED_BY_OPERATOR"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[
            ResourceKind::StatefulSet,
            ResourceKind::Deployment,
            ResourceKind::DaemonSet,
            ResourceKind::ReplicaSet,
            ResourceKind::Job,
            ResourceKind::CronJob,
            ResourceKind::Pod,
            ResourceKind::PersistentVolumeClaim,
        ]
    }
    fn description(&self) -> &'static str {
        "A workload or claim on in-tree storage is owned by a custom resource whose operator would recreate what the migration removes."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for w in &view.workloads {
            let mut owned: Vec<(ObjectRef, &OwnerReference)> = Vec::new();
            if let Some(owner) = operator_owner(w.meta.owner_references.as_ref()) {
                owned.push((w.object.clone(), owner));
            }
            for claim in &w.in_tree_claims {
                if let Some(pvc) = view.claims.get(&(w.namespace, claim.as_str()))
                    && let Some(owner) = operator_owner(pvc.metadata.owner_references.as_ref())
                    && w.kind != crate::view::WorkloadKind::PersistentVolumeClaim
                {
                    owned.push((
                        ObjectRef::namespaced("PersistentVolumeClaim", w.namespace, claim),
                        owner,
                    ));
                }
            }
            for (object, owner) in owned {
                out.push(self.finding(
                    object.clone(),
                    format!(
                        "{object} is owned by {} {:?} ({}): its operator recreates or reverts the objects csi-migrate deletes and recreates, which can provision an empty volume in place of the migrated one.",
                        owner.kind, owner.name, owner.api_version
                    ),
                    format!(
                        "Pause or scale down the operator managing {} {:?} for the migration (or migrate through the operator's own storage class change), then re-enable it.",
                        owner.kind, owner.name
                    ),
                ));
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
        let owned_by = |api_version: &str, kind: &str| {
            let mut sts = stateful_set("db", "pg", 3, "gp2");
            sts["metadata"]["ownerReferences"] = json!([{"apiVersion": api_version, "kind": kind,
                "name": "main", "uid": "u", "controller": true}]);
            vec![
                storage_class("gp2", "kubernetes.io/aws-ebs", json!({})),
                sts,
            ]
        };
        let mut owned_claim = pvc("app", "c", "a");
        owned_claim["metadata"]["ownerReferences"] = json!([{"apiVersion": "acid.zalan.do/v1",
            "kind": "postgresql", "name": "main", "uid": "u"}]);
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "postgres operator",
                owned_by(
                    "postgres-operator.crunchydata.com/v1beta1",
                    "PostgresCluster",
                ),
                &["StatefulSet/db/pg"],
            ),
            (
                "apps owner is built in",
                owned_by("apps/v1", "Deployment"),
                &[],
            ),
            (
                "no owner",
                owned_by("", "").into_iter().take(1).collect(),
                &[],
            ),
            (
                "claim owned by a CR",
                vec![
                    ebs_pv("a", None),
                    owned_claim,
                    deployment("app", "web", 2, "c"),
                ],
                &["PersistentVolumeClaim/app/c"],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&OwnedByOperator, input), *expected, "{name}");
        }
    }
}
