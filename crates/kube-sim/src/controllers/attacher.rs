//! The attach/detach controller and the CSI external-attacher: a VolumeAttachment for
//! every volume a scheduled pod needs on its node, attach and detach through the fake
//! cloud, and the `external-attacher/<driver>` finalizers on attachments and volumes.
//! Detaching needs the PV object: without it the attachment stays stuck.

use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::{Digest, Sha256};

use k8s_openapi::api::core::v1::Volume;

use super::{
    Cache, Informer, all, finalizers, record_event, set_finalizers, terminating, text, without,
};
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

/// What an attachment attaches: a PV by name, or a pod's inline in-tree volume,
/// translated to the CSI PersistentVolume spec the attachment carries.
#[derive(Clone)]
enum Source {
    Volume(Arc<Value>),
    Inline { spec: Value, volume_name: String },
}

impl Source {
    /// A PV-shaped value naming the disk, for the fake cloud's look-ups.
    fn disk_spec(&self) -> Value {
        match self {
            Self::Volume(pv) => Value::clone(pv),
            Self::Inline { spec, .. } => json!({"spec": spec}),
        }
    }

    /// The name events use for the volume: the PV's, or the pod's volume's.
    fn volume_name(&self) -> &str {
        match self {
            Self::Volume(pv) => text(pv, "/metadata/name"),
            Self::Inline { volume_name, .. } => volume_name,
        }
    }

    fn attachment_source(&self) -> Value {
        match self {
            Self::Volume(pv) => json!({"persistentVolumeName": text(pv, "/metadata/name")}),
            Self::Inline { spec, .. } => json!({"inlineVolumeSpec": spec}),
        }
    }
}

/// One attachment some scheduled pod needs.
struct Desired {
    driver: String,
    node: String,
    source: Source,
    /// The pods (namespace, name) that need it, for their events.
    pods: Vec<Arc<Value>>,
}

/// Whether a driver needs attaching: `attachRequired` of its CSIDriver, true when the
/// CSIDriver object is absent.
pub(crate) fn attach_required(cache: &Cache, driver: &str) -> bool {
    cache
        .lookup("storage.k8s.io", "csidrivers", "", driver)
        .and_then(|d| d.pointer("/spec/attachRequired").and_then(Value::as_bool))
        .unwrap_or(true)
}

/// One pass: desired attachments, then the external-attacher's work on each of them.
pub fn reconcile(store: &Store) {
    run(store, &mut Informer::new(store, Duration::ZERO));
}

/// The same pass over an informer's cache.
pub(crate) fn run(store: &Store, informer: &mut Informer) {
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
    let desired = desired_attachments(informer.cache(), &kinds);
    let existing = all(informer.cache(), &kinds.attachments);
    for (name, want) in &desired {
        if informer
            .cache()
            .get(&kinds.attachments, None, name)
            .is_some()
        {
            continue;
        }
        let attachment = json!({"apiVersion": "storage.k8s.io/v1", "kind": "VolumeAttachment",
            "metadata": {"name": name},
            "spec": {"attacher": want.driver, "nodeName": want.node, "source": want.source.attachment_source()}});
        if let Err(error) = store.create(&kinds.attachments, None, attachment) {
            tracing::debug!(%error, "attachment deferred");
        }
    }
    for attachment in &existing {
        let name = text(attachment, "/metadata/name");
        let wanted = desired.get(name);
        if wanted.is_none() && !terminating(attachment) {
            let options = DeleteOptions {
                precondition_uid: Some(text(attachment, "/metadata/uid").to_owned()),
                ..DeleteOptions::default()
            };
            let _ = store.delete(&kinds.attachments, None, name, &options);
            continue;
        }
        // An inline attachment carries its own spec; a PV one needs the PV object.
        let source = match attachment.pointer("/spec/source/inlineVolumeSpec") {
            Some(spec) => Some(Source::Inline {
                spec: spec.clone(),
                volume_name: wanted
                    .map(|w| w.source.volume_name().to_owned())
                    .unwrap_or_default(),
            }),
            None => informer
                .cache()
                .get(
                    &kinds.pvs,
                    None,
                    text(attachment, "/spec/source/persistentVolumeName"),
                )
                .map(Source::Volume),
        };
        let failure =
            attach_or_detach(store, informer.cache(), &kinds, attachment, source.as_ref());
        if let (Some(message), Some(want)) = (failure, wanted) {
            report_attach_failure(store, want, &message);
        }
    }
    informer.catch_up(store);
    release_volumes(
        store,
        &kinds,
        &all(informer.cache(), &kinds.pvs),
        &all(informer.cache(), &kinds.attachments),
    );
}

/// `FailedAttachVolume` on every pod waiting for the attachment, with the attach/detach
/// controller's Multi-Attach text when the disk is held by another node.
fn report_attach_failure(store: &Store, want: &Desired, message: &str) {
    let text_for_pods = if message.starts_with("Multi-Attach error") {
        format!(
            "Multi-Attach error for volume {:?} Volume is already exclusively attached to one node and can't be attached to another",
            want.source.volume_name()
        )
    } else {
        format!(
            "AttachVolume.Attach failed for volume {:?} : {message}",
            want.source.volume_name()
        )
    };
    for pod in &want.pods {
        record_event(
            store,
            pod,
            "Warning",
            "FailedAttachVolume",
            &text_for_pods,
            "attachdetach-controller",
        );
    }
}

