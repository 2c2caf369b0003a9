//! Writes a large cluster dump for the `scan` benchmark: `scan_dump [PVS] > dump.json`.
//!
//! Default 100,000 PVs (AWS EBS, GCE PD, Azure Disk, vSphere, in rotation), one bound
//! claim per PV, and 50,000 pods of 5,000 ten-replica StatefulSets, each pod mounting two
//! claims; plus StorageClasses, CSIDrivers, 200 nodes with CSINodes, PDBs for half the sets,
//! and the server version. One `kubectl get -o json`-style List.

use std::io::{self, BufWriter, Write};

use serde_json::{Value, json};

const NODES: usize = 200;
const REPLICAS: usize = 10;
const CLAIMS_PER_POD: usize = 2;

fn pv(i: usize, claim_ns: &str, claim: &str) -> Value {
    let zone = ["eu-west-1a", "eu-west-1b", "eu-west-1c"][i % 3];
    let (class, source): (&str, Value) = match i % 4 {
        0 => (
            "gp2",
            json!({"awsElasticBlockStore": {"volumeID": format!("aws://{zone}/vol-{i:017x}"), "fsType": "ext4"}}),
        ),
        1 => (
            "standard",
            json!({"gcePersistentDisk": {"pdName": format!("pvc-{i:08}"), "fsType": "ext4"}}),
        ),
        2 => (
            "managed-premium",
            json!({"azureDisk": {"diskName": format!("pvc-{i:08}"), "kind": "Managed",
              "diskURI": format!("/subscriptions/s/resourceGroups/rg/providers/Microsoft.Compute/disks/pvc-{i:08}"),
              "cachingMode": "ReadOnly", "fsType": "ext4"}}),
        ),
        _ => (
            "thin",
            json!({"vsphereVolume": {"volumePath": format!("[vsanDatastore] kubevols/pvc-{i:08}.vmdk"), "fsType": "ext4"}}),
        ),
    };
    let mut spec = json!({
        "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": if i.is_multiple_of(2) { "Delete" } else { "Retain" },
        "storageClassName": class, "volumeMode": "Filesystem",
        "claimRef": {"apiVersion": "v1", "kind": "PersistentVolumeClaim", "namespace": claim_ns, "name": claim,
                     "uid": format!("00000000-0000-0000-0000-{i:012}"), "resourceVersion": "1"},
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}
    });
    if let (Some(spec), Value::Object(source)) = (spec.as_object_mut(), source) {
        spec.extend(source);
    }
    json!({
        "apiVersion": "v1", "kind": "PersistentVolume",
        "metadata": {"name": format!("pvc-{i:08}"), "uid": format!("pv-uid-{i}"), "resourceVersion": "1",
            "creationTimestamp": "2025-01-01T00:00:00Z",
            "labels": {"topology.kubernetes.io/zone": zone, "topology.kubernetes.io/region": "eu-west-1"},
            "annotations": {"pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs"},
            "finalizers": ["kubernetes.io/pv-protection"]},
        "spec": spec,
        "status": {"phase": "Bound", "lastPhaseTransitionTime": "2025-01-01T00:00:00Z"}
    })
}

