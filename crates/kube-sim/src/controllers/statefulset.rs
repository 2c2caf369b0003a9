//! The StatefulSet controller: stable pod identity, claims from volumeClaimTemplates
//! (created only when missing), adoption, OrderedReady gating, revisions, rolling updates
//! and the PVC retention policy, following `pkg/controller/statefulset`.

use std::collections::HashSet;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Map, Value, json};

use super::{
    Cache, Informer, all, controller_of, controller_ref, delete, owner_refs, record_event,
    running_and_ready, selector_matches, set_owner_refs, template_hash, terminating, text,
};
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{Store, Subresource};

/// Label naming the pod, so a Service can select one replica.
pub const POD_NAME_LABEL: &str = "statefulset.kubernetes.io/pod-name";
/// Label carrying the pod's ordinal.
pub const POD_INDEX_LABEL: &str = "apps.kubernetes.io/pod-index";
/// Label naming the ControllerRevision a pod was made from.
pub const REVISION_LABEL: &str = "controller-revision-hash";
/// Label a ControllerRevision carries with its hash.
const REVISION_HASH_LABEL: &str = "controller.kubernetes.io/hash";
const COMPONENT: &str = "statefulset-controller";

struct Kinds<'c> {
    sets: ResourceType,
    pods: ResourceType,
    claims: ResourceType,
    revisions: ResourceType,
    /// The controller's informer cache: its listers read here, never the live store.
    cache: &'c Cache,
}

/// One pass over every StatefulSet.
pub fn reconcile(store: &Store) {
    run(store, &mut Informer::new(store, Duration::ZERO));
}

/// The same pass over an informer's cache.
pub(crate) fn run(store: &Store, informer: &mut Informer) {
    let (Some(sets), Some(pods), Some(claims), Some(revisions)) = (
        store.resource("apps", "statefulsets"),
        store.resource("", "pods"),
        store.resource("", "persistentvolumeclaims"),
        store.resource("apps", "controllerrevisions"),
    ) else {
        return;
    };
    let kinds = Kinds {
        sets: sets.clone(),
        pods: pods.clone(),
        claims: claims.clone(),
        revisions: revisions.clone(),
        cache: informer.cache(),
    };
    let set_list = all(kinds.cache, &kinds.sets);
    let revision_names: Vec<(String, String)> = set_list
        .iter()
        .map(|set| sync(store, &kinds, kinds.cache, set))
        .collect();
    // Status from what the pass left behind (as far as the cache's lag allows).
    informer.catch_up(store);
    let kinds = Kinds {
        sets,
        pods,
        claims,
        revisions,
        cache: informer.cache(),
    };
    for (set, (current, update)) in set_list.iter().zip(&revision_names) {
        let view = SetView::new(set);
        let pods = informer.cache().list_in(&kinds.pods, view.namespace);
        write_status(store, &kinds, &view, &pods, current, update);
    }
}

/// `(parent, ordinal)` of a pod name of the form `<parent>-<ordinal>`, as the
/// controller's `(.*)-([0-9]+)$` does.
pub fn parse_pod_name(name: &str) -> Option<(&str, u32)> {
    let (parent, digits) = name.rsplit_once('-')?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some((parent, digits.parse().ok()?))
}

/// The ordinal of a pod that belongs to `set_name` by its name.
fn ordinal_in(set_name: &str, pod: &Value) -> Option<u32> {
    parse_pod_name(text(pod, "/metadata/name"))
        .filter(|(parent, _)| *parent == set_name)
        .map(|(_, ordinal)| ordinal)
}

/// A pod the controller may count on: Running, Ready and not on its way out.
fn healthy(pod: &Value) -> bool {
    running_and_ready(pod) && !terminating(pod)
}

fn phase(pod: &Value) -> &str {
    text(pod, "/status/phase")
}

fn int(object: &Value, pointer: &str, default: i64) -> i64 {
    object
        .pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

/// The revision number of a ControllerRevision.
fn revision_number(revision: &Value) -> i64 {
    int(revision, "/revision", 0)
}

/// What a StatefulSet looks like to its controller in one pass.
struct SetView<'a> {
    set: &'a Value,
    namespace: &'a str,
    name: &'a str,
    uid: &'a str,
    start: i64,
    replicas: i64,
    monotonic: bool,
    when_deleted_delete: bool,
    when_scaled_delete: bool,
}

