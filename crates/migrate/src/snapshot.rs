//! The plain-data view of the cluster a plan is computed from, and its loader.

use std::collections::BTreeMap;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSIDriver, StorageClass};
use kube::Client;
use kube::api::{Api, ListParams};
use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::resolve::ResolvedVolume;

/// Everything `plan_statefulset` looks at, as read from the cluster (or built by a test).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatefulSetSnapshot {
    /// The StatefulSet to migrate.
    pub statefulset: StatefulSet,
    /// Pods in its namespace (the plan picks `<name>-<ordinal>`).
    pub pods: Vec<Pod>,
    /// Claims in its namespace.
    pub claims: Vec<PersistentVolumeClaim>,
    /// Every PersistentVolume of the cluster (needed to find name and disk collisions).
    pub volumes: Vec<PersistentVolume>,
    /// Every StorageClass.
    pub storage_classes: Vec<StorageClass>,
    /// Every CSIDriver.
    pub csi_drivers: Vec<CSIDriver>,
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

/// Why the snapshot could not be read.
#[derive(Debug, Error)]
pub enum LoadError {
    /// The StatefulSet does not exist.
    #[error("statefulset {namespace}/{name} not found")]
    NotFound {
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
) -> Result<StatefulSetSnapshot, LoadError> {
    let sets: Api<StatefulSet> = Api::namespaced(client.clone(), namespace);
    let statefulset = sets
        .get_opt(name)
        .await
        .map_err(api_error("statefulsets"))?
        .ok_or_else(|| LoadError::NotFound {
            namespace: namespace.to_owned(),
            name: name.to_owned(),
        })?;
    let all = ListParams::default();
    let pods = Api::<Pod>::namespaced(client.clone(), namespace)
        .list(&all)
        .await
        .map_err(api_error("pods"))?
        .items;
    let claims = Api::<PersistentVolumeClaim>::namespaced(client.clone(), namespace)
        .list(&all)
        .await
        .map_err(api_error("persistentvolumeclaims"))?
        .items;
    let volumes = Api::<PersistentVolume>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("persistentvolumes"))?
        .items;
    let storage_classes = Api::<StorageClass>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("storageclasses"))?
        .items;
    let csi_drivers = Api::<CSIDriver>::all(client.clone())
        .list(&all)
        .await
        .map_err(api_error("csidrivers"))?
        .items;
    // Optional API: a cluster (or simulator) without PDBs simply has none.
    let disruption_budgets = Api::<PodDisruptionBudget>::namespaced(client.clone(), namespace)
        .list(&all)
        .await
        .map(|l| l.items)
        .unwrap_or_default();
    Ok(StatefulSetSnapshot {
        statefulset,
        pods,
        claims,
        volumes,
        storage_classes,
        csi_drivers,
        disruption_budgets,
        resolved_volumes: BTreeMap::new(),
        unresolved_volumes: BTreeMap::new(),
    })
}
