//! Property tests: round trips that upstream guarantees, and no panics or input mutation anywhere.

#![allow(clippy::unwrap_used)]

use k8s_openapi::api::core::v1::{PersistentVolume, Volume};
use k8s_openapi::api::storage::v1::StorageClass;
use proptest::prelude::*;
use serde_json::{Map, Value, json};

use crate::Translator;
use crate::jsonl::respond;
use crate::topology::{LABEL_BETA_REGION, LABEL_BETA_ZONE, LABEL_REGION, LABEL_ZONE};

const DRIVERS: [&str; 8] = [
    "pd.csi.storage.gke.io",
    "ebs.csi.aws.com",
    "cinder.csi.openstack.org",
    "disk.csi.azure.com",
    "file.csi.azure.com",
    "csi.vsphere.vmware.com",
    "pxd.portworx.com",
    "rbd.csi.ceph.com",
];

const PLUGINS: [&str; 8] = [
    "kubernetes.io/gce-pd",
    "kubernetes.io/aws-ebs",
    "kubernetes.io/cinder",
    "kubernetes.io/azure-disk",
    "kubernetes.io/azure-file",
    "kubernetes.io/vsphere-volume",
    "kubernetes.io/portworx-volume",
    "kubernetes.io/rbd",
];

/// Short ASCII, arbitrary Unicode (control characters included), or shapes the plugins parse.
fn text() -> BoxedStrategy<String> {
    prop_oneof![
        3 => "[a-z0-9-]{0,10}",
        2 => any::<String>(),
        1 => "[a-z]{2}-[a-z]{4,7}[0-9]{1,2}-[a-c]",
        1 => "[a-z]{2}-[a-z]{4}-[0-9][a-c]",
        1 => "[a-z0-9]{1,4}(__[a-z0-9 -]{0,6}){1,3}",
        1 => "(projects|UNSPECIFIED|zones|regions|/|#|aws://|vol-|http|%|:|@|\\?){0,8}",
        1 => Just(String::new()),
    ]
    .boxed()
}

fn opt<T: std::fmt::Debug + Clone>(
    s: impl Strategy<Value = T>,
) -> impl Strategy<Value = Option<T>> {
    prop::option::of(s)
}

fn topology_key() -> BoxedStrategy<String> {
    prop_oneof![
        Just(LABEL_ZONE.to_owned()),
        Just(LABEL_BETA_ZONE.to_owned()),
        Just(LABEL_REGION.to_owned()),
        Just(LABEL_BETA_REGION.to_owned()),
        Just("topology.gke.io/zone".to_owned()),
        Just("topology.ebs.csi.aws.com/zone".to_owned()),
        Just("topology.cinder.csi.openstack.org/zone".to_owned()),
        Just("topology.disk.csi.azure.com/zone".to_owned()),
        Just("topology.csi.vmware.com/zone".to_owned()),
        Just("topology.csi.vmware.com/region".to_owned()),
        text(),
    ]
    .boxed()
}

fn string_map(keys: impl Strategy<Value = String> + 'static) -> BoxedStrategy<Value> {
    prop::collection::btree_map(keys, text(), 0..5)
        .prop_map(|m| json!(m))
        .boxed()
}

fn node_affinity() -> BoxedStrategy<Value> {
    let expr = (topology_key(), prop::collection::vec(text(), 0..3), opt(Just("NotIn")))
        .prop_map(|(key, values, op)| json!({"key": key, "operator": op.unwrap_or("In"), "values": values}));
    prop::collection::vec(prop::collection::vec(expr, 0..3), 0..3)
        .prop_map(|terms| {
            let terms: Vec<Value> = terms
                .into_iter()
                .map(|e| json!({"matchExpressions": e}))
                .collect();
            json!({"required": {"nodeSelectorTerms": terms}})
        })
        .boxed()
}

fn secret_ref() -> BoxedStrategy<Value> {
    (text(), opt(text()))
        .prop_map(|(name, ns)| json!({"name": name, "namespace": ns}))
        .boxed()
}

fn set(object: &mut Map<String, Value>, key: &str, value: Option<Value>) {
    if let Some(value) = value {
        object.insert(key.to_owned(), value);
    }
}

