//! GCE Persistent Disk: `kubernetes.io/gce-pd` ⇄ `pd.csi.storage.gke.io`.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, GCEPersistentDiskVolumeSource, PersistentVolume,
    PersistentVolumeSpec, Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::{RegionError, Result, TranslateError};
use crate::parameters::{CSI_FSTYPE, FSTYPE, translate_zonal_storage_class};
use crate::plugin::{
    InTreePlugin, missing_inline_source, missing_pv_source, new_pv, omit_empty, omit_false,
    spec_mut,
};
use crate::topology::{self, LABEL_BETA_ZONE, LABEL_ZONE, MULTI_ZONE_DELIMITER};

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/gce-pd";
/// CSI driver name.
pub const DRIVER_NAME: &str = "pd.csi.storage.gke.io";
/// The driver's zone topology key.
pub const TOPOLOGY_KEY: &str = "topology.gke.io/zone";
/// Placeholder for a project or zone translation cannot know.
pub const UNSPECIFIED: &str = "UNSPECIFIED";
const PARTITION: &str = "partition";
const HANDLE_MIN_PARTS: usize = 6;

/// The GCE PD translator.
#[derive(Debug, Clone, Copy)]
pub struct GcePd;

fn zonal_handle(project: &str, zone: &str, disk: &str) -> String {
    format!("projects/{project}/zones/{zone}/disks/{disk}")
}

fn regional_handle(project: &str, region: &str, disk: &str) -> String {
    format!("projects/{project}/regions/{region}/disks/{disk}")
}

fn partition_attribute(partition: Option<i32>) -> BTreeMap<String, String> {
    let value = match partition.unwrap_or(0) {
        0 => String::new(),
        n => n.to_string(),
    };
    BTreeMap::from([(PARTITION.to_owned(), value)])
}

/// The region of GCE zones `<locale>-<region>-<zone>`; all zones must agree.
pub fn region_from_zones(zones: &[String]) -> Result<String, RegionError> {
    if zones.is_empty() {
        return Err(RegionError::NoZones);
    }
    let mut regions = std::collections::BTreeSet::new();
    for zone in zones {
        let parts: Vec<&str> = zone.split('-').collect();
        if parts.len() != 3 {
            return Err(RegionError::UnexpectedGceZone(zone.clone()));
        }
        regions.insert(format!("{}-{}", parts[0], parts[1]));
    }
    if regions.len() != 1 {
        return Err(RegionError::MultipleRegions(regions.into_iter().collect()));
    }
    Ok(regions.into_iter().next().unwrap_or_default())
}

/// GCE folds the access modes into one the driver accepts: any RWO or RWX gives RWO,
/// otherwise ROX gives ROX, and anything else (RWOP, an empty list) gives RWO.
fn backward_compatible_access_modes(modes: Option<Vec<String>>) -> Option<Vec<String>> {
    let modes = modes?;
    let writable = modes
        .iter()
        .any(|m| m == "ReadWriteOnce" || m == "ReadWriteMany");
    let read_only = !writable && modes.iter().any(|m| m == "ReadOnlyMany");
    Some(vec![
        if read_only {
            "ReadOnlyMany"
        } else {
            "ReadWriteOnce"
        }
        .to_owned(),
    ])
}

fn handle_parts<'a>(handle: &'a str, field: &'static str, what: &str) -> Result<Vec<&'a str>> {
    let parts: Vec<&str> = handle.split('/').collect();
    if parts.len() < HANDLE_MIN_PARTS {
        return Err(TranslateError::InvalidVolumeHandle {
            handle: handle.to_owned(),
            field,
            reason: format!(
                "{what} has {} '/'-separated elements, wanted {HANDLE_MIN_PARTS} or more",
                parts.len()
            ),
        });
    }
    Ok(parts)
}

