//! The PersistentVolume controller and the provisioners: binding claims to volumes
//! (paths A–E of `syncClaim`), phases, dynamic provisioning of fake disks for in-tree
//! and CSI classes, and the reclaim policy (Retain keeps the disk, Delete destroys it).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use sha2::Digest;

use super::{
    Cache, Informer, all, finalizers, record_event, set_finalizers, terminating, text, without,
};
use crate::admission::parse_quantity;
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::store::{DeleteOptions, Store, Subresource};

/// PVC annotation: binding finished.
pub const BIND_COMPLETED: &str = "pv.kubernetes.io/bind-completed";
/// Annotation: the controller (not the user) filled the pointer.
pub const BOUND_BY_CONTROLLER: &str = "pv.kubernetes.io/bound-by-controller";
/// PV annotation: who provisioned the volume.
pub const PROVISIONED_BY: &str = "pv.kubernetes.io/provisioned-by";
/// Annotation: the CSI driver a migrated in-tree object is served by.
pub const MIGRATED_TO: &str = "pv.kubernetes.io/migrated-to";
/// PVC annotation: who is to provision the claim.
pub const STORAGE_PROVISIONER: &str = "volume.kubernetes.io/storage-provisioner";
/// Deprecated twin of [`STORAGE_PROVISIONER`].
pub const BETA_STORAGE_PROVISIONER: &str = "volume.beta.kubernetes.io/storage-provisioner";
/// PVC annotation: the node the scheduler picked (WaitForFirstConsumer).
pub const SELECTED_NODE: &str = "volume.kubernetes.io/selected-node";
/// Finalizer the in-tree PV controller keeps on the Delete volumes its plugins provisioned.
pub const PV_CONTROLLER_FINALIZER: &str = "kubernetes.io/pv-controller";
/// Who records the binder's and provisioners' events.
const COMPONENT: &str = "persistentvolume-controller";
/// Finalizer the external-provisioner keeps on Bound Delete volumes it owns.
pub const PROVISIONER_FINALIZER: &str = "external-provisioner.volume.kubernetes.io/finalizer";

/// In-tree plugins whose CSI migration is on in the simulated cluster (all but RBD,
/// whose translation Kubernetes 1.31 removed).
fn migrated_driver(provisioner: &str) -> Option<&'static str> {
    if provisioner == "kubernetes.io/rbd" {
        return None;
    }
    csi_migrate_translate::Translator::new()
        .csi_driver_for_in_tree(provisioner)
        .ok()
}

fn annotation<'a>(object: &'a Value, key: &str) -> Option<&'a str> {
    object
        .pointer("/metadata/annotations")
        .and_then(|a| a.get(key))
        .and_then(Value::as_str)
}

fn claim_class(claim: &Value) -> String {
    claim
        .pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .or_else(|| annotation(claim, "volume.beta.kubernetes.io/storage-class"))
        .unwrap_or_default()
        .to_owned()
}

fn volume_class(pv: &Value) -> String {
    pv.pointer("/spec/storageClassName")
        .and_then(Value::as_str)
        .or_else(|| annotation(pv, "volume.beta.kubernetes.io/storage-class"))
        .unwrap_or_default()
        .to_owned()
}

fn volume_mode(object: &Value) -> &str {
    object
        .pointer("/spec/volumeMode")
        .and_then(Value::as_str)
        .unwrap_or("Filesystem")
}

fn access_modes(object: &Value) -> Vec<&str> {
    object
        .pointer("/spec/accessModes")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default()
}

fn requested(claim: &Value) -> f64 {
    claim
        .pointer("/spec/resources/requests/storage")
        .and_then(parse_quantity)
        .unwrap_or(0.0)
}

fn capacity(pv: &Value) -> f64 {
    pv.pointer("/spec/capacity/storage")
        .and_then(parse_quantity)
        .unwrap_or(0.0)
}

/// Whether the PV's claimRef names this claim (uid must match only when set).
fn claim_ref_names(pv: &Value, claim: &Value) -> bool {
    let Some(reference) = pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) else {
        return false;
    };
    let uid = text(reference, "/uid");
    text(reference, "/namespace") == text(claim, "/metadata/namespace")
        && text(reference, "/name") == text(claim, "/metadata/name")
        && (uid.is_empty() || uid == text(claim, "/metadata/uid"))
}

