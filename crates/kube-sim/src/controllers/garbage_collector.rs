//! The garbage collector: owner references, and the orphan / background / foreground
//! propagation policies.

use std::collections::{HashMap, HashSet};

use std::sync::Arc;

use serde_json::{Value, json};

use super::cache::resource_key;
use super::{Informer, delete, finalizers, owner_refs, set_finalizers, terminating, text, without};
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{Store, Subresource};

/// The garbage collector: an owner deleted with `orphan` releases its dependents (their
/// owner references are removed) before it goes; with `foregroundDeletion` its blocking
/// dependents are deleted first; dependents whose owners are all gone are deleted
/// (background propagation).
pub(crate) fn run(store: &Store, informer: &mut Informer) {
    let resources: HashMap<String, ResourceType> = store
        .resources()
        .into_iter()
        .map(|rt| (resource_key(&rt), rt))
        .collect();
    let objects: Vec<(&ResourceType, &Arc<Value>)> = informer
        .cache()
        .everything()
        .filter_map(|(kind, object)| Some((resources.get(kind)?, object)))
        .collect();
    let by_uid: HashSet<&str> = objects
        .iter()
        .map(|(_, o)| text(o, "/metadata/uid"))
        .collect();
    // Owner uid -> its dependents, built once per pass rather than scanned per owner.
    let mut dependents: HashMap<String, Vec<(&ResourceType, &Arc<Value>)>> = HashMap::new();
    for &(rt, object) in &objects {
        for reference in owner_refs(object) {
            dependents
                .entry(text(&reference, "/uid").to_owned())
                .or_default()
                .push((rt, object));
        }
    }
    let dependents_of = |uid: &str| dependents.get(uid).cloned().unwrap_or_default();
    for &(rt, owner) in &objects {
        if !terminating(owner) {
            continue;
        }
        let uid = text(owner, "/metadata/uid");
        let list = finalizers(owner);
        if list.iter().any(|f| f == "orphan") {
            for (dep_rt, dependent) in dependents_of(uid) {
                let kept: Vec<Value> = owner_refs(dependent)
                    .into_iter()
                    .filter(|r| r.get("uid").and_then(Value::as_str) != Some(uid))
                    .collect();
                let namespace = dependent
                    .pointer("/metadata/namespace")
                    .and_then(Value::as_str);
                let patch = json!({"metadata": {"ownerReferences": if kept.is_empty() { Value::Null } else { json!(kept) }}});
                let _ = store.patch(
                    dep_rt,
                    namespace,
                    text(dependent, "/metadata/name"),
                    PatchKind::Merge,
                    &patch,
                    Subresource::Main,
                );
            }
            set_finalizers(store, rt, owner, &without(&list, "orphan"));
        } else if list.iter().any(|f| f == "foregroundDeletion") {
            let dependents = dependents_of(uid);
            for (dep_rt, dependent) in &dependents {
                if !terminating(dependent) {
                    delete(store, dep_rt, dependent, Some("Foreground"));
                }
            }
            // Only dependents with `blockOwnerDeletion: true` hold the owner back; the
            // others are collected in the background once it is gone.
            let blocking = dependents.iter().any(|(_, dependent)| {
                owner_refs(dependent).iter().any(|r| {
                    text(r, "/uid") == uid
                        && r.get("blockOwnerDeletion") == Some(&Value::Bool(true))
                })
            });
            if !blocking {
                set_finalizers(store, rt, owner, &without(&list, "foregroundDeletion"));
            }
        }
    }
    for &(rt, dependent) in &objects {
        let refs = owner_refs(dependent);
        if refs.is_empty() || terminating(dependent) {
            continue;
        }
        let owners_gone = refs.iter().all(|r| {
            r.get("uid")
                .and_then(Value::as_str)
                .is_none_or(|uid| !by_uid.contains(uid))
        });
        if owners_gone && owners_really_gone(store, &resources, dependent) {
            delete(store, rt, dependent, Some("Background"));
        }
    }
}

/// The live look-up the garbage collector makes before deleting a dependent whose owners
/// its cache does not hold: an owner created a moment ago must not lose its dependents.
fn owners_really_gone(
    store: &Store,
    resources: &HashMap<String, ResourceType>,
    dependent: &Value,
) -> bool {
    owner_refs(dependent).iter().all(|reference| {
        let (group, _) = text(reference, "/apiVersion")
            .rsplit_once('/')
            .unwrap_or(("", ""));
        let Some(rt) = resources
            .values()
            .find(|rt| rt.group == group && rt.kind == text(reference, "/kind"))
        else {
            return true;
        };
        let namespace = dependent
            .pointer("/metadata/namespace")
            .and_then(Value::as_str);
        store
            .get(rt, namespace, text(reference, "/name"))
            .map_or(true, |owner| {
                text(&owner, "/metadata/uid") != text(reference, "/uid")
            })
    })
}
