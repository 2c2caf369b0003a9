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
    plugin_identity, spec_mut,
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
    plugin_identity!("vsphereVolume", vsphere_volume);

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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::TranslateError;
    use crate::test_support::{check, pv, sc, vol};
    use crate::topology::{LABEL_BETA_REGION, LABEL_BETA_ZONE, LABEL_REGION, LABEL_ZONE};

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    fn class(extra: Value) -> Value {
        let mut sc = json!({"metadata": {"name": "vs"}, "provisioner": PLUGIN_NAME});
        for (k, v) in extra.as_object().into_iter().flatten() {
            sc[k] = v.clone();
        }
        sc
    }

    #[test]
    fn vsphere_storage_class_to_csi() {
        let cases = [
            Case {
                name: "vsphere_sc_without_parameters_gets_csimigration",
                input: class(json!({})),
                want: Ok(class(json!({"parameters": {"csimigration": "true"}}))),
            },
            Case {
                name: "vsphere_sc_known_keys_become_lowercase_migrationparams",
                input: class(
                    json!({"parameters": {"StoragePolicyName": "gold", "Datastore": "ds1",
                    "diskformat": "thin", "hostFailuresToTolerate": "1", "forceProvisioning": "true",
                    "cacheReservation": "25", "diskStripes": "2", "objectSpaceReservation": "50",
                    "iopsLimit": "100", "FSType": "ext4"}}),
                ),
                want: Ok(class(json!({"parameters": {"storagepolicyname": "gold",
                    "datastore-migrationparam": "ds1", "diskformat-migrationparam": "thin",
                    "hostfailurestotolerate-migrationparam": "1",
                    "forceprovisioning-migrationparam": "true",
                    "cachereservation-migrationparam": "25", "diskstripes-migrationparam": "2",
                    "objectspacereservation-migrationparam": "50",
                    "iopslimit-migrationparam": "100", "csi.storage.k8s.io/fstype": "ext4",
                    "csimigration": "true"}}))),
            },
            Case {
                name: "vsphere_sc_unknown_keys_zone_and_csimigration_input_are_dropped",
                input: class(json!({"parameters": {"zone": "z1", "unknown": "x",
                    "csimigration": "false", "datastore-migrationparam": "ds"}})),
                want: Ok(class(json!({"parameters": {"csimigration": "true"}}))),
            },
            Case {
                name: "vsphere_sc_allowed_topologies_zone_renamed_region_kept",
                input: class(json!({"allowedTopologies": [{"matchLabelExpressions": [
                    {"key": LABEL_BETA_ZONE, "values": ["z1"]},
                    {"key": LABEL_REGION, "values": ["r1"]}]}]})),
                want: Ok(class(json!({"parameters": {"csimigration": "true"},
                    "allowedTopologies": [{"matchLabelExpressions": [
                    {"key": TOPOLOGY_ZONE_KEY, "values": ["z1"]},
                    {"key": LABEL_REGION, "values": ["r1"]}]}]}))),
            },
            Case {
                name: "vsphere_sc_policy_spelled_twice_differently_is_rejected",
                input: class(
                    json!({"parameters": {"storagePolicyName": "a", "storagepolicyname": "b"}}),
                ),
                want: Err(TranslateError::ConflictingParameters {
                    first: "storagePolicyName".into(),
                    second: "storagepolicyname".into(),
                    target: "storagepolicyname".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                VsphereVolume.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn vsphere_inline_volume_to_csi() {
        let path = "[vsanDatastore] kubevols/disk 1.vmdk";
        let cases = [
            Case {
                name: "vsphere_inline_name_keeps_spaces_and_brackets",
                input: json!({"name": "v", "vsphereVolume": {"volumePath": path, "fsType": "ext4"}}),
                want: Ok(
                    json!({"metadata": {"name": format!("csi.vsphere.vmware.com-{path}")},
                    "spec": {"accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": path, "fsType": "ext4"}}}),
                ),
            },
            Case {
                name: "vsphere_inline_storage_policy_becomes_attribute_instead_of_panicking",
                input: json!({"name": "v", "vsphereVolume": {"volumePath": path,
                    "storagePolicyName": "gold", "storagePolicyID": "id"}}),
                want: Ok(
                    json!({"metadata": {"name": format!("csi.vsphere.vmware.com-{path}")},
                    "spec": {"accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": path, "volumeAttributes": {"storagepolicyname": "gold"}}}}),
                ),
            },
            Case {
                name: "vsphere_inline_without_vsphere_is_rejected",
                input: json!({"name": "v"}),
                want: Err(TranslateError::MissingSource {
                    field: "vsphereVolume",
                    object: "volume \"v\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                VsphereVolume.inline_to_csi(&vol(case.input), ""),
                &case.want,
            );
        }
    }

    fn expr(key: &str, values: &[&str]) -> Value {
        json!({"key": key, "operator": "In", "values": values})
    }

    fn required(terms: Value) -> Value {
        json!({"required": {"nodeSelectorTerms": terms}})
    }

    #[test]
    fn vsphere_pv_to_csi() {
        let cases = [
            Case {
                name: "vsphere_pv_labels_become_zone_and_region_affinity_unsplit",
                input: json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "z1__z2", LABEL_REGION: "r1"}},
                    "spec": {"vsphereVolume": {"volumePath": "[ds] a.vmdk", "fsType": "ext4",
                    "storagePolicyName": "gold"}}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "z1__z2", LABEL_REGION: "r1"}},
                    "spec": {"csi": {"driver": DRIVER_NAME, "volumeHandle": "[ds] a.vmdk",
                        "fsType": "ext4", "volumeAttributes": {"storagepolicyname": "gold"}},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_ZONE_KEY, &["z1__z2"]), expr(TOPOLOGY_REGION_KEY, &["r1"])]}]))}}),
                ),
            },
            Case {
                name: "vsphere_pv_beta_affinity_moves_to_csi_keys_without_ga_upgrade",
                input: json!({"metadata": {"name": "p"}, "spec": {
                    "vsphereVolume": {"volumePath": "[ds] a.vmdk"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(LABEL_BETA_ZONE, &["z1"]), expr(LABEL_BETA_REGION, &["r1"])]}]))}}),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": "[ds] a.vmdk"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_ZONE_KEY, &["z1"]), expr(TOPOLOGY_REGION_KEY, &["r1"])]}]))}})),
            },
            Case {
                name: "vsphere_pv_read_only_is_not_carried_and_empty_labels_add_nothing",
                input: json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "", LABEL_REGION: "  "}},
                    "spec": {"vsphereVolume": {"volumePath": "[ds] a.vmdk"}}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "", LABEL_REGION: "  "}},
                    "spec": {"csi": {"driver": DRIVER_NAME, "volumeHandle": "[ds] a.vmdk"}}}),
                ),
            },
            Case {
                name: "vsphere_pv_without_vsphere_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.vsphereVolume",
                    object: "persistent volume \"p\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                VsphereVolume.pv_to_csi(pv(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn vsphere_csi_pv_to_in_tree() {
        let cases = [
            Case {
                name: "vsphere_rollback_path_from_initial_volume_filepath_and_first_sorted_labels",
                input: json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "uuid-1", "fsType": "ext4", "readOnly": true,
                    "volumeAttributes": {INITIAL_VOLUME_FILEPATH: "[ds] kubevols/a.vmdk",
                        STORAGE_POLICY_NAME: "gold"}},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_ZONE_KEY, &["z2", "z1"]), expr(TOPOLOGY_REGION_KEY, &["r1"])]}]))}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "z1", LABEL_REGION: "r1"}},
                    "spec": {"vsphereVolume": {"volumePath": "[ds] kubevols/a.vmdk", "fsType": "ext4"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(LABEL_ZONE, &["z2", "z1"]), expr(LABEL_REGION, &["r1"])]}]))}}),
                ),
            },
            Case {
                name: "vsphere_rollback_without_filepath_gives_empty_path_and_beta_family",
                input: json!({"metadata": {"name": "p", "labels": {LABEL_BETA_ZONE: "keep"}},
                    "spec": {"csi": {"driver": DRIVER_NAME, "volumeHandle": "uuid-1"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_ZONE_KEY, &["z1"]), expr(TOPOLOGY_REGION_KEY, &["r1"])]}]))}}),
                want: Ok(json!({"metadata": {"name": "p",
                        "labels": {LABEL_BETA_ZONE: "keep", LABEL_BETA_REGION: "r1"}},
                    "spec": {"vsphereVolume": {"volumePath": ""},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(LABEL_BETA_ZONE, &["z1"]), expr(LABEL_BETA_REGION, &["r1"])]}]))}})),
            },
        ];
        for case in cases {
            check(
                case.name,
                VsphereVolume.csi_pv_to_in_tree(pv(case.input)),
                &case.want,
            );
        }
    }
}