/// Why a volume cannot satisfy a claim (path A), with the controller's texts.
fn mismatch(pv: &Value, claim: &Value) -> Option<&'static str> {
    if terminating(pv) {
        return Some("the volume is marked for deletion");
    }
    if capacity(pv) < requested(claim) {
        return Some("requested PV is too small");
    }
    if volume_class(pv) != claim_class(claim) {
        return Some("storageClassName does not match");
    }
    if volume_mode(pv) != volume_mode(claim) {
        return Some("incompatible volumeMode");
    }
    let offered = access_modes(pv);
    if !access_modes(claim).iter().all(|m| offered.contains(m)) {
        return Some("incompatible accessMode");
    }
    None
}

fn patch(store: &Store, rt: &ResourceType, object: &Value, body: Value, sub: Subresource) -> bool {
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str);
    match store.patch(
        rt,
        namespace,
        text(object, "/metadata/name"),
        PatchKind::Merge,
        &body,
        sub,
    ) {
        Ok(_) => true,
        Err(error) => {
            tracing::debug!(%error, "volume binding deferred");
            false
        }
    }
}

struct Kinds {
    pvs: ResourceType,
    claims: ResourceType,
    classes: ResourceType,
}

/// One pass over every claim, then every volume.
pub fn reconcile(store: &Store) {
    run(store, &mut Informer::new(store, Duration::ZERO));
}

/// The same pass over an informer's cache.
pub(crate) fn run(store: &Store, informer: &mut Informer) {
    let (Some(pvs), Some(claims), Some(classes)) = (
        store.resource("", "persistentvolumes"),
        store.resource("", "persistentvolumeclaims"),
        store.resource("storage.k8s.io", "storageclasses"),
    ) else {
        return;
    };
    let kinds = Kinds {
        pvs,
        claims,
        classes,
    };
    let volumes = all(informer.cache(), &kinds.pvs);
    let classes = all(informer.cache(), &kinds.classes);
    for claim in all(informer.cache(), &kinds.claims) {
        sync_claim(store, &kinds, informer.cache(), &claim, &volumes, &classes);
    }
    // Volumes see this pass's claim writes, as far as the cache's lag allows.
    informer.catch_up(store);
    for volume in all(informer.cache(), &kinds.pvs) {
        sync_volume(store, &kinds, informer.cache(), &volume);
    }
}

/// The PV controller's `migrated-to` rule: an object whose provisioner (PV:
/// `provisioned-by`; claim: `storage-provisioner`, GA then beta) is an in-tree plugin
/// under migration gets the CSI driver; statically created PVs never do.
fn ensure_migrated_to(
    store: &Store,
    rt: &ResourceType,
    object: &Value,
    provisioner: Option<&str>,
) -> bool {
    let Some(driver) = provisioner.and_then(migrated_driver) else {
        return false;
    };
    if annotation(object, MIGRATED_TO) == Some(driver) {
        return false;
    }
    let body = json!({"metadata": {"annotations": {MIGRATED_TO: driver}}});
    patch(store, rt, object, body, Subresource::Main)
}

