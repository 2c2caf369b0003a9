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
pub use crate::snapshot::WorkloadKind;
use crate::snapshot::WorkloadSnapshot;

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

impl PlanError {
    /// The snapshot holds no workload of `kind` (the caller picked the wrong planner).
    fn missing(kind: WorkloadKind) -> Self {
        Self::Blocked(vec![Blocker {
            object: kind.resource().to_owned(),
            field: "metadata.name".to_owned(),
            message: format!("the snapshot holds no {kind}"),
        }])
    }
}

fn render_blockers(blockers: &[Blocker]) -> String {
    let mut out = format!("{} blocker(s) prevent this migration:", blockers.len());
    for blocker in blockers {
        out.push_str("\n  - ");
        out.push_str(&blocker.to_string());
    }
    out
}

/// The migration of one workload: everything the runner needs, stored as `plan.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Plan {
    /// Always [`PLAN_API_VERSION`].
    pub api_version: String,
    /// What is migrated.
    pub kind: WorkloadKind,
    /// Namespace of the workload.
    pub namespace: String,
    /// Name of the StatefulSet, Deployment or claim.
    pub name: String,
    /// uid of the StatefulSet or Deployment as planned (its delete or scale precondition);
    /// empty for a claim.
    pub uid: String,
    /// The CSI StorageClass the volumes move to.
    pub target_storage_class: String,
    /// The CSI driver of the new PVs.
    pub driver: String,
    /// Pods stopped together and the claims replaced meanwhile, in order: one per
    /// StatefulSet replica; one for a Deployment (its pods go by scaling to zero); one
    /// for a claim (with the bare pods using it, if any).
    pub batches: Vec<Batch>,
    /// StatefulSet only: the set created at the end (templates on the target class).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub recreated_statefulset: Option<StatefulSet>,
    /// Deployment only: the replicas it is scaled back to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment_replicas: Option<i32>,
    /// The ordered steps.
    pub steps: Vec<Step>,
    /// Things worth knowing that do not block the migration.
    pub warnings: Vec<String>,
}

/// Pods stopped together while the claims they use are replaced.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Batch {
    /// The pods deleted before and recreated after the claims (none for a Deployment,
    /// whose pods go by scaling, or an unused claim).
    pub pods: Vec<PodPlan>,
    /// The claims replaced.
    pub volumes: Vec<VolumePlan>,
}

