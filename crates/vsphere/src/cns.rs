//! Cloud Native Storage (CNS) calls on `/vsanHealth`: create a block volume from an existing disk, query volumes, and register an in-tree VMDK end to end.

use crate::client::{Datastore, Endpoint, MoRef, VcenterClient, VsphereError};
use crate::fault::{Fault, FaultKind};
use crate::volume_path::VolumePath;
use crate::xml::{Element, escape};

/// The CNS volume manager every vCenter (and vcsim) exposes.
const CNS_VOLUME_MANAGER: &str = r#"<_this type="CnsVolumeManager">cns-volume-manager</_this>"#;

/// Which existing disk a CNS block volume is created from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BackingDisk {
    /// A first-class disk id (after `RegisterDisk`; vCenter 6.7U3l … 7.0.0, and vcsim).
    DiskId(String),
    /// The disk's `https://<vc>/folder/<path>?dcPath=…&dsName=…` URL (vCenter 7.0U1+ registers
    /// the VMDK itself; vcsim 0.24 ignores this field).
    DiskUrlPath(String),
}

/// The Kubernetes cluster CNS records as the volume's owner (`CnsContainerCluster`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ContainerCluster {
    /// `Global.cluster-id` of the CSI driver's config.
    pub cluster_id: String,
    /// The vCenter user the cluster acts as.
    pub vsphere_user: String,
}

impl ContainerCluster {
    fn to_xml(&self, tag: &str) -> String {
        format!(
            "<{tag}><clusterType>KUBERNETES</clusterType><clusterId>{}</clusterId><vSphereUser>{}</vSphereUser><clusterFlavor>VANILLA</clusterFlavor></{tag}>",
            escape(&self.cluster_id),
            escape(&self.vsphere_user)
        )
    }
}

/// Outcome of [`VcenterClient::cns_create_block_volume`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CnsCreated {
    /// The CNS volume id (= FCD id = CSI volume handle).
    pub volume_id: String,
    /// `true` when vCenter answered `CnsAlreadyRegisteredFault` (the disk already was a CNS volume).
    pub already_registered: bool,
}

/// One volume as `CnsQueryVolume` reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CnsVolume {
    /// CNS volume id.
    pub volume_id: String,
    /// Volume name.
    pub name: String,
    /// `BLOCK` or `FILE`.
    pub volume_type: String,
    /// Datastore URL (`ds:///vmfs/volumes/<uuid>/`; vcsim: a local directory).
    pub datastore_url: String,
}

/// Result of [`VcenterClient::register_cns_volume`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CnsRegistration {
    /// The FCD / CNS volume id.
    pub volume_id: String,
    /// The datacenter whose datastore held the disk.
    pub datacenter: String,
    /// Whether `RegisterDisk` was used (old vCenter / vcsim) rather than `backingDiskUrlPath`.
    pub used_register_disk: bool,
    /// Whether the FCD carries `keepAfterDeleteVm` (deleting a node VM keeps the disk); what
    /// the CSI driver's `CnsVSphereVolumeMigration.spec.protectvolumefromvmdelete` records.
    /// `false` tells the driver to set it itself when it next attaches the volume.
    pub protected_from_vm_delete: bool,
}

/// How a freshly registered disk gets the `keepAfterDeleteVm` control flag, by vCenter API
/// version (as the CSI driver's `ProtectVolumeFromVMDeletion` decides).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmDeleteProtection {
    /// vCenter 8.0U3+ (API 8.0.3): CNS registration sets the flag itself.
    SetByCnsRegistration,
    /// Older vCenter: set it with `SetVStorageObjectControlFlags` after registering.
    SetControlFlag,
}

/// Which [`VmDeleteProtection`] applies to a vCenter with this `about.apiVersion`.
pub fn vm_delete_protection(api_version: &str) -> VmDeleteProtection {
    if api_version_at_least(api_version, (8, 0, 3)) {
        VmDeleteProtection::SetByCnsRegistration
    } else {
        VmDeleteProtection::SetControlFlag
    }
}

