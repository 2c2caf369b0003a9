//! Starting points for the simulated cluster, built through the API as a user would:
//! nodes, CSI drivers, StorageClasses and workloads, then the controllers provision and
//! start everything, and each volume gets known data.

use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{Value, json};
use thiserror::Error;

use crate::api_error::ApiError;
use crate::cloud::Disk;
use crate::controllers;
use crate::store::{ListOptions, Store};

/// A named starting state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scenario {
    /// Nothing but the system namespaces.
    Empty,
    /// Three nodes and a 3-replica StatefulSet on `kubernetes.io/vsphere-volume`.
    VsphereStatefulset,
    /// Three nodes and a 3-replica StatefulSet on `kubernetes.io/aws-ebs`.
    EbsStatefulset,
    /// Every in-tree plugin: StatefulSets, a Deployment, bare claims, an inline volume,
    /// a static PV and a Released PV.
    Mixed,
    /// A cluster built to trip every `csi-migrate scan` rule that cluster objects can
    /// trip: missing and unregistered drivers, bad classes, static, Released and
    /// untranslatable PVs, an operator-owned StatefulSet, a GitOps-managed Deployment,
    /// inline volumes, a Windows node.
    EveryRule,
}

/// Why a scenario could not be set up.
#[derive(Debug, Error)]
pub enum ScenarioError {
    /// The name is not a known scenario.
    #[error(
        "unknown scenario {0:?} (known: empty, vsphere-statefulset, ebs-statefulset, mixed, every-rule)"
    )]
    Unknown(String),
    /// The API server refused an object of the scenario.
    #[error("creating {object}: {error}")]
    Create {
        /// `Kind/name` of the object.
        object: String,
        /// The API error.
        error: ApiError,
    },
    /// The workloads did not become Ready in time.
    #[error("the scenario's pods were not Running after {0:?}: {1}")]
    NotReady(Duration, String),
}

impl FromStr for Scenario {
    type Err = ScenarioError;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        match name {
            "empty" => Ok(Self::Empty),
            "vsphere-statefulset" => Ok(Self::VsphereStatefulset),
            "ebs-statefulset" => Ok(Self::EbsStatefulset),
            "mixed" => Ok(Self::Mixed),
            "every-rule" => Ok(Self::EveryRule),
            other => Err(ScenarioError::Unknown(other.to_owned())),
        }
    }
}

/// In-tree provisioner, class name, zone, CSI driver of each plugin the scenarios use.
const PLUGINS: &[(&str, &str, &str)] = &[
    (
        "kubernetes.io/vsphere-volume",
        "vsphere-thin",
        "csi.vsphere.vmware.com",
    ),
    ("kubernetes.io/aws-ebs", "gp2", "ebs.csi.aws.com"),
    ("kubernetes.io/gce-pd", "standard", "pd.csi.storage.gke.io"),
    (
        "kubernetes.io/azure-disk",
        "managed-premium",
        "disk.csi.azure.com",
    ),
    (
        "kubernetes.io/azure-file",
        "azurefile",
        "file.csi.azure.com",
    ),
    (
        "kubernetes.io/cinder",
        "cinder-standard",
        "cinder.csi.openstack.org",
    ),
    (
        "kubernetes.io/portworx-volume",
        "portworx-db",
        "pxd.portworx.com",
    ),
    ("kubernetes.io/rbd", "ceph-rbd", "rbd.csi.ceph.com"),
];

fn create(store: &Store, group: &str, plural: &str, object: Value) -> Result<Value, ScenarioError> {
    let describe = || {
        format!(
            "{}/{}",
            object.get("kind").and_then(Value::as_str).unwrap_or(plural),
            object
                .pointer("/metadata/name")
                .and_then(Value::as_str)
                .unwrap_or_default()
        )
    };
    let rt = store
        .resource(group, plural)
        .ok_or_else(|| ScenarioError::Create {
            object: describe(),
            error: ApiError::unknown_path(plural),
        })?;
    let namespace = object
        .pointer("/metadata/namespace")
        .and_then(Value::as_str)
        .map(str::to_owned);
    store
        .create(&rt, namespace.as_deref(), object.clone())
        .map_err(|error| ScenarioError::Create {
            object: describe(),
            error,
        })
}