impl<'a> SetView<'a> {
    fn new(set: &'a Value) -> Self {
        let policy = |field: &str| {
            text(
                set,
                &format!("/spec/persistentVolumeClaimRetentionPolicy/{field}"),
            ) == "Delete"
        };
        Self {
            set,
            namespace: text(set, "/metadata/namespace"),
            name: text(set, "/metadata/name"),
            uid: text(set, "/metadata/uid"),
            start: int(set, "/spec/ordinals/start", 0),
            replicas: int(set, "/spec/replicas", 1).max(0),
            monotonic: text(set, "/spec/podManagementPolicy") != "Parallel",
            when_deleted_delete: policy("whenDeleted"),
            when_scaled_delete: policy("whenScaled"),
        }
    }

    fn in_range(&self, ordinal: i64) -> bool {
        ordinal >= self.start && ordinal < self.start + self.replicas
    }

    fn pod_name(&self, ordinal: i64) -> String {
        format!("{}-{ordinal}", self.name)
    }

    fn claim_templates(&self) -> Vec<&'a Value> {
        self.set
            .pointer("/spec/volumeClaimTemplates")
            .and_then(Value::as_array)
            .map(|templates| templates.iter().collect())
            .unwrap_or_default()
    }

    /// `<template>-<set>-<ordinal>` for every claim template.
    fn claim_names(&self, ordinal: i64) -> Vec<String> {
        self.claim_templates()
            .into_iter()
            .map(|t| format!("{}-{}-{ordinal}", text(t, "/metadata/name"), self.name))
            .collect()
    }
}

/// Acts on one set; returns its current and update revision names.
fn sync(store: &Store, kinds: &Kinds, cache: &Cache, set: &Value) -> (String, String) {
    let view = SetView::new(set);
    let template = set.pointer("/spec/template").cloned().unwrap_or(json!({}));
    let update_name = format!("{}-{}", view.name, template_hash(&template));
    let pods = claim_pods(store, kinds, cache, &view);
    let revisions = claim_revisions(store, kinds, cache, &view);
    let recorded_current = text(set, "/status/currentRevision");
    let current = revisions
        .iter()
        .find(|r| !recorded_current.is_empty() && text(r, "/metadata/name") == recorded_current)
        .cloned();
    let current_name = current.as_ref().map_or(update_name.clone(), |r| {
        text(r, "/metadata/name").to_owned()
    });
    // "If the StatefulSet is being deleted, don't do anything other than updating status."
    if !terminating(set) {
        ensure_revision(store, kinds, &view, &revisions, &update_name, &template);
        let current_template = current
            .as_ref()
            .and_then(|r| r.pointer("/data/spec/template"))
            .cloned();
        let revisions_of = Revisions {
            current_name: &current_name,
            current_template: current_template.as_ref(),
            update_name: &update_name,
            update_template: &template,
        };
        update_pods(store, kinds, &view, &pods, &revisions_of);
        truncate_history(
            store,
            kinds,
            &view,
            &pods,
            &revisions,
            &current_name,
            &update_name,
        );
    }
    (current_name, update_name)
}

/// The current and update revisions a pod can be made from.
struct Revisions<'a> {
    current_name: &'a str,
    current_template: Option<&'a Value>,
    update_name: &'a str,
    update_template: &'a Value,
}

/// `ClaimPods`: releases owned pods that no longer match, adopts matching orphans, and
/// returns the pods the set owns.
fn claim_pods(store: &Store, kinds: &Kinds, cache: &Cache, view: &SetView) -> Vec<Arc<Value>> {
    let selector = view.set.pointer("/spec/selector").unwrap_or(&Value::Null);
    let deleting = terminating(view.set);
    let mut owned = Vec::new();
    for pod in &cache.list_in(&kinds.pods, view.namespace) {
        let matches = selector_matches(selector, pod) && ordinal_in(view.name, pod).is_some();
        match controller_of(pod) {
            Some(owner) if text(&owner, "/uid") != view.uid => {}
            Some(_) if matches => owned.push(pod.clone()),
            Some(_) => {
                if !deleting {
                    let kept: Vec<Value> = owner_refs(pod)
                        .into_iter()
                        .filter(|r| text(r, "/uid") != view.uid)
                        .collect();
                    set_owner_refs(store, &kinds.pods, pod, kept);
                }
            }
            None => {
                if deleting || !matches || terminating(pod) || !still_current(store, kinds, view) {
                    continue;
                }
                let mut refs = owner_refs(pod);
                refs.push(controller_ref(view.set));
                if let Some(adopted) = set_owner_refs(store, &kinds.pods, pod, refs) {
                    owned.push(Arc::new(adopted));
                }
            }
        }
    }
    owned
}

