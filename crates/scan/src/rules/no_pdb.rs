//! `NO_PDB`: a replicated workload on in-tree storage without a PodDisruptionBudget.

use std::collections::HashMap;

use k8s_openapi::api::policy::v1::PodDisruptionBudget;

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::{ClusterView, WorkloadKind, selector_matches};

/// See the module documentation.
#[derive(Debug)]
pub struct NoPdb;

impl Rule for NoPdb {
    fn code(&self) -> &'static str {
        "NO_PDB"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[
            ResourceKind::StatefulSet,
            ResourceKind::Deployment,
            ResourceKind::ReplicaSet,
        ]
    }
    fn requires(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PodDisruptionBudget]
    }
    fn description(&self) -> &'static str {
        "No PodDisruptionBudget covers a replicated workload on in-tree storage."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let mut by_namespace: HashMap<&str, Vec<&PodDisruptionBudget>> = HashMap::new();
        for pdb in &view.pod_disruption_budgets {
            by_namespace
                .entry(pdb.metadata.namespace.as_deref().unwrap_or("default"))
                .or_default()
                .push(pdb);
        }
        for w in &view.workloads {
            let replicated = matches!(
                w.kind,
                WorkloadKind::StatefulSet | WorkloadKind::Deployment | WorkloadKind::ReplicaSet
            ) && w.replicas.is_some_and(|r| r > 1);
            if !replicated {
                continue;
            }
            let empty = Default::default();
            let labels = w.pod_labels.unwrap_or(&empty);
            let covered = by_namespace
                .get(w.namespace)
                .into_iter()
                .flatten()
                .any(|pdb| {
                    selector_matches(pdb.spec.as_ref().and_then(|s| s.selector.as_ref()), labels)
                });
            if covered {
                continue;
            }
            out.push(self.finding(
                w.object.clone(),
                format!(
                    "No PodDisruptionBudget selects the pods of {}: node drains and other disruptions during the rolling migration can take down more than the one replica being migrated.",
                    w.object
                ),
                "Create a PodDisruptionBudget (e.g. maxUnavailable: 1) selecting the workload's pods before migrating.".to_owned(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    fn pdb(ns: &str, selector: serde_json::Value) -> serde_json::Value {
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
               "metadata": {"name": "pdb", "namespace": ns},
               "spec": {"maxUnavailable": 1, "selector": selector}})
    }

    #[test]
    fn table() {
        let base = || {
            vec![
                ebs_pv("a", None),
                pvc("app", "c", "a"),
                deployment("app", "web", 3, "c"),
            ]
        };
        let with = |extra: serde_json::Value| {
            let mut v = base();
            v.push(extra);
            v
        };
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("none", base(), &["Deployment/app/web"]),
            (
                "matching labels",
                with(pdb("app", json!({"matchLabels": {"app": "web"}}))),
                &[],
            ),
            (
                "matching expression",
                with(pdb(
                    "app",
                    json!({"matchExpressions": [{"key": "app", "operator": "In", "values": ["web"]}]}),
                )),
                &[],
            ),
            (
                "other namespace",
                with(pdb("other", json!({"matchLabels": {"app": "web"}}))),
                &["Deployment/app/web"],
            ),
            (
                "other labels",
                with(pdb("app", json!({"matchLabels": {"app": "db"}}))),
                &["Deployment/app/web"],
            ),
            (
                "empty selector selects all",
                with(pdb("app", json!({}))),
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&NoPdb, input), *expected, "{name}");
        }
    }
}