fn sync_claim(
    store: &Store,
    kinds: &Kinds,
    cache: &Cache,
    claim: &Value,
    volumes: &[Arc<Value>],
    classes: &[Arc<Value>],
) {
    let provisioner = annotation(claim, STORAGE_PROVISIONER)
        .or_else(|| annotation(claim, BETA_STORAGE_PROVISIONER));
    if ensure_migrated_to(store, &kinds.claims, claim, provisioner) {
        return;
    }
    let volume_name = text(claim, "/spec/volumeName");
    let by_name = |name: &str| cache.get(&kinds.pvs, None, name);
    if annotation(claim, BIND_COMPLETED).is_some() {
        // syncBoundClaim
        let lost = |reason: &str, why: &str| {
            if text(claim, "/status/phase") != "Lost" {
                tracing::warn!(claim = text(claim, "/metadata/name"), "{why}");
                // `updateClaimStatusWithEvent`: the event goes with the phase change.
                if patch(
                    store,
                    &kinds.claims,
                    claim,
                    json!({"status": {"phase": "Lost"}}),
                    Subresource::Status,
                ) {
                    record_event(store, claim, "Warning", reason, why, COMPONENT);
                }
            }
        };
        match by_name(volume_name) {
            _ if volume_name.is_empty() => lost(
                "ClaimLost",
                "Bound claim has lost reference to PersistentVolume. Data on the volume is lost!",
            ),
            None => lost(
                "ClaimLost",
                "Bound claim has lost its PersistentVolume. Data on the volume is lost!",
            ),
            Some(pv) if pv.pointer("/spec/claimRef").is_none_or(Value::is_null) => {
                bind(store, kinds, &pv, claim)
            }
            Some(pv) if text(&pv, "/spec/claimRef/uid") == text(claim, "/metadata/uid") => {
                bind(store, kinds, &pv, claim)
            }
            Some(_) => lost(
                "ClaimMisbound",
                "Two claims are bound to the same volume, this one is bound incorrectly",
            ),
        }
        return;
    }
    if !volume_name.is_empty() {
        match by_name(volume_name) {
            None => {} // E: wait; a claim naming a volume is never provisioned
            Some(pv) if pv.pointer("/spec/claimRef").is_none_or(Value::is_null) => {
                match mismatch(&pv, claim) {
                    None => bind(store, kinds, &pv, claim),
                    Some(reason) => record_event(
                        store,
                        claim,
                        "Warning",
                        "VolumeMismatch",
                        &format!("Cannot bind to requested volume {volume_name:?}: {reason}"),
                        COMPONENT,
                    ),
                }
            }
            Some(pv) if claim_ref_names(&pv, claim) => bind(store, kinds, &pv, claim), // B: no checks
            Some(_) => record_event(
                store,
                claim,
                "Warning",
                "FailedBinding",
                &format!("volume {volume_name:?} already bound to a different claim."),
                COMPONENT,
            ), // D
        }
        return;
    }
    // C: a volume pre-bound to this claim, else the smallest matching Available one.
    let prebound = volumes.iter().find(|pv| {
        claim_ref_names(pv, claim)
            && capacity(pv) >= requested(claim)
            && volume_mode(pv) == volume_mode(claim)
            && !terminating(pv)
    });
    let available = || {
        volumes
            .iter()
            .filter(|pv| {
                pv.pointer("/spec/claimRef").is_none_or(Value::is_null)
                    && mismatch(pv, claim).is_none()
            })
            .min_by(|a, b| capacity(a).total_cmp(&capacity(b)))
    };
    if let Some(pv) = prebound.or_else(available) {
        bind(store, kinds, pv, claim);
        return;
    }
    provision(store, kinds, cache, claim, classes);
}

/// Points the volume at the claim (PV first, as the controller does), then the claim at the volume.
fn bind(store: &Store, kinds: &Kinds, pv: &Value, claim: &Value) {
    let claim_uid = text(claim, "/metadata/uid");
    if text(pv, "/spec/claimRef/uid") != claim_uid {
        let mut body = json!({"metadata": {"resourceVersion": text(pv, "/metadata/resourceVersion")},
            "spec": {"claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                "namespace": text(claim, "/metadata/namespace"), "name": text(claim, "/metadata/name"),
                "uid": claim_uid, "resourceVersion": text(claim, "/metadata/resourceVersion")}}});
        if pv.pointer("/spec/claimRef").is_none_or(Value::is_null) {
            body["metadata"]["annotations"] = json!({BOUND_BY_CONTROLLER: "yes"});
        }
        if !patch(store, &kinds.pvs, pv, body, Subresource::Main) {
            return;
        }
    }
    if text(pv, "/status/phase") != "Bound"
        && !patch(
            store,
            &kinds.pvs,
            pv,
            json!({"status": {"phase": "Bound"}}),
            Subresource::Status,
        )
    {
        return;
    }
    let volume_name = text(pv, "/metadata/name");
    if annotation(claim, BIND_COMPLETED).is_none() || text(claim, "/spec/volumeName") != volume_name
    {
        let mut annotations = json!({BIND_COMPLETED: "yes"});
        if text(claim, "/spec/volumeName").is_empty() {
            annotations[BOUND_BY_CONTROLLER] = json!("yes");
        }
        let body = json!({"metadata": {"annotations": annotations, "resourceVersion": text(claim, "/metadata/resourceVersion")},
                          "spec": {"volumeName": volume_name}});
        if !patch(store, &kinds.claims, claim, body, Subresource::Main) {
            return;
        }
    }
    if text(claim, "/status/phase") != "Bound" {
        let status = json!({"status": {"phase": "Bound", "accessModes": pv.pointer("/spec/accessModes"),
                                       "capacity": pv.pointer("/spec/capacity")}});
        patch(store, &kinds.claims, claim, status, Subresource::Status);
    }
}