/// The vSphere CSI driver's `CnsVSphereVolumeMigration` CRD (cluster-scoped, cns.vmware.com/v1alpha1).
fn volume_migration_crd(store: &Store) -> Result<(), ScenarioError> {
    create(
        store,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "cnsvspherevolumemigrations.cns.vmware.com"},
        "spec": {"group": "cns.vmware.com", "scope": "Cluster",
            "names": {"plural": "cnsvspherevolumemigrations", "singular": "cnsvspherevolumemigration",
                      "kind": "CnsVSphereVolumeMigration", "listKind": "CnsVSphereVolumeMigrationList"},
            "versions": [{"name": "v1alpha1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )?;
    Ok(())
}

fn nodes_and_drivers(store: &Store, plugins: &[&(&str, &str, &str)]) -> Result<(), ScenarioError> {
    if plugins
        .iter()
        .any(|(p, _, _)| *p == "kubernetes.io/vsphere-volume")
    {
        volume_migration_crd(store)?;
    }
    let migrated: Vec<&str> = plugins
        .iter()
        .map(|(p, _, _)| *p)
        .filter(|p| *p != "kubernetes.io/rbd")
        .collect();
    for (i, zone) in ["zone-a", "zone-b", "zone-c"].iter().enumerate() {
        let name = format!("node-{i}");
        create(
            store,
            "",
            "nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
            "labels": {"kubernetes.io/hostname": name, "topology.kubernetes.io/zone": zone,
                       "topology.kubernetes.io/region": "region-1"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )?;
        let drivers: Vec<Value> = plugins
            .iter()
            .map(|(_, _, driver)| json!({"name": driver, "nodeID": name, "topologyKeys": []}))
            .collect();
        create(
            store,
            "storage.k8s.io",
            "csinodes",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": name, "annotations": {"storage.alpha.kubernetes.io/migrated-plugins": migrated.join(",")}},
            "spec": {"drivers": drivers}}),
        )?;
    }
    for (_, _, driver) in plugins {
        create(
            store,
            "storage.k8s.io",
            "csidrivers",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": driver}, "spec": {"attachRequired": true, "podInfoOnMount": false}}),
        )?;
    }
    Ok(())
}

fn classes(store: &Store, plugins: &[&(&str, &str, &str)]) -> Result<(), ScenarioError> {
    for (provisioner, class, driver) in plugins {
        let parameters = match *provisioner {
            "kubernetes.io/vsphere-volume" => {
                json!({"diskformat": "thin", "storagePolicyName": "vSAN Default Storage Policy"})
            }
            "kubernetes.io/aws-ebs" => json!({"type": "gp2", "fsType": "ext4"}),
            "kubernetes.io/rbd" => {
                json!({"monitors": "10.0.0.1:6789", "adminSecretName": "ceph-admin",
                                          "adminSecretNamespace": "kube-system", "pool": "kube"})
            }
            _ => json!({}),
        };
        let mut object = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": class}, "provisioner": provisioner, "parameters": parameters,
            "reclaimPolicy": "Delete", "allowVolumeExpansion": true});
        if plugins.len() == 1 {
            object["metadata"]["annotations"] =
                json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        create(store, "storage.k8s.io", "storageclasses", object)?;
        // The CSI class a migration moves to.
        create(
            store,
            "storage.k8s.io",
            "storageclasses",
            json!({"apiVersion": "storage.k8s.io/v1",
            "kind": "StorageClass", "metadata": {"name": format!("{class}-csi")}, "provisioner": driver,
            "reclaimPolicy": "Delete", "allowVolumeExpansion": true}),
        )?;
    }
    Ok(())
}

fn statefulset(store: &Store, name: &str, class: &str, replicas: u32) -> Result<(), ScenarioError> {
    create(
        store,
        "apps",
        "statefulsets",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"serviceName": name, "replicas": replicas, "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/nginx-slim:0.27",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "storageClassName": class, "resources": {"requests": {"storage": "1Gi"}}}}]}}),
    )?;
    Ok(())
}

fn claim(store: &Store, name: &str, class: &str, access: &str) -> Result<(), ScenarioError> {
    create(
        store,
        "",
        "persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": [access], "storageClassName": class, "resources": {"requests": {"storage": "2Gi"}}}}),
    )?;
    Ok(())
}

