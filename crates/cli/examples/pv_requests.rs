//! Writes N `pv_to_csi` JSON Lines requests over every plugin, for the `translate --jsonl` benchmark.
//!
//! `cargo run --release --example pv_requests -- 100000 > /tmp/pv-requests.jsonl`

use std::io::{self, BufWriter, Write};

use serde_json::{Value, json};

fn source(i: usize) -> (&'static str, Value) {
    match i % 8 {
        0 => (
            "gcePersistentDisk",
            json!({"pdName": format!("disk-{i}"), "fsType": "ext4"}),
        ),
        1 => (
            "awsElasticBlockStore",
            json!({"volumeID": format!("aws://us-east-1a/vol-{i:017x}"), "fsType": "xfs"}),
        ),
        2 => (
            "azureDisk",
            json!({"diskName": format!("d{i}"), "kind": "Managed", "cachingMode": "ReadOnly",
             "diskURI": format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/d{i}")}),
        ),
        3 => (
            "azureFile",
            json!({"secretName": "azure-storage-account-acct-secret", "shareName": format!("share-{i}")}),
        ),
        4 => (
            "cinder",
            json!({"volumeID": format!("{i:08x}-0000-4000-8000-000000000000"), "fsType": "ext4"}),
        ),
        5 => (
            "vsphereVolume",
            json!({"volumePath": format!("[vsanDatastore] kubevols/pvc-{i}.vmdk"),
             "storagePolicyName": "gold"}),
        ),
        6 => ("portworxVolume", json!({"volumeID": format!("px-{i}")})),
        _ => (
            "rbd",
            json!({"monitors": ["10.0.0.1:6789", "10.0.0.2:6789"], "pool": "kube",
             "image": format!("kubernetes-dynamic-pvc-{i}"), "secretRef": {"name": "ceph", "namespace": "ceph"}}),
        ),
    }
}

fn main() -> io::Result<()> {
    let count: usize = std::env::args()
        .nth(1)
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let mut out = BufWriter::new(io::stdout().lock());
    for i in 0..count {
        let (field, source) = source(i);
        let zone = ["us-east-1a", "us-east-1b", "us-central1-c"][i % 3];
        let request = json!({"op": "pv_to_csi", "object": {
            "apiVersion": "v1", "kind": "PersistentVolume",
            "metadata": {"name": format!("pv-{i}"), "labels": {"topology.kubernetes.io/zone": zone},
                         "annotations": {"pv.kubernetes.io/provisioned-by": "in-tree"}},
            "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                     "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "standard",
                     "claimRef": {"namespace": "default", "name": format!("data-{i}")}, field: source}}});
        serde_json::to_writer(&mut out, &request)?;
        out.write_all(b"\n")?;
    }
    out.flush()
}
