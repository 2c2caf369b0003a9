//! The kubelets' CSINode registration: one CSINode per Node, listing the registered CSI drivers and the migrated in-tree plugins.
//!
//! A real kubelet creates its node's CSINode (owned by the Node, so the garbage
//! collector removes it with the Node) and adds a driver once that driver's node plugin
//! registers. Here every CSIDriver object counts as a node plugin running on every node.
//! A CSINode someone else created (a scenario or a test configuring per-node drivers)
//! is left as it is, and a Node annotated [`UNMANAGED_ANNOTATION`]` = "true"` gets none.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::{Informer, all, controller_ref, owner_refs, text};
use crate::patch::PatchKind;
use crate::store::{Store, Subresource};

/// CSINode annotation: the in-tree plugins whose volumes the kubelet hands to CSI drivers.
pub const MIGRATED_PLUGINS_ANNOTATION: &str = "storage.alpha.kubernetes.io/migrated-plugins";
/// Node annotation of the simulator: `"true"` means no kubelet registers a CSINode for
/// it (a node without CSI support, or one a test configures by hand).
pub const UNMANAGED_ANNOTATION: &str = "kube-sim.csi-migrate.io/csinode-unmanaged";

/// The in-tree plugins the simulated kubelets migrate, comma-separated and sorted as
/// the kubelet writes them: every migratable plugin but RBD (its translation is gone).
pub fn migrated_plugins() -> String {
    let translator = csi_migrate_translate::Translator::new();
    let mut names: Vec<&str> = translator
        .plugins()
        .map(|p| p.in_tree_plugin_name())
        .filter(|name| *name != "kubernetes.io/rbd")
        .collect();
    names.sort_unstable();
    names.join(",")
}

/// One pass with a fresh cache.
pub fn reconcile(store: &Store) {
    run(store, &mut Informer::new(store, Duration::ZERO));
}

/// The same pass over an informer's cache.
pub(crate) fn run(store: &Store, informer: &mut Informer) {
    let (Some(nodes), Some(csi_nodes), Some(drivers)) = (
        store.resource("", "nodes"),
        store.resource("storage.k8s.io", "csinodes"),
        store.resource("storage.k8s.io", "csidrivers"),
    ) else {
        return;
    };
    let cache = informer.cache();
    let driver_names: Vec<String> = all(cache, &drivers)
        .iter()
        .map(|d| text(d, "/metadata/name").to_owned())
        .collect();
    let migrated = migrated_plugins();
    for node in all(cache, &nodes) {
        let name = text(&node, "/metadata/name");
        let unmanaged = node
            .pointer("/metadata/annotations")
            .and_then(|a| a.get(UNMANAGED_ANNOTATION))
            .and_then(Value::as_str)
            == Some("true");
        if unmanaged || node.pointer("/metadata/deletionTimestamp").is_some() {
            continue;
        }
        match cache.get(&csi_nodes, None, name) {
            None => {
                let csi_node = json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
                    "metadata": {"name": name, "annotations": {MIGRATED_PLUGINS_ANNOTATION: migrated},
                                 "ownerReferences": [owner_ref(&node)]},
                    "spec": {"drivers": driver_entries(&driver_names, name, &[])}});
                if let Err(error) = store.create(&csi_nodes, None, csi_node) {
                    tracing::debug!(%error, node = name, "CSINode creation deferred");
                }
            }
            Some(existing) if registered_by_kubelet(&existing, &node) => {
                sync_drivers(store, &csi_nodes, &existing, &driver_names, name);
            }
            Some(_) => {}
        }
    }
}

/// The kubelet's owner reference on its CSINode: the Node, not as controller.
fn owner_ref(node: &Value) -> Value {
    let mut reference = controller_ref(node);
    if let Some(map) = reference.as_object_mut() {
        map.remove("controller");
        map.remove("blockOwnerDeletion");
    }
    reference
}

/// Whether this simulated kubelet made the CSINode (it is owned by the Node).
fn registered_by_kubelet(csi_node: &Value, node: &Value) -> bool {
    owner_refs(csi_node)
        .iter()
        .any(|r| text(r, "/kind") == "Node" && text(r, "/uid") == text(node, "/metadata/uid"))
}

/// `{name, nodeID, topologyKeys}` per driver, keeping entries already registered.
fn driver_entries(names: &[String], node: &str, existing: &[Value]) -> Vec<Value> {
    names
        .iter()
        .map(|driver| {
            existing
                .iter()
                .find(|e| text(e, "/name") == driver)
                .cloned()
                .unwrap_or_else(|| {
                    json!({"name": driver, "nodeID": node,
                           "topologyKeys": ["topology.kubernetes.io/zone"]})
                })
        })
        .collect()
}

/// A driver registers (or its CSIDriver goes away): the CSINode follows.
fn sync_drivers(
    store: &Store,
    rt: &crate::resource::ResourceType,
    csi_node: &Arc<Value>,
    names: &[String],
    node: &str,
) {
    let existing: Vec<Value> = csi_node
        .pointer("/spec/drivers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let wanted = driver_entries(names, node, &existing);
    if wanted == existing {
        return;
    }
    let body = json!({"metadata": {"resourceVersion": text(csi_node, "/metadata/resourceVersion")},
                      "spec": {"drivers": wanted}});
    if let Err(error) = store.patch(rt, None, node, PatchKind::Merge, &body, Subresource::Main) {
        tracing::debug!(%error, node, "CSINode update deferred");
    }
}
