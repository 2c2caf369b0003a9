//! The object store: every object as JSON, one cluster-wide resourceVersion, and a
//! bounded event history that watches replay from.

use std::collections::{BTreeMap, VecDeque};
use std::sync::{Arc, Mutex, MutexGuard};

use serde_json::{Value, json};
use tokio::sync::broadcast;

use crate::admission::{self, DEFAULT_CLASS_ANNOTATION};
use crate::api_error::ApiError;
use crate::apply::{self, ApplyRequest};
use crate::cloud::Cloud;
use crate::patch::{self, PatchKind};
use crate::resource::{ResourceType, builtin_resources};
use crate::selector::{FieldSelector, LabelSelector};

/// Namespaces that exist from the start, as in a fresh cluster.
pub const SYSTEM_NAMESPACES: &[&str] =
    &["default", "kube-system", "kube-public", "kube-node-lease"];

/// What happened to an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventType {
    /// Created.
    Added,
    /// Changed.
    Modified,
    /// Removed.
    Deleted,
}

impl EventType {
    /// The watch event type string.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Added => "ADDED",
            Self::Modified => "MODIFIED",
            Self::Deleted => "DELETED",
        }
    }
}

/// One change, as stored in the history and sent to watchers.
#[derive(Debug, Clone)]
pub struct Event {
    /// What happened.
    pub kind: EventType,
    /// `group/plural` of the object's resource.
    pub resource: String,
    /// The object after the change (its last state for deletions), shared with the
    /// store and every watcher and controller cache that holds it.
    pub object: Arc<Value>,
    /// The object before the change, for selector transitions.
    pub previous: Option<Arc<Value>>,
    /// The resourceVersion of the change.
    pub resource_version: u64,
}

/// Which part of an object a write addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subresource {
    /// The object without its status.
    Main,
    /// Only the status.
    Status,
}

/// Options of a list or watch.
#[derive(Debug, Clone, Default)]
pub struct ListOptions {
    /// `labelSelector`.
    pub labels: LabelSelector,
    /// `fieldSelector`.
    pub fields: FieldSelector,
    /// `limit` (0 = no limit).
    pub limit: usize,
    /// `continue` token from a previous page.
    pub continue_token: Option<String>,
}

impl ListOptions {
    fn matches(&self, object: &Value) -> bool {
        self.labels.matches(object) && self.fields.matches(object)
    }
}

/// Options of a delete.
#[derive(Debug, Clone, Default)]
pub struct DeleteOptions {
    /// `Orphan`, `Background` or `Foreground`.
    pub propagation_policy: Option<String>,
    /// `preconditions.uid`.
    pub precondition_uid: Option<String>,
    /// `preconditions.resourceVersion`.
    pub precondition_resource_version: Option<String>,
    /// `gracePeriodSeconds`.
    pub grace_period_seconds: Option<i64>,
}

/// The result of a delete.
#[derive(Debug, Clone)]
pub enum Deleted {
    /// The object is gone; this was its last state.
    Removed(Value),
    /// The object is terminating (finalizers or grace period remain).
    Pending(Value),
}

/// A started watch: events to replay, then the live feed.
pub struct WatchStart {
    /// Events before the live feed (synthetic ADDEDs or history replay).
    pub replay: Vec<Arc<Event>>,
    /// The live feed of every change.
    pub live: broadcast::Receiver<Arc<Event>>,
    /// Set when the requested resourceVersion is older than the history kept.
    pub too_old: Option<String>,
}

/// `(namespace, name)`; the namespace is empty for cluster-scoped objects.
pub type ObjectKey = (String, String);

#[derive(Clone)]
struct State {
    resource_version: u64,
    resources: Vec<ResourceType>,
    /// Shared with the events that carry them, so history, watchers and controller
    /// caches hold the same allocation instead of a copy each.
    objects: BTreeMap<String, BTreeMap<ObjectKey, Arc<Value>>>,
    history: VecDeque<Arc<Event>>,
    history_limit: usize,
    /// The newest resourceVersion that has been dropped from the history.
    compacted: u64,
    uid_state: u64,
}

/// The simulated cluster's storage.
pub struct Store {
    state: Mutex<State>,
    events: broadcast::Sender<Arc<Event>>,
    cloud: Cloud,
}

fn resource_key(rt: &ResourceType) -> String {
    format!("{}/{}", rt.group, rt.plural)
}

fn now() -> String {
    jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string()
}

