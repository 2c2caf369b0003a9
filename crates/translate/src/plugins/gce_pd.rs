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
    plugin_identity, spec_mut,
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
    plugin_identity!("gcePersistentDisk", gce_persistent_disk);

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
        let (zone_key, zone_label) = match beta_zone {
            Some(zone) => (LABEL_BETA_ZONE, zone.as_str()),
            None => (
                LABEL_ZONE,
                labels
                    .and_then(|l| l.get(LABEL_ZONE))
                    .map_or("", String::as_str),
            ),
        };
        let zones: Vec<String> = zone_label
            .split(MULTI_ZONE_DELIMITER)
            .map(str::to_owned)
            .collect();
        let handle = match zones.as_slice() {
            [zone] if !zone.is_empty() => zonal_handle(UNSPECIFIED, zone, &pd.pd_name),
            [_, _, ..] => {
                let region = region_from_zones(&zones).map_err(|error| TranslateError::Region {
                    field: format!("metadata.labels[{zone_key}]"),
                    error,
                })?;
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
        )?;
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
                    region_from_zones(&[node_zone.to_owned()]).map_err(|error| {
                        TranslateError::Region {
                            field: "node ID".to_owned(),
                            error,
                        }
                    })?
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_support::{check, pv, sc, vol};

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    fn zone_term(key: &str, values: &[&str]) -> Value {
        json!({"matchLabelExpressions": [{"key": key, "values": values}]})
    }

    #[test]
    fn gce_storage_class_to_csi() {
        let cases = [
            Case {
                name: "gce_sc_params_copied_and_fstype_renamed",
                input: json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"type": "pd-ssd", "fstype": "ext4", "replication-type": "none"}}),
                want: Ok(
                    json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"type": "pd-ssd", "csi.storage.k8s.io/fstype": "ext4",
                        "replication-type": "none"}}),
                ),
            },
            Case {
                name: "gce_sc_keys_matched_case_insensitively_others_keep_case",
                input: json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"FSType": "xfs", "Type": "pd-standard"}}),
                want: Ok(
                    json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"csi.storage.k8s.io/fstype": "xfs", "Type": "pd-standard"}}),
                ),
            },
            Case {
                name: "gce_sc_without_parameters_omits_them_like_go",
                input: json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME}),
                want: Ok(json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME})),
            },
            Case {
                name: "gce_sc_empty_parameters_are_omitted_like_go",
                input: json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME, "parameters": {}}),
                want: Ok(json!({"metadata": {"name": "std"}, "provisioner": PLUGIN_NAME})),
            },
            Case {
                name: "gce_sc_only_zone_leaves_no_parameters",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "us-east1-b"}}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["us-east1-b"])]}),
                ),
            },
            Case {
                name: "gce_sc_zone_becomes_allowed_topologies",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"Zone": "us-east1-b", "type": "pd-ssd"}}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"type": "pd-ssd"},
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["us-east1-b"])]}),
                ),
            },
            Case {
                name: "gce_sc_empty_zone_still_generates_a_term",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "", "type": "pd-ssd"}}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"type": "pd-ssd"},
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &[""])]}),
                ),
            },
            Case {
                name: "gce_sc_zones_split_on_comma_untrimmed_unsorted_empties_kept",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"ZONES": "us-east1-c,, us-east1-b", "type": "pd-ssd"}}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"type": "pd-ssd"},
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["us-east1-c", "", " us-east1-b"])]}),
                ),
            },
            Case {
                name: "gce_sc_zone_with_allowed_topologies_is_rejected",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "us-east1-b"},
                    "allowedTopologies": [zone_term(LABEL_ZONE, &["us-east1-b"])]}),
                want: Err(TranslateError::ZonesWithAllowedTopologies),
            },
            Case {
                name: "gce_sc_zone_with_empty_allowed_topologies_is_accepted",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zones": "a,b"}, "allowedTopologies": []}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["a", "b"])]}),
                ),
            },
            Case {
                name: "gce_sc_zone_and_zones_together_are_rejected",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "a", "Zones": "a,b"}}),
                want: Err(TranslateError::ZoneAndZones {
                    zone: "zone".into(),
                    zones: "Zones".into(),
                }),
            },
            Case {
                name: "gce_sc_zone_spelled_twice_with_different_values_is_rejected",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "a", "Zone": "b"}}),
                want: Err(TranslateError::ConflictingParameters {
                    first: "Zone".into(),
                    second: "zone".into(),
                    target: "zone".into(),
                }),
            },
            Case {
                name: "gce_sc_zone_spelled_twice_with_one_value_is_accepted",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "a", "ZONE": "a"}}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["a"])]}),
                ),
            },
            Case {
                name: "gce_sc_fstype_and_csi_fstype_disagreeing_are_rejected",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"fstype": "ext4", "csi.storage.k8s.io/fstype": "xfs"}}),
                want: Err(TranslateError::ConflictingParameters {
                    first: "csi.storage.k8s.io/fstype".into(),
                    second: "fstype".into(),
                    target: CSI_FSTYPE.into(),
                }),
            },
            Case {
                name: "gce_sc_fstype_and_csi_fstype_agreeing_are_merged",
                input: json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"fstype": "ext4", "csi.storage.k8s.io/fstype": "ext4"}}),
                want: Ok(
                    json!({"metadata": {"name": "z"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"csi.storage.k8s.io/fstype": "ext4"}}),
                ),
            },
            Case {
                name: "gce_sc_allowed_topologies_zone_keys_renamed_others_kept_in_order",
                input: json!({"metadata": {"name": "t"}, "provisioner": PLUGIN_NAME,
                "allowedTopologies": [
                    {"matchLabelExpressions": [
                        {"key": "topology.kubernetes.io/region", "values": ["us-east1"]},
                        {"key": LABEL_ZONE, "values": ["us-east1-b", "us-east1-a"]},
                    ]},
                    {"matchLabelExpressions": [
                        {"key": LABEL_BETA_ZONE, "values": ["us-east1-c"]},
                        {"key": TOPOLOGY_KEY, "values": ["us-east1-d"]},
                        {"key": "example.com/rack", "values": ["r1"]},
                    ]},
                ]}),
                want: Ok(
                    json!({"metadata": {"name": "t"}, "provisioner": PLUGIN_NAME,
                    "allowedTopologies": [
                        {"matchLabelExpressions": [
                            {"key": "topology.kubernetes.io/region", "values": ["us-east1"]},
                            {"key": TOPOLOGY_KEY, "values": ["us-east1-b", "us-east1-a"]},
                        ]},
                        {"matchLabelExpressions": [
                            {"key": TOPOLOGY_KEY, "values": ["us-east1-c"]},
                            {"key": TOPOLOGY_KEY, "values": ["us-east1-d"]},
                            {"key": "example.com/rack", "values": ["r1"]},
                        ]},
                    ]}),
                ),
            },
            Case {
                name: "gce_sc_provisioner_is_not_rewritten",
                input: json!({"metadata": {"name": "p"}, "provisioner": "example.com/other",
                    "parameters": {"type": "pd-ssd"}}),
                want: Ok(
                    json!({"metadata": {"name": "p"}, "provisioner": "example.com/other",
                    "parameters": {"type": "pd-ssd"}}),
                ),
            },
        ];
        for case in cases {
            check(
                case.name,
                GcePd.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn gce_inline_volume_to_csi() {
        let cases = [
            Case {
                name: "gce_inline_defaults_give_rwo_filesystem_and_empty_partition",
                input: json!({"name": "data", "gcePersistentDisk": {"pdName": "disk-1"}}),
                want: Ok(
                    json!({"metadata": {"name": "pd.csi.storage.gke.io-disk-1"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                    "csi": {"driver": DRIVER_NAME,
                        "volumeHandle": "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/disk-1",
                        "volumeAttributes": {"partition": ""}}}}),
                ),
            },
            Case {
                name: "gce_inline_read_only_gives_rox_and_partition_number",
                input: json!({"name": "data", "gcePersistentDisk": {"pdName": "disk-1",
                    "readOnly": true, "fsType": "ext4", "partition": 3}}),
                want: Ok(
                    json!({"metadata": {"name": "pd.csi.storage.gke.io-disk-1"}, "spec": {
                    "accessModes": ["ReadOnlyMany"], "volumeMode": "Filesystem",
                    "csi": {"driver": DRIVER_NAME, "readOnly": true, "fsType": "ext4",
                        "volumeHandle": "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/disk-1",
                        "volumeAttributes": {"partition": "3"}}}}),
                ),
            },
            Case {
                name: "gce_inline_false_read_only_and_empty_fstype_are_omitted",
                input: json!({"name": "data", "gcePersistentDisk": {"pdName": "d",
                    "readOnly": false, "fsType": "", "partition": 0}}),
                want: Ok(
                    json!({"metadata": {"name": "pd.csi.storage.gke.io-d"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "volumeMode": "Filesystem",
                    "csi": {"driver": DRIVER_NAME,
                        "volumeHandle": "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/d",
                        "volumeAttributes": {"partition": ""}}}}),
                ),
            },
            Case {
                name: "gce_inline_without_gce_source_is_rejected",
                input: json!({"name": "data", "emptyDir": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "gcePersistentDisk",
                    object: "volume \"data\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                GcePd.inline_to_csi(&vol(case.input), "ns"),
                &case.want,
            );
        }
    }

    fn gce_pv(labels: Value, spec: Value) -> Value {
        let mut spec = spec;
        spec["gcePersistentDisk"] = json!({"pdName": "pd-1"});
        json!({"metadata": {"name": "pv-1", "labels": labels}, "spec": spec})
    }

    fn csi(handle: &str) -> Value {
        json!({"driver": DRIVER_NAME, "volumeHandle": handle, "volumeAttributes": {"partition": ""}})
    }

    fn required(terms: Value) -> Value {
        json!({"required": {"nodeSelectorTerms": terms}})
    }

    #[test]
    fn gce_pv_to_csi() {
        let zonal = "projects/UNSPECIFIED/zones/us-central1-a/disks/pd-1";
        let cases = [
            Case {
                name: "gce_pv_without_zone_labels_gets_unspecified_zone_and_no_affinity",
                input: json!({"metadata": {"name": "pv-1"},
                    "spec": {"gcePersistentDisk": {"pdName": "pd-1"}}}),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {
                    "csi": csi("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1")}})),
            },
            Case {
                name: "gce_pv_source_fields_are_carried",
                input: json!({"metadata": {"name": "pv-1"},
                    "spec": {"gcePersistentDisk": {"pdName": "pd-1", "fsType": "ext4",
                        "readOnly": true, "partition": 2},
                        "claimRef": {"namespace": "ns", "name": "claim"},
                        "capacity": {"storage": "10Gi"}}}),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {
                    "claimRef": {"namespace": "ns", "name": "claim"},
                    "capacity": {"storage": "10Gi"},
                    "csi": {"driver": DRIVER_NAME, "fsType": "ext4", "readOnly": true,
                        "volumeHandle": "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1",
                        "volumeAttributes": {"partition": "2"}}}})),
            },
            Case {
                name: "gce_ga_zone_label_gives_zonal_handle_and_csi_affinity",
                input: gce_pv(json!({LABEL_ZONE: "us-central1-a"}), json!({})),
                want: Ok(
                    json!({"metadata": {"name": "pv-1", "labels": {LABEL_ZONE: "us-central1-a"}},
                    "spec": {"csi": csi(zonal), "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In",
                            "values": ["us-central1-a"]}]}]))}}),
                ),
            },
            Case {
                name: "gce_beta_zone_label_gives_zonal_handle_and_csi_affinity",
                input: gce_pv(json!({LABEL_BETA_ZONE: "us-central1-a"}), json!({})),
                want: Ok(
                    json!({"metadata": {"name": "pv-1", "labels": {LABEL_BETA_ZONE: "us-central1-a"}},
                    "spec": {"csi": csi(zonal), "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In",
                            "values": ["us-central1-a"]}]}]))}}),
                ),
            },
            Case {
                name: "gce_regional_handle_from_multi_zone_label",
                input: gce_pv(
                    json!({LABEL_ZONE: "us-central1-c__us-central1-a"}),
                    json!({}),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1",
                        "labels": {LABEL_ZONE: "us-central1-c__us-central1-a"}},
                    "spec": {"csi": csi("projects/UNSPECIFIED/regions/us-central1/disks/pd-1"),
                        "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In",
                            "values": ["us-central1-a", "us-central1-c"]}]}]))}})),
            },
            Case {
                name: "gce_multi_zone_label_with_trailing_delimiter_is_rejected",
                input: gce_pv(json!({LABEL_ZONE: "us-central1-a__"}), json!({})),
                want: Err(TranslateError::region(
                    "metadata.labels[topology.kubernetes.io/zone]",
                    RegionError::UnexpectedGceZone(String::new()),
                )),
            },
            Case {
                name: "gce_multi_zone_label_across_regions_is_rejected",
                input: gce_pv(
                    json!({LABEL_ZONE: "us-central1-a__europe-west1-b"}),
                    json!({}),
                ),
                want: Err(TranslateError::region(
                    "metadata.labels[topology.kubernetes.io/zone]",
                    RegionError::MultipleRegions(vec!["europe-west1".into(), "us-central1".into()]),
                )),
            },
            Case {
                name: "gce_malformed_zone_in_multi_zone_label_is_rejected",
                input: gce_pv(json!({LABEL_ZONE: "us-central1-a__zone"}), json!({})),
                want: Err(TranslateError::region(
                    "metadata.labels[topology.kubernetes.io/zone]",
                    RegionError::UnexpectedGceZone("zone".into()),
                )),
            },
            Case {
                name: "gce_beta_label_wins_for_handle_while_ga_wins_for_affinity",
                input: gce_pv(
                    json!({LABEL_ZONE: "us-central1-b", LABEL_BETA_ZONE: "us-central1-a"}),
                    json!({}),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1",
                        "labels": {LABEL_ZONE: "us-central1-b", LABEL_BETA_ZONE: "us-central1-a"}},
                    "spec": {"csi": csi(zonal), "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In",
                            "values": ["us-central1-b"]}]}]))}})),
            },
            Case {
                name: "gce_empty_beta_label_falls_back_to_ga_for_handle",
                input: gce_pv(
                    json!({LABEL_ZONE: "us-central1-a", LABEL_BETA_ZONE: ""}),
                    json!({}),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1",
                        "labels": {LABEL_ZONE: "us-central1-a", LABEL_BETA_ZONE: ""}},
                    "spec": {"csi": csi(zonal), "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In",
                            "values": ["us-central1-a"]}]}]))}})),
            },
            Case {
                name: "gce_blank_zone_label_goes_verbatim_into_handle_without_affinity",
                input: gce_pv(json!({LABEL_ZONE: "  "}), json!({})),
                want: Ok(
                    json!({"metadata": {"name": "pv-1", "labels": {LABEL_ZONE: "  "}},
                    "spec": {"csi": csi("projects/UNSPECIFIED/zones/  /disks/pd-1")}}),
                ),
            },
            Case {
                name: "gce_empty_zone_label_gives_unspecified_handle_without_affinity",
                input: gce_pv(json!({LABEL_ZONE: ""}), json!({})),
                want: Ok(
                    json!({"metadata": {"name": "pv-1", "labels": {LABEL_ZONE: ""}},
                    "spec": {"csi": csi("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1")}}),
                ),
            },
            Case {
                name: "gce_existing_zone_affinity_is_renamed_not_added",
                input: gce_pv(
                    json!({LABEL_ZONE: "us-central1-a"}),
                    json!({"nodeAffinity": required(json!([
                    {"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]},
                        {"key": LABEL_ZONE, "operator": "In", "values": ["us-central1-b"]}]}]))}),
                ),
                want: Ok(
                    json!({"metadata": {"name": "pv-1", "labels": {LABEL_ZONE: "us-central1-a"}},
                    "spec": {"csi": csi(zonal), "nodeAffinity": required(json!([
                    {"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n1"]},
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-central1-b"]}]}]))}}),
                ),
            },
            Case {
                name: "gce_zone_label_is_appended_to_every_existing_term",
                input: gce_pv(
                    json!({LABEL_ZONE: "us-central1-a"}),
                    json!({"nodeAffinity": required(json!([
                    {"matchExpressions": [{"key": "h", "operator": "In", "values": ["n1"]}]},
                    {"matchExpressions": [{"key": "h", "operator": "In", "values": ["n2"]}]}]))}),
                ),
                want: Ok(
                    json!({"metadata": {"name": "pv-1", "labels": {LABEL_ZONE: "us-central1-a"}},
                    "spec": {"csi": csi(zonal), "nodeAffinity": required(json!([
                    {"matchExpressions": [{"key": "h", "operator": "In", "values": ["n1"]},
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-central1-a"]}]},
                    {"matchExpressions": [{"key": "h", "operator": "In", "values": ["n2"]},
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-central1-a"]}]}]))}}),
                ),
            },
            Case {
                name: "gce_beta_zone_and_region_affinity_become_csi_zone_and_ga_region",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {
                    "gcePersistentDisk": {"pdName": "pd-1"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        {"key": LABEL_BETA_ZONE, "operator": "In", "values": ["us-central1-a"]},
                        {"key": "failure-domain.beta.kubernetes.io/region", "operator": "In",
                            "values": ["us-central1"]}]}]))}}),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {
                    "csi": csi("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1"),
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-central1-a"]},
                        {"key": "topology.kubernetes.io/region", "operator": "In",
                            "values": ["us-central1"]}]}]))}})),
            },
            Case {
                name: "gce_ga_zone_with_beta_region_affinity_keeps_beta_region",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {
                    "gcePersistentDisk": {"pdName": "pd-1"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        {"key": LABEL_ZONE, "operator": "In", "values": ["us-central1-a"]},
                        {"key": "failure-domain.beta.kubernetes.io/region", "operator": "In",
                            "values": ["us-central1"]}]}]))}}),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {
                    "csi": csi("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1"),
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-central1-a"]},
                        {"key": "failure-domain.beta.kubernetes.io/region", "operator": "In",
                            "values": ["us-central1"]}]}]))}})),
            },
            Case {
                name: "gce_existing_csi_key_affinity_is_left_as_is",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {
                    "gcePersistentDisk": {"pdName": "pd-1"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-east1-a"]}]}]))}}),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {
                    "csi": csi("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1"),
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["us-east1-a"]}]}]))}})),
            },
            Case {
                name: "gce_zone_affinity_is_renamed_in_every_term",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {
                    "gcePersistentDisk": {"pdName": "pd-1"},
                    "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": LABEL_ZONE, "operator": "In", "values": ["europe-west1-f"]}]},
                        {"matchExpressions": [{"key": LABEL_ZONE, "operator": "In", "values": ["europe-west1-g"]}]}]))}}),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {
                    "csi": csi("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/pd-1"),
                    "nodeAffinity": required(json!([
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In", "values": ["europe-west1-f"]}]},
                        {"matchExpressions": [{"key": TOPOLOGY_KEY, "operator": "In", "values": ["europe-west1-g"]}]}]))}})),
            },
            Case {
                name: "gce_pv_without_gce_source_is_rejected",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {"nfs": {"server": "s", "path": "/"}}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.gcePersistentDisk",
                    object: "persistent volume \"pv-1\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, GcePd.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    #[test]
    fn gce_pv_access_modes_are_made_backward_compatible() {
        let cases: [(&str, Value, Value); 10] = [
            (
                "gce_rox_stays_rox",
                json!(["ReadOnlyMany"]),
                json!(["ReadOnlyMany"]),
            ),
            (
                "gce_rwo_stays_rwo",
                json!(["ReadWriteOnce"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_rwx_becomes_rwo",
                json!(["ReadWriteMany"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_rwo_and_rox_become_rwo",
                json!(["ReadWriteOnce", "ReadOnlyMany"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_rwx_and_rox_become_rwo",
                json!(["ReadWriteMany", "ReadOnlyMany"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_rwo_and_rwx_become_rwo",
                json!(["ReadWriteOnce", "ReadWriteMany"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_all_three_become_rwo",
                json!(["ReadWriteMany", "ReadOnlyMany", "ReadWriteOnce"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_rwop_becomes_rwo",
                json!(["ReadWriteOncePod"]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_empty_list_becomes_rwo",
                json!([]),
                json!(["ReadWriteOnce"]),
            ),
            (
                "gce_unknown_mode_becomes_rwo",
                json!(["Bogus"]),
                json!(["ReadWriteOnce"]),
            ),
        ];
        for (name, modes, want) in cases {
            let input = pv(json!({"metadata": {"name": "p"},
                "spec": {"accessModes": modes, "gcePersistentDisk": {"pdName": "d"}}}));
            let out = GcePd.pv_to_csi(input).unwrap();
            assert_eq!(
                crate::test_support::json(&out)["spec"]["accessModes"],
                want,
                "case {name:?}"
            );
        }
        let absent =
            pv(json!({"metadata": {"name": "p"}, "spec": {"gcePersistentDisk": {"pdName": "d"}}}));
        let out = GcePd.pv_to_csi(absent).unwrap();
        assert_eq!(
            out.spec.unwrap().access_modes,
            None,
            "gce_absent_access_modes_stay_absent"
        );
    }

    fn csi_pv(attributes: Value, affinity: Option<Value>, labels: Value) -> Value {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER_NAME,
            "volumeHandle": "projects/proj/zones/us-central1-a/disks/pd-1",
            "volumeAttributes": attributes}});
        if let Some(affinity) = affinity {
            spec["nodeAffinity"] = affinity;
        }
        json!({"metadata": {"name": "pv-1", "labels": labels}, "spec": spec})
    }

    fn in_tree(labels: Value, gce: Value, affinity: Option<Value>) -> Value {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "gcePersistentDisk": gce});
        if let Some(affinity) = affinity {
            spec["nodeAffinity"] = affinity;
        }
        json!({"metadata": {"name": "pv-1", "labels": labels}, "spec": spec})
    }

    fn expr(key: &str, values: &[&str]) -> Value {
        json!({"key": key, "operator": "In", "values": values})
    }

    #[test]
    fn gce_csi_pv_to_in_tree() {
        let region = crate::topology::LABEL_REGION;
        let beta_region = crate::topology::LABEL_BETA_REGION;
        let cases = [
            Case {
                name: "gce_rollback_takes_disk_name_from_handle_and_drops_project_zone",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "fsType": "ext4", "readOnly": true,
                    "volumeHandle": "projects/proj/zones/us-central1-a/disks/pd-1",
                    "volumeAttributes": {"partition": ""}}}}),
                want: Ok(
                    json!({"metadata": {"name": "pv-1"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "gcePersistentDisk": {"pdName": "pd-1", "fsType": "ext4", "readOnly": true}}}),
                ),
            },
            Case {
                name: "gce_rollback_parses_partition",
                input: csi_pv(json!({"partition": "4"}), None, json!({})),
                want: Ok(in_tree(
                    json!({}),
                    json!({"pdName": "pd-1", "partition": 4}),
                    None,
                )),
            },
            Case {
                name: "gce_rollback_accepts_signed_partition_like_atoi",
                input: csi_pv(json!({"partition": "-1"}), None, json!({})),
                want: Ok(in_tree(
                    json!({}),
                    json!({"pdName": "pd-1", "partition": -1}),
                    None,
                )),
            },
            Case {
                name: "gce_rollback_zero_partition_is_omitted",
                input: csi_pv(json!({"partition": "0"}), None, json!({})),
                want: Ok(in_tree(json!({}), json!({"pdName": "pd-1"}), None)),
            },
            Case {
                name: "gce_rollback_rejects_non_numeric_partition",
                input: csi_pv(json!({"partition": "abc"}), None, json!({})),
                want: Err(TranslateError::InvalidPartition {
                    value: "abc".into(),
                }),
            },
            Case {
                name: "gce_rollback_rejects_handle_with_too_few_elements",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "projects/proj/disks/pd-1"}}}),
                want: Err(TranslateError::InvalidVolumeHandle {
                    handle: "projects/proj/disks/pd-1".into(),
                    field: "spec.csi.volumeHandle",
                    reason: "volume handle has 4 '/'-separated elements, wanted 6 or more".into(),
                }),
            },
            Case {
                name: "gce_rollback_adds_ga_zone_region_affinity_and_labels",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr(TOPOLOGY_KEY, &["us-central1-a"])]}]))),
                    json!({}),
                ),
                want: Ok(in_tree(
                    json!({LABEL_ZONE: "us-central1-a", region: "us-central1"}),
                    json!({"pdName": "pd-1"}),
                    Some(required(json!([{"matchExpressions": [
                        expr(LABEL_ZONE, &["us-central1-a"]), expr(region, &["us-central1"])]}]))),
                )),
            },
            Case {
                name: "gce_rollback_uses_beta_family_when_pv_has_beta_label",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr(TOPOLOGY_KEY, &["us-central1-a"])]}]))),
                    json!({LABEL_BETA_ZONE: "us-central1-a"}),
                ),
                want: Ok(in_tree(
                    json!({LABEL_BETA_ZONE: "us-central1-a", beta_region: "us-central1"}),
                    json!({"pdName": "pd-1"}),
                    Some(required(json!([{"matchExpressions": [
                        expr(LABEL_BETA_ZONE, &["us-central1-a"]), expr(beta_region, &["us-central1"])]}]))),
                )),
            },
            Case {
                name: "gce_rollback_joins_multi_zone_label_and_never_overwrites_labels",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr(TOPOLOGY_KEY, &["us-central1-c", "us-central1-a"])]}]))),
                    json!({region: "keep-me"}),
                ),
                want: Ok(in_tree(
                    json!({LABEL_ZONE: "us-central1-a__us-central1-c", region: "keep-me"}),
                    json!({"pdName": "pd-1"}),
                    Some(required(json!([{"matchExpressions": [
                        expr(LABEL_ZONE, &["us-central1-c", "us-central1-a"]),
                        expr(region, &["us-central1"])]}]))),
                )),
            },
            Case {
                name: "gce_rollback_terms_in_two_regions_get_no_region_label",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr(TOPOLOGY_KEY, &["us-central1-a"])]},
                    {"matchExpressions": [expr(TOPOLOGY_KEY, &["europe-west1-b"])]}]))),
                    json!({}),
                ),
                want: Ok(in_tree(
                    json!({LABEL_ZONE: "europe-west1-b__us-central1-a"}),
                    json!({"pdName": "pd-1"}),
                    Some(required(json!([
                        {"matchExpressions": [expr(LABEL_ZONE, &["us-central1-a"]),
                            expr(region, &["us-central1"])]},
                        {"matchExpressions": [expr(LABEL_ZONE, &["europe-west1-b"]),
                            expr(region, &["europe-west1"])]}]))),
                )),
            },
            Case {
                name: "gce_rollback_term_with_existing_region_is_left_alone",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr(region, &["r"]), expr(TOPOLOGY_KEY, &["bad"])]}]))),
                    json!({}),
                ),
                want: Ok(in_tree(
                    json!({LABEL_ZONE: "bad", region: "r"}),
                    json!({"pdName": "pd-1"}),
                    Some(required(json!([
                        {"matchExpressions": [expr(region, &["r"]), expr(LABEL_ZONE, &["bad"])]}]))),
                )),
            },
            Case {
                name: "gce_rollback_term_without_zone_fails_region_derivation",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr("kubernetes.io/hostname", &["n1"])]}]))),
                    json!({}),
                ),
                want: Err(TranslateError::region(
                    "spec.nodeAffinity.required.nodeSelectorTerms[0]",
                    RegionError::NoZones,
                )),
            },
            Case {
                name: "gce_rollback_malformed_zone_fails_region_derivation",
                input: csi_pv(
                    json!({}),
                    Some(required(json!([
                    {"matchExpressions": [expr(TOPOLOGY_KEY, &["zone1"])]}]))),
                    json!({}),
                ),
                want: Err(TranslateError::region(
                    "spec.nodeAffinity.required.nodeSelectorTerms[0]",
                    RegionError::UnexpectedGceZone("zone1".into()),
                )),
            },
            Case {
                name: "gce_rollback_without_csi_source_is_rejected",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.csi",
                    object: "persistent volume \"pv-1\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                GcePd.csi_pv_to_in_tree(pv(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn gce_repair_volume_handle() {
        let node = "projects/node-proj/zones/us-central1-b/instances/vm-1";
        let cases: [(&str, &str, &str, Result<String>); 10] = [
            ("gce_repair_fully_specified_handle_is_unchanged",
                "projects/p/zones/us-central1-a/disks/d", node,
                Ok("projects/p/zones/us-central1-a/disks/d".into())),
            ("gce_repair_known_project_with_unspecified_zone_is_unchanged",
                "projects/p/zones/UNSPECIFIED/disks/d", "garbage",
                Ok("projects/p/zones/UNSPECIFIED/disks/d".into())),
            ("gce_repair_fills_project_keeps_zone",
                "projects/UNSPECIFIED/zones/us-central1-a/disks/d", node,
                Ok("projects/node-proj/zones/us-central1-a/disks/d".into())),
            ("gce_repair_fills_project_and_zone_from_node",
                "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/d", node,
                Ok("projects/node-proj/zones/us-central1-b/disks/d".into())),
            ("gce_repair_fills_project_keeps_region",
                "projects/UNSPECIFIED/regions/us-east1/disks/d", node,
                Ok("projects/node-proj/regions/us-east1/disks/d".into())),
            ("gce_repair_derives_region_from_node_zone",
                "projects/UNSPECIFIED/regions/UNSPECIFIED/disks/d", node,
                Ok("projects/node-proj/regions/us-central1/disks/d".into())),
            ("gce_repair_rejects_short_handle", "projects/UNSPECIFIED/disks/d", node,
                Err(TranslateError::InvalidVolumeHandle {
                    handle: "projects/UNSPECIFIED/disks/d".into(), field: "volume handle",
                    reason: "volume handle has 4 '/'-separated elements, wanted 6 or more".into() })),
            ("gce_repair_rejects_short_node_id",
                "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/d", "vm-1",
                Err(TranslateError::InvalidNodeId { node_id: "vm-1".into(),
                    reason: "node handle has 1 '/'-separated elements, wanted 6 or more".into() })),
            ("gce_repair_rejects_unknown_regionality",
                "projects/UNSPECIFIED/foo/bar/disks/d", node,
                Err(TranslateError::InvalidVolumeHandle {
                    handle: "projects/UNSPECIFIED/foo/bar/disks/d".into(), field: "volume handle",
                    reason: "expected volume handle to have zones or regions regionality value, got: foo"
                        .into() })),
            ("gce_repair_rejects_malformed_node_zone_for_region",
                "projects/UNSPECIFIED/regions/UNSPECIFIED/disks/d",
                "projects/p/zones/zone1/instances/vm",
                Err(TranslateError::region("node ID", RegionError::UnexpectedGceZone("zone1".into())))),
        ];
        for (name, handle, node_id, want) in cases {
            assert_eq!(
                GcePd.repair_volume_handle(handle, node_id),
                want,
                "case {name:?}"
            );
        }
    }

    #[test]
    fn gce_region_from_zones() {
        let cases: [(&str, &[&str], Result<String, RegionError>); 5] = [
            (
                "gce_region_one_zone",
                &["us-central1-a"],
                Ok("us-central1".into()),
            ),
            (
                "gce_region_same_region_zones",
                &["us-central1-a", "us-central1-f"],
                Ok("us-central1".into()),
            ),
            ("gce_region_no_zones", &[], Err(RegionError::NoZones)),
            (
                "gce_region_four_part_zone",
                &["us-central1-a-x"],
                Err(RegionError::UnexpectedGceZone("us-central1-a-x".into())),
            ),
            (
                "gce_region_two_regions",
                &["us-east1-b", "us-central1-a"],
                Err(RegionError::MultipleRegions(vec![
                    "us-central1".into(),
                    "us-east1".into(),
                ])),
            ),
        ];
        for (name, zones, want) in cases {
            let zones: Vec<String> = zones.iter().map(|z| (*z).to_owned()).collect();
            assert_eq!(region_from_zones(&zones), want, "case {name:?}");
        }
    }
}