/// The uncached re-read before adopting: a set deleted (or replaced) meanwhile must
/// not adopt anything.
fn still_current(store: &Store, kinds: &Kinds, view: &SetView) -> bool {
    store
        .get(&kinds.sets, Some(view.namespace), view.name)
        .is_ok_and(|fresh| text(&fresh, "/metadata/uid") == view.uid && !terminating(&fresh))
}

/// `AdoptOrphanRevisions` plus the set's own revisions, oldest first.
fn claim_revisions(store: &Store, kinds: &Kinds, cache: &Cache, view: &SetView) -> Vec<Arc<Value>> {
    let selector = view.set.pointer("/spec/selector").unwrap_or(&Value::Null);
    let mut owned = Vec::new();
    for revision in &cache.list_in(&kinds.revisions, view.namespace) {
        match controller_of(revision) {
            Some(owner) if text(&owner, "/uid") == view.uid => owned.push(revision.clone()),
            Some(_) => {}
            None => {
                if terminating(view.set)
                    || !selector_matches(selector, revision)
                    || !still_current(store, kinds, view)
                {
                    continue;
                }
                let mut refs = owner_refs(revision);
                refs.push(controller_ref(view.set));
                if let Some(adopted) = set_owner_refs(store, &kinds.revisions, revision, refs) {
                    owned.push(Arc::new(adopted));
                }
            }
        }
    }
    owned.sort_by_key(|r| revision_number(r));
    owned
}

/// Makes sure the update revision exists and is the newest one.
fn ensure_revision(
    store: &Store,
    kinds: &Kinds,
    view: &SetView,
    revisions: &[Arc<Value>],
    update_name: &str,
    template: &Value,
) {
    let newest = revisions
        .iter()
        .map(|r| revision_number(r))
        .max()
        .unwrap_or(0);
    if let Some(existing) = revisions
        .iter()
        .find(|r| text(r, "/metadata/name") == update_name)
    {
        // Rolling back to an earlier template makes its revision the newest again.
        if revision_number(existing) < newest {
            let patch = json!({"revision": newest + 1,
                "metadata": {"resourceVersion": text(existing, "/metadata/resourceVersion")}});
            if let Err(error) = store.patch(
                &kinds.revisions,
                Some(view.namespace),
                update_name,
                PatchKind::Merge,
                &patch,
                Subresource::Main,
            ) {
                tracing::debug!(%error, revision = update_name, "revision renumbering deferred");
            }
        }
        return;
    }
    let hash = update_name
        .rsplit_once('-')
        .map_or("", |(_, hash)| hash)
        .to_owned();
    let mut labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(REVISION_HASH_LABEL.to_owned(), json!(hash));
    // The revision stores only the pod template, as a strategic-merge patch that replaces it.
    let mut data_template = template.clone();
    if let Some(map) = data_template.as_object_mut() {
        map.insert("$patch".to_owned(), json!("replace"));
    }
    let revision = json!({
        "apiVersion": "apps/v1",
        "kind": "ControllerRevision",
        "metadata": {"name": update_name, "namespace": view.namespace, "labels": labels,
                     "ownerReferences": [controller_ref(view.set)]},
        "data": {"spec": {"template": data_template}},
        "revision": newest + 1,
    });
    if let Err(error) = store.create(&kinds.revisions, Some(view.namespace), revision) {
        tracing::debug!(%error, revision = update_name, "revision creation deferred");
    }
}

/// The pod template a revision stored, without the `$patch` directive.
fn stored_template(template: &Value) -> Value {
    let mut template = template.clone();
    if let Some(map) = template.as_object_mut() {
        map.remove("$patch");
    }
    template
}

