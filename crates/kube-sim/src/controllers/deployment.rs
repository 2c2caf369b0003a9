//! The Deployment and ReplicaSet controllers, enough for scaling (to zero and back) and
//! for a template change rolling onto a new ReplicaSet.

use std::cmp::Reverse;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{
    Informer, all, controller_of, controller_ref, delete, owner_refs, record_event,
    running_and_ready, selector_matches, set_owner_refs, template_hash, terminating, text,
};
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{Store, Subresource};

/// Label every ReplicaSet and pod of a Deployment carries with its template hash.
pub const TEMPLATE_HASH_LABEL: &str = "pod-template-hash";
const REVISION_ANNOTATION: &str = "deployment.kubernetes.io/revision";

struct Kinds {
    deployments: ResourceType,
    replica_sets: ResourceType,
    pods: ResourceType,
}

/// One pass: Deployments scale their ReplicaSets, ReplicaSets make or remove pods, then
/// the Deployments' status is written from what exists.
pub fn reconcile(store: &Store) {
    run(store, &mut Informer::new(store, Duration::ZERO));
}

/// The same pass over an informer's cache.
pub(crate) fn run(store: &Store, informer: &mut Informer) {
    let (Some(deployments), Some(replica_sets), Some(pods)) = (
        store.resource("apps", "deployments"),
        store.resource("apps", "replicasets"),
        store.resource("", "pods"),
    ) else {
        return;
    };
    let kinds = Kinds {
        deployments,
        replica_sets,
        pods,
    };
    let pods = all(informer.cache(), &kinds.pods);
    let replica_sets = all(informer.cache(), &kinds.replica_sets);
    for deployment in all(informer.cache(), &kinds.deployments) {
        sync_deployment(store, &kinds, &deployment, &replica_sets, &pods);
    }
    informer.catch_up(store);
    let pods = all(informer.cache(), &kinds.pods);
    for replica_set in all(informer.cache(), &kinds.replica_sets) {
        sync_replica_set(store, &kinds, &replica_set, &pods);
    }
    // Statuses from what the pass left behind, each list read once.
    informer.catch_up(store);
    let replica_sets = all(informer.cache(), &kinds.replica_sets);
    let pods = all(informer.cache(), &kinds.pods);
    for replica_set in &replica_sets {
        replica_set_status(store, &kinds, replica_set, &pods);
    }
    for deployment in all(informer.cache(), &kinds.deployments) {
        deployment_status(store, &kinds, &deployment, &replica_sets, &pods);
    }
}

fn int(object: &Value, pointer: &str, default: i64) -> i64 {
    object
        .pointer(pointer)
        .and_then(Value::as_i64)
        .unwrap_or(default)
}

fn same_namespace(a: &Value, b: &Value) -> bool {
    text(a, "/metadata/namespace") == text(b, "/metadata/namespace")
}

fn owned_by<'a>(owner: &Value, objects: &'a [Arc<Value>]) -> impl Iterator<Item = &'a Arc<Value>> {
    let uid = text(owner, "/metadata/uid").to_owned();
    objects
        .iter()
        .filter(move |o| controller_of(o).is_some_and(|r| text(&r, "/uid") == uid))
}

/// `ClaimObject` for one controller: releases owned objects the selector no longer
/// matches, adopts matching orphans, and returns what the owner controls.
fn claim(
    store: &Store,
    rt: &ResourceType,
    owner: &Value,
    candidates: &[Arc<Value>],
) -> Vec<Arc<Value>> {
    let selector = owner.pointer("/spec/selector").unwrap_or(&Value::Null);
    let uid = text(owner, "/metadata/uid");
    let deleting = terminating(owner);
    let mut owned = Vec::new();
    for object in candidates.iter().filter(|o| same_namespace(o, owner)) {
        let matches = selector_matches(selector, object);
        match controller_of(object) {
            Some(r) if text(&r, "/uid") != uid => {}
            Some(_) if matches => owned.push(object.clone()),
            Some(_) => {
                if !deleting {
                    let kept = owner_refs(object)
                        .into_iter()
                        .filter(|r| text(r, "/uid") != uid)
                        .collect();
                    set_owner_refs(store, rt, object, kept);
                }
            }
            None => {
                if deleting || !matches || terminating(object) {
                    continue;
                }
                let mut refs = owner_refs(object);
                refs.push(controller_ref(owner));
                if let Some(adopted) = set_owner_refs(store, rt, object, refs) {
                    owned.push(Arc::new(adopted));
                }
            }
        }
    }
    owned
}

/// A pod that still counts toward a ReplicaSet's replicas.
fn active(pod: &Value) -> bool {
    !terminating(pod) && !matches!(text(pod, "/status/phase"), "Failed" | "Succeeded")
}

fn available(pod: &Value) -> bool {
    active(pod) && running_and_ready(pod)
}

