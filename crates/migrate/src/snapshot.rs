//! The plain-data view of the cluster a plan is computed from, and its loader.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::autoscaling::v2::HorizontalPodAutoscaler;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, StorageClass};
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::resolve::ResolvedVolume;

/// The kinds of workload `migrate` converts.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub enum WorkloadKind {
    /// Rolling, one replica at a time.
    #[default]
    StatefulSet,
    /// Scaled to zero, its claims converted, scaled back.
    Deployment,
    /// One claim: unused, or with the bare pods using it recreated (`--allow-downtime`).
    PersistentVolumeClaim,
}

impl WorkloadKind {
    /// The lower-case resource name (`statefulset`), as in `kubectl get statefulset`.
    pub fn resource(self) -> &'static str {
        match self {
            Self::StatefulSet => "statefulset",
            Self::Deployment => "deployment",
            Self::PersistentVolumeClaim => "persistentvolumeclaim",
        }
    }
}

impl std::fmt::Display for WorkloadKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.resource())
    }
}

/// Everything the planners look at, as read from the cluster (or built by a test). Exactly
/// one of `statefulset`, `deployment` and `claim` names the workload.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct WorkloadSnapshot {
    /// The StatefulSet to migrate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statefulset: Option<StatefulSet>,
    /// The Deployment to migrate.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployment: Option<Deployment>,
    /// The name of the one claim to migrate (a bare `pvc` target).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claim: Option<String>,
    /// HorizontalPodAutoscalers in the namespace (a Deployment's is recorded in the plan).
    #[serde(default)]
    pub autoscalers: Vec<HorizontalPodAutoscaler>,
    /// Pods in its namespace.
    pub pods: Vec<Pod>,
    /// Claims in its namespace.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Every PersistentVolume of the cluster (needed to find name and disk collisions).
    pub volumes: Vec<PersistentVolume>,
    /// Every StorageClass.
    pub storage_classes: Vec<StorageClass>,
    /// Every CSIDriver.
    pub csi_drivers: Vec<CSIDriver>,
    /// Every CSINode: which drivers each node's kubelet has registered.
    #[serde(default)]
    pub csi_nodes: Vec<CSINode>,
    /// PodDisruptionBudgets in the namespace.
    pub disruption_budgets: Vec<PodDisruptionBudget>,
    /// CSI identity of in-tree PVs, by PV name, filled by [`crate::resolve::resolve_snapshot`]
    /// before planning; overrides translation (vSphere: the FCD id).
    #[serde(default)]
    pub resolved_volumes: BTreeMap<String, ResolvedVolume>,
    /// Why a PV's identity could not be resolved, by PV name (becomes a blocker).
    #[serde(default)]
    pub unresolved_volumes: BTreeMap<String, String>,
}

impl WorkloadSnapshot {
    /// The kind of workload the snapshot is about.
    pub fn kind(&self) -> WorkloadKind {
        if self.deployment.is_some() {
            WorkloadKind::Deployment
        } else if self.claim.is_some() {
            WorkloadKind::PersistentVolumeClaim
        } else {
            WorkloadKind::StatefulSet
        }
    }

    /// The claims the workload migrates, by name: a StatefulSet's `<template>-<set>-<ordinal>`
    /// for every ordinal below `replicas`, the claims a Deployment's pod template names, or
    /// the one claim.
    pub fn workload_claims(&self) -> Vec<String> {
        if let Some(set) = &self.statefulset {
            let name = set.metadata.name.as_deref().unwrap_or_default();
            let replicas = set.spec.replicas.unwrap_or(1).max(0);
            let templates = set.spec.volume_claim_templates.as_ref();
            let mut claims = Vec::new();
            for ordinal in 0..replicas {
                for template in templates.into_iter().flatten() {
                    let template = template.metadata.name.as_deref().unwrap_or_default();
                    claims.push(format!("{template}-{name}-{ordinal}"));
                }
            }
            claims
        } else if let Some(deployment) = &self.deployment {
            let volumes = deployment
                .spec
                .template
                .spec
                .as_ref()
                .and_then(|s| s.volumes.as_ref());
            let mut claims: Vec<String> = volumes
                .into_iter()
                .flatten()
                .filter_map(|v| v.persistent_volume_claim.as_ref())
                .map(|c| c.claim_name.clone())
                .collect();
            claims.dedup();
            claims
        } else {
            self.claim.iter().cloned().collect()
        }
    }
}

/// Which workload to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkloadRef {
    /// Its kind.
    pub kind: WorkloadKind,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