/// `updateStatefulSet`: create, repair, condemn and roll pods, one step at a time where
/// the policy is monotonic.
fn update_pods(
    store: &Store,
    kinds: &Kinds,
    view: &SetView,
    pods: &[Arc<Value>],
    revisions: &Revisions,
) {
    let count = usize::try_from(view.replicas).unwrap_or(0);
    let mut slots: Vec<Option<&Value>> = vec![None; count];
    let mut condemned: Vec<(i64, &Value)> = Vec::new();
    for pod in pods {
        let Some(ordinal) = ordinal_in(view.name, pod).map(i64::from) else {
            continue;
        };
        if view.in_range(ordinal) {
            if let Some(slot) = usize::try_from(ordinal - view.start)
                .ok()
                .and_then(|i| slots.get_mut(i))
            {
                *slot = Some(pod);
            }
        } else {
            condemned.push((ordinal, pod));
        }
    }
    // Highest ordinal first: scale-down goes from the top.
    condemned.sort_by_key(|(ordinal, _)| std::cmp::Reverse(*ordinal));

    // Claims of condemned pods get their retention-policy owner refs before the pods go.
    for (_, pod) in &condemned {
        update_claim_refs(store, kinds, view, pod, false);
    }

    let first_unhealthy: Option<String> = slots
        .iter()
        .enumerate()
        .find(|(_, slot)| slot.is_none_or(|pod| !healthy(pod)))
        .map(|(i, _)| view.pod_name(view.start + i as i64))
        .or_else(|| {
            condemned
                .iter()
                .find(|(_, pod)| !healthy(pod))
                .map(|(_, pod)| text(pod, "/metadata/name").to_owned())
        });

    let mut failed = false;
    for (index, slot) in slots.iter().enumerate() {
        let ordinal = view.start + index as i64;
        let step = match slot {
            None => create_replica(store, kinds, view, ordinal, revisions),
            Some(pod) => process_replica(store, kinds, view, pod),
        };
        match step {
            Step::Continue => {}
            Step::Wait => {
                if view.monotonic {
                    return;
                }
            }
            Step::Failed => {
                if view.monotonic {
                    return;
                }
                failed = true;
            }
        }
    }
    // Parallel mode runs every replica, then stops on any error, as `runForAll` does.
    if failed {
        return;
    }

    for (_, pod) in &condemned {
        if terminating(pod) {
            if view.monotonic {
                return;
            }
            continue;
        }
        let name = text(pod, "/metadata/name");
        if view.monotonic && !running_and_ready(pod) && first_unhealthy.as_deref() != Some(name) {
            return;
        }
        tracing::debug!(pod = name, set = view.name, "deleting a condemned pod");
        delete(store, &kinds.pods, pod, None);
        record_event(
            store,
            view.set,
            "Normal",
            "SuccessfulDelete",
            &format!("delete Pod {name} in StatefulSet {} successful", view.name),
            COMPONENT,
        );
        if view.monotonic {
            return;
        }
    }

    if text(view.set, "/spec/updateStrategy/type") == "OnDelete" {
        return;
    }
    // Roll the highest ordinal not at the update revision, one at a time, waiting for
    // every pod above it to be healthy; ordinals below the partition are left alone.
    let partition = usize::try_from(int(
        view.set,
        "/spec/updateStrategy/rollingUpdate/partition",
        0,
    ))
    .unwrap_or(0);
    for index in (partition..slots.len()).rev() {
        let Some(pod) = slots.get(index).copied().flatten() else {
            return;
        };
        if text(pod, &format!("/metadata/labels/{REVISION_LABEL}")) != revisions.update_name
            && !terminating(pod)
        {
            let name = text(pod, "/metadata/name");
            tracing::debug!(
                pod = name,
                set = view.name,
                "rolling a pod to the update revision"
            );
            delete(store, &kinds.pods, pod, None);
            return;
        }
        if !healthy(pod) {
            return;
        }
    }
}

/// What a replica step asks of the loop.
enum Step {
    /// Go on to the next replica.
    Continue,
    /// Monotonic sets wait here.
    Wait,
    /// An error: retried next pass.
    Failed,
}

