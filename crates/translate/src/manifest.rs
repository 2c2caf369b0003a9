//! Translation of whole Kubernetes manifests of any kind, `List`s included, in one direction.

use k8s_openapi::api::core::v1::{PersistentVolume, Pod};
use k8s_openapi::api::storage::v1::StorageClass;
use serde::de::DeserializeOwned;
use serde_json::Value;
use thiserror::Error;

use crate::{TranslateError, Translator};

/// Which way to translate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Direction {
    /// In-tree objects become CSI objects.
    ToCsi,
    /// CSI PersistentVolumes of migrated drivers go back to their in-tree source.
    ToInTree,
}

/// Why a manifest object could not be translated.
#[derive(Debug, Error)]
pub enum ManifestError {
    /// The object claims a kind we translate but does not have that kind's shape.
    #[error("{object}: field {field}: {message}")]
    Malformed {
        /// `Kind "name"` of the object.
        object: String,
        /// Path of the offending field, e.g. `spec.accessModes[0]`.
        field: String,
        /// What is wrong with it.
        message: String,
    },
    /// The translator refused the object.
    #[error("{object}: {error}")]
    Untranslatable {
        /// `Kind "name"` of the object.
        object: String,
        /// The translator's reason.
        error: TranslateError,
    },
    /// The translator refused one or more of a Pod's inline volumes (all are reported).
    #[error("{object}: {}", failures.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    InlineVolumes {
        /// `Pod "name"`.
        object: String,
        /// Every volume that could not be translated, in the Pod's order.
        failures: Vec<InlineVolumeFailure>,
    },
}

/// One inline volume of a Pod that could not be translated.
#[derive(Debug, Error)]
#[error("spec.volumes[{index}] ({name}): {error}")]
pub struct InlineVolumeFailure {
    /// Position in `spec.volumes`.
    pub index: usize,
    /// The volume's name.
    pub name: String,
    /// The translator's reason.
    pub error: TranslateError,
}

fn describe(object: &Value) -> String {
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or("object");
    match object.pointer("/metadata/name").and_then(Value::as_str) {
        Some(name) => format!("{kind} {name:?}"),
        None => kind.to_owned(),
    }
}

fn typed<T: DeserializeOwned>(object: &Value) -> Result<T, ManifestError> {
    serde_path_to_error::deserialize(object).map_err(|e| ManifestError::Malformed {
        object: describe(object),
        field: e.path().to_string(),
        message: e.into_inner().to_string(),
    })
}

fn untyped<T: serde::Serialize>(object: &T) -> Value {
    // Serializing k8s-openapi types into a Value cannot fail: all keys are strings.
    serde_json::to_value(object).unwrap_or(Value::Null)
}

