//! The pure planner: a cluster snapshot and a target class in, preflight blockers or the exact ordered steps out.

use std::collections::BTreeMap;
use std::fmt;

use csi_migrate_translate::Translator;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{
    ObjectReference, PersistentVolume, PersistentVolumeClaim, PersistentVolumeClaimSpec,
    PersistentVolumeSpec, Pod,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{ObjectMeta, OwnerReference};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::quantity::quantity_bytes;
use crate::snapshot::StatefulSetSnapshot;

/// Schema identifier written into every plan.
pub const PLAN_API_VERSION: &str = "csi-migrate.plan/v1";
/// Annotation on every object the tool creates, naming the in-tree PV it replaces.
pub const MIGRATED_FROM_ANNOTATION: &str = "csi-migrate.io/migrated-from";
/// Suffix of the new CSI PV's name: `<old PV name>-csi`.
pub const NEW_VOLUME_SUFFIX: &str = "-csi";
const CSI_VSPHERE: &str = "csi.vsphere.vmware.com";

/// Choices the user makes for a plan.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PlanOptions {
    /// Allow migrating a single-replica workload, which is down while its pod is recreated.
    pub allow_downtime: bool,
    /// The reclaim policy the new PVs get at the end; default: each old PV's own.
    pub reclaim_policy: Option<ReclaimPolicy>,
}

/// A reclaim policy the user may choose for the new PVs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReclaimPolicy {
    /// Keep the disk when the claim goes.
    Retain,
    /// Delete the disk when the claim goes.
    Delete,
}

impl ReclaimPolicy {
    /// The API value.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Retain => "Retain",
            Self::Delete => "Delete",
        }
    }
}

/// One reason the migration cannot start, naming the object and field at fault.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Blocker {
    /// `kind/namespace/name` of the object at fault.
    pub object: String,
    /// The field at fault, as a path (`spec.persistentVolumeReclaimPolicy`).
    pub field: String,
    /// What is wrong and what to do.
    pub message: String,
}

impl fmt::Display for Blocker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.object, self.field, self.message)
    }
}

/// Why no plan could be made.
#[derive(Debug, Error)]
pub enum PlanError {
    /// Preflight found at least one blocker; every one found is listed.
    #[error("{}", render_blockers(.0))]
    Blocked(Vec<Blocker>),
}

fn render_blockers(blockers: &[Blocker]) -> String {
    let mut out = format!("{} blocker(s) prevent this migration:", blockers.len());
    for blocker in blockers {
        out.push_str("\n  - ");
        out.push_str(&blocker.to_string());
    }
    out
}

/// The migration of one StatefulSet: everything the runner needs, stored as `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Always [`PLAN_API_VERSION`].
    pub api_version: String,
    /// Namespace of the StatefulSet.
    pub namespace: String,
    /// Name of the StatefulSet.
    pub statefulset: String,
    /// uid of the StatefulSet as planned (the orphan-delete precondition).
    pub statefulset_uid: String,
    /// The CSI StorageClass the volumes move to.
    pub target_storage_class: String,
    /// The CSI driver of the new PVs.
    pub driver: String,
    /// Per replica, in the order they are migrated.
    pub replicas: Vec<ReplicaPlan>,
    /// The StatefulSet created at the end (templates on the target class, server fields stripped).
    pub recreated_statefulset: StatefulSet,
    /// The ordered steps.
    pub steps: Vec<Step>,
    /// Things worth knowing that do not block the migration.
    pub warnings: Vec<String>,
}

/// One replica: its pod and volumes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReplicaPlan {
    /// Ordinal of the pod.
    pub ordinal: i32,
    /// Pod name, `<sts>-<ordinal>`.
    pub pod: String,
    /// uid of the pod as planned (the delete precondition).
    pub pod_uid: String,
    /// The pod the runner creates after the claims are replaced (no owner: the recreated
    /// StatefulSet adopts it).
    pub recreated_pod: Pod,
    /// One per volumeClaimTemplate.
    pub volumes: Vec<VolumePlan>,
}

/// One claim and the PV behind it, before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VolumePlan {
    /// Claim name (unchanged by the migration).
    pub claim: String,
    /// uid of the old claim.
    pub claim_uid: String,
    /// Name of the old in-tree PV.
    pub old_volume: String,
    /// uid of the old in-tree PV.
    pub old_volume_uid: String,
    /// The reclaim policy the user had.
    pub original_reclaim_policy: String,
    /// The policy the new PV gets at the end, once Bound (the original unless
    /// `--reclaim-policy` chose another); `Retain` until then.
    pub final_reclaim_policy: String,
    /// The CSI volume handle naming the disk.
    pub volume_handle: String,
    /// The CSI PV to create (Retain, pre-bound to the claim by namespace/name).
    pub new_volume: PersistentVolume,
    /// The claim to create (pre-bound to the new PV by `volumeName`).
    pub new_claim: PersistentVolumeClaim,
}