/// Why the snapshot could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The workload does not exist.
    #[error("{kind} {namespace}/{name} not found")]
    NotFound {
        /// Its kind.
        kind: WorkloadKind,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
    },
    /// A get or list against the API server failed.
    #[error("reading {what}: {source}")]
    Api {
        /// What was being read.
        what: String,
        /// The client error.
        source: kube::Error,
    },
}

fn api_error(what: &str) -> impl FnOnce(kube::Error) -> LoadError + '_ {
    move |source| LoadError::Api {
        what: what.to_owned(),
        source,
    }
}

/// Reads the StatefulSet `namespace/name` and everything around it.
pub async fn load_statefulset_snapshot(
    client: &Client,
    namespace: &str,
    name: &str,
) -> Result<WorkloadSnapshot, LoadError> {
    load_workload_snapshot(
        client,
        &WorkloadRef {
            kind: WorkloadKind::StatefulSet,
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        },
    )
    .await
}

/// Reads the workload and everything around it: pods, claims and autoscalers of its
/// namespace, every PV, StorageClass and CSIDriver.
pub async fn load_workload_snapshot(
    client: &Client,
    workload: &WorkloadRef,
) -> Result<WorkloadSnapshot, LoadError> {
    let WorkloadRef {
        kind,
        namespace,
        name,
    } = workload;
    let not_found = || LoadError::NotFound {
        kind: *kind,
        namespace: namespace.clone(),
        name: name.clone(),
    };
    let all = ListParams::default();
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .list(&all)
        .await
        .map_err(api_error("persistentvolumeclaims"))?
        .items;
    let mut snapshot = WorkloadSnapshot::default();
    match kind {
        WorkloadKind::StatefulSet => {
            let found = Api::<StatefulSet>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(api_error("statefulsets"))?;
            snapshot.statefulset = Some(found.ok_or_else(not_found)?);
        }
        WorkloadKind::Deployment => {
            let found = Api::<Deployment>::namespaced(client.clone(), namespace)
                .get_opt(name)
                .await
                .map_err(api_error("deployments"))?;
            snapshot.deployment = Some(found.ok_or_else(not_found)?);
            // Optional API, like PDBs below.
            snapshot.autoscalers =
                Api::<HorizontalPodAutoscaler>::namespaced(client.clone(), namespace)
                    .list(&all)
                    .await
                    .map(|l| l.items)
                    .unwrap_or_default();
        }
        WorkloadKind::PersistentVolumeClaim => {
            if !claims
                .iter()
                .any(|c| c.metadata.name.as_deref() == Some(name.as_str()))
            {
                return Err(not_found());
            }
            snapshot.claim = Some(name.clone());
        }
    }
    snapshot.claims = claims;
    snapshot.pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&all)
        .await
        .map_err(api_error("pods"))?
        .items;
    snapshot.volumes = Api::<PersistentVolume>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("persistentvolumes"))?
        .items;
    snapshot.storage_classes = Api::<StorageClass>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("storageclasses"))?
        .items;
    snapshot.csi_drivers = Api::<CSIDriver>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("csidrivers"))?
        .items;
    snapshot.csi_nodes = Api::<CSINode>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("csinodes"))?
        .items;
    // Optional API: a cluster (or simulator) without PDBs simply has none.
    snapshot.disruption_budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), namespace)
        .list(&all)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    Ok(snapshot)
}

/// The names of the workloads of `kind` in `namespace` whose labels match `selector`
/// (the API server's label selector syntax, as `kubectl -l`), sorted.
pub async fn select_workloads(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    selector: &str,
) -> Result<Vec<String>, LoadError> {
    let params = ListParams::default().labels(selector);
    let metas: Vec<kube::api::ObjectMeta> = match kind {
        WorkloadKind::StatefulSet => Api::<StatefulSet>::namespaced(client.clone(), namespace)
            .list(&params)
            .await
            .map_err(api_error("statefulsets"))?
            .items
            .into_iter()
            .map(|o| o.metadata)
            .collect(),
        WorkloadKind::Deployment => Api::<Deployment>::namespaced(client.clone(), namespace)
            .list(&params)
            .await
            .map_err(api_error("deployments"))?
            .items
            .into_iter()
            .map(|o| o.metadata)
            .collect(),
        WorkloadKind::PersistentVolumeClaim => {
            Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
                .list(&params)
                .await
                .map_err(api_error("persistentvolumeclaims"))?
                .items
                .into_iter()
                .map(|o| o.metadata)
                .collect()
        }
    };
    let mut names: Vec<String> = metas.into_iter().filter_map(|m| m.name).collect();
    names.sort();
    Ok(names)
}
