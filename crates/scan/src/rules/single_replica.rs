//! `SINGLE_REPLICA`: a workload on in-tree storage with one replica, so migrating it means downtime.

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::{ClusterView, WorkloadKind};

/// See the module documentation.
#[derive(Debug)]
pub struct SingleReplica;

impl Rule for SingleReplica {
    fn code(&self) -> &'static str {
        "SINGLE_REPLICA"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[
            ResourceKind::StatefulSet,
            ResourceKind::Deployment,
            ResourceKind::ReplicaSet,
            ResourceKind::Pod,
        ]
    }
    fn description(&self) -> &'static str {
        "A workload on in-tree storage runs one replica: its migration takes it down for a while."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for w in &view.workloads {
            let single = match w.kind {
                WorkloadKind::Pod => true,
                WorkloadKind::StatefulSet | WorkloadKind::Deployment | WorkloadKind::ReplicaSet => {
                    w.replicas.is_some_and(|r| r <= 1)
                }
                _ => false,
            };
            if !single {
                continue;
            }
            out.push(self.finding(
                w.object.clone(),
                format!(
                    "{} runs a single replica on in-tree storage: while its claim is converted nothing serves (typically a minute or two per volume).",
                    w.object
                ),
                "Plan a maintenance window and pass --allow-downtime to csi-migrate migrate, or scale out first if the application supports it.".to_owned(),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "one",
                vec![
                    ebs_pv("a", None),
                    pvc("app", "c", "a"),
                    deployment("app", "web", 1, "c"),
                ],
                &["Deployment/app/web"],
            ),
            (
                "three",
                vec![
                    ebs_pv("a", None),
                    pvc("app", "c", "a"),
                    deployment("app", "web", 3, "c"),
                ],
                &[],
            ),
            (
                "bare pod",
                vec![
                    ebs_pv("a", None),
                    pvc("app", "c", "a"),
                    pod("app", "p", "n1", "c", None),
                ],
                &["Pod/app/p"],
            ),
            (
                "not on in-tree storage",
                vec![pvc("app", "c", "csi-pv"), deployment("app", "web", 1, "c")],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&SingleReplica, input), *expected, "{name}");
        }
    }
}