/// An int-or-percent of `total` (`25%`), rounded up or down.
fn scaled(value: Option<&Value>, total: i64, default: &str, round_up: bool) -> i64 {
    let text = match value {
        Some(Value::Number(n)) => return n.as_i64().unwrap_or(0),
        Some(Value::String(s)) => s.as_str(),
        _ => default,
    };
    let Some(percent) = text.strip_suffix('%').and_then(|p| p.parse::<i64>().ok()) else {
        return text.parse().unwrap_or(0);
    };
    let product = total * percent;
    if round_up {
        (product + 99) / 100
    } else {
        product / 100
    }
}

fn revision_of(replica_set: &Value) -> i64 {
    text(
        replica_set,
        &format!(
            "/metadata/annotations/{}",
            REVISION_ANNOTATION.replace('/', "~1")
        ),
    )
    .parse()
    .unwrap_or(0)
}

fn set_replicas(store: &Store, kinds: &Kinds, replica_set: &Value, replicas: i64) {
    if int(replica_set, "/spec/replicas", 1) == replicas {
        return;
    }
    let patch = json!({"spec": {"replicas": replicas},
        "metadata": {"resourceVersion": text(replica_set, "/metadata/resourceVersion")}});
    let name = text(replica_set, "/metadata/name");
    if let Err(error) = store.patch(
        &kinds.replica_sets,
        Some(text(replica_set, "/metadata/namespace")),
        name,
        PatchKind::Merge,
        &patch,
        Subresource::Main,
    ) {
        tracing::debug!(%error, replica_set = name, "scaling deferred");
    }
}

/// Finds or creates the ReplicaSet of the current template, then scales it up and the
/// older ones down by the strategy.
fn sync_deployment(
    store: &Store,
    kinds: &Kinds,
    deployment: &Value,
    candidates: &[Arc<Value>],
    pods: &[Arc<Value>],
) {
    if terminating(deployment) {
        return;
    }
    let replicas = int(deployment, "/spec/replicas", 1).max(0);
    let template = deployment
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let hash = template_hash(&template);
    let owned = claim(store, &kinds.replica_sets, deployment, candidates);
    let newest = owned.iter().map(|rs| revision_of(rs)).max().unwrap_or(0);
    let label_of =
        |rs: &Value| text(rs, &format!("/metadata/labels/{TEMPLATE_HASH_LABEL}")).to_owned();
    let mut old: Vec<&Value> = owned
        .iter()
        .map(|rs| &**rs)
        .filter(|rs| label_of(rs) != hash)
        .collect();
    old.sort_by_key(|rs| {
        (
            text(rs, "/metadata/creationTimestamp").to_owned(),
            text(rs, "/metadata/name").to_owned(),
        )
    });
    let old_replicas: i64 = old.iter().map(|rs| int(rs, "/spec/replicas", 0)).sum();
    let old_pods = old
        .iter()
        .map(|rs| owned_by(rs, pods).count())
        .sum::<usize>();
    let recreate = text(deployment, "/spec/strategy/type") == "Recreate";
    let surge = scaled(
        deployment.pointer("/spec/strategy/rollingUpdate/maxSurge"),
        replicas,
        "25%",
        true,
    );
    let mut unavailable = scaled(
        deployment.pointer("/spec/strategy/rollingUpdate/maxUnavailable"),
        replicas,
        "25%",
        false,
    );
    if surge == 0 && unavailable == 0 {
        unavailable = 1;
    }

    let (new_rs, new_revision) = match owned.iter().find(|rs| label_of(rs) == hash) {
        // A template rolled back to becomes the newest revision again.
        Some(rs) if revision_of(rs) < newest => {
            annotate_revision(store, kinds, rs, newest + 1);
            (rs.clone(), newest + 1)
        }
        Some(rs) => (rs.clone(), revision_of(rs)),
        None => match create_replica_set(store, kinds, deployment, &template, &hash, newest + 1) {
            Some(rs) => (Arc::new(rs), newest + 1),
            None => return,
        },
    };
    annotate_deployment(store, kinds, deployment, new_revision);
    let new_replicas = int(&new_rs, "/spec/replicas", 0);

    // Scale the new ReplicaSet up.
    let target = if recreate {
        // Recreate: nothing new runs until every old pod is gone.
        if old_replicas > 0 || old_pods > 0 {
            new_replicas
        } else {
            replicas
        }
    } else if new_replicas >= replicas {
        replicas
    } else {
        let room = replicas + surge - (old_replicas + new_replicas);
        new_replicas + room.clamp(0, replicas - new_replicas)
    };
    set_replicas(store, kinds, &new_rs, target);

    // Scale the old ones down.
    if recreate {
        for rs in &old {
            set_replicas(store, kinds, rs, 0);
        }
        return;
    }
    // As `rolloutRolling`: a pass that scaled up does not also scale down.
    if old_replicas == 0 || target > new_replicas {
        return;
    }
    let min_available = replicas - unavailable;
    let new_available = owned_by(&new_rs, pods).filter(|p| available(p)).count() as i64;
    let new_unavailable = (target - new_available).max(0);
    let total = old_replicas + target;
    let mut budget = total - min_available - new_unavailable;
    if budget <= 0 {
        return;
    }
    // Unavailable old pods go first (they serve nothing), then available ones down to
    // the minimum that must stay available.
    let mut left: Vec<i64> = old.iter().map(|rs| int(rs, "/spec/replicas", 0)).collect();
    for (rs, count) in old.iter().zip(left.iter_mut()) {
        let healthy = owned_by(rs, pods).filter(|p| available(p)).count() as i64;
        let cut = (*count - healthy).clamp(0, budget);
        *count -= cut;
        budget -= cut;
    }
    let available_total: i64 = new_available
        + old
            .iter()
            .map(|rs| owned_by(rs, pods).filter(|p| available(p)).count() as i64)
            .sum::<i64>();
    let mut removable = (available_total - min_available).clamp(0, budget);
    for count in &mut left {
        let cut = (*count).min(removable);
        *count -= cut;
        removable -= cut;
    }
    for (rs, count) in old.iter().zip(left) {
        set_replicas(store, kinds, rs, count);
    }
}