/// One step of a migration, with the one API write (or wait) it performs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "camelCase")]
pub enum Step {
    /// Patch the old PV's reclaim policy to Retain and wait for delete-protection finalizers to go.
    RetainVolume {
        /// PV name.
        volume: String,
        /// Its uid (a JSON-patch `test`).
        uid: String,
    },
    /// Delete the StatefulSet with `propagationPolicy: Orphan` and wait until it is gone.
    OrphanDeleteStatefulSet {
        /// Its uid (delete precondition).
        uid: String,
    },
    /// Delete a pod, wait until the object is gone and no VolumeAttachment names its old PVs.
    DeletePod {
        /// Pod name.
        pod: String,
        /// Its uid (delete precondition).
        uid: String,
    },
    /// Delete a claim and wait until it is gone.
    DeleteClaim {
        /// Claim name.
        claim: String,
        /// Its uid (delete precondition).
        uid: String,
    },
    /// Delete the old (Retain) PV object and wait until it is gone; the disk stays.
    DeleteVolume {
        /// PV name.
        volume: String,
        /// Its uid (delete precondition).
        uid: String,
    },
    /// Create the new CSI PV, pre-bound to the claim.
    CreateVolume {
        /// New PV name.
        volume: String,
    },
    /// Create the claim, pre-bound to the new PV.
    CreateClaim {
        /// Claim name.
        claim: String,
    },
    /// Wait until the claim is Bound to the new PV and the PV's claimRef has the claim's uid.
    AwaitClaimBound {
        /// Claim name.
        claim: String,
        /// New PV name.
        volume: String,
    },
    /// Create the pod from its backup (no owner, no node).
    CreatePod {
        /// Pod name.
        pod: String,
    },
    /// Wait until the pod is Running and Ready.
    AwaitPodReady {
        /// Pod name.
        pod: String,
    },
    /// Create the StatefulSet again, its templates on the target class.
    RecreateStatefulSet,
    /// Wait until the StatefulSet owns every pod and reports them Ready.
    AwaitAdoption,
    /// Set the new PV's reclaim policy back to what the user had.
    RestoreReclaimPolicy {
        /// New PV name.
        volume: String,
        /// The policy.
        policy: String,
    },
}

impl Step {
    /// One line: the API call (or wait) this step makes.
    pub fn describe(&self, namespace: &str, statefulset: &str) -> String {
        match self {
            Self::RetainVolume { volume, .. } => {
                format!("PATCH persistentvolume {volume} spec.persistentVolumeReclaimPolicy=Retain")
            }
            Self::OrphanDeleteStatefulSet { uid } => format!(
                "DELETE statefulset {namespace}/{statefulset} (propagationPolicy=Orphan, uid={uid}), wait gone"
            ),
            Self::DeletePod { pod, uid } => format!(
                "DELETE pod {namespace}/{pod} (uid={uid}), wait gone and its volumes detached"
            ),
            Self::DeleteClaim { claim, uid } => {
                format!("DELETE persistentvolumeclaim {namespace}/{claim} (uid={uid}), wait gone")
            }
            Self::DeleteVolume { volume, uid } => {
                format!("DELETE persistentvolume {volume} (uid={uid}), wait gone; disk kept")
            }
            Self::CreateVolume { volume } => {
                format!("CREATE persistentvolume {volume} (CSI, Retain, pre-bound)")
            }
            Self::CreateClaim { claim } => {
                format!("CREATE persistentvolumeclaim {namespace}/{claim} (pre-bound)")
            }
            Self::AwaitClaimBound { claim, volume } => {
                format!("WAIT persistentvolumeclaim {namespace}/{claim} Bound to {volume}")
            }
            Self::CreatePod { pod } => format!("CREATE pod {namespace}/{pod} from backup"),
            Self::AwaitPodReady { pod } => format!("WAIT pod {namespace}/{pod} Running and Ready"),
            Self::RecreateStatefulSet => {
                format!("CREATE statefulset {namespace}/{statefulset} on the target class")
            }
            Self::AwaitAdoption => {
                format!("WAIT statefulset {namespace}/{statefulset} owns every pod, all Ready")
            }
            Self::RestoreReclaimPolicy { volume, policy } => {
                format!(
                    "PATCH persistentvolume {volume} spec.persistentVolumeReclaimPolicy={policy}"
                )
            }
        }
    }
}