fn mixed(store: &Store) -> Result<(), ScenarioError> {
    let all: Vec<&(&str, &str, &str)> = PLUGINS.iter().collect();
    nodes_and_drivers(store, &all)?;
    classes(store, &all)?;
    statefulset(store, "web", "vsphere-thin", 3)?;
    statefulset(store, "db", "gp2", 2)?;
    // A Deployment on a bare claim.
    claim(store, "reports", "standard", "ReadWriteOnce")?;
    create(
        store,
        "apps",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "reports", "namespace": "default"},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "reports"}},
            "template": {"metadata": {"labels": {"app": "reports"}}, "spec": {
                "containers": [{"name": "app", "image": "busybox"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "reports"}}]}}}}),
    )?;
    // Bare claims on the remaining plugins.
    claim(store, "shared-files", "azurefile", "ReadWriteMany")?;
    claim(store, "premium", "managed-premium", "ReadWriteOnce")?;
    claim(store, "openstack", "cinder-standard", "ReadWriteOnce")?;
    claim(store, "px", "portworx-db", "ReadWriteOnce")?;
    claim(store, "ceph", "ceph-rbd", "ReadWriteOnce")?;
    // A static in-tree PV bound by name, on a disk that already exists.
    let legacy = store
        .cloud()
        .create_disk("kubernetes.io/cinder", "legacy", 5 << 30, None);
    static_volume(
        store,
        "legacy-cinder",
        &legacy,
        "5Gi",
        "",
        json!({"namespace": "default", "name": "legacy"}),
    )?;
    create(
        store,
        "",
        "persistentvolumeclaims",
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "legacy", "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "", "volumeName": "legacy-cinder",
                 "resources": {"requests": {"storage": "5Gi"}}}}),
    )?;
    // A Released PV whose claim is long gone (Retain keeps its disk).
    let orphan =
        store
            .cloud()
            .create_disk("kubernetes.io/portworx-volume", "released", 1 << 30, None);
    static_volume(
        store,
        "released-portworx",
        &orphan,
        "1Gi",
        "portworx-db",
        json!({"namespace": "default", "name": "gone", "uid": "00000000-0000-4000-8000-000000000000"}),
    )?;
    // A pod with an inline in-tree volume.
    let inline = store
        .cloud()
        .create_disk("kubernetes.io/azure-disk", "inline", 1 << 30, None);
    create(
        store,
        "",
        "pods",
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "inline-azure", "namespace": "default"},
        "spec": {"containers": [{"name": "app", "image": "busybox"}],
                 "volumes": [with_source(json!({"name": "scratch"}), &inline)]}}),
    )?;
    Ok(())
}