/// `(field, source)` for one in-tree plugin, random but type-correct for both PVs and volumes.
fn in_tree_source() -> BoxedStrategy<(&'static str, Value)> {
    let common = || (opt(text()), opt(any::<bool>()));
    prop_oneof![
        (text(), common(), opt(any::<i32>())).prop_map(|(name, (fs, ro), part)| {
            ("gcePersistentDisk", json!({"pdName": name, "fsType": fs, "readOnly": ro, "partition": part}))
        }),
        (prop_oneof![text(), text().prop_map(|t| format!("aws://{t}")),
            (text(), text()).prop_map(|(z, v)| format!("aws://{z}/vol-{v}"))],
            common(), opt(any::<i32>()))
            .prop_map(|(id, (fs, ro), part)| ("awsElasticBlockStore",
                json!({"volumeID": id, "fsType": fs, "readOnly": ro, "partition": part}))),
        (text(), common(), opt(secret_ref())).prop_map(|(id, (fs, ro), secret)| {
            ("cinder", json!({"volumeID": id, "fsType": fs, "readOnly": ro, "secretRef": secret}))
        }),
        (text(), prop_oneof![text(),
            text().prop_map(|d| format!("/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/{d}"))],
            common(), opt(text()), opt(prop_oneof![Just("Managed".to_owned()), text()]))
            .prop_map(|(name, uri, (fs, ro), caching, kind)| ("azureDisk", json!({"diskName": name,
                "diskURI": uri, "fsType": fs, "readOnly": ro, "cachingMode": caching, "kind": kind}))),
        (text(), text(), opt(text()), opt(any::<bool>())).prop_map(|(secret, share, ns, ro)| {
            ("azureFile", json!({"secretName": secret, "shareName": share, "secretNamespace": ns, "readOnly": ro}))
        }),
        (text(), opt(text()), opt(text())).prop_map(|(path, fs, policy)| {
            ("vsphereVolume", json!({"volumePath": path, "fsType": fs, "storagePolicyName": policy}))
        }),
        (text(), common()).prop_map(|(id, (fs, ro))| {
            ("portworxVolume", json!({"volumeID": id, "fsType": fs, "readOnly": ro}))
        }),
        (prop::collection::vec(text(), 0..3), text(), opt(text()), common(), opt(secret_ref()))
            .prop_map(|(mons, image, pool, (fs, ro), secret)| ("rbd", json!({"monitors": mons,
                "image": image, "pool": pool, "fsType": fs, "readOnly": ro, "secretRef": secret}))),
    ]
    .boxed()
}

/// A CSI source for one of the migrated drivers (or an unknown one), with random attributes.
fn csi_source() -> BoxedStrategy<Value> {
    let attribute_key = prop_oneof![
        Just("partition".to_owned()),
        Just("cachingMode".to_owned()),
        Just("fsType".to_owned()),
        Just("shareName".to_owned()),
        Just("secretname".to_owned()),
        Just("secretNamespace".to_owned()),
        Just("initialvolumefilepath".to_owned()),
        Just("imageName".to_owned()),
        Just("pool".to_owned()),
        Just("adminId".to_owned()),
        Just("clusterID".to_owned()),
        text(),
    ];
    (
        prop_oneof![4 => prop::sample::select(DRIVERS.to_vec()).prop_map(str::to_owned), 1 => text()],
        prop_oneof![text(), "projects/[a-zU]{0,3}/(zones|regions|x)/[a-z0-9-]{0,14}/disks/[a-z]{0,3}",
            "[a-z]{0,3}#[a-z]{0,3}#[a-z]{0,3}(#[a-z]{0,3}){0,2}", "https?://[a-z]{0,3}/vhds/[a-z]{0,3}"],
        opt(text()),
        opt(any::<bool>()),
        opt(string_map(attribute_key)),
        opt(secret_ref()),
    )
        .prop_map(|(driver, handle, fs, ro, attrs, secret)| json!({"driver": driver, "volumeHandle": handle,
            "fsType": fs, "readOnly": ro, "volumeAttributes": attrs, "nodeStageSecretRef": secret}))
    .boxed()
}

fn label_key() -> BoxedStrategy<String> {
    prop_oneof![
        topology_key(),
        Just("kubernetes.io/azure-file-resource-group".to_owned()),
        Just("openstorage.io/auth-secret-name".to_owned()),
        Just("openstorage.io/auth-secret-namespace".to_owned()),
        Just("rbd.csi.ceph.com/volume-handle".to_owned()),
        Just("clusterID".to_owned()),
        Just("imageFeatures".to_owned()),
    ]
    .boxed()
}