/// One pod the runner deletes and recreates from its backup.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PodPlan {
    /// Pod name.
    pub name: String,
    /// uid as planned (the delete precondition).
    pub uid: String,
    /// The pod the runner creates after the claims are replaced (no owner: a recreated
    /// StatefulSet adopts it; no node: the scheduler places it by the new PV's affinity).
    pub recreated: Pod,
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
    /// Set the Deployment's `spec.replicas` (0 before the claims are replaced, the
    /// recorded count after).
    ScaleDeployment {
        /// The replica count.
        replicas: i32,
    },
    /// Wait until no pod uses the plan's claims and no VolumeAttachment names their old PVs.
    AwaitClaimsReleased,
    /// Wait until the Deployment has rolled out: every replica updated and available.
    AwaitDeploymentAvailable,
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
    /// One line: the API call (or wait) this step makes in `plan`.
    pub fn describe(&self, plan: &Plan) -> String {
        let namespace = &plan.namespace;
        let workload = format!("{} {namespace}/{}", plan.kind, plan.name);
        match self {
            Self::RetainVolume { volume, .. } => {
                format!("PATCH persistentvolume {volume} spec.persistentVolumeReclaimPolicy=Retain")
            }
            Self::OrphanDeleteStatefulSet { uid } => {
                format!("DELETE {workload} (propagationPolicy=Orphan, uid={uid}), wait gone")
            }
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
            Self::RecreateStatefulSet => format!("CREATE {workload} on the target class"),
            Self::AwaitAdoption => format!("WAIT {workload} owns every pod, all Ready"),
            Self::ScaleDeployment { replicas } => {
                format!("PATCH {workload} spec.replicas={replicas}")
            }
            Self::AwaitClaimsReleased => {
                format!("WAIT no pod in {namespace} uses the claims and their volumes are detached")
            }
            Self::AwaitDeploymentAvailable => {
                format!("WAIT {workload} rolled out, every replica available")
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

    /// The batch holding pod `pod`, and the pod's plan.
    pub fn pod(&self, pod: &str) -> Option<(&Batch, &PodPlan)> {
        self.batches
            .iter()
            .find_map(|b| Some((b, b.pods.iter().find(|p| p.name == pod)?)))
    }

    /// Every volume of every batch.
    pub fn volumes(&self) -> impl Iterator<Item = &VolumePlan> {
        self.batches.iter().flat_map(|b| b.volumes.iter())
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

/// Whether `pod` has not finished and mounts one of `claims` (so the claim's protection
/// keeps it, and its disk stays attached).
pub(crate) fn mounts_any_claim(pod: &Pod, claims: &[&str]) -> bool {
    let phase = pod.status.as_ref().and_then(|s| s.phase.as_deref());
    !matches!(phase, Some("Succeeded" | "Failed"))
        && pod
            .spec
            .iter()
            .flat_map(|s| s.volumes.iter().flatten())
            .filter_map(|v| v.persistent_volume_claim.as_ref())
            .any(|c| claims.contains(&c.claim_name.as_str()))
}

/// Pods of `snapshot` that have not finished and mount claim `claim`.
fn pods_using<'a>(snapshot: &'a WorkloadSnapshot, claim: &str) -> Vec<&'a Pod> {
    snapshot
        .pods
        .iter()
        .filter(|pod| mounts_any_claim(pod, &[claim]))
        .collect()
}

/// Whether claim `claim` is bound to a PV that already is a CSI volume.
fn is_on_csi(snapshot: &WorkloadSnapshot, claim: &str) -> bool {
    let volume = snapshot
        .claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(claim))
        .and_then(|c| c.spec.as_ref()?.volume_name.as_deref());
    volume.is_some_and(|volume| {
        snapshot.volumes.iter().any(|pv| {
            pv.metadata.name.as_deref() == Some(volume)
                && pv.spec.as_ref().is_some_and(|s| s.csi.is_some())
        })
    })
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

/// Blockers and warnings a planner gathers.
#[derive(Debug, Default)]
pub(crate) struct Preflight {
    blockers: Vec<Blocker>,
    warnings: Vec<String>,
}

impl Preflight {
    fn block(&mut self, object: impl Into<String>, field: &str, message: impl Into<String>) {
        self.blockers.push(Blocker {
            object: object.into(),
            field: field.to_owned(),
            message: message.into(),
        });
    }

    fn warn(&mut self, message: String) {
        self.warnings.push(message);
    }

    /// Blocks on deletion and foreign owners of the workload; warns about GitOps, Helm and
    /// kubectl's last-applied configuration, which would put the old class back.
    fn check_workload_meta(&mut self, meta: &ObjectMeta, object: &str, target_class: &str) {
        if meta.deletion_timestamp.is_some() {
            self.block(object, "metadata.deletionTimestamp", "it is being deleted");
        }
        for owner in meta.owner_references.iter().flatten() {
            self.block(
                object,
                "metadata.ownerReferences",
                format!(
                    "owned by {}, which would recreate or rescale it mid-migration; migrate through its owner or remove the reference",
                    owner_description(owner)
                ),
            );
        }
        let annotations = meta.annotations.clone().unwrap_or_default();
        let managed = annotations.keys().any(|k| {
            k.starts_with("argocd.argoproj.io/")
                || k.starts_with("meta.helm.sh/")
                || k.starts_with("kustomize.toolkit.fluxcd.io/")
        }) || meta
            .labels
            .as_ref()
            .and_then(|l| l.get("app.kubernetes.io/managed-by"))
            .map(String::as_str)
            == Some("Helm");
        if managed {
            self.warn(format!(
                "{object} is managed by GitOps/Helm: pause syncing during the migration and move its claims to storageClassName {target_class} at the source, or it will fight the migration"
            ));
        }
        if annotations.contains_key("kubectl.kubernetes.io/last-applied-configuration") {
            self.warn(format!(
                "{object} carries kubectl's last-applied-configuration; update your manifest to storageClassName {target_class} before the next kubectl apply"
            ));
        }
    }

    /// Warns about PodDisruptionBudgets covering pods with `pod_labels`.
    fn warn_disruption_budgets(
        &mut self,
        snapshot: &WorkloadSnapshot,
        namespace: &str,
        pod_labels: &BTreeMap<String, String>,
        how: &str,
    ) {
        for budget in &snapshot.disruption_budgets {
            let selector = budget
                .spec
                .as_ref()
                .and_then(|s| s.selector.as_ref())
                .and_then(|s| s.match_labels.clone())
                .unwrap_or_default();
            if !selector.is_empty() && selector.iter().all(|(k, v)| pod_labels.get(k) == Some(v)) {
                self.warn(format!(
                    "poddisruptionbudget/{namespace}/{} covers these pods; {how}",
                    budget.metadata.name.clone().unwrap_or_default()
                ));
            }
        }
    }

    /// Plans the claims `names` (in `namespace`), checking they all go to one driver.
    fn plan_claims(
        &mut self,
        context: &VolumeContext<'_>,
        names: &[String],
        driver: &mut Option<String>,
    ) -> Vec<VolumePlan> {
        let mut volumes = Vec::new();
        for claim_name in names {
            let claim_object = format!("persistentvolumeclaim/{}/{claim_name}", context.namespace);
            let Some(claim) = context.snapshot.claims.iter().find(|c| {
                c.metadata.name.as_deref() == Some(claim_name.as_str())
                    && c.metadata.namespace.as_deref() == Some(context.namespace)
            }) else {
                self.block(claim_object, "metadata.name", "claim not found");
                continue;
            };
            if let Some((volume, volume_driver)) = plan_volume(context, claim, &claim_object, self)
            {
                match driver.as_deref() {
                    Some(d) if d != volume_driver => self.block(
                        claim_object.clone(),
                        "spec.volumeName",
                        format!("translates to driver {volume_driver} but other volumes to {d}"),
                    ),
                    _ => *driver = Some(volume_driver),
                }
                volumes.push(volume);
            }
        }
        volumes
    }

    /// The target class exists, is provisioned by `driver` (a CSI driver), which is installed.
    fn check_target(&mut self, context: &VolumeContext<'_>, driver: &str) {
        let target_class = context.target_class;
        let target_object = format!("storageclass/{target_class}");
        let target = context
            .snapshot
            .storage_classes
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some(target_class));
        let Some(target) = target else {
            self.block(
                target_object,
                "metadata.name",
                "the target StorageClass does not exist",
            );
            return;
        };
        if !driver.is_empty() && target.provisioner != driver {
            self.block(
                target_object.clone(),
                "provisioner",
                format!(
                    "is {} but the volumes translate to CSI driver {driver}",
                    target.provisioner
                ),
            );
        }
        if context
            .translator
            .is_migratable_in_tree_plugin(&target.provisioner)
        {
            self.block(
                target_object,
                "provisioner",
                format!(
                    "{} is an in-tree plugin, not a CSI driver",
                    target.provisioner
                ),
            );
        }
        if !driver.is_empty()
            && !context
                .snapshot
                .csi_drivers
                .iter()
                .any(|d| d.metadata.name.as_deref() == Some(driver))
        {
            self.block(
                format!("csidriver/{driver}"),
                "metadata.name",
                "no CSIDriver object: the driver is not installed",
            );
        }
        // The new pods can only start where the driver's node plugin runs.
        let nodes = &context.snapshot.csi_nodes;
        let without: Vec<&str> = nodes
            .iter()
            .filter(|n| !n.spec.drivers.iter().any(|d| d.name == driver))
            .filter_map(|n| n.metadata.name.as_deref())
            .collect();
        if !driver.is_empty() && !nodes.is_empty() {
            if without.len() == nodes.len() {
                self.block(
                    format!("csidriver/{driver}"),
                    "csinode.spec.drivers",
                    "no node's CSINode lists the driver: its node plugin runs nowhere, so no pod could mount the new PVs",
                );
            } else if !without.is_empty() {
                self.warn(format!(
                    "the CSI driver {driver} is not registered on node(s) {}: pods placed there cannot mount the new PVs",
                    without.join(", ")
                ));
            }
        }
    }

    /// The plan with its steps, or every blocker found; `--reclaim-policy` applied to
    /// every volume.
    fn finish(self, mut plan: Plan, options: PlanOptions) -> Result<Plan, PlanError> {
        if !self.blockers.is_empty() {
            return Err(PlanError::Blocked(self.blockers));
        }
        if let Some(policy) = options.reclaim_policy {
            for volume in plan.batches.iter_mut().flat_map(|b| b.volumes.iter_mut()) {
                volume.final_reclaim_policy = policy.as_str().to_owned();
            }
        }
        plan.warnings = self.warnings;
        Ok(with_steps(plan))
    }
}

/// A workload's name, namespace and uid, and `kind/namespace/name` as blockers name it.
pub(crate) struct WorkloadIdentity {
    name: String,
    namespace: String,
    uid: String,
    object: String,
}

impl WorkloadIdentity {
    fn of(kind: WorkloadKind, meta: &ObjectMeta) -> Self {
        let name = meta.name.clone().unwrap_or_default();
        let namespace = meta.namespace.clone().unwrap_or_default();
        Self {
            object: format!("{kind}/{namespace}/{name}"),
            uid: meta.uid.clone().unwrap_or_default(),
            name,
            namespace,
        }
    }
}

/// What every claim of one plan is checked against.
pub(crate) struct VolumeContext<'a> {
    snapshot: &'a WorkloadSnapshot,
    namespace: &'a str,
    target_class: &'a str,
    /// uid of the workload whose own controller reference on a claim is expected
    /// (StatefulSet `whenDeleted: Delete`); empty when none is.
    owner_uid: &'a str,
    translator: Translator,
}

