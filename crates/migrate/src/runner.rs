//! The runner: executes a plan against a cluster, journaling every step, and resumes from the journal.
//!
//! Every step first looks at the world and is a no-op when its effect is already
//! there, so re-running a step that was interrupted anywhere (before, during or after
//! its API call) converges. Deletes carry a `uid` precondition; reclaim-policy
//! updates are merge patches carrying the `resourceVersion` just read; every wait is
//! a watch (`kube::runtime::wait::await_condition`), bounded by a timeout.

use std::fmt;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ConfigMap, PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::storage::v1::VolumeAttachment;
use kube::api::{
    Api, DeleteParams, Patch, PatchParams, PostParams, Preconditions, PropagationPolicy,
};
use kube::runtime::wait::{Condition, await_condition, conditions};
use kube::{Client, Resource};
use serde::de::DeserializeOwned;
use serde_json::json;
use thiserror::Error;

use crate::plan::{
    MIGRATED_FROM_ANNOTATION, Plan, Step, VolumePlan, mounts_any_claim, volume_identity,
};
use crate::snapshot::WorkloadSnapshot;
use crate::workdir::{JournalEntry, JournalEvent, Stage, WorkDir, WorkDirError, now_seconds};

/// Finalizers whose presence means a controller may still delete the disk behind a PV.
const DELETE_PROTECTION_FINALIZERS: &[&str] = &[
    "external-provisioner.volume.kubernetes.io/finalizer",
    "kubernetes.io/pv-controller",
];
/// How often a conditional update is retried after a 409 Conflict.
const CONFLICT_RETRIES: usize = 5;

/// Where a run stops on purpose: the crash-safety test hook.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopPoint {
    /// After step `k` acted and was journaled `done`.
    AfterStep(usize),
    /// After step `k` acted but before it was journaled `done` (a crash mid-step).
    BeforeDone(usize),
    /// At the start of step `k`'s first wait, after its write (a crash while waiting,
    /// e.g. with the pod still terminating). Steps without a wait run normally.
    InWait(usize),
}

/// A callback told about each step as it starts and finishes.
pub type ProgressCallback = Arc<dyn Fn(&StepProgress<'_>) + Send + Sync>;

/// What the progress callback sees.
#[derive(Debug)]
pub struct StepProgress<'a> {
    /// Index of the step.
    pub index: usize,
    /// Number of steps in the plan.
    pub total: usize,
    /// Started or done.
    pub event: JournalEvent,
    /// The step.
    pub step: &'a Step,
    /// One line describing it.
    pub description: String,
}

/// How to run.
#[derive(Clone)]
pub struct RunOptions {
    /// Longest any single wait may take.
    pub step_timeout: Duration,
    /// Stop on purpose at this point (tests).
    pub stop: Option<StopPoint>,
    /// Told about every step.
    pub progress: Option<ProgressCallback>,
}

impl Default for RunOptions {
    fn default() -> Self {
        Self {
            step_timeout: Duration::from_secs(300),
            stop: None,
            progress: None,
        }
    }
}

impl fmt::Debug for RunOptions {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RunOptions")
            .field("step_timeout", &self.step_timeout)
            .field("stop", &self.stop)
            .field("progress", &self.progress.is_some())
            .finish()
    }
}

/// What a completed run did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunSummary {
    /// Steps executed by this invocation (the rest were already done).
    pub executed: usize,
    /// Steps in the plan.
    pub total: usize,
}

/// Why a run stopped before the end. The journal allows `resume` in every case.
#[derive(Debug, Error)]
pub enum RunError {
    /// The work directory could not be used.
    #[error(transparent)]
    WorkDir(#[from] WorkDirError),
    /// An API call failed.
    #[error("step {index} ({description}): {source}")]
    Api {
        /// Index of the step.
        index: usize,
        /// The step.
        description: String,
        /// The client error.
        source: kube::Error,
    },
    /// A wait did not finish in time.
    #[error(
        "step {index} ({description}): not done after {timeout:?}; fix the cause, then `csi-migrate resume`"
    )]
    Timeout {
        /// Index of the step.
        index: usize,
        /// The step.
        description: String,
        /// The timeout.
        timeout: Duration,
    },
    /// A watch ended with an error.
    #[error("step {index} ({description}): watch failed: {message}")]
    Watch {
        /// Index of the step.
        index: usize,
        /// The step.
        description: String,
        /// The watch error.
        message: String,
    },
    /// The cluster is not as the plan expects (a competing writer, an object
    /// recreated by someone else, a PV no longer Retain): stopped without acting.
    #[error("step {index} ({description}): {message}")]
    Unexpected {
        /// Index of the step.
        index: usize,
        /// The step.
        description: String,
        /// What was found.
        message: String,
    },
    /// The run stopped at the requested [`StopPoint`].
    #[error("stopped on request at step {0}")]
    Stopped(usize),
    /// Another work dir is migrating (or rolling back) the same workload.
    #[error(
        "configmap {namespace}/{lock} shows that the run in {holder} is migrating this workload; finish or roll back that run first"
    )]
    WorkloadLocked {
        /// Namespace of the lock.
        namespace: String,
        /// Name of the lock ConfigMap.
        lock: String,
        /// The work dir holding it.
        holder: String,
    },
    /// The workload lock could not be read or written.
    #[error("workload lock configmap {lock}: {source}")]
    Lock {
        /// Name of the lock ConfigMap.
        lock: String,
        /// The client error.
        source: kube::Error,
    },
}

