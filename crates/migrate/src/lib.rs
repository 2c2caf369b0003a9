//! In-place migration of workloads from in-tree volume plugins to native CSI PersistentVolumes.
//!
//! Same disks, same claim names, no data copy. Two halves:
//!
//! - [`plan::plan_workload`] is pure: a [`snapshot::WorkloadSnapshot`] and a target
//!   StorageClass in, every preflight [`plan::Blocker`] or an ordered list of
//!   [`plan::Step`]s out, with the exact CSI PV and claim each volume gets. One planner
//!   per kind: [`plan::plan_statefulset`] (rolling, below), [`plan::plan_deployment`]
//!   (scale to zero, replace the claims, scale back) and [`plan::plan_claim`] (one claim,
//!   unused or with the bare pods using it recreated).
//! - [`runner::migrate`] / [`runner::resume`] execute a plan: backups and `plan.json`
//!   in the work dir before the first write, a fsynced journal around every step, every
//!   step idempotent (it inspects the cluster first), uid preconditions on deletes,
//!   watches for waits. See [`workdir`] for the files.
//!
//! - [`resolve::resolve_snapshot`] runs before planning: a [`resolve::VolumeHandleResolver`]
//!   fills in the CSI identity of each in-tree PV (translation for every plugin; for vSphere
//!   the first-class disk id from `CnsVSphereVolumeMigration` records or, with a vCenter
//!   configured, by registering the VMDK with CNS). The ids land in the snapshot (backed up)
//!   and the plan; an unresolved vSphere PV is a blocker naming the PV and what to configure.
//!
//! - [`rollback::rollback`] restores the original in-tree objects (same disks) from the
//!   backups, for a completed or an interrupted run; it is itself journaled and resumable.
//!
//! # Order of a rolling StatefulSet migration (ARCHITECTURE §5)
//!
//! 1. Every old PV's reclaim policy → `Retain` (and its delete-protection finalizers gone).
//! 2. The StatefulSet is deleted with `propagationPolicy: Orphan`; we wait until it is
//!    gone, so nothing can recreate a pod or claim from its templates.
//! 3. Per replica, highest ordinal first: delete the pod (wait gone), then per volume
//!    delete the claim (wait gone), delete the old PV object (wait gone — the disk
//!    survives, Retain), create the CSI PV pre-bound to the claim by namespace/name,
//!    create the claim pre-bound by `volumeName` (both on the target class, capacity,
//!    access modes and volumeMode checked by the planner because pre-binding skips the
//!    controller's checks), wait Bound; then create the pod; wait Running+Ready.
//! 4. Recreate the StatefulSet from the backup with its volumeClaimTemplates on the
//!    target class; wait until it owns every pod and reports them Ready.
//! 5. Restore the user's reclaim policy on the new PVs, now Bound.
//!
//! # Who recreates each pod while the StatefulSet is gone
//!
//! **We do, from the pod's own backup**, and the StatefulSet recreated at the end
//! adopts it. The alternative — recreating the StatefulSet after every replica and
//! orphan-deleting it again before the next — was rejected because:
//!
//! - it re-opens, once per replica, the window hazard 5 is about: a live StatefulSet
//!   creates any claim it finds missing from its template, so a crash or a slow cache
//!   during the next replica's claim replacement could give that replica a freshly
//!   provisioned, empty disk; with the set gone for the whole run nothing but this
//!   tool creates claims or pods;
//! - it costs two extra writes and two waits for the garbage collector per replica
//!   (the API budget is 8 writes per volume);
//! - the recreated set would immediately act on every ordinal (OrderedReady gating,
//!   rolling updates), which is exactly what we want to happen once, at the end.
//!
//! The recreated pod keeps the name, labels (`statefulset.kubernetes.io/pod-name`,
//! `controller-revision-hash`, …), annotations and spec of the original, and drops
//! `ownerReferences` and `nodeName` (the scheduler places it by the new PV's node
//! affinity). Because the StatefulSet is recreated with a byte-identical
//! `spec.template`, its revision hash equals the pods' label, so adoption does not
//! restart them (hazard 23).
//!
//! # Retention policy
//!
//! `persistentVolumeClaimRetentionPolicy.whenDeleted: Delete` puts the StatefulSet's
//! controller reference on its claims. Deleting the set with `propagationPolicy:
//! Orphan` makes the garbage collector strip those references instead of deleting the
//! claims (k8s-semantics §4.2, §4.6), and every PV is `Retain` before that; so the
//! policy is handled, not a blocker. Claims owned by anything else (a pod, via
//! `whenScaled: Delete` on a scaled-away ordinal, or a foreign controller) block.

pub mod dry_run;
pub mod events;
pub mod plan;
pub mod quantity;
pub mod resolve;
pub mod rollback;
pub mod runner;
pub mod snapshot;
pub mod workdir;

pub use dry_run::dry_run;
/// The Kubernetes client the runner and loader take (re-exported so callers need no `kube` dependency).
pub use kube::Client;
pub use plan::{
    Batch, Blocker, Plan, PlanError, PlanOptions, PodPlan, ReclaimPolicy, Step, VolumePlan,
    plan_claim, plan_deployment, plan_statefulset, plan_workload,
};
pub use resolve::{
    ResolveError, ResolvedVolume, TranslationResolver, VcenterConfig, VolumeHandleResolver,
    VsphereResolver, resolve_snapshot,
};
pub use rollback::{RollbackError, plan_rollback, rollback};
pub use runner::{RunError, RunOptions, RunSummary, StopPoint, migrate, resume};
pub use snapshot::{
    LoadError, WorkloadKind, WorkloadRef, WorkloadSnapshot, load_statefulset_snapshot,
    load_workload_snapshot, select_workloads,
};
