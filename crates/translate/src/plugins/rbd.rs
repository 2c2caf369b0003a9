//! Ceph RBD: `kubernetes.io/rbd` ⇄ `rbd.csi.ceph.com`, as in csi-translation-lib v0.30,
//! the last release that translated it (Kubernetes 1.31 removed the plugin).

use std::collections::BTreeMap;
use std::fmt::Write as _;

use k8s_openapi::api::core::v1::{
    CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeSpec, RBDPersistentVolumeSource,
    SecretReference, Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;
use md5::{Digest, Md5};

use crate::error::{Result, TranslateError};
use crate::parameters::{CSI_FSTYPE, FSTYPE, translate_parameters};
use crate::plugin::{
    InTreePlugin, access_modes_by_read_only, missing_inline_source, missing_pv_source, new_pv,
    omit_empty, omit_false, plugin_identity, spec_mut,
};

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/rbd";
/// CSI driver name.
pub const DRIVER_NAME: &str = "rbd.csi.ceph.com";
/// PV annotation with the handle of a volume the CSI driver already knows.
pub const VOLUME_HANDLE_ANNOTATION: &str = "rbd.csi.ceph.com/volume-handle";
const CLUSTER_ID: &str = "clusterID";
const IMAGE_FEATURES: &str = "imageFeatures";
const IMAGE_FORMAT: &str = "imageFormat";
const IMAGE_NAME: &str = "imageName";
const JOURNAL_POOL: &str = "journalPool";
const POOL: &str = "pool";
const MONITORS: &str = "monitors";
const ADMIN_ID: &str = "adminId";
const STATIC_VOLUME: &str = "staticVolume";
const MIGRATION: &str = "migration";
const TRUE: &str = "true";
const DEFAULT_POOL: &str = "rbd";
const DEFAULT_IMAGE_FEATURES: &str = "layering";
const DEFAULT_ADMIN_USER: &str = "admin";
const DEFAULT_SECRET_NAMESPACE: &str = "default";
const DYNAMIC_IMAGE_PREFIX: &str = "kubernetes-dynamic-pvc-";
const ADMIN_SECRET_OPERATIONS: [&str; 3] = ["provisioner", "node-stage", "controller-expand"];

/// The Ceph RBD translator.
#[derive(Debug, Clone, Copy)]
pub struct Rbd;

fn hex(bytes: &[u8]) -> String {
    bytes
        .iter()
        .fold(String::with_capacity(bytes.len() * 2), |mut s, b| {
            let _ = write!(s, "{b:02x}");
            s
        })
}

/// The ceph-csi cluster ID used for migrated volumes: MD5 of the monitor list.
pub fn cluster_id(monitors: &str) -> String {
    hex(&Md5::digest(monitors.as_bytes()))
}

/// `mig_mons-<md5(monitors)>_image-<image without the dynamic prefix>_<hex(pool)>`,
/// the handle ceph-csi decodes for volumes it did not create.
pub fn migration_volume_handle(monitors: &str, pool: &str, image: &str) -> String {
    let image = image.strip_prefix(DYNAMIC_IMAGE_PREFIX).unwrap_or(image);
    format!(
        "mig_mons-{}_image-{image}_{}",
        cluster_id(monitors),
        hex(pool.as_bytes())
    )
}

fn secret_key(op: &str, suffix: &str) -> String {
    format!("csi.storage.k8s.io/{op}-secret-{suffix}")
}

impl InTreePlugin for Rbd {
    plugin_identity!("rbd", rbd);

    /// Known parameters are renamed, unknown ones (`userId`, `userSecretName`…) dropped,
    /// defaults filled in, and the provisioner becomes `rbd.csi.ceph.com`.
    fn storage_class_to_csi(&self, mut sc: StorageClass) -> Result<StorageClass> {
        let params = translate_parameters(&sc, |params, key, lower, value| match lower {
            FSTYPE => params.insert(key, CSI_FSTYPE, value),
            "imagefeatures" => params.insert(key, IMAGE_FEATURES, value),
            "pool" => params.insert(key, POOL, value),
            "imageformat" => params.insert(key, IMAGE_FORMAT, value),
            "adminid" => params.insert(key, ADMIN_ID, value),
            "adminsecretname" | "adminsecretnamespace" => {
                let suffix = if lower == "adminsecretname" {
                    "name"
                } else {
                    "namespace"
                };
                ADMIN_SECRET_OPERATIONS
                    .iter()
                    .try_for_each(|op| params.insert(key, &secret_key(op, suffix), value))
            }
            "monitors" => {
                params.insert(key, MONITORS, value)?;
                params.insert(key, CLUSTER_ID, &cluster_id(value))
            }
            _ => Ok(()),
        })?;
        let mut params = params.into_map();
        let mut default = |k: String, v: &str| {
            params.entry(k).or_insert_with(|| v.to_owned());
        };
        default(MIGRATION.to_owned(), TRUE);
        default(POOL.to_owned(), DEFAULT_POOL);
        for op in ADMIN_SECRET_OPERATIONS {
            default(secret_key(op, "namespace"), DEFAULT_SECRET_NAMESPACE);
        }
        let is_blank = |k: &str| params.get(k).is_none_or(|v| v.is_empty());
        if is_blank(&secret_key("provisioner", "name")) {
            return Err(TranslateError::MissingCephAdminSecret);
        }
        if is_blank(MONITORS) {
            return Err(TranslateError::MissingCephMonitors);
        }
        sc.provisioner = DRIVER_NAME.to_owned();
        sc.parameters = Some(params);
        Ok(sc)
    }

    /// The handle is the bare image name; the secret (if any) is looked up in the pod's namespace.
    fn inline_to_csi(&self, volume: &Volume, pod_namespace: &str) -> Result<PersistentVolume> {
        let rbd = volume
            .rbd
            .as_ref()
            .ok_or_else(|| missing_inline_source("rbd", volume))?;
        let secret = match &rbd.secret_ref {
            Some(local) => SecretReference {
                name: omit_empty(Some(local.name.clone())),
                namespace: omit_empty(Some(pod_namespace.to_owned())),
            },
            None => SecretReference::default(),
        };
        let pool = rbd
            .pool
            .as_deref()
            .filter(|p| !p.is_empty())
            .unwrap_or(DEFAULT_POOL);
        let attributes = BTreeMap::from([
            (CLUSTER_ID.to_owned(), cluster_id(&rbd.monitors.join(","))),
            (POOL.to_owned(), pool.to_owned()),
            (STATIC_VOLUME.to_owned(), TRUE.to_owned()),
            (IMAGE_FEATURES.to_owned(), DEFAULT_IMAGE_FEATURES.to_owned()),
        ]);
        Ok(new_pv(
            format!("{DRIVER_NAME}-{}", rbd.image),
            PersistentVolumeSpec {
                csi: Some(CSIPersistentVolumeSource {
                    driver: DRIVER_NAME.to_owned(),
                    volume_handle: rbd.image.clone(),
                    fs_type: omit_empty(rbd.fs_type.clone()),
                    volume_attributes: Some(attributes),
                    node_stage_secret_ref: Some(secret.clone()),
                    controller_expand_secret_ref: Some(secret),
                    ..Default::default()
                }),
                access_modes: Some(access_modes_by_read_only(rbd.read_only.unwrap_or(false))),
                ..Default::default()
            },
        ))
    }

    /// A PV annotated with a ceph-csi handle keeps it; otherwise the migration handle is
    /// composed from monitors, pool and image. Access modes follow `readOnly`.
    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(rbd) = pv.spec.as_mut().and_then(|s| s.rbd.take()) else {
            return Err(missing_pv_source("spec.rbd", &pv));
        };
        let annotation = |key: &str| {
            pv.metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(key))
                .cloned()
                .unwrap_or_default()
        };
        let pool = rbd.pool.clone().unwrap_or_default();
        let mut attributes = BTreeMap::new();
        let handle = match annotation(VOLUME_HANDLE_ANNOTATION) {
            handle if !handle.is_empty() => {
                attributes.insert(CLUSTER_ID.to_owned(), annotation(CLUSTER_ID));
                handle
            }
            _ => {
                let monitors = rbd.monitors.join(",");
                attributes.insert(STATIC_VOLUME.to_owned(), TRUE.to_owned());
                attributes.insert(CLUSTER_ID.to_owned(), cluster_id(&monitors));
                migration_volume_handle(&monitors, &pool, &rbd.image)
            }
        };
        let features = annotation(IMAGE_FEATURES);
        attributes.extend([
            (IMAGE_NAME.to_owned(), rbd.image.clone()),
            (POOL.to_owned(), pool),
            (
                IMAGE_FEATURES.to_owned(),
                if features.is_empty() {
                    DEFAULT_IMAGE_FEATURES.to_owned()
                } else {
                    features
                },
            ),
            (IMAGE_FORMAT.to_owned(), annotation(IMAGE_FORMAT)),
            (JOURNAL_POOL.to_owned(), annotation(JOURNAL_POOL)),
            (MIGRATION.to_owned(), TRUE.to_owned()),
            ("tryOtherMounters".to_owned(), TRUE.to_owned()),
        ]);
        let spec = spec_mut(&mut pv);
        spec.access_modes = Some(access_modes_by_read_only(rbd.read_only.unwrap_or(false)));
        spec.csi = Some(CSIPersistentVolumeSource {
            driver: DRIVER_NAME.to_owned(),
            volume_handle: handle,
            fs_type: omit_empty(rbd.fs_type),
            volume_attributes: Some(attributes),
            node_stage_secret_ref: rbd.secret_ref.clone(),
            controller_expand_secret_ref: rbd.secret_ref,
            ..Default::default()
        });
        Ok(pv)
    }

    /// Monitors cannot be recovered (`[""]`); the handle and attributes go to annotations.
    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        let attribute = |key: &str| {
            csi.volume_attributes
                .as_ref()
                .and_then(|a| a.get(key))
                .cloned()
                .unwrap_or_default()
        };
        let user = Some(attribute(ADMIN_ID))
            .filter(|u| !u.is_empty())
            .unwrap_or_else(|| DEFAULT_ADMIN_USER.to_owned());
        let annotations = pv.metadata.annotations.get_or_insert_with(Default::default);
        annotations.insert(
            VOLUME_HANDLE_ANNOTATION.to_owned(),
            csi.volume_handle.clone(),
        );
        for key in [CLUSTER_ID, JOURNAL_POOL, IMAGE_FEATURES, IMAGE_FORMAT] {
            annotations.insert(key.to_owned(), attribute(key));
        }
        let source = RBDPersistentVolumeSource {
            monitors: vec![String::new()],
            image: attribute(IMAGE_NAME),
            fs_type: omit_empty(csi.fs_type.clone()),
            pool: omit_empty(Some(attribute(POOL))),
            user: Some(user),
            read_only: omit_false(csi.read_only),
            secret_ref: csi.node_stage_secret_ref.clone(),
            keyring: None,
        };
        spec_mut(&mut pv).rbd = Some(source);
        Ok(pv)
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

    const MONS: &str = "10.70.53.126:6789";
    const MONS_MD5: &str = "b7f67366bb43f32e07d8a261a7840da9";

    fn defaults(extra: Value) -> Value {
        let mut params = json!({"migration": "true", "pool": "rbd",
            "csi.storage.k8s.io/provisioner-secret-namespace": "default",
            "csi.storage.k8s.io/controller-expand-secret-namespace": "default",
            "csi.storage.k8s.io/node-stage-secret-namespace": "default"});
        for (k, v) in extra.as_object().into_iter().flatten() {
            params[k] = v.clone();
        }
        params
    }

    fn class(provisioner: &str, parameters: Value) -> Value {
        json!({"metadata": {"name": "ceph"}, "provisioner": provisioner, "parameters": parameters})
    }

    #[test]
    fn rbd_cluster_id_is_md5_of_monitors() {
        assert_eq!(cluster_id(MONS), MONS_MD5);
        assert_eq!(
            migration_volume_handle(MONS, "replicapool", "kubernetes-dynamic-pvc-e4111eb6"),
            format!("mig_mons-{MONS_MD5}_image-e4111eb6_7265706c696361706f6f6c")
        );
    }

    #[test]
    fn rbd_storage_class_to_csi() {
        let secrets = json!({"csi.storage.k8s.io/provisioner-secret-name": "admin-sec",
            "csi.storage.k8s.io/node-stage-secret-name": "admin-sec",
            "csi.storage.k8s.io/controller-expand-secret-name": "admin-sec"});
        let cases = [
            Case {
                name: "rbd_sc_minimal_gets_defaults_cluster_id_and_provisioner",
                input: class(
                    PLUGIN_NAME,
                    json!({"monitors": MONS, "adminSecretName": "admin-sec"}),
                ),
                want: Ok(class(
                    DRIVER_NAME,
                    defaults(json!({"monitors": MONS, "clusterID": MONS_MD5,
                    "csi.storage.k8s.io/provisioner-secret-name": "admin-sec",
                    "csi.storage.k8s.io/node-stage-secret-name": "admin-sec",
                    "csi.storage.k8s.io/controller-expand-secret-name": "admin-sec"})),
                )),
            },
            Case {
                name: "rbd_sc_renames_known_keys_and_drops_user_keys",
                input: class(
                    PLUGIN_NAME,
                    json!({"Monitors": MONS, "adminsecretname": "admin-sec",
                    "AdminSecretNamespace": "ceph", "adminId": "kube", "pool": "replicapool",
                    "imageFormat": "2", "ImageFeatures": "layering,fast-diff", "fsType": "xfs",
                    "userId": "u", "userSecretName": "us", "userSecretNamespace": "un"}),
                ),
                want: Ok(class(
                    DRIVER_NAME,
                    json!({"migration": "true", "pool": "replicapool",
                    "monitors": MONS, "clusterID": MONS_MD5, "adminId": "kube",
                    "imageFormat": "2", "imageFeatures": "layering,fast-diff",
                    "csi.storage.k8s.io/fstype": "xfs",
                    "csi.storage.k8s.io/provisioner-secret-name": "admin-sec",
                    "csi.storage.k8s.io/node-stage-secret-name": "admin-sec",
                    "csi.storage.k8s.io/controller-expand-secret-name": "admin-sec",
                    "csi.storage.k8s.io/provisioner-secret-namespace": "ceph",
                    "csi.storage.k8s.io/controller-expand-secret-namespace": "ceph",
                    "csi.storage.k8s.io/node-stage-secret-namespace": "ceph"}),
                )),
            },
            Case {
                name: "rbd_sc_without_admin_secret_is_rejected",
                input: class(PLUGIN_NAME, json!({"monitors": MONS})),
                want: Err(TranslateError::MissingCephAdminSecret),
            },
            Case {
                name: "rbd_sc_with_empty_admin_secret_is_rejected",
                input: class(
                    PLUGIN_NAME,
                    json!({"monitors": MONS, "adminSecretName": ""}),
                ),
                want: Err(TranslateError::MissingCephAdminSecret),
            },
            Case {
                name: "rbd_sc_csi_secret_keys_given_directly_are_dropped",
                input: class(PLUGIN_NAME, secrets),
                want: Err(TranslateError::MissingCephAdminSecret),
            },
            Case {
                name: "rbd_sc_without_monitors_is_rejected",
                input: class(PLUGIN_NAME, json!({"adminSecretName": "s"})),
                want: Err(TranslateError::MissingCephMonitors),
            },
            Case {
                name: "rbd_sc_with_empty_monitors_is_rejected",
                input: class(PLUGIN_NAME, json!({"monitors": "", "adminSecretName": "s"})),
                want: Err(TranslateError::MissingCephMonitors),
            },
        ];
        for case in cases {
            check(
                case.name,
                Rbd.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn rbd_inline_volume_to_csi() {
        let cases = [
            Case {
                name: "rbd_inline_uses_pod_namespace_for_secret_and_default_pool",
                input: json!({"name": "v", "rbd": {"monitors": [MONS], "image": "img",
                    "fsType": "ext4", "secretRef": {"name": "sec"}}}),
                want: Ok(
                    json!({"metadata": {"name": "rbd.csi.ceph.com-img"}, "spec": {
                    "accessModes": ["ReadWriteOnce"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "img", "fsType": "ext4",
                    "volumeAttributes": {"clusterID": MONS_MD5, "pool": "rbd",
                        "staticVolume": "true", "imageFeatures": "layering"},
                    "nodeStageSecretRef": {"name": "sec", "namespace": "team"},
                    "controllerExpandSecretRef": {"name": "sec", "namespace": "team"}}}}),
                ),
            },
            Case {
                name: "rbd_inline_without_secret_gets_empty_refs_and_read_only_rox",
                input: json!({"name": "v", "rbd": {"monitors": ["a:1", "b:2"], "image": "img",
                    "pool": "p", "readOnly": true}}),
                want: Ok(
                    json!({"metadata": {"name": "rbd.csi.ceph.com-img"}, "spec": {
                    "accessModes": ["ReadOnlyMany"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "img",
                    "volumeAttributes": {"clusterID": cluster_id("a:1,b:2"), "pool": "p",
                        "staticVolume": "true", "imageFeatures": "layering"},
                    "nodeStageSecretRef": {}, "controllerExpandSecretRef": {}}}}),
                ),
            },
            Case {
                name: "rbd_inline_without_rbd_is_rejected",
                input: json!({"name": "v"}),
                want: Err(TranslateError::MissingSource {
                    field: "rbd",
                    object: "volume \"v\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                Rbd.inline_to_csi(&vol(case.input), "team"),
                &case.want,
            );
        }
    }

    #[test]
    fn rbd_pv_to_csi() {
        let image = "kubernetes-dynamic-pvc-e4111eb6-4088-11ec-b823-0242ac110003";
        let handle = format!(
            "mig_mons-{MONS_MD5}_image-e4111eb6-4088-11ec-b823-0242ac110003_7265706c696361706f6f6c"
        );
        let cases = [
            Case {
                name: "rbd_pv_composes_migration_handle_and_replaces_access_modes",
                input: json!({"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteMany"],
                    "rbd": {"monitors": [MONS], "image": image, "pool": "replicapool",
                    "fsType": "ext4", "secretRef": {"name": "s", "namespace": "n"}}}}),
                want: Ok(
                    json!({"metadata": {"name": "p"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": handle, "fsType": "ext4",
                    "volumeAttributes": {"clusterID": MONS_MD5, "staticVolume": "true",
                        "imageName": image, "pool": "replicapool", "imageFeatures": "layering",
                        "imageFormat": "", "journalPool": "", "migration": "true",
                        "tryOtherMounters": "true"},
                    "nodeStageSecretRef": {"name": "s", "namespace": "n"},
                    "controllerExpandSecretRef": {"name": "s", "namespace": "n"}}}}),
                ),
            },
            Case {
                name: "rbd_pv_annotated_handle_and_attributes_are_reused",
                input: json!({"metadata": {"name": "p", "annotations": {
                        VOLUME_HANDLE_ANNOTATION: "0001-abc", "clusterID": "cid",
                        "imageFeatures": "layering,exclusive-lock", "imageFormat": "2",
                        "journalPool": "jp"}},
                    "spec": {"rbd": {"monitors": [MONS], "image": "img", "readOnly": true}}}),
                want: Ok(json!({"metadata": {"name": "p", "annotations": {
                        VOLUME_HANDLE_ANNOTATION: "0001-abc", "clusterID": "cid",
                        "imageFeatures": "layering,exclusive-lock", "imageFormat": "2",
                        "journalPool": "jp"}},
                    "spec": {"accessModes": ["ReadOnlyMany"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "0001-abc",
                    "volumeAttributes": {"clusterID": "cid", "imageName": "img", "pool": "",
                        "imageFeatures": "layering,exclusive-lock", "imageFormat": "2",
                        "journalPool": "jp", "migration": "true", "tryOtherMounters": "true"}}}})),
            },
            Case {
                name: "rbd_pv_without_rbd_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.rbd",
                    object: "persistent volume \"p\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, Rbd.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    #[test]
    fn rbd_csi_pv_to_in_tree() {
        let cases = [
            Case {
                name: "rbd_rollback_moves_handle_and_attributes_to_annotations",
                input: json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "0001-abc", "fsType": "ext4", "readOnly": true,
                    "volumeAttributes": {"imageName": "img", "pool": "replicapool", "adminId": "kube",
                        "clusterID": "cid", "imageFeatures": "layering"},
                    "nodeStageSecretRef": {"name": "s", "namespace": "n"}}}}),
                want: Ok(json!({"metadata": {"name": "p", "annotations": {
                        VOLUME_HANDLE_ANNOTATION: "0001-abc", "clusterID": "cid", "journalPool": "",
                        "imageFeatures": "layering", "imageFormat": ""}},
                    "spec": {"rbd": {"monitors": [""], "image": "img", "pool": "replicapool",
                    "user": "kube", "fsType": "ext4", "readOnly": true,
                    "secretRef": {"name": "s", "namespace": "n"}}}})),
            },
            Case {
                name: "rbd_rollback_defaults_user_to_admin",
                input: json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "h"}}}),
                want: Ok(json!({"metadata": {"name": "p", "annotations": {
                        VOLUME_HANDLE_ANNOTATION: "h", "clusterID": "", "journalPool": "",
                        "imageFeatures": "", "imageFormat": ""}},
                    "spec": {"rbd": {"monitors": [""], "image": "", "user": "admin"}}})),
            },
        ];
        for case in cases {
            check(case.name, Rbd.csi_pv_to_in_tree(pv(case.input)), &case.want);
        }
    }
}