/// Dynamic provisioning for a claim of a class with a provisioner: a fresh disk and a
/// PV pre-bound to the claim. WaitForFirstConsumer classes wait for a selected node.
fn provision(store: &Store, kinds: &Kinds, cache: &Cache, claim: &Value, classes: &[Arc<Value>]) {
    let class_name = claim_class(claim);
    if class_name.is_empty() || terminating(claim) {
        return;
    }
    let Some(class) = classes
        .iter()
        .find(|c| text(c, "/metadata/name") == class_name)
    else {
        return;
    };
    let provisioner = text(class, "/provisioner");
    let migrated = migrated_driver(provisioner);
    let serving = migrated.unwrap_or(provisioner);
    if annotation(claim, STORAGE_PROVISIONER) != Some(serving) {
        let mut annotations =
            json!({STORAGE_PROVISIONER: serving, BETA_STORAGE_PROVISIONER: serving});
        if let Some(driver) = migrated {
            annotations[MIGRATED_TO] = json!(driver);
        }
        patch(
            store,
            &kinds.claims,
            claim,
            json!({"metadata": {"annotations": annotations}}),
            Subresource::Main,
        );
        return;
    }
    // A CSI (or migrated in-tree) class is served by the driver's external-provisioner:
    // with no CSIDriver registered, nobody provisions and the claim stays Pending.
    let is_in_tree =
        csi_migrate_translate::Translator::new().is_migratable_in_tree_plugin(provisioner);
    if (migrated.is_some() || !is_in_tree) && !driver_registered(cache, serving) {
        return;
    }
    let selected_node = annotation(claim, SELECTED_NODE);
    if text(class, "/volumeBindingMode") == "WaitForFirstConsumer" && selected_node.is_none() {
        record_event(
            store,
            claim,
            "Normal",
            "WaitForFirstConsumer",
            "waiting for first consumer to be created before binding",
            COMPONENT,
        );
        return;
    }
    let pv_name = format!("pvc-{}", text(claim, "/metadata/uid"));
    // Uncached, as the provisioner's own check: a PV made a moment ago must not be doubled.
    if store.get(&kinds.pvs, None, &pv_name).is_ok() {
        return;
    }
    let zone = class
        .pointer("/allowedTopologies/0/matchLabelExpressions/0/values/0")
        .and_then(Value::as_str)
        .or_else(|| class.pointer("/parameters/zone").and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| selected_node.and_then(|node| node_zone(cache, node)));
    let size = requested(claim).max(0.0) as u64;
    let disk = store.cloud().create_disk(
        provisioner,
        text(claim, "/metadata/uid"),
        size,
        zone.as_deref(),
    );
    let fs_type = class
        .pointer("/parameters/csi.storage.k8s.io~1fstype")
        .or_else(|| class.pointer("/parameters/fsType"))
        .and_then(Value::as_str)
        .unwrap_or("ext4");
    let (source, topology_key) = if disk.in_tree_source.is_null() {
        let handle = disk.handles.first().cloned().unwrap_or_default();
        (
            json!({"csi": {"driver": provisioner, "volumeHandle": handle, "fsType": fs_type}}),
            format!("topology.{provisioner}/zone"),
        )
    } else {
        let mut source = disk.in_tree_source.clone();
        if let Some(map) = source
            .as_object_mut()
            .and_then(|m| m.values_mut().next())
            .and_then(Value::as_object_mut)
            && !matches!(
                provisioner,
                "kubernetes.io/azure-file" | "kubernetes.io/portworx-volume"
            )
        {
            map.insert("fsType".to_owned(), json!(fs_type));
        }
        (source, "topology.kubernetes.io/zone".to_owned())
    };
    let mut annotations = json!({PROVISIONED_BY: provisioner});
    if let Some(driver) = migrated {
        annotations[MIGRATED_TO] = json!(driver);
    }
    let reclaim_policy = class
        .get("reclaimPolicy")
        .and_then(Value::as_str)
        .unwrap_or("Delete");
    let mut pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": pv_name, "annotations": annotations},
        "spec": {
            "capacity": {"storage": claim.pointer("/spec/resources/requests/storage")},
            "accessModes": claim.pointer("/spec/accessModes"),
            "volumeMode": volume_mode(claim),
            "storageClassName": class_name,
            "persistentVolumeReclaimPolicy": reclaim_policy,
            "claimRef": {"kind": "PersistentVolumeClaim", "apiVersion": "v1",
                         "namespace": text(claim, "/metadata/namespace"), "name": text(claim, "/metadata/name"),
                         "uid": text(claim, "/metadata/uid")},
        }
    });
    // The in-tree provisioner (no migration) protects its Delete volumes itself.
    if is_in_tree && migrated.is_none() && reclaim_policy == "Delete" {
        pv["metadata"]["finalizers"] = json!([PV_CONTROLLER_FINALIZER]);
    }
    if let (Some(spec), Some(source)) = (pv["spec"].as_object_mut(), source.as_object()) {
        spec.extend(source.clone());
    }
    if let Some(zone) = &zone
        && provisioner != "kubernetes.io/azure-file"
    {
        pv["spec"]["nodeAffinity"] = json!({"required": {"nodeSelectorTerms": [
            {"matchExpressions": [{"key": topology_key, "operator": "In", "values": [zone]}]}]}});
        pv["metadata"]["labels"] = json!({"topology.kubernetes.io/zone": zone});
    }
    if let Err(error) = store.create(&kinds.pvs, None, pv) {
        tracing::warn!(%error, "provisioning failed");
        let _ = store.cloud().delete(&disk.id);
        record_event(
            store,
            claim,
            "Warning",
            "ProvisioningFailed",
            &format!(
                "Failed to provision volume with StorageClass {class_name:?}: {}",
                error.message
            ),
            COMPONENT,
        );
        return;
    }
    record_event(
        store,
        claim,
        "Normal",
        "ProvisioningSucceeded",
        &format!("Successfully provisioned volume {pv_name} using {provisioner}"),
        COMPONENT,
    );
    if provisioner == "kubernetes.io/vsphere-volume" && migrated.is_some() {
        register_first_class_disk(store, &disk);
    }
}