fn name_of(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn finalizers(object: &Value) -> Vec<String> {
    object
        .pointer("/metadata/finalizers")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default()
}

impl Store {
    /// An empty cluster with the built-in kinds and system namespaces, keeping
    /// `history_limit` events for watches to resume from.
    pub fn new(history_limit: usize) -> Self {
        let (events, _) = broadcast::channel(4096);
        let seed = jiff::Timestamp::now().as_nanosecond() as u64 | 1;
        let store = Self {
            state: Mutex::new(State {
                resource_version: 0,
                resources: builtin_resources(),
                objects: BTreeMap::new(),
                history: VecDeque::new(),
                history_limit: history_limit.max(1),
                compacted: 0,
                uid_state: seed,
            }),
            events,
            cloud: Cloud::default(),
        };
        for ns in SYSTEM_NAMESPACES {
            let namespace =
                json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}});
            if let Some(rt) = store.resource("", "namespaces") {
                let _ = store.create(&rt, None, namespace);
            }
        }
        store
    }

    /// The simulated cloud behind the cluster's volumes.
    pub fn cloud(&self) -> &Cloud {
        &self.cloud
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves plain data behind; keep serving it.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Every served resource type.
    pub fn resources(&self) -> Vec<ResourceType> {
        self.lock().resources.clone()
    }

    /// The resource type with this group and plural.
    pub fn resource(&self, group: &str, plural: &str) -> Option<ResourceType> {
        self.lock()
            .resources
            .iter()
            .find(|r| r.group == group && r.plural == plural)
            .cloned()
    }

    /// The resource type with this group and kind.
    pub fn resource_by_kind(&self, group: &str, kind: &str) -> Option<ResourceType> {
        self.lock()
            .resources
            .iter()
            .find(|r| r.group == group && r.kind == kind)
            .cloned()
    }

    /// The current resourceVersion.
    pub fn resource_version(&self) -> u64 {
        self.lock().resource_version
    }

    fn emit(&self, state: &mut State, event: Event) {
        let event = Arc::new(event);
        state.history.push_back(event.clone());
        while state.history.len() > state.history_limit {
            if let Some(dropped) = state.history.pop_front() {
                state.compacted = dropped.resource_version;
            }
        }
        // No receivers is fine: nobody is watching.
        let _ = self.events.send(event);
    }

    fn next_uid(state: &mut State) -> String {
        let mut x = state.uid_state;
        let mut next = || {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x
        };
        let (a, b) = (next(), next());
        state.uid_state = x;
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }

    /// The namespace a new object goes to: it must exist and, as the NamespaceLifecycle
    /// admission plugin enforces, not be terminating.
    fn check_namespace(
        state: &State,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<String, ApiError> {
        if !rt.namespaced {
            return Ok(String::new());
        }
        let ns = namespace.unwrap_or("default");
        let Some(stored) = state
            .objects
            .get("/namespaces")
            .and_then(|m| m.get(&(String::new(), ns.to_owned())))
        else {
            return Err(ApiError::namespace_not_found(ns));
        };
        if stored.pointer("/metadata/deletionTimestamp").is_some() {
            return Err(ApiError::forbidden(format!(
                "{} {name:?} is forbidden: unable to create new content in namespace {ns} because it is being terminated",
                rt.plural
            )));
        }
        Ok(ns.to_owned())
    }

    fn default_class(state: &State) -> Option<String> {
        state
            .objects
            .get("storage.k8s.io/storageclasses")
            .and_then(|classes| {
                classes
                    .values()
                    .find(|c| {
                        c.pointer(&format!(
                            "/metadata/annotations/{}",
                            DEFAULT_CLASS_ANNOTATION.replace('/', "~1")
                        ))
                        .and_then(Value::as_str)
                            == Some("true")
                    })
                    .map(|c| name_of(c).to_owned())
            })
    }

    /// Creates an object; the server sets uid, creationTimestamp, resourceVersion and generation.
    pub fn create(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        mut object: Value,
    ) -> Result<Value, ApiError> {
        if !object.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        let mut state = self.lock();
        let ns = Self::check_namespace(&state, rt, namespace, name_of(&object))?;
        if object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .is_some_and(|rv| !rv.is_empty())
        {
            return Err(ApiError::internal(
                "resourceVersion should not be set on objects to be created",
            ));
        }
        if !object.get("metadata").is_some_and(Value::is_object) {
            object["metadata"] = json!({});
        }
        let mut name = name_of(&object).to_owned();
        if name.is_empty() {
            match object
                .pointer("/metadata/generateName")
                .and_then(Value::as_str)
            {
                Some(prefix) => {
                    let suffix: String = Self::next_uid(&mut state)
                        .chars()
                        .filter(char::is_ascii_alphanumeric)
                        .take(5)
                        .collect();
                    name = format!("{prefix}{suffix}");
                }
                None => {
                    return Err(ApiError::invalid(
                        rt,
                        "",
                        vec![crate::api_error::Cause::required_because(
                            "metadata.name",
                            "name or generateName is required",
                        )],
                    ));
                }
            }
        }
        // As the real registry does: defaults and validation first, then the storage
        // layer's AlreadyExists (so a dry-run create of an existing name still validates).
        let default_class = Self::default_class(&state);
        admission::default_on_create(rt, &mut object, default_class.as_deref());
        admission::validate_create(rt, &object)?;
        let key = (ns.clone(), name.clone());
        let store_key = resource_key(rt);
        if let Some(existing) = state.objects.get(&store_key).and_then(|m| m.get(&key)) {
            let terminating = existing.pointer("/metadata/deletionTimestamp").is_some();
            return Err(ApiError::already_exists(rt, &name, terminating));
        }
        state.resource_version += 1;
        let rv = state.resource_version;
        let uid = Self::next_uid(&mut state);
        object["apiVersion"] = json!(rt.api_version());
        object["kind"] = json!(rt.kind);
        let metadata = &mut object["metadata"];
        metadata["name"] = json!(name);
        if rt.namespaced {
            metadata["namespace"] = json!(ns);
        } else if let Some(m) = metadata.as_object_mut() {
            m.remove("namespace");
        }
        metadata["uid"] = json!(uid);
        metadata["creationTimestamp"] = json!(now());
        metadata["resourceVersion"] = json!(rv.to_string());
        metadata["generation"] = json!(1);
        if let Some(m) = metadata.as_object_mut() {
            m.remove("deletionTimestamp");
            m.remove("deletionGracePeriodSeconds");
        }
        if rt.kind == "CustomResourceDefinition" {
            established(&mut object);
        }
        if rt.kind == "CustomResourceDefinition"
            && let Some(custom) = ResourceType::from_crd(&object)
            && !state
                .resources
                .iter()
                .any(|r| r.group == custom.group && r.plural == custom.plural)
        {
            state.resources.push(custom);
        }
        let shared = Arc::new(object);
        state
            .objects
            .entry(store_key.clone())
            .or_default()
            .insert(key, shared.clone());
        self.emit(
            &mut state,
            Event {
                kind: EventType::Added,
                resource: store_key,
                object: shared.clone(),
                previous: None,
                resource_version: rv,
            },
        );
        Ok(Value::clone(&shared))
    }

    /// The storage key, object key and current state of one object, or 404.
    fn stored(
        state: &State,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<(String, ObjectKey, Arc<Value>), ApiError> {
        let ns = if rt.namespaced {
            namespace.unwrap_or("default").to_owned()
        } else {
            String::new()
        };
        let key = (ns, name.to_owned());
        let store_key = resource_key(rt);
        let current = state
            .objects
            .get(&store_key)
            .and_then(|m| m.get(&key))
            .cloned()
            .ok_or_else(|| ApiError::not_found(rt, name))?;
        Ok((store_key, key, current))
    }

    /// Reads one object.
    pub fn get(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
    ) -> Result<Value, ApiError> {
        Self::stored(&self.lock(), rt, namespace, name).map(|(_, _, object)| Value::clone(&object))
    }

    /// Lists objects (all namespaces when `namespace` is None) as a `<Kind>List`.
    pub fn list(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        options: &ListOptions,
    ) -> Result<Value, ApiError> {
        let state = self.lock();
        let (list_rv, after) = match &options.continue_token {
            Some(token) => decode_continue(token)?,
            None => (state.resource_version, None),
        };
        if options.continue_token.is_some() && list_rv < state.compacted {
            return Err(ApiError::expired(
                "The provided continue parameter is too old to display a consistent list result. \
                 You can start a new list without the continue parameter.",
            ));
        }
        let mut items = Vec::new();
        let mut more = false;
        if let Some(objects) = state.objects.get(&resource_key(rt)) {
            let range = objects.iter().filter(|((ns, name), _)| {
                namespace.is_none_or(|n| !rt.namespaced || ns == n)
                    && after
                        .as_ref()
                        .is_none_or(|a| (ns.as_str(), name.as_str()) > (a.0.as_str(), a.1.as_str()))
            });
            for (_, object) in range {
                if !options.matches(object) {
                    continue;
                }
                if options.limit > 0 && items.len() == options.limit {
                    more = true;
                    break;
                }
                items.push(Value::clone(object));
            }
        }
        // The token points past the last returned item.
        let next = items.last().filter(|_| more).map(|last| {
            let ns = last
                .pointer("/metadata/namespace")
                .and_then(Value::as_str)
                .unwrap_or_default();
            encode_continue(list_rv, ns, name_of(last))
        });
        let mut metadata = json!({"resourceVersion": list_rv.to_string()});
        if let Some(token) = next {
            metadata["continue"] = json!(token);
        }
        Ok(json!({
            "apiVersion": rt.api_version(),
            "kind": format!("{}List", rt.kind),
            "metadata": metadata,
            "items": items,
        }))
    }

    /// Replaces an object (PUT). A non-empty resourceVersion in the body must match.
    pub fn update(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        object: Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        if name_of(&object) != name {
            return Err(ApiError::bad_request(format!(
                "the name of the object ({}) does not match the name on the URL ({name})",
                name_of(&object)
            )));
        }
        let expected_rv = object
            .pointer("/metadata/resourceVersion")
            .and_then(Value::as_str)
            .map(str::to_owned);
        self.modify(rt, namespace, name, subresource, |current| {
            if let Some(rv) = expected_rv.as_deref().filter(|rv| !rv.is_empty())
                && current
                    .pointer("/metadata/resourceVersion")
                    .and_then(Value::as_str)
                    != Some(rv)
            {
                return Err(ApiError::conflict(rt, name));
            }
            Ok(object)
        })
    }

    /// Patches an object. An apply patch goes through [`Store::apply`] as manager `unknown`.
    /// A patch that leaves a `metadata.resourceVersion` different from the stored one
    /// (a JSON patch setting it, a merge patch carrying it) is a 409, as for an update.
    pub fn patch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        kind: PatchKind,
        body: &Value,
        subresource: Subresource,
    ) -> Result<Value, ApiError> {
        if kind == PatchKind::Apply {
            return self.apply(rt, namespace, name, body, "unknown", false);
        }
        self.modify(rt, namespace, name, subresource, |current| {
            let mut patched = current.clone();
            match kind {
                PatchKind::Json => patch::apply_json_patch(&mut patched, body).map_err(|e| {
                    ApiError::invalid(
                        rt,
                        name,
                        vec![crate::api_error::Cause::invalid("patch", "", &e)],
                    )
                })?,
                PatchKind::Merge => patch::apply_merge_patch(&mut patched, body),
                PatchKind::Strategic | PatchKind::Apply => {
                    patch::apply_strategic_merge_patch(&mut patched, body)
                }
            }
            check_resource_version(rt, name, current, &patched)?;
            Ok(patched)
        })
    }

    /// Server-side apply of `config` by `manager`: creates the object when it is missing,
    /// otherwise removes the fields this manager applied before and leaves out now, merges
    /// the rest and records ownership in `metadata.managedFields`. A change to a field
    /// another manager owns is a 409 unless `force`.
    pub fn apply(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        config: &Value,
        manager: &str,
        force: bool,
    ) -> Result<Value, ApiError> {
        if !config.is_object() {
            return Err(ApiError::bad_request(
                "the body of the request is not a JSON object",
            ));
        }
        let now = now();
        let request = ApplyRequest {
            manager,
            force,
            config,
            now: &now,
        };
        if self.get(rt, namespace, name).is_err() {
            let mut object = apply::apply(rt, name, None, &request)?;
            object["metadata"]["name"] = json!(name);
            return self.create(rt, namespace, object);
        }
        self.modify(rt, namespace, name, Subresource::Main, |current| {
            let applied = apply::apply(rt, name, Some(current), &request)?;
            check_resource_version(rt, name, current, &applied)?;
            Ok(applied)
        })
    }

    /// Reads, transforms, validates and stores one object; removes it when an update
    /// leaves a terminating object without finalizers.
    fn modify(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        subresource: Subresource,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        self.modify_with(rt, namespace, name, subresource, true, change)
    }

    /// [`Self::modify`], with the update validation optional for server-internal writes
    /// (pod binding) that bypass the rules a client update must follow.
    fn modify_with(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        subresource: Subresource,
        validate: bool,
        change: impl FnOnce(&Value) -> Result<Value, ApiError>,
    ) -> Result<Value, ApiError> {
        let mut state = self.lock();
        let (store_key, key, current) = Self::stored(&state, rt, namespace, name)?;
        let mut new = change(&current)?;
        if !new.is_object() {
            return Err(ApiError::bad_request("the object is not a JSON object"));
        }
        // An update that sends no managedFields keeps the recorded ones, as the real server does.
        if new.pointer("/metadata/managedFields").is_none()
            && let Some(managed) = current.pointer("/metadata/managedFields")
            && new.get("metadata").is_some_and(Value::is_object)
        {
            new["metadata"]["managedFields"] = managed.clone();
        }
        // Server-owned fields come from the stored object.
        for field in [
            "uid",
            "creationTimestamp",
            "deletionTimestamp",
            "deletionGracePeriodSeconds",
            "namespace",
            "name",
        ] {
            match current["metadata"].get(field) {
                Some(v) => new["metadata"][field] = v.clone(),
                None => {
                    if let Some(m) = new["metadata"].as_object_mut() {
                        m.remove(field);
                    }
                }
            }
        }
        new["apiVersion"] = json!(rt.api_version());
        new["kind"] = json!(rt.kind);
        if rt.has_status {
            match subresource {
                Subresource::Main => match current.get("status") {
                    Some(status) => new["status"] = status.clone(),
                    None => {
                        if let Some(m) = new.as_object_mut() {
                            m.remove("status");
                        }
                    }
                },
                Subresource::Status => {
                    let status = new.get("status").cloned();
                    let mut kept = Value::clone(&current);
                    match status {
                        Some(status) => kept["status"] = status,
                        None => {
                            if let Some(m) = kept.as_object_mut() {
                                m.remove("status");
                            }
                        }
                    }
                    new = kept;
                }
            }
        }
        let mut compare_old = Value::clone(&current);
        let mut compare_new = new.clone();
        for object in [&mut compare_old, &mut compare_new] {
            if let Some(m) = object["metadata"].as_object_mut() {
                m.remove("resourceVersion");
                // A new owner is a change; a fresher timestamp alone is not.
                for entry in m
                    .get_mut("managedFields")
                    .and_then(Value::as_array_mut)
                    .into_iter()
                    .flatten()
                {
                    if let Some(e) = entry.as_object_mut() {
                        e.remove("time");
                    }
                }
            }
        }
        if compare_old == compare_new {
            return Ok(Value::clone(&current)); // a no-op write keeps the resourceVersion, as the real server does
        }
        if validate {
            admission::validate_update(rt, &current, &new)?;
        }
        let generation = current
            .pointer("/metadata/generation")
            .and_then(Value::as_i64)
            .unwrap_or(1);
        let spec_changed = current.get("spec") != new.get("spec");
        new["metadata"]["generation"] = json!(if rt.tracks_generation && spec_changed {
            generation + 1
        } else {
            generation
        });
        state.resource_version += 1;
        let rv = state.resource_version;
        new["metadata"]["resourceVersion"] = json!(rv.to_string());
        // A terminating object goes when its last finalizer does, unless a grace period
        // (a pod waiting for its kubelet) still runs.
        let terminating = new.pointer("/metadata/deletionTimestamp").is_some();
        let grace = new
            .pointer("/metadata/deletionGracePeriodSeconds")
            .and_then(Value::as_i64)
            .unwrap_or(0);
        // A namespace goes only when the namespace controller has emptied it.
        let namespace_kind = rt.group.is_empty() && rt.plural == "namespaces";
        if terminating && grace == 0 && finalizers(&new).is_empty() && !namespace_kind {
            if let Some(m) = state.objects.get_mut(&store_key) {
                m.remove(&key);
            }
            self.emit(
                &mut state,
                Event {
                    kind: EventType::Deleted,
                    resource: store_key,
                    object: Arc::new(new.clone()),
                    previous: Some(current),
                    resource_version: rv,
                },
            );
            return Ok(new);
        }
        let shared = Arc::new(new);
        state
            .objects
            .entry(store_key.clone())
            .or_default()
            .insert(key, shared.clone());
        self.emit(
            &mut state,
            Event {
                kind: EventType::Modified,
                resource: store_key,
                object: shared.clone(),
                previous: Some(current),
                resource_version: rv,
            },
        );
        Ok(Value::clone(&shared))
    }

    /// Assigns a pod to a node (the `binding` subresource, as the scheduler does); a pod
    /// that already has a node is a conflict.
    pub fn bind_pod(&self, namespace: &str, name: &str, node: &str) -> Result<Value, ApiError> {
        let rt = self
            .resource("", "pods")
            .ok_or_else(|| ApiError::internal("pods are not served"))?;
        self.modify_with(
            &rt,
            Some(namespace),
            name,
            Subresource::Main,
            false,
            |current| {
                let assigned = current
                    .pointer("/spec/nodeName")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                if !assigned.is_empty() {
                    return Err(ApiError::conflict_because(
                        &rt,
                        name,
                        &format!("pod {name} is already assigned to node {assigned:?}"),
                    ));
                }
                if current.pointer("/metadata/deletionTimestamp").is_some() {
                    return Err(ApiError::conflict_because(
                        &rt,
                        name,
                        &format!("pod {name} is being deleted"),
                    ));
                }
                let mut bound = current.clone();
                bound["spec"]["nodeName"] = json!(node);
                Ok(bound)
            },
        )
    }

    /// Deletes an object per the generic registry rules: preconditions, propagation
    /// finalizers, then either marks it terminating or removes it.
    pub fn delete(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        name: &str,
        options: &DeleteOptions,
    ) -> Result<Deleted, ApiError> {
        let mut state = self.lock();
        let (store_key, key, current) = Self::stored(&state, rt, namespace, name)?;
        for (label, pointer, want) in [
            ("UID", "/metadata/uid", &options.precondition_uid),
            (
                "ResourceVersion",
                "/metadata/resourceVersion",
                &options.precondition_resource_version,
            ),
        ] {
            let actual = current
                .pointer(pointer)
                .and_then(Value::as_str)
                .unwrap_or_default();
            if let Some(want) = want
                && want != actual
            {
                return Err(ApiError::conflict_because(
                    rt,
                    name,
                    &format!(
                        "Precondition failed: {label} in precondition: {want}, {label} in object meta: {actual}"
                    ),
                ));
            }
        }
        let mut updated = Value::clone(&current);
        let mut list = finalizers(&updated);
        match options.propagation_policy.as_deref() {
            Some("Orphan") => {
                list.retain(|f| f != "foregroundDeletion");
                if !list.iter().any(|f| f == "orphan") {
                    list.push("orphan".to_owned());
                }
            }
            Some("Foreground") => {
                list.retain(|f| f != "orphan");
                if !list.iter().any(|f| f == "foregroundDeletion") {
                    list.push("foregroundDeletion".to_owned());
                }
            }
            Some("Background") => list.retain(|f| f != "orphan" && f != "foregroundDeletion"),
            _ => {}
        }
        if !list.is_empty() || !finalizers(&current).is_empty() {
            updated["metadata"]["finalizers"] = json!(list);
        }
        let graceful = rt.kind == "Pod"
            && current
                .pointer("/spec/nodeName")
                .and_then(Value::as_str)
                .is_some_and(|n| !n.is_empty())
            && options
                .grace_period_seconds
                .or_else(|| {
                    current
                        .pointer("/spec/terminationGracePeriodSeconds")
                        .and_then(Value::as_i64)
                })
                .unwrap_or(30)
                > 0;
        // A namespace first turns Terminating; the namespace controller deletes its
        // contents and then removes it with `purge_namespace`.
        let namespace_kind = rt.group.is_empty() && rt.plural == "namespaces";
        if namespace_kind {
            updated["status"] = json!({"phase": "Terminating"});
        }
        state.resource_version += 1;
        let new_rv = state.resource_version;
        if list.is_empty() && !graceful && !namespace_kind {
            updated["metadata"]["resourceVersion"] = json!(new_rv.to_string());
            if let Some(m) = state.objects.get_mut(&store_key) {
                m.remove(&key);
            }
            self.emit(
                &mut state,
                Event {
                    kind: EventType::Deleted,
                    resource: store_key,
                    object: Arc::new(updated.clone()),
                    previous: Some(current),
                    resource_version: new_rv,
                },
            );
            return Ok(Deleted::Removed(updated));
        }
        if updated.pointer("/metadata/deletionTimestamp").is_none() {
            updated["metadata"]["deletionTimestamp"] = json!(now());
            let grace = if graceful {
                options
                    .grace_period_seconds
                    .or_else(|| {
                        current
                            .pointer("/spec/terminationGracePeriodSeconds")
                            .and_then(Value::as_i64)
                    })
                    .unwrap_or(30)
            } else {
                0
            };
            updated["metadata"]["deletionGracePeriodSeconds"] = json!(grace);
            if rt.tracks_generation {
                let generation = updated
                    .pointer("/metadata/generation")
                    .and_then(Value::as_i64)
                    .unwrap_or(1);
                updated["metadata"]["generation"] = json!(generation + 1);
            }
        }
        updated["metadata"]["resourceVersion"] = json!(new_rv.to_string());
        let shared = Arc::new(updated);
        state
            .objects
            .entry(store_key.clone())
            .or_default()
            .insert(key, shared.clone());
        self.emit(
            &mut state,
            Event {
                kind: EventType::Modified,
                resource: store_key,
                object: shared.clone(),
                previous: Some(current),
                resource_version: new_rv,
            },
        );
        Ok(Deleted::Pending(Value::clone(&shared)))
    }

    /// Removes a terminating namespace once nothing is left in it (the namespace
    /// controller's last step); returns whether it was removed.
    pub fn purge_namespace(&self, name: &str) -> bool {
        let mut state = self.lock();
        let key = (String::new(), name.to_owned());
        let terminating = state
            .objects
            .get("/namespaces")
            .and_then(|m| m.get(&key))
            .is_some_and(|ns| ns.pointer("/metadata/deletionTimestamp").is_some());
        let empty = state
            .objects
            .iter()
            .all(|(_, objects)| !objects.keys().any(|(ns, _)| ns == name));
        if !terminating || !empty {
            return false;
        }
        let Some(namespace) = state
            .objects
            .get_mut("/namespaces")
            .and_then(|m| m.remove(&key))
        else {
            return false;
        };
        state.resource_version += 1;
        let rv = state.resource_version;
        self.emit(
            &mut state,
            Event {
                kind: EventType::Deleted,
                resource: "/namespaces".to_owned(),
                object: namespace,
                previous: None,
                resource_version: rv,
            },
        );
        true
    }

    /// Starts a watch of `rt` from `resource_version` ("" or "0": the current state first).
    pub fn watch(
        &self,
        rt: &ResourceType,
        namespace: Option<&str>,
        resource_version: Option<&str>,
        options: &ListOptions,
    ) -> Result<WatchStart, ApiError> {
        let state = self.lock();
        let store_key = resource_key(rt);
        let live = self.events.subscribe();
        let in_scope = |object: &Value| {
            namespace.is_none_or(|ns| {
                !rt.namespaced
                    || object
                        .pointer("/metadata/namespace")
                        .and_then(Value::as_str)
                        == Some(ns)
            })
        };
        let from: Option<u64> =
            match resource_version.filter(|rv| !rv.is_empty() && *rv != "0") {
                Some(rv) => Some(rv.parse().map_err(|_| {
                    ApiError::bad_request(format!("invalid resourceVersion {rv:?}"))
                })?),
                None => None,
            };
        let mut replay = Vec::new();
        let mut too_old = None;
        match from {
            None => {
                for object in state
                    .objects
                    .get(&store_key)
                    .into_iter()
                    .flat_map(|m| m.values())
                {
                    if in_scope(object) && options.matches(object) {
                        replay.push(Arc::new(Event {
                            kind: EventType::Added,
                            resource: store_key.clone(),
                            object: object.clone(),
                            previous: None,
                            resource_version: state.resource_version,
                        }));
                    }
                }
            }
            Some(rv) if rv < state.compacted => {
                too_old = Some(format!(
                    "too old resource version: {rv} ({})",
                    state.compacted + 1
                ));
            }
            Some(rv) => {
                replay = state
                    .history
                    .iter()
                    .filter(|e| {
                        e.resource_version > rv && e.resource == store_key && in_scope(&e.object)
                    })
                    .cloned()
                    .collect();
            }
        }
        drop(state);
        Ok(WatchStart {
            replay,
            live,
            too_old,
        })
    }

    /// Runs `operation` against a throwaway copy of the cluster: what `dryRun=All` does —
    /// every default, admission and validation step runs, nothing is stored or announced.
    pub fn dry_run<T>(
        &self,
        operation: impl FnOnce(&Arc<Store>) -> Result<T, ApiError>,
    ) -> Result<T, ApiError> {
        let (events, _) = broadcast::channel(16);
        let copy = Arc::new(Store {
            state: Mutex::new(self.lock().clone()),
            events,
            cloud: Cloud::default(),
        });
        operation(&copy)
    }

    /// A feed of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<Event>> {
        self.events.subscribe()
    }

    /// Writes the whole cluster (objects, resourceVersion, disks) to `path`, atomically.
    pub fn save(&self, path: &std::path::Path) -> std::io::Result<()> {
        let state = self.lock();
        let objects: Vec<&Value> = state
            .objects
            .values()
            .flat_map(|m| m.values().map(|o| &**o))
            .collect();
        let snapshot = json!({
            "resourceVersion": state.resource_version,
            "objects": objects,
            "disks": self.cloud.list(),
        });
        drop(state);
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::File::create(&temporary)?;
        std::io::Write::write_all(&mut file, snapshot.to_string().as_bytes())?;
        file.sync_all()?;
        std::fs::rename(&temporary, path)
    }

    /// Loads a cluster written by [`Store::save`]; CRDs come back with their objects.
    pub fn load(path: &std::path::Path, history_limit: usize) -> Result<Self, ApiError> {
        let bad = |e: String| ApiError::internal(format!("cannot load {}: {e}", path.display()));
        let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
        let snapshot: Value = serde_json::from_str(&text).map_err(|e| bad(e.to_string()))?;
        let store = Self::new(history_limit);
        {
            let mut state = store.lock();
            state.objects.clear();
            let objects = snapshot
                .get("objects")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            // CRDs first, so their kinds are served before their objects are placed.
            for object in objects.iter().filter(|o| {
                o.get("kind").and_then(Value::as_str) == Some("CustomResourceDefinition")
            }) {
                if let Some(custom) = ResourceType::from_crd(object)
                    && !state
                        .resources
                        .iter()
                        .any(|r| r.group == custom.group && r.plural == custom.plural)
                {
                    state.resources.push(custom);
                }
            }
            for object in objects {
                let api_version = object
                    .get("apiVersion")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let group = api_version.rsplit_once('/').map_or("", |(g, _)| g);
                let kind = object
                    .get("kind")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let Some(rt) = state
                    .resources
                    .iter()
                    .find(|r| r.group == group && r.kind == kind)
                    .cloned()
                else {
                    return Err(bad(format!("unknown kind {api_version}/{kind}")));
                };
                let namespace = object
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let key = (
                    if rt.namespaced {
                        namespace.to_owned()
                    } else {
                        String::new()
                    },
                    name_of(&object).to_owned(),
                );
                state
                    .objects
                    .entry(resource_key(&rt))
                    .or_default()
                    .insert(key, Arc::new(object));
            }
            let rv = snapshot
                .get("resourceVersion")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            state.resource_version = rv;
            state.compacted = rv;
        }
        let disks: Vec<crate::cloud::Disk> = serde_json::from_value(
            snapshot
                .get("disks")
                .cloned()
                .unwrap_or(Value::Array(Vec::new())),
        )
        .map_err(|e| bad(e.to_string()))?;
        store.cloud.restore(disks);
        Ok(store)
    }

    /// The current resourceVersion and every object by resource key, shared rather than
    /// copied, read under one lock: what an informer's relist sees.
    pub fn shared_objects(&self) -> (u64, BTreeMap<String, BTreeMap<ObjectKey, Arc<Value>>>) {
        let state = self.lock();
        (state.resource_version, state.objects.clone())
    }

    /// Every stored object, for snapshots and the test API.
    pub fn dump(&self) -> Value {
        let state = self.lock();
        let objects: Vec<&Value> = state
            .objects
            .values()
            .flat_map(|m| m.values().map(|o| &**o))
            .collect();
        json!({"resourceVersion": state.resource_version, "objects": objects})
    }
}

