//! Portworx: `kubernetes.io/portworx-volume` ⇄ `pxd.portworx.com`.

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeSpec, PortworxVolumeSource,
    SecretReference, Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::Result;
use crate::parameters::translate_parameters;
use crate::plugin::{
    InTreePlugin, access_modes_by_read_only, missing_inline_source, missing_pv_source, new_pv,
    omit_empty, omit_empty_map, omit_false, plugin_identity, spec_mut,
};

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/portworx-volume";
/// CSI driver name.
pub const DRIVER_NAME: &str = "pxd.portworx.com";
/// StorageClass parameter and PV annotation naming the OpenStorage auth secret.
pub const AUTH_SECRET_NAME: &str = "openstorage.io/auth-secret-name";
/// StorageClass parameter and PV annotation naming the auth secret's namespace.
pub const AUTH_SECRET_NAMESPACE: &str = "openstorage.io/auth-secret-namespace";

/// The CSI operations that receive the auth secret, as `csi.storage.k8s.io/<op>-secret-…`.
const SECRET_OPERATIONS: [&str; 6] = [
    "provisioner",
    "controller-publish",
    "node-stage",
    "node-publish",
    "controller-expand",
    "node-expand",
];

/// The Portworx translator.
#[derive(Debug, Clone, Copy)]
pub struct Portworx;

impl InTreePlugin for Portworx {
    plugin_identity!("portworxVolume", portworx_volume);

    /// The auth secret parameters fan out to every CSI secret parameter, and the
    /// provisioner becomes `pxd.portworx.com`.
    fn storage_class_to_csi(&self, mut sc: StorageClass) -> Result<StorageClass> {
        let params = translate_parameters(&sc, |params, key, lower, value| {
            let suffix = match lower {
                AUTH_SECRET_NAME => "name",
                AUTH_SECRET_NAMESPACE => "namespace",
                _ => return params.insert(key, key, value),
            };
            for op in SECRET_OPERATIONS {
                params.insert(
                    key,
                    &format!("csi.storage.k8s.io/{op}-secret-{suffix}"),
                    value,
                )?;
            }
            Ok(())
        })?;
        // Upstream keeps the old (then empty) map when nothing was translated; either way
        // Go's `omitempty` leaves an empty map out.
        sc.parameters = omit_empty_map(params.into_map());
        sc.provisioner = DRIVER_NAME.to_owned();
        Ok(sc)
    }

    /// Like upstream, `readOnly` only chooses the access mode; `spec.csi.readOnly` stays unset.
    fn inline_to_csi(&self, volume: &Volume, _pod_namespace: &str) -> Result<PersistentVolume> {
        let px = volume
            .portworx_volume
            .as_ref()
            .ok_or_else(|| missing_inline_source("portworxVolume", volume))?;
        Ok(new_pv(
            format!("{DRIVER_NAME}-{}", px.volume_id),
            PersistentVolumeSpec {
                csi: Some(CSIPersistentVolumeSource {
                    driver: DRIVER_NAME.to_owned(),
                    volume_handle: px.volume_id.clone(),
                    fs_type: omit_empty(px.fs_type.clone()),
                    ..Default::default()
                }),
                access_modes: Some(access_modes_by_read_only(px.read_only.unwrap_or(false))),
                ..Default::default()
            },
        ))
    }

