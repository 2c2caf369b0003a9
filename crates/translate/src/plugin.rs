//! The interface every in-tree plugin translator implements, and small builders they share.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeSpec, Volume};
use k8s_openapi::api::storage::v1::StorageClass;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

use crate::error::{Result, TranslateError};

/// Translation logic for one in-tree volume plugin and its CSI driver.
///
/// The shape follows upstream csi-translation-lib's `InTreePlugin`. Methods that
/// take an object by value own a copy made by [`crate::Translator`]; nothing here
/// can reach the caller's object.
pub trait InTreePlugin: Send + Sync + std::fmt::Debug {
    /// The in-tree plugin name, e.g. `kubernetes.io/gce-pd`.
    fn in_tree_plugin_name(&self) -> &'static str;

    /// The CSI driver name, e.g. `pd.csi.storage.gke.io`.
    fn csi_driver_name(&self) -> &'static str;

    /// The PV / inline volume source field this plugin reads, e.g. `gcePersistentDisk`.
    fn source_field(&self) -> &'static str;

    /// Whether the PV sets this plugin's in-tree source.
    fn can_support(&self, pv: &PersistentVolume) -> bool;

    /// Whether the pod volume sets this plugin's in-tree source.
    fn can_support_inline(&self, volume: &Volume) -> bool;

    /// Rewrites StorageClass parameters and allowedTopologies for the CSI driver.
    fn storage_class_to_csi(&self, sc: StorageClass) -> Result<StorageClass>;

    /// Builds a CSI PersistentVolume from a pod's inline volume.
    fn inline_to_csi(&self, volume: &Volume, pod_namespace: &str) -> Result<PersistentVolume>;

    /// Replaces the PV's in-tree source with `spec.csi` and rewrites its topology.
    fn pv_to_csi(&self, pv: PersistentVolume) -> Result<PersistentVolume>;

    /// Replaces the PV's `spec.csi` with the in-tree source (the rollback direction).
    /// Like upstream, the driver name in `spec.csi` is not checked here.
    fn csi_pv_to_in_tree(&self, pv: PersistentVolume) -> Result<PersistentVolume>;

    /// Fills in parts of a volume handle that translation could not know (GCE project
    /// and zone, from the node ID); every other plugin returns the handle unchanged.
    fn repair_volume_handle(&self, volume_handle: &str, _node_id: &str) -> Result<String> {
        Ok(volume_handle.to_owned())
    }
}

/// Implements the identity half of [`InTreePlugin`] (names, source field, `can_support*`)
/// from the module's `PLUGIN_NAME` and `DRIVER_NAME` and the source's JSON and Rust field names.
macro_rules! plugin_identity {
    ($source_field:literal, $field:ident) => {
        fn in_tree_plugin_name(&self) -> &'static str {
            PLUGIN_NAME
        }

        fn csi_driver_name(&self) -> &'static str {
            DRIVER_NAME
        }

        fn source_field(&self) -> &'static str {
            $source_field
        }

        fn can_support(&self, pv: &PersistentVolume) -> bool {
            pv.spec.as_ref().is_some_and(|s| s.$field.is_some())
        }

        fn can_support_inline(&self, volume: &Volume) -> bool {
            volume.$field.is_some()
        }
    };
}
pub(crate) use plugin_identity;

/// `persistent volume "<name>"`, for error messages.
pub(crate) fn describe_pv(pv: &PersistentVolume) -> String {
    format!(
        "persistent volume {:?}",
        pv.metadata.name.as_deref().unwrap_or_default()
    )
}

/// `volume "<name>"`, for error messages.
pub(crate) fn describe_volume(volume: &Volume) -> String {
    format!("volume {:?}", volume.name)
}

/// The error for a PV that lacks the plugin's source.
pub(crate) fn missing_pv_source(field: &'static str, pv: &PersistentVolume) -> TranslateError {
    TranslateError::MissingSource {
        field,
        object: describe_pv(pv),
    }
}

/// The error for a pod volume that lacks the plugin's source.
pub(crate) fn missing_inline_source(field: &'static str, volume: &Volume) -> TranslateError {
    TranslateError::MissingSource {
        field,
        object: describe_volume(volume),
    }
}

/// Mutable spec of a PV, created if absent.
pub(crate) fn spec_mut(pv: &mut PersistentVolume) -> &mut PersistentVolumeSpec {
    pv.spec.get_or_insert_with(Default::default)
}

/// Go's `omitempty` on a `bool`: false is not written.
pub(crate) fn omit_false(value: Option<bool>) -> Option<bool> {
    value.filter(|v| *v)
}

/// Go's `omitempty` on a `string`: "" is not written.
pub(crate) fn omit_empty(value: Option<String>) -> Option<String> {
    value.filter(|v| !v.is_empty())
}

/// Go's `omitempty` on a map: an empty map is not written.
pub(crate) fn omit_empty_map(map: BTreeMap<String, String>) -> Option<BTreeMap<String, String>> {
    (!map.is_empty()).then_some(map)
}

/// `[ReadOnlyMany]` for a read-only inline volume, else `[ReadWriteOnce]`.
pub(crate) fn access_modes_by_read_only(read_only: bool) -> Vec<String> {
    vec![
        if read_only {
            "ReadOnlyMany"
        } else {
            "ReadWriteOnce"
        }
        .to_owned(),
    ]
}

/// A new PV named `name` with the given spec, as the inline translations build it.
pub(crate) fn new_pv(name: String, spec: PersistentVolumeSpec) -> PersistentVolume {
    PersistentVolume {
        metadata: ObjectMeta {
            name: Some(name),
            ..Default::default()
        },
        spec: Some(spec),
        status: None,
    }
}

/// Case-insensitive lookup of a CSI volume attribute, as the Azure translators do.
pub(crate) fn attributes_lowercased(
    attributes: Option<&BTreeMap<String, String>>,
) -> BTreeMap<String, String> {
    attributes
        .into_iter()
        .flatten()
        .map(|(k, v)| (crate::parameters::go_lowercase(k), v.clone()))
        .collect()
}
