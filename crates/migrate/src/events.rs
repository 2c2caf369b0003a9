//! Kubernetes Events on the migrated workload when a run starts, completes or fails: best-effort, never a reason to stop.
//!
//! One Event per phase of a run, not per step or replica: each is an API write, and the
//! budget (ARCHITECTURE §7) is at most 8 writes per volume plus a constant per workload.
//! Per-step progress is the CLI's job (`-o json`). A run that has nothing left to do
//! posts nothing. Reasons, for `kubectl get events --field-selector reason=…`:
//!
//! | reason | type | when |
//! |---|---|---|
//! | `MigrationStarted` / `MigrationResumed` | Normal | the first step of this invocation starts (resumed: the journal had steps done) |
//! | `MigrationCompleted` | Normal | every step is done |
//! | `MigrationFailed` | Warning | a step failed; the message names it and says how to continue |
//! | `RollbackStarted` / `RollbackResumed` / `RollbackCompleted` / `RollbackFailed` | as above | the same for `rollback` |
//!
//! The involved object is the workload (StatefulSet, Deployment or claim) with the uid
//! it has when the Event is posted, read just before: a StatefulSet is deleted and
//! recreated during the run, and `kubectl describe` matches Events by uid, so the
//! completion Event shows on the recreated set. While it does not exist the uid is left
//! out.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{Event, EventSource, ObjectReference, PersistentVolumeClaim};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, Time};
use k8s_openapi::jiff::Timestamp;
use kube::api::{Api, PostParams};
use kube::{Client, Resource};
use thiserror::Error;

use crate::plan::Plan;
use crate::runner::{RunError, RunSummary};
use crate::snapshot::WorkloadKind;
use crate::workdir::Stage;

/// `source.component` and `reportingComponent` of every Event we post.
pub const REPORTING_COMPONENT: &str = "csi-migrate";
/// Longest the lookup and post of one Event may take before it is given up.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest prefix of the workload name in an Event's name (a name is at most 253 characters).
const EVENT_NAME_PREFIX_MAX: usize = 200;

/// Why an Event could not be posted (logged, never returned to the run's caller).
#[derive(Debug, Error)]
pub enum EventError {
    /// The API refused or failed the request.
    #[error("posting event {reason} on {workload}: {source}")]
    Api {
        /// The Event's reason.
        reason: &'static str,
        /// `kind namespace/name` of the workload.
        workload: String,
        /// The client error.
        source: kube::Error,
    },
    /// The API did not answer in time.
    #[error("posting event {reason} on {workload}: no answer after {EVENT_TIMEOUT:?}")]
    Timeout {
        /// The Event's reason.
        reason: &'static str,
        /// `kind namespace/name` of the workload.
        workload: String,
    },
}

/// A phase of a run worth an Event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Phase {
    /// The first step this invocation runs is about to start.
    Started {
        /// Migration or rollback.
        stage: Stage,
        /// Index of that step (0 for a fresh run).
        first_step: usize,
        /// Steps in the plan.
        total: usize,
    },
    /// Every step is done.
    Completed {
        /// Migration or rollback.
        stage: Stage,
        /// Steps this invocation ran.
        executed: usize,
        /// Steps in the plan.
        total: usize,
    },
    /// The run stopped with an error (the journal allows resuming).
    Failed {
        /// Migration or rollback.
        stage: Stage,
        /// The error.
        message: String,
    },
}

impl Phase {
    fn stage(&self) -> Stage {
        match self {
            Self::Started { stage, .. }
            | Self::Completed { stage, .. }
            | Self::Failed { stage, .. } => *stage,
        }
    }