    /// When the PV carries both auth annotations, their secret is used for every CSI
    /// operation that takes one. `readOnly` is not copied, as upstream.
    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(px) = pv.spec.as_mut().and_then(|s| s.portworx_volume.take()) else {
            return Err(missing_pv_source("spec.portworxVolume", &pv));
        };
        let annotations = pv.metadata.annotations.as_ref();
        let secret = match (
            annotations.and_then(|a| a.get(AUTH_SECRET_NAME)),
            annotations.and_then(|a| a.get(AUTH_SECRET_NAMESPACE)),
        ) {
            (Some(name), Some(namespace)) => Some(SecretReference {
                name: omit_empty(Some(name.clone())),
                namespace: omit_empty(Some(namespace.clone())),
            }),
            _ => None,
        };
        spec_mut(&mut pv).csi = Some(CSIPersistentVolumeSource {
            driver: DRIVER_NAME.to_owned(),
            volume_handle: px.volume_id,
            fs_type: omit_empty(px.fs_type),
            controller_publish_secret_ref: secret.clone(),
            node_stage_secret_ref: secret.clone(),
            node_publish_secret_ref: secret.clone(),
            controller_expand_secret_ref: secret.clone(),
            node_expand_secret_ref: secret,
            ..Default::default()
        });
        Ok(pv)
    }

    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        spec_mut(&mut pv).portworx_volume = Some(PortworxVolumeSource {
            volume_id: csi.volume_handle,
            fs_type: omit_empty(csi.fs_type),
            read_only: omit_false(csi.read_only),
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

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    fn secret_params(suffix: &str, value: &str) -> Value {
        let mut map = serde_json::Map::new();
        for op in SECRET_OPERATIONS {
            map.insert(
                format!("csi.storage.k8s.io/{op}-secret-{suffix}"),
                json!(value),
            );
        }
        Value::Object(map)
    }

    fn merged(parts: &[Value]) -> Value {
        let mut map = serde_json::Map::new();
        for part in parts {
            for (k, v) in part.as_object().into_iter().flatten() {
                map.insert(k.clone(), v.clone());
            }
        }
        Value::Object(map)
    }

    #[test]
    fn portworx_storage_class_to_csi() {
        let cases = [
            Case {
                name: "portworx_sc_auth_secret_fans_out_and_provisioner_is_rewritten",
                input: json!({"metadata": {"name": "px"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"repl": "3", "openstorage.io/auth-secret-name": "px-secret",
                        "OpenStorage.io/Auth-Secret-Namespace": "px-ns"}}),
                want: Ok(
                    json!({"metadata": {"name": "px"}, "provisioner": DRIVER_NAME,
                    "parameters": merged(&[json!({"repl": "3"}),
                        secret_params("name", "px-secret"), secret_params("namespace", "px-ns")])}),
                ),
            },
            Case {
                name: "portworx_sc_without_parameters_only_rewrites_provisioner",
                input: json!({"metadata": {"name": "px"}, "provisioner": "anything"}),
                want: Ok(json!({"metadata": {"name": "px"}, "provisioner": DRIVER_NAME})),
            },
            Case {
                name: "portworx_sc_empty_parameters_are_omitted",
                input: json!({"metadata": {"name": "px"}, "provisioner": PLUGIN_NAME, "parameters": {}}),
                want: Ok(json!({"metadata": {"name": "px"}, "provisioner": DRIVER_NAME})),
            },
            Case {
                name: "portworx_sc_other_keys_keep_their_case",
                input: json!({"metadata": {"name": "px"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"IO_Priority": "high"}}),
                want: Ok(
                    json!({"metadata": {"name": "px"}, "provisioner": DRIVER_NAME,
                    "parameters": {"IO_Priority": "high"}}),
                ),
            },
        ];
        for case in cases {
            check(
                case.name,
                Portworx.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn portworx_inline_volume_to_csi() {
        let cases = [
            Case {
                name: "portworx_inline_read_only_picks_rox_but_not_csi_read_only",
                input: json!({"name": "v", "portworxVolume": {"volumeID": "px-1", "fsType": "ext4",
                    "readOnly": true}}),
                want: Ok(
                    json!({"metadata": {"name": "pxd.portworx.com-px-1"}, "spec": {
                    "accessModes": ["ReadOnlyMany"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "px-1", "fsType": "ext4"}}}),
                ),
            },
            Case {
                name: "portworx_inline_writable_is_rwo",
                input: json!({"name": "v", "portworxVolume": {"volumeID": "px-1"}}),
                want: Ok(
                    json!({"metadata": {"name": "pxd.portworx.com-px-1"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "px-1"}}}),
                ),
            },
            Case {
                name: "portworx_inline_without_portworx_is_rejected",
                input: json!({"name": "v"}),
                want: Err(TranslateError::MissingSource {
                    field: "portworxVolume",
                    object: "volume \"v\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                Portworx.inline_to_csi(&vol(case.input), ""),
                &case.want,
            );
        }
    }

    fn px_pv(annotations: Value) -> Value {
        json!({"metadata": {"name": "p", "annotations": annotations}, "spec": {
            "accessModes": ["ReadWriteMany"],
            "portworxVolume": {"volumeID": "px-1", "fsType": "xfs", "readOnly": true}}})
    }

    fn csi_with_secret(secret: Option<Value>) -> Value {
        let mut csi = json!({"driver": DRIVER_NAME, "volumeHandle": "px-1", "fsType": "xfs"});
        if let Some(secret) = secret {
            for field in [
                "controllerPublishSecretRef",
                "nodeStageSecretRef",
                "nodePublishSecretRef",
                "controllerExpandSecretRef",
                "nodeExpandSecretRef",
            ] {
                csi[field] = secret.clone();
            }
        }
        csi
    }

    #[test]
    fn portworx_pv_to_csi() {
        let both = json!({AUTH_SECRET_NAME: "s", AUTH_SECRET_NAMESPACE: "n"});
        let empty = json!({AUTH_SECRET_NAME: "", AUTH_SECRET_NAMESPACE: ""});
        let one = json!({AUTH_SECRET_NAME: "s"});
        let cases = [
            Case {
                name: "portworx_pv_both_annotations_set_every_secret_ref",
                input: px_pv(both.clone()),
                want: Ok(
                    json!({"metadata": {"name": "p", "annotations": both}, "spec": {
                    "accessModes": ["ReadWriteMany"],
                    "csi": csi_with_secret(Some(json!({"name": "s", "namespace": "n"})))}}),
                ),
            },
            Case {
                name: "portworx_pv_empty_annotations_still_count_as_present",
                input: px_pv(empty.clone()),
                want: Ok(
                    json!({"metadata": {"name": "p", "annotations": empty}, "spec": {
                    "accessModes": ["ReadWriteMany"], "csi": csi_with_secret(Some(json!({})))}}),
                ),
            },
            Case {
                name: "portworx_pv_one_annotation_sets_no_secret_ref",
                input: px_pv(one.clone()),
                want: Ok(
                    json!({"metadata": {"name": "p", "annotations": one}, "spec": {
                    "accessModes": ["ReadWriteMany"], "csi": csi_with_secret(None)}}),
                ),
            },
            Case {
                name: "portworx_pv_without_portworx_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.portworxVolume",
                    object: "persistent volume \"p\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, Portworx.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    #[test]
    fn portworx_csi_pv_to_in_tree() {
        let input = json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
            "volumeHandle": "px-1", "fsType": "ext4", "readOnly": true,
            "nodeStageSecretRef": {"name": "s", "namespace": "n"}}}});
        let want = Ok(
            json!({"metadata": {"name": "p"}, "spec": {"portworxVolume": {
            "volumeID": "px-1", "fsType": "ext4", "readOnly": true}}}),
        );
        check(
            "portworx_rollback_copies_read_only_and_drops_secrets",
            Portworx.csi_pv_to_in_tree(pv(input)),
            &want,
        );
    }
}
