//! The scheduler and kubelet stand-in: binds pods to nodes that honour their volumes'
//! node affinity, attaches and mounts the disks (refusing a second attachment of a
//! single-attach disk and a filesystem that does not match), reports Ready, and
//! finishes graceful termination by detaching and removing the pod.

use serde_json::{Value, json};

use super::attacher;
use super::volume_binding::SELECTED_NODE;
use super::{all, requirement_matches, terminating, text};
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{DeleteOptions, Store, Subresource};

/// Longest a terminating pod lingers before the kubelet removes it (its grace period, capped).
const TERMINATION_CAP_SECONDS: i64 = 1;

fn claim_names(pod: &Value) -> Vec<&str> {
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|v| {
            v.pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
        })
        .collect()
}

/// Whether a node's labels satisfy a PV's required node affinity (terms ORed, expressions ANDed).
pub fn node_matches_affinity(node: &Value, pv: &Value) -> bool {
    let Some(terms) = pv
        .pointer("/spec/nodeAffinity/required/nodeSelectorTerms")
        .and_then(Value::as_array)
    else {
        return true;
    };
    let labels = node.pointer("/metadata/labels");
    terms.iter().any(|term| {
        term.get("matchExpressions")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .all(|e| requirement_matches(e, labels))
    })
}

struct Kinds {
    pods: ResourceType,
    claims: ResourceType,
    pvs: ResourceType,
    classes: ResourceType,
    nodes: ResourceType,
}

/// One pass over every pod.
pub fn reconcile(store: &Store) {
    let (Some(pods), Some(claims), Some(pvs), Some(classes), Some(nodes)) = (
        store.resource("", "pods"),
        store.resource("", "persistentvolumeclaims"),
        store.resource("", "persistentvolumes"),
        store.resource("storage.k8s.io", "storageclasses"),
        store.resource("", "nodes"),
    ) else {
        return;
    };
    let kinds = Kinds {
        pods,
        claims,
        pvs,
        classes,
        nodes,
    };
    for pod in all(store, &kinds.pods) {
        if terminating(&pod) {
            finish_termination(store, &kinds, &pod);
        } else if text(&pod, "/spec/nodeName").is_empty() {
            schedule(store, &kinds, &pod);
        } else if text(&pod, "/status/phase") == "Pending" {
            start(store, &kinds, &pod);
        }
    }
}

fn get(store: &Store, rt: &ResourceType, namespace: Option<&str>, name: &str) -> Option<Value> {
    store.get(rt, namespace, name).ok()
}

fn volumes_of(store: &Store, kinds: &Kinds, pod: &Value) -> Result<Vec<Value>, String> {
    let namespace = text(pod, "/metadata/namespace");
    claim_names(pod)
        .into_iter()
        .map(|name| {
            let claim = get(store, &kinds.claims, Some(namespace), name)
                .ok_or_else(|| format!("persistentvolumeclaim {name:?} not found"))?;
            if terminating(&claim) {
                return Err(format!("persistentvolumeclaim {name:?} is being deleted"));
            }
            let volume = text(&claim, "/spec/volumeName");
            if text(&claim, "/status/phase") != "Bound" || volume.is_empty() {
                return Err(format!(
                    "pod has unbound immediate PersistentVolumeClaims ({name})"
                ));
            }
            get(store, &kinds.pvs, None, volume)
                .ok_or_else(|| format!("persistentvolume {volume:?} not found"))
        })
        .collect()
}

fn set_pending_reason(store: &Store, kinds: &Kinds, pod: &Value, reason: &str, message: &str) {
    if text(pod, "/status/message") == message {
        return;
    }
    let status = json!({"status": {"phase": "Pending", "reason": reason, "message": message}});
    let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str);
    let _ = store.patch(
        &kinds.pods,
        namespace,
        text(pod, "/metadata/name"),
        PatchKind::Merge,
        &status,
        Subresource::Status,
    );
}