    /// The Event's `reason`.
    pub fn reason(&self) -> &'static str {
        let rollback = self.stage() == Stage::Rollback;
        match (self, rollback) {
            (Self::Started { first_step: 0, .. }, false) => "MigrationStarted",
            (Self::Started { .. }, false) => "MigrationResumed",
            (Self::Completed { .. }, false) => "MigrationCompleted",
            (Self::Failed { .. }, false) => "MigrationFailed",
            (Self::Started { first_step: 0, .. }, true) => "RollbackStarted",
            (Self::Started { .. }, true) => "RollbackResumed",
            (Self::Completed { .. }, true) => "RollbackCompleted",
            (Self::Failed { .. }, true) => "RollbackFailed",
        }
    }

    /// `Normal`, or `Warning` for a failure.
    pub fn event_type(&self) -> &'static str {
        match self {
            Self::Failed { .. } => "Warning",
            _ => "Normal",
        }
    }

    /// The Event's `message`.
    pub fn message(&self, plan: &Plan) -> String {
        let target = &plan.target_storage_class;
        match self {
            Self::Started {
                stage: Stage::Migration,
                first_step,
                total,
            } => format!(
                "csi-migrate is moving the volumes to CSI storageclass {target} (driver {}), same disks: step {} of {total}",
                plan.driver,
                first_step + 1
            ),
            Self::Started {
                stage: Stage::Rollback,
                first_step,
                total,
            } => format!(
                "csi-migrate is restoring the original in-tree objects (same disks): step {} of {total}",
                first_step + 1
            ),
            Self::Completed {
                stage: Stage::Migration,
                executed,
                total,
            } => format!(
                "every volume is on CSI storageclass {target} (driver {}); {executed} of {total} steps run by this invocation",
                plan.driver
            ),
            Self::Completed {
                stage: Stage::Rollback,
                executed,
                total,
            } => format!(
                "the original in-tree objects are back; {executed} of {total} steps run by this invocation"
            ),
            Self::Failed {
                stage: Stage::Migration,
                message,
            } => format!(
                "{message}; the work dir's journal records how far it got, `csi-migrate resume` continues"
            ),
            Self::Failed {
                stage: Stage::Rollback,
                message,
            } => format!("{message}; `csi-migrate rollback` continues"),
        }
    }
}

/// The Phase for how a run ended, or None when it is not worth an Event: nothing was
/// left to do, or it never started (the work dir or the workload lock is another run's).
pub fn outcome_phase(stage: Stage, result: &Result<RunSummary, RunError>) -> Option<Phase> {
    match result {
        Ok(summary) if summary.executed == 0 => None,
        Ok(summary) => Some(Phase::Completed {
            stage,
            executed: summary.executed,
            total: summary.total,
        }),
        Err(RunError::WorkDir(_) | RunError::WorkloadLocked { .. } | RunError::Lock { .. }) => None,
        Err(e) => Some(Phase::Failed {
            stage,
            message: e.to_string(),
        }),
    }
}

/// `(apiVersion, kind)` of the workload.
fn workload_type(kind: WorkloadKind) -> (&'static str, &'static str) {
    match kind {
        WorkloadKind::StatefulSet => ("apps/v1", "StatefulSet"),
        WorkloadKind::Deployment => ("apps/v1", "Deployment"),
        WorkloadKind::PersistentVolumeClaim => ("v1", "PersistentVolumeClaim"),
    }
}

/// The Event for `phase`, about the plan's workload with uid `uid` (None while it does
/// not exist), at `now`. Pure.
pub fn build_event(plan: &Plan, phase: &Phase, uid: Option<String>, now: SystemTime) -> Event {
    let (api_version, kind) = workload_type(plan.kind);
    let nanos = now
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_nanos();
    let prefix: String = plan.name.chars().take(EVENT_NAME_PREFIX_MAX).collect();
    let time = Timestamp::try_from(now).ok().map(Time);
    Event {
        metadata: ObjectMeta {
            // As client-go's recorder names them: the object, a dot, the time in hex.
            name: Some(format!("{prefix}.{nanos:x}")),
            namespace: Some(plan.namespace.clone()),
            ..ObjectMeta::default()
        },
        involved_object: ObjectReference {
            api_version: Some(api_version.to_owned()),
            kind: Some(kind.to_owned()),
            name: Some(plan.name.clone()),
            namespace: Some(plan.namespace.clone()),
            uid,
            ..ObjectReference::default()
        },
        reason: Some(phase.reason().to_owned()),
        message: Some(phase.message(plan)),
        type_: Some(phase.event_type().to_owned()),
        action: Some(
            match phase.stage() {
                Stage::Migration => "Migrate",
                Stage::Rollback => "Rollback",
            }
            .to_owned(),
        ),
        source: Some(EventSource {
            component: Some(REPORTING_COMPONENT.to_owned()),
            host: None,
        }),
        reporting_component: Some(REPORTING_COMPONENT.to_owned()),
        first_timestamp: time.clone(),
        last_timestamp: time,
        count: Some(1),
        ..Event::default()
    }
}