fn access_modes() -> BoxedStrategy<Option<Vec<String>>> {
    let mode = prop::sample::select(vec![
        "ReadWriteOnce",
        "ReadOnlyMany",
        "ReadWriteMany",
        "ReadWriteOncePod",
    ]);
    opt(prop::collection::vec(mode.prop_map(str::to_owned), 0..4)).boxed()
}

/// The metadata and generic spec fields every generated PV carries.
fn pv_base() -> BoxedStrategy<Map<String, Value>> {
    (
        text(),
        opt(string_map(label_key())),
        opt(string_map(label_key())),
        opt(node_affinity()),
        access_modes(),
        opt(text()),
    )
        .prop_map(|(name, labels, annotations, affinity, modes, claim_ns)| {
            let mut metadata = Map::new();
            metadata.insert("name".into(), json!(name));
            set(&mut metadata, "labels", labels);
            set(&mut metadata, "annotations", annotations);
            let mut spec = Map::new();
            set(&mut spec, "nodeAffinity", affinity);
            set(&mut spec, "accessModes", modes.map(|m| json!(m)));
            set(
                &mut spec,
                "claimRef",
                claim_ns.map(|ns| json!({"name": "c", "namespace": ns})),
            );
            let mut pv = Map::new();
            pv.insert("metadata".into(), Value::Object(metadata));
            pv.insert("spec".into(), Value::Object(spec));
            pv
        })
        .boxed()
}

fn with_source(mut pv: Map<String, Value>, field: &str, source: Value) -> PersistentVolume {
    if let Some(spec) = pv.get_mut("spec").and_then(Value::as_object_mut) {
        spec.insert(field.to_owned(), source);
    }
    serde_json::from_value(Value::Object(pv)).unwrap()
}

fn in_tree_pv() -> BoxedStrategy<PersistentVolume> {
    (pv_base(), in_tree_source())
        .prop_map(|(pv, (field, source))| with_source(pv, field, source))
        .boxed()
}

fn csi_pv() -> BoxedStrategy<PersistentVolume> {
    (pv_base(), csi_source())
        .prop_map(|(pv, source)| with_source(pv, "csi", source))
        .boxed()
}

fn inline_volume() -> BoxedStrategy<Volume> {
    (text(), in_tree_source())
        .prop_map(|(name, (field, mut source))| {
            if let Some(s) = source.as_object_mut() {
                s.remove("secretNamespace");
                if let Some(secret) = s.get_mut("secretRef").and_then(Value::as_object_mut) {
                    secret.remove("namespace");
                }
            }
            serde_json::from_value(json!({"name": name, field: source})).unwrap()
        })
        .boxed()
}

fn storage_class() -> BoxedStrategy<StorageClass> {
    let parameter_key = prop_oneof![
        prop::sample::select(vec![
            "fstype",
            "FSType",
            "csi.storage.k8s.io/fstype",
            "zone",
            "Zone",
            "zones",
            "iopsPerGB",
            "allowautoiopspergbincrease",
            "storagePolicyName",
            "datastore",
            "csimigration",
            "openstorage.io/auth-secret-name",
            "openstorage.io/auth-secret-namespace",
            "monitors",
            "adminSecretName",
            "adminSecretNamespace",
            "pool",
            "imageFeatures",
            "userId"
        ])
        .prop_map(str::to_owned),
        text(),
    ];
    let topology = prop::collection::vec(
        prop::collection::vec((topology_key(), prop::collection::vec(text(), 0..3)), 0..3),
        0..3,
    )
    .prop_map(|terms| {
        json!(
            terms
                .into_iter()
                .map(|exprs| json!({"matchLabelExpressions": exprs.into_iter()
            .map(|(key, values)| json!({"key": key, "values": values})).collect::<Vec<_>>()}))
                .collect::<Vec<_>>()
        )
    });
    (
        text(),
        prop_oneof![
            prop::sample::select(PLUGINS.to_vec()).prop_map(str::to_owned),
            text()
        ],
        opt(string_map(parameter_key)),
        opt(topology),
    )
        .prop_map(|(name, provisioner, parameters, topologies)| {
            serde_json::from_value(
                json!({"metadata": {"name": name}, "provisioner": provisioner,
                "parameters": parameters, "allowedTopologies": topologies}),
            )
            .unwrap()
        })
        .boxed()
}