/// What the vSphere CSI driver does for a migrated in-tree volume: the VMDK becomes a
/// first-class disk (the disk answers to its FCD id too) and a cluster-scoped
/// `CnsVSphereVolumeMigration` (name = FCD id) records path → id, when that CRD exists.
fn register_first_class_disk(store: &Store, disk: &crate::cloud::Disk) {
    let digest = sha2::Sha256::digest(disk.id.as_bytes());
    let hex: String = digest.iter().take(16).map(|b| format!("{b:02x}")).collect();
    let fcd = format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..32]
    );
    let _ = store.cloud().add_handle(&disk.id, &fcd);
    let path = disk
        .in_tree_source
        .pointer("/vsphereVolume/volumePath")
        .and_then(Value::as_str)
        .unwrap_or_default();
    if let Some(rt) = store.resource("cns.vmware.com", "cnsvspherevolumemigrations") {
        let record = json!({"apiVersion": "cns.vmware.com/v1alpha1", "kind": "CnsVSphereVolumeMigration",
                            "metadata": {"name": fcd}, "spec": {"volumepath": path, "volumeid": fcd}});
        if let Err(error) = store.create(&rt, None, record) {
            tracing::debug!(%error, "volume migration record not written");
        }
    }
}

fn driver_registered(cache: &Cache, driver: &str) -> bool {
    cache
        .lookup("storage.k8s.io", "csidrivers", "", driver)
        .is_some()
}

fn node_zone(cache: &Cache, node: &str) -> Option<String> {
    let node = cache.lookup("", "nodes", "", node)?;
    node.pointer("/metadata/labels/topology.kubernetes.io~1zone")
        .and_then(Value::as_str)
        .map(str::to_owned)
}

