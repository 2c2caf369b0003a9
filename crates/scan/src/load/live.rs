//! Reads a live cluster into a snapshot: read-only `list` calls in pages, through the current kubeconfig context.
//!
//! The permissions needed are exactly `get`/`list` on the kinds in
//! [`ResourceKind::ALL`] (`deploy/scan/clusterrole.yaml`). A list the server forbids
//! (403) leaves that kind out of [`ClusterSnapshot::collected`], so the rules that need
//! it are skipped and reported instead of failing the scan. Secrets are listed as
//! metadata only (`PartialObjectMetadataList`): their data never leaves the server.

use std::fmt::Debug;
use std::path::PathBuf;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job};
use k8s_openapi::api::core::v1::{self as k8s, Node, Secret};
use k8s_openapi::api::policy::v1::PodDisruptionBudget;
use k8s_openapi::api::storage::v1::{CSIDriver, CSINode, StorageClass};
use kube::api::{Api, ListParams, ObjectList};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config, Resource};
use serde::de::DeserializeOwned;
use thiserror::Error;

use super::Trim;
use crate::snapshot::{ClusterSnapshot, ResourceKind, SecretName, ServerVersion, VersionSource};

/// Objects per list page.
pub const PAGE_SIZE: u32 = 500;

/// Why a live cluster could not be read.
#[derive(Debug, Error)]
pub enum LiveError {
    /// The kubeconfig could not be read or has no usable context.
    #[error("cannot load kubeconfig: {0}")]
    Kubeconfig(String),
    /// A client could not be built from the configuration (TLS, proxy, auth plugin).
    #[error("cannot create a Kubernetes client: {0}")]
    Client(#[source] kube::Error),
    /// A list call failed for a reason other than a 403 (network, 5xx, decoding).
    #[error("cannot list {kind}: {error}")]
    List {
        /// The resource being listed.
        kind: ResourceKind,
        /// The client error.
        #[source]
        error: kube::Error,
    },
}

/// Where and what to read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LiveOptions {
    /// A kubeconfig file; default: `$KUBECONFIG` or `~/.kube/config` (or in-cluster config).
    pub kubeconfig: Option<PathBuf>,
    /// A context in it; default: its current context.
    pub context: Option<String>,
    /// List namespaced kinds in this namespace only; default: all namespaces.
    pub namespace: Option<String>,
}

