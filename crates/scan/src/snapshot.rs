//! The plain-data picture of a cluster that the scan reads: typed objects, secret names, the server version.

use std::collections::BTreeSet;
use std::fmt;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::Node;
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, StorageClass};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Serialize;

use crate::objects::{PersistentVolume, PersistentVolumeClaim, Pod};

/// Every kind of object a snapshot holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
pub enum ResourceKind {
    /// `storage.k8s.io/v1` StorageClass.
    StorageClass,
    /// `v1` PersistentVolume.
    PersistentVolume,
    /// `v1` PersistentVolumeClaim.
    PersistentVolumeClaim,
    /// `v1` Pod.
    Pod,
    /// `apps/v1` StatefulSet.
    StatefulSet,
    /// `apps/v1` Deployment.
    Deployment,
    /// `apps/v1` DaemonSet.
    DaemonSet,
    /// `apps/v1` ReplicaSet.
    ReplicaSet,
    /// `batch/v1` Job.
    Job,
    /// `batch/v1` CronJob.
    CronJob,
    /// `v1` Node.
    Node,
    /// `storage.k8s.io/v1` CSIDriver.
    #[serde(rename = "CSIDriver")]
    CsiDriver,
    /// `storage.k8s.io/v1` CSINode.
    #[serde(rename = "CSINode")]
    CsiNode,
    /// `policy/v1` PodDisruptionBudget.
    PodDisruptionBudget,
    /// `v1` Secret (names only).
    Secret,
}

impl ResourceKind {
    /// Every kind, in the order the live loader lists them.
    pub const ALL: [ResourceKind; 15] = [
        ResourceKind::StorageClass,
        ResourceKind::PersistentVolume,
        ResourceKind::PersistentVolumeClaim,
        ResourceKind::Pod,
        ResourceKind::StatefulSet,
        ResourceKind::Deployment,
        ResourceKind::DaemonSet,
        ResourceKind::ReplicaSet,
        ResourceKind::Job,
        ResourceKind::CronJob,
        ResourceKind::Node,
        ResourceKind::CsiDriver,
        ResourceKind::CsiNode,
        ResourceKind::PodDisruptionBudget,
        ResourceKind::Secret,
    ];

    /// The Kubernetes `kind`, e.g. `CSIDriver`.
    pub fn as_str(self) -> &'static str {
        match self {
            ResourceKind::StorageClass => "StorageClass",
            ResourceKind::PersistentVolume => "PersistentVolume",
            ResourceKind::PersistentVolumeClaim => "PersistentVolumeClaim",
            ResourceKind::Pod => "Pod",
            ResourceKind::StatefulSet => "StatefulSet",
            ResourceKind::Deployment => "Deployment",
            ResourceKind::DaemonSet => "DaemonSet",
            ResourceKind::ReplicaSet => "ReplicaSet",
            ResourceKind::Job => "Job",
            ResourceKind::CronJob => "CronJob",
            ResourceKind::Node => "Node",
            ResourceKind::CsiDriver => "CSIDriver",
            ResourceKind::CsiNode => "CSINode",
            ResourceKind::PodDisruptionBudget => "PodDisruptionBudget",
            ResourceKind::Secret => "Secret",
        }
    }

    /// The kind for a Kubernetes `kind` string, matched exactly.
    pub fn from_kind(kind: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.as_str() == kind)
    }

    /// The lower-case plural used in URLs and RBAC rules, e.g. `csidrivers`.
    pub fn plural(self) -> &'static str {
        match self {
            ResourceKind::StorageClass => "storageclasses",
            ResourceKind::PersistentVolume => "persistentvolumes",
            ResourceKind::PersistentVolumeClaim => "persistentvolumeclaims",
            ResourceKind::Pod => "pods",
            ResourceKind::StatefulSet => "statefulsets",
            ResourceKind::Deployment => "deployments",
            ResourceKind::DaemonSet => "daemonsets",
            ResourceKind::ReplicaSet => "replicasets",
            ResourceKind::Job => "jobs",
            ResourceKind::CronJob => "cronjobs",
            ResourceKind::Node => "nodes",
            ResourceKind::CsiDriver => "csidrivers",
            ResourceKind::CsiNode => "csinodes",
            ResourceKind::PodDisruptionBudget => "poddisruptionbudgets",
            ResourceKind::Secret => "secrets",
        }
    }

    /// Whether objects of this kind live in a namespace.
    pub fn is_namespaced(self) -> bool {
        !matches!(
            self,
            ResourceKind::StorageClass
                | ResourceKind::PersistentVolume
                | ResourceKind::Node
                | ResourceKind::CsiDriver
                | ResourceKind::CsiNode
        )
    }
}