/// The `every-rule` scenario (see [`Scenario::EveryRule`]); the rule each object is
/// there for is named next to it. Server-version rules follow the simulator's version.
fn every_rule(store: &Store) -> Result<(), ScenarioError> {
    let ns = "default";
    // Drivers: EBS, vSphere and Azure File are installed and registered on the Linux
    // nodes; GCE PD, Azure Disk and RBD volumes exist without their drivers
    // (CSI_DRIVER_MISSING, CSI_DRIVER_NOT_ON_NODE); the kubelets migrate only EBS and
    // vSphere (MIGRATED_PLUGINS_ANNOTATION_MISSING for Azure File and the others).
    let installed = [
        "ebs.csi.aws.com",
        "csi.vsphere.vmware.com",
        "file.csi.azure.com",
    ];
    volume_migration_crd(store)?;
    for driver in installed {
        create(
            store,
            "storage.k8s.io",
            "csidrivers",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver",
            "metadata": {"name": driver}, "spec": {"attachRequired": true, "podInfoOnMount": false}}),
        )?;
    }
    for (i, zone) in ["zone-a", "zone-b"].iter().enumerate() {
        let name = format!("node-{i}");
        create(
            store,
            "",
            "nodes",
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name,
            "labels": {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux",
                       "topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "region-1"}},
            "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
        )?;
        let drivers: Vec<Value> = installed
            .iter()
            .map(|driver| json!({"name": driver, "nodeID": name, "topologyKeys": []}))
            .collect();
        create(
            store,
            "storage.k8s.io",
            "csinodes",
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
            "metadata": {"name": name, "annotations": {"storage.alpha.kubernetes.io/migrated-plugins":
                "kubernetes.io/aws-ebs,kubernetes.io/vsphere-volume"}},
            "spec": {"drivers": drivers}}),
        )?;
    }
    // A Windows node without a CSINode (VSPHERE_WINDOWS_FILESYSTEM, CSI_DRIVER_NOT_ON_NODE);
    // it sorts after the Linux nodes, so the scheduler never picks it.
    create(
        store,
        "",
        "nodes",
        json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": "win-0",
        "annotations": {crate::controllers::csinode::UNMANAGED_ANNOTATION: "true"},
        "labels": {"kubernetes.io/hostname": "win-0", "kubernetes.io/os": "windows",
                   "topology.kubernetes.io/zone": "zone-a"}},
        "status": {"conditions": [{"type": "Ready", "status": "True"}]}}),
    )?;

    let class = |name: &str, provisioner: &str, parameters: Value| {
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": name}, "provisioner": provisioner, "parameters": parameters,
            "reclaimPolicy": "Delete"})
    };
    // DEFAULT_CLASS_IN_TREE, STS_TEMPLATE_IN_TREE_CLASS.
    let mut gp2 = class("gp2", "kubernetes.io/aws-ebs", json!({"type": "gp2"}));
    gp2["metadata"]["annotations"] = json!({"storageclass.kubernetes.io/is-default-class": "true"});
    create(store, "storage.k8s.io", "storageclasses", gp2)?;
    // VSPHERE_UNSUPPORTED_SC_PARAMETER.
    create(
        store,
        "storage.k8s.io",
        "storageclasses",
        class(
            "vsan-raw",
            "kubernetes.io/vsphere-volume",
            json!({"hostFailuresToTolerate": "1", "diskformat": "zeroedthick"}),
        ),
    )?;
    // CSI_CLASS_HAS_MIGRATION_PARAMETERS.
    create(
        store,
        "storage.k8s.io",
        "storageclasses",
        class(
            "vsphere-csi",
            "csi.vsphere.vmware.com",
            json!({"storagepolicyname": "gold", "csimigration": "true"}),
        ),
    )?;
    // UNTRANSLATABLE_STORAGE_CLASS: both `zone` and `zones`.
    create(
        store,
        "storage.k8s.io",
        "storageclasses",
        class(
            "pd-bad",
            "kubernetes.io/gce-pd",
            json!({"zone": "europe-west1-b", "zones": "europe-west1-b,europe-west1-c"}),
        ),
    )?;

    let pv = |name: &str, access: &str, extra: Value| {
        let mut spec = json!({"capacity": {"storage": "1Gi"}, "accessModes": [access],
            "persistentVolumeReclaimPolicy": "Retain"});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec})
    };
    let bound_claim = |name: &str, volume: &str, access: &str, extra: Value| {
        let mut spec = json!({"accessModes": [access], "storageClassName": "", "volumeName": volume,
            "resources": {"requests": {"storage": "1Gi"}}});
        if let (Some(spec), Some(extra)) = (spec.as_object_mut(), extra.as_object()) {
            spec.extend(extra.clone());
        }
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": name, "namespace": ns}, "spec": spec})
    };
    // PV_RECLAIM_DELETE (and the GitOps Deployment's claim).
    create(
        store,
        "",
        "persistentvolumes",
        pv(
            "ebs-web",
            "ReadWriteOnce",
            json!({"persistentVolumeReclaimPolicy": "Delete", "storageClassName": "gp2",
                "claimRef": {"namespace": ns, "name": "web-data"},
                "awsElasticBlockStore": {"volumeID": "vol-0web"}}),
        ),
    )?;
    create(
        store,
        "",
        "persistentvolumeclaims",
        bound_claim(
            "web-data",
            "ebs-web",
            "ReadWriteOnce",
            json!({"storageClassName": "gp2"}),
        ),
    )?;
    // PV_RELEASED_OR_FAILED: its claim is gone; Retain keeps the disk.
    let released = store
        .cloud()
        .create_disk("kubernetes.io/aws-ebs", "released", 1 << 30, None);
    static_volume(
        store,
        "ebs-released",
        &released,
        "1Gi",
        "",
        json!({"namespace": ns, "name": "gone", "uid": "00000000-0000-4000-8000-000000000001"}),
    )?;
    // PLUGIN_TRANSLATION_REMOVED (RBD, 1.31), IN_TREE_PLUGIN_REMOVED.
    create(
        store,
        "",
        "persistentvolumes",
        pv(
            "rbd-old",
            "ReadWriteOnce",
            json!({"rbd": {"monitors": ["10.0.0.1:6789"], "pool": "rbd", "image": "old-image", "user": "admin"}}),
        ),
    )?;
    // UNTRANSLATABLE_PV: an unmanaged (blob) Azure disk.
    create(
        store,
        "",
        "persistentvolumes",
        pv(
            "azure-blob",
            "ReadWriteOnce",
            json!({"azureDisk": {"diskName": "legacy",
                "diskURI": "https://acct.blob.core.windows.net/vhds/legacy.vhd", "kind": "Dedicated"}}),
        ),
    )?;
    // GCE_HANDLE_UNSPECIFIED_PROJECT: no zone label, no PD node plugin.
    create(
        store,
        "",
        "persistentvolumes",
        pv(
            "gce-nozone",
            "ReadWriteOnce",
            json!({"gcePersistentDisk": {"pdName": "nozone-disk"}}),
        ),
    )?;
    // AZURE_FILE_SECRET_MISSING.
    create(
        store,
        "",
        "persistentvolumes",
        pv(
            "af-share",
            "ReadWriteMany",
            json!({"claimRef": {"namespace": ns, "name": "files"},
                "azureFile": {"secretName": "missing-secret", "shareName": "share"}}),
        ),
    )?;
    create(
        store,
        "",
        "persistentvolumeclaims",
        bound_claim("files", "af-share", "ReadWriteMany", json!({})),
    )?;
    // VSPHERE_RAW_BLOCK_VOLUME, VSPHERE_WINDOWS_FILESYSTEM (NTFS),
    // STATIC_PV_MISSING_PROVISIONER_ANNOTATION and, for its claim,
    // STATIC_PVC_MISSING_PROVISIONER_ANNOTATION.
    create(
        store,
        "",
        "persistentvolumes",
        pv(
            "vs-static",
            "ReadWriteOnce",
            json!({"volumeMode": "Block", "claimRef": {"namespace": ns, "name": "vs-claim"},
                "vsphereVolume": {"volumePath": "[ds1] kubevols/static.vmdk", "fsType": "ntfs"}}),
        ),
    )?;
    create(
        store,
        "",
        "persistentvolumeclaims",
        bound_claim(
            "vs-claim",
            "vs-static",
            "ReadWriteOnce",
            json!({"volumeMode": "Block"}),
        ),
    )?;

    // OWNED_BY_OPERATOR: the StatefulSet belongs to a custom resource (which exists,
    // or the garbage collector would delete the set). STS_RETENTION_DELETES_PVCS,
    // NO_PDB (no budget selects its pods).
    create(
        store,
        "apiextensions.k8s.io",
        "customresourcedefinitions",
        json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": "postgresqls.acid.zalan.do"},
        "spec": {"group": "acid.zalan.do", "scope": "Namespaced",
            "names": {"plural": "postgresqls", "singular": "postgresql", "kind": "postgresql", "listKind": "postgresqlList"},
            "versions": [{"name": "v1", "served": true, "storage": true,
                "schema": {"openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": true}}}]}}),
    )?;
    let owner = create(
        store,
        "acid.zalan.do",
        "postgresqls",
        json!({"apiVersion": "acid.zalan.do/v1", "kind": "postgresql",
        "metadata": {"name": "db", "namespace": ns}, "spec": {"numberOfInstances": 2}}),
    )?;
    let owner_uid = owner
        .pointer("/metadata/uid")
        .and_then(Value::as_str)
        .unwrap_or_default();
    create(
        store,
        "apps",
        "statefulsets",
        json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "db", "namespace": ns, "ownerReferences": [{"apiVersion": "acid.zalan.do/v1",
            "kind": "postgresql", "name": "db", "uid": owner_uid, "controller": true}]},
        "spec": {"serviceName": "db", "replicas": 2, "selector": {"matchLabels": {"app": "db"}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"},
            "template": {"metadata": {"labels": {"app": "db"}},
                "spec": {"containers": [{"name": "postgres", "image": "postgres:16",
                    "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                "storageClassName": "gp2", "resources": {"requests": {"storage": "1Gi"}}}}]}}),
    )?;
    // MANAGED_BY_GITOPS, SINGLE_REPLICA.
    create(
        store,
        "apps",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "web", "namespace": ns, "labels": {"argocd.argoproj.io/instance": "shop"}},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {
                "containers": [{"name": "web", "image": "nginx"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": "web-data"}},
                            {"name": "files", "persistentVolumeClaim": {"claimName": "files"}}]}}}}),
    )?;
    // INLINE_IN_TREE_VOLUME, VSPHERE_INLINE_VOLUME (with a budget, so not NO_PDB).
    create(
        store,
        "apps",
        "deployments",
        json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "legacy"}},
            "template": {"metadata": {"labels": {"app": "legacy"}}, "spec": {
                "containers": [{"name": "app", "image": "busybox"}],
                "volumes": [{"name": "vmdk", "vsphereVolume": {"volumePath": "[ds1] disks/legacy.vmdk"}},
                            {"name": "pd", "gcePersistentDisk": {"pdName": "legacy-disk"}}]}}}}),
    )?;
    create(
        store,
        "policy",
        "poddisruptionbudgets",
        json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget",
        "metadata": {"name": "legacy", "namespace": ns},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "legacy"}}}}),
    )?;
    // A pod on the Windows node using the NTFS vSphere volume (VSPHERE_WINDOWS_FILESYSTEM).
    create(
        store,
        "",
        "pods",
        json!({"apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": "win-app", "namespace": ns},
        "spec": {"nodeName": "win-0",
            "containers": [{"name": "app", "image": "mcr.microsoft.com/windows/nanoserver:ltsc2022"}],
            "volumes": [{"name": "disk", "persistentVolumeClaim": {"claimName": "vs-claim"}}]}}),
    )?;
    // Secrets are listed (so AZURE_FILE_SECRET_MISSING can prove absence); this one is unrelated.
    create(
        store,
        "",
        "secrets",
        json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "unrelated", "namespace": ns},
        "type": "Opaque", "data": {}}),
    )?;
    Ok(())
}