impl Plan {
    /// The volume plan of claim `claim`.
    pub fn volume_by_claim(&self, claim: &str) -> Option<&VolumePlan> {
        self.volumes().find(|v| v.claim == claim)
    }

    /// The volume plan whose new PV is `volume`.
    pub fn volume_by_new_name(&self, volume: &str) -> Option<&VolumePlan> {
        self.volumes()
            .find(|v| v.new_volume.metadata.name.as_deref() == Some(volume))
    }

    /// The volume plan whose old PV is `volume`.
    pub fn volume_by_old_name(&self, volume: &str) -> Option<&VolumePlan> {
        self.volumes().find(|v| v.old_volume == volume)
    }

    /// The replica whose pod is `pod`.
    pub fn replica(&self, pod: &str) -> Option<&ReplicaPlan> {
        self.replicas.iter().find(|r| r.pod == pod)
    }

    /// Every volume of every replica.
    pub fn volumes(&self) -> impl Iterator<Item = &VolumePlan> {
        self.replicas.iter().flat_map(|r| r.volumes.iter())
    }
}

fn pv_object(name: &str) -> String {
    format!("persistentvolume/{name}")
}

fn is_ready(pod: &Pod) -> bool {
    let Some(status) = pod.status.as_ref() else {
        return false;
    };
    status.phase.as_deref() == Some("Running")
        && status
            .conditions
            .iter()
            .flatten()
            .any(|c| c.type_ == "Ready" && c.status == "True")
}

/// Annotations a fresh claim must not carry (binding and provisioning state of the old one).
pub(crate) fn is_binding_annotation(key: &str) -> bool {
    key.starts_with("pv.kubernetes.io/")
        || key.starts_with("volume.kubernetes.io/")
        || key.starts_with("volume.beta.kubernetes.io/")
        || key == "kubectl.kubernetes.io/last-applied-configuration"
}

pub(crate) fn strip_server_fields(meta: &mut ObjectMeta) {
    meta.uid = None;
    meta.resource_version = None;
    meta.creation_timestamp = None;
    meta.deletion_timestamp = None;
    meta.deletion_grace_period_seconds = None;
    meta.generation = None;
    meta.managed_fields = None;
    meta.owner_references = None;
    meta.self_link = None;
}

/// The pod as the runner recreates it: same name, labels (identity and revision hash),
/// annotations and spec; no owner (the recreated StatefulSet adopts it), no node (the
/// scheduler places it by the new PV's node affinity), no status.
fn recreated_pod(pod: &Pod) -> Pod {
    let mut pod = pod.clone();
    strip_server_fields(&mut pod.metadata);
    pod.status = None;
    if let Some(spec) = pod.spec.as_mut() {
        spec.node_name = None;
    }
    pod
}

/// The StatefulSet as recreated: templates on the target class, server fields stripped.
pub(crate) fn recreated_statefulset(set: &StatefulSet, target_class: &str) -> StatefulSet {
    let mut set = set.clone();
    strip_server_fields(&mut set.metadata);
    set.metadata.finalizers = None;
    set.status = None;
    for template in set.spec.volume_claim_templates.iter_mut().flatten() {
        template
            .spec
            .get_or_insert_with(Default::default)
            .storage_class_name = Some(target_class.to_owned());
        template.status = None;
    }
    set
}

/// The `(driver, handle)` a PV names: its CSI source, or the translation of its in-tree source.
pub fn volume_identity(pv: &PersistentVolume) -> Option<(String, String)> {
    let spec = pv.spec.as_ref()?;
    if let Some(csi) = spec.csi.as_ref() {
        return Some((csi.driver.clone(), csi.volume_handle.clone()));
    }
    let translated = Translator::new().pv_to_csi(pv).ok()?;
    let csi = translated.spec?.csi?;
    Some((csi.driver, csi.volume_handle))
}

fn owner_description(owner: &OwnerReference) -> String {
    format!("{}/{}", owner.kind, owner.name)
}