/// Every attachment (by name) the scheduled, non-terminating pods need: one per claim
/// bound to a PV, and one per inline in-tree volume, for drivers that need attaching.
fn desired_attachments(cache: &Cache, kinds: &Kinds) -> BTreeMap<String, Desired> {
    let translator = csi_migrate_translate::Translator::new();
    let mut desired: BTreeMap<String, Desired> = BTreeMap::new();
    for pod in all(cache, &kinds.pods) {
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
            let source = match volume
                .pointer("/persistentVolumeClaim/claimName")
                .and_then(Value::as_str)
            {
                Some(claim_name) => {
                    let pv_name = cache
                        .get(&kinds.claims, Some(namespace), claim_name)
                        .map(|c| text(&c, "/spec/volumeName").to_owned())
                        .unwrap_or_default();
                    match cache.get(&kinds.pvs, None, &pv_name) {
                        Some(pv) if !pv_name.is_empty() => Source::Volume(pv),
                        _ => continue,
                    }
                }
                None => {
                    let Some(spec) = inline_csi_spec(&translator, volume, namespace) else {
                        continue;
                    };
                    Source::Inline {
                        spec,
                        volume_name: text(volume, "/name").to_owned(),
                    }
                }
            };
            let Some((driver, handle)) = pv_identity(&source.disk_spec()) else {
                continue;
            };
            if !attach_required(cache, &driver) {
                continue;
            }
            let name = attachment_name(&driver, &handle, node);
            desired
                .entry(name)
                .or_insert_with(|| Desired {
                    driver,
                    node: node.to_owned(),
                    source,
                    pods: Vec::new(),
                })
                .pods
                .push(pod.clone());
        }
    }
    desired
}

/// The CSI PersistentVolume spec an inline in-tree volume translates to, as the
/// attach/detach controller puts it in `source.inlineVolumeSpec`.
pub(crate) fn inline_csi_spec(
    translator: &csi_migrate_translate::Translator,
    volume: &Value,
    namespace: &str,
) -> Option<Value> {
    // Only in-tree sources: claims, configMaps, emptyDirs and the like attach nothing
    // (checked by key first: this runs for every volume of every pod on every pass).
    const IN_TREE_SOURCES: [&str; 7] = [
        "awsElasticBlockStore",
        "gcePersistentDisk",
        "azureDisk",
        "azureFile",
        "cinder",
        "vsphereVolume",
        "portworxVolume",
    ];
    if !IN_TREE_SOURCES.iter().any(|key| volume.get(key).is_some()) {
        return None;
    }
    let typed: Volume = serde_json::from_value(volume.clone()).ok()?;
    if !translator.is_inline_migratable(&typed) {
        return None;
    }
    let pv = translator.inline_to_csi(&typed, namespace).ok()?;
    serde_json::to_value(pv.spec?).ok()
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

/// The external-attacher's work on one attachment; returns the attach error, if any.
fn attach_or_detach(
    store: &Store,
    cache: &Cache,
    kinds: &Kinds,
    attachment: &Value,
    source: Option<&Source>,
) -> Option<String> {
    let driver = text(attachment, "/spec/attacher");
    // Only a registered driver has an external-attacher running.
    cache.lookup("storage.k8s.io", "csidrivers", "", driver)?;
    let finalizer = attacher_finalizer(driver);
    let node = text(attachment, "/spec/nodeName");
    let pv_name = text(attachment, "/spec/source/persistentVolumeName");
    let list = finalizers(attachment);
    let now = jiff::Timestamp::now()
        .strftime("%Y-%m-%dT%H:%M:%SZ")
        .to_string();
    if terminating(attachment) {
        let Some(source) = source else {
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
            return None;
        };
        if let Some(disk) = store.cloud().find_for_pv(&source.disk_spec()) {
            store.cloud().detach(&disk.id, node);
        }
        set_finalizers(
            store,
            &kinds.attachments,
            attachment,
            &without(&list, &finalizer),
        );
        return None;
    }
    if !list.contains(&finalizer) {
        let mut added = list.clone();
        added.push(finalizer.clone());
        set_finalizers(store, &kinds.attachments, attachment, &added);
        return None;
    }
    let source = source?;
    if let Source::Volume(pv) = source {
        let pv_finalizers = finalizers(pv);
        if !pv_finalizers.contains(&finalizer) && !terminating(pv) {
            let mut added = pv_finalizers.clone();
            added.push(finalizer.clone());
            set_finalizers(store, &kinds.pvs, pv, &added);
        }
    }
    if attachment
        .pointer("/status/attached")
        .and_then(Value::as_bool)
        == Some(true)
    {
        return None;
    }
    let result = store
        .cloud()
        .find_for_pv(&source.disk_spec())
        .ok_or_else(|| format!("disk of volume {:?} not found", source.volume_name()))
        .and_then(|disk| {
            store
                .cloud()
                .attach(&disk.id, node)
                .map_err(|e| e.to_string())
        });
    match result {
        Ok(()) => {
            set_status(
                store,
                kinds,
                attachment,
                json!({"attached": true, "attachError": null}),
            );
            None
        }
        Err(message) => {
            if text(attachment, "/status/attachError/message") != message {
                set_status(
                    store,
                    kinds,
                    attachment,
                    json!({"attached": false, "attachError": {"message": message, "time": now}}),
                );
            }
            Some(message)
        }
    }
}

/// A PV loses the attacher finalizer once no attachment names it.
fn release_volumes(
    store: &Store,
    kinds: &Kinds,
    volumes: &[Arc<Value>],
    attachments: &[Arc<Value>],
) {
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

/// The cached attachment of the disk a PV-shaped value names on `node`, if any.
pub(crate) fn cached_attachment_for(cache: &Cache, pv: &Value, node: &str) -> Option<Arc<Value>> {
    let (driver, handle) = pv_identity(pv)?;
    cache.lookup(
        "storage.k8s.io",
        "volumeattachments",
        "",
        &attachment_name(&driver, &handle, node),
    )
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
