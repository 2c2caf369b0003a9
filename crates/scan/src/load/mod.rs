//! Loaders at the edge: files and directories ([`files`]) or a live cluster ([`live`]) into a [`crate::ClusterSnapshot`].
//!
//! PersistentVolumes, claims and pods become the slim types of [`crate::objects`] as
//! they are parsed (the file loader parses straight into them; the live loader
//! converts each page), and both loaders pass every object through [`Trim`], so the
//! snapshot holds only what the rules and the translation read, whichever way it was
//! filled.

pub mod files;
pub mod live;

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

/// The annotation `kubectl apply` leaves: a full copy of the object, never read by the scan.
const LAST_APPLIED_ANNOTATION: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// Drops the parts of an object's metadata the scan never reads (bookkeeping, the
/// last-applied copy), keeping the memory of a large snapshot down.
pub trait Trim {
    /// Drops what the scan never reads.
    fn trim(&mut self);
}

fn trim_meta(meta: &mut ObjectMeta) {
    meta.managed_fields = None;
    meta.uid = None;
    meta.resource_version = None;
    meta.finalizers = None;
    meta.creation_timestamp = None;
    meta.generation = None;
    meta.self_link = None;
    if let Some(annotations) = meta.annotations.as_mut() {
        annotations.remove(LAST_APPLIED_ANNOTATION);
    }
}

macro_rules! trim_metadata_only {
    ($($t:ty),* $(,)?) => {
        $(impl Trim for $t {
            fn trim(&mut self) {
                trim_meta(&mut self.metadata);
            }
        })*
    };
}

trim_metadata_only!(
    k8s_openapi::api::storage::v1::StorageClass,
    k8s_openapi::api::apps::v1::StatefulSet,
    k8s_openapi::api::apps::v1::Deployment,
    k8s_openapi::api::apps::v1::DaemonSet,
    k8s_openapi::api::apps::v1::ReplicaSet,
    k8s_openapi::api::batch::v1::Job,
    k8s_openapi::api::batch::v1::CronJob,
    k8s_openapi::api::core::v1::Node,
    k8s_openapi::api::storage::v1::CSIDriver,
    k8s_openapi::api::storage::v1::CSINode,
    k8s_openapi::api::policy::v1::PodDisruptionBudget,
);

// The slim PV, claim and pod keep only what the scan reads already (see
// [`crate::objects`]); their metadata is trimmed like every other kind's.
trim_metadata_only!(
    crate::objects::PersistentVolume,
    crate::objects::PersistentVolumeClaim,
    crate::objects::Pod,
);

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use crate::objects::{PersistentVolume, Pod};

    #[test]
    fn trimming_keeps_what_the_rules_read() {
        let mut pv: PersistentVolume = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "pv", "uid": "u", "resourceVersion": "7", "finalizers": ["f"],
                "labels": {"topology.kubernetes.io/zone": "a"},
                "annotations": {"pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs",
                                "kubectl.kubernetes.io/last-applied-configuration": "{}"}},
            "spec": {"awsElasticBlockStore": {"volumeID": "vol-1"}, "persistentVolumeReclaimPolicy": "Delete",
                "claimRef": {"namespace": "ns", "name": "c", "uid": "x"}},
            "status": {"phase": "Released", "message": "m"}}))
        .unwrap();
        pv.trim();
        assert_eq!(pv.metadata.uid, None);
        assert_eq!(pv.metadata.finalizers, None);
        assert_eq!(pv.metadata.labels.as_ref().map(|l| l.len()), Some(1));
        let annotations = pv.metadata.annotations.as_ref().unwrap();
        assert_eq!(annotations.len(), 1);
        let spec = pv.spec.as_ref().unwrap();
        assert!(spec.aws_elastic_block_store.is_some());
        let claim = spec.claim_ref.as_ref().unwrap();
        assert_eq!(
            (claim.namespace.as_deref(), claim.uid.as_deref()),
            (Some("ns"), None)
        );
        let status = pv.status.as_ref().unwrap();
        assert_eq!(status.phase.as_deref(), Some("Released"));

        let mut pod: Pod = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "p", "labels": {"app": "a"}, "ownerReferences": [
                {"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "s", "uid": "u"}]},
            "spec": {"nodeName": "n", "containers": [{"name": "c", "image": "i"}],
                "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "c"}}]},
            "status": {"phase": "Running"}}))
        .unwrap();
        pod.trim();
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.node_name.as_deref(), Some("n"));
        assert_eq!(spec.volumes.as_ref().map(Vec::len), Some(1));
        assert!(pod.metadata.labels.is_some() && pod.metadata.owner_references.is_some());
    }
}