/// Translates one manifest object. Objects with nothing to translate come back
/// unchanged; a `List` comes back as one `List` of translated items; a Pod with
/// inline in-tree volumes becomes the CSI PersistentVolumes those volumes map to
/// (the Pod itself cannot name them).
pub fn translate_manifest(
    translator: &Translator,
    object: &Value,
    direction: Direction,
) -> Result<Vec<Value>, ManifestError> {
    let fail = |error| ManifestError::Untranslatable {
        object: describe(object),
        error,
    };
    let kind = object
        .get("kind")
        .and_then(Value::as_str)
        .unwrap_or_default();
    let group_version = object
        .get("apiVersion")
        .and_then(Value::as_str)
        .unwrap_or_default();
    match (kind, group_version, direction) {
        (kind, _, _)
            if kind == "List" || (kind.ends_with("List") && object.get("items").is_some()) =>
        {
            // The API server's typed lists (`PersistentVolumeList`) leave `kind` and
            // `apiVersion` off their items: take them from the list.
            let item_kind = kind.strip_suffix("List").filter(|k| !k.is_empty());
            let mut items = Vec::new();
            for item in object
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                let translated = match (item_kind, item.get("kind")) {
                    (Some(item_kind), None) => {
                        let mut typed_item = item.clone();
                        if let Some(fields) = typed_item.as_object_mut() {
                            fields.insert("kind".to_owned(), item_kind.into());
                            fields
                                .entry("apiVersion")
                                .or_insert_with(|| group_version.into());
                        }
                        translate_manifest(translator, &typed_item, direction)?
                    }
                    _ => translate_manifest(translator, item, direction)?,
                };
                items.extend(translated);
            }
            let mut list = object.clone();
            list["items"] = Value::Array(items);
            Ok(vec![list])
        }
        ("StorageClass", "storage.k8s.io/v1", Direction::ToCsi) => {
            let sc: StorageClass = typed(object)?;
            if !translator.is_migratable_in_tree_plugin(&sc.provisioner) {
                return Ok(vec![object.clone()]);
            }
            let csi = translator
                .storage_class_to_csi(&sc.provisioner, &sc)
                .map_err(fail)?;
            Ok(vec![untyped(&csi)])
        }
        ("PersistentVolume", "v1", Direction::ToCsi) => {
            let pv: PersistentVolume = typed(object)?;
            match translator.plugin_for_pv(&pv).map_err(fail)? {
                Some(_) => Ok(vec![untyped(&translator.pv_to_csi(&pv).map_err(fail)?)]),
                None => Ok(vec![object.clone()]),
            }
        }
        ("PersistentVolume", "v1", Direction::ToInTree) => {
            let pv: PersistentVolume = typed(object)?;
            let driver = pv
                .spec
                .as_ref()
                .and_then(|s| s.csi.as_ref())
                .map(|c| c.driver.as_str());
            match driver {
                Some(driver) if translator.is_migrated_csi_driver(driver) => {
                    Ok(vec![untyped(&translator.pv_to_in_tree(&pv).map_err(fail)?)])
                }
                _ => Ok(vec![object.clone()]),
            }
        }
        ("Pod", "v1", Direction::ToCsi) => {
            let pod: Pod = typed(object)?;
            let namespace = pod.metadata.namespace.as_deref().unwrap_or_default();
            let mut pvs = Vec::new();
            let mut failures = Vec::new();
            let volumes = pod.spec.iter().flat_map(|s| s.volumes.iter().flatten());
            for (index, volume) in volumes.enumerate() {
                let translated = translator.plugin_for_inline(volume).and_then(|plugin| {
                    plugin
                        .map(|_| translator.inline_to_csi(volume, namespace))
                        .transpose()
                });
                match translated {
                    Ok(pv) => pvs.extend(pv.as_ref().map(untyped)),
                    Err(error) => failures.push(InlineVolumeFailure {
                        index,
                        name: volume.name.clone(),
                        error,
                    }),
                }
            }
            if !failures.is_empty() {
                return Err(ManifestError::InlineVolumes {
                    object: describe(object),
                    failures,
                });
            }
            Ok(if pvs.is_empty() {
                vec![object.clone()]
            } else {
                pvs
            })
        }
        _ => Ok(vec![object.clone()]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn run(object: Value, direction: Direction) -> Result<Vec<Value>, ManifestError> {
        translate_manifest(&Translator::new(), &object, direction)
    }

    #[test]
    fn other_kinds_pass_through_unchanged() {
        let cm = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}, "data": {"a": "b"}});
        assert_eq!(
            run(cm.clone(), Direction::ToCsi).ok(),
            Some(vec![cm.clone()])
        );
        let nfs = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "n"},
                         "spec": {"nfs": {"server": "s", "path": "/x"}}});
        assert_eq!(run(nfs.clone(), Direction::ToCsi).ok(), Some(vec![nfs]));
        let csi_sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
                            "metadata": {"name": "s"}, "provisioner": "ebs.csi.aws.com"});
        assert_eq!(
            run(csi_sc.clone(), Direction::ToCsi).ok(),
            Some(vec![csi_sc])
        );
    }

    #[test]
    fn list_items_are_translated_in_place() {
        let list = json!({"apiVersion": "v1", "kind": "List", "items": [
            {"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "a"},
             "spec": {"cinder": {"volumeID": "v-a"}}},
            {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}
        ]});
        let out = run(list, Direction::ToCsi).unwrap_or_default();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["items"][0]["spec"]["csi"]["volumeHandle"], "v-a");
        assert_eq!(out[0]["items"][1]["kind"], "ConfigMap");
    }

    #[test]
    fn typed_list_items_without_kind_take_it_from_the_list() {
        // What the API server returns for GET /api/v1/persistentvolumes.
        let list = json!({"apiVersion": "v1", "kind": "PersistentVolumeList", "items": [
            {"metadata": {"name": "a"}, "spec": {"cinder": {"volumeID": "v-a"}}}
        ]});
        let out = run(list, Direction::ToCsi).unwrap_or_default();
        assert_eq!(out[0]["kind"], "PersistentVolumeList");
        assert_eq!(out[0]["items"][0]["spec"]["csi"]["volumeHandle"], "v-a");
        assert_eq!(out[0]["items"][0]["spec"].get("cinder"), None);
    }

    #[test]
    fn every_untranslatable_inline_volume_is_named_by_its_path() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "web"},
        "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": [
            {"name": "ok", "cinder": {"volumeID": "v"}},
            {"name": "bad", "azureDisk": {"diskName": "d", "diskURI": "/x", "kind": "Dedicated"}},
            {"name": "bad2", "awsElasticBlockStore": {"volumeID": "aws://"}}
        ]}});
        let err = run(pod, Direction::ToCsi)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("Pod \"web\": spec.volumes[1] (bad): kind(Dedicated) is not supported"),
            "{err}"
        );
        assert!(
            err.contains("; spec.volumes[2] (bad2): invalid AWS EBS volume ID"),
            "{err}"
        );
        assert!(!err.contains("(ok)"), "{err}");
    }

    #[test]
    fn pod_becomes_the_pvs_of_its_inline_volumes() {
        let pod = json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p", "namespace": "ns"},
        "spec": {"containers": [{"name": "c", "image": "i"}], "volumes": [
            {"name": "a", "gcePersistentDisk": {"pdName": "disk-a"}},
            {"name": "b", "emptyDir": {}}
        ]}});
        let out = run(pod, Direction::ToCsi).unwrap_or_default();
        assert_eq!(out.len(), 1);
        assert_eq!(out[0]["metadata"]["name"], "pd.csi.storage.gke.io-disk-a");
    }

    #[test]
    fn malformed_object_names_the_field() {
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "bad"},
                        "spec": {"accessModes": [7]}});
        let err = run(pv, Direction::ToCsi)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(
            err.starts_with("PersistentVolume \"bad\": field spec.accessModes[0]:"),
            "{err}"
        );
    }

    #[test]
    fn csi_pv_goes_back_to_in_tree() {
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "x"},
                        "spec": {"csi": {"driver": "cinder.csi.openstack.org", "volumeHandle": "v"}}});
        let out = run(pv, Direction::ToInTree).unwrap_or_default();
        assert_eq!(out[0]["spec"]["cinder"]["volumeID"], "v");
    }
}
