//! Controllers that run inside the simulator, each a module with one `reconcile`
//! function over the store. Every pass reconciles everything, after every change (plus a
//! resync), reading an informer cache ([`cache`]) that may lag behind the store.

pub mod attacher;
pub mod cache;
pub mod csinode;
pub mod deployment;
mod garbage_collector;
pub mod kubelet;
mod namespace;
mod protection;
pub mod statefulset;
pub mod volume_binding;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{DeleteOptions, Store, Subresource};
pub use cache::{Cache, Informer};

/// Settings of the controller loop.
#[derive(Debug, Clone, Copy)]
pub struct ControllerSettings {
    /// How late the controllers' cache applies each change, to let tests exercise
    /// stale caches and races.
    pub lag: Duration,
    /// Longest wait between passes when nothing changes.
    pub resync: Duration,
    /// Longest a terminating pod's grace period is honoured before the kubelet removes it.
    pub termination_grace_cap: Duration,
    /// How long a deleted namespace stays Terminating, untouched, before the namespace
    /// controller starts deleting its contents (the real one first rediscovers every
    /// resource type; `kubectl delete -f` relies on the objects after the Namespace
    /// still being there).
    pub namespace_cleanup_delay: Duration,
}

impl Default for ControllerSettings {
    fn default() -> Self {
        Self {
            lag: Duration::from_millis(0),
            resync: Duration::from_millis(500),
            termination_grace_cap: Duration::from_secs(1),
            namespace_cleanup_delay: Duration::from_secs(1),
        }
    }
}

/// Runs the controllers until the task is aborted.
pub fn spawn(store: Arc<Store>, settings: ControllerSettings) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut informer = Informer::new(&store, settings.lag);
        loop {
            run_pass_with(&store, &mut informer, &settings);
            // Wake on the next change (due, with a lag) or the resync, whichever comes first.
            informer.changed(settings.resync).await;
        }
    })
}

/// One pass of every controller over a fresh cache.
pub fn reconcile(store: &Store) {
    run_pass(store, &mut Informer::new(store, Duration::ZERO));
}

/// One pass of every controller over `informer`'s cache, brought up to date (as far as
/// its lag allows) before each controller, so with no lag each one sees the writes of
/// those before it.
pub fn run_pass(store: &Store, informer: &mut Informer) {
    run_pass_with(store, informer, &ControllerSettings::default());
}

/// [`run_pass`] with these settings (the kubelet's grace-period cap, the namespace
/// controller's delay).
pub fn run_pass_with(store: &Store, informer: &mut Informer, settings: &ControllerSettings) {
    namespace::run(store, informer, settings.namespace_cleanup_delay);
    let controllers: [fn(&Store, &mut Informer); 7] = [
        volume_binding::run,
        protection::run,
        garbage_collector::run,
        statefulset::run,
        deployment::run,
        csinode::run,
        attacher::run,
    ];
    for controller in controllers {
        informer.catch_up(store);
        controller(store, informer);
    }
    informer.catch_up(store);
    kubelet::run(store, informer, settings.termination_grace_cap);
}

/// Every cached object of a kind.
pub(crate) fn all(cache: &Cache, rt: &ResourceType) -> Vec<Arc<Value>> {
    cache.list(rt)
}

pub(crate) fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