impl fmt::Display for ResourceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The namespace and name of a Secret. The scan never reads secret data.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct SecretName {
    /// The Secret's namespace.
    pub namespace: String,
    /// The Secret's name.
    pub name: String,
}

/// Where the server version came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum VersionSource {
    /// The API server said so (`/version`, or `kubectl version -o json` output in a dump).
    ApiServer,
    /// Given on the command line (`--server-version`).
    User,
    /// The newest kubelet among the nodes: a lower bound, since kubelets are never newer than the API server.
    Kubelet,
}

/// A Kubernetes `major.minor` version.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
pub struct ServerVersion {
    /// Major version (1).
    pub major: u32,
    /// Minor version (31).
    pub minor: u32,
    /// Where it came from.
    pub source: VersionSource,
}

impl ServerVersion {
    /// Parses `1.31`, `v1.31.2`, `v1.31.2-gke.100` into a version with the given source.
    pub fn parse(text: &str, source: VersionSource) -> Option<Self> {
        let text = text.trim().trim_start_matches('v');
        let mut parts = text.split('.');
        let major = leading_number(parts.next()?)?;
        let minor = leading_number(parts.next()?)?;
        Some(Self {
            major,
            minor,
            source,
        })
    }

    /// Builds a version from the separate `major` and `minor` strings of `/version`
    /// (GKE and EKS write minors like `31+`).
    pub fn from_parts(major: &str, minor: &str, source: VersionSource) -> Option<Self> {
        Some(Self {
            major: leading_number(major)?,
            minor: leading_number(minor)?,
            source,
        })
    }

    /// Whether this version is at least `major.minor`.
    pub fn at_least(&self, major: u32, minor: u32) -> bool {
        (self.major, self.minor) >= (major, minor)
    }
}

impl fmt::Display for ServerVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.major, self.minor)
    }
}

fn leading_number(text: &str) -> Option<u32> {
    let digits: &str = &text[..text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len())];
    digits.parse().ok()
}

/// Everything the scan looks at, as plain data. Loaders fill it; [`crate::scan`] reads it.
#[derive(Debug, Clone, Default)]
pub struct ClusterSnapshot {
    /// StorageClasses.
    pub storage_classes: Vec<StorageClass>,
    /// PersistentVolumes (slim: what the scan reads).
    pub persistent_volumes: Vec<PersistentVolume>,
    /// PersistentVolumeClaims (slim: what the scan reads).
    pub persistent_volume_claims: Vec<PersistentVolumeClaim>,
    /// Pods (slim: what the scan reads).
    pub pods: Vec<Pod>,
    /// StatefulSets.
    pub stateful_sets: Vec<StatefulSet>,
    /// Deployments.
    pub deployments: Vec<Deployment>,
    /// DaemonSets.
    pub daemon_sets: Vec<DaemonSet>,
    /// ReplicaSets.
    pub replica_sets: Vec<ReplicaSet>,
    /// Jobs.
    pub jobs: Vec<Job>,
    /// CronJobs.
    pub cron_jobs: Vec<CronJob>,
    /// Nodes.
    pub nodes: Vec<Node>,
    /// CSIDrivers.
    pub csi_drivers: Vec<CSIDriver>,
    /// CSINodes.
    pub csi_nodes: Vec<CSINode>,
    /// PodDisruptionBudgets.
    pub pod_disruption_budgets: Vec<PodDisruptionBudget>,
    /// The names of Secrets (never their data).
    pub secrets: Vec<SecretName>,
    /// The API server version, when known.
    pub server_version: Option<ServerVersion>,
    /// The kinds that were actually collected. A kind missing here means "not looked
    /// at" (a dump without it, or a list the scanner was not allowed to make), which is
    /// not the same as "there are none": rules that need it are skipped and reported.
    pub collected: BTreeSet<ResourceKind>,
    /// What vCenter said about the vSphere volumes (`scan --vcenter`); `None` when not asked.
    pub vcenter: Option<VcenterFacts>,
}

