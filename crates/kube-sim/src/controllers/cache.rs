//! The controllers' informer cache: every object, fed by the store's change stream and applied `lag` late.
//!
//! Like a client-go informer, the cache is filled by one list and then kept current by
//! the change stream; when the stream overflows (`Lagged`) it relists. Controllers read
//! it by reference (`Arc`), so a pass no longer clones the cluster, and with a lag they
//! act on stale state exactly as an informer-backed controller does: their writes still
//! go to the live store with resourceVersion preconditions, so stale writes conflict.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::time::Duration;

use serde_json::Value;
use tokio::sync::broadcast::{self, error::TryRecvError};
use tokio::time::Instant;

use crate::resource::ResourceType;
use crate::store::{Event, EventType, ObjectKey, Store};

/// The key the store files a resource's objects (and change events) under.
pub(crate) fn resource_key(rt: &ResourceType) -> String {
    format!("{}/{}", rt.group, rt.plural)
}

fn resource_version(object: &Value) -> u64 {
    object
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .and_then(|rv| rv.parse().ok())
        .unwrap_or(0)
}

fn object_key(object: &Value) -> ObjectKey {
    let field = |pointer: &str| {
        object
            .pointer(pointer)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    (field("/metadata/namespace"), field("/metadata/name"))
}

/// What the controllers believe the cluster holds: objects by resource, then by
/// namespace and name.
#[derive(Default)]
pub struct Cache {
    kinds: HashMap<String, BTreeMap<ObjectKey, Arc<Value>>>,
    /// Changes at or before this resourceVersion are already in the last relist.
    listed_at: u64,
}

impl Cache {
    /// Every cached object of a resource, in namespace/name order.
    pub fn list(&self, rt: &ResourceType) -> Vec<Arc<Value>> {
        self.kinds
            .get(&resource_key(rt))
            .map(|objects| objects.values().cloned().collect())
            .unwrap_or_default()
    }

    /// Every cached object of a resource in one namespace.
    pub fn list_in(&self, rt: &ResourceType, namespace: &str) -> Vec<Arc<Value>> {
        let Some(objects) = self.kinds.get(&resource_key(rt)) else {
            return Vec::new();
        };
        let start = (namespace.to_owned(), String::new());
        objects
            .range(start..)
            .take_while(|((ns, _), _)| ns == namespace)
            .map(|(_, object)| object.clone())
            .collect()
    }

    /// One cached object (`namespace` is ignored for cluster-scoped resources).
    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Option<Arc<Value>> {
        let namespace = if rt.namespaced {
            namespace.unwrap_or("default")
        } else {
            ""
        };
        self.kinds
            .get(&resource_key(rt))?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// One cached object by group, plural, namespace (`""` when cluster-scoped) and name.
    pub fn lookup(
        &self,
        group: &str,
        plural: &str,
        namespace: &str,
        name: &str,
    ) -> Option<Arc<Value>> {
        self.kinds
            .get(&format!("{group}/{plural}"))?
            .get(&(namespace.to_owned(), name.to_owned()))
            .cloned()
    }

    /// Every cached object with the key of its resource.
    pub fn everything(&self) -> impl Iterator<Item = (&str, &Arc<Value>)> {
        self.kinds
            .iter()
            .flat_map(|(kind, objects)| objects.values().map(move |o| (kind.as_str(), o)))
    }

    /// How many objects are cached.
    pub fn len(&self) -> usize {
        self.kinds.values().map(BTreeMap::len).sum()
    }

    /// Whether nothing is cached.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn relist(&mut self, store: &Store) {
        // One consistent read, sharing the store's objects instead of copying them.
        let (listed_at, objects) = store.shared_objects();
        self.listed_at = listed_at;
        self.kinds = objects.into_iter().collect();
    }

    fn apply(&mut self, event: &Event) {
        if event.resource_version <= self.listed_at {
            return;
        }
        let objects = self.kinds.entry(event.resource.clone()).or_default();
        let key = object_key(&event.object);
        let newer_cached = objects
            .get(&key)
            .is_some_and(|cached| resource_version(cached) >= event.resource_version);
        if newer_cached {
            return;
        }
        match event.kind {
            EventType::Added | EventType::Modified => {
                objects.insert(key, event.object.clone());
            }
            EventType::Deleted => {
                objects.remove(&key);
            }
        }
    }
}

/// A [`Cache`] kept current from the store's change stream, each change applied only
/// once it is `lag` old.
pub struct Informer {
    changes: broadcast::Receiver<Arc<Event>>,
    /// Received changes not yet applied, with when they arrived.
    pending: VecDeque<(Instant, Arc<Event>)>,
    lag: Duration,
    cache: Cache,
    relists: u64,
}

impl Informer {
    /// Subscribes to the store's changes, then lists everything.
    pub fn new(store: &Store, lag: Duration) -> Self {
        let changes = store.subscribe();
        let mut cache = Cache::default();
        cache.relist(store);
        Self {
            changes,
            pending: VecDeque::new(),
            lag,
            cache,
            relists: 1,
        }
    }

    /// What the controllers see now.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// How many times the cache was filled by a full list (1 + relists after overflow).
    pub fn relists(&self) -> u64 {
        self.relists
    }

    /// Takes every change received so far, then applies those at least `lag` old. A
    /// stream that overflowed is replaced by a fresh list, as a real informer relists.
    pub fn catch_up(&mut self, store: &Store) {
        loop {
            match self.changes.try_recv() {
                Ok(event) => self.pending.push_back((Instant::now(), event)),
                Err(TryRecvError::Lagged(_)) => {
                    self.pending.clear();
                    self.cache.relist(store);
                    self.relists += 1;
                }
                Err(TryRecvError::Empty | TryRecvError::Closed) => break,
            }
        }
        let now = Instant::now();
        while let Some((arrived, event)) = self.pending.front() {
            if now.duration_since(*arrived) < self.lag {
                break;
            }
            self.cache.apply(event);
            self.pending.pop_front();
        }
    }

    /// Waits for the next reason to run a pass: a change arriving (or, with a lag, a
    /// pending change becoming due), or `resync` passing.
    pub async fn changed(&mut self, resync: Duration) {
        let deadline = match self.pending.front() {
            Some((arrived, _)) => (*arrived + self.lag).min(Instant::now() + resync),
            None => Instant::now() + resync,
        };
        if !self.pending.is_empty() {
            tokio::time::sleep_until(deadline).await;
            return;
        }
        // Overflow and closure are handled by the next `catch_up`; timeouts resync.
        if let Ok(Ok(event)) = tokio::time::timeout_at(deadline, self.changes.recv()).await {
            self.pending.push_back((Instant::now(), event));
        }
        // Even with no lag this waits for the next timer tick: the passes are synchronous,
        // and back-to-back ones would starve the server and watchers on a small runtime.
        tokio::time::sleep(self.lag).await;
    }
}