/// Plans the rolling in-place migration of one StatefulSet's volumes to `target_class`.
///
/// Pure: reads only `snapshot`. Returns every blocker found, or the plan.
pub fn plan_statefulset(
    snapshot: &StatefulSetSnapshot,
    target_class: &str,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let mut blockers = Vec::new();
    let mut warnings = Vec::new();
    let mut block = |object: String, field: &str, message: String| {
        blockers.push(Blocker {
            object,
            field: field.to_owned(),
            message,
        });
    };
    let set = &snapshot.statefulset;
    let name = set.metadata.name.clone().unwrap_or_default();
    let namespace = set.metadata.namespace.clone().unwrap_or_default();
    let set_uid = set.metadata.uid.clone().unwrap_or_default();
    let set_object = format!("statefulset/{namespace}/{name}");
    let set_spec = &set.spec;
    let replicas = set_spec.replicas.unwrap_or(1);

    if set.metadata.deletion_timestamp.is_some() {
        block(
            set_object.clone(),
            "metadata.deletionTimestamp",
            "the StatefulSet is being deleted".into(),
        );
    }
    for owner in set.metadata.owner_references.iter().flatten() {
        block(
            set_object.clone(),
            "metadata.ownerReferences",
            format!(
                "owned by {}, which would recreate it mid-migration; migrate through its owner or remove the reference",
                owner_description(owner)
            ),
        );
    }
    if replicas == 0 {
        block(
            set_object.clone(),
            "spec.replicas",
            "0 replicas: nothing runs to migrate rolling; scale up first".into(),
        );
    } else if replicas == 1 && !options.allow_downtime {
        block(
            set_object.clone(),
            "spec.replicas",
            "a single replica is down while its volume is replaced; pass --allow-downtime".into(),
        );
    }
    let annotations = set.metadata.annotations.clone().unwrap_or_default();
    let labels = set.metadata.labels.clone().unwrap_or_default();
    if annotations.keys().any(|k| {
        k.starts_with("argocd.argoproj.io/")
            || k.starts_with("meta.helm.sh/")
            || k.starts_with("kustomize.toolkit.fluxcd.io/")
    }) || labels
        .get("app.kubernetes.io/managed-by")
        .map(String::as_str)
        == Some("Helm")
    {
        warnings.push(format!(
            "{set_object} is managed by GitOps/Helm: pause syncing during the migration and change its volumeClaimTemplates' storageClassName to {target_class} at the source, or it will fight the recreated StatefulSet"
        ));
    }
    if annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration") {
        warnings.push(format!(
            "{set_object} carries kubectl's last-applied-configuration with the old volumeClaimTemplates; update your manifest to storageClassName {target_class} before the next kubectl apply"
        ));
    }
    let retention = set_spec.persistent_volume_claim_retention_policy.as_ref();
    if retention.and_then(|r| r.when_deleted.as_deref()) == Some("Delete") {
        warnings.push(format!(
            "{set_object} has persistentVolumeClaimRetentionPolicy.whenDeleted=Delete: handled by deleting it with propagationPolicy=Orphan (the garbage collector strips its ownerReferences from the claims instead of deleting them) while every PV is Retain"
        ));
    }

    // Target class and driver.
    let translator = Translator::new();
    let target = snapshot
        .storage_classes
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(target_class));
    let target_object = format!("storageclass/{target_class}");
    if target.is_none() {
        block(
            target_object.clone(),
            "metadata.name",
            "the target StorageClass does not exist".into(),
        );
    }

    let templates = set_spec.volume_claim_templates.clone().unwrap_or_default();
    if templates.is_empty() {
        block(
            set_object.clone(),
            "spec.volumeClaimTemplates",
            "the StatefulSet has no volumeClaimTemplates: nothing to migrate".into(),
        );
    }

    let mut driver: Option<String> = None;
    let mut replica_plans = Vec::new();
    // Highest ordinal first, as a rolling update goes.
    for ordinal in (0..replicas.max(0)).rev() {
        let pod_name = format!("{name}-{ordinal}");
        let pod_object = format!("pod/{namespace}/{pod_name}");
        let pod = snapshot.pods.iter().find(|p| {
            p.metadata.name.as_deref() == Some(pod_name.as_str())
                && p.metadata.namespace.as_deref() == Some(namespace.as_str())
        });
        let Some(pod) = pod else {
            block(
                pod_object,
                "metadata.name",
                "pod not found; every replica must be Running and Ready before a rolling migration"
                    .into(),
            );
            continue;
        };
        if !is_ready(pod) {
            block(
                pod_object.clone(),
                "status.conditions[Ready]",
                "pod is not Running and Ready".into(),
            );
        }
        if pod.metadata.deletion_timestamp.is_some() {
            block(
                pod_object.clone(),
                "metadata.deletionTimestamp",
                "pod is terminating".into(),
            );
        }
        let controlled_by_set = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == set_uid);
        if !controlled_by_set {
            block(
                pod_object.clone(),
                "metadata.ownerReferences",
                format!("pod is not controlled by {set_object}"),
            );
        }
        let mut volumes = Vec::new();
        for template in &templates {
            let template_name = template.metadata.name.clone().unwrap_or_default();
            let claim_name = format!("{template_name}-{name}-{ordinal}");
            let claim_object = format!("persistentvolumeclaim/{namespace}/{claim_name}");
            let Some(claim) = snapshot.claims.iter().find(|c| {
                c.metadata.name.as_deref() == Some(claim_name.as_str())
                    && c.metadata.namespace.as_deref() == Some(namespace.as_str())
            }) else {
                block(claim_object, "metadata.name", "claim not found".into());
                continue;
            };
            if let Some(volume) = plan_volume(
                snapshot,
                claim,
                &claim_object,
                target_class,
                &set_uid,
                &translator,
                &mut block,
            ) {
                match &driver {
                    Some(d) if *d != volume.1 => block(
                        claim_object.clone(),
                        "spec.volumeName",
                        format!("translates to driver {} but other volumes to {d}", volume.1),
                    ),
                    _ => driver = Some(volume.1.clone()),
                }
                volumes.push(volume.0);
            }
        }
        replica_plans.push(ReplicaPlan {
            ordinal,
            pod: pod_name,
            pod_uid: pod.metadata.uid.clone().unwrap_or_default(),
            recreated_pod: recreated_pod(pod),
            volumes,
        });
    }

    let driver = driver.unwrap_or_default();
    if let Some(target) = target {
        if !driver.is_empty() && target.provisioner != driver {
            block(
                target_object.clone(),
                "provisioner",
                format!(
                    "is {} but the volumes translate to CSI driver {driver}",
                    target.provisioner
                ),
            );
        }
        if translator.is_migratable_in_tree_plugin(&target.provisioner) {
            block(
                target_object.clone(),
                "provisioner",
                format!(
                    "{} is an in-tree plugin, not a CSI driver",
                    target.provisioner
                ),
            );
        }
    }
    if !driver.is_empty()
        && !snapshot
            .csi_drivers
            .iter()
            .any(|d| d.metadata.name.as_deref() == Some(driver.as_str()))
    {
        block(
            format!("csidriver/{driver}"),
            "metadata.name",
            "no CSIDriver object: the driver is not installed".into(),
        );
    }
    for budget in &snapshot.disruption_budgets {
        let selector = budget
            .spec
            .as_ref()
            .and_then(|s| s.selector.as_ref())
            .and_then(|s| s.match_labels.clone())
            .unwrap_or_default();
        let template_labels = set_spec
            .template
            .metadata
            .as_ref()
            .and_then(|m| m.labels.clone());
        let template_labels: BTreeMap<String, String> = template_labels.unwrap_or_default();
        if !selector.is_empty()
            && selector
                .iter()
                .all(|(k, v)| template_labels.get(k) == Some(v))
        {
            warnings.push(format!(
                "poddisruptionbudget/{namespace}/{} covers these pods; the migration deletes them directly, one at a time, each back Ready before the next",
                budget.metadata.name.clone().unwrap_or_default()
            ));
        }
    }

    // Claims of scaled-away ordinals are not migrated (no pod uses them).
    for claim in &snapshot.claims {
        let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
        let scaled_away = templates.iter().any(|t| {
            let prefix = format!("{}-{name}-", t.metadata.name.as_deref().unwrap_or_default());
            claim_name
                .strip_prefix(&prefix)
                .and_then(|ordinal| ordinal.parse::<i32>().ok())
                .is_some_and(|ordinal| ordinal >= replicas)
        });
        if scaled_away && claim.metadata.namespace.as_deref() == Some(namespace.as_str()) {
            warnings.push(format!(
                "persistentvolumeclaim/{namespace}/{claim_name} belongs to a scaled-away ordinal and stays on its in-tree PV; scaling up later reuses it as is"
            ));
        }
    }

    if !blockers.is_empty() {
        return Err(PlanError::Blocked(blockers));
    }

    if let Some(policy) = options.reclaim_policy {
        for volume in replica_plans.iter_mut().flat_map(|r| r.volumes.iter_mut()) {
            volume.final_reclaim_policy = policy.as_str().to_owned();
        }
    }
    let steps = steps_for(&set_uid, &replica_plans);
    Ok(Plan {
        api_version: PLAN_API_VERSION.to_owned(),
        namespace,
        statefulset: name,
        statefulset_uid: set_uid,
        target_storage_class: target_class.to_owned(),
        driver,
        recreated_statefulset: recreated_statefulset(set, target_class),
        replicas: replica_plans,
        steps,
        warnings,
    })
}