/// What the apiextensions controllers report for a CRD whose names are free: names
/// accepted and the kind established at once (`kubectl wait --for=condition=Established`).
fn established(crd: &mut Value) {
    let at = now();
    let names = crd.pointer("/spec/names").cloned().unwrap_or(json!({}));
    let stored: Vec<Value> = crd
        .pointer("/spec/versions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
        .filter_map(|v| v.get("name").cloned())
        .collect();
    crd["status"] = json!({
        "acceptedNames": names,
        "storedVersions": stored,
        "conditions": [
            {"type": "NamesAccepted", "status": "True", "lastTransitionTime": at,
             "reason": "NoConflicts", "message": "no conflicts found"},
            {"type": "Established", "status": "True", "lastTransitionTime": at,
             "reason": "InitialNamesAccepted", "message": "the initial names have been accepted"}
        ]
    });
}

/// A write whose result carries a resourceVersion other than the stored one is stale.
fn check_resource_version(
    rt: &ResourceType,
    name: &str,
    current: &Value,
    written: &Value,
) -> Result<(), ApiError> {
    let wanted = written
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty());
    match wanted {
        Some(rv)
            if current
                .pointer("/metadata/resourceVersion")
                .and_then(Value::as_str)
                != Some(rv) =>
        {
            Err(ApiError::conflict(rt, name))
        }
        _ => Ok(()),
    }
}