fn annotate_revision(store: &Store, kinds: &Kinds, replica_set: &Value, revision: i64) {
    let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision.to_string()}}});
    if let Err(error) = store.patch(
        &kinds.replica_sets,
        Some(text(replica_set, "/metadata/namespace")),
        text(replica_set, "/metadata/name"),
        PatchKind::Merge,
        &patch,
        Subresource::Main,
    ) {
        tracing::debug!(%error, "revision annotation deferred");
    }
}

fn annotate_deployment(store: &Store, kinds: &Kinds, deployment: &Value, revision: i64) {
    let key = format!(
        "/metadata/annotations/{}",
        REVISION_ANNOTATION.replace('/', "~1")
    );
    if text(deployment, &key) == revision.to_string() {
        return;
    }
    let patch = json!({"metadata": {"annotations": {REVISION_ANNOTATION: revision.to_string()}}});
    if let Err(error) = store.patch(
        &kinds.deployments,
        Some(text(deployment, "/metadata/namespace")),
        text(deployment, "/metadata/name"),
        PatchKind::Merge,
        &patch,
        Subresource::Main,
    ) {
        tracing::debug!(%error, "revision annotation deferred");
    }
}

/// A ReplicaSet `<deployment>-<hash>` for the template, with no replicas yet.
fn create_replica_set(
    store: &Store,
    kinds: &Kinds,
    deployment: &Value,
    template: &Value,
    hash: &str,
    revision: i64,
) -> Option<Value> {
    let namespace = text(deployment, "/metadata/namespace");
    let name = format!("{}-{hash}", text(deployment, "/metadata/name"));
    let mut template = template.clone();
    template["metadata"]["labels"][TEMPLATE_HASH_LABEL] = json!(hash);
    let mut selector = deployment
        .pointer("/spec/selector")
        .cloned()
        .unwrap_or(json!({}));
    selector["matchLabels"][TEMPLATE_HASH_LABEL] = json!(hash);
    let replica_set = json!({
        "apiVersion": "apps/v1",
        "kind": "ReplicaSet",
        "metadata": {"name": name, "namespace": namespace,
                     "labels": template["metadata"]["labels"].clone(),
                     "annotations": {REVISION_ANNOTATION: revision.to_string()},
                     "ownerReferences": [controller_ref(deployment)]},
        "spec": {"replicas": 0, "selector": selector, "template": template,
                 "minReadySeconds": int(deployment, "/spec/minReadySeconds", 0)},
    });
    match store.create(&kinds.replica_sets, Some(namespace), replica_set) {
        Ok(created) => {
            record_event(
                store,
                deployment,
                "Normal",
                "ScalingReplicaSet",
                &format!("Created new replica set \"{name}\""),
                "deployment-controller",
            );
            Some(created)
        }
        Err(error) => {
            tracing::debug!(%error, replica_set = %name, "replica set creation deferred");
            None
        }
    }
}