/// Plans the migration of the workload `snapshot` is about.
pub fn plan_workload(
    snapshot: &WorkloadSnapshot,
    target_class: &str,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    match snapshot.kind() {
        WorkloadKind::StatefulSet => plan_statefulset(snapshot, target_class, options),
        WorkloadKind::Deployment => plan_deployment(snapshot, target_class, options),
        WorkloadKind::PersistentVolumeClaim => plan_claim(snapshot, target_class, options),
    }
}

/// The steps of every batch: its pods deleted, each claim replaced, its pods recreated.
fn batch_steps(batches: &[Batch]) -> Vec<Step> {
    let mut steps = Vec::new();
    for batch in batches {
        // An empty uid: the pod is already gone (rollback).
        for pod in batch.pods.iter().filter(|p| !p.uid.is_empty()) {
            steps.push(Step::DeletePod {
                pod: pod.name.clone(),
                uid: pod.uid.clone(),
            });
        }
        for volume in &batch.volumes {
            steps.extend(replace_claim_steps(volume));
        }
        for pod in &batch.pods {
            steps.push(Step::CreatePod {
                pod: pod.name.clone(),
            });
            steps.push(Step::AwaitPodReady {
                pod: pod.name.clone(),
            });
        }
    }
    steps
}

/// Delete the claim and old PV (invariant 6: the old PV object goes before the new one
/// names the disk), create both again, wait Bound. Steps left out where the object is
/// already gone (rollback) carry an empty uid.
pub(crate) fn replace_claim_steps(volume: &VolumePlan) -> Vec<Step> {
    let new_name = volume.new_volume.metadata.name.clone().unwrap_or_default();
    let mut steps = Vec::new();
    if !volume.claim_uid.is_empty() {
        steps.push(Step::DeleteClaim {
            claim: volume.claim.clone(),
            uid: volume.claim_uid.clone(),
        });
    }
    if !volume.old_volume_uid.is_empty() {
        steps.push(Step::DeleteVolume {
            volume: volume.old_volume.clone(),
            uid: volume.old_volume_uid.clone(),
        });
    }
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
    steps
}

