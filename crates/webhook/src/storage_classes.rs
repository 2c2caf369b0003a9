//! The StorageClass cache: the cluster's classes, listed and watched through the API server.
//!
//! With cluster access the webhook keeps every StorageClass in memory (a kube-runtime
//! reflector over a list+watch), so that a claim naming a class, or falling back on the
//! default class, is judged by that class's real provisioner rather than by the names in
//! the policy. Needs `get`, `list` and `watch` on `storageclasses.storage.k8s.io`
//! (`deploy/webhook/15-rbac.yaml`).
//!
//! * The webhook is not ready (`/readyz` answers 503) until the first full list has
//!   arrived, so no claim is let through unjudged at start-up.
//! * When the watch breaks (API server restart, network, expired resourceVersion), the
//!   watcher lists and watches again with exponential backoff (0.8 s doubling to 30 s,
//!   with jitter); meanwhile, and until the new list is complete, the last known classes
//!   are used. Each failure is logged and counted
//!   (`csi_migrate_webhook_storage_class_watch_errors_total`).

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::runtime::reflector::{self, ObjectRef, Store};
use kube::runtime::{WatchStreamExt, watcher};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::metrics::Metrics;
use crate::rules::{KnownClasses, pick_default_class};

/// How the webhook reaches the API server to watch StorageClasses: a kube client.
#[derive(Clone)]
pub struct ClusterAccess(pub kube::Client);

impl std::fmt::Debug for ClusterAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClusterAccess")
            .field("default_namespace", &self.0.default_namespace())
            .finish_non_exhaustive()
    }
}

/// The cluster's StorageClasses, kept current by a background watch.
#[derive(Debug)]
pub struct StorageClassCache {
    store: Store<StorageClass>,
    synced: watch::Receiver<bool>,
    task: JoinHandle<()>,
}

impl StorageClassCache {
    /// Starts listing and watching StorageClasses with `access` (on the current Tokio
    /// runtime). The cache is empty and not synced until the first list completes.
    pub fn start(access: ClusterAccess, metrics: Arc<Metrics>) -> StorageClassCache {
        let api: kube::Api<StorageClass> = kube::Api::all(access.0);
        let (store, writer) = reflector::store();
        let (synced_tx, synced) = watch::channel(false);
        let reader = store.clone();
        let task = tokio::spawn(async move {
            let stream = watcher(api, watcher::Config::default())
                .default_backoff()
                .reflect(writer);
            futures::pin_mut!(stream);
            let mut failing = false;
            while let Some(event) = stream.next().await {
                match event {
                    Ok(watcher::Event::InitDone) => {
                        if !*synced_tx.borrow() || failing {
                            tracing::info!(classes = reader.len(), "StorageClass cache synced");
                        }
                        failing = false;
                        let _ = synced_tx.send(true);
                    }
                    Ok(_) => {}
                    Err(error) => {
                        failing = true;
                        metrics.storage_class_watch_errors.inc();
                        tracing::warn!(
                            %error,
                            "StorageClass list/watch failed; retrying with backoff, keeping the last known classes"
                        );
                    }
                }
            }
        });
        StorageClassCache {
            store,
            synced,
            task,
        }
    }

    /// Whether the first full list has arrived.
    pub fn is_synced(&self) -> bool {
        *self.synced.borrow()
    }

    /// Waits until the first full list has arrived, at most `timeout`; returns whether it has.
    pub async fn wait_synced(&self, timeout: Duration) -> bool {
        let mut synced = self.synced.clone();
        matches!(
            tokio::time::timeout(timeout, synced.wait_for(|s| *s)).await,
            Ok(Ok(_))
        )
    }

    /// How many classes are known.
    pub fn len(&self) -> usize {
        self.store.len()
    }

    /// Whether no class is known (yet).
    pub fn is_empty(&self) -> bool {
        self.store.is_empty()
    }

    /// Stops watching (the last known classes stay readable).
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for StorageClassCache {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl KnownClasses for StorageClassCache {
    fn provisioner(&self, name: &str) -> Option<String> {
        self.store
            .get(&ObjectRef::new(name))
            .map(|class| class.provisioner.clone())
    }

    fn default_class(&self) -> Option<(String, String)> {
        let classes = self.store.state();
        pick_default_class(classes.iter().map(Arc::as_ref)).map(|class| {
            (
                class.metadata.name.clone().unwrap_or_default(),
                class.provisioner.clone(),
            )
        })
    }
}
