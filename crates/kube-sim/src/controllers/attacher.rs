//! The attach/detach controller and the CSI external-attacher: a VolumeAttachment for
//! every volume a scheduled pod needs on its node, attach and detach through the fake
//! cloud, and the `external-attacher/<driver>` finalizers on attachments and volumes.
//! Detaching needs the PV object: without it the attachment stays stuck.

use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use super::{all, finalizers, set_finalizers, terminating, text, without};
use crate::cloud::pv_identity;
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{DeleteOptions, Store, Subresource};

/// `csi-<sha256(handle + driver + node)>`, the name the attach/detach controller gives.
pub fn attachment_name(driver: &str, handle: &str, node: &str) -> String {
    let digest = Sha256::digest(format!("{handle}{driver}{node}").as_bytes());
    digest.iter().fold("csi-".to_owned(), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

/// `external-attacher/<driver with every character outside [a-zA-Z0-9-] as '-'>`.
pub fn attacher_finalizer(driver: &str) -> String {
    let sanitized: String = driver
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '-'
            }
        })
        .collect();
    format!("external-attacher/{sanitized}")
}

struct Kinds {
    pods: ResourceType,
    claims: ResourceType,
    pvs: ResourceType,
    attachments: ResourceType,
}

/// One pass: desired attachments, then the external-attacher's work on each of them.
pub fn reconcile(store: &Store) {
    let (Some(pods), Some(claims), Some(pvs), Some(attachments)) = (
        store.resource("", "pods"),
        store.resource("", "persistentvolumeclaims"),
        store.resource("", "persistentvolumes"),
        store.resource("storage.k8s.io", "volumeattachments"),
    ) else {
        return;
    };
    let kinds = Kinds {
        pods,
        claims,
        pvs,
        attachments,
    };
    let volumes = all(store, &kinds.pvs);
    let desired = desired_attachments(store, &kinds, &volumes);
    let existing = all(store, &kinds.attachments);
    for (pv_name, node) in &desired {
        let Some(pv) = volumes
            .iter()
            .find(|v| text(v, "/metadata/name") == pv_name)
        else {
            continue;
        };
        let Some((driver, handle)) = pv_identity(pv) else {
            continue;
        };
        let name = attachment_name(&driver, &handle, node);
        if existing.iter().any(|a| text(a, "/metadata/name") == name) {
            continue;
        }
        let attachment = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": name},
            "spec": {"attacher": driver, "nodeName": node, "source": {"persistentVolumeName": pv_name}}});
        if let Err(error) = store.create(&kinds.attachments, None, attachment) {
            tracing::debug!(%error, "attachment deferred");
        }
    }
    for attachment in &existing {
        let key = (
            text(attachment, "/spec/source/persistentVolumeName").to_owned(),
            text(attachment, "/spec/nodeName").to_owned(),
        );
        if !desired.contains(&key) && !terminating(attachment) {
            let options = DeleteOptions {
                precondition_uid: Some(text(attachment, "/metadata/uid").to_owned()),
                ..DeleteOptions::default()
            };
            let _ = store.delete(
                &kinds.attachments,
                None,
                text(attachment, "/metadata/name"),
                &options,
            );
        } else {
            attach_or_detach(store, &kinds, attachment, &volumes);
        }
    }
    release_volumes(store, &kinds, &volumes, &all(store, &kinds.attachments));
}

/// `(pv, node)` for every claim of every scheduled pod that is not terminating.
fn desired_attachments(
    store: &Store,
    kinds: &Kinds,
    volumes: &[Value],
) -> BTreeSet<(String, String)> {
    let mut desired = BTreeSet::new();
    let claims = all(store, &kinds.claims);
    for pod in all(store, &kinds.pods) {
        let node = text(&pod, "/spec/nodeName");
        if node.is_empty() || terminating(&pod) {
            continue;
        }
        let namespace = text(&pod, "/metadata/namespace");
        for volume in pod
            .pointer("/spec/volumes")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
        {
            let Some(claim_name) = volume
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            else {
                continue;
            };
            let claim = claims.iter().find(|c| {
                text(c, "/metadata/namespace") == namespace
                    && text(c, "/metadata/name") == claim_name
            });
            let pv_name = claim
                .map(|c| text(c, "/spec/volumeName"))
                .unwrap_or_default();
            if volumes.iter().any(|v| text(v, "/metadata/name") == pv_name) {
                desired.insert((pv_name.to_owned(), node.to_owned()));
            }
        }
    }
    desired
}

