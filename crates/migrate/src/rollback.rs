//! The way back: restores the original in-tree PVs, claims, pods and StatefulSet (same disks) from the backups.
//!
//! `rollback` works for a completed run and for one interrupted anywhere. On its first
//! invocation it reads the live cluster, classifies every volume by how far the
//! migration got, and writes `rollback-plan.json`: a [`Plan`] in which the CSI objects
//! play the "old" part and the backed-up in-tree objects the "new" part, run by the same
//! idempotent, journaled runner (journal `rollback-journal.jsonl`). So rollback is itself
//! resumable: run it again after any interruption.

use std::path::Path;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{ObjectReference, PersistentVolume, PersistentVolumeClaim, Pod};
use kube::Client;
use kube::api::Api;
use thiserror::Error;

use crate::plan::{
    Batch, MIGRATED_FROM_ANNOTATION, Plan, PodPlan, Step, VolumePlan, WorkloadKind,
    recreated_statefulset, workload_steps,
};
use crate::runner::{RunError, RunOptions, RunSummary, Runner};
use crate::workdir::{Stage, WorkDir, WorkDirError};

/// Why no rollback plan could be made.
#[derive(Debug, Error)]
pub enum RollbackError {
    /// The work dir could not be used.
    #[error(transparent)]
    WorkDir(#[from] WorkDirError),
    /// Reading the live cluster failed.
    #[error("reading {what}: {source}")]
    Api {
        /// What was being read.
        what: String,
        /// The client error.
        source: kube::Error,
    },
    /// A backup the rollback needs is missing from the work dir.
    #[error("the work dir has no backup of {0}")]
    MissingBackup(String),
    /// The cluster holds an object neither the original nor created by the migration.
    #[error("{0}; resolve it by hand, then run rollback again")]
    Foreign(String),
    /// Running the rollback plan failed; run rollback again to continue.
    #[error(transparent)]
    Run(#[from] RunError),
}

/// The live objects the rollback plan is computed from.
#[derive(Debug, Clone, Default)]
pub struct LiveState {
    /// The StatefulSet, if one exists now.
    pub statefulset: Option<StatefulSet>,
    /// The Deployment, if one exists now.
    pub deployment: Option<Deployment>,
    /// The plan's pods that exist now.
    pub pods: Vec<Pod>,
    /// The claims that exist now.
    pub claims: Vec<PersistentVolumeClaim>,
    /// The old and new PVs that exist now.
    pub volumes: Vec<PersistentVolume>,
}

/// The backed-up originals the rollback restores.
#[derive(Debug, Clone)]
pub struct Originals {
    /// The StatefulSet as it was (StatefulSet runs).
    pub statefulset: Option<StatefulSet>,
    /// The Deployment as it was (Deployment runs).
    pub deployment: Option<Deployment>,
    /// The claims as they were.
    pub claims: Vec<PersistentVolumeClaim>,
    /// The in-tree PVs as they were.
    pub volumes: Vec<PersistentVolume>,
}

fn named<'a, K: kube::Resource>(objects: &'a [K], name: &str) -> Option<&'a K> {
    objects
        .iter()
        .find(|o| o.meta().name.as_deref() == Some(name))
}

fn uid<K: kube::Resource>(object: &K) -> String {
    object.meta().uid.clone().unwrap_or_default()
}

fn annotated(
    mut meta: k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta,
    from: &str,
) -> k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta {
    meta.annotations
        .get_or_insert_with(Default::default)
        .insert(MIGRATED_FROM_ANNOTATION.to_owned(), from.to_owned());
    meta
}

/// The in-tree PV as recreated: its backup without server fields, binding state or
/// finalizers, pre-bound to the claim by name, `Retain` until the end.
fn restored_volume(backup: &PersistentVolume, replaced: &str) -> PersistentVolume {
    let mut pv = backup.clone();
    crate::plan::strip_server_fields(&mut pv.metadata);
    pv.metadata.finalizers = None;
    if let Some(annotations) = pv.metadata.annotations.as_mut() {
        annotations.remove("pv.kubernetes.io/bound-by-controller");
        annotations.remove("pv.kubernetes.io/migrated-to");
    }
    pv.metadata = annotated(pv.metadata, replaced);
    pv.status = None;
    if let Some(spec) = pv.spec.as_mut() {
        spec.persistent_volume_reclaim_policy = Some("Retain".into());
        spec.claim_ref = spec.claim_ref.as_ref().map(|r| ObjectReference {
            api_version: Some("v1".into()),
            kind: Some("PersistentVolumeClaim".into()),
            namespace: r.namespace.clone(),
            name: r.name.clone(),
            ..Default::default()
        });
    }
    pv
}

