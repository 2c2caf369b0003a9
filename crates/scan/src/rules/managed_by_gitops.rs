//! `MANAGED_BY_GITOPS`: a workload on in-tree storage is applied by Argo CD, Flux or Helm, which will re-apply the old spec.

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// (label or annotation key, value that must match or `None` for any, tool name).
const MARKERS: &[(&str, Option<&str>, &str)] = &[
    ("argocd.argoproj.io/instance", None, "Argo CD"),
    ("argocd.argoproj.io/tracking-id", None, "Argo CD"),
    ("kustomize.toolkit.fluxcd.io/name", None, "Flux"),
    ("helm.toolkit.fluxcd.io/name", None, "Flux (HelmRelease)"),
    ("app.kubernetes.io/managed-by", Some("Helm"), "Helm"),
];

/// See the module documentation.
#[derive(Debug)]
pub struct ManagedByGitops;

impl Rule for ManagedByGitops {
    fn code(&self) -> &'static str {
        "MANAGED_BY_GITOPS"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[
            ResourceKind::StatefulSet,
            ResourceKind::Deployment,
            ResourceKind::DaemonSet,
        ]
    }
    fn description(&self) -> &'static str {
        "A workload on in-tree storage is managed by Argo CD, Flux or Helm, which re-apply the in-tree spec."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for w in &view.workloads {
            let found = MARKERS.iter().find(|(key, value, _)| {
                [w.meta.labels.as_ref(), w.meta.annotations.as_ref()]
                    .into_iter()
                    .flatten()
                    .any(|m| {
                        m.get(*key)
                            .is_some_and(|v| value.is_none_or(|want| v == want))
                    })
            });
            let Some((key, _, tool)) = found else {
                continue;
            };
            out.push(self.finding(
                w.object.clone(),
                format!(
                    "{} is managed by {tool} ({key}): a sync during or after the migration re-applies the in-tree storage class (StatefulSet templates are immutable, so the sync then fails in a loop) or recreates deleted objects.",
                    w.object
                ),
                format!("Suspend {tool} syncing for this workload during the migration, and change the storage class in the source of truth before re-enabling it."),
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
        let with_meta = |field: &str, meta: serde_json::Value| {
            let mut d = deployment("app", "web", 2, "c");
            d["metadata"][field] = meta;
            vec![ebs_pv("a", None), pvc("app", "c", "a"), d]
        };
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "argo label",
                with_meta("labels", json!({"argocd.argoproj.io/instance": "web"})),
                &["Deployment/app/web"],
            ),
            (
                "helm",
                with_meta("labels", json!({"app.kubernetes.io/managed-by": "Helm"})),
                &["Deployment/app/web"],
            ),
            (
                "other manager",
                with_meta("labels", json!({"app.kubernetes.io/managed-by": "kubectl"})),
                &[],
            ),
            (
                "flux annotation",
                with_meta(
                    "annotations",
                    json!({"kustomize.toolkit.fluxcd.io/name": "apps"}),
                ),
                &["Deployment/app/web"],
            ),
            ("plain", with_meta("labels", json!({})), &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&ManagedByGitops, input), *expected, "{name}");
        }
    }
}