/// A missing replica: its claims (only those missing), then the pod.
fn create_replica(
    store: &Store,
    kinds: &Kinds,
    view: &SetView,
    ordinal: i64,
    revisions: &Revisions,
) -> Step {
    let pod_name = view.pod_name(ordinal);
    if view.when_scaled_delete && claim_is_stale(kinds, view, ordinal, &pod_name) {
        tracing::debug!(pod = %pod_name, "a claim still belongs to an earlier pod; waiting for the garbage collector");
        return Step::Wait;
    }
    if let Err(message) = create_claims(store, kinds, view, ordinal) {
        tracing::debug!(pod = %pod_name, %message, "pod creation refused");
        record_event(
            store,
            view.set,
            "Warning",
            "FailedCreate",
            &format!(
                "create Pod {pod_name} in StatefulSet {} failed error: {message}",
                view.name
            ),
            COMPONENT,
        );
        return Step::Failed;
    }
    // Ordinals below the partition are (re)created from the current revision.
    let partition = int(view.set, "/spec/updateStrategy/rollingUpdate/partition", 0);
    let (template, revision) = match revisions.current_template {
        Some(current) if ordinal < view.start + partition => {
            (stored_template(current), revisions.current_name)
        }
        _ => (revisions.update_template.clone(), revisions.update_name),
    };
    let pod = new_pod(view, &template, revision, ordinal);
    match store.create(&kinds.pods, Some(view.namespace), pod) {
        Ok(created) => {
            record_event(
                store,
                view.set,
                "Normal",
                "SuccessfulCreate",
                &format!(
                    "create Pod {pod_name} in StatefulSet {} successful",
                    view.name
                ),
                COMPONENT,
            );
            update_claim_refs(store, kinds, view, &created, true);
            Step::Wait
        }
        Err(error) => {
            // An orphan of that name the set cannot adopt makes this fail on every pass.
            tracing::debug!(%error, pod = %pod_name, "pod creation failed");
            Step::Failed
        }
    }
}

/// An existing replica: failed pods are replaced, pending ones get missing claims, and
/// monotonic sets wait for it to be Running and Ready.
fn process_replica(store: &Store, kinds: &Kinds, view: &SetView, pod: &Value) -> Step {
    if matches!(phase(pod), "Failed" | "Succeeded") {
        if !terminating(pod) {
            delete(store, &kinds.pods, pod, None);
        }
        return Step::Wait;
    }
    let ordinal = ordinal_in(view.name, pod).map_or(0, i64::from);
    // A pending pod re-runs "create missing claims": a claim deleted under it comes
    // back empty from the template.
    if matches!(phase(pod), "Pending" | "")
        && !terminating(pod)
        && let Err(message) = create_claims(store, kinds, view, ordinal)
    {
        tracing::debug!(pod = text(pod, "/metadata/name"), %message, "missing claims not created");
        return Step::Failed;
    }
    if terminating(pod) {
        return Step::Wait;
    }
    fix_identity(store, kinds, view, pod, ordinal);
    update_claim_refs(store, kinds, view, pod, true);
    if running_and_ready(pod) {
        Step::Continue
    } else {
        Step::Wait
    }
}

/// Restores the identity labels of an (adopted) pod.
fn fix_identity(store: &Store, kinds: &Kinds, view: &SetView, pod: &Value, ordinal: i64) {
    let name = text(pod, "/metadata/name");
    let index = ordinal.to_string();
    let label = |key: &str| {
        pod.pointer("/metadata/labels")
            .and_then(|l| l.get(key))
            .and_then(Value::as_str)
    };
    if label(POD_NAME_LABEL) == Some(name) && label(POD_INDEX_LABEL) == Some(index.as_str()) {
        return;
    }
    let patch = json!({"metadata": {"labels": {POD_NAME_LABEL: name, POD_INDEX_LABEL: index},
                                    "resourceVersion": text(pod, "/metadata/resourceVersion")}});
    if let Err(error) = store.patch(
        &kinds.pods,
        Some(view.namespace),
        name,
        PatchKind::Merge,
        &patch,
        Subresource::Main,
    ) {
        tracing::debug!(%error, pod = name, "identity update deferred");
    }
}

