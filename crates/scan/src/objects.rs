//! Slim PersistentVolumes, PersistentVolumeClaims and Pods: only the fields the scan reads, with the k8s-openapi field names.
//!
//! A large cluster has hundreds of thousands of these, and the k8s-openapi structs
//! hold every field inline (3,472 bytes for a PV, 2,464 for a Pod plus about 2 KB per
//! volume). These keep what the rules, the inventory, readiness and the translation of
//! the volume handle read, with volume sources boxed. Each is deserialized *through*
//! its k8s-openapi type (`serde(from = …)`), so the input is validated exactly as
//! before and errors name the same fields; the full object lives only while one item
//! is parsed. [`PersistentVolume::to_k8s`] rebuilds a k8s-openapi PV for the
//! translator, one at a time.

use k8s_openapi::api::core::v1 as k8s;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;

/// A PersistentVolume as the scan keeps it. Everything else about it is dropped on load.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "k8s::PersistentVolume")]
pub struct PersistentVolume {
    /// Metadata (trimmed on load, see [`crate::load::Trim`]).
    pub metadata: ObjectMeta,
    /// The spec's read fields.
    pub spec: Option<PersistentVolumeSpec>,
    /// The status's phase.
    pub status: Option<PersistentVolumeStatus>,
}

/// The parts of `PersistentVolumeSpec` the scan or the translation reads. Sources are
/// boxed: a PV has one, and an empty `Option<Box<_>>` is one word.
#[allow(missing_docs)] // Same fields as k8s_openapi::api::core::v1::PersistentVolumeSpec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistentVolumeSpec {
    pub access_modes: Option<Vec<String>>,
    pub claim_ref: Option<Box<k8s::ObjectReference>>,
    pub node_affinity: Option<Box<k8s::VolumeNodeAffinity>>,
    pub persistent_volume_reclaim_policy: Option<String>,
    pub storage_class_name: Option<String>,
    pub volume_attributes_class_name: Option<String>,
    pub volume_mode: Option<String>,
    pub aws_elastic_block_store: Option<Box<k8s::AWSElasticBlockStoreVolumeSource>>,
    pub azure_disk: Option<Box<k8s::AzureDiskVolumeSource>>,
    pub azure_file: Option<Box<k8s::AzureFilePersistentVolumeSource>>,
    pub cephfs: Option<Box<k8s::CephFSPersistentVolumeSource>>,
    pub cinder: Option<Box<k8s::CinderPersistentVolumeSource>>,
    pub csi: Option<Box<k8s::CSIPersistentVolumeSource>>,
    pub fc: Option<Box<k8s::FCVolumeSource>>,
    pub flex_volume: Option<Box<k8s::FlexPersistentVolumeSource>>,
    pub flocker: Option<Box<k8s::FlockerVolumeSource>>,
    pub gce_persistent_disk: Option<Box<k8s::GCEPersistentDiskVolumeSource>>,
    pub glusterfs: Option<Box<k8s::GlusterfsPersistentVolumeSource>>,
    pub host_path: Option<Box<k8s::HostPathVolumeSource>>,
    pub iscsi: Option<Box<k8s::ISCSIPersistentVolumeSource>>,
    pub local: Option<Box<k8s::LocalVolumeSource>>,
    pub nfs: Option<Box<k8s::NFSVolumeSource>>,
    pub photon_persistent_disk: Option<Box<k8s::PhotonPersistentDiskVolumeSource>>,
    pub portworx_volume: Option<Box<k8s::PortworxVolumeSource>>,
    pub quobyte: Option<Box<k8s::QuobyteVolumeSource>>,
    pub rbd: Option<Box<k8s::RBDPersistentVolumeSource>>,
    pub scale_io: Option<Box<k8s::ScaleIOPersistentVolumeSource>>,
    pub storageos: Option<Box<k8s::StorageOSPersistentVolumeSource>>,
    pub vsphere_volume: Option<Box<k8s::VsphereVirtualDiskVolumeSource>>,
}

/// The PV status field the scan reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistentVolumeStatus {
    /// `Pending`, `Available`, `Bound`, `Released` or `Failed`.
    pub phase: Option<String>,
}

fn boxed<T>(value: Option<T>) -> Option<Box<T>> {
    value.map(Box::new)
}

fn unboxed<T: Clone>(value: &Option<Box<T>>) -> Option<T> {
    value.as_deref().cloned()
}