impl InTreePlugin for GcePd {
    fn in_tree_plugin_name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn csi_driver_name(&self) -> &'static str {
        DRIVER_NAME
    }

    fn source_field(&self) -> &'static str {
        "gcePersistentDisk"
    }

    fn can_support(&self, pv: &PersistentVolume) -> bool {
        pv.spec
            .as_ref()
            .is_some_and(|s| s.gce_persistent_disk.is_some())
    }

    fn can_support_inline(&self, volume: &Volume) -> bool {
        volume.gce_persistent_disk.is_some()
    }

    fn storage_class_to_csi(&self, sc: StorageClass) -> Result<StorageClass> {
        translate_zonal_storage_class(sc, TOPOLOGY_KEY, |params, key, lower, value| {
            let target = if lower == FSTYPE { CSI_FSTYPE } else { key };
            params.insert(key, target, value)
        })
    }

    fn inline_to_csi(&self, volume: &Volume, _pod_namespace: &str) -> Result<PersistentVolume> {
        let pd = volume
            .gce_persistent_disk
            .as_ref()
            .ok_or_else(|| missing_inline_source("gcePersistentDisk", volume))?;
        let read_only = pd.read_only.unwrap_or(false);
        let access_mode = if read_only {
            "ReadOnlyMany"
        } else {
            "ReadWriteOnce"
        };
        Ok(new_pv(
            format!("{DRIVER_NAME}-{}", pd.pd_name),
            PersistentVolumeSpec {
                csi: Some(CSIPersistentVolumeSource {
                    driver: DRIVER_NAME.to_owned(),
                    volume_handle: zonal_handle(UNSPECIFIED, UNSPECIFIED, &pd.pd_name),
                    read_only: omit_false(pd.read_only),
                    fs_type: omit_empty(pd.fs_type.clone()),
                    volume_attributes: Some(partition_attribute(pd.partition)),
                    ..Default::default()
                }),
                access_modes: Some(vec![access_mode.to_owned()]),
                volume_mode: Some("Filesystem".to_owned()),
                ..Default::default()
            },
        ))
    }

    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(pd) = pv.spec.as_mut().and_then(|s| s.gce_persistent_disk.take()) else {
            return Err(missing_pv_source("spec.gcePersistentDisk", &pv));
        };
        let labels = pv.metadata.labels.as_ref();
        let beta_zone = labels
            .and_then(|l| l.get(LABEL_BETA_ZONE))
            .filter(|z| !z.is_empty());
        let zone_label = beta_zone
            .or_else(|| labels.and_then(|l| l.get(LABEL_ZONE)))
            .map_or("", String::as_str);
        let zones: Vec<String> = zone_label
            .split(MULTI_ZONE_DELIMITER)
            .map(str::to_owned)
            .collect();
        let handle = match zones.as_slice() {
            [zone] if !zone.is_empty() => zonal_handle(UNSPECIFIED, zone, &pd.pd_name),
            [_, _, ..] => {
                let region = region_from_zones(&zones).map_err(TranslateError::Region)?;
                regional_handle(UNSPECIFIED, &region, &pd.pd_name)
            }
            _ => zonal_handle(UNSPECIFIED, UNSPECIFIED, &pd.pd_name),
        };
        topology::in_tree_to_csi(&mut pv, TOPOLOGY_KEY);
        let spec = spec_mut(&mut pv);
        spec.csi = Some(CSIPersistentVolumeSource {
            driver: DRIVER_NAME.to_owned(),
            volume_handle: handle,
            read_only: omit_false(pd.read_only),
            fs_type: omit_empty(pd.fs_type),
            volume_attributes: Some(partition_attribute(pd.partition)),
            ..Default::default()
        });
        spec.access_modes = backward_compatible_access_modes(spec.access_modes.take());
        Ok(pv)
    }

    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        let parts = handle_parts(&csi.volume_handle, "spec.csi.volumeHandle", "volume handle")?;
        let pd_name = parts[5].to_owned();
        let partition = match csi
            .volume_attributes
            .as_ref()
            .and_then(|a| a.get(PARTITION))
        {
            Some(p) if !p.is_empty() => {
                let n: i32 = p
                    .parse()
                    .map_err(|_| TranslateError::InvalidPartition { value: p.clone() })?;
                (n != 0).then_some(n)
            }
            _ => None,
        };
        topology::csi_to_in_tree(
            &mut pv,
            TOPOLOGY_KEY,
            Some(|z: &[String]| region_from_zones(z)),
        )
        .map_err(TranslateError::Region)?;
        spec_mut(&mut pv).gce_persistent_disk = Some(GCEPersistentDiskVolumeSource {
            pd_name,
            fs_type: omit_empty(csi.fs_type),
            read_only: omit_false(csi.read_only),
            partition,
        });
        Ok(pv)
    }

    fn repair_volume_handle(&self, volume_handle: &str, node_id: &str) -> Result<String> {
        let handle = handle_parts(volume_handle, "volume handle", "volume handle")?;
        if handle[1] != UNSPECIFIED {
            return Ok(volume_handle.to_owned());
        }
        let node: Vec<&str> = node_id.split('/').collect();
        if node.len() < HANDLE_MIN_PARTS {
            return Err(TranslateError::InvalidNodeId {
                node_id: node_id.to_owned(),
                reason: format!(
                    "node handle has {} '/'-separated elements, wanted {HANDLE_MIN_PARTS} or more",
                    node.len()
                ),
            });
        }
        let (node_project, node_zone) = (node[1], node[3]);
        let disk = handle[5];
        match handle[2] {
            "zones" => {
                let zone = if handle[3] == UNSPECIFIED {
                    node_zone
                } else {
                    handle[3]
                };
                Ok(zonal_handle(node_project, zone, disk))
            }
            "regions" => {
                let region = if handle[3] == UNSPECIFIED {
                    region_from_zones(&[node_zone.to_owned()]).map_err(TranslateError::Region)?
                } else {
                    handle[3].to_owned()
                };
                Ok(regional_handle(node_project, &region, disk))
            }
            other => Err(TranslateError::InvalidVolumeHandle {
                handle: volume_handle.to_owned(),
                field: "volume handle",
                reason: format!(
                    "expected volume handle to have zones or regions regionality value, got: {other}"
                ),
            }),
        }
    }
}
