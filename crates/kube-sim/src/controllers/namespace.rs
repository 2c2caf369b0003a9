//! The namespace controller: empties a terminating namespace through ordinary deletes, then removes it.
//!
//! Going through `delete` keeps every finalizer in force (a claim still mounted stays
//! behind its `pvc-protection`, a pod gets its grace period), so deleting a namespace
//! loses nothing a single delete would not.

use std::time::Duration;

use super::{Informer, all, delete, terminating, text};
use crate::store::Store;

/// One pass over the namespaces terminating for at least `delay`.
pub(crate) fn run(store: &Store, informer: &mut Informer, delay: Duration) {
    let Some(namespaces) = store.resource("", "namespaces") else {
        return;
    };
    let cache = informer.cache();
    let namespaced: Vec<_> = store
        .resources()
        .into_iter()
        .filter(|r| r.namespaced)
        .collect();
    for namespace in all(cache, &namespaces) {
        let since = text(&namespace, "/metadata/deletionTimestamp")
            .parse::<jiff::Timestamp>()
            .ok();
        let due = since.is_some_and(|since| {
            jiff::Timestamp::now().duration_since(since).unsigned_abs() >= delay
        });
        if !terminating(&namespace) || !due {
            continue;
        }
        let name = text(&namespace, "/metadata/name");
        let mut remaining = 0;
        for rt in &namespaced {
            for object in cache.list_in(rt, name) {
                remaining += 1;
                if !terminating(&object) {
                    delete(store, rt, &object, Some("Background"));
                }
            }
        }
        // The store checks again, live, that nothing is left.
        if remaining == 0 {
            store.purge_namespace(name);
        }
    }
}