/// Checks one claim and its PV; returns its plan and CSI driver, or records blockers.
fn plan_volume(
    snapshot: &StatefulSetSnapshot,
    claim: &PersistentVolumeClaim,
    claim_object: &str,
    target_class: &str,
    set_uid: &str,
    translator: &Translator,
    block: &mut impl FnMut(String, &str, String),
) -> Option<(VolumePlan, String)> {
    let claim_name = claim.metadata.name.clone().unwrap_or_default();
    let namespace = claim.metadata.namespace.clone().unwrap_or_default();
    let claim_uid = claim.metadata.uid.clone().unwrap_or_default();
    let default_spec = PersistentVolumeClaimSpec::default();
    let claim_spec = claim.spec.as_ref().unwrap_or(&default_spec);
    let mut ok = true;
    if claim.metadata.deletion_timestamp.is_some() {
        block(
            claim_object.into(),
            "metadata.deletionTimestamp",
            "claim is being deleted".into(),
        );
        ok = false;
    }
    for owner in claim.metadata.owner_references.iter().flatten() {
        if owner.kind == "StatefulSet" && owner.uid == set_uid {
            continue; // whenDeleted=Delete: stripped by the orphan delete.
        }
        block(
            claim_object.into(),
            "metadata.ownerReferences",
            format!(
                "owned by {}: deleting or recreating that owner would garbage-collect the claim",
                owner_description(owner)
            ),
        );
        ok = false;
    }
    if claim.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
        block(
            claim_object.into(),
            "status.phase",
            "claim is not Bound".into(),
        );
        return None;
    }
    let Some(volume_name) = claim_spec.volume_name.clone().filter(|v| !v.is_empty()) else {
        block(
            claim_object.into(),
            "spec.volumeName",
            "claim names no PV".into(),
        );
        return None;
    };
    let pv_object_name = pv_object(&volume_name);
    let Some(pv) = snapshot
        .volumes
        .iter()
        .find(|p| p.metadata.name.as_deref() == Some(volume_name.as_str()))
    else {
        block(
            pv_object_name,
            "metadata.name",
            "the claim's PV does not exist".into(),
        );
        return None;
    };
    let default_pv_spec = PersistentVolumeSpec::default();
    let pv_spec = pv.spec.as_ref().unwrap_or(&default_pv_spec);
    if pv.metadata.deletion_timestamp.is_some() {
        block(
            pv_object_name.clone(),
            "metadata.deletionTimestamp",
            "PV is being deleted".into(),
        );
        ok = false;
    }
    let claim_ref = pv_spec.claim_ref.as_ref();
    if claim_ref.and_then(|r| r.uid.as_deref()) != Some(claim_uid.as_str())
        || claim_ref.and_then(|r| r.name.as_deref()) != Some(claim_name.as_str())
        || claim_ref.and_then(|r| r.namespace.as_deref()) != Some(namespace.as_str())
    {
        block(
            pv_object_name.clone(),
            "spec.claimRef",
            format!("does not point back at {claim_object} (uid {claim_uid})"),
        );
        ok = false;
    }
    if pv_spec.csi.is_some() {
        block(
            pv_object_name.clone(),
            "spec.csi",
            "PV is already a CSI volume; nothing to migrate".into(),
        );
        return None;
    }
    let translated = match translator.pv_to_csi(pv) {
        Ok(t) => t,
        Err(e) => {
            block(
                pv_object_name,
                "spec",
                format!("no in-tree source that translates to CSI: {e}"),
            );
            return None;
        }
    };
    let Some(translated_spec) = translated.spec.clone() else {
        block(
            pv_object_name,
            "spec",
            "translation produced no spec".into(),
        );
        return None;
    };
    let Some(mut csi) = translated_spec.csi.clone() else {
        block(
            pv_object_name,
            "spec",
            "translation produced no CSI source".into(),
        );
        return None;
    };
    // The translated handle names the disk the way in-tree did (for vSphere: the VMDK
    // path); the resolved one is what the CSI PV must carry (vSphere: the FCD id).
    let translated_handle = csi.volume_handle.clone();
    if let Some(resolved) = snapshot.resolved_volumes.get(&volume_name) {
        csi.driver = resolved.driver.clone();
        csi.volume_handle = resolved.volume_handle.clone();
        csi.volume_attributes = Some(resolved.volume_attributes.clone()).filter(|a| !a.is_empty());
    } else if let Some(reason) = snapshot
        .unresolved_volumes
        .get(&volume_name)
        .filter(|_| csi.driver != CSI_VSPHERE)
    {
        block(
            pv_object_name,
            "spec",
            format!("cannot name this disk as a CSI volume: {reason}"),
        );
        return None;
    } else if csi.driver == CSI_VSPHERE {
        let reason = snapshot
            .unresolved_volumes
            .get(&volume_name)
            .cloned()
            .unwrap_or_else(|| {
                "its first-class disk (FCD) id was not resolved; a CSI PV must name it, not the VMDK path".into()
            });
        block(
            pv_object_name,
            "spec.vsphereVolume.volumePath",
            format!("cannot name this vSphere disk as a CSI volume: {reason}"),
        );
        return None;
    }
    // Capacity: the new PV carries the old capacity; the new claim the old request.
    let capacity = pv_spec
        .capacity
        .as_ref()
        .and_then(|c| c.get("storage"))
        .map(|q| q.0.clone());
    let request = claim_spec
        .resources
        .as_ref()
        .and_then(|r| r.requests.as_ref())
        .and_then(|r| r.get("storage"))
        .map(|q| q.0.clone());
    match (
        capacity.as_deref().and_then(quantity_bytes),
        request.as_deref().and_then(quantity_bytes),
    ) {
        (Some(cap), Some(req)) if cap >= req => {}
        (Some(_), Some(_)) => {
            block(
                pv_object_name.clone(),
                "spec.capacity.storage",
                format!(
                    "{} is smaller than the claim's request {}",
                    capacity.clone().unwrap_or_default(),
                    request.clone().unwrap_or_default()
                ),
            );
            ok = false;
        }
        _ => {
            block(
                pv_object_name.clone(),
                "spec.capacity.storage",
                "capacity or the claim's request is missing or not a quantity".into(),
            );
            ok = false;
        }
    }
    // volumeMode: copied exactly; both sides must agree (nil = Filesystem).
    let pv_mode = pv_spec
        .volume_mode
        .clone()
        .unwrap_or_else(|| "Filesystem".into());
    let claim_mode = claim_spec
        .volume_mode
        .clone()
        .unwrap_or_else(|| "Filesystem".into());
    if pv_mode != claim_mode {
        block(
            claim_object.into(),
            "spec.volumeMode",
            format!("{claim_mode} differs from the PV's {pv_mode}"),
        );
        ok = false;
    }
    // Access modes: the new PV's (translated) modes must cover the claim's.
    let new_modes = translated_spec.access_modes.clone().unwrap_or_default();
    for mode in claim_spec.access_modes.iter().flatten() {
        if !new_modes.contains(mode) {
            block(
                claim_object.into(),
                "spec.accessModes",
                format!("{mode} is not among the CSI PV's access modes {new_modes:?}"),
            );
            ok = false;
        }
    }
    // The new PV's name must be free, and no other PV may name the same disk.
    let new_name = format!("{volume_name}{NEW_VOLUME_SUFFIX}");
    if new_name.len() > 253 {
        block(
            pv_object_name.clone(),
            "metadata.name",
            "too long to derive the new PV's name".into(),
        );
        ok = false;
    }
    for other in &snapshot.volumes {
        let other_name = other.metadata.name.clone().unwrap_or_default();
        if other_name == new_name {
            block(
                pv_object(&other_name),
                "metadata.name",
                format!("the new PV's name {new_name} is taken"),
            );
            ok = false;
        } else if other_name != volume_name
            && volume_identity(other).is_some_and(|(d, h)| {
                d == csi.driver && (h == csi.volume_handle || h == translated_handle)
            })
        {
            block(
                pv_object(&other_name),
                "spec",
                format!(
                    "names the same disk ({}) as {volume_name}",
                    csi.volume_handle
                ),
            );
            ok = false;
        }
    }
    if !ok {
        return None;
    }
    let original_reclaim_policy = pv_spec
        .persistent_volume_reclaim_policy
        .clone()
        .unwrap_or_else(|| "Retain".into());
    let migrated_from: BTreeMap<String, String> =
        [(MIGRATED_FROM_ANNOTATION.to_owned(), volume_name.clone())].into();
    let new_volume = PersistentVolume {
        metadata: ObjectMeta {
            name: Some(new_name.clone()),
            labels: translated.metadata.labels.clone().filter(|l| !l.is_empty()),
            annotations: Some(migrated_from.clone()),
            ..Default::default()
        },
        spec: Some(PersistentVolumeSpec {
            capacity: pv_spec.capacity.clone(),
            access_modes: Some(new_modes),
            volume_mode: Some(pv_mode.clone()),
            csi: Some(csi.clone()),
            node_affinity: translated_spec.node_affinity.clone(),
            mount_options: pv_spec.mount_options.clone(),
            storage_class_name: Some(target_class.to_owned()),
            persistent_volume_reclaim_policy: Some("Retain".into()),
            claim_ref: Some(ObjectReference {
                api_version: Some("v1".into()),
                kind: Some("PersistentVolumeClaim".into()),
                namespace: Some(namespace.clone()),
                name: Some(claim_name.clone()),
                ..Default::default()
            }),
            ..Default::default()
        }),
        status: None,
    };
    let mut claim_annotations: BTreeMap<String, String> = claim
        .metadata
        .annotations
        .clone()
        .unwrap_or_default()
        .into_iter()
        .filter(|(k, _)| !is_binding_annotation(k))
        .collect();
    claim_annotations.extend(migrated_from);
    let new_claim = PersistentVolumeClaim {
        metadata: ObjectMeta {
            name: Some(claim_name.clone()),
            namespace: Some(namespace),
            labels: claim.metadata.labels.clone(),
            annotations: Some(claim_annotations),
            ..Default::default()
        },
        spec: Some(PersistentVolumeClaimSpec {
            access_modes: claim_spec.access_modes.clone(),
            resources: claim_spec.resources.clone(),
            volume_mode: Some(claim_mode),
            storage_class_name: Some(target_class.to_owned()),
            volume_name: Some(new_name),
            ..Default::default()
        }),
        status: None,
    };
    Some((
        VolumePlan {
            claim: claim_name,
            claim_uid,
            old_volume: volume_name,
            old_volume_uid: pv.metadata.uid.clone().unwrap_or_default(),
            final_reclaim_policy: original_reclaim_policy.clone(),
            original_reclaim_policy,
            volume_handle: csi.volume_handle.clone(),
            new_volume,
            new_claim,
        },
        csi.driver,
    ))
}