/// Prefix of the ConfigMap that marks a workload as being migrated by one work dir:
/// `csi-migrate-lock-<kind>-<name>`.
pub const WORKLOAD_LOCK_PREFIX: &str = "csi-migrate-lock-";
const LOCK_HOLDER_KEY: &str = "workDir";

/// Starts a migration: locks `dir`, backs up every object the plan touches, writes
/// the plan, then runs every step.
pub async fn migrate(
    client: Client,
    dir: &Path,
    plan: &Plan,
    snapshot: &WorkloadSnapshot,
    options: &RunOptions,
) -> Result<RunSummary, RunError> {
    let work = WorkDir::lock(dir)?;
    if work.has_plan(Stage::Migration) {
        return Err(WorkDirError::AlreadyStarted(dir.to_owned()).into());
    }
    write_backups(&work, plan, snapshot)?;
    work.write_plan(Stage::Migration, plan)?;
    Runner::new(client, plan, &work, Stage::Migration, options)
        .run()
        .await
}

/// Continues the run in `dir` from the first step its journal does not record as done.
pub async fn resume(
    client: Client,
    dir: &Path,
    options: &RunOptions,
) -> Result<RunSummary, RunError> {
    let work = WorkDir::lock(dir)?;
    let plan = work.read_plan(Stage::Migration)?;
    Runner::new(client, &plan, &work, Stage::Migration, options)
        .run()
        .await
}

fn write_backups(
    work: &WorkDir,
    plan: &Plan,
    snapshot: &WorkloadSnapshot,
) -> Result<(), WorkDirError> {
    let named = |meta: &k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta| {
        meta.name.clone().unwrap_or_default()
    };
    if let Some(set) = &snapshot.statefulset {
        work.write_backup("statefulsets", &plan.name, set)?;
    }
    if let Some(deployment) = &snapshot.deployment {
        work.write_backup("deployments", &plan.name, deployment)?;
    }
    for batch in &plan.batches {
        for planned in &batch.pods {
            if let Some(pod) = snapshot
                .pods
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(planned.name.as_str()))
            {
                work.write_backup("pods", &planned.name, pod)?;
            }
        }
        for volume in &batch.volumes {
            if let Some(claim) = snapshot
                .claims
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(volume.claim.as_str()))
            {
                work.write_backup("persistentvolumeclaims", &volume.claim, claim)?;
            }
            if let Some(pv) = snapshot
                .volumes
                .iter()
                .find(|p| p.metadata.name.as_deref() == Some(volume.old_volume.as_str()))
            {
                work.write_backup("persistentvolumes", &volume.old_volume, pv)?;
            }
        }
    }
    for class in &snapshot.storage_classes {
        work.write_backup("storageclasses", &named(&class.metadata), class)?;
    }
    Ok(())
}

pub(crate) struct Runner<'a> {
    plan: &'a Plan,
    work: &'a WorkDir,
    stage: Stage,
    options: &'a RunOptions,
    pods: Api<Pod>,
    claims: Api<PersistentVolumeClaim>,
    volumes: Api<PersistentVolume>,
    sets: Api<StatefulSet>,
    deployments: Api<Deployment>,
    attachments: Api<VolumeAttachment>,
    locks: Api<ConfigMap>,
}

/// The context of one step, for errors.
struct StepContext {
    index: usize,
    description: String,
    timeout: Duration,
    /// Stop at the first wait (the [`StopPoint::InWait`] hook).
    stop_in_wait: bool,
}

impl StepContext {
    fn api(&self, source: kube::Error) -> RunError {
        RunError::Api {
            index: self.index,
            description: self.description.clone(),
            source,
        }
    }