/// `object` with the disk's in-tree source fields merged in (a PV spec or a pod volume).
fn with_source(mut object: Value, disk: &Disk) -> Value {
    if let (Some(map), Some(source)) = (object.as_object_mut(), disk.in_tree_source.as_object()) {
        map.extend(source.clone());
    }
    object
}

/// A statically created in-tree PV (Retain) on an existing disk, claimed by `claim_ref`.
fn static_volume(
    store: &Store,
    name: &str,
    disk: &Disk,
    size: &str,
    class: &str,
    claim_ref: Value,
) -> Result<(), ScenarioError> {
    let spec = with_source(
        json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
               "persistentVolumeReclaimPolicy": "Retain", "storageClassName": class, "claimRef": claim_ref}),
        disk,
    );
    create(
        store,
        "",
        "persistentvolumes",
        json!({"apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name}, "spec": spec}),
    )?;
    Ok(())
}

/// Sets up `scenario`, runs the controllers until every pod is Running (within `timeout`),
/// then writes known content into every disk a claim uses.
pub async fn apply(
    store: &Arc<Store>,
    scenario: Scenario,
    timeout: Duration,
) -> Result<(), ScenarioError> {
    let want_pods = match scenario {
        Scenario::Empty => return Ok(()),
        Scenario::VsphereStatefulset | Scenario::EbsStatefulset => {
            let plugin = if scenario == Scenario::VsphereStatefulset {
                &PLUGINS[0]
            } else {
                &PLUGINS[1]
            };
            nodes_and_drivers(store, &[plugin])?;
            classes(store, &[plugin])?;
            statefulset(store, "web", plugin.1, 3)?;
            3
        }
        Scenario::Mixed => {
            mixed(store)?;
            3 + 2 + 1 + 1
        }
        // The operator's StatefulSet; the other pods wait on disks or drivers that the
        // scenario leaves out on purpose, or are not needed Running.
        Scenario::EveryRule => {
            every_rule(store)?;
            2
        }
    };
    let deadline = tokio::time::Instant::now() + timeout;
    let pods = store.resource("", "pods");
    loop {
        controllers::reconcile(store);
        let running = pods
            .as_ref()
            .and_then(|rt| store.list(rt, None, &ListOptions::default()).ok())
            .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
            .unwrap_or_default()
            .iter()
            .filter(|p| p.pointer("/status/phase").and_then(Value::as_str) == Some("Running"))
            .count();
        if running >= want_pods {
            break;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ScenarioError::NotReady(
                timeout,
                format!("{running} of {want_pods} pods Running"),
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    if scenario == Scenario::EveryRule {
        // Its pods that can never start, and the volumes of its workloads, take the
        // controllers a few more passes: run them until a pass changes nothing, so every
        // client (a live scan, a kubectl dump after it) sees the same cluster.
        loop {
            let before = store.resource_version();
            controllers::reconcile(store);
            if store.resource_version() == before {
                break;
            }
            if tokio::time::Instant::now() >= deadline {
                return Err(ScenarioError::NotReady(
                    timeout,
                    "the controllers were still changing objects".to_owned(),
                ));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
    for disk in store.cloud().list() {
        if disk.content.is_empty() {
            let _ = store.cloud().write(
                &disk.id,
                format!("data of {} written by the scenario\n", disk.id).into_bytes(),
            );
        }
    }
    Ok(())
}