/// The claims of one ordinal as the templates make them.
fn template_claims(view: &SetView, ordinal: i64) -> Vec<Value> {
    let selector_labels = view
        .set
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    view.claim_templates()
        .into_iter()
        .zip(view.claim_names(ordinal))
        .map(|(template, name)| {
            let mut metadata = Map::new();
            for field in ["annotations", "finalizers"] {
                if let Some(value) = template.pointer(&format!("/metadata/{field}")) {
                    metadata.insert(field.to_owned(), value.clone());
                }
            }
            // Template labels merged with the selector's, or just the selector's.
            let mut labels = template
                .pointer("/metadata/labels")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default();
            labels.extend(selector_labels.clone());
            metadata.insert("name".to_owned(), json!(name));
            metadata.insert("namespace".to_owned(), json!(view.namespace));
            metadata.insert("labels".to_owned(), Value::Object(labels));
            json!({
                "apiVersion": "v1",
                "kind": "PersistentVolumeClaim",
                "metadata": metadata,
                "spec": template.get("spec").cloned().unwrap_or(json!({})),
            })
        })
        .collect()
}

/// `createPersistentVolumeClaims`: creates the claims that do not exist, never touches
/// the ones that do, and refuses when one is being deleted.
fn create_claims(store: &Store, kinds: &Kinds, view: &SetView, ordinal: i64) -> Result<(), String> {
    let mut errors = Vec::new();
    for mut claim in template_claims(view, ordinal) {
        let name = text(&claim, "/metadata/name").to_owned();
        // The lister, as upstream: a stale cache that misses a claim makes the create
        // fail with AlreadyExists; one that still holds a deleted claim creates nothing.
        match kinds.cache.get(&kinds.claims, Some(view.namespace), &name) {
            Some(existing) => {
                if terminating(&existing) {
                    errors.push(format!("pvc {name} is being deleted"));
                }
            }
            None => {
                if view.when_deleted_delete && view.in_range(ordinal) {
                    claim["metadata"]["ownerReferences"] = json!([controller_ref(view.set)]);
                }
                match store.create(&kinds.claims, Some(view.namespace), claim) {
                    Ok(_) => record_event(
                        store,
                        view.set,
                        "Normal",
                        "SuccessfulCreate",
                        &format!(
                            "create Claim {name} Pod {} in StatefulSet {} success",
                            view.pod_name(ordinal),
                            view.name
                        ),
                        COMPONENT,
                    ),
                    Err(error) => {
                        errors.push(format!("failed to create PVC {name}: {}", error.message))
                    }
                }
            }
        }
    }
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors.join(", "))
    }
}

/// `PodClaimIsStale`: with `whenScaled: Delete`, a claim still owned by an earlier pod
/// of this name is on its way to the garbage collector and must not be reused.
fn claim_is_stale(kinds: &Kinds, view: &SetView, ordinal: i64, pod_name: &str) -> bool {
    view.claim_names(ordinal).iter().any(|name| {
        kinds
            .cache
            .get(&kinds.claims, Some(view.namespace), name)
            .is_some_and(|claim| {
                owner_refs(&claim)
                    .iter()
                    .any(|r| text(r, "/kind") == "Pod" && text(r, "/name") == pod_name)
            })
    })
}