    fn unexpected(&self, message: impl Into<String>) -> RunError {
        RunError::Unexpected {
            index: self.index,
            description: self.description.clone(),
            message: message.into(),
        }
    }

    /// Watches `name` until `condition` holds; returns the object then (None = absent).
    async fn wait<K>(
        &self,
        api: &Api<K>,
        name: &str,
        condition: impl Condition<K>,
    ) -> Result<Option<K>, RunError>
    where
        K: Clone + fmt::Debug + Send + DeserializeOwned + Resource + 'static,
    {
        if self.stop_in_wait {
            return Err(RunError::Stopped(self.index));
        }
        match tokio::time::timeout(self.timeout, await_condition(api.clone(), name, condition))
            .await
        {
            Ok(Ok(object)) => Ok(object),
            Ok(Err(e)) => Err(RunError::Watch {
                index: self.index,
                description: self.description.clone(),
                message: e.to_string(),
            }),
            Err(_) => Err(RunError::Timeout {
                index: self.index,
                description: self.description.clone(),
                timeout: self.timeout,
            }),
        }
    }
}

fn is_status(error: &kube::Error, code: u16) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == code)
}

fn uid_of<K: Resource>(object: &K) -> &str {
    object.meta().uid.as_deref().unwrap_or_default()
}

fn reclaim_policy(pv: &PersistentVolume) -> &str {
    pv.spec
        .as_ref()
        .and_then(|s| s.persistent_volume_reclaim_policy.as_deref())
        .unwrap_or("Retain")
}

fn pod_ready(pod: &Pod) -> bool {
    pod.metadata.deletion_timestamp.is_none()
        && pod.status.as_ref().is_some_and(|s| {
            s.phase.as_deref() == Some("Running")
                && s.conditions
                    .iter()
                    .flatten()
                    .any(|c| c.type_ == "Ready" && c.status == "True")
        })
}

fn controller_uid<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .owner_references
        .iter()
        .flatten()
        .find(|o| o.controller == Some(true))
        .map(|o| o.uid.as_str())
}

fn migrated_from<K: Resource>(object: &K) -> Option<&str> {
    object
        .meta()
        .annotations
        .as_ref()
        .and_then(|a| a.get(MIGRATED_FROM_ANNOTATION))
        .map(String::as_str)
}

pub(crate) fn uid_precondition(uid: &str) -> DeleteParams {
    DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some(uid.to_owned()),
            resource_version: None,
        }),
        ..Default::default()
    }
}

impl<'a> Runner<'a> {
    pub(crate) fn new(
        client: Client,
        plan: &'a Plan,
        work: &'a WorkDir,
        stage: Stage,
        options: &'a RunOptions,
    ) -> Self {
        Self {
            plan,
            work,
            stage,
            options,
            pods: Api::namespaced(client.clone(), &plan.namespace),
            claims: Api::namespaced(client.clone(), &plan.namespace),
            volumes: Api::all(client.clone()),
            attachments: Api::all(client.clone()),
            locks: Api::namespaced(client.clone(), &plan.namespace),
            deployments: Api::namespaced(client.clone(), &plan.namespace),
            sets: Api::namespaced(client, &plan.namespace),
        }
    }

    /// The work dir as it names itself in the workload lock.
    fn holder(&self) -> String {
        let root = self.work.root();
        root.canonicalize()
            .unwrap_or_else(|_| root.to_owned())
            .display()
            .to_string()
    }

    fn lock_name(&self) -> String {
        format!(
            "{WORKLOAD_LOCK_PREFIX}{}-{}",
            self.plan.kind, self.plan.name
        )
    }

    /// Takes the workload lock (a ConfigMap naming this work dir), or finds it ours.
    async fn lock_workload(&self) -> Result<(), RunError> {
        let lock = self.lock_name();
        let lock_error = |source| RunError::Lock {
            lock: lock.clone(),
            source,
        };
        let holder = self.holder();
        let config_map = ConfigMap {
            metadata: kube::api::ObjectMeta {
                name: Some(lock.clone()),
                namespace: Some(self.plan.namespace.clone()),
                ..Default::default()
            },
            data: Some([(LOCK_HOLDER_KEY.to_owned(), holder.clone())].into()),
            ..Default::default()
        };
        match self.locks.create(&PostParams::default(), &config_map).await {
            Ok(_) => return Ok(()),
            Err(e) if is_status(&e, 409) => {}
            Err(e) => return Err(lock_error(e)),
        }
        let existing = self.locks.get(&lock).await.map_err(lock_error)?;
        let current = existing
            .data
            .as_ref()
            .and_then(|d| d.get(LOCK_HOLDER_KEY))
            .cloned()
            .unwrap_or_default();
        if current == holder {
            Ok(())
        } else {
            Err(RunError::WorkloadLocked {
                namespace: self.plan.namespace.clone(),
                lock,
                holder: current,
            })
        }
    }

