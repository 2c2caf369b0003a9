//! The fake cloud: disks with the identity each storage provider uses, their size,
//! zone, filesystem, attachments and content. A deleted disk or changed content is
//! what "data loss" means in our tests.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};

use csi_migrate_translate::Translator;
use k8s_openapi::api::core::v1::PersistentVolume;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Why a disk operation failed.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CloudError {
    /// No disk has this id or identity.
    #[error("disk {0} not found")]
    NotFound(String),
    /// A single-attach disk is attached to another node.
    #[error(
        "Multi-Attach error for volume {disk}: volume is already exclusively attached to node {node}"
    )]
    MultiAttach {
        /// The disk.
        disk: String,
        /// Where it is attached.
        node: String,
    },
    /// The disk is attached and cannot be deleted.
    #[error("disk {disk} is in use: attached to {nodes:?}")]
    InUse {
        /// The disk.
        disk: String,
        /// Where it is attached.
        nodes: Vec<String>,
    },
}

/// One disk.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Disk {
    /// Cloud-internal id (`disk-<n>`).
    pub id: String,
    /// The in-tree plugin whose kind of disk this is, e.g. `kubernetes.io/aws-ebs`.
    pub plugin: String,
    /// The CSI driver that serves it.
    pub driver: String,
    /// Every volume handle (CSI) or in-tree identity the disk answers to.
    pub handles: Vec<String>,
    /// The in-tree PV source naming this disk, e.g. `{"awsElasticBlockStore": {...}}`.
    pub in_tree_source: Value,
    /// Size in bytes.
    pub size_bytes: u64,
    /// Zone, if the provider has zones.
    pub zone: Option<String>,
    /// Filesystem signature; `None` while the disk is blank.
    pub filesystem: Option<String>,
    /// Nodes it is attached to.
    pub attached_to: Vec<String>,
    /// Whether several nodes may attach it at once (file shares).
    pub multi_attach: bool,
    /// The bytes on the disk.
    pub content: Vec<u8>,
}

impl Disk {
    /// Hex SHA-256 of the content.
    pub fn sha256(&self) -> String {
        Sha256::digest(&self.content)
            .iter()
            .fold(String::new(), |mut s, b| {
                let _ = write!(s, "{b:02x}");
                s
            })
    }

    /// The disk as the test API shows it.
    pub fn to_json(&self) -> Value {
        json!({
            "id": self.id, "plugin": self.plugin, "driver": self.driver, "handles": self.handles,
            "inTreeSource": self.in_tree_source, "sizeBytes": self.size_bytes, "zone": self.zone,
            "filesystem": self.filesystem, "attachedTo": self.attached_to, "sha256": self.sha256(),
            "contentLength": self.content.len(),
        })
    }
}

/// `(driver, handle)` naming the disk behind a PV spec, from `spec.csi` or by
/// translating the in-tree source.
pub fn pv_identity(pv: &Value) -> Option<(String, String)> {
    if let Some(csi) = pv.pointer("/spec/csi") {
        let driver = csi.get("driver")?.as_str()?.to_owned();
        let handle = csi.get("volumeHandle")?.as_str()?.to_owned();
        return Some((driver, handle));
    }
    let typed: PersistentVolume = serde_json::from_value(pv.clone()).ok()?;
    let csi = Translator::new().pv_to_csi(&typed).ok()?.spec?.csi?;
    Some((csi.driver, csi.volume_handle))
}

/// Handles equal, or GCE handles equal once the project (unknown to translation) is ignored.
fn handle_matches(known: &str, asked: &str) -> bool {
    if known == asked {
        return true;
    }
    let without_project = |h: &str| {
        let parts: Vec<&str> = h.split('/').collect();
        (parts.len() >= 6 && parts[0] == "projects").then(|| parts[2..].join("/"))
    };
    matches!((without_project(known), without_project(asked)), (Some(a), Some(b)) if a == b)
}

/// `(datastore, datastore-relative path)` of an in-tree vSphere `volumePath`
/// (`[ds] folder/disk.vmdk`; the last `/` component inside the brackets is the datastore).
fn vsphere_file(volume_path: &str) -> Option<(String, String)> {
    let rest = volume_path.trim().strip_prefix('[')?;
    let (inside, path) = rest.split_once(']')?;
    let datastore = inside.rsplit('/').next()?.to_owned();
    Some((datastore, path.trim().to_owned()))
}