/// Keeps the claims' owner references consistent with the retention policy: a ref to
/// the set under `whenDeleted: Delete` (while in range), a ref to the pod under
/// `whenScaled: Delete` once scaled away, neither under Retain.
fn update_claim_refs(store: &Store, kinds: &Kinds, view: &SetView, pod: &Value, in_range: bool) {
    let pod_name = text(pod, "/metadata/name");
    let pod_uid = text(pod, "/metadata/uid");
    let Some(ordinal) = ordinal_in(view.name, pod).map(i64::from) else {
        return;
    };
    for name in view.claim_names(ordinal) {
        let Some(claim) = kinds.cache.get(&kinds.claims, Some(view.namespace), &name) else {
            continue;
        };
        let refs = owner_refs(&claim);
        let stale = refs.iter().any(|r| {
            (text(r, "/kind") == "StatefulSet"
                && text(r, "/name") == view.name
                && text(r, "/uid") != view.uid)
                || (text(r, "/kind") == "Pod"
                    && text(r, "/name") == pod_name
                    && text(r, "/uid") != pod_uid)
        });
        if stale {
            // An earlier set's or pod's claim: leave it to the garbage collector.
            continue;
        }
        let foreign_controller = refs.iter().any(|r| {
            r.get("controller") == Some(&Value::Bool(true))
                && text(r, "/uid") != view.uid
                && text(r, "/uid") != pod_uid
        });
        let scaled_away = !in_range;
        let want_set = !foreign_controller
            && view.when_deleted_delete
            && !(view.when_scaled_delete && scaled_away);
        let want_pod = !foreign_controller && view.when_scaled_delete && scaled_away;
        let mut wanted: Vec<Value> = refs
            .iter()
            .filter(|r| {
                let uid = text(r, "/uid");
                (uid != view.uid || want_set) && (uid != pod_uid || want_pod)
            })
            .cloned()
            .collect();
        if want_set && !refs.iter().any(|r| text(r, "/uid") == view.uid) {
            wanted.push(controller_ref(view.set));
        }
        if want_pod && !pod_uid.is_empty() && !refs.iter().any(|r| text(r, "/uid") == pod_uid) {
            wanted.push(controller_ref(pod));
        }
        if wanted != refs {
            set_owner_refs(store, &kinds.claims, &claim, wanted);
        }
    }
}

/// `newStatefulSetPod`: the template plus identity, revision label, owner and claims.
fn new_pod(view: &SetView, template: &Value, revision: &str, ordinal: i64) -> Value {
    let name = view.pod_name(ordinal);
    let mut labels = template
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .cloned()
        .unwrap_or_default();
    labels.insert(POD_NAME_LABEL.to_owned(), json!(name));
    labels.insert(POD_INDEX_LABEL.to_owned(), json!(ordinal.to_string()));
    labels.insert(REVISION_LABEL.to_owned(), json!(revision));
    let mut metadata = json!({"name": name, "namespace": view.namespace, "labels": labels,
                              "ownerReferences": [controller_ref(view.set)]});
    for field in ["annotations", "finalizers"] {
        if let Some(value) = template.pointer(&format!("/metadata/{field}")) {
            metadata[field] = value.clone();
        }
    }
    let mut spec = template.get("spec").cloned().unwrap_or(json!({}));
    spec["hostname"] = json!(name);
    let service = text(view.set, "/spec/serviceName");
    if !service.is_empty() {
        spec["subdomain"] = json!(service);
    }
    // The templates' claims replace same-named volumes; other volumes stay.
    let templates = view.claim_templates();
    let claim_volume_names: HashSet<&str> = templates
        .iter()
        .map(|t| text(t, "/metadata/name"))
        .collect();
    let mut volumes: Vec<Value> = templates
        .iter()
        .zip(view.claim_names(ordinal))
        .map(|(t, claim)| {
            json!({"name": text(t, "/metadata/name"),
                   "persistentVolumeClaim": {"claimName": claim}})
        })
        .collect();
    volumes.extend(
        spec.get("volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|v| !claim_volume_names.contains(text(v, "/name")))
            .cloned(),
    );
    if !volumes.is_empty() {
        spec["volumes"] = json!(volumes);
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata, "spec": spec})
}

/// Deletes the oldest revisions beyond `revisionHistoryLimit` that no pod uses.
fn truncate_history(
    store: &Store,
    kinds: &Kinds,
    view: &SetView,
    pods: &[Arc<Value>],
    revisions: &[Arc<Value>],
    current_name: &str,
    update_name: &str,
) {
    let limit = usize::try_from(int(view.set, "/spec/revisionHistoryLimit", 10)).unwrap_or(0);
    let live: HashSet<&str> = pods
        .iter()
        .map(|p| text(p, &format!("/metadata/labels/{REVISION_LABEL}")))
        .chain([current_name, update_name])
        .collect();
    let history: Vec<&Value> = revisions
        .iter()
        .map(|r| &**r)
        .filter(|r| !live.contains(text(r, "/metadata/name")))
        .collect();
    for revision in history.iter().take(history.len().saturating_sub(limit)) {
        delete(store, &kinds.revisions, revision, None);
    }
}

