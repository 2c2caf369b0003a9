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
    omit_false, plugin_identity, spec_mut,
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
    plugin_identity!("cinder", cinder);

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
        topology::csi_to_in_tree(&mut pv, TOPOLOGY_KEY, None)?;
        spec_mut(&mut pv).cinder = Some(CinderPersistentVolumeSource {
            volume_id: csi.volume_handle,
            fs_type: omit_empty(csi.fs_type),
            read_only: omit_false(csi.read_only),
            secret_ref: None,
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
    use crate::topology::{LABEL_BETA_REGION, LABEL_BETA_ZONE, LABEL_ZONE};

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    fn class(extra: Value) -> Value {
        let mut sc = json!({"metadata": {"name": "c"}, "provisioner": PLUGIN_NAME});
        for (k, v) in extra.as_object().into_iter().flatten() {
            sc[k] = v.clone();
        }
        sc
    }

    #[test]
    fn cinder_storage_class_to_csi() {
        let cases = [
            Case {
                name: "cinder_sc_fstype_renamed_zone_and_availability_copied",
                input: class(
                    json!({"parameters": {"FSType": "ext4", "availability": "nova",
                    "zone": "z1", "zones": "z1,z2", "type": "ssd"}}),
                ),
                want: Ok(class(
                    json!({"parameters": {"csi.storage.k8s.io/fstype": "ext4",
                    "availability": "nova", "zone": "z1", "zones": "z1,z2", "type": "ssd"}}),
                )),
            },
            Case {
                name: "cinder_sc_allowed_topologies_zone_keys_renamed",
                input: class(json!({"parameters": {"zone": "z1"}, "allowedTopologies": [
                    {"matchLabelExpressions": [{"key": LABEL_BETA_ZONE, "values": ["z1"]},
                        {"key": LABEL_BETA_REGION, "values": ["r1"]}]}]})),
                want: Ok(class(
                    json!({"parameters": {"zone": "z1"}, "allowedTopologies": [
                    {"matchLabelExpressions": [{"key": TOPOLOGY_KEY, "values": ["z1"]},
                        {"key": LABEL_BETA_REGION, "values": ["r1"]}]}]}),
                )),
            },
            Case {
                name: "cinder_sc_without_parameters_omits_them",
                input: class(json!({"parameters": {}})),
                want: Ok(class(json!({}))),
            },
            Case {
                name: "cinder_sc_fstype_conflict_is_rejected",
                input: class(json!({"parameters": {"fstype": "ext4", "FSTYPE": "xfs"}})),
                want: Err(TranslateError::ConflictingParameters {
                    first: "FSTYPE".into(),
                    second: "fstype".into(),
                    target: crate::parameters::CSI_FSTYPE.into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                Cinder.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn cinder_inline_volume_to_csi() {
        let cases = [
            Case {
                name: "cinder_inline_copies_id_fstype_read_only",
                input: json!({"name": "v", "cinder": {"volumeID": "abc", "fsType": "ext4",
                    "readOnly": true, "secretRef": {"name": "s"}}}),
                want: Ok(
                    json!({"metadata": {"name": "cinder.csi.openstack.org-abc"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "abc", "fsType": "ext4", "readOnly": true}}}),
                ),
            },
            Case {
                name: "cinder_inline_without_cinder_is_rejected",
                input: json!({"name": "v"}),
                want: Err(crate::TranslateError::MissingSource {
                    field: "cinder",
                    object: "volume \"v\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                Cinder.inline_to_csi(&vol(case.input), ""),
                &case.want,
            );
        }
    }

    #[test]
    fn cinder_pv_to_csi() {
        let cases = [
            Case {
                name: "cinder_pv_drops_secret_ref_and_adds_zone_affinity",
                input: json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "nova"}},
                    "spec": {"cinder": {"volumeID": "abc", "secretRef": {"name": "s", "namespace": "n"}}}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "nova"}},
                    "spec": {"csi": {"driver": DRIVER_NAME, "volumeHandle": "abc"},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["nova"]}]}]}}}}),
                ),
            },
            Case {
                name: "cinder_pv_without_cinder_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {}}),
                want: Err(crate::TranslateError::MissingSource {
                    field: "spec.cinder",
                    object: "persistent volume \"p\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, Cinder.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    #[test]
    fn cinder_csi_pv_to_in_tree() {
        let cases = [
            Case {
                name: "cinder_rollback_restores_zone_without_region",
                input: json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "abc", "fsType": "xfs", "readOnly": true},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": TOPOLOGY_KEY, "operator": "In", "values": ["nova", "az2"]}]}]}}}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "az2__nova"}},
                    "spec": {"cinder": {"volumeID": "abc", "fsType": "xfs", "readOnly": true},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": LABEL_ZONE, "operator": "In", "values": ["nova", "az2"]}]}]}}}}),
                ),
            },
            Case {
                name: "cinder_rollback_hostname_only_term_is_fine_without_region_parser",
                input: json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "abc"},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n"]}]}]}}}}),
                want: Ok(json!({"metadata": {"name": "p"},
                    "spec": {"cinder": {"volumeID": "abc"},
                    "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
                        {"key": "kubernetes.io/hostname", "operator": "In", "values": ["n"]}]}]}}}})),
            },
        ];
        for case in cases {
            check(
                case.name,
                Cinder.csi_pv_to_in_tree(pv(case.input)),
                &case.want,
            );
        }
    }
}