fn main() -> io::Result<()> {
    let pvs: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let sets = pvs / (REPLICAS * CLAIMS_PER_POD);
    let mut out = BufWriter::with_capacity(1 << 20, io::stdout().lock());
    let mut first = true;
    let mut item = |out: &mut BufWriter<_>, value: Value| -> io::Result<()> {
        if !first {
            out.write_all(b",\n")?;
        }
        first = false;
        serde_json::to_writer(&mut *out, &value).map_err(io::Error::other)
    };
    out.write_all(b"{\"apiVersion\":\"v1\",\"kind\":\"List\",\"metadata\":{\"resourceVersion\":\"\"},\"items\":[\n")?;
    for (name, provisioner) in [
        ("gp2", "kubernetes.io/aws-ebs"),
        ("standard", "kubernetes.io/gce-pd"),
        ("managed-premium", "kubernetes.io/azure-disk"),
        ("thin", "kubernetes.io/vsphere-volume"),
        ("gp3", "ebs.csi.aws.com"),
    ] {
        item(
            &mut out,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
            "provisioner": provisioner, "parameters": {"fstype": "ext4"}}),
        )?;
    }
    let drivers = [
        "ebs.csi.aws.com",
        "pd.csi.storage.gke.io",
        "disk.csi.azure.com",
        "csi.vsphere.vmware.com",
    ];
    for driver in drivers {
        item(
            &mut out,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": driver}, "spec": {}}),
        )?;
    }
    for n in 0..NODES {
        let name = format!("node-{n:04}");
        item(
            &mut out,
            json!({"apiVersion": "v1", "kind": "Node", "metadata": {"name": name, "labels": {"kubernetes.io/os": "linux"}}}),
        )?;
        let registered: Vec<Value> = drivers
            .iter()
            .map(|d| json!({"name": d, "nodeID": name}))
            .collect();
        item(
            &mut out,
            json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSINode", "metadata": {"name": name,
            "annotations": {"storage.alpha.kubernetes.io/migrated-plugins": "kubernetes.io/aws-ebs,kubernetes.io/azure-disk,kubernetes.io/gce-pd,kubernetes.io/vsphere-volume"}},
            "spec": {"drivers": registered}}),
        )?;
    }
    let mut pv_index = 0;
    for s in 0..sets {
        let ns = format!("team-{:03}", s % 100);
        let set = format!("db-{s:05}");
        let templates: Vec<Value> = (0..CLAIMS_PER_POD).map(|t| json!({"metadata": {"name": format!("data{t}")},
            "spec": {"storageClassName": "gp2", "accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "10Gi"}}}})).collect();
        item(
            &mut out,
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": set, "namespace": ns},
            "spec": {"replicas": REPLICAS, "serviceName": set, "selector": {"matchLabels": {"app": set}},
                "template": {"metadata": {"labels": {"app": set}}, "spec": {"containers": [{"name": "db", "image": "postgres:16"}]}},
                "volumeClaimTemplates": templates}}),
        )?;
        if s.is_multiple_of(2) {
            item(
                &mut out,
                json!({"apiVersion": "policy/v1", "kind": "PodDisruptionBudget", "metadata": {"name": set, "namespace": ns},
                "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": set}}}}),
            )?;
        }
        for r in 0..REPLICAS {
            let pod = format!("{set}-{r}");
            let mut volumes = Vec::new();
            for t in 0..CLAIMS_PER_POD {
                let claim = format!("data{t}-{set}-{r}");
                let pv_name = format!("pvc-{pv_index:08}");
                item(&mut out, pv(pv_index, &ns, &claim))?;
                item(
                    &mut out,
                    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                    "metadata": {"name": claim, "namespace": ns, "labels": {"app": set},
                        "annotations": {"pv.kubernetes.io/bind-completed": "yes", "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com"}},
                    "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp2", "volumeName": pv_name,
                        "resources": {"requests": {"storage": "10Gi"}}, "volumeMode": "Filesystem"},
                    "status": {"phase": "Bound", "capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"]}}),
                )?;
                volumes.push(json!({"name": format!("data{t}"), "persistentVolumeClaim": {"claimName": claim}}));
                pv_index += 1;
            }
            item(
                &mut out,
                json!({"apiVersion": "v1", "kind": "Pod",
                "metadata": {"name": pod, "namespace": ns, "labels": {"app": set},
                    "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": set, "uid": format!("sts-{s}"), "controller": true}]},
                "spec": {"nodeName": format!("node-{:04}", (s * REPLICAS + r) % NODES),
                    "containers": [{"name": "db", "image": "postgres:16", "volumeMounts": [{"name": "data0", "mountPath": "/data"}]}],
                    "volumes": volumes},
                "status": {"phase": "Running"}}),
            )?;
        }
    }
    out.write_all(b"\n]}\n")?;
    let mut version = io::stderr().lock();
    writeln!(
        version,
        "wrote {pv_index} PVs, {pv_index} PVCs, {} pods, {sets} StatefulSets",
        sets * REPLICAS
    )?;
    out.flush()
}
