//! OpenStack Cinder: `kubernetes.io/cinder` ⇄ `cinder.csi.openstack.org`.

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, CinderPersistentVolumeSource, PersistentVolume,
    PersistentVolumeSpec, Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::Result;
use crate::parameters::{CSI_FSTYPE, FSTYPE, translate_existing_topologies, translate_parameters};
use crate::plugin::{
    InTreePlugin, missing_inline_source, missing_pv_source, new_pv, omit_empty, omit_empty_map,
    omit_false, spec_mut,
};
use crate::topology;

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/cinder";
/// CSI driver name.
pub const DRIVER_NAME: &str = "cinder.csi.openstack.org";
/// The driver's zone topology key.
pub const TOPOLOGY_KEY: &str = "topology.cinder.csi.openstack.org/zone";

/// The Cinder translator.
#[derive(Debug, Clone, Copy)]
pub struct Cinder;

fn csi_source(
    volume_id: &str,
    fs_type: Option<String>,
    read_only: Option<bool>,
) -> CSIPersistentVolumeSource {
    CSIPersistentVolumeSource {
        driver: DRIVER_NAME.to_owned(),
        volume_handle: volume_id.to_owned(),
        read_only: omit_false(read_only),
        fs_type: omit_empty(fs_type),
        ..Default::default()
    }
}

impl InTreePlugin for Cinder {
    fn in_tree_plugin_name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn csi_driver_name(&self) -> &'static str {
        DRIVER_NAME
    }

    fn source_field(&self) -> &'static str {
        "cinder"
    }

    fn can_support(&self, pv: &PersistentVolume) -> bool {
        pv.spec.as_ref().is_some_and(|s| s.cinder.is_some())
    }

    fn can_support_inline(&self, volume: &Volume) -> bool {
        volume.cinder.is_some()
    }

    /// `fstype` is renamed; everything else, `availability` and `zone` included, is
    /// understood by the CSI driver and copied.
    fn storage_class_to_csi(&self, mut sc: StorageClass) -> Result<StorageClass> {
        let params = translate_parameters(&sc, |params, key, lower, value| {
            params.insert(key, if lower == FSTYPE { CSI_FSTYPE } else { key }, value)
        })?;
        translate_existing_topologies(&mut sc, TOPOLOGY_KEY);
        sc.parameters = omit_empty_map(params.into_map());
        Ok(sc)
    }

    fn inline_to_csi(&self, volume: &Volume, _pod_namespace: &str) -> Result<PersistentVolume> {
        let cinder = volume
            .cinder
            .as_ref()
            .ok_or_else(|| missing_inline_source("cinder", volume))?;
        Ok(new_pv(
            format!("{DRIVER_NAME}-{}", cinder.volume_id),
            PersistentVolumeSpec {
                csi: Some(csi_source(
                    &cinder.volume_id,
                    cinder.fs_type.clone(),
                    cinder.read_only,
                )),
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                ..Default::default()
            },
        ))
    }

    /// The in-tree `secretRef` has no CSI counterpart and is dropped, as upstream.
    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(cinder) = pv.spec.as_mut().and_then(|s| s.cinder.take()) else {
            return Err(missing_pv_source("spec.cinder", &pv));
        };
        topology::in_tree_to_csi(&mut pv, TOPOLOGY_KEY);
        spec_mut(&mut pv).csi = Some(csi_source(
            &cinder.volume_id,
            cinder.fs_type,
            cinder.read_only,
        ));
        Ok(pv)
    }

    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        // Cinder has no region parser: only the zone comes back.
        topology::csi_to_in_tree(&mut pv, TOPOLOGY_KEY, None)
            .map_err(crate::TranslateError::Region)?;
        spec_mut(&mut pv).cinder = Some(CinderPersistentVolumeSource {
            volume_id: csi.volume_handle,
            fs_type: omit_empty(csi.fs_type),
            read_only: omit_false(csi.read_only),
            secret_ref: None,
        });
        Ok(pv)
    }
}