/// The workload's uid now, if it exists and can be read.
async fn current_uid(client: &Client, plan: &Plan) -> Option<String> {
    async fn uid_of<K>(client: &Client, namespace: &str, name: &str) -> Option<String>
    where
        K: Resource<Scope = k8s_openapi::NamespaceResourceScope>
            + Clone
            + serde::de::DeserializeOwned
            + std::fmt::Debug,
        K::DynamicType: Default,
    {
        let api: Api<K> = Api::namespaced(client.clone(), namespace);
        api.get_opt(name)
            .await
            .ok()
            .flatten()
            .and_then(|o| o.meta().uid.clone())
    }
    let (namespace, name) = (plan.namespace.as_str(), plan.name.as_str());
    match plan.kind {
        WorkloadKind::StatefulSet => uid_of::<StatefulSet>(client, namespace, name).await,
        WorkloadKind::Deployment => uid_of::<Deployment>(client, namespace, name).await,
        WorkloadKind::PersistentVolumeClaim => {
            uid_of::<PersistentVolumeClaim>(client, namespace, name).await
        }
    }
}

async fn post(client: &Client, plan: &Plan, phase: &Phase) -> Result<(), EventError> {
    let workload = || format!("{} {}/{}", plan.kind, plan.namespace, plan.name);
    let reason = phase.reason();
    let attempt = async {
        let uid = current_uid(client, plan).await;
        let event = build_event(plan, phase, uid, SystemTime::now());
        let events: Api<Event> = Api::namespaced(client.clone(), &plan.namespace);
        events.create(&PostParams::default(), &event).await
    };
    match tokio::time::timeout(EVENT_TIMEOUT, attempt).await {
        Ok(Ok(_)) => Ok(()),
        Ok(Err(source)) => Err(EventError::Api {
            reason,
            workload: workload(),
            source,
        }),
        Err(_) => Err(EventError::Timeout {
            reason,
            workload: workload(),
        }),
    }
}

/// Posts the Event for `phase` on the plan's workload. Best-effort: a failure is logged
/// and the run goes on.
pub async fn record(client: &Client, plan: &Plan, phase: &Phase) {
    if let Err(error) = Box::pin(post(client, plan, phase)).await {
        tracing::warn!(%error, "kubernetes event not recorded; the run goes on");
    }
}

/// Posts `MigrationStarted`/`MigrationResumed` (or the rollback's) when steps are left.
pub async fn record_start(client: Client, plan: &Plan, stage: Stage, first_step: usize) {
    let total = plan.steps.len();
    if first_step < total {
        let phase = Phase::Started {
            stage,
            first_step,
            total,
        };
        record(&client, plan, &phase).await;
    }
}