impl ClusterSnapshot {
    /// How many objects of `kind` the snapshot holds.
    pub fn count(&self, kind: ResourceKind) -> usize {
        match kind {
            ResourceKind::StorageClass => self.storage_classes.len(),
            ResourceKind::PersistentVolume => self.persistent_volumes.len(),
            ResourceKind::PersistentVolumeClaim => self.persistent_volume_claims.len(),
            ResourceKind::Pod => self.pods.len(),
            ResourceKind::StatefulSet => self.stateful_sets.len(),
            ResourceKind::Deployment => self.deployments.len(),
            ResourceKind::DaemonSet => self.daemon_sets.len(),
            ResourceKind::ReplicaSet => self.replica_sets.len(),
            ResourceKind::Job => self.jobs.len(),
            ResourceKind::CronJob => self.cron_jobs.len(),
            ResourceKind::Node => self.nodes.len(),
            ResourceKind::CsiDriver => self.csi_drivers.len(),
            ResourceKind::CsiNode => self.csi_nodes.len(),
            ResourceKind::PodDisruptionBudget => self.pod_disruption_budgets.len(),
            ResourceKind::Secret => self.secrets.len(),
        }
    }

    /// Makes room for `additional` more objects of `kind`.
    pub fn reserve(&mut self, kind: ResourceKind, additional: usize) {
        match kind {
            ResourceKind::StorageClass => self.storage_classes.reserve_exact(additional),
            ResourceKind::PersistentVolume => self.persistent_volumes.reserve_exact(additional),
            ResourceKind::PersistentVolumeClaim => {
                self.persistent_volume_claims.reserve_exact(additional)
            }
            ResourceKind::Pod => self.pods.reserve_exact(additional),
            ResourceKind::StatefulSet => self.stateful_sets.reserve_exact(additional),
            ResourceKind::Deployment => self.deployments.reserve_exact(additional),
            ResourceKind::DaemonSet => self.daemon_sets.reserve_exact(additional),
            ResourceKind::ReplicaSet => self.replica_sets.reserve_exact(additional),
            ResourceKind::Job => self.jobs.reserve_exact(additional),
            ResourceKind::CronJob => self.cron_jobs.reserve_exact(additional),
            ResourceKind::Node => self.nodes.reserve_exact(additional),
            ResourceKind::CsiDriver => self.csi_drivers.reserve_exact(additional),
            ResourceKind::CsiNode => self.csi_nodes.reserve_exact(additional),
            ResourceKind::PodDisruptionBudget => {
                self.pod_disruption_budgets.reserve_exact(additional)
            }
            ResourceKind::Secret => self.secrets.reserve_exact(additional),
        }
    }

    /// Moves every object of `other` to the end of this snapshot (without copying when
    /// this snapshot has none of that kind yet) and merges what was collected.
    pub fn absorb(&mut self, other: ClusterSnapshot) {
        fn take<T>(into: &mut Vec<T>, mut from: Vec<T>) {
            if into.is_empty() {
                *into = from;
            } else {
                into.append(&mut from);
            }
        }
        take(&mut self.storage_classes, other.storage_classes);
        take(&mut self.persistent_volumes, other.persistent_volumes);
        take(
            &mut self.persistent_volume_claims,
            other.persistent_volume_claims,
        );
        take(&mut self.pods, other.pods);
        take(&mut self.stateful_sets, other.stateful_sets);
        take(&mut self.deployments, other.deployments);
        take(&mut self.daemon_sets, other.daemon_sets);
        take(&mut self.replica_sets, other.replica_sets);
        take(&mut self.jobs, other.jobs);
        take(&mut self.cron_jobs, other.cron_jobs);
        take(&mut self.nodes, other.nodes);
        take(&mut self.csi_drivers, other.csi_drivers);
        take(&mut self.csi_nodes, other.csi_nodes);
        take(
            &mut self.pod_disruption_budgets,
            other.pod_disruption_budgets,
        );
        take(&mut self.secrets, other.secrets);
        if other.server_version.is_some() {
            self.server_version = other.server_version;
        }
        self.collected.extend(other.collected);
    }