/// Builds a client for `options`.
pub async fn client(options: &LiveOptions) -> Result<Client, LiveError> {
    let config_options = KubeConfigOptions {
        context: options.context.clone(),
        ..KubeConfigOptions::default()
    };
    let config = match &options.kubeconfig {
        Some(path) => {
            let kubeconfig = Kubeconfig::read_from(path)
                .map_err(|e| LiveError::Kubeconfig(format!("{}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(kubeconfig, &config_options)
                .await
                .map_err(|e| LiveError::Kubeconfig(e.to_string()))?
        }
        None if options.context.is_some() => Config::from_kubeconfig(&config_options)
            .await
            .map_err(|e| LiveError::Kubeconfig(e.to_string()))?,
        None => Config::infer()
            .await
            .map_err(|e| LiveError::Kubeconfig(e.to_string()))?,
    };
    Client::try_from(config).map_err(LiveError::Client)
}

/// Lists everything the scan reads, page by page, into a snapshot.
pub async fn load_cluster(
    client: Client,
    namespace: Option<&str>,
) -> Result<ClusterSnapshot, LiveError> {
    let mut snapshot = ClusterSnapshot::default();
    // The version is best effort: some API servers hide /version from unauthenticated users.
    if let Ok(info) = client.apiserver_version().await {
        snapshot.server_version =
            ServerVersion::from_parts(&info.major, &info.minor, VersionSource::ApiServer)
                .or_else(|| ServerVersion::parse(&info.git_version, VersionSource::ApiServer));
    }

    // `Api::namespaced` only exists for namespaced kinds, hence two macros. `$listed` is
    // the k8s-openapi type listed; each page is converted into the snapshot's type.
    macro_rules! list_namespaced {
        ($kind:expr, $field:ident, $listed:ty) => {{
            let api: Api<$listed> = match namespace {
                Some(ns) => Api::namespaced(client.clone(), ns),
                None => Api::all(client.clone()),
            };
            if let Some(items) = list_all(&api, $kind).await? {
                snapshot.$field = items;
                snapshot.collected.insert($kind);
            }
        }};
    }
    macro_rules! list_cluster {
        ($kind:expr, $field:ident, $listed:ty) => {{
            let api: Api<$listed> = Api::all(client.clone());
            if let Some(items) = list_all(&api, $kind).await? {
                snapshot.$field = items;
                snapshot.collected.insert($kind);
            }
        }};
    }
    list_cluster!(ResourceKind::StorageClass, storage_classes, StorageClass);
    list_cluster!(
        ResourceKind::PersistentVolume,
        persistent_volumes,
        k8s::PersistentVolume
    );
    list_namespaced!(
        ResourceKind::PersistentVolumeClaim,
        persistent_volume_claims,
        k8s::PersistentVolumeClaim
    );
    list_namespaced!(ResourceKind::Pod, pods, k8s::Pod);
    list_namespaced!(ResourceKind::StatefulSet, stateful_sets, StatefulSet);
    list_namespaced!(ResourceKind::Deployment, deployments, Deployment);
    list_namespaced!(ResourceKind::DaemonSet, daemon_sets, DaemonSet);
    list_namespaced!(ResourceKind::ReplicaSet, replica_sets, ReplicaSet);
    list_namespaced!(ResourceKind::Job, jobs, Job);
    list_namespaced!(ResourceKind::CronJob, cron_jobs, CronJob);
    list_cluster!(ResourceKind::Node, nodes, Node);
    list_cluster!(ResourceKind::CsiDriver, csi_drivers, CSIDriver);
    list_cluster!(ResourceKind::CsiNode, csi_nodes, CSINode);
    list_namespaced!(
        ResourceKind::PodDisruptionBudget,
        pod_disruption_budgets,
        PodDisruptionBudget
    );

    let secrets: Api<Secret> = match namespace {
        Some(ns) => Api::namespaced(client.clone(), ns),
        None => Api::all(client.clone()),
    };
    if let Some(names) = list_secret_names(&secrets).await? {
        snapshot.secrets = names;
        snapshot.collected.insert(ResourceKind::Secret);
    }
    Ok(snapshot)
}

/// Whether a client error is the server saying "forbidden".
fn is_forbidden(error: &kube::Error) -> bool {
    matches!(error, kube::Error::Api(status) if status.code == 403)
}

/// Every object of one kind, following `continue` tokens, each converted to the
/// snapshot's type `T` and trimmed as its page arrives (so only one page of full
/// objects is ever held); `None` if the list is forbidden.
async fn list_all<K, T>(api: &Api<K>, kind: ResourceKind) -> Result<Option<Vec<T>>, LiveError>
where
    K: Resource + Clone + DeserializeOwned + Debug,
    T: From<K> + Trim,
{
    let mut items = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page: ObjectList<K> = match api.list(&params).await {
            Ok(page) => page,
            Err(error) if is_forbidden(&error) => return Ok(None),
            Err(error) => return Err(LiveError::List { kind, error }),
        };
        items.extend(page.items.into_iter().map(|item| {
            let mut item = T::from(item);
            item.trim();
            item
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(Some(items)),
        }
    }
}

/// The namespace and name of every Secret, listed as metadata only.
async fn list_secret_names(api: &Api<Secret>) -> Result<Option<Vec<SecretName>>, LiveError> {
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(PAGE_SIZE);
    loop {
        let page = match api.list_metadata(&params).await {
            Ok(page) => page,
            Err(error) if is_forbidden(&error) => return Ok(None),
            Err(error) => {
                return Err(LiveError::List {
                    kind: ResourceKind::Secret,
                    error,
                });
            }
        };
        names.extend(page.items.into_iter().map(|s| SecretName {
            namespace: s.metadata.namespace.unwrap_or_default(),
            name: s.metadata.name.unwrap_or_default(),
        }));
        match page.metadata.continue_.filter(|c| !c.is_empty()) {
            Some(token) => params = params.continue_token(&token),
            None => return Ok(Some(names)),
        }
    }
}
