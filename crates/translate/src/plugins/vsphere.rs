//! vSphere: `kubernetes.io/vsphere-volume` ⇄ `csi.vsphere.vmware.com`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeSpec, Volume,
    VsphereVirtualDiskVolumeSource,
};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::Result;
use crate::parameters::{CSI_FSTYPE, FSTYPE, translate_existing_topologies, translate_parameters};
use crate::plugin::{
    InTreePlugin, missing_inline_source, missing_pv_source, new_pv, omit_empty, omit_empty_map,
    spec_mut,
};
use crate::topology;

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/vsphere-volume";
/// CSI driver name.
pub const DRIVER_NAME: &str = "csi.vsphere.vmware.com";
/// The driver's zone topology key.
pub const TOPOLOGY_ZONE_KEY: &str = "topology.csi.vmware.com/zone";
/// The driver's region topology key.
pub const TOPOLOGY_REGION_KEY: &str = "topology.csi.vmware.com/region";
/// Volume attribute carrying the storage policy.
pub const STORAGE_POLICY_NAME: &str = "storagepolicyname";
/// Volume attribute in which the driver reports the original VMDK path of a migrated volume.
pub const INITIAL_VOLUME_FILEPATH: &str = "initialvolumefilepath";
/// Parameter telling the driver a class came from migration.
pub const CSI_MIGRATION: &str = "csimigration";

/// In-tree parameter (lower case) → the CSI parameter it becomes; others are dropped.
pub const PARAMETER_RENAMES: &[(&str, &str)] = &[
    (FSTYPE, CSI_FSTYPE),
    (STORAGE_POLICY_NAME, STORAGE_POLICY_NAME),
    ("datastore", "datastore-migrationparam"),
    ("diskformat", "diskformat-migrationparam"),
    (
        "hostfailurestotolerate",
        "hostfailurestotolerate-migrationparam",
    ),
    ("forceprovisioning", "forceprovisioning-migrationparam"),
    ("cachereservation", "cachereservation-migrationparam"),
    ("diskstripes", "diskstripes-migrationparam"),
    (
        "objectspacereservation",
        "objectspacereservation-migrationparam",
    ),
    ("iopslimit", "iopslimit-migrationparam"),
];

/// Parameters only a translated (migrated) class may carry: a CSI class that sets
/// them by hand is misconfigured.
pub const MIGRATION_ONLY_PARAMETERS: &[&str] = &[
    CSI_MIGRATION,
    "datastore-migrationparam",
    "diskformat-migrationparam",
    "hostfailurestotolerate-migrationparam",
    "forceprovisioning-migrationparam",
    "cachereservation-migrationparam",
    "diskstripes-migrationparam",
    "objectspacereservation-migrationparam",
    "iopslimit-migrationparam",
];

/// The vSphere translator.
#[derive(Debug, Clone, Copy)]
pub struct VsphereVolume;

fn csi_source(disk: &VsphereVirtualDiskVolumeSource) -> CSIPersistentVolumeSource {
    let mut attributes = BTreeMap::new();
    if let Some(policy) = disk.storage_policy_name.as_ref().filter(|p| !p.is_empty()) {
        attributes.insert(STORAGE_POLICY_NAME.to_owned(), policy.clone());
    }
    CSIPersistentVolumeSource {
        driver: DRIVER_NAME.to_owned(),
        volume_handle: disk.volume_path.clone(),
        fs_type: omit_empty(disk.fs_type.clone()),
        volume_attributes: omit_empty_map(attributes),
        ..Default::default()
    }
}

impl InTreePlugin for VsphereVolume {
    fn in_tree_plugin_name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn csi_driver_name(&self) -> &'static str {
        DRIVER_NAME
    }

    fn source_field(&self) -> &'static str {
        "vsphereVolume"
    }

    fn can_support(&self, pv: &PersistentVolume) -> bool {
        pv.spec.as_ref().is_some_and(|s| s.vsphere_volume.is_some())
    }

    fn can_support_inline(&self, volume: &Volume) -> bool {
        volume.vsphere_volume.is_some()
    }

    /// Known parameters are renamed (lower case, see [`PARAMETER_RENAMES`]), unknown
    /// ones dropped, and `csimigration: "true"` added so the driver reports the VMDK path.
    fn storage_class_to_csi(&self, mut sc: StorageClass) -> Result<StorageClass> {
        let params =
            translate_parameters(&sc, |params, key, lower, value| {
                match PARAMETER_RENAMES.iter().find(|(from, _)| *from == lower) {
                    Some((_, to)) => params.insert(key, to, value),
                    None => Ok(()),
                }
            })?;
        let mut params = params.into_map();
        params.insert(CSI_MIGRATION.to_owned(), "true".to_owned());
        translate_existing_topologies(&mut sc, TOPOLOGY_ZONE_KEY);
        sc.parameters = Some(params);
        Ok(sc)
    }

    /// Unlike upstream, which panics here, a storage policy becomes the
    /// `storagepolicyname` attribute exactly as for a PersistentVolume.
    fn inline_to_csi(&self, volume: &Volume, _pod_namespace: &str) -> Result<PersistentVolume> {
        let disk = volume
            .vsphere_volume
            .as_ref()
            .ok_or_else(|| missing_inline_source("vsphereVolume", volume))?;
        Ok(new_pv(
            format!("{DRIVER_NAME}-{}", disk.volume_path),
            PersistentVolumeSpec {
                csi: Some(csi_source(disk)),
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                ..Default::default()
            },
        ))
    }

    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(disk) = pv.spec.as_mut().and_then(|s| s.vsphere_volume.take()) else {
            return Err(missing_pv_source("spec.vsphereVolume", &pv));
        };
        topology::vsphere_in_tree_to_csi(&mut pv, TOPOLOGY_ZONE_KEY, TOPOLOGY_REGION_KEY);
        spec_mut(&mut pv).csi = Some(csi_source(&disk));
        Ok(pv)
    }

    /// The VMDK path comes only from the `initialvolumefilepath` attribute the driver
    /// sets on migrated volumes; the storage policy and readOnly are not carried back.
    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        let volume_path = csi
            .volume_attributes
            .as_ref()
            .and_then(|a| a.get(INITIAL_VOLUME_FILEPATH))
            .cloned()
            .unwrap_or_default();
        topology::vsphere_csi_to_in_tree(&mut pv, TOPOLOGY_ZONE_KEY, TOPOLOGY_REGION_KEY);
        spec_mut(&mut pv).vsphere_volume = Some(VsphereVirtualDiskVolumeSource {
            volume_path,
            fs_type: omit_empty(csi.fs_type),
            ..Default::default()
        });
        Ok(pv)
    }
}