fn schedule(store: &Store, kinds: &Kinds, pod: &Value) {
    let namespace = text(pod, "/metadata/namespace");
    let nodes = all(store, &kinds.nodes);
    // WaitForFirstConsumer claims learn their node from the scheduler first.
    for name in claim_names(pod) {
        let Some(claim) = get(store, &kinds.claims, Some(namespace), name) else {
            continue;
        };
        let unbound = text(&claim, "/spec/volumeName").is_empty();
        let class = claim
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let wait_for_consumer = get(store, &kinds.classes, None, class)
            .is_some_and(|c| text(&c, "/volumeBindingMode") == "WaitForFirstConsumer");
        if unbound
            && wait_for_consumer
            && claim
                .pointer(&format!(
                    "/metadata/annotations/{}",
                    SELECTED_NODE.replace('/', "~1")
                ))
                .is_none()
            && let Some(node) = nodes.first()
        {
            let body =
                json!({"metadata": {"annotations": {SELECTED_NODE: text(node, "/metadata/name")}}});
            let _ = store.patch(
                &kinds.claims,
                Some(namespace),
                name,
                PatchKind::Merge,
                &body,
                Subresource::Main,
            );
        }
    }
    let volumes = match volumes_of(store, kinds, pod) {
        Ok(volumes) => volumes,
        Err(message) => return set_pending_reason(store, kinds, pod, "Unschedulable", &message),
    };
    let Some(node) = nodes
        .iter()
        .find(|n| volumes.iter().all(|pv| node_matches_affinity(n, pv)))
    else {
        return set_pending_reason(
            store,
            kinds,
            pod,
            "Unschedulable",
            &format!(
                "0/{} nodes are available: node(s) had volume node affinity conflict",
                nodes.len()
            ),
        );
    };
    if let Err(error) = store.bind_pod(
        namespace,
        text(pod, "/metadata/name"),
        text(node, "/metadata/name"),
    ) {
        tracing::debug!(%error, "binding deferred");
    }
}

fn filesystem_of(pv: &Value) -> String {
    let spec = pv.get("spec");
    let from_source = spec.and_then(Value::as_object).and_then(|s| {
        s.values().find_map(|v| {
            v.get("fsType")
                .and_then(Value::as_str)
                .filter(|f| !f.is_empty())
        })
    });
    from_source.unwrap_or("ext4").to_owned()
}

/// A Block volume must be used through `volumeDevices`, a Filesystem one through
/// `volumeMounts`, as the kubelet insists. `volumes` are the PVs of the pod's claims, in order.
fn volume_mode_mismatch(pod: &Value, volumes: &[Value]) -> Option<String> {
    let claimed: Vec<&str> = pod
        .pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("persistentVolumeClaim").is_some())
        .map(|v| text(v, "/name"))
        .collect();
    let containers = ["/spec/containers", "/spec/initContainers"]
        .iter()
        .flat_map(|p| {
            pod.pointer(p)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
        })
        .collect::<Vec<_>>();
    let used_in = |list: &str, name: &str| {
        containers.iter().any(|c| {
            c.get(list)
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .any(|m| text(m, "/name") == name)
        })
    };
    for (name, pv) in claimed.into_iter().zip(volumes) {
        let mode = pv
            .pointer("/spec/volumeMode")
            .and_then(Value::as_str)
            .unwrap_or("Filesystem");
        if mode == "Block" && used_in("volumeMounts", name) {
            return Some(format!(
                "volume {name} has volumeMode Block, but is specified in volumeMounts"
            ));
        }
        if mode == "Filesystem" && used_in("volumeDevices", name) {
            return Some(format!(
                "volume {name} has volumeMode Filesystem, but is specified in volumeDevices"
            ));
        }
    }
    None
}