/// All disks of the simulated cloud.
#[derive(Debug, Default)]
pub struct Cloud {
    disks: Mutex<BTreeMap<String, Disk>>,
    next: Mutex<u64>,
    /// Datastore name → local directory holding the VMDKs of vSphere disks on it (e.g. a
    /// vCenter simulator's datastore): their bytes live in `<dir>/<path>-flat.vmdk`.
    vsphere_datastores: Mutex<BTreeMap<String, PathBuf>>,
}

impl Cloud {
    fn lock(&self) -> MutexGuard<'_, BTreeMap<String, Disk>> {
        self.disks.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Keeps the bytes of vSphere disks on datastore `name` in `dir` (descriptor
    /// `<disk>.vmdk`, extent `<disk>-flat.vmdk`) instead of in memory.
    pub fn back_vsphere_datastore(&self, name: &str, dir: PathBuf) {
        self.vsphere_datastores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name.to_owned(), dir);
    }

    /// The descriptor and flat extent files of a disk on a backed datastore.
    fn backing_files(&self, disk: &Disk) -> Option<(PathBuf, PathBuf)> {
        let path = disk
            .in_tree_source
            .pointer("/vsphereVolume/volumePath")?
            .as_str()?;
        let (datastore, relative) = vsphere_file(path)?;
        let dir = self
            .vsphere_datastores
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&datastore)?
            .clone();
        let descriptor = dir.join(&relative);
        let flat = dir.join(relative.strip_suffix(".vmdk").map_or_else(
            || format!("{relative}-flat.vmdk"),
            |stem| format!("{stem}-flat.vmdk"),
        ));
        Some((descriptor, flat))
    }

    /// Creates a backed disk's files (an existing extent keeps its bytes).
    fn create_backing(&self, disk: &Disk) {
        let Some((descriptor, flat)) = self.backing_files(disk) else {
            return;
        };
        if let Some(parent) = descriptor.parent() {
            let _ = std::fs::create_dir_all(parent);
        }
        let extent = flat
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let text = format!(
            "# Disk DescriptorFile\nversion=1\ncreateType=\"vmfs\"\n\n# Extent description\nRW {} VMFS \"{extent}\"\n",
            disk.size_bytes / 512
        );
        if !descriptor.exists() {
            let _ = std::fs::write(&descriptor, text);
        }
        if !flat.exists() {
            let _ = std::fs::write(&flat, &disk.content);
        }
    }

    /// A disk with its content read from its backing file, when it has one.
    fn with_backed_content(&self, mut disk: Disk) -> Disk {
        if let Some((_, flat)) = self.backing_files(&disk)
            && let Ok(bytes) = std::fs::read(flat)
        {
            disk.content = bytes;
        }
        disk
    }

    /// Lets each vSphere disk answer to the FCD id a `CnsVSphereVolumeMigration` record
    /// names for its path, as the CSI driver maps ids to paths through those records.
    pub fn learn_first_class_disks(&self, records: &[Value]) {
        let mut disks = self.lock();
        for record in records {
            let (Some(path), Some(id)) = (
                record.pointer("/spec/volumepath").and_then(Value::as_str),
                record
                    .pointer("/spec/volumeid")
                    .or_else(|| record.pointer("/metadata/name"))
                    .and_then(Value::as_str),
            ) else {
                continue;
            };
            let wanted = vsphere_file(path);
            let disk = disks.values_mut().find(|d| {
                d.driver == "csi.vsphere.vmware.com"
                    && d.in_tree_source
                        .pointer("/vsphereVolume/volumePath")
                        .and_then(Value::as_str)
                        .is_some_and(|own| {
                            own == path || (wanted.is_some() && vsphere_file(own) == wanted)
                        })
            });
            if let Some(disk) = disk
                && !id.is_empty()
                && !disk.handles.iter().any(|h| h == id)
            {
                disk.handles.push(id.to_owned());
            }
        }
    }

    /// A fresh, blank disk of `plugin`'s kind, `size_bytes` large, in `zone`.
    pub fn create_disk(
        &self,
        plugin: &str,
        name: &str,
        size_bytes: u64,
        zone: Option<&str>,
    ) -> Disk {
        let number = {
            let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
            *next += 1;
            *next
        };
        let id = format!("disk-{number}");
        let zone_or = |default: &str| zone.unwrap_or(default).to_owned();
        let (driver, in_tree_source, handle, multi_attach) = match plugin {
            "kubernetes.io/aws-ebs" => {
                let vol = format!("vol-{number:017x}");
                (
                    "ebs.csi.aws.com",
                    json!({"awsElasticBlockStore": {"volumeID": format!("aws://{}/{vol}", zone_or("us-east-1a"))}}),
                    vol,
                    false,
                )
            }
            "kubernetes.io/gce-pd" => {
                let pd = format!("pvc-{name}");
                let handle = format!(
                    "projects/sim-project/zones/{}/disks/{pd}",
                    zone_or("us-central1-a")
                );
                (
                    "pd.csi.storage.gke.io",
                    json!({"gcePersistentDisk": {"pdName": pd}}),
                    handle,
                    false,
                )
            }
            "kubernetes.io/azure-disk" => {
                let uri = format!(
                    "/subscriptions/sim/resourceGroups/sim/providers/Microsoft.Compute/disks/pvc-{name}"
                );
                (
                    "disk.csi.azure.com",
                    json!({"azureDisk": {"diskName": format!("pvc-{name}"), "diskURI": uri, "kind": "Managed"}}),
                    uri,
                    false,
                )
            }
            "kubernetes.io/azure-file" => {
                let share = format!("pvc-{name}");
                (
                    "file.csi.azure.com",
                    json!({"azureFile": {"secretName": "azure-storage-account-simaccount-secret", "shareName": share}}),
                    format!("#simaccount#{share}#"),
                    true,
                )
            }
            "kubernetes.io/cinder" => {
                let vid = format!("{number:08x}-0000-4000-8000-000000000000");
                (
                    "cinder.csi.openstack.org",
                    json!({"cinder": {"volumeID": vid}}),
                    vid,
                    false,
                )
            }
            "kubernetes.io/vsphere-volume" => {
                let path = format!("[vsanDatastore] kubevols/kubernetes-dynamic-pvc-{name}.vmdk");
                (
                    "csi.vsphere.vmware.com",
                    json!({"vsphereVolume": {"volumePath": path}}),
                    path,
                    false,
                )
            }
            "kubernetes.io/portworx-volume" => {
                let vid = format!("px-{number}");
                (
                    "pxd.portworx.com",
                    json!({"portworxVolume": {"volumeID": vid}}),
                    vid,
                    false,
                )
            }
            "kubernetes.io/rbd" => {
                let image = format!("kubernetes-dynamic-pvc-{name}");
                (
                    "rbd.csi.ceph.com",
                    json!({"rbd": {"monitors": ["10.0.0.1:6789"], "pool": "kube", "image": image,
                                                   "secretRef": {"name": "ceph-admin", "namespace": "kube-system"}}}),
                    String::new(),
                    false,
                )
            }
            driver => (driver, Value::Null, format!("{driver}-{id}"), false),
        };
        let mut handles = vec![handle];
        // The CSI handle translation gives for the in-tree source (EBS drops the zone, RBD composes one).
        if !in_tree_source.is_null()
            && let Some((_, translated)) =
                pv_identity(&json!({"metadata": {"name": name}, "spec": in_tree_source}))
            && !handles.contains(&translated)
        {
            handles.push(translated);
        }
        handles.retain(|h| !h.is_empty());
        let disk = Disk {
            id: id.clone(),
            plugin: plugin.to_owned(),
            driver: driver.to_owned(),
            handles,
            in_tree_source,
            size_bytes,
            zone: zone.map(str::to_owned),
            filesystem: None,
            attached_to: Vec::new(),
            multi_attach,
            content: Vec::new(),
        };
        self.create_backing(&disk);
        self.lock().insert(id, disk.clone());
        self.with_backed_content(disk)
    }

    /// Replaces every disk (restoring a saved state).
    pub fn restore(&self, disks: Vec<Disk>) {
        let mut map = self.lock();
        map.clear();
        let mut highest = 0;
        for disk in disks {
            if let Some(n) = disk
                .id
                .strip_prefix("disk-")
                .and_then(|n| n.parse::<u64>().ok())
            {
                highest = highest.max(n);
            }
            map.insert(disk.id.clone(), disk);
        }
        *self.next.lock().unwrap_or_else(|e| e.into_inner()) = highest;
    }

    /// Adds a disk as it is (scenarios that start from existing disks).
    pub fn insert(&self, disk: Disk) {
        self.lock().insert(disk.id.clone(), disk);
    }

    /// Every disk.
    pub fn list(&self) -> Vec<Disk> {
        let disks: Vec<Disk> = self.lock().values().cloned().collect();
        disks
            .into_iter()
            .map(|d| self.with_backed_content(d))
            .collect()
    }

    /// The disk with this id.
    pub fn get(&self, id: &str) -> Option<Disk> {
        let disk = self.lock().get(id).cloned()?;
        Some(self.with_backed_content(disk))
    }

    /// The disk a PV names, through its in-tree source or its CSI handle.
    pub fn find_for_pv(&self, pv: &Value) -> Option<Disk> {
        let (driver, handle) = pv_identity(pv)?;
        self.lock()
            .values()
            .find(|d| d.driver == driver && d.handles.iter().any(|h| handle_matches(h, &handle)))
            .cloned()
    }

    /// Lets a disk answer to another handle too (a vSphere VMDK registered as a first-class disk).
    pub fn add_handle(&self, id: &str, handle: &str) -> Result<(), CloudError> {
        let mut disks = self.lock();
        let disk = disks
            .get_mut(id)
            .ok_or_else(|| CloudError::NotFound(id.to_owned()))?;
        if !disk.handles.iter().any(|h| h == handle) {
            disk.handles.push(handle.to_owned());
        }
        Ok(())
    }

    /// Attaches a disk to a node; a single-attach disk attached elsewhere is refused.
    pub fn attach(&self, id: &str, node: &str) -> Result<(), CloudError> {
        let mut disks = self.lock();
        let disk = disks
            .get_mut(id)
            .ok_or_else(|| CloudError::NotFound(id.to_owned()))?;
        if disk.attached_to.iter().any(|n| n == node) {
            return Ok(());
        }
        if let Some(other) = disk.attached_to.first().filter(|_| !disk.multi_attach) {
            return Err(CloudError::MultiAttach {
                disk: id.to_owned(),
                node: other.clone(),
            });
        }
        disk.attached_to.push(node.to_owned());
        Ok(())
    }

    /// Detaches a disk from a node (a no-op when it is not attached there).
    pub fn detach(&self, id: &str, node: &str) {
        if let Some(disk) = self.lock().get_mut(id) {
            disk.attached_to.retain(|n| n != node);
        }
    }

    /// Puts a filesystem on a blank disk.
    pub fn format(&self, id: &str, filesystem: &str) -> Result<(), CloudError> {
        let mut disks = self.lock();
        let disk = disks
            .get_mut(id)
            .ok_or_else(|| CloudError::NotFound(id.to_owned()))?;
        disk.filesystem.get_or_insert_with(|| filesystem.to_owned());
        Ok(())
    }

    /// Replaces the content (what a pod's writes do); a backed disk's file too.
    pub fn write(&self, id: &str, content: Vec<u8>) -> Result<(), CloudError> {
        let mut disks = self.lock();
        let disk = disks
            .get_mut(id)
            .ok_or_else(|| CloudError::NotFound(id.to_owned()))?;
        disk.content = content;
        let disk = disk.clone();
        drop(disks);
        if let Some((_, flat)) = self.backing_files(&disk) {
            std::fs::write(&flat, &disk.content)
                .map_err(|e| CloudError::NotFound(format!("{} ({}: {e})", id, flat.display())))?;
        }
        Ok(())
    }

    /// Deletes a disk; an attached disk is refused.
    pub fn delete(&self, id: &str) -> Result<Disk, CloudError> {
        let mut disks = self.lock();
        let disk = disks
            .get(id)
            .ok_or_else(|| CloudError::NotFound(id.to_owned()))?;
        if !disk.attached_to.is_empty() {
            return Err(CloudError::InUse {
                disk: id.to_owned(),
                nodes: disk.attached_to.clone(),
            });
        }
        disks
            .remove(id)
            .ok_or_else(|| CloudError::NotFound(id.to_owned()))
    }
}