impl From<k8s::PersistentVolume> for PersistentVolume {
    fn from(pv: k8s::PersistentVolume) -> Self {
        // Capacity, mount options and the claim reference's uid/resourceVersion/fieldPath
        // are read by neither the rules nor the translation's volume handle.
        let spec = pv.spec.map(|s| PersistentVolumeSpec {
            access_modes: s.access_modes,
            claim_ref: s.claim_ref.map(|c| {
                Box::new(k8s::ObjectReference {
                    uid: None,
                    resource_version: None,
                    field_path: None,
                    ..c
                })
            }),
            node_affinity: boxed(s.node_affinity),
            persistent_volume_reclaim_policy: s.persistent_volume_reclaim_policy,
            storage_class_name: s.storage_class_name,
            volume_attributes_class_name: s.volume_attributes_class_name,
            volume_mode: s.volume_mode,
            aws_elastic_block_store: boxed(s.aws_elastic_block_store),
            azure_disk: boxed(s.azure_disk),
            azure_file: boxed(s.azure_file),
            cephfs: boxed(s.cephfs),
            cinder: boxed(s.cinder),
            csi: boxed(s.csi),
            fc: boxed(s.fc),
            flex_volume: boxed(s.flex_volume),
            flocker: boxed(s.flocker),
            gce_persistent_disk: boxed(s.gce_persistent_disk),
            glusterfs: boxed(s.glusterfs),
            host_path: boxed(s.host_path),
            iscsi: boxed(s.iscsi),
            local: boxed(s.local),
            nfs: boxed(s.nfs),
            photon_persistent_disk: boxed(s.photon_persistent_disk),
            portworx_volume: boxed(s.portworx_volume),
            quobyte: boxed(s.quobyte),
            rbd: boxed(s.rbd),
            scale_io: boxed(s.scale_io),
            storageos: boxed(s.storageos),
            vsphere_volume: boxed(s.vsphere_volume),
        });
        Self {
            metadata: pv.metadata,
            spec,
            status: pv.status.map(|s| PersistentVolumeStatus { phase: s.phase }),
        }
    }
}

impl PersistentVolume {
    /// The k8s-openapi PV with the same kept fields, for the translator. Built one at a
    /// time and dropped after translating, so the snapshot never holds full PVs.
    pub fn to_k8s(&self) -> k8s::PersistentVolume {
        let spec = self.spec.as_ref().map(|s| k8s::PersistentVolumeSpec {
            access_modes: s.access_modes.clone(),
            claim_ref: unboxed(&s.claim_ref),
            node_affinity: unboxed(&s.node_affinity),
            persistent_volume_reclaim_policy: s.persistent_volume_reclaim_policy.clone(),
            storage_class_name: s.storage_class_name.clone(),
            volume_attributes_class_name: s.volume_attributes_class_name.clone(),
            volume_mode: s.volume_mode.clone(),
            aws_elastic_block_store: unboxed(&s.aws_elastic_block_store),
            azure_disk: unboxed(&s.azure_disk),
            azure_file: unboxed(&s.azure_file),
            cephfs: unboxed(&s.cephfs),
            cinder: unboxed(&s.cinder),
            csi: unboxed(&s.csi),
            fc: unboxed(&s.fc),
            flex_volume: unboxed(&s.flex_volume),
            flocker: unboxed(&s.flocker),
            gce_persistent_disk: unboxed(&s.gce_persistent_disk),
            glusterfs: unboxed(&s.glusterfs),
            host_path: unboxed(&s.host_path),
            iscsi: unboxed(&s.iscsi),
            local: unboxed(&s.local),
            nfs: unboxed(&s.nfs),
            photon_persistent_disk: unboxed(&s.photon_persistent_disk),
            portworx_volume: unboxed(&s.portworx_volume),
            quobyte: unboxed(&s.quobyte),
            rbd: unboxed(&s.rbd),
            scale_io: unboxed(&s.scale_io),
            storageos: unboxed(&s.storageos),
            vsphere_volume: unboxed(&s.vsphere_volume),
            capacity: None,
            mount_options: None,
        });
        k8s::PersistentVolume {
            metadata: self.metadata.clone(),
            spec,
            status: self.status.as_ref().map(|s| k8s::PersistentVolumeStatus {
                phase: s.phase.clone(),
                ..Default::default()
            }),
        }
    }
}

/// A PersistentVolumeClaim as the scan keeps it: metadata and the spec's class, volume and mode.
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "k8s::PersistentVolumeClaim")]
pub struct PersistentVolumeClaim {
    /// Metadata (trimmed on load).
    pub metadata: ObjectMeta,
    /// The spec's read fields.
    pub spec: Option<PersistentVolumeClaimSpec>,
}

/// The parts of `PersistentVolumeClaimSpec` the scan reads.
#[allow(missing_docs)] // Same fields as k8s_openapi::api::core::v1::PersistentVolumeClaimSpec.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PersistentVolumeClaimSpec {
    pub storage_class_name: Option<String>,
    pub volume_name: Option<String>,
    pub volume_mode: Option<String>,
}

impl From<k8s::PersistentVolumeClaim> for PersistentVolumeClaim {
    fn from(pvc: k8s::PersistentVolumeClaim) -> Self {
        Self {
            metadata: pvc.metadata,
            spec: pvc.spec.map(|s| PersistentVolumeClaimSpec {
                storage_class_name: s.storage_class_name,
                volume_name: s.volume_name,
                volume_mode: s.volume_mode,
            }),
        }
    }
}