fn steps_for(set_uid: &str, replicas: &[ReplicaPlan]) -> Vec<Step> {
    let mut steps = Vec::new();
    // Invariant 1: every PV Retain before anything is deleted.
    for volume in replicas.iter().flat_map(|r| &r.volumes) {
        steps.push(Step::RetainVolume {
            volume: volume.old_volume.clone(),
            uid: volume.old_volume_uid.clone(),
        });
    }
    // Invariant 5: nothing may recreate pods or claims while we replace them.
    steps.push(Step::OrphanDeleteStatefulSet {
        uid: set_uid.to_owned(),
    });
    for replica in replicas {
        steps.push(Step::DeletePod {
            pod: replica.pod.clone(),
            uid: replica.pod_uid.clone(),
        });
        for volume in &replica.volumes {
            let new_name = volume.new_volume.metadata.name.clone().unwrap_or_default();
            steps.push(Step::DeleteClaim {
                claim: volume.claim.clone(),
                uid: volume.claim_uid.clone(),
            });
            // Invariant 6: the old PV object goes before the new one names the disk.
            steps.push(Step::DeleteVolume {
                volume: volume.old_volume.clone(),
                uid: volume.old_volume_uid.clone(),
            });
            steps.push(Step::CreateVolume {
                volume: new_name.clone(),
            });
            steps.push(Step::CreateClaim {
                claim: volume.claim.clone(),
            });
            steps.push(Step::AwaitClaimBound {
                claim: volume.claim.clone(),
                volume: new_name,
            });
        }
        steps.push(Step::CreatePod {
            pod: replica.pod.clone(),
        });
        steps.push(Step::AwaitPodReady {
            pod: replica.pod.clone(),
        });
    }
    steps.push(Step::RecreateStatefulSet);
    steps.push(Step::AwaitAdoption);
    for volume in replicas.iter().flat_map(|r| &r.volumes) {
        if volume.final_reclaim_policy != "Retain" {
            steps.push(Step::RestoreReclaimPolicy {
                volume: volume.new_volume.metadata.name.clone().unwrap_or_default(),
                policy: volume.final_reclaim_policy.clone(),
            });
        }
    }
    steps
}

#[cfg(test)]
pub(crate) mod tests;