fn set_status(store: &Store, kinds: &Kinds, attachment: &Value, status: Value) {
    let name = text(attachment, "/metadata/name");
    if let Err(error) = store.patch(
        &kinds.attachments,
        None,
        name,
        PatchKind::Merge,
        &json!({"status": status}),
        Subresource::Status,
    ) {
        tracing::debug!(%error, "attachment status deferred");
    }
}

fn attach_or_detach(store: &Store, kinds: &Kinds, attachment: &Value, volumes: &[Value]) {
    let driver = text(attachment, "/spec/attacher");
    // Only a registered driver has an external-attacher running.
    let registered = store
        .resource("storage.k8s.io", "csidrivers")
        .is_some_and(|rt| store.get(&rt, None, driver).is_ok());
    if !registered {
        return;
    }
    let finalizer = attacher_finalizer(driver);
    let node = text(attachment, "/spec/nodeName");
    let pv_name = text(attachment, "/spec/source/persistentVolumeName");
    let pv = volumes
        .iter()
        .find(|v| text(v, "/metadata/name") == pv_name);
    let list = finalizers(attachment);
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    if terminating(attachment) {
        let Some(pv) = pv else {
            // Without the PV the attacher cannot compute the handle and secrets: stuck.
            let message = format!("persistentvolume {pv_name:?} not found: cannot detach");
            if text(attachment, "/status/detachError/message") != message {
                set_status(
                    store,
                    kinds,
                    attachment,
                    json!({"detachError": {"message": message, "time": now}}),
                );
            }
            return;
        };
        if let Some(disk) = store.cloud().find_for_pv(pv) {
            store.cloud().detach(&disk.id, node);
        }
        set_finalizers(
            store,
            &kinds.attachments,
            attachment,
            &without(&list, &finalizer),
        );
        return;
    }
    if !list.contains(&finalizer) {
        let mut added = list.clone();
        added.push(finalizer.clone());
        set_finalizers(store, &kinds.attachments, attachment, &added);
        return;
    }
    let Some(pv) = pv else { return };
    let pv_finalizers = finalizers(pv);
    if !pv_finalizers.contains(&finalizer) && !terminating(pv) {
        let mut added = pv_finalizers.clone();
        added.push(finalizer.clone());
        set_finalizers(store, &kinds.pvs, pv, &added);
    }
    if attachment
        .pointer("/status/attached")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return;
    }
    let result = store
        .cloud()
        .find_for_pv(pv)
        .ok_or_else(|| format!("disk of persistentvolume {pv_name:?} not found"))
        .and_then(|disk| {
            store
                .cloud()
                .attach(&disk.id, node)
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => set_status(
            store,
            kinds,
            attachment,
            json!({"attached": true, "attachError": null}),
        ),
        Err(message) if text(attachment, "/status/attachError/message") != message => {
            set_status(
                store,
                kinds,
                attachment,
                json!({"attached": false, "attachError": {"message": message, "time": now}}),
            );
        }
        Err(_) => {}
    }
}

/// A PV loses the attacher finalizer once no attachment names it.
fn release_volumes(store: &Store, kinds: &Kinds, volumes: &[Value], attachments: &[Value]) {
    let referenced: HashSet<&str> = attachments
        .iter()
        .map(|a| text(a, "/spec/source/persistentVolumeName"))
        .collect();
    for pv in volumes {
        if referenced.contains(text(pv, "/metadata/name")) {
            continue;
        }
        let list = finalizers(pv);
        // Every PV no attachment names loses its attacher finalizer in this pass.
        if let Some(finalizer) = list.iter().find(|f| f.starts_with("external-attacher/")) {
            set_finalizers(store, &kinds.pvs, pv, &without(&list, finalizer));
        }
    }
}

/// The attachment of `pv` on `node`, if any.
pub fn attachment_for(store: &Store, pv: &Value, node: &str) -> Option<Value> {
    let (driver, handle) = pv_identity(pv)?;
    let rt = store.resource("storage.k8s.io", "volumeattachments")?;
    store
        .get(&rt, None, &attachment_name(&driver, &handle, node))
        .ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finalizer_names_sanitize_the_driver() {
        assert_eq!(
            attacher_finalizer("ebs.csi.aws.com"),
            "external-attacher/ebs-csi-aws-com"
        );
    }

    #[test]
    fn attachment_names_are_stable_and_distinct_per_node() {
        let a = attachment_name("ebs.csi.aws.com", "vol-1", "n1");
        assert_eq!(a, attachment_name("ebs.csi.aws.com", "vol-1", "n1"));
        assert_ne!(a, attachment_name("ebs.csi.aws.com", "vol-1", "n2"));
        assert_eq!(a.len(), 4 + 64);
    }
}