    /// Releases the workload lock once the run is complete.
    async fn unlock_workload(&self) -> Result<(), RunError> {
        let lock = self.lock_name();
        let Some(existing) = self
            .locks
            .get_opt(&lock)
            .await
            .map_err(|source| RunError::Lock {
                lock: lock.clone(),
                source,
            })?
        else {
            return Ok(());
        };
        let ours =
            existing.data.as_ref().and_then(|d| d.get(LOCK_HOLDER_KEY)) == Some(&self.holder());
        if ours {
            match self
                .locks
                .delete(&lock, &uid_precondition(uid_of(&existing)))
                .await
            {
                Ok(_) => {}
                Err(e) if is_status(&e, 404) || is_status(&e, 409) => {}
                Err(source) => return Err(RunError::Lock { lock, source }),
            }
        }
        Ok(())
    }

    pub(crate) async fn run(&self) -> Result<RunSummary, RunError> {
        // Boxed: the steps' future is large, and debug builds copy it on the stack.
        let result = Box::pin(self.run_steps()).await;
        let client = self.locks.clone().into_client();
        crate::events::record_outcome(client, self.plan, self.stage, &result).await;
        result
    }

    async fn run_steps(&self) -> Result<RunSummary, RunError> {
        self.lock_workload().await?;
        let done = self.work.done_steps(self.stage)?;
        let total = self.plan.steps.len();
        let first = (0..total).find(|i| !done.contains(i)).unwrap_or(total);
        let client = self.locks.clone().into_client();
        crate::events::record_start(client, self.plan, self.stage, first).await;
        let mut executed = 0;
        for (index, step) in self.plan.steps.iter().enumerate().skip(first) {
            let description = step.describe(self.plan);
            self.journal(index, step, JournalEvent::Started, &description)?;
            let context = StepContext {
                index,
                description: description.clone(),
                timeout: self.options.step_timeout,
                stop_in_wait: self.options.stop == Some(StopPoint::InWait(index)),
            };
            self.execute(step, &context).await?;
            executed += 1;
            if self.options.stop == Some(StopPoint::BeforeDone(index)) {
                return Err(RunError::Stopped(index));
            }
            self.journal(index, step, JournalEvent::Done, &description)?;
            if self.options.stop == Some(StopPoint::AfterStep(index)) {
                return Err(RunError::Stopped(index));
            }
        }
        self.unlock_workload().await?;
        Ok(RunSummary { executed, total })
    }

    fn journal(
        &self,
        index: usize,
        step: &Step,
        event: JournalEvent,
        description: &str,
    ) -> Result<(), RunError> {
        self.work.append_journal(
            self.stage,
            &JournalEntry {
                step: index,
                event,
                action: step.clone(),
                at: now_seconds(),
            },
        )?;
        tracing::info!(step = index, ?event, "{description}");
        if let Some(progress) = &self.options.progress {
            progress(&StepProgress {
                index,
                total: self.plan.steps.len(),
                event,
                step,
                description: description.to_owned(),
            });
        }
        Ok(())
    }