/// Runs forever: keeps the vSphere disks answering to the FCD ids the cluster's
/// `CnsVSphereVolumeMigration` records give them (whoever wrote the records: the simulated
/// driver, or csi-migrate after registering through vCenter).
pub async fn learn_first_class_disks(store: std::sync::Arc<crate::Store>) {
    let mut seen = None;
    loop {
        let version = store.resource_version();
        if seen != Some(version)
            && let Some(rt) = store.resource("cns.vmware.com", "cnsvspherevolumemigrations")
            && let Ok(list) = store.list(&rt, None, &Default::default())
        {
            let records = list
                .get("items")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            store.cloud().learn_first_class_disks(&records);
            seen = Some(version);
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ebs_disk_is_found_by_its_in_tree_source_and_by_its_csi_handle() {
        let cloud = Cloud::default();
        let disk = cloud.create_disk("kubernetes.io/aws-ebs", "a", 1 << 30, Some("us-east-1b"));
        let in_tree = json!({"metadata": {"name": "p"}, "spec": disk.in_tree_source.clone()});
        assert_eq!(
            cloud.find_for_pv(&in_tree).map(|d| d.id),
            Some(disk.id.clone())
        );
        let vol = disk.handles[0].clone();
        let csi = json!({"spec": {"csi": {"driver": "ebs.csi.aws.com", "volumeHandle": vol}}});
        assert_eq!(cloud.find_for_pv(&csi).map(|d| d.id), Some(disk.id));
    }

    #[test]
    fn backed_vsphere_disks_keep_their_bytes_in_the_datastore_files_and_learn_fcd_ids() {
        let dir = std::env::temp_dir().join(format!("kube-sim-cloud-test-{}", std::process::id()));
        let cloud = Cloud::default();
        cloud.back_vsphere_datastore("vsanDatastore", dir.clone());
        let disk = cloud.create_disk("kubernetes.io/vsphere-volume", "a", 1 << 20, None);
        let flat = dir.join("kubevols/kubernetes-dynamic-pvc-a-flat.vmdk");
        assert!(dir.join("kubevols/kubernetes-dynamic-pvc-a.vmdk").exists());
        assert_eq!(cloud.write(&disk.id, b"bytes".to_vec()), Ok(()));
        assert_eq!(std::fs::read(&flat).ok(), Some(b"bytes".to_vec()));
        // whoever writes the file (vCenter) changes the disk
        assert!(std::fs::write(&flat, b"changed").is_ok());
        assert_eq!(
            cloud.get(&disk.id).map(|d| d.content),
            Some(b"changed".to_vec())
        );
        // a record maps the FCD id to the path; the disk answers to it
        let path = disk.in_tree_source["vsphereVolume"]["volumePath"].clone();
        cloud.learn_first_class_disks(&[json!({"metadata": {"name": "fcd-1"},
            "spec": {"volumepath": path, "volumeid": "fcd-1"}})]);
        let csi =
            json!({"spec": {"csi": {"driver": "csi.vsphere.vmware.com", "volumeHandle": "fcd-1"}}});
        assert_eq!(cloud.find_for_pv(&csi).map(|d| d.id), Some(disk.id));
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn gce_handles_match_whatever_the_project() {
        let cloud = Cloud::default();
        let disk = cloud.create_disk("kubernetes.io/gce-pd", "d", 1, Some("europe-west1-b"));
        let csi = json!({"spec": {"csi": {"driver": "pd.csi.storage.gke.io",
                                          "volumeHandle": "projects/real-project/zones/europe-west1-b/disks/pvc-d"}}});
        assert_eq!(cloud.find_for_pv(&csi).map(|d| d.id), Some(disk.id));
    }

    #[test]
    fn single_attach_disks_refuse_a_second_node_and_attached_disks_cannot_be_deleted() {
        let cloud = Cloud::default();
        let disk = cloud.create_disk("kubernetes.io/cinder", "c", 1, None);
        assert_eq!(cloud.attach(&disk.id, "n1"), Ok(()));
        assert!(matches!(
            cloud.attach(&disk.id, "n2"),
            Err(CloudError::MultiAttach { .. })
        ));
        assert!(matches!(
            cloud.delete(&disk.id),
            Err(CloudError::InUse { .. })
        ));
        cloud.detach(&disk.id, "n1");
        assert!(cloud.delete(&disk.id).is_ok());
    }
}
