//! Storage-object-in-use protection: the `kubernetes.io/pvc-protection` and
//! `kubernetes.io/pv-protection` finalizers come off only when nothing uses the object.

use std::collections::HashSet;

use serde_json::Value;

use super::{Informer, all, finalizers, set_finalizers, terminating, text, without};
use crate::admission::{PV_PROTECTION, PVC_PROTECTION};
use crate::resource::ResourceType;
use crate::store::{ListOptions, Store};

/// One pass over claims and volumes.
pub(crate) fn run(store: &Store, informer: &mut Informer) {
    protect_claims(store, informer);
    informer.catch_up(store);
    protect_volumes(store, informer);
}

/// `kubernetes.io/pvc-protection` goes once the claim is terminating and no scheduled
/// pod (in any phase, terminating or not) names it.
fn protect_claims(store: &Store, informer: &Informer) {
    let (Some(claims), Some(pods)) = (
        store.resource("", "persistentvolumeclaims"),
        store.resource("", "pods"),
    ) else {
        return;
    };
    let mut in_use: HashSet<(String, String)> = HashSet::new();
    for pod in &all(informer.cache(), &pods) {
        mark_claims_in_use(pod, &mut in_use);
    }
    for claim in all(informer.cache(), &claims) {
        let claim = &*claim;
        let list = finalizers(claim);
        let key = (
            text(claim, "/metadata/namespace").to_owned(),
            text(claim, "/metadata/name").to_owned(),
        );
        if terminating(claim)
            && list.iter().any(|f| f == PVC_PROTECTION)
            && !in_use.contains(&key)
            && !used_by_live_pod(store, &pods, &key)
        {
            set_finalizers(store, &claims, claim, &without(&list, PVC_PROTECTION));
        }
    }
}

/// Adds the claims a scheduled pod names to `in_use`.
fn mark_claims_in_use(pod: &Value, in_use: &mut HashSet<(String, String)>) {
    if text(pod, "/spec/nodeName").is_empty() {
        return;
    }
    let namespace = text(pod, "/metadata/namespace");
    for volume in pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        if let Some(claim) = volume
            .pointer("/persistentVolumeClaim/claimName")
            .and_then(Value::as_str)
        {
            in_use.insert((namespace.to_owned(), claim.to_owned()));
        }
    }
}

/// The live re-check upstream makes before letting a claim go: the cache may not have
/// seen a pod created a moment ago.
fn used_by_live_pod(store: &Store, pods: &ResourceType, key: &(String, String)) -> bool {
    let Ok(list) = store.list(pods, Some(&key.0), &ListOptions::default()) else {
        return true;
    };
    let mut in_use = HashSet::new();
    for pod in list
        .get("items")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        mark_claims_in_use(pod, &mut in_use);
    }
    in_use.contains(key)
}

/// `kubernetes.io/pv-protection` goes once the volume is terminating and not Bound.
fn protect_volumes(store: &Store, informer: &Informer) {
    let Some(volumes) = store.resource("", "persistentvolumes") else {
        return;
    };
    for volume in all(informer.cache(), &volumes) {
        let volume = &*volume;
        let list = finalizers(volume);
        if terminating(volume)
            && list.iter().any(|f| f == PV_PROTECTION)
            && text(volume, "/status/phase") != "Bound"
        {
            set_finalizers(store, &volumes, volume, &without(&list, PV_PROTECTION));
        }
    }
}