/// `major.minor.patch` of a vSphere API version (`7.0.1.0`, `6.5`) is at least `wanted`;
/// unparsable parts count as 0.
pub fn api_version_at_least(api_version: &str, wanted: (u32, u32, u32)) -> bool {
    let parts: Vec<u32> = api_version
        .split('.')
        .map(|p| p.trim().parse().unwrap_or(0))
        .collect();
    let part = |i: usize| parts.get(i).copied().unwrap_or(0);
    (part(0), part(1), part(2)) >= wanted
}

/// The `CnsCreateVolume` request body for one block volume.
pub fn create_volume_body(name: &str, backing: &BackingDisk, cluster: &ContainerCluster) -> String {
    let backing_xml = match backing {
        BackingDisk::DiskId(id) => format!("<backingDiskId>{}</backingDiskId>", escape(id)),
        BackingDisk::DiskUrlPath(url) => {
            format!("<backingDiskUrlPath>{}</backingDiskUrlPath>", escape(url))
        }
    };
    format!(
        r#"<CnsCreateVolume xmlns="urn:vsan">{CNS_VOLUME_MANAGER}<createSpecs><name>{}</name><volumeType>BLOCK</volumeType><metadata>{}{}</metadata><backingObjectDetails xsi:type="CnsBlockBackingDetails">{backing_xml}</backingObjectDetails></createSpecs></CnsCreateVolume>"#,
        escape(name),
        cluster.to_xml("containerCluster"),
        cluster.to_xml("containerClusterArray"),
    )
}

/// The `CnsQueryVolume` request body filtering by volume ids.
pub fn query_volume_body(volume_ids: &[&str]) -> String {
    let ids: String = volume_ids
        .iter()
        .map(|id| format!("<volumeIds><id>{}</id></volumeIds>", escape(id)))
        .collect();
    format!(
        r#"<CnsQueryVolume xmlns="urn:vsan">{CNS_VOLUME_MANAGER}<filter>{ids}</filter></CnsQueryVolume>"#
    )
}

/// Reads the `CnsVolumeOperationBatchResult` of a finished `CnsCreateVolume` task.
/// `CnsAlreadyRegisteredFault` is success with the id it carries (as the CSI driver treats it).
pub fn parse_create_result(
    operation: &str,
    result: Option<&Element>,
) -> Result<CnsCreated, VsphereError> {
    let volume_result = result
        .and_then(|r| r.child("volumeResults"))
        .ok_or_else(|| {
            VcenterClient::malformed(
                operation,
                "task result has no volumeResults (vcsim 0.24 returns none for backingDiskUrlPath)",
            )
        })?;
    if let Some(error) = volume_result.child("fault") {
        return already_registered(operation, Fault::from_localized(error));
    }
    let volume_id = volume_result
        .path_text(&["volumeId", "id"])
        .filter(|id| !id.is_empty())
        .ok_or_else(|| VcenterClient::malformed(operation, "volume result has no volumeId/id"))?;
    Ok(CnsCreated {
        volume_id: volume_id.to_owned(),
        already_registered: false,
    })
}

fn already_registered(operation: &str, fault: Fault) -> Result<CnsCreated, VsphereError> {
    match fault.field("volumeId").filter(|id| !id.is_empty()) {
        Some(id) if fault.kind == FaultKind::CnsAlreadyRegistered => Ok(CnsCreated {
            volume_id: id.to_owned(),
            already_registered: true,
        }),
        _ => Err(VsphereError::CnsVolumeFault {
            operation: operation.to_owned(),
            fault: Box::new(fault),
        }),
    }
}

