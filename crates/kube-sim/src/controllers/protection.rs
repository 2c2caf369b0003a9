//! Storage-object-in-use protection: the `kubernetes.io/pvc-protection` and
//! `kubernetes.io/pv-protection` finalizers come off only when nothing uses the object.

use std::collections::HashSet;

use serde_json::Value;

use super::{all, finalizers, set_finalizers, terminating, text, without};
use crate::admission::{PV_PROTECTION, PVC_PROTECTION};
use crate::store::Store;

/// One pass over claims and volumes.
pub fn reconcile(store: &Store) {
    protect_claims(store);
    protect_volumes(store);
}

/// `kubernetes.io/pvc-protection` goes once the claim is terminating and no scheduled
/// pod (in any phase, terminating or not) names it.
fn protect_claims(store: &Store) {
    let (Some(claims), Some(pods)) = (
        store.resource("", "persistentvolumeclaims"),
        store.resource("", "pods"),
    ) else {
        return;
    };
    let mut in_use: HashSet<(String, String)> = HashSet::new();
    for pod in all(store, &pods) {
        if text(&pod, "/spec/nodeName").is_empty() {
            continue;
        }
        let namespace = text(&pod, "/metadata/namespace").to_owned();
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
                in_use.insert((namespace.clone(), claim.to_owned()));
            }
        }
    }
    for claim in all(store, &claims) {
        let list = finalizers(&claim);
        let key = (
            text(&claim, "/metadata/namespace").to_owned(),
            text(&claim, "/metadata/name").to_owned(),
        );
        if terminating(&claim) && list.iter().any(|f| f == PVC_PROTECTION) && !in_use.contains(&key)
        {
            set_finalizers(store, &claims, &claim, &without(&list, PVC_PROTECTION));
        }
    }
}

/// `kubernetes.io/pv-protection` goes once the volume is terminating and not Bound.
fn protect_volumes(store: &Store) {
    let Some(volumes) = store.resource("", "persistentvolumes") else {
        return;
    };
    for volume in all(store, &volumes) {
        let list = finalizers(&volume);
        if terminating(&volume)
            && list.iter().any(|f| f == PV_PROTECTION)
            && text(&volume, "/status/phase") != "Bound"
        {
            set_finalizers(store, &volumes, &volume, &without(&list, PV_PROTECTION));
        }
    }
}