/// Writes the status from the pods the set owns now.
fn write_status(
    store: &Store,
    kinds: &Kinds,
    view: &SetView,
    all_pods: &[Arc<Value>],
    current_name: &str,
    update_name: &str,
) {
    let pods: Vec<&Value> = all_pods
        .iter()
        .map(|p| &**p)
        .filter(|p| {
            text(p, "/metadata/namespace") == view.namespace
                && controller_of(p).is_some_and(|r| text(&r, "/uid") == view.uid)
                && ordinal_in(view.name, p).is_some()
        })
        .collect();
    let revision_of = |p: &Value| text(p, &format!("/metadata/labels/{REVISION_LABEL}")).to_owned();
    let replicas = pods.len();
    let ready = pods.iter().filter(|p| running_and_ready(p)).count();
    let settled: Vec<&Value> = pods.iter().copied().filter(|p| !terminating(p)).collect();
    let mut current = settled
        .iter()
        .filter(|p| revision_of(p) == current_name)
        .count();
    let updated = settled
        .iter()
        .filter(|p| revision_of(p) == update_name)
        .count();
    let mut current_revision = current_name;
    // `completeRollingUpdate`: once every pod is updated and ready, the update revision
    // becomes current.
    if text(view.set, "/spec/updateStrategy/type") != "OnDelete"
        && updated == replicas
        && ready == replicas
    {
        current = updated;
        current_revision = update_name;
    }
    let status = json!({"status": {
        "observedGeneration": int(view.set, "/metadata/generation", 1),
        "replicas": replicas,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "currentReplicas": current,
        "updatedReplicas": updated,
        "currentRevision": current_revision,
        "updateRevision": update_name,
        "collisionCount": 0,
    }});
    if let Err(error) = store.patch(
        &kinds.sets,
        Some(view.namespace),
        view.name,
        PatchKind::Merge,
        &status,
        Subresource::Status,
    ) {
        tracing::debug!(%error, set = view.name, "status update deferred");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pod_names_parse_into_parent_and_ordinal() {
        assert_eq!(parse_pod_name("web-0"), Some(("web", 0)));
        assert_eq!(parse_pod_name("my-db-12"), Some(("my-db", 12)));
        assert_eq!(parse_pod_name("web"), None);
        assert_eq!(parse_pod_name("web-"), None);
        assert_eq!(parse_pod_name("web-1a"), None);
        assert_eq!(parse_pod_name("web--1"), Some(("web-", 1)));
    }

    #[test]
    fn membership_needs_the_exact_parent_name() {
        let pod = json!({"metadata": {"name": "web-db-3"}});
        assert_eq!(ordinal_in("web-db", &pod), Some(3));
        assert_eq!(ordinal_in("web", &pod), None);
    }

    #[test]
    fn new_pods_carry_identity_revision_owner_and_claims() {
        let set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": "ns", "uid": "u-1"},
            "spec": {"serviceName": "svc", "selector": {"matchLabels": {"app": "web"}},
                     "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {}}],
                     "template": {"metadata": {"labels": {"app": "web"}},
                                  "spec": {"volumes": [{"name": "data", "emptyDir": {}},
                                                       {"name": "conf", "configMap": {"name": "c"}}]}}}});
        let view = SetView::new(&set);
        let template = set.pointer("/spec/template").cloned().unwrap_or_default();
        let pod = new_pod(&view, &template, "web-abc", 2);
        assert_eq!(text(&pod, "/metadata/name"), "web-2");
        assert_eq!(text(&pod, "/metadata/labels/app"), "web");
        assert_eq!(
            text(&pod, "/metadata/labels/controller-revision-hash"),
            "web-abc"
        );
        assert_eq!(
            text(&pod, "/metadata/labels/apps.kubernetes.io~1pod-index"),
            "2"
        );
        assert_eq!(text(&pod, "/metadata/ownerReferences/0/uid"), "u-1");
        assert_eq!(
            pod.pointer("/metadata/ownerReferences/0/controller"),
            Some(&json!(true))
        );
        assert_eq!(text(&pod, "/spec/subdomain"), "svc");
        assert_eq!(
            pod.pointer("/spec/volumes"),
            Some(
                &json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data-web-2"}},
                         {"name": "conf", "configMap": {"name": "c"}}])
            )
        );
    }
}