/// Invariant 1: every old PV Retain before anything is deleted.
fn retain_steps(batches: &[Batch]) -> Vec<Step> {
    batches
        .iter()
        .flat_map(|b| &b.volumes)
        .map(|v| Step::RetainVolume {
            volume: v.old_volume.clone(),
            uid: v.old_volume_uid.clone(),
        })
        .collect()
}

/// The user's reclaim policy back on every new PV that should not stay Retain.
fn restore_steps(batches: &[Batch]) -> Vec<Step> {
    batches
        .iter()
        .flat_map(|b| &b.volumes)
        .filter(|v| v.final_reclaim_policy != "Retain")
        .map(|v| Step::RestoreReclaimPolicy {
            volume: v.new_volume.metadata.name.clone().unwrap_or_default(),
            policy: v.final_reclaim_policy.clone(),
        })
        .collect()
}

/// Fills in the steps of `plan` from its batches.
fn with_steps(mut plan: Plan) -> Plan {
    let retain = retain_steps(&plan.batches);
    let restore = restore_steps(&plan.batches);
    plan.steps = workload_steps(&plan, retain, restore);
    plan
}

/// The steps of `plan`: `retain` first, then the kind's own steps around its batches,
/// `restore` last. Shared with rollback, whose plans may have nothing left to replace
/// and objects already gone (empty uids).
pub(crate) fn workload_steps(plan: &Plan, retain: Vec<Step>, restore: Vec<Step>) -> Vec<Step> {
    let mut steps = retain;
    match plan.kind {
        WorkloadKind::StatefulSet => {
            // Invariant 5: nothing may recreate pods or claims while we replace them.
            if !plan.uid.is_empty() {
                steps.push(Step::OrphanDeleteStatefulSet {
                    uid: plan.uid.clone(),
                });
            }
            steps.extend(batch_steps(&plan.batches));
            steps.push(Step::RecreateStatefulSet);
            steps.push(Step::AwaitAdoption);
        }
        WorkloadKind::Deployment => {
            if plan.volumes().next().is_some() {
                steps.push(Step::ScaleDeployment { replicas: 0 });
                steps.push(Step::AwaitClaimsReleased);
                steps.extend(batch_steps(&plan.batches));
            }
            steps.push(Step::ScaleDeployment {
                replicas: plan.deployment_replicas.unwrap_or(0),
            });
            steps.push(Step::AwaitDeploymentAvailable);
        }
        WorkloadKind::PersistentVolumeClaim => {
            let mut batch = batch_steps(&plan.batches);
            if plan.volumes().next().is_some() {
                // After the pods' deletes (if any), before the first claim step.
                let first_claim_step = batch
                    .iter()
                    .position(|s| !matches!(s, Step::DeletePod { .. }))
                    .unwrap_or(batch.len());
                batch.insert(first_claim_step, Step::AwaitClaimsReleased);
            }
            steps.extend(batch);
        }
    }
    steps.extend(restore);
    steps
}

mod claim;
mod deployment;
mod statefulset;

pub use claim::plan_claim;
pub use deployment::plan_deployment;
pub use statefulset::plan_statefulset;

/// Checks one claim and its PV; returns the volume's plan and its CSI driver.
fn plan_volume(
    context: &VolumeContext<'_>,
    claim: &PersistentVolumeClaim,
    claim_object: &str,
    preflight: &mut Preflight,
) -> Option<(VolumePlan, String)> {
    let VolumeContext {
        snapshot,
        target_class,
        owner_uid,
        translator,
        ..
    } = context;
    let mut block = |object: String, field: &str, message: String| {
        preflight.block(object, field, message);
    };
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
        if !owner_uid.is_empty() && owner.uid == *owner_uid {
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
            storage_class_name: Some((*target_class).to_owned()),
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
            storage_class_name: Some((*target_class).to_owned()),
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

#[cfg(test)]
pub(crate) mod tests;