/// Posts the Event for how a run ended, when it is worth one ([`outcome_phase`]).
pub async fn record_outcome(
    client: Client,
    plan: &Plan,
    stage: Stage,
    result: &Result<RunSummary, RunError>,
) {
    if let Some(phase) = outcome_phase(stage, result) {
        record(&client, plan, &phase).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A plan with no steps, as plan.json would hold it (serde: independent of new fields).
    fn plan(kind: WorkloadKind) -> Plan {
        let plan = serde_json::json!({
            "apiVersion": "csi-migrate.plan/v1", "kind": kind, "namespace": "shop", "name": "web",
            "uid": "", "targetStorageClass": "gp2-csi", "driver": "ebs.csi.aws.com",
            "batches": [], "steps": [], "warnings": []});
        serde_json::from_value(plan).expect("a valid plan")
    }

    #[test]
    fn reasons_tell_fresh_from_resumed_runs_and_migration_from_rollback() {
        let started = |stage, first_step| Phase::Started {
            stage,
            first_step,
            total: 33,
        };
        assert_eq!(started(Stage::Migration, 0).reason(), "MigrationStarted");
        assert_eq!(started(Stage::Migration, 7).reason(), "MigrationResumed");
        assert_eq!(started(Stage::Rollback, 0).reason(), "RollbackStarted");
        assert_eq!(started(Stage::Rollback, 3).reason(), "RollbackResumed");
        let failed = Phase::Failed {
            stage: Stage::Rollback,
            message: "boom".to_owned(),
        };
        assert_eq!(failed.reason(), "RollbackFailed");
        assert_eq!(failed.event_type(), "Warning");
        assert_eq!(started(Stage::Migration, 0).event_type(), "Normal");
    }

    #[test]
    fn event_is_about_the_workload_with_its_current_uid_and_a_unique_name() {
        let phase = Phase::Completed {
            stage: Stage::Migration,
            executed: 33,
            total: 33,
        };
        let at = UNIX_EPOCH + Duration::from_secs(1_800_000_000);
        let event = build_event(
            &plan(WorkloadKind::StatefulSet),
            &phase,
            Some("u-1".into()),
            at,
        );
        let object = &event.involved_object;
        assert_eq!(object.api_version.as_deref(), Some("apps/v1"));
        assert_eq!(object.kind.as_deref(), Some("StatefulSet"));
        assert_eq!(object.name.as_deref(), Some("web"));
        assert_eq!(object.namespace.as_deref(), Some("shop"));
        assert_eq!(object.uid.as_deref(), Some("u-1"));
        assert_eq!(event.metadata.namespace.as_deref(), Some("shop"));
        assert_eq!(
            event.metadata.name.as_deref(),
            Some(format!("web.{:x}", 1_800_000_000_u128 * 1_000_000_000).as_str())
        );
        assert_eq!(event.reason.as_deref(), Some("MigrationCompleted"));
        assert!(
            event
                .message
                .as_deref()
                .is_some_and(|m| m.contains("gp2-csi") && m.contains("33 of 33"))
        );
        assert_eq!(event.count, Some(1));
        assert!(event.first_timestamp.is_some());
        assert_eq!(
            event.source.and_then(|s| s.component).as_deref(),
            Some(REPORTING_COMPONENT)
        );
    }

    #[test]
    fn claims_and_deployments_are_named_by_their_own_kind() {
        let phase = Phase::Started {
            stage: Stage::Migration,
            first_step: 0,
            total: 9,
        };
        let claim = build_event(
            &plan(WorkloadKind::PersistentVolumeClaim),
            &phase,
            None,
            UNIX_EPOCH,
        );
        assert_eq!(claim.involved_object.api_version.as_deref(), Some("v1"));
        assert_eq!(
            claim.involved_object.kind.as_deref(),
            Some("PersistentVolumeClaim")
        );
        assert_eq!(claim.involved_object.uid, None);
        let deployment = build_event(&plan(WorkloadKind::Deployment), &phase, None, UNIX_EPOCH);
        assert_eq!(
            deployment.involved_object.kind.as_deref(),
            Some("Deployment")
        );
    }

    #[test]
    fn runs_with_nothing_to_do_or_locked_out_post_nothing() {
        let idle: Result<RunSummary, RunError> = Ok(RunSummary {
            executed: 0,
            total: 33,
        });
        assert_eq!(outcome_phase(Stage::Migration, &idle), None);
        let locked: Result<RunSummary, RunError> = Err(RunError::WorkloadLocked {
            namespace: "shop".into(),
            lock: "l".into(),
            holder: "/elsewhere".into(),
        });
        assert_eq!(outcome_phase(Stage::Migration, &locked), None);
        let stopped: Result<RunSummary, RunError> = Err(RunError::Stopped(4));
        assert!(matches!(
            outcome_phase(Stage::Migration, &stopped),
            Some(Phase::Failed { .. })
        ));
    }
}