    /// Drops objects that appear twice (same kind, namespace and name), keeping the first;
    /// returns how many were dropped.
    pub fn remove_duplicates(&mut self) -> usize {
        fn dedup<T>(items: &mut Vec<T>, key: impl Fn(&T) -> (&str, &str)) -> usize {
            let mut seen = crate::fast_hash::HashSet::with_capacity_and_hasher(
                items.len(),
                Default::default(),
            );
            let keep: Vec<bool> = items.iter().map(|item| seen.insert(key(item))).collect();
            drop(seen);
            let before = items.len();
            let mut flags = keep.into_iter();
            items.retain(|_| flags.next().unwrap_or(true));
            before - items.len()
        }
        fn meta(m: &ObjectMeta) -> (&str, &str) {
            (
                m.namespace.as_deref().unwrap_or_default(),
                m.name.as_deref().unwrap_or_default(),
            )
        }
        // The two largest kinds on a second thread, the rest here.
        let volumes = &mut self.persistent_volumes;
        let claims = &mut self.persistent_volume_claims;
        std::thread::scope(|scope| {
            let large = scope.spawn(|| {
                dedup(volumes, |o| meta(&o.metadata)) + dedup(claims, |o| meta(&o.metadata))
            });
            let rest = dedup(&mut self.storage_classes, |o| meta(&o.metadata))
                + dedup(&mut self.pods, |o| meta(&o.metadata))
                + dedup(&mut self.stateful_sets, |o| meta(&o.metadata))
                + dedup(&mut self.deployments, |o| meta(&o.metadata))
                + dedup(&mut self.daemon_sets, |o| meta(&o.metadata))
                + dedup(&mut self.replica_sets, |o| meta(&o.metadata))
                + dedup(&mut self.jobs, |o| meta(&o.metadata))
                + dedup(&mut self.cron_jobs, |o| meta(&o.metadata))
                + dedup(&mut self.nodes, |o| meta(&o.metadata))
                + dedup(&mut self.csi_drivers, |o| meta(&o.metadata))
                + dedup(&mut self.csi_nodes, |o| meta(&o.metadata))
                + dedup(&mut self.pod_disruption_budgets, |o| meta(&o.metadata))
                + dedup(&mut self.secrets, |s| {
                    (s.namespace.as_str(), s.name.as_str())
                });
            let large = large
                .join()
                .unwrap_or_else(|panic| std::panic::resume_unwind(panic));
            large + rest
        })
    }

    /// Marks every kind as collected (a snapshot built by hand or listed live in full).
    pub fn mark_all_collected(&mut self) {
        self.collected.extend(ResourceKind::ALL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_parse_from_every_common_shape() {
        let v = |t| ServerVersion::parse(t, VersionSource::User).map(|v| (v.major, v.minor));
        assert_eq!(v("1.31"), Some((1, 31)));
        assert_eq!(v("v1.30.4"), Some((1, 30)));
        assert_eq!(v("v1.29.2-gke.1000"), Some((1, 29)));
        assert_eq!(v("one"), None);
        assert_eq!(v("1"), None);
        let eks = ServerVersion::from_parts("1", "31+", VersionSource::ApiServer);
        assert_eq!(eks.map(|v| v.minor), Some(31));
    }

    #[test]
    fn kinds_round_trip_through_their_names() {
        for kind in ResourceKind::ALL {
            assert_eq!(ResourceKind::from_kind(kind.as_str()), Some(kind));
        }
    }
}

/// What a vCenter said about the cluster's in-tree vSphere volumes and classes, gathered by
/// `scan --vcenter` (the vSphere rules read it; without it they stay silent).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcenterFacts {
    /// `host[:port]` of vCenter, for messages.
    pub host: String,
    /// `about.apiVersion`, e.g. `7.0.3.0`.
    pub api_version: String,
    /// `about.build`.
    pub build: String,
    /// Whether this version can give an in-tree VMDK a CNS identity (6.7U3l or later).
    pub registration_supported: bool,
    /// The datacenters searched, in order.
    pub datacenters: Vec<String>,
    /// Per in-tree `volumePath` (the PV's exact string).
    pub disks: std::collections::BTreeMap<String, VcenterDisk>,
    /// Storage policy names; `None` when the policy service was not asked or did not answer.
    pub storage_policies: Option<BTreeSet<String>>,
}

/// Where vCenter found one in-tree `volumePath`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcenterDisk {
    /// The first searched datacenter holding the path's datastore; `None`: in none of them.
    pub datacenter: Option<String>,
    /// Whether the VMDK exists on that datastore.
    pub vmdk_exists: bool,
}