/// Reads a `CnsQueryVolumeResponse`.
pub fn parse_query_result(response: &Element) -> Vec<CnsVolume> {
    response
        .child("returnval")
        .map(|r| {
            r.children_named("volumes")
                .map(|v| CnsVolume {
                    volume_id: v
                        .path_text(&["volumeId", "id"])
                        .unwrap_or_default()
                        .to_owned(),
                    name: v.path_text(&["name"]).unwrap_or_default().to_owned(),
                    volume_type: v.path_text(&["volumeType"]).unwrap_or_default().to_owned(),
                    datastore_url: v
                        .path_text(&["datastoreUrl"])
                        .unwrap_or_default()
                        .to_owned(),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// Whether this vCenter registers VMDKs through CNS `backingDiskUrlPath` (API 7.0.1 and
/// later); older ones (and vcsim, API 6.5) need `RegisterDisk` first.
pub fn supports_backing_disk_url_path(api_version: &str) -> bool {
    api_version_at_least(api_version, (7, 0, 1))
}

impl VcenterClient {
    /// `CnsCreateVolume` for one block volume backed by an existing disk; waits for the task.
    pub async fn cns_create_block_volume(
        &mut self,
        name: &str,
        backing: &BackingDisk,
        cluster: &ContainerCluster,
    ) -> Result<CnsCreated, VsphereError> {
        const OP: &str = "CnsCreateVolume";
        self.require_session(OP)?;
        let body = create_volume_body(name, backing, cluster);
        let (response, _) = self.call(Endpoint::Cns, OP, &body).await?;
        let task = response
            .child("returnval")
            .map(MoRef::from_element)
            .ok_or_else(|| Self::malformed(OP, "no task"))?;
        match self.wait_for_task(OP, &task).await {
            Ok(result) => parse_create_result(OP, result.as_ref()),
            // A real vCenter may also fail the whole task with the fault.
            Err(VsphereError::TaskFailed { fault, .. })
                if fault.kind == FaultKind::CnsAlreadyRegistered =>
            {
                already_registered(OP, *fault)
            }
            Err(e) => Err(e),
        }
    }

    /// `CnsQueryVolume` filtered by volume ids (synchronous).
    pub async fn cns_query_volumes(
        &mut self,
        volume_ids: &[&str],
    ) -> Result<Vec<CnsVolume>, VsphereError> {
        const OP: &str = "CnsQueryVolume";
        self.require_session(OP)?;
        let (response, _) = self
            .call(Endpoint::Cns, OP, &query_volume_body(volume_ids))
            .await?;
        Ok(parse_query_result(&response))
    }

    /// Gives an in-tree VMDK its CNS identity, as the CSI driver's syncer does: for each
    /// datacenter (in order) find the datastore and the disk, then either `CnsCreateVolume`
    /// with `backingDiskUrlPath` (vCenter 7.0.1+) or `RegisterDisk` + `CnsCreateVolume` with
    /// `backingDiskId`. Idempotent: an already registered disk yields its existing id.
    pub async fn register_cns_volume(
        &mut self,
        volume_path: &VolumePath,
        datacenters: &[String],
        cluster_id: &str,
    ) -> Result<CnsRegistration, VsphereError> {
        let api_version = match self.service_content() {
            Some(service) => service.about.api_version.clone(),
            None => self
                .retrieve_service_content()
                .await?
                .about
                .api_version
                .clone(),
        };
        let use_url_path = supports_backing_disk_url_path(&api_version);
        let cluster = ContainerCluster {
            cluster_id: cluster_id.to_owned(),
            vsphere_user: self.user().unwrap_or_default().to_owned(),
        };
        let mut attempts = Vec::new();
        for dc_path in datacenters {
            match self
                .register_in_datacenter(volume_path, dc_path, use_url_path, &cluster)
                .await
            {
                Ok((volume_id, datastore)) => {
                    let protected_from_vm_delete = match vm_delete_protection(&api_version) {
                        VmDeleteProtection::SetByCnsRegistration => true,
                        // Not fatal: the CSI driver sets the flag on attach when the record
                        // says it is missing (vcsim lacks the method: MethodNotFound).
                        VmDeleteProtection::SetControlFlag => self
                            .set_keep_after_delete_vm(&datastore, &volume_id)
                            .await
                            .is_ok(),
                    };
                    return Ok(CnsRegistration {
                        volume_id,
                        datacenter: dc_path.clone(),
                        used_register_disk: !use_url_path,
                        protected_from_vm_delete,
                    });
                }
                Err(e) => attempts.push(format!("{dc_path}: {e}")),
            }
        }
        if attempts.is_empty() {
            attempts.push("no datacenter given".into());
        }
        Err(VsphereError::RegistrationFailed {
            volume_path: volume_path.original.clone(),
            attempts: attempts.join("; "),
        })
    }

    async fn register_in_datacenter(
        &mut self,
        volume_path: &VolumePath,
        dc_path: &str,
        use_url_path: bool,
        cluster: &ContainerCluster,
    ) -> Result<(String, Datastore), VsphereError> {
        let datacenter = self.find_datacenter(dc_path).await?;
        let datastore: Datastore = self
            .find_datastore(&datacenter, &volume_path.datastore)
            .await?;
        let name = volume_path.original.clone();
        let backing = if use_url_path {
            if !self
                .datastore_file_exists(&datastore, &volume_path.disk_path)
                .await?
            {
                return Err(VsphereError::DiskNotFound {
                    datastore: datastore.name.clone(),
                    path: volume_path.disk_path.clone(),
                });
            }
            BackingDisk::DiskUrlPath(self.disk_url(&datastore, &volume_path.disk_path))
        } else {
            let registration = self
                .register_disk_idempotent(&datastore, &volume_path.disk_path, &name)
                .await?;
            BackingDisk::DiskId(registration.object.id)
        };
        let created = self
            .cns_create_block_volume(&name, &backing, cluster)
            .await?;
        Ok((created.volume_id, datastore))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::xml;

    fn cluster() -> ContainerCluster {
        ContainerCluster {
            cluster_id: "demo-cluster".into(),
            vsphere_user: "administrator@vsphere.local".into(),
        }
    }

    #[test]
    fn create_body_with_backing_disk_id_and_url_path() {
        let body = create_volume_body(
            "[my ds] kube vols/a&b.vmdk",
            &BackingDisk::DiskId("fcd-1".into()),
            &cluster(),
        );
        assert!(
            body.contains("<backingDiskId>fcd-1</backingDiskId>"),
            "{body}"
        );
        assert!(body.contains(r#"xsi:type="CnsBlockBackingDetails""#));
        assert!(body.contains("<name>[my ds] kube vols/a&amp;b.vmdk</name>"));
        assert!(body.contains("<containerClusterArray><clusterType>KUBERNETES</clusterType><clusterId>demo-cluster</clusterId>"));
        let body = create_volume_body(
            "x",
            &BackingDisk::DiskUrlPath(
                "https://vc/folder/kubevols/a.vmdk?dcPath=DC0&dsName=LocalDS_0".into(),
            ),
            &cluster(),
        );
        assert!(body.contains("<backingDiskUrlPath>https://vc/folder/kubevols/a.vmdk?dcPath=DC0&amp;dsName=LocalDS_0</backingDiskUrlPath>"), "{body}");
        assert!(!body.contains("backingDiskId"));
        // well-formed
        xml::parse(&format!(
            r#"<B xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{body}</B>"#
        ))
        .unwrap();
    }

    /// Task `info.result` as vcsim returns it for `backingDiskId` (recorded).
    const VCSIM_CREATE_RESULT: &str = r#"<val xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" XMLSchema-instance:type="TaskInfo"><state>success</state><result XMLSchema-instance:type="CnsVolumeOperationBatchResult"><volumeResults XMLSchema-instance:type="CnsVolumeCreateResult"><volumeId><id>5f1e2c9a-aaaa-4bbb-8ccc-000000000001</id></volumeId><name>pvc-foo</name><placementResults><datastore type="Datastore">/tmp/govcsim-DC0-LocalDS_0-1@folder-5</datastore></placementResults></volumeResults></result></val>"#;

    /// Real vCenter's per-volume `CnsAlreadyRegisteredFault` (shape per the CNS WSDL and the
    /// driver's `validateCreateVolumeResponseFault`; vcsim never sends it).
    const RECORDED_ALREADY_REGISTERED: &str = r#"<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="TaskInfo"><state>success</state><result xsi:type="CnsVolumeOperationBatchResult"><volumeResults xsi:type="CnsVolumeCreateResult"><fault><fault xsi:type="CnsAlreadyRegisteredFault"><volumeId><id>1f0e9c6a-0000-4000-8000-000000000001</id></volumeId></fault><localizedMessage>The input volume [ds] kubevols/a.vmdk is already registered as a CNS volume.</localizedMessage></fault></volumeResults></result></val>"#;

    const RECORDED_OTHER_FAULT: &str = r#"<val xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><result xsi:type="CnsVolumeOperationBatchResult"><volumeResults xsi:type="CnsVolumeCreateResult"><fault><fault xsi:type="NotFound"></fault><localizedMessage>The object or item referred to could not be found.</localizedMessage></fault></volumeResults></result></val>"#;

    #[test]
    fn parses_vcsim_create_result() {
        let info = xml::parse(VCSIM_CREATE_RESULT).unwrap();
        let created = parse_create_result("CnsCreateVolume", info.child("result")).unwrap();
        assert_eq!(created.volume_id, "5f1e2c9a-aaaa-4bbb-8ccc-000000000001");
        assert!(!created.already_registered);
    }

    #[test]
    fn recorded_real_vcenter_already_registered_fault_is_success_with_its_id() {
        let info = xml::parse(RECORDED_ALREADY_REGISTERED).unwrap();
        let created = parse_create_result("CnsCreateVolume", info.child("result")).unwrap();
        assert_eq!(created.volume_id, "1f0e9c6a-0000-4000-8000-000000000001");
        assert!(created.already_registered);
    }

    #[test]
    fn recorded_other_volume_fault_is_a_typed_error() {
        let info = xml::parse(RECORDED_OTHER_FAULT).unwrap();
        let err = parse_create_result("CnsCreateVolume", info.child("result")).unwrap_err();
        assert!(err.is_fault(FaultKind::NotFound), "{err:?}");
        assert!(err.to_string().contains("could not be found"));
    }

    #[test]
    fn vcsim_url_path_result_without_volume_results_is_malformed_not_success() {
        let info = xml::parse(r#"<val><state>success</state><result><x/></result></val>"#).unwrap();
        let err = parse_create_result("CnsCreateVolume", info.child("result")).unwrap_err();
        assert!(matches!(err, VsphereError::Malformed { .. }), "{err:?}");
    }

    #[test]
    fn parses_recorded_query_response() {
        let doc = r#"<CnsQueryVolumeResponse xmlns="urn:vsan"><returnval><volumes><volumeId><id>v-1</id></volumeId><datastoreUrl>ds:///vmfs/volumes/abc/</datastoreUrl><name>n</name><volumeType>BLOCK</volumeType></volumes><cursor><offset>0</offset><limit>0</limit></cursor></returnval></CnsQueryVolumeResponse>"#;
        let volumes = parse_query_result(&xml::parse(doc).unwrap());
        assert_eq!(
            volumes,
            vec![CnsVolume {
                volume_id: "v-1".into(),
                name: "n".into(),
                volume_type: "BLOCK".into(),
                datastore_url: "ds:///vmfs/volumes/abc/".into()
            }]
        );
        assert!(query_volume_body(&["a", "b"]).contains(
            "<filter><volumeIds><id>a</id></volumeIds><volumeIds><id>b</id></volumeIds></filter>"
        ));
    }

    #[test]
    fn vm_delete_protection_by_api_version() {
        let table = [
            ("6.5", VmDeleteProtection::SetControlFlag),
            ("6.7.3", VmDeleteProtection::SetControlFlag),
            ("7.0.1.0", VmDeleteProtection::SetControlFlag),
            ("8.0.2.0", VmDeleteProtection::SetControlFlag),
            ("8.0.3.0", VmDeleteProtection::SetByCnsRegistration),
            ("9.0.0.0", VmDeleteProtection::SetByCnsRegistration),
            ("garbage", VmDeleteProtection::SetControlFlag),
        ];
        for (version, wanted) in table {
            assert_eq!(vm_delete_protection(version), wanted, "{version}");
        }
    }

    #[test]
    fn url_path_registration_needs_api_7_0_1() {
        assert!(!supports_backing_disk_url_path("6.5"));
        assert!(!supports_backing_disk_url_path("7.0"));
        assert!(!supports_backing_disk_url_path("7.0.0.0"));
        assert!(supports_backing_disk_url_path("7.0.1.0"));
        assert!(supports_backing_disk_url_path("8.0.3.0"));
    }
}