fn encode_continue(rv: u64, namespace: &str, name: &str) -> String {
    let raw = json!([rv, namespace, name]).to_string();
    raw.bytes().map(|b| format!("{b:02x}")).collect()
}

fn decode_continue(token: &str) -> Result<(u64, Option<ObjectKey>), ApiError> {
    let bad = || ApiError::bad_request(format!("invalid continue token {token:?}"));
    let bytes: Option<Vec<u8>> = (0..token.len())
        .step_by(2)
        .map(|i| {
            token
                .get(i..i + 2)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
        })
        .collect();
    let parsed: Value = serde_json::from_slice(&bytes.ok_or_else(bad)?).map_err(|_| bad())?;
    let rv = parsed.get(0).and_then(Value::as_u64).ok_or_else(bad)?;
    let ns = parsed.get(1).and_then(Value::as_str).ok_or_else(bad)?;
    let name = parsed.get(2).and_then(Value::as_str).ok_or_else(bad)?;
    Ok((rv, Some((ns.to_owned(), name.to_owned()))))
}

/// Whether an event concerns this watch, and as which type after selector transitions.
pub fn event_for_watch(
    event: &Event,
    resource: &str,
    namespace: Option<&str>,
    options: &ListOptions,
) -> Option<EventType> {
    if event.resource != resource {
        return None;
    }
    if let Some(ns) = namespace
        && event
            .object
            .pointer("/metadata/namespace")
            .and_then(Value::as_str)
            .is_some_and(|n| n != ns)
    {
        return None;
    }
    let now = options.matches(&event.object);
    let before = event.previous.as_ref().is_some_and(|p| options.matches(p));
    match event.kind {
        EventType::Added => now.then_some(EventType::Added),
        EventType::Deleted => (now || before).then_some(EventType::Deleted),
        EventType::Modified => match (before, now) {
            (true, true) => Some(EventType::Modified),
            (false, true) => Some(EventType::Added),
            (true, false) => Some(EventType::Deleted),
            (false, false) => None,
        },
    }
}