pub(crate) fn finalizers(object: &Value) -> Vec<String> {
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

pub(crate) fn terminating(object: &Value) -> bool {
    object.pointer("/metadata/deletionTimestamp").is_some()
}

/// Replaces the finalizers, guarded by the resourceVersion read (a conflict just waits for the next pass).
pub(crate) fn set_finalizers(store: &Store, rt: &ResourceType, object: &Value, list: &[String]) {
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    let patch = json!({"metadata": {"finalizers": list, "resourceVersion": text(object, "/metadata/resourceVersion")}});
    let result = store.patch(
        rt,
        namespace,
        text(object, "/metadata/name"),
        PatchKind::Merge,
        &patch,
        Subresource::Main,
    );
    if let Err(error) = result {
        tracing::debug!(%error, "finalizer update deferred");
    }
}

pub(crate) fn without(list: &[String], finalizer: &str) -> Vec<String> {
    list.iter().filter(|f| *f != finalizer).cloned().collect()
}

pub(crate) fn owner_refs(object: &Value) -> Vec<Value> {
    object
        .pointer("/metadata/ownerReferences")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

pub(crate) fn delete(store: &Store, rt: &ResourceType, object: &Value, policy: Option<&str>) {
    let options = DeleteOptions {
        propagation_policy: policy.map(str::to_owned),
        precondition_uid: Some(text(object, "/metadata/uid").to_owned()),
        ..DeleteOptions::default()
    };
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    if let Err(error) = store.delete(rt, namespace, text(object, "/metadata/name"), &options) {
        tracing::debug!(%error, "deletion deferred to the next pass");
    }
}

/// The controller owner reference of an object, if any.
pub(crate) fn controller_of(object: &Value) -> Option<Value> {
    owner_refs(object)
        .into_iter()
        .find(|r| r.get("controller") == Some(&Value::Bool(true)))
}

/// A controller owner reference to `owner`, as `metav1.NewControllerRef` builds it.
pub(crate) fn controller_ref(owner: &Value) -> Value {
    json!({"apiVersion": text(owner, "/apiVersion"), "kind": text(owner, "/kind"),
           "name": text(owner, "/metadata/name"), "uid": text(owner, "/metadata/uid"),
           "controller": true, "blockOwnerDeletion": true})
}

/// Replaces an object's owner references, guarded by the resourceVersion read; returns
/// the updated object (a conflict just waits for the next pass).
pub(crate) fn set_owner_refs(
    store: &Store,
    rt: &ResourceType,
    object: &Value,
    refs: Vec<Value>,
) -> Option<Value> {
    let refs = if refs.is_empty() {
        Value::Null
    } else {
        Value::Array(refs)
    };
    let patch = json!({"metadata": {"ownerReferences": refs,
                                    "resourceVersion": text(object, "/metadata/resourceVersion")}});
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    store
        .patch(
            rt,
            namespace,
            text(object, "/metadata/name"),
            PatchKind::Merge,
            &patch,
            Subresource::Main,
        )
        .inspect_err(|error| tracing::debug!(%error, "owner reference update deferred"))
        .ok()
}

/// Whether a `LabelSelector` (matchLabels and matchExpressions) selects the object. An
/// empty or missing selector selects nothing here: the API rejects those on workloads,
/// and matching everything would adopt every pod of the namespace.
pub(crate) fn selector_matches(selector: &Value, object: &Value) -> bool {
    let match_labels = selector.get("matchLabels").and_then(Value::as_object);
    let expressions = selector.get("matchExpressions").and_then(Value::as_array);
    if match_labels.is_none_or(|m| m.is_empty()) && expressions.is_none_or(Vec::is_empty) {
        return false;
    }
    let labels = object.pointer("/metadata/labels");
    let label = |key: &str| labels.and_then(|l| l.get(key)).and_then(Value::as_str);
    let labels_match = match_labels
        .into_iter()
        .flatten()
        .all(|(key, value)| label(key).is_some_and(|l| Some(l) == value.as_str()));
    labels_match
        && expressions
            .into_iter()
            .flatten()
            .all(|e| requirement_matches(e, labels))
}

/// Whether one `matchExpressions` requirement (In, NotIn, Exists, DoesNotExist) holds
/// for an object's labels.
pub(crate) fn requirement_matches(expression: &Value, labels: Option<&Value>) -> bool {
    let actual = labels
        .and_then(|l| l.get(text(expression, "/key")))
        .and_then(Value::as_str);
    let values: Vec<&str> = expression
        .get("values")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    match text(expression, "/operator") {
        "In" => actual.is_some_and(|a| values.contains(&a)),
        "NotIn" => actual.is_none_or(|a| !values.contains(&a)),
        "Exists" => actual.is_some(),
        "DoesNotExist" => actual.is_none(),
        _ => false,
    }
}

/// Whether a pod is Running with the condition Ready=True.
pub(crate) fn running_and_ready(pod: &Value) -> bool {
    text(pod, "/status/phase") == "Running"
        && pod
            .pointer("/status/conditions")
            .and_then(Value::as_array)
            .is_some_and(|conditions| {
                conditions
                    .iter()
                    .any(|c| text(c, "/type") == "Ready" && text(c, "/status") == "True")
            })
}

/// The same JSON with every object's keys sorted, so a hash does not depend on the
/// order a client sent them in.
fn canonical(value: &Value) -> Value {
    match value {
        Value::Object(map) => {
            let sorted: std::collections::BTreeMap<&String, Value> =
                map.iter().map(|(k, v)| (k, canonical(v))).collect();
            Value::Object(sorted.into_iter().map(|(k, v)| (k.clone(), v)).collect())
        }
        Value::Array(items) => Value::Array(items.iter().map(canonical).collect()),
        other => other.clone(),
    }
}

/// A stable short hash of a JSON value: FNV-1a 64 over its canonical serialization,
/// written in the consonant-and-digit alphabet Kubernetes uses in generated names.
pub(crate) fn template_hash(value: &Value) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789";
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for byte in canonical(value).to_string().bytes() {
        hash ^= u64::from(byte);
        hash = hash.wrapping_mul(0x0000_0100_0000_01b3);
    }
    let base = ALPHABET.len() as u64;
    (0..10)
        .map(|_| {
            let digit = ALPHABET
                .get((hash % base) as usize)
                .copied()
                .unwrap_or(b'b');
            hash /= base;
            char::from(digit)
        })
        .collect()
}

/// Records an Event about `involved` once per distinct reason and message (a repeat is
/// not counted: a write on every pass would wake the controllers forever).
pub(crate) fn record_event(
    store: &Store,
    involved: &Value,
    event_type: &str,
    reason: &str,
    message: &str,
    component: &str,
) {
    let Some(rt) = store.resource("", "events") else {
        return;
    };
    let namespace = match text(involved, "/metadata/namespace") {
        "" => "default",
        ns => ns,
    };
    let key = json!([text(involved, "/metadata/uid"), reason, message]);
    let name = format!(
        "{}.{}",
        text(involved, "/metadata/name"),
        template_hash(&key)
    );
    if store.get(&rt, Some(namespace), &name).is_ok() {
        return;
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let event = json!({
        "metadata": {"name": name, "namespace": namespace},
        "involvedObject": {"apiVersion": text(involved, "/apiVersion"), "kind": text(involved, "/kind"),
                           "name": text(involved, "/metadata/name"), "namespace": namespace,
                           "uid": text(involved, "/metadata/uid"),
                           "resourceVersion": text(involved, "/metadata/resourceVersion")},
        "reason": reason, "message": message, "type": event_type,
        "source": {"component": component}, "reportingComponent": component,
        "firstTimestamp": now, "lastTimestamp": now, "count": 1,
    });
    if let Err(error) = store.create(&rt, Some(namespace), event) {
        tracing::debug!(%error, "event not recorded");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_hash_is_stable_and_ignores_key_order() {
        let a = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let b: Value = serde_json::from_str(
            r#"{"spec": {"containers": [{"image": "i", "name": "c"}]}, "metadata": {"labels": {"app": "web"}}}"#,
        )
        .unwrap_or_default();
        assert_eq!(template_hash(&a), template_hash(&b));
        // Pinned: revision and ReplicaSet names must not change between releases.
        assert_eq!(template_hash(&a), "8nzkn5gxgd");
        let changed = json!({"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "j"}]}});
        assert_ne!(template_hash(&a), template_hash(&changed));
    }

    #[test]
    fn selectors_match_labels_and_expressions() {
        let pod = json!({"metadata": {"labels": {"app": "web", "tier": "db"}}});
        assert!(selector_matches(
            &json!({"matchLabels": {"app": "web"}}),
            &pod
        ));
        assert!(!selector_matches(
            &json!({"matchLabels": {"app": "api"}}),
            &pod
        ));
        assert!(selector_matches(
            &json!({"matchExpressions": [{"key": "tier", "operator": "In", "values": ["db", "cache"]},
                                         {"key": "legacy", "operator": "DoesNotExist"}]}),
            &pod
        ));
        assert!(
            !selector_matches(&json!({}), &pod),
            "an empty selector adopts nothing"
        );
    }
}