fn start(store: &Store, kinds: &Kinds, pod: &Value) {
    let node = text(pod, "/spec/nodeName");
    let volumes = match volumes_of(store, kinds, pod) {
        Ok(volumes) => volumes,
        Err(message) => {
            return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
        }
    };
    if let Some(message) = volume_mode_mismatch(pod, &volumes) {
        return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
    }
    for pv in &volumes {
        let Some(disk) = store.cloud().find_for_pv(pv) else {
            let message = format!(
                "MountVolume failed for volume {:?}: disk not found",
                text(pv, "/metadata/name")
            );
            return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
        };
        // Attaching is the attach/detach controller's and the external-attacher's job.
        let attachment = attacher::attachment_for(store, pv, node);
        if attachment
            .as_ref()
            .and_then(|a| a.pointer("/status/attached"))
            .and_then(Value::as_bool)
            != Some(true)
        {
            let message = attachment
                .as_ref()
                .and_then(|a| a.pointer("/status/attachError/message"))
                .and_then(Value::as_str)
                .map_or_else(
                    || {
                        format!(
                            "waiting for volume {:?} to attach",
                            text(pv, "/metadata/name")
                        )
                    },
                    str::to_owned,
                );
            return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
        }
        if pv.pointer("/spec/volumeMode").and_then(Value::as_str) == Some("Block") {
            continue;
        }
        let wanted = filesystem_of(pv);
        match &disk.filesystem {
            None => {
                let _ = store.cloud().format(&disk.id, &wanted);
            }
            Some(found) if *found != wanted => {
                let message = format!(
                    "MountVolume.MountDevice failed for volume {:?}: the disk has a {found} filesystem, the volume asks for {wanted}",
                    text(pv, "/metadata/name")
                );
                return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
            }
            Some(_) => {}
        }
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
    let status = json!({"status": {"phase": "Running", "reason": null, "message": null, "startTime": now,
        "conditions": [condition("PodScheduled"), condition("Initialized"), condition("ContainersReady"), condition("Ready")]}});
    let namespace = pod.pointer("/metadata/namespace").and_then(Value::as_str);
    let _ = store.patch(
        &kinds.pods,
        namespace,
        text(pod, "/metadata/name"),
        PatchKind::Merge,
        &status,
        Subresource::Status,
    );
}

fn finish_termination(store: &Store, kinds: &Kinds, pod: &Value) {
    let grace = pod
        .pointer("/metadata/deletionGracePeriodSeconds")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let deleted_at = text(pod, "/metadata/deletionTimestamp")
        .parse::<jiff::Timestamp>()
        .ok();
    let elapsed = deleted_at.map_or(i64::MAX, |t| {
        jiff::Timestamp::now().as_second() - t.as_second()
    });
    if elapsed < grace.min(TERMINATION_CAP_SECONDS) {
        return;
    }
    let name = text(pod, "/metadata/name");
    let namespace = text(pod, "/metadata/namespace");
    // Unmounting is instant here; detaching follows when the attacher drops the attachment.
    let options = DeleteOptions {
        grace_period_seconds: Some(0),
        precondition_uid: Some(text(pod, "/metadata/uid").to_owned()),
        ..DeleteOptions::default()
    };
    let _ = store.delete(&kinds.pods, Some(namespace), name, &options);
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn block_volumes_must_be_devices_and_filesystem_volumes_mounts() {
        let pod = |list: &str| {
            json!({"spec": {"volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "c"}}],
                            "containers": [{"name": "app", list: [{"name": "data", "mountPath": "/d", "devicePath": "/dev/d"}]}]}})
        };
        let block = json!({"spec": {"volumeMode": "Block"}});
        let filesystem = json!({"spec": {}});
        assert!(volume_mode_mismatch(&pod("volumeMounts"), std::slice::from_ref(&block)).is_some());
        assert_eq!(
            volume_mode_mismatch(&pod("volumeDevices"), std::slice::from_ref(&block)),
            None
        );
        assert!(
            volume_mode_mismatch(&pod("volumeDevices"), std::slice::from_ref(&filesystem))
                .is_some()
        );
        assert_eq!(
            volume_mode_mismatch(&pod("volumeMounts"), &[filesystem]),
            None
        );
    }
}
