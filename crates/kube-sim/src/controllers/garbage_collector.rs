//! The garbage collector: owner references, and the orphan / background / foreground
//! propagation policies.

use std::collections::HashMap;

use serde_json::{Value, json};

use super::{all, delete, finalizers, owner_refs, set_finalizers, terminating, text, without};
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{Store, Subresource};

/// The garbage collector: an owner deleted with `orphan` releases its dependents (their
/// owner references are removed) before it goes; with `foregroundDeletion` its blocking
/// dependents are deleted first; dependents whose owners are all gone are deleted
/// (background propagation).
pub fn reconcile(store: &Store) {
    let resources = store.resources();
    let mut objects: Vec<(ResourceType, Value)> = Vec::new();
    for rt in &resources {
        objects.extend(all(store, rt).into_iter().map(|o| (rt.clone(), o)));
    }
    let by_uid: HashMap<&str, &(ResourceType, Value)> = objects
        .iter()
        .map(|entry| (text(&entry.1, "/metadata/uid"), entry))
        .collect();
    let dependents_of = |uid: &str| -> Vec<&(ResourceType, Value)> {
        objects
            .iter()
            .filter(|(_, o)| {
                owner_refs(o)
                    .iter()
                    .any(|r| r.get("uid").and_then(Value::as_str) == Some(uid))
            })
            .collect()
    };
    for (rt, owner) in &objects {
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
            if dependents.is_empty() {
                set_finalizers(store, rt, owner, &without(&list, "foregroundDeletion"));
            }
        }
    }
    for (rt, dependent) in &objects {
        let refs = owner_refs(dependent);
        if refs.is_empty() || terminating(dependent) {
            continue;
        }
        let owners_gone = refs.iter().all(|r| {
            r.get("uid")
                .and_then(Value::as_str)
                .is_none_or(|uid| !by_uid.contains_key(uid))
        });
        if owners_gone {
            delete(store, rt, dependent, Some("Background"));
        }
    }
}