/// The claim as recreated: its backup without server fields, owners or binding annotations.
fn restored_claim(backup: &PersistentVolumeClaim, replaced: &str) -> PersistentVolumeClaim {
    let mut claim = backup.clone();
    crate::plan::strip_server_fields(&mut claim.metadata);
    claim.metadata.finalizers = None;
    if let Some(annotations) = claim.metadata.annotations.as_mut() {
        annotations.retain(|k, _| !crate::plan::is_binding_annotation(k));
    }
    claim.metadata = annotated(claim.metadata, replaced);
    claim.status = None;
    claim
}

/// Plans the way back from `live` to `originals` for the migration `forward`. Pure.
pub fn plan_rollback(
    forward: &Plan,
    originals: &Originals,
    live: &LiveState,
) -> Result<Plan, RollbackError> {
    let mut retain = Vec::new();
    let mut batches = Vec::new();
    let mut restore = Vec::new();
    let mut original_class = String::new();
    for batch in &forward.batches {
        let pods: Vec<PodPlan> = batch
            .pods
            .iter()
            .map(|planned| PodPlan {
                name: planned.name.clone(),
                uid: named(&live.pods, &planned.name)
                    .map(uid)
                    .unwrap_or_default(),
                recreated: planned.recreated.clone(),
            })
            .collect();
        let mut touched = pods
            .iter()
            .zip(&batch.pods)
            .any(|(now, planned)| now.uid != planned.uid);
        let mut volumes = Vec::new();
        for volume in &batch.volumes {
            let new_name = volume.new_volume.metadata.name.clone().unwrap_or_default();
            let backup_pv = named(&originals.volumes, &volume.old_volume).ok_or_else(|| {
                RollbackError::MissingBackup(format!("persistentvolume {}", volume.old_volume))
            })?;
            let backup_claim = named(&originals.claims, &volume.claim)
                .ok_or_else(|| RollbackError::MissingBackup(format!("claim {}", volume.claim)))?;
            if original_class.is_empty() {
                original_class = backup_claim
                    .spec
                    .as_ref()
                    .and_then(|s| s.storage_class_name.clone())
                    .unwrap_or_default();
            }
            let live_claim = named(&live.claims, &volume.claim);
            let old_pv = named(&live.volumes, &volume.old_volume);
            let new_pv = named(&live.volumes, &new_name);
            let existing_pv = new_pv.or(old_pv);
            if let Some(pv) = existing_pv {
                retain.push(Step::RetainVolume {
                    volume: pv.metadata.name.clone().unwrap_or_default(),
                    uid: uid(pv),
                });
            }
            if volume.original_reclaim_policy != "Retain" {
                restore.push(Step::RestoreReclaimPolicy {
                    volume: volume.old_volume.clone(),
                    policy: volume.original_reclaim_policy.clone(),
                });
            }
            let untouched = live_claim.is_some_and(|c| uid(c) == volume.claim_uid);
            if untouched {
                continue;
            }
            if let Some(claim) = live_claim {
                let ours = claim
                    .metadata
                    .annotations
                    .as_ref()
                    .and_then(|a| a.get(MIGRATED_FROM_ANNOTATION))
                    == Some(&volume.old_volume);
                if !ours {
                    return Err(RollbackError::Foreign(format!(
                        "claim {} (uid {}) is neither the original nor the one the migration created",
                        volume.claim,
                        uid(claim)
                    )));
                }
            }
            touched = true;
            let replaced = existing_pv
                .and_then(|pv| pv.metadata.name.clone())
                .unwrap_or_else(|| new_name.clone());
            volumes.push(VolumePlan {
                claim: volume.claim.clone(),
                claim_uid: live_claim.map(uid).unwrap_or_default(),
                old_volume: replaced.clone(),
                old_volume_uid: existing_pv.map(uid).unwrap_or_default(),
                original_reclaim_policy: volume.original_reclaim_policy.clone(),
                final_reclaim_policy: volume.original_reclaim_policy.clone(),
                volume_handle: volume.volume_handle.clone(),
                new_volume: restored_volume(backup_pv, &replaced),
                new_claim: restored_claim(backup_claim, &replaced),
            });
        }
        if touched {
            batches.push(Batch { pods, volumes });
        }
    }
    let mut plan = Plan {
        api_version: forward.api_version.clone(),
        kind: forward.kind,
        namespace: forward.namespace.clone(),
        name: forward.name.clone(),
        uid: String::new(),
        target_storage_class: original_class.clone(),
        driver: forward.driver.clone(),
        batches,
        recreated_statefulset: None,
        deployment_replicas: None,
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    match forward.kind {
        WorkloadKind::StatefulSet => {
            let set = originals.statefulset.as_ref().ok_or_else(|| {
                RollbackError::MissingBackup(format!("statefulset {}", forward.name))
            })?;
            plan.uid = live.statefulset.as_ref().map(uid).unwrap_or_default();
            plan.recreated_statefulset = Some(recreated_statefulset(set, &original_class));
        }
        WorkloadKind::Deployment => {
            let original = originals.deployment.as_ref().ok_or_else(|| {
                RollbackError::MissingBackup(format!("deployment {}", forward.name))
            })?;
            let now = live.deployment.as_ref().ok_or_else(|| {
                RollbackError::Foreign(format!(
                    "deployment {} is gone; create it again from the work dir's backups/deployments/{}.json",
                    forward.name, forward.name
                ))
            })?;
            plan.uid = uid(now);
            plan.deployment_replicas = Some(original.spec.replicas.unwrap_or(1));
        }
        WorkloadKind::PersistentVolumeClaim => {}
    }
    plan.steps = workload_steps(&plan, retain, restore);
    Ok(plan)
}

/// Rolls back the migration in `dir` (completed or interrupted); resumable.
pub async fn rollback(
    client: Client,
    dir: &Path,
    options: &RunOptions,
) -> Result<RunSummary, RollbackError> {
    let work = WorkDir::lock(dir)?;
    let forward = work.read_plan(Stage::Migration)?;
    let plan = if work.has_plan(Stage::Rollback) {
        work.read_plan(Stage::Rollback)?
    } else {
        let originals = read_originals(&work, &forward)?;
        let live = read_live(&client, &forward).await?;
        let plan = plan_rollback(&forward, &originals, &live)?;
        work.write_plan(Stage::Rollback, &plan)?;
        plan
    };
    Ok(Runner::new(client, &plan, &work, Stage::Rollback, options)
        .run()
        .await?)
}

fn read_originals(work: &WorkDir, forward: &Plan) -> Result<Originals, RollbackError> {
    let mut originals = Originals {
        statefulset: None,
        deployment: None,
        claims: Vec::new(),
        volumes: Vec::new(),
    };
    match forward.kind {
        WorkloadKind::StatefulSet => {
            originals.statefulset = work.read_backup("statefulsets", &forward.name)?;
        }
        WorkloadKind::Deployment => {
            originals.deployment = work.read_backup("deployments", &forward.name)?;
        }
        WorkloadKind::PersistentVolumeClaim => {}
    }
    for volume in forward.volumes() {
        if let Some(claim) = work.read_backup("persistentvolumeclaims", &volume.claim)? {
            originals.claims.push(claim);
        }
        if let Some(pv) = work.read_backup("persistentvolumes", &volume.old_volume)? {
            originals.volumes.push(pv);
        }
    }
    Ok(originals)
}

async fn read_live(client: &Client, forward: &Plan) -> Result<LiveState, RollbackError> {
    let api_error = |what: &str| {
        let what = what.to_owned();
        move |source| RollbackError::Api { what, source }
    };
    let pods: Api<Pod> = Api::namespaced(client.clone(), &forward.namespace);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), &forward.namespace);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let mut live = LiveState::default();
    match forward.kind {
        WorkloadKind::StatefulSet => {
            live.statefulset = Api::<StatefulSet>::namespaced(client.clone(), &forward.namespace)
                .get_opt(&forward.name)
                .await
                .map_err(api_error("statefulsets"))?;
        }
        WorkloadKind::Deployment => {
            live.deployment = Api::<Deployment>::namespaced(client.clone(), &forward.namespace)
                .get_opt(&forward.name)
                .await
                .map_err(api_error("deployments"))?;
        }
        WorkloadKind::PersistentVolumeClaim => {}
    }
    for batch in &forward.batches {
        for pod in &batch.pods {
            live.pods
                .extend(pods.get_opt(&pod.name).await.map_err(api_error("pods"))?);
        }
        for volume in &batch.volumes {
            live.claims.extend(
                claims
                    .get_opt(&volume.claim)
                    .await
                    .map_err(api_error("persistentvolumeclaims"))?,
            );
            let new_name = volume.new_volume.metadata.name.clone().unwrap_or_default();
            for name in [&volume.old_volume, &new_name] {
                live.volumes.extend(
                    volumes
                        .get_opt(name)
                        .await
                        .map_err(api_error("persistentvolumes"))?,
                );
            }
        }
    }
    Ok(live)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::plan::{PlanOptions, plan_statefulset};
    use crate::snapshot::WorkloadSnapshot;

    fn forward() -> (Plan, WorkloadSnapshot) {
        let snapshot: WorkloadSnapshot =
            serde_json::from_value(crate::plan::tests::snapshot_json(2)).unwrap();
        let plan = plan_statefulset(&snapshot, "gp2-csi", PlanOptions::default()).unwrap();
        (plan, snapshot)
    }

    fn originals(snapshot: &WorkloadSnapshot) -> Originals {
        Originals {
            statefulset: snapshot.statefulset.clone(),
            deployment: None,
            claims: snapshot.claims.clone(),
            volumes: snapshot.volumes.clone(),
        }
    }

    fn with_uid<K: kube::Resource + Clone>(object: &K, uid: &str) -> K {
        let mut object = object.clone();
        object.meta_mut().uid = Some(uid.to_owned());
        object
    }

    #[test]
    fn nothing_migrated_yet_only_restores_policies_and_the_set() {
        let (plan, snapshot) = forward();
        let live = LiveState {
            statefulset: snapshot.statefulset.clone(),
            pods: snapshot.pods.clone(),
            claims: snapshot.claims.clone(),
            volumes: snapshot.volumes.clone(),
            ..Default::default()
        };
        let back = plan_rollback(&plan, &originals(&snapshot), &live).unwrap();
        assert!(back.batches.is_empty());
        assert!(!back.steps.iter().any(|s| matches!(
            s,
            Step::DeletePod { .. } | Step::DeleteClaim { .. } | Step::DeleteVolume { .. }
        )));
        assert_eq!(back.target_storage_class, "gp2");
        assert_eq!(
            back.steps
                .iter()
                .filter(
                    |s| matches!(s, Step::RestoreReclaimPolicy { policy, .. } if policy == "Delete")
                )
                .count(),
            2
        );
    }

    #[test]
    fn completed_migration_is_reversed_replica_by_replica() {
        let (plan, snapshot) = forward();
        let mut live = LiveState {
            statefulset: Some(with_uid(
                plan.recreated_statefulset.as_ref().unwrap(),
                "new-set",
            )),
            ..Default::default()
        };
        for (i, batch) in plan.batches.iter().enumerate() {
            live.pods
                .push(with_uid(&batch.pods[0].recreated, &format!("new-pod-{i}")));
            for volume in &batch.volumes {
                live.claims
                    .push(with_uid(&volume.new_claim, &format!("new-claim-{i}")));
                live.volumes
                    .push(with_uid(&volume.new_volume, &format!("new-pv-{i}")));
            }
        }
        let back = plan_rollback(&plan, &originals(&snapshot), &live).unwrap();
        assert_eq!(back.uid, "new-set");
        assert_eq!(back.batches.len(), 2);
        let volume = back.volume_by_claim("data-web-1").unwrap();
        assert_eq!(volume.old_volume, "pvc-1-csi");
        assert_eq!(volume.new_volume.metadata.name.as_deref(), Some("pvc-1"));
        let spec = volume.new_volume.spec.as_ref().unwrap();
        assert!(spec.aws_elastic_block_store.is_some());
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Retain")
        );
        assert_eq!(spec.claim_ref.as_ref().unwrap().uid, None);
        assert!(
            !volume
                .new_claim
                .metadata
                .annotations
                .as_ref()
                .unwrap()
                .contains_key("pv.kubernetes.io/bind-completed")
        );
        // 2 Retain + orphan delete + 2 × 8 + recreate + adoption + 2 restores.
        assert_eq!(back.steps.len(), 2 + 1 + 16 + 2 + 2);
    }

    #[test]
    fn a_foreign_claim_stops_the_rollback() {
        let (plan, snapshot) = forward();
        let mut stranger = snapshot.claims[0].clone();
        stranger.metadata.uid = Some("someone-else".into());
        stranger.metadata.annotations = None;
        let live = LiveState {
            claims: vec![stranger],
            ..Default::default()
        };
        assert!(matches!(
            plan_rollback(&plan, &originals(&snapshot), &live),
            Err(RollbackError::Foreign(_))
        ));
    }
}
