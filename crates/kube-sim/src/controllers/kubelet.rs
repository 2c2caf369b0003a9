//! The scheduler and kubelet stand-in: binds pods to nodes that honour their volumes'
//! node affinity, attaches and mounts the disks (refusing a second attachment of a
//! single-attach disk and a filesystem that does not match), reports Ready, and
//! finishes graceful termination by detaching and removing the pod.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};

use super::attacher;
use super::volume_binding::SELECTED_NODE;
use super::{Cache, ControllerSettings, Informer, all, requirement_matches, terminating, text};
use crate::cloud::pv_identity;
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{DeleteOptions, Store, Subresource};

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
    run(
        store,
        &mut Informer::new(store, Duration::ZERO),
        ControllerSettings::default().termination_grace_cap,
    );
}

/// The same pass over an informer's cache; a terminating pod's grace period is honoured
/// up to `grace_cap`.
pub(crate) fn run(store: &Store, informer: &mut Informer, grace_cap: Duration) {
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
    let cache = informer.cache();
    for pod in all(cache, &kinds.pods) {
        if terminating(&pod) {
            finish_termination(store, &kinds, &pod, grace_cap);
        } else if text(&pod, "/spec/nodeName").is_empty() {
            schedule(store, cache, &kinds, &pod);
        } else if text(&pod, "/status/phase") == "Pending" {
            start(store, cache, &kinds, &pod);
        }
    }
}

fn volumes_of(cache: &Cache, kinds: &Kinds, pod: &Value) -> Result<Vec<Arc<Value>>, String> {
    let namespace = text(pod, "/metadata/namespace");
    claim_names(pod)
        .into_iter()
        .map(|name| {
            let claim = cache
                .get(&kinds.claims, Some(namespace), name)
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
            cache
                .get(&kinds.pvs, None, volume)
                .ok_or_else(|| format!("persistentvolume {volume:?} not found"))
        })
        .collect()
}

/// The pod's inline in-tree volumes, as `(volume name, translated CSI PV spec)`.
fn inline_volumes(pod: &Value) -> Vec<(String, Value)> {
    let translator = csi_migrate_translate::Translator::new();
    let namespace = text(pod, "/metadata/namespace");
    pod.pointer("/spec/volumes")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|v| v.get("persistentVolumeClaim").is_none())
        .filter_map(|v| {
            attacher::inline_csi_spec(&translator, v, namespace)
                .map(|spec| (text(v, "/name").to_owned(), spec))
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

fn schedule(store: &Store, cache: &Cache, kinds: &Kinds, pod: &Value) {
    let namespace = text(pod, "/metadata/namespace");
    let nodes = all(cache, &kinds.nodes);
    // WaitForFirstConsumer claims learn their node from the scheduler first.
    for name in claim_names(pod) {
        let Some(claim) = cache.get(&kinds.claims, Some(namespace), name) else {
            continue;
        };
        let unbound = text(&claim, "/spec/volumeName").is_empty();
        let class = claim
            .pointer("/spec/storageClassName")
            .and_then(Value::as_str)
            .unwrap_or_default();
        let wait_for_consumer = cache
            .get(&kinds.classes, None, class)
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
    let volumes = match volumes_of(cache, kinds, pod) {
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
fn volume_mode_mismatch(pod: &Value, volumes: &[Arc<Value>]) -> Option<String> {
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

/// Waits for the volume's attachment (when its driver needs one), then formats a blank
/// disk or refuses a filesystem that does not match; returns why the pod must wait.
fn prepare_volume(
    store: &Store,
    cache: &Cache,
    node: &str,
    volume_name: &str,
    pv: &Value,
) -> Result<(), String> {
    let Some(disk) = store.cloud().find_for_pv(pv) else {
        return Err(format!(
            "MountVolume failed for volume {volume_name:?}: disk not found"
        ));
    };
    // Attaching is the attach/detach controller's and the external-attacher's job.
    let needs_attach =
        pv_identity(pv).is_none_or(|(driver, _)| attacher::attach_required(cache, &driver));
    if needs_attach {
        let attachment = attacher::cached_attachment_for(cache, pv, node);
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
                    || format!("waiting for volume {volume_name:?} to attach"),
                    str::to_owned,
                );
            return Err(message);
        }
    }
    if pv.pointer("/spec/volumeMode").and_then(Value::as_str) == Some("Block") {
        return Ok(());
    }
    let wanted = filesystem_of(pv);
    match &disk.filesystem {
        None => {
            let _ = store.cloud().format(&disk.id, &wanted);
            Ok(())
        }
        Some(found) if *found != wanted => Err(format!(
            "MountVolume.MountDevice failed for volume {volume_name:?}: the disk has a {found} filesystem, the volume asks for {wanted}"
        )),
        Some(_) => Ok(()),
    }
}

fn start(store: &Store, cache: &Cache, kinds: &Kinds, pod: &Value) {
    let node = text(pod, "/spec/nodeName");
    let volumes = match volumes_of(cache, kinds, pod) {
        Ok(volumes) => volumes,
        Err(message) => {
            return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
        }
    };
    if let Some(message) = volume_mode_mismatch(pod, &volumes) {
        return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
    }
    let claimed = volumes
        .iter()
        .map(|pv| (text(pv, "/metadata/name").to_owned(), Value::clone(pv)));
    let inline = inline_volumes(pod)
        .into_iter()
        .map(|(name, spec)| (name, json!({"spec": spec})));
    for (volume_name, pv) in claimed.chain(inline) {
        if let Err(message) = prepare_volume(store, cache, node, &volume_name, &pv) {
            return set_pending_reason(store, kinds, pod, "ContainerCreating", &message);
        }
    }
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    let condition = |kind: &str| json!({"type": kind, "status": "True", "lastTransitionTime": now});
    // Every container runs and is ready at once (there are no probes here).
    let containers: Vec<Value> = pod
        .pointer("/spec/containers")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .map(|c| {
            json!({"name": text(c, "/name"), "image": text(c, "/image"), "imageID": "",
                   "ready": true, "started": true, "restartCount": 0,
                   "state": {"running": {"startedAt": now}}})
        })
        .collect();
    let status = json!({"status": {"phase": "Running", "reason": null, "message": null, "startTime": now,
        "containerStatuses": containers,
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

/// Removes a terminating pod once its grace period (capped at `grace_cap`) has passed:
/// containers stop and volumes unmount instantly here.
fn finish_termination(store: &Store, kinds: &Kinds, pod: &Value, grace_cap: Duration) {
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
    let cap = i64::try_from(grace_cap.as_secs()).unwrap_or(i64::MAX);
    if elapsed < grace.min(cap) {
        return;
    }
    let name = text(pod, "/metadata/name");
    let namespace = text(pod, "/metadata/namespace");
    // Detaching follows when the attach/detach controller drops the attachment.
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
        let block = Arc::new(json!({"spec": {"volumeMode": "Block"}}));
        let filesystem = Arc::new(json!({"spec": {}}));
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
