//! In-tree ⇄ CSI translation of Kubernetes StorageClasses, PersistentVolumes and
//! inline pod volumes, with the semantics of Kubernetes' own csi-translation-lib.
//!
//! Each in-tree plugin has one module under [`plugins`] implementing
//! [`InTreePlugin`]; [`Translator`] picks the right one for an object:
//!
//! ```
//! use csi_migrate_translate::Translator;
//! use k8s_openapi::api::core::v1::PersistentVolume;
//!
//! let pv: PersistentVolume = serde_json::from_str(r#"{
//!     "metadata": {"name": "pv-1", "labels": {"topology.kubernetes.io/zone": "us-east-1a"}},
//!     "spec": {"awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-0abc"}}
//! }"#).unwrap();
//! let csi = Translator::new().pv_to_csi(&pv).unwrap();
//! let source = csi.spec.unwrap().csi.unwrap();
//! assert_eq!(source.driver, "ebs.csi.aws.com");
//! assert_eq!(source.volume_handle, "vol-0abc");
//! ```
//!
//! | in-tree plugin | CSI driver |
//! |---|---|
//! | `kubernetes.io/aws-ebs` | `ebs.csi.aws.com` |
//! | `kubernetes.io/gce-pd` | `pd.csi.storage.gke.io` |
//! | `kubernetes.io/azure-disk` | `disk.csi.azure.com` |
//! | `kubernetes.io/azure-file` | `file.csi.azure.com` |
//! | `kubernetes.io/cinder` | `cinder.csi.openstack.org` |
//! | `kubernetes.io/vsphere-volume` | `csi.vsphere.vmware.com` |
//! | `kubernetes.io/portworx-volume` | `pxd.portworx.com` |
//! | `kubernetes.io/rbd` (as of csi-translation-lib v0.30) | `rbd.csi.ceph.com` |
//!
//! # Fidelity
//!
//! The serialized output equals what upstream's Go code serializes for the same
//! input: Go's `omitempty` is honoured (a `false` readOnly, an empty fsType or an
//! empty attribute map are not written), and every handle, attribute, label,
//! node affinity rewrite and error case follows upstream.
//!
//! # Deliberate differences from upstream
//!
//! - **No panics, no nil inputs.** Upstream panics on an inline vSphere volume with
//!   `storagePolicyName`; here it becomes the `storagepolicyname` attribute, as for
//!   a PersistentVolume. Objects are taken by reference, so there is no nil case.
//! - **The caller's object is never changed.** Every [`Translator`] method works on
//!   a copy (upstream plugins mutate their argument).
//! - **Determinism where upstream follows Go map order:**
//!   - a PV or volume that sets any second volume source beside the one being
//!     translated (another plugin's, `csi`, `nfs`, `emptyDir`…), in either
//!     direction, is rejected with [`TranslateError::MultipleSources`] (the API
//!     server would reject it too; upstream would drop or keep one at random);
//!   - a StorageClass with both `zone` and `zones` is rejected with
//!     [`TranslateError::ZoneAndZones`], as the in-tree provisioners do;
//!   - two parameters that translate to the same key (`fstype` and
//!     `csi.storage.k8s.io/fstype`, or `Zone` and `zone`) are accepted when their
//!     values agree and rejected with [`TranslateError::ConflictingParameters`]
//!     otherwise;
//!   - CSI volume attributes matched case-insensitively on rollback (Azure) are
//!     read in byte order of their keys, the last one winning.
//! - A GCE or EBS `partition` attribute outside the 32-bit range is an error
//!   instead of wrapping around.
//! - An `aws://` EBS volume ID whose `%` escapes decode to invalid UTF-8 is an error
//!   (Go keeps the raw bytes, which a Rust `String` cannot hold).
//! - `azureDisk.kind` is compared with `Managed` ignoring ASCII case only.

pub mod error;
pub mod jsonl;
pub mod manifest;
pub mod parameters;
pub mod plugin;
pub mod plugins;
pub mod topology;
mod translator;

#[cfg(test)]
mod round_trip_tests;
#[cfg(test)]
mod test_support;

pub use error::{RegionError, Result, TranslateError};
pub use plugin::InTreePlugin;
pub use translator::Translator;
