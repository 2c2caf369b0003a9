//! Small object builders and a runner for the rules' table tests.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use crate::load::files::{Origin, SnapshotBuilder};
use crate::report::Finding;
use crate::rules::Rule;
use crate::snapshot::ClusterSnapshot;
use crate::view::{ClusterView, ScanOptions};

/// A snapshot of these objects, every kind counted as collected.
pub fn snapshot(objects: &[Value]) -> ClusterSnapshot {
    let mut builder = SnapshotBuilder::new();
    for object in objects {
        let origin = Origin {
            source: "test".into(),
            document: 1,
            item: None,
        };
        builder.add_value(object.clone(), &origin).unwrap();
    }
    let mut snapshot = builder.finish();
    snapshot.mark_all_collected();
    snapshot
}

/// Runs one rule over these objects.
pub fn findings(rule: &dyn Rule, objects: &[Value]) -> Vec<Finding> {
    findings_in(rule, &snapshot(objects))
}

/// Runs one rule over a snapshot.
pub fn findings_in(rule: &dyn Rule, snapshot: &ClusterSnapshot) -> Vec<Finding> {
    let options = ScanOptions::default();
    let view = ClusterView::new(snapshot, &options);
    let mut out = Vec::new();
    rule.run(&view, &mut out);
    for f in &out {
        assert_eq!(f.code, rule.code());
        assert_eq!(f.severity, rule.severity());
        assert!(!f.message.is_empty() && !f.remedy.is_empty());
    }
    out
}

/// `Kind/ns/name` of every finding, in order.
pub fn objects(rule: &dyn Rule, objects: &[Value]) -> Vec<String> {
    findings(rule, objects)
        .iter()
        .map(|f| f.object.to_string())
        .collect()
}

/// An AWS EBS PV bound to `ns/claim`.
pub fn ebs_pv(name: &str, claim: Option<(&str, &str)>) -> Value {
    let mut pv = json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "eu-west-1a"}},
        "spec": {
            "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
            "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "gp2",
            "awsElasticBlockStore": {"volumeID": format!("aws://eu-west-1a/vol-{name}"), "fsType": "ext4"}
        },
        "status": {"phase": "Bound"}
    });
    if let Some((ns, claim)) = claim {
        pv["spec"]["claimRef"] = json!({"namespace": ns, "name": claim});
    }
    pv
}

/// A vSphere PV.
pub fn vsphere_pv(name: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": name, "annotations": {"pv.kubernetes.io/provisioned-by": "kubernetes.io/vsphere-volume"}},
        "spec": {
            "capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
            "vsphereVolume": {"volumePath": format!("[ds1] kubevols/{name}.vmdk"), "fsType": "ext4"}
        },
        "status": {"phase": "Bound"}
    })
}

/// A claim bound to `volume`.
pub fn pvc(ns: &str, name: &str, volume: &str) -> Value {
    json!({
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"volumeName": volume, "storageClassName": "gp2", "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "10Gi"}}},
        "status": {"phase": "Bound"}
    })
}

/// A StorageClass.
pub fn storage_class(name: &str, provisioner: &str, parameters: Value) -> Value {
    json!({
        "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
        "metadata": {"name": name}, "provisioner": provisioner, "parameters": parameters
    })
}

/// A StatefulSet with one claim template `data` on `class`, labels `app: name`.
pub fn stateful_set(ns: &str, name: &str, replicas: i32, class: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas, "serviceName": name,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"storageClassName": class, "accessModes": ["ReadWriteOnce"],
                         "resources": {"requests": {"storage": "10Gi"}}}}]
        }
    })
}

/// A Deployment mounting `claim`, labels `app: name`.
pub fn deployment(ns: &str, name: &str, replicas: i32, claim: &str) -> Value {
    json!({
        "apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": name, "namespace": ns},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {"metadata": {"labels": {"app": name}},
                         "spec": {"containers": [{"name": "c", "image": "busybox"}],
                                  "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}}
        }
    })
}

/// A Pod on `node` using `claim`, with an optional controller owner `(kind, name)`.
pub fn pod(ns: &str, name: &str, node: &str, claim: &str, owner: Option<(&str, &str)>) -> Value {
    let mut pod = json!({
        "apiVersion": "v1", "kind": "Pod",
        "metadata": {"name": name, "namespace": ns},
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "busybox"}],
                 "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}
    });
    if let Some((kind, owner)) = owner {
        pod["metadata"]["ownerReferences"] = json!([{
            "apiVersion": "apps/v1", "kind": kind, "name": owner, "uid": "u", "controller": true
        }]);
    }
    pod
}

/// A Node.
pub fn node(name: &str, os: &str) -> Value {
    json!({"apiVersion": "v1", "kind": "Node",
           "metadata": {"name": name, "labels": {"kubernetes.io/os": os}},
           "status": {"nodeInfo": {"kubeletVersion": "v1.30.2", "architecture": "amd64",
               "bootID": "", "containerRuntimeVersion": "", "kernelVersion": "", "kubeProxyVersion": "",
               "machineID": "", "operatingSystem": os, "osImage": "", "systemUUID": ""}}})
}

/// A CSINode listing `drivers` and a `migrated-plugins` annotation.
pub fn csi_node(name: &str, drivers: &[&str], migrated: &str) -> Value {
    let drivers: Vec<Value> = drivers
        .iter()
        .map(|d| json!({"name": d, "nodeID": format!("{name}-id")}))
        .collect();
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode",
           "metadata": {"name": name, "annotations": {"storage.alpha.kubernetes.io/migrated-plugins": migrated}},
           "spec": {"drivers": drivers}})
}

/// A CSIDriver.
pub fn csi_driver(name: &str) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name}, "spec": {}})
}

/// `kubectl version -o json` output.
pub fn server_version(minor: u32) -> Value {
    json!({"serverVersion": {"major": "1", "minor": minor.to_string()}})
}