/// Makes the ReplicaSet's active pods number `spec.replicas`.
fn sync_replica_set(store: &Store, kinds: &Kinds, replica_set: &Value, pods: &[Arc<Value>]) {
    let owned = claim(store, &kinds.pods, replica_set, pods);
    let mut active_pods: Vec<&Value> = owned.iter().map(|p| &**p).filter(|p| active(p)).collect();
    let want = usize::try_from(int(replica_set, "/spec/replicas", 1)).unwrap_or(0);
    let namespace = text(replica_set, "/metadata/namespace");
    let name = text(replica_set, "/metadata/name");
    if !terminating(replica_set) {
        if active_pods.len() < want {
            for _ in active_pods.len()..want {
                let pod = new_pod(replica_set);
                if let Err(error) = store.create(&kinds.pods, Some(namespace), pod) {
                    tracing::debug!(%error, replica_set = name, "pod creation deferred");
                    break;
                }
            }
        } else if active_pods.len() > want {
            // Cheapest first: unscheduled, then not running, then not ready, then newest.
            active_pods.sort_by_key(|p| {
                (
                    !text(p, "/spec/nodeName").is_empty(),
                    text(p, "/status/phase") == "Running",
                    running_and_ready(p),
                    Reverse(text(p, "/metadata/creationTimestamp").to_owned()),
                    Reverse(text(p, "/metadata/name").to_owned()),
                )
            });
            for pod in active_pods.iter().take(active_pods.len() - want) {
                delete(store, &kinds.pods, pod, None);
            }
        }
    }
}

/// The ReplicaSet's status from its pods.
fn replica_set_status(store: &Store, kinds: &Kinds, replica_set: &Value, pods: &[Arc<Value>]) {
    let namespace = text(replica_set, "/metadata/namespace");
    let name = text(replica_set, "/metadata/name");
    let mine: Vec<&Arc<Value>> = owned_by(replica_set, pods).filter(|p| active(p)).collect();
    let ready = mine.iter().filter(|p| running_and_ready(p)).count();
    let status = json!({"status": {
        "replicas": mine.len(),
        "fullyLabeledReplicas": mine.len(),
        "readyReplicas": ready,
        "availableReplicas": ready,
        "observedGeneration": int(replica_set, "/metadata/generation", 1),
    }});
    if let Err(error) = store.patch(
        &kinds.replica_sets,
        Some(namespace),
        name,
        PatchKind::Merge,
        &status,
        Subresource::Status,
    ) {
        tracing::debug!(%error, replica_set = name, "status update deferred");
    }
}

/// A pod `<replica set>-<5 chars>` from the ReplicaSet's template.
fn new_pod(replica_set: &Value) -> Value {
    let template = replica_set
        .pointer("/spec/template")
        .cloned()
        .unwrap_or(json!({}));
    let mut metadata = json!({
        "generateName": format!("{}-", text(replica_set, "/metadata/name")),
        "namespace": text(replica_set, "/metadata/namespace"),
        "ownerReferences": [controller_ref(replica_set)],
    });
    for field in ["labels", "annotations", "finalizers"] {
        if let Some(value) = template.pointer(&format!("/metadata/{field}")) {
            metadata[field] = value.clone();
        }
    }
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": metadata,
           "spec": template.get("spec").cloned().unwrap_or(json!({}))})
}

/// The Deployment's status, summed over its ReplicaSets' pods.
fn deployment_status(
    store: &Store,
    kinds: &Kinds,
    deployment: &Value,
    replica_sets: &[Arc<Value>],
    pods: &[Arc<Value>],
) {
    let hash = deployment
        .pointer("/spec/template")
        .map(template_hash)
        .unwrap_or_default();
    let (mut total, mut ready, mut updated) = (0usize, 0usize, 0usize);
    for rs in owned_by(deployment, replica_sets) {
        let mine: Vec<&Arc<Value>> = owned_by(rs, pods).filter(|p| active(p)).collect();
        total += mine.len();
        ready += mine.iter().filter(|p| running_and_ready(p)).count();
        if text(rs, &format!("/metadata/labels/{TEMPLATE_HASH_LABEL}")) == hash {
            updated += mine.len();
        }
    }
    let wanted = int(deployment, "/spec/replicas", 1).max(0);
    let status = json!({"status": {
        "observedGeneration": int(deployment, "/metadata/generation", 1),
        "replicas": total,
        "updatedReplicas": updated,
        "readyReplicas": ready,
        "availableReplicas": ready,
        "unavailableReplicas": (wanted - ready as i64).max(0),
    }});
    let name = text(deployment, "/metadata/name");
    if let Err(error) = store.patch(
        &kinds.deployments,
        Some(text(deployment, "/metadata/namespace")),
        name,
        PatchKind::Merge,
        &status,
        Subresource::Status,
    ) {
        tracing::debug!(%error, deployment = name, "status update deferred");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn surge_rounds_up_and_unavailable_rounds_down() {
        assert_eq!(scaled(None, 2, "25%", true), 1);
        assert_eq!(scaled(None, 2, "25%", false), 0);
        assert_eq!(scaled(Some(&json!(3)), 10, "25%", true), 3);
        assert_eq!(scaled(Some(&json!("50%")), 3, "25%", false), 1);
    }
}