fn sync_volume(store: &Store, kinds: &Kinds, cache: &Cache, pv: &Value) {
    if ensure_migrated_to(store, &kinds.pvs, pv, annotation(pv, PROVISIONED_BY)) {
        return;
    }
    let phase = text(pv, "/status/phase");
    let set_phase = |phase: &str| {
        patch(
            store,
            &kinds.pvs,
            pv,
            json!({"status": {"phase": phase}}),
            Subresource::Status,
        );
    };
    let policy = text(pv, "/spec/persistentVolumeReclaimPolicy");
    let owned = pv.pointer("/spec/csi").is_some() || annotation(pv, MIGRATED_TO).is_some();
    let list = finalizers(pv);
    let has_finalizer = list.iter().any(|f| f == PROVISIONER_FINALIZER);
    // `kubernetes.io/pv-controller`: the in-tree deleter's own protection, on dynamically
    // provisioned Delete volumes of a plugin that is not migrated.
    let in_tree_owned = annotation(pv, PROVISIONED_BY).is_some_and(|p| {
        migrated_driver(p).is_none()
            && csi_migrate_translate::Translator::new().is_migratable_in_tree_plugin(p)
    }) && annotation(pv, MIGRATED_TO).is_none();
    let has_controller_finalizer = list.iter().any(|f| f == PV_CONTROLLER_FINALIZER);
    if has_controller_finalizer && (policy != "Delete" || !in_tree_owned) {
        set_finalizers(
            store,
            &kinds.pvs,
            pv,
            &without(&list, PV_CONTROLLER_FINALIZER),
        );
        return;
    }
    if !has_controller_finalizer && in_tree_owned && policy == "Delete" && !terminating(pv) {
        let mut added = list.clone();
        added.push(PV_CONTROLLER_FINALIZER.to_owned());
        set_finalizers(store, &kinds.pvs, pv, &added);
        return;
    }
    if has_finalizer && policy != "Delete" {
        set_finalizers(
            store,
            &kinds.pvs,
            pv,
            &without(&list, PROVISIONER_FINALIZER),
        );
        return;
    }
    if !has_finalizer && owned && policy == "Delete" && phase == "Bound" && !terminating(pv) {
        let mut added = list.clone();
        added.push(PROVISIONER_FINALIZER.to_owned());
        set_finalizers(store, &kinds.pvs, pv, &added);
        return;
    }
    let Some(reference) = pv.pointer("/spec/claimRef").filter(|r| !r.is_null()) else {
        if phase != "Available" {
            set_phase("Available");
        }
        return;
    };
    if text(reference, "/uid").is_empty() {
        if phase != "Available" {
            set_phase("Available");
        }
        return;
    }
    // The cache first, then the API: a claim created a moment ago must not release its volume.
    let claim = cache
        .get(
            &kinds.claims,
            Some(text(reference, "/namespace")),
            text(reference, "/name"),
        )
        .or_else(|| {
            store
                .get(
                    &kinds.claims,
                    Some(text(reference, "/namespace")),
                    text(reference, "/name"),
                )
                .ok()
                .map(Arc::new)
        });
    match claim.as_deref() {
        Some(claim) if text(claim, "/metadata/uid") == text(reference, "/uid") => {
            let volume_name = text(claim, "/spec/volumeName");
            if volume_name == text(pv, "/metadata/name") && phase != "Bound" {
                set_phase("Bound");
            } else if !volume_name.is_empty() && volume_name != text(pv, "/metadata/name") {
                // The claim is bound elsewhere: let this volume go.
                if annotation(pv, PROVISIONED_BY).is_some() && policy == "Delete" {
                    set_phase("Released");
                } else {
                    let body = if annotation(pv, BOUND_BY_CONTROLLER).is_some() {
                        json!({"spec": {"claimRef": null}})
                    } else {
                        json!({"spec": {"claimRef": {"uid": null, "resourceVersion": null}}})
                    };
                    patch(store, &kinds.pvs, pv, body, Subresource::Main);
                }
            }
        }
        _ => {
            // The claim is gone or was recreated: Released, then the reclaim policy.
            if phase != "Released" && phase != "Failed" {
                set_phase("Released");
                return;
            }
            if policy == "Delete" {
                reclaim_by_deleting(store, kinds, pv);
            }
        }
    }
}

/// Deletes the disk, then the PV object. An attached disk keeps the PV Released (retried).
fn reclaim_by_deleting(store: &Store, kinds: &Kinds, pv: &Value) {
    if let Some(disk) = store.cloud().find_for_pv(pv) {
        if let Err(error) = store.cloud().delete(&disk.id) {
            // "Volume in use" keeps the volume Released: retried on every pass.
            tracing::debug!(%error, "reclaim deferred");
            record_event(
                store,
                pv,
                "Warning",
                "VolumeFailedDelete",
                &error.to_string(),
                COMPONENT,
            );
            return;
        }
        tracing::info!(
            pv = text(pv, "/metadata/name"),
            disk = disk.id,
            "deleted the disk of a Released volume"
        );
    }
    let list = finalizers(pv);
    let kept = without(
        &without(&list, PROVISIONER_FINALIZER),
        PV_CONTROLLER_FINALIZER,
    );
    if kept != list {
        set_finalizers(store, &kinds.pvs, pv, &kept);
    }
    let options = DeleteOptions {
        precondition_uid: Some(text(pv, "/metadata/uid").to_owned()),
        ..DeleteOptions::default()
    };
    if let Err(error) = store.delete(&kinds.pvs, None, text(pv, "/metadata/name"), &options) {
        tracing::debug!(%error, "volume deletion deferred");
    }
}
