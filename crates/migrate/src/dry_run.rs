//! `--dry-run`: every write of a plan sent with `dryRun=All`, so the API server runs its
//! admission, validation and authorization on each, and nothing changes.
//!
//! A dry run cannot wait for effects, because there are none: waits are skipped, a create
//! whose name the original still holds is expected to answer `AlreadyExists` (the
//! API server validates a body before it looks for the name), and the final reclaim-policy
//! patches name PVs that only a real run creates, so they are skipped. Nothing is written
//! to the work dir and no lock is taken.

use std::fmt;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::{Client, Resource};
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::json;

use crate::plan::{Plan, Step};
use crate::runner::{RunError, RunOptions, RunSummary, StepProgress, uid_precondition};
use crate::workdir::JournalEvent;

/// What the dry run did with one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DryRunOutcome {
    /// The API server accepted the write (nothing changed).
    Accepted,
    /// A create answered AlreadyExists because the original still holds the name; the
    /// body passed validation.
    AcceptedOriginalStillExists,
    /// Not sent, for the reason given: a wait, or a write on an object only a real run creates.
    Skipped(&'static str),
}

const NOTHING_TO_WAIT_FOR: &str = "skipped (dry run: nothing changed, nothing to wait for)";
const CREATED_BY_THE_RUN: &str = "skipped (dry run: the new PV exists only after a real run)";
const NOT_IN_PLAN: &str = "skipped (the plan holds no object for this step)";

impl DryRunOutcome {
    /// How the outcome reads after a step's description.
    pub fn note(self) -> &'static str {
        match self {
            Self::Accepted => "accepted (dry run)",
            Self::AcceptedOriginalStillExists => {
                "validated (dry run; the original still holds the name)"
            }
            Self::Skipped(reason) => reason,
        }
    }
}

/// Sends every write of `plan` with `dryRun=All`; the first refusal stops it with the
/// step's error. The progress callback sees each step, its description ending in the
/// outcome.
pub async fn dry_run(
    client: Client,
    plan: &Plan,
    options: &RunOptions,
) -> Result<RunSummary, RunError> {
    let api = DryRunApis::new(client, &plan.namespace);
    let total = plan.steps.len();
    for (index, step) in plan.steps.iter().enumerate() {
        let description = step.describe(plan);
        let progress = |event, description: String| {
            if let Some(progress) = &options.progress {
                progress(&StepProgress {
                    index,
                    total,
                    event,
                    step,
                    description,
                });
            }
        };
        progress(JournalEvent::Started, description.clone());
        let fail = |source: kube::Error| RunError::Api {
            index,
            description: description.clone(),
            source,
        };
        let outcome = api.send(plan, step).await.map_err(fail)?;
        tracing::info!(step = index, "{description}: {}", outcome.note());
        progress(
            JournalEvent::Done,
            format!("{description}: {}", outcome.note()),
        );
    }
    Ok(RunSummary {
        executed: total,
        total,
    })
}

struct DryRunApis {
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    volumes: Api<PersistentVolume>,
    sets: Api<StatefulSet>,
    deployments: Api<Deployment>,
}

fn is_already_exists(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 409 && status.reason == "AlreadyExists")
}

async fn create<K>(api: &Api<K>, object: &K) -> Result<DryRunOutcome, kube::Error>
where
    K: Clone + DeserializeOwned + Serialize + fmt::Debug + Resource,
{
    let params = PostParams {
        dry_run: true,
        ..Default::default()
    };
    match api.create(&params, object).await {
        Ok(_) => Ok(DryRunOutcome::Accepted),
        Err(e) if is_already_exists(&e) => Ok(DryRunOutcome::AcceptedOriginalStillExists),
        Err(e) => Err(e),
    }
}

async fn delete<K>(
    api: &Api<K>,
    name: &str,
    params: DeleteParams,
) -> Result<DryRunOutcome, kube::Error>
where
    K: Clone + DeserializeOwned + fmt::Debug + Resource,
{
    let params = DeleteParams {
        dry_run: true,
        ..params
    };
    api.delete(name, &params).await?;
    Ok(DryRunOutcome::Accepted)
}

async fn merge_patch<K>(
    api: &Api<K>,
    name: &str,
    patch: serde_json::Value,
) -> Result<DryRunOutcome, kube::Error>
where
    K: Clone + DeserializeOwned + fmt::Debug + Resource,
{
    let params = PatchParams {
        dry_run: true,
        ..Default::default()
    };
    api.patch(name, &params, &Patch::Merge(&patch)).await?;
    Ok(DryRunOutcome::Accepted)
}

impl DryRunApis {
    fn new(client: Client, namespace: &str) -> Self {
        Self {
            pods: Api::namespaced(client.clone(), namespace),
            claims: Api::namespaced(client.clone(), namespace),
            volumes: Api::all(client.clone()),
            sets: Api::namespaced(client.clone(), namespace),
            deployments: Api::namespaced(client, namespace),
        }
    }

    async fn send(&self, plan: &Plan, step: &Step) -> Result<DryRunOutcome, kube::Error> {
        match step {
            Step::RetainVolume { volume, uid } => {
                let patch = json!({"metadata": {"uid": uid},
                    "spec": {"persistentVolumeReclaimPolicy": "Retain"}});
                merge_patch(&self.volumes, volume, patch).await
            }
            Step::OrphanDeleteStatefulSet { uid } => {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Orphan),
                    ..uid_precondition(uid)
                };
                delete(&self.sets, &plan.name, params).await
            }
            Step::DeletePod { pod, uid } => delete(&self.pods, pod, uid_precondition(uid)).await,
            Step::DeleteClaim { claim, uid } => {
                delete(&self.claims, claim, uid_precondition(uid)).await
            }
            Step::DeleteVolume { volume, uid } => {
                delete(&self.volumes, volume, uid_precondition(uid)).await
            }
            Step::CreateVolume { volume } => match plan.volume_by_new_name(volume) {
                Some(planned) => create(&self.volumes, &planned.new_volume).await,
                None => Ok(DryRunOutcome::Skipped(NOT_IN_PLAN)),
            },
            Step::CreateClaim { claim } => match plan.volume_by_claim(claim) {
                Some(planned) => create(&self.claims, &planned.new_claim).await,
                None => Ok(DryRunOutcome::Skipped(NOT_IN_PLAN)),
            },
            Step::CreatePod { pod } => match plan.pod(pod) {
                Some((_, planned)) => create(&self.pods, &planned.recreated).await,
                None => Ok(DryRunOutcome::Skipped(NOT_IN_PLAN)),
            },
            Step::RecreateStatefulSet => match &plan.recreated_statefulset {
                Some(set) => create(&self.sets, set).await,
                None => Ok(DryRunOutcome::Skipped(NOT_IN_PLAN)),
            },
            Step::ScaleDeployment { replicas } => {
                let patch = json!({"metadata": {"uid": plan.uid}, "spec": {"replicas": replicas}});
                merge_patch(&self.deployments, &plan.name, patch).await
            }
            Step::AwaitClaimBound { .. }
            | Step::AwaitPodReady { .. }
            | Step::AwaitAdoption
            | Step::AwaitClaimsReleased
            | Step::AwaitDeploymentAvailable => Ok(DryRunOutcome::Skipped(NOTHING_TO_WAIT_FOR)),
            Step::RestoreReclaimPolicy { .. } => Ok(DryRunOutcome::Skipped(CREATED_BY_THE_RUN)),
        }
    }
}