/// A Pod as the scan keeps it: metadata, node and volumes (no containers, no status).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(from = "k8s::Pod")]
pub struct Pod {
    /// Metadata (trimmed on load).
    pub metadata: ObjectMeta,
    /// The spec's read fields.
    pub spec: Option<PodSpec>,
}

/// The parts of `PodSpec` the scan reads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodSpec {
    /// The node the pod is scheduled to.
    pub node_name: Option<String>,
    /// Its volumes.
    pub volumes: Option<Vec<PodVolume>>,
}

/// One volume of a pod: the claim it names, whether it is a generic ephemeral volume,
/// and the full volume only when its source may be an in-tree plugin.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodVolume {
    /// The volume's name.
    pub name: String,
    /// `persistentVolumeClaim.claimName`.
    pub claim_name: Option<String>,
    /// Whether it is a generic ephemeral volume (whose claim is `<pod>-<volume>`).
    pub ephemeral: bool,
    /// The whole volume, unless its source is one that is never an in-tree plugin
    /// (claim, ephemeral, configMap, secret, emptyDir, projected, downwardAPI, csi, image).
    pub full: Option<Box<k8s::Volume>>,
}

impl From<k8s::Volume> for PodVolume {
    fn from(volume: k8s::Volume) -> Self {
        // Every pod has a projected service account token and most have config maps and
        // claims; keeping those as full 2 KB `Volume`s is most of a pod's memory. Every
        // source not listed here (claim, ephemeral, configMap, secret, emptyDir,
        // projected, downwardAPI, csi, image) is kept whole.
        let may_be_in_tree = volume.aws_elastic_block_store.is_some()
            || volume.azure_disk.is_some()
            || volume.azure_file.is_some()
            || volume.cephfs.is_some()
            || volume.cinder.is_some()
            || volume.fc.is_some()
            || volume.flex_volume.is_some()
            || volume.flocker.is_some()
            || volume.gce_persistent_disk.is_some()
            || volume.git_repo.is_some()
            || volume.glusterfs.is_some()
            || volume.host_path.is_some()
            || volume.iscsi.is_some()
            || volume.nfs.is_some()
            || volume.photon_persistent_disk.is_some()
            || volume.portworx_volume.is_some()
            || volume.quobyte.is_some()
            || volume.rbd.is_some()
            || volume.scale_io.is_some()
            || volume.storageos.is_some()
            || volume.vsphere_volume.is_some();
        Self {
            claim_name: volume
                .persistent_volume_claim
                .as_ref()
                .map(|c| c.claim_name.clone()),
            ephemeral: volume.ephemeral.is_some(),
            name: volume.name.clone(),
            full: may_be_in_tree.then(|| Box::new(volume)),
        }
    }
}

impl From<k8s::Pod> for Pod {
    fn from(pod: k8s::Pod) -> Self {
        Self {
            metadata: pod.metadata,
            spec: pod.spec.map(|s| PodSpec {
                node_name: s.node_name,
                volumes: s
                    .volumes
                    .map(|v| v.into_iter().map(PodVolume::from).collect()),
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn pod_volumes_keep_the_full_source_only_when_it_may_be_in_tree() {
        let pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p"},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}},
                            {"name": "t", "projected": {"sources": []}},
                            {"name": "e", "awsElasticBlockStore": {"volumeID": "vol-1"}}]}}))
        .unwrap();
        let spec = pod.spec.unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n"));
        let volumes = spec.volumes.unwrap();
        assert_eq!(volumes[0].claim_name.as_deref(), Some("c"));
        assert!(volumes[0].full.is_none() && volumes[1].full.is_none());
        let ebs = volumes[2].full.as_ref().unwrap();
        assert_eq!(ebs.name, "e");
        assert!(ebs.aws_elastic_block_store.is_some());
    }

    #[test]
    fn a_pv_round_trips_to_k8s_without_what_is_never_read() {
        let pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pv"},
            "spec": {"capacity": {"storage": "1Gi"}, "awsElasticBlockStore": {"volumeID": "vol-1"},
                "claimRef": {"namespace": "ns", "name": "c", "uid": "x"}},
            "status": {"phase": "Bound", "message": "m"}}))
        .unwrap();
        let full = pv.to_k8s();
        let spec = full.spec.unwrap();
        assert!(spec.capacity.is_none());
        assert_eq!(
            spec.aws_elastic_block_store.map(|s| s.volume_id).as_deref(),
            Some("vol-1")
        );
        let claim = spec.claim_ref.unwrap();
        assert_eq!((claim.name.as_deref(), claim.uid), (Some("c"), None));
        assert_eq!(full.status.unwrap().phase.as_deref(), Some("Bound"));
    }

    #[test]
    fn invalid_fields_are_still_rejected() {
        let bad = serde_json::json!({"metadata": {"name": "bad"}, "spec": {"capacity": 7}});
        assert!(serde_json::from_value::<PersistentVolume>(bad).is_err());
    }
}
