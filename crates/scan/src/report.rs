//! What a scan returns: inventory, findings, per-workload readiness and counts; serialised as `csi-migrate.scan/v1`.

use std::cmp::Ordering;
use std::fmt;

use serde::Serialize;

use crate::snapshot::ServerVersion;

/// The `schemaVersion` of the JSON report. Bumped only for incompatible changes.
pub const SCHEMA_VERSION: &str = "csi-migrate.scan/v1";

/// How much a finding matters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Migration must not start (or volumes are already broken) until this is fixed.
    Blocker,
    /// Migration can proceed, but the user should know (downtime, guarded risk).
    Warning,
    /// For the record.
    Info,
}

impl Severity {
    /// Every severity, most serious first.
    pub const ALL: [Severity; 3] = [Severity::Blocker, Severity::Warning, Severity::Info];

    /// `blocker`, `warning` or `info`.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Blocker => "blocker",
            Severity::Warning => "warning",
            Severity::Info => "info",
        }
    }

    fn rank(self) -> u8 {
        match self {
            Severity::Blocker => 2,
            Severity::Warning => 1,
            Severity::Info => 0,
        }
    }

    /// Whether `self` is at least as serious as `other`.
    pub fn at_least(self, other: Severity) -> bool {
        self.rank() >= other.rank()
    }
}

impl PartialOrd for Severity {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Ordered by seriousness: `Info < Warning < Blocker`.
impl Ord for Severity {
    fn cmp(&self, other: &Self) -> Ordering {
        self.rank().cmp(&other.rank())
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The object a finding or inventory entry is about.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub struct ObjectRef {
    /// The Kubernetes kind (`PersistentVolume`), or `Input` for findings about the input itself.
    pub kind: String,
    /// The namespace; absent for cluster-scoped objects.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub namespace: Option<String>,
    /// The name.
    pub name: String,
}

impl ObjectRef {
    /// A cluster-scoped object.
    pub fn cluster(kind: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: None,
            name: name.to_owned(),
        }
    }

    /// A namespaced object.
    pub fn namespaced(kind: &str, namespace: &str, name: &str) -> Self {
        Self {
            kind: kind.to_owned(),
            namespace: Some(namespace.to_owned()),
            name: name.to_owned(),
        }
    }
}

/// `Kind/name` or `Kind/namespace/name`.
impl fmt::Display for ObjectRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.namespace {
            Some(ns) => write!(f, "{}/{}/{}", self.kind, ns, self.name),
            None => write!(f, "{}/{}", self.kind, self.name),
        }
    }
}

/// One problem (or fact) a rule found about one object.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// The rule's stable code, e.g. `CSI_DRIVER_MISSING`.
    pub code: &'static str,
    /// How much it matters.
    pub severity: Severity,
    /// The object concerned.
    pub object: ObjectRef,
    /// What is wrong, in words a person can act on.
    pub message: String,
    /// What to do about it.
    pub remedy: String,
    /// The in-tree plugin the finding is about, when it is about one plugin's volumes
    /// (a node missing one driver concerns only workloads using that plugin).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub plugin: Option<&'static str>,
}

impl Finding {
    /// The same finding, about `plugin`'s volumes.
    pub fn for_plugin(mut self, plugin: &'static str) -> Self {
        self.plugin = Some(plugin);
        self
    }
}

/// A StorageClass whose provisioner is an in-tree plugin.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StorageClassEntry {
    /// Class name.
    pub name: String,
    /// The in-tree provisioner.
    pub plugin: String,
    /// The CSI driver that replaces it.
    pub csi_driver: String,
    /// Whether it is marked as the default class.
    pub is_default: bool,
    /// PersistentVolumes of this class.
    pub persistent_volumes: usize,
    /// PersistentVolumeClaims of this class.
    pub persistent_volume_claims: usize,
}

/// A PersistentVolume whose spec has an in-tree source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeEntry {
    /// PV name.
    pub name: String,
    /// The in-tree plugin of its source.
    pub plugin: String,
    /// The CSI driver that replaces it.
    pub csi_driver: String,
    /// `status.phase`, if reported.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phase: Option<String>,
    /// `spec.persistentVolumeReclaimPolicy` (`Retain` when unset, as the API server defaults).
    pub reclaim_policy: String,
    /// `spec.storageClassName`, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
    /// The claim it is bound or reserved to (`namespace/name`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// `Filesystem` or `Block`.
    pub volume_mode: String,
    /// The `pv.kubernetes.io/migrated-to` annotation, if present.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub migrated_to: Option<String>,
    /// The CSI volume handle the translation produces; absent when it cannot be translated.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csi_volume_handle: Option<String>,
}

/// A PersistentVolumeClaim bound to an in-tree PV.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PersistentVolumeClaimEntry {
    /// Namespace.
    pub namespace: String,
    /// Name.
    pub name: String,
    /// The bound PV.
    pub volume: String,
    /// The in-tree plugin of that PV.
    pub plugin: String,
    /// `spec.storageClassName`, if set.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub storage_class: Option<String>,
}

/// An in-tree volume written inline in a Pod or a pod template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct InlineVolumeEntry {
    /// The Pod or workload whose (template) spec has the volume.
    pub owner: ObjectRef,
    /// The volume's name in the pod spec.
    pub volume: String,
    /// Its in-tree plugin.
    pub plugin: String,
}