    fn volume_plan(
        &self,
        context: &StepContext,
        find: Option<&'a VolumePlan>,
    ) -> Result<&'a VolumePlan, RunError> {
        find.ok_or_else(|| {
            context.unexpected("the plan has no volume for this step (corrupt plan.json?)")
        })
    }

    async fn execute(&self, step: &Step, context: &StepContext) -> Result<(), RunError> {
        match step {
            Step::RetainVolume { volume, uid } => {
                self.set_reclaim_policy(context, volume, uid, "Retain")
                    .await?;
                // Proof the controllers saw Retain: their delete-protection finalizers go.
                context
                    .wait(&self.volumes, volume, |pv: Option<&PersistentVolume>| {
                        pv.is_some_and(|pv| {
                            reclaim_policy(pv) == "Retain"
                                && !pv
                                    .metadata
                                    .finalizers
                                    .iter()
                                    .flatten()
                                    .any(|f| DELETE_PROTECTION_FINALIZERS.contains(&f.as_str()))
                        })
                    })
                    .await?;
                Ok(())
            }
            Step::OrphanDeleteStatefulSet { uid } => {
                self.orphan_delete_statefulset(context, uid).await
            }
            Step::DeletePod { pod, uid } => {
                match self.pods.get_opt(pod).await.map_err(|e| context.api(e))? {
                    Some(found) if uid_of(&found) != uid => {
                        return Err(context.unexpected(format!(
                            "pod {pod} has uid {} instead of {uid}: something else recreated it while the StatefulSet is gone; stop it, delete that pod, then resume",
                            uid_of(&found)
                        )));
                    }
                    Some(_) => self.delete(&self.pods, context, pod, uid).await?,
                    None => {}
                }
                context
                    .wait(&self.pods, pod, conditions::is_deleted(uid))
                    .await?;
                let (batch, _) = self
                    .plan
                    .pod(pod)
                    .ok_or_else(|| context.unexpected("the plan has no such pod"))?;
                let old: Vec<&str> = batch
                    .volumes
                    .iter()
                    .map(|v| v.old_volume.as_str())
                    .collect();
                self.await_detached(context, &old).await
            }
            Step::DeleteClaim { claim, uid } => {
                let volume = self.volume_plan(context, self.plan.volume_by_claim(claim))?;
                self.ensure_retained(context, &volume.old_volume, &volume.old_volume_uid)
                    .await?;
                match self
                    .claims
                    .get_opt(claim)
                    .await
                    .map_err(|e| context.api(e))?
                {
                    Some(found) if uid_of(&found) != uid => {
                        return Err(context.unexpected(format!(
                            "claim {claim} has uid {} instead of {uid}: something recreated it (from a template?) and may have provisioned an empty disk; nothing was deleted",
                            uid_of(&found)
                        )));
                    }
                    Some(_) => self.delete(&self.claims, context, claim, uid).await?,
                    None => {}
                }
                context
                    .wait(&self.claims, claim, conditions::is_deleted(uid))
                    .await?;
                Ok(())
            }
            Step::DeleteVolume { volume, uid } => {
                self.ensure_retained(context, volume, uid).await?;
                if self
                    .volumes
                    .get_opt(volume)
                    .await
                    .map_err(|e| context.api(e))?
                    .is_some()
                {
                    self.delete(&self.volumes, context, volume, uid).await?;
                }
                context
                    .wait(&self.volumes, volume, conditions::is_deleted(uid))
                    .await?;
                Ok(())
            }
            Step::CreateVolume { volume } => self.create_volume(context, volume).await,
            Step::CreateClaim { claim } => self.create_claim(context, claim).await,
            Step::AwaitClaimBound { claim, volume } => {
                let bound = context
                    .wait(&self.claims, claim, |c: Option<&PersistentVolumeClaim>| {
                        c.is_some_and(|c| {
                            c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                                && c.spec.as_ref().and_then(|s| s.volume_name.as_deref())
                                    == Some(volume.as_str())
                        })
                    })
                    .await?;
                let claim_uid = bound.as_ref().map(uid_of).unwrap_or_default().to_owned();
                context
                    .wait(&self.volumes, volume, |pv: Option<&PersistentVolume>| {
                        pv.is_some_and(|pv| {
                            pv.spec
                                .as_ref()
                                .and_then(|s| s.claim_ref.as_ref())
                                .and_then(|r| r.uid.as_deref())
                                == Some(claim_uid.as_str())
                        })
                    })
                    .await?;
                Ok(())
            }
            Step::CreatePod { pod } => self.create_pod(context, pod).await,
            Step::AwaitPodReady { pod } => {
                context
                    .wait(&self.pods, pod, |p: Option<&Pod>| p.is_some_and(pod_ready))
                    .await?;
                Ok(())
            }
            Step::RecreateStatefulSet => self.recreate_statefulset(context).await,
            Step::ScaleDeployment { replicas } => self.scale_deployment(context, *replicas).await,
            Step::AwaitClaimsReleased => self.await_claims_released(context).await,
            Step::AwaitDeploymentAvailable => self.await_deployment_available(context).await,
            Step::AwaitAdoption => self.await_adoption(context).await,
            Step::RestoreReclaimPolicy { volume, policy } => {
                let pv = self
                    .volumes
                    .get_opt(volume)
                    .await
                    .map_err(|e| context.api(e))?
                    .ok_or_else(|| context.unexpected(format!("PV {volume} is gone")))?;
                let phase = pv.status.as_ref().and_then(|s| s.phase.as_deref());
                if phase != Some("Bound") {
                    return Err(context.unexpected(format!(
                        "PV {volume} is {phase:?}, not Bound: keeping Retain"
                    )));
                }
                let uid = uid_of(&pv).to_owned();
                self.set_reclaim_policy(context, volume, &uid, policy).await
            }
        }
    }

    /// Merge patch of the reclaim policy, conditional on the resourceVersion just read
    /// and on the uid; retried after a conflict.
    async fn set_reclaim_policy(
        &self,
        context: &StepContext,
        volume: &str,
        uid: &str,
        policy: &str,
    ) -> Result<(), RunError> {
        for _ in 0..CONFLICT_RETRIES {
            let pv = self
                .volumes
                .get_opt(volume)
                .await
                .map_err(|e| context.api(e))?
                .ok_or_else(|| context.unexpected(format!("PV {volume} does not exist")))?;
            if uid_of(&pv) != uid {
                return Err(context.unexpected(format!(
                    "PV {volume} has uid {} instead of {uid}",
                    uid_of(&pv)
                )));
            }
            if reclaim_policy(&pv) == policy {
                return Ok(());
            }
            let patch = json!({
                "metadata": {"uid": uid, "resourceVersion": pv.metadata.resource_version},
                "spec": {"persistentVolumeReclaimPolicy": policy},
            });
            match self
                .volumes
                .patch(volume, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 409) => continue,
                Err(e) => return Err(context.api(e)),
            }
        }
        Err(context.unexpected(format!(
            "PV {volume} kept changing: {CONFLICT_RETRIES} conflicts in a row"
        )))
    }

    /// Refuses to go on unless the PV is absent or `Retain` (invariant 1).
    async fn ensure_retained(
        &self,
        context: &StepContext,
        volume: &str,
        uid: &str,
    ) -> Result<(), RunError> {
        match self.volumes.get_opt(volume).await.map_err(|e| context.api(e))? {
            Some(pv) if uid_of(&pv) == uid && reclaim_policy(&pv) != "Retain" => {
                Err(context.unexpected(format!(
                    "PV {volume} has reclaim policy {}, not Retain: deleting now could delete the disk; nothing was deleted",
                    reclaim_policy(&pv)
                )))
            }
            _ => Ok(()),
        }
    }

    /// DELETE with a uid precondition; a 404 or a failed precondition (the object is
    /// already gone or replaced) is left to the caller's wait.
    async fn delete<K>(
        &self,
        api: &Api<K>,
        context: &StepContext,
        name: &str,
        uid: &str,
    ) -> Result<(), RunError>
    where
        K: Clone + DeserializeOwned + fmt::Debug + Resource,
    {
        match api.delete(name, &uid_precondition(uid)).await {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 404) || is_status(&e, 409) => Ok(()),
            Err(e) => Err(context.api(e)),
        }
    }

    /// Hazard 11: waits until no VolumeAttachment references any of `old_volumes`, so
    /// each disk is detached from its old node before anything else may attach it.
    async fn await_detached(
        &self,
        context: &StepContext,
        old_volumes: &[&str],
    ) -> Result<(), RunError> {
        let attachments = self
            .attachments
            .list(&Default::default())
            .await
            .map_err(|e| context.api(e))?;
        for attachment in attachments.items {
            let volume = attachment.spec.source.persistent_volume_name.as_deref();
            if !volume.is_some_and(|v| old_volumes.contains(&v)) {
                continue;
            }
            let name = attachment.metadata.name.clone().unwrap_or_default();
            let uid = uid_of(&attachment).to_owned();
            context
                .wait(&self.attachments, &name, conditions::is_deleted(&uid))
                .await?;
        }
        Ok(())
    }

    /// Waits until no pod mounts any of the plan's claims (each found is watched until it
    /// is gone; the list is taken again in case a controller was still winding down) and
    /// their old PVs are detached.
    async fn await_claims_released(&self, context: &StepContext) -> Result<(), RunError> {
        let claims: Vec<&str> = self.plan.volumes().map(|v| v.claim.as_str()).collect();
        // Bounded: a workload scaled to zero stops creating pods.
        for _ in 0..CONFLICT_RETRIES {
            let pods = self
                .pods
                .list(&Default::default())
                .await
                .map_err(|e| context.api(e))?;
            let users: Vec<Pod> = pods
                .items
                .into_iter()
                .filter(|pod| mounts_any_claim(pod, &claims))
                .collect();
            if users.is_empty() {
                let old: Vec<&str> = self.plan.volumes().map(|v| v.old_volume.as_str()).collect();
                return self.await_detached(context, &old).await;
            }
            for pod in users {
                let name = pod.metadata.name.clone().unwrap_or_default();
                context
                    .wait(&self.pods, &name, conditions::is_deleted(uid_of(&pod)))
                    .await?;
            }
        }
        Err(context.unexpected(
            "pods using the claims kept appearing: something is scaling the workload up again",
        ))
    }

    /// Sets the Deployment's replicas with a merge patch carrying its uid and the
    /// resourceVersion just read; retried after a conflict.
    async fn scale_deployment(&self, context: &StepContext, replicas: i32) -> Result<(), RunError> {
        let name = &self.plan.name;
        for _ in 0..CONFLICT_RETRIES {
            let deployment = self
                .deployments
                .get_opt(name)
                .await
                .map_err(|e| context.api(e))?
                .ok_or_else(|| context.unexpected(format!("deployment {name} does not exist")))?;
            if uid_of(&deployment) != self.plan.uid {
                return Err(context.unexpected(format!(
                    "deployment {name} has uid {} instead of {}: someone recreated it",
                    uid_of(&deployment),
                    self.plan.uid
                )));
            }
            if deployment.spec.replicas == Some(replicas) {
                return Ok(());
            }
            let patch = json!({
                "metadata": {"uid": self.plan.uid, "resourceVersion": deployment.metadata.resource_version},
                "spec": {"replicas": replicas},
            });
            match self
                .deployments
                .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
                .await
            {
                Ok(_) => return Ok(()),
                Err(e) if is_status(&e, 409) => continue,
                Err(e) => return Err(context.api(e)),
            }
        }
        Err(context.unexpected(format!(
            "deployment {name} kept changing: {CONFLICT_RETRIES} conflicts in a row"
        )))
    }

    /// Waits until the Deployment observed its spec and has every replica updated and available.
    async fn await_deployment_available(&self, context: &StepContext) -> Result<(), RunError> {
        let want = self.plan.deployment_replicas.unwrap_or(0);
        context
            .wait(
                &self.deployments,
                &self.plan.name,
                |d: Option<&Deployment>| {
                    let Some((d, status)) = d.and_then(|d| Some((d, d.status.as_ref()?))) else {
                        return false;
                    };
                    // Counts of zero are omitted from the status.
                    let count = |value: Option<i32>| value.unwrap_or(0);
                    status.observed_generation >= d.metadata.generation
                        && count(status.updated_replicas) == want
                        && count(status.available_replicas) == want
                        && count(status.replicas) == want
                },
            )
            .await?;
        Ok(())
    }

    async fn orphan_delete_statefulset(
        &self,
        context: &StepContext,
        uid: &str,
    ) -> Result<(), RunError> {
        let name = &self.plan.name;
        match self.sets.get_opt(name).await.map_err(|e| context.api(e))? {
            Some(found) if uid_of(&found) != uid => {
                return Err(context.unexpected(format!(
                    "statefulset {name} has uid {} instead of {uid}: someone recreated it",
                    uid_of(&found)
                )));
            }
            Some(_) => {
                let params = DeleteParams {
                    propagation_policy: Some(PropagationPolicy::Orphan),
                    ..uid_precondition(uid)
                };
                match self.sets.delete(name, &params).await {
                    Ok(_) => {}
                    Err(e) if is_status(&e, 404) => {}
                    Err(e) => return Err(context.api(e)),
                }
            }
            None => {}
        }
        context
            .wait(&self.sets, name, conditions::is_deleted(uid))
            .await?;
        // The garbage collector strips the controller refs before the set disappears.
        for planned in self.plan.batches.iter().flat_map(|b| &b.pods) {
            if let Some(pod) = self
                .pods
                .get_opt(&planned.name)
                .await
                .map_err(|e| context.api(e))?
                && controller_uid(&pod) == Some(uid)
            {
                return Err(context.unexpected(format!(
                    "pod {} still names the deleted StatefulSet as its controller",
                    planned.name
                )));
            }
        }
        Ok(())
    }

    async fn create_volume(&self, context: &StepContext, volume: &str) -> Result<(), RunError> {
        let plan = self.volume_plan(context, self.plan.volume_by_new_name(volume))?;
        let identity = volume_identity(&plan.new_volume);
        if let Some(existing) = self
            .volumes
            .get_opt(volume)
            .await
            .map_err(|e| context.api(e))?
        {
            if migrated_from(&existing) == Some(plan.old_volume.as_str())
                && volume_identity(&existing) == identity
            {
                return Ok(());
            }
            return Err(context.unexpected(format!(
                "PV {volume} exists but was not created by this run"
            )));
        }
        // Invariant 6: no other PV may name the disk when this one appears.
        let all = self
            .volumes
            .list(&Default::default())
            .await
            .map_err(|e| context.api(e))?;
        if let Some(twin) = all
            .items
            .iter()
            .find(|pv| identity.is_some() && volume_identity(pv) == identity)
        {
            return Err(context.unexpected(format!(
                "PV {} still names disk {}; refusing to create a second PV for it",
                twin.metadata.name.as_deref().unwrap_or_default(),
                plan.volume_handle
            )));
        }
        match self
            .volumes
            .create(&PostParams::default(), &plan.new_volume)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                Err(context.unexpected(format!("PV {volume} appeared concurrently: {e}")))
            }
            Err(e) => Err(context.api(e)),
        }
    }

    async fn create_claim(&self, context: &StepContext, claim: &str) -> Result<(), RunError> {
        let plan = self.volume_plan(context, self.plan.volume_by_claim(claim))?;
        let new_volume = plan.new_volume.metadata.name.as_deref();
        let ours = |c: &PersistentVolumeClaim| {
            migrated_from(c) == Some(plan.old_volume.as_str())
                && c.spec.as_ref().and_then(|s| s.volume_name.as_deref()) == new_volume
        };
        if let Some(existing) = self
            .claims
            .get_opt(claim)
            .await
            .map_err(|e| context.api(e))?
        {
            if ours(&existing) {
                return Ok(());
            }
            return Err(context.unexpected(format!(
                "claim {claim} exists but was not created by this run (uid {}): something recreated it while the StatefulSet was gone",
                uid_of(&existing)
            )));
        }
        match self
            .claims
            .create(&PostParams::default(), &plan.new_claim)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) if is_status(&e, 409) => {
                Err(context.unexpected(format!("claim {claim} appeared concurrently: {e}")))
            }
            Err(e) => Err(context.api(e)),
        }
    }

    async fn create_pod(&self, context: &StepContext, pod: &str) -> Result<(), RunError> {
        let (_, planned) = self
            .plan
            .pod(pod)
            .ok_or_else(|| context.unexpected("the plan has no such pod"))?;
        if let Some(existing) = self.pods.get_opt(pod).await.map_err(|e| context.api(e))? {
            if uid_of(&existing) == planned.uid {
                return Err(context.unexpected(format!("the old pod {pod} is back")));
            }
            // Created by us before a crash (nothing else creates these pods meanwhile:
            // their StatefulSet is gone, or they are bare).
            return Ok(());
        }
        match self
            .pods
            .create(&PostParams::default(), &planned.recreated)
            .await
        {
            Ok(_) => Ok(()),
            Err(e) => Err(context.api(e)),
        }
    }

    /// The StatefulSet the plan recreates at the end.
    fn recreated_statefulset(&self, context: &StepContext) -> Result<&'a StatefulSet, RunError> {
        self.plan.recreated_statefulset.as_ref().ok_or_else(|| {
            context.unexpected("the plan has no StatefulSet to recreate (corrupt plan.json?)")
        })
    }

    async fn recreate_statefulset(&self, context: &StepContext) -> Result<(), RunError> {
        let name = &self.plan.name;
        let recreated = self.recreated_statefulset(context)?;
        if let Some(existing) = self.sets.get_opt(name).await.map_err(|e| context.api(e))? {
            let on_target = existing
                .spec
                .volume_claim_templates
                .as_ref()
                .is_some_and(|t| {
                    t.iter().all(|t| {
                        t.spec
                            .as_ref()
                            .and_then(|s| s.storage_class_name.as_deref())
                            == Some(self.plan.target_storage_class.as_str())
                    })
                });
            if uid_of(&existing) != self.plan.uid && on_target {
                return Ok(());
            }
            return Err(context.unexpected(format!(
                "statefulset {name} exists (uid {}) and is not the one this run creates",
                uid_of(&existing)
            )));
        }
        match self.sets.create(&PostParams::default(), recreated).await {
            Ok(_) => Ok(()),
            Err(e) => Err(context.api(e)),
        }
    }

    async fn await_adoption(&self, context: &StepContext) -> Result<(), RunError> {
        let name = &self.plan.name;
        let want = self
            .recreated_statefulset(context)?
            .spec
            .replicas
            .unwrap_or(1);
        let set = context
            .wait(&self.sets, name, |s: Option<&StatefulSet>| {
                s.is_some_and(|s| {
                    let status = s.status.as_ref();
                    status.and_then(|st| st.observed_generation) >= s.metadata.generation
                        && status.and_then(|st| st.ready_replicas) == Some(want)
                })
            })
            .await?
            .ok_or_else(|| context.unexpected(format!("statefulset {name} vanished")))?;
        let set_uid = uid_of(&set).to_owned();
        for ordinal in 0..want {
            let pod = format!("{name}-{ordinal}");
            context
                .wait(&self.pods, &pod, |p: Option<&Pod>| {
                    p.is_some_and(|p| controller_uid(p) == Some(set_uid.as_str()) && pod_ready(p))
                })
                .await?;
        }
        Ok(())
    }
}