/// What upstream's `TestTranslationStability` checks: a PV without zone labels or node
/// affinity comes back from CSI exactly as it went in. GCE rewrites access modes, so
/// only "none" or `[ReadWriteOnce]` are generated; `/` in a disk name would split the
/// handle, and `aws://` IDs lose their zone, so neither is generated.
fn stable_pv(gce: bool) -> BoxedStrategy<PersistentVolume> {
    let id = if gce { "[^/]{0,20}" } else { "[^a].{0,20}|" };
    (
        any::<String>(),
        id,
        opt("[a-z0-9]{1,6}"),
        any::<bool>(),
        opt(1..=i32::MAX),
        prop::bool::ANY,
    )
        .prop_map(move |(name, id, fs, ro, partition, rwo)| {
            let mut source = json!({if gce {"pdName"} else {"volumeID"}: id});
            set(
                source.as_object_mut().unwrap(),
                "fsType",
                fs.map(Value::from),
            );
            set(
                source.as_object_mut().unwrap(),
                "readOnly",
                ro.then_some(json!(true)),
            );
            set(
                source.as_object_mut().unwrap(),
                "partition",
                partition.map(Value::from),
            );
            let field = if gce {
                "gcePersistentDisk"
            } else {
                "awsElasticBlockStore"
            };
            let mut spec = json!({field: source, "capacity": {"storage": "5Gi"},
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard"});
            if rwo {
                spec["accessModes"] = json!(["ReadWriteOnce"]);
            }
            serde_json::from_value(json!({"metadata": {"name": name}, "spec": spec})).unwrap()
        })
        .boxed()
}

/// A PV of each plugin but vSphere with only what names its disk (the fields a rollback
/// must give back), and those fields' JSON pointers under `spec`. vSphere is left out on
/// purpose: upstream's rollback reads `volumePath` only from the driver's
/// `initialvolumefilepath` attribute, which an in-tree PV translated here does not have.
fn identity_pv() -> BoxedStrategy<(PersistentVolume, &'static str, &'static [&'static str])> {
    let id = "[a-zA-Z0-9][a-zA-Z0-9._-]{0,20}";
    (0..7usize, id, id, id)
        .prop_map(|(plugin, a, b, c)| {
            let (field, source, pointers): (&str, Value, &'static [&'static str]) = match plugin {
                0 => ("gcePersistentDisk", json!({"pdName": a}), &["/pdName"]),
                1 => ("awsElasticBlockStore", json!({"volumeID": format!("vol-{a}")}), &["/volumeID"]),
                2 => ("cinder", json!({"volumeID": a}), &["/volumeID"]),
                3 => (
                    "azureDisk",
                    json!({"diskName": b, "diskURI": format!("/subscriptions/s/resourceGroups/{a}/providers/Microsoft.Compute/disks/{b}")}),
                    &["/diskName", "/diskURI"],
                ),
                4 => (
                    "azureFile",
                    json!({"shareName": a, "secretName": b, "secretNamespace": c}),
                    &["/shareName", "/secretName", "/secretNamespace"],
                ),
                5 => ("portworxVolume", json!({"volumeID": a}), &["/volumeID"]),
                _ => (
                    "rbd",
                    json!({"monitors": [format!("{a}:6789")], "image": b, "pool": c}),
                    // Monitors come back empty (upstream keeps only their hash, the
                    // clusterID); pool and image name the disk within the cluster.
                    &["/image", "/pool"],
                ),
            };
            let pv = serde_json::from_value(json!({"metadata": {"name": "pv"},
                "spec": {field: source, "capacity": {"storage": "1Gi"}}}))
            .unwrap();
            (pv, field, pointers)
        })
        .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// Beyond upstream's two exact round trips: whatever else a plugin loses on the way
    /// (translation.md §12), the fields that name the disk always come back, so a
    /// rollback reattaches the same disk.
    #[test]
    fn every_plugins_disk_identity_survives_a_round_trip((pv, field, pointers) in identity_pv()) {
        let t = Translator::new();
        let back = t.pv_to_in_tree(&t.pv_to_csi(&pv).unwrap()).unwrap();
        let before = serde_json::to_value(&pv).unwrap();
        let after = serde_json::to_value(&back).unwrap();
        for pointer in pointers {
            let at = format!("/spec/{field}{pointer}");
            prop_assert_eq!(before.pointer(&at), after.pointer(&at), "{}", at);
        }
    }

    #[test]
    fn label_less_gce_pd_survives_a_round_trip(pv in stable_pv(true)) {
        let t = Translator::new();
        let csi = t.pv_to_csi(&pv).unwrap();
        prop_assert_eq!(t.pv_to_in_tree(&csi).unwrap(), pv);
    }

    #[test]
    fn label_less_aws_ebs_survives_a_round_trip(pv in stable_pv(false)) {
        let t = Translator::new();
        let csi = t.pv_to_csi(&pv).unwrap();
        prop_assert_eq!(t.pv_to_in_tree(&csi).unwrap(), pv);
    }

    #[test]
    fn in_tree_pv_translation_never_panics_or_mutates(pv in in_tree_pv()) {
        let t = Translator::new();
        let before = pv.clone();
        if let Ok(csi) = t.pv_to_csi(&pv) {
            prop_assert!(csi.spec.as_ref().is_some_and(|s| s.csi.is_some()));
            let csi_before = csi.clone();
            let _ = t.pv_to_in_tree(&csi);
            prop_assert_eq!(csi, csi_before);
        }
        prop_assert_eq!(&pv, &before);
        // Every plugin, even one that does not own the source, must fail cleanly.
        for plugin in t.plugins() {
            let _ = plugin.pv_to_csi(pv.clone());
            let _ = plugin.csi_pv_to_in_tree(pv.clone());
        }
    }

    #[test]
    fn csi_pv_rollback_never_panics_or_mutates(pv in csi_pv()) {
        let t = Translator::new();
        let before = pv.clone();
        let _ = t.pv_to_in_tree(&pv);
        prop_assert_eq!(&pv, &before);
        let handle = pv.spec.as_ref().and_then(|s| s.csi.as_ref()).map(|c| c.volume_handle.clone());
        let node_id = pv.metadata.name.clone().unwrap_or_default();
        for plugin in t.plugins() {
            let _ = plugin.csi_pv_to_in_tree(pv.clone());
            let _ = plugin.repair_volume_handle(handle.as_deref().unwrap_or_default(), &node_id);
        }
    }

    #[test]
    fn inline_translation_never_panics_or_mutates(volume in inline_volume(), namespace in text()) {
        let t = Translator::new();
        let before = volume.clone();
        if let Ok(pv) = t.inline_to_csi(&volume, &namespace) {
            let mode = pv.spec.and_then(|s| s.volume_mode);
            prop_assert_eq!(mode.as_deref(), Some("Filesystem"));
        }
        prop_assert_eq!(&volume, &before);
        for plugin in t.plugins() {
            let _ = plugin.inline_to_csi(&volume, &namespace);
        }
    }

    #[test]
    fn storage_class_translation_never_panics_or_mutates(sc in storage_class()) {
        let t = Translator::new();
        let before = sc.clone();
        for plugin in PLUGINS {
            let _ = t.storage_class_to_csi(plugin, &sc);
        }
        let _ = t.storage_class_to_csi(&sc.provisioner, &sc);
        prop_assert_eq!(&sc, &before);
    }

    #[test]
    fn jsonl_answers_any_line_with_one_json_object(line in any::<String>()) {
        assert_one_object(&line)?;
    }

    #[test]
    fn jsonl_answers_any_request_with_one_json_object(
        op in prop::sample::select(vec!["sc_to_csi", "pv_to_csi", "pv_to_intree", "inline_to_csi", "nope"]),
        pv in prop_oneof![in_tree_pv(), csi_pv()],
        volume in inline_volume(),
        sc in storage_class(),
        namespace in opt(text()),
    ) {
        let object = match op {
            "sc_to_csi" => serde_json::to_value(&sc).unwrap(),
            "inline_to_csi" => serde_json::to_value(&volume).unwrap(),
            _ => serde_json::to_value(&pv).unwrap(),
        };
        let line = json!({"op": op, "object": object, "podNamespace": namespace}).to_string();
        assert_one_object(&line)?;
    }
}

fn assert_one_object(line: &str) -> Result<(), TestCaseError> {
    let mut out = Vec::new();
    respond(&Translator::new(), line, &mut out);
    prop_assert!(!out.contains(&b'\n'), "response spans lines");
    let value: Value = serde_json::from_slice(&out).map_err(|e| {
        TestCaseError::fail(format!("not JSON ({e}): {}", String::from_utf8_lossy(&out)))
    })?;
    let object = value
        .as_object()
        .ok_or_else(|| TestCaseError::fail("not an object"))?;
    match object.get("ok") {
        Some(Value::Bool(true)) => prop_assert!(object.get("object").is_some_and(Value::is_object)),
        Some(Value::Bool(false)) => prop_assert!(object.get("error").is_some_and(Value::is_string)),
        other => prop_assert!(false, "bad ok field {:?}", other),
    }
    Ok(())
}