/// A StatefulSet volumeClaimTemplate that names an in-tree class.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClaimTemplateEntry {
    /// The StatefulSet.
    pub stateful_set: ObjectRef,
    /// The template's name (PVCs are `<template>-<set>-<ordinal>`).
    pub template: String,
    /// The in-tree class it names (or the in-tree default class when it names none).
    pub storage_class: String,
    /// That class's provisioner.
    pub plugin: String,
}

/// Per-plugin totals.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct PluginEntry {
    /// In-tree plugin name.
    pub plugin: String,
    /// The CSI driver that replaces it.
    pub csi_driver: String,
    /// In-tree StorageClasses with this provisioner.
    pub storage_classes: usize,
    /// PVs with this source.
    pub persistent_volumes: usize,
    /// PVCs bound to those PVs.
    pub persistent_volume_claims: usize,
    /// Inline volumes with this source.
    pub inline_volumes: usize,
}

/// Everything still on in-tree plugins.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Inventory {
    /// Totals per plugin, by plugin name.
    pub plugins: Vec<PluginEntry>,
    /// The default StorageClass(es) whose provisioner is in-tree.
    pub in_tree_default_storage_classes: Vec<String>,
    /// In-tree StorageClasses.
    pub storage_classes: Vec<StorageClassEntry>,
    /// PVs with in-tree sources.
    pub persistent_volumes: Vec<PersistentVolumeEntry>,
    /// PVCs bound to them.
    pub persistent_volume_claims: Vec<PersistentVolumeClaimEntry>,
    /// Inline in-tree volumes in Pods and pod templates.
    pub inline_volumes: Vec<InlineVolumeEntry>,
    /// StatefulSet claim templates on in-tree classes.
    pub claim_templates: Vec<ClaimTemplateEntry>,
}

/// Whether a workload can be migrated in place now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Readiness {
    /// `csi-migrate migrate` can convert it now (warnings may apply).
    Ready,
    /// At least one blocker concerns it, its claims, volumes, classes, drivers or nodes.
    Blocked,
    /// No blocker, but `migrate` cannot do it alone: inline volumes (edit the template) or
    /// a kind it does not drive (stop the workload, then `migrate pvc` each claim).
    Manual,
}

impl Readiness {
    /// `ready`, `blocked` or `manual`.
    pub fn as_str(self) -> &'static str {
        match self {
            Readiness::Ready => "ready",
            Readiness::Blocked => "blocked",
            Readiness::Manual => "manual",
        }
    }
}

/// A workload (or standalone claim) that uses in-tree storage, and whether it can move now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadReport {
    /// The workload: StatefulSet, Deployment, DaemonSet, ReplicaSet, Job, CronJob, Pod, or a
    /// PersistentVolumeClaim used by no workload.
    pub workload: ObjectRef,
    /// Desired replicas, where the kind has them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub replicas: Option<i32>,
    /// Every claim it uses (by name, in its namespace).
    pub claims: Vec<String>,
    /// Those claims bound to in-tree PVs.
    pub in_tree_claims: Vec<String>,
    /// Names of its inline in-tree volumes.
    pub inline_volumes: Vec<String>,
    /// Names of its claim templates on in-tree classes.
    pub in_tree_claim_templates: Vec<String>,
    /// The verdict.
    pub readiness: Readiness,
    /// Codes of the blockers that concern it (deduplicated, sorted).
    pub blockers: Vec<&'static str>,
    /// Codes of the warnings that concern it (deduplicated, sorted).
    pub warnings: Vec<&'static str>,
    /// Why the verdict is `manual`, when it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// Counts for dashboards and pipeline gates.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Summary {
    /// Findings of severity blocker.
    pub blockers: usize,
    /// Findings of severity warning.
    pub warnings: usize,
    /// Findings of severity info.
    pub infos: usize,
    /// In-tree StorageClasses.
    pub in_tree_storage_classes: usize,
    /// PVs with in-tree sources.
    pub in_tree_persistent_volumes: usize,
    /// PVCs bound to them.
    pub in_tree_persistent_volume_claims: usize,
    /// Inline in-tree volumes.
    pub in_tree_inline_volumes: usize,
    /// Workloads reported.
    pub workloads: usize,
    /// Of which ready.
    pub workloads_ready: usize,
    /// Of which blocked.
    pub workloads_blocked: usize,
    /// Of which manual.
    pub workloads_manual: usize,
}

/// The full result of a scan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Always [`SCHEMA_VERSION`].
    pub schema_version: &'static str,
    /// The server version the version-dependent rules used, when known.
    pub server_version: Option<ServerVersion>,
    /// The namespace the scan was limited to, if any.
    pub namespace: Option<String>,
    /// Everything on in-tree plugins.
    pub inventory: Inventory,
    /// Every finding, most serious first, then by code and object.
    pub findings: Vec<Finding>,
    /// Per-workload readiness.
    pub workloads: Vec<WorkloadReport>,
    /// Counts.
    pub summary: Summary,
}

impl Report {
    /// The most serious severity among the findings.
    pub fn worst_severity(&self) -> Option<Severity> {
        self.findings.iter().map(|f| f.severity).max()
    }

    /// How many findings are at least `severity`.
    pub fn count_at_least(&self, severity: Severity) -> usize {
        self.findings
            .iter()
            .filter(|f| f.severity.at_least(severity))
            .count()
    }
}
