//! Volume handle resolution: the CSI driver, handle and attributes the new PV of an in-tree PV names.
//!
//! Every plugin but vSphere gets its handle from translation ([`TranslationResolver`]). A
//! vSphere CSI PV must name the VMDK's first-class disk (FCD) id, which translation cannot
//! know: [`VsphereResolver`] looks it up in the CSI driver's `CnsVSphereVolumeMigration`
//! objects and, only when a vCenter is configured, registers the VMDK with CNS. Resolution
//! runs before planning ([`resolve_snapshot`]); the planner itself stays pure.

use std::collections::{BTreeMap, BTreeSet};

use csi_migrate_translate::Translator;
use csi_migrate_vsphere::{
    CheckFailure, ClientOptions, Credentials, VcenterClient, VcenterFacts, VolumePath,
    VolumePathError, VsphereError, check_storage_policy, check_version, check_volume,
    storage_policy_parameter,
};
use futures::future::BoxFuture;
use k8s_openapi::api::core::v1::PersistentVolume;
use k8s_openapi::api::storage::v1::StorageClass;
use kube::Client;
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, ListParams, PostParams};
use serde::{Deserialize, Serialize};
use serde_json::json;
use thiserror::Error;

use crate::plan::Blocker;
use crate::snapshot::WorkloadSnapshot;

/// The vSphere CSI driver.
pub const VSPHERE_DRIVER: &str = "csi.vsphere.vmware.com";
/// `volumeAttributes.type` of a statically provisioned vSphere CSI block volume.
pub const VSPHERE_BLOCK_VOLUME_TYPE: &str = "vSphere CNS Block Volume";
/// Group of the CSI driver's path → FCD id records.
pub const CNS_GROUP: &str = "cns.vmware.com";
/// Version of `CnsVSphereVolumeMigration`.
pub const CNS_VERSION: &str = "v1alpha1";
/// Kind of the records.
pub const CNS_MIGRATION_KIND: &str = "CnsVSphereVolumeMigration";
/// Plural of the records.
pub const CNS_MIGRATION_PLURAL: &str = "cnsvspherevolumemigrations";

/// What the new CSI PV names: driver, handle, attributes, and where the handle came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResolvedVolume {
    /// CSI driver name.
    pub driver: String,
    /// CSI volume handle (for vSphere: the FCD id).
    pub volume_handle: String,
    /// CSI volume attributes.
    #[serde(default)]
    pub volume_attributes: BTreeMap<String, String>,
    /// How the handle was found, for people reading the plan.
    pub source: String,
}

/// Why a PV's handle could not be resolved.
#[derive(Debug, Error)]
pub enum ResolveError {
    /// The PV has no in-tree source that translates to CSI.
    #[error("no in-tree source that translates to CSI: {0}")]
    Translate(String),
    /// The vSphere `volumePath` cannot be parsed the way the CSI driver parses it.
    #[error(transparent)]
    VolumePath(#[from] VolumePathError),
    /// Reading or writing `cnsvspherevolumemigrations.cns.vmware.com` failed.
    #[error("{what} cnsvspherevolumemigrations.cns.vmware.com: {source}")]
    Kube {
        /// `reading` or `recording in`.
        what: &'static str,
        /// The client error.
        #[source]
        source: kube::Error,
    },
    /// No record names the VMDK and no vCenter is configured to register it.
    #[error(
        "VMDK {path:?} has no first-class disk id in any cnsvspherevolumemigrations.cns.vmware.com object, and no vCenter is configured to register it: run the vSphere CSI driver's syncer (it registers in-tree volumes), or pass --vcenter URL with --vcenter-user/--vcenter-password (or VSPHERE_USER/VSPHERE_PASSWORD), or --vsphere-config csi-vsphere.conf"
    )]
    NotRegistered {
        /// The in-tree `volumePath`.
        path: String,
    },
    /// The VMDK is not a first-class disk yet and this run may not register it (read-only `plan`, `--dry-run`).
    #[error(
        "VMDK {path:?} is not registered with CNS yet; `csi-migrate migrate` registers it through the configured vCenter (plan and --dry-run are read-only)"
    )]
    RegistrationDeferred {
        /// The in-tree `volumePath`.
        path: String,
    },
    /// A vCenter is configured but names no datacenter to search.
    #[error(
        "no vCenter datacenter configured: set `datacenters` in --vsphere-config or pass --vcenter-datacenters"
    )]
    NoDatacenters,
    /// vCenter refused or failed.
    #[error("vCenter: {0}")]
    Vcenter(#[from] VsphereError),
}

/// Resolves the CSI identity of an in-tree PV (ISSUE 5's `VolumeHandleResolver`).
pub trait VolumeHandleResolver: Send + Sync {
    /// The driver, handle and attributes the CSI PV replacing `pv` must carry.
    /// Resolving the same PV twice gives the same answer and creates nothing new.
    fn resolve<'a>(
        &'a self,
        pv: &'a PersistentVolume,
    ) -> BoxFuture<'a, Result<ResolvedVolume, ResolveError>>;
}

/// The translated handle: right for every plugin except vSphere.
#[derive(Debug, Default, Clone, Copy)]
pub struct TranslationResolver;

impl TranslationResolver {
    fn translate(pv: &PersistentVolume) -> Result<ResolvedVolume, ResolveError> {
        let translated = Translator::new()
            .pv_to_csi(pv)
            .map_err(|e| ResolveError::Translate(e.to_string()))?;
        let csi = translated
            .spec
            .and_then(|s| s.csi)
            .ok_or_else(|| ResolveError::Translate("translation produced no CSI source".into()))?;
        Ok(ResolvedVolume {
            driver: csi.driver,
            volume_handle: csi.volume_handle,
            volume_attributes: csi.volume_attributes.unwrap_or_default(),
            source: "translation".into(),
        })
    }
}

impl VolumeHandleResolver for TranslationResolver {
    fn resolve<'a>(
        &'a self,
        pv: &'a PersistentVolume,
    ) -> BoxFuture<'a, Result<ResolvedVolume, ResolveError>> {
        Box::pin(async move { Self::translate(pv) })
    }
}

/// How to reach vCenter. `Debug` redacts the password.
#[derive(Debug, Clone)]
pub struct VcenterConfig {
    /// `https://host[:port]` (optionally with `/sdk`).
    pub url: String,
    /// User and password.
    pub credentials: Credentials,
    /// Datacenter inventory paths searched in order for the datastore.
    pub datacenters: Vec<String>,
    /// TLS and timeouts.
    pub client_options: ClientOptions,
    /// The cluster id CNS records as the volume's owner (`Global.cluster-id`).
    pub cluster_id: String,
}

/// The vSphere resolver: `CnsVSphereVolumeMigration` records first, then vCenter.
pub struct VsphereResolver {
    kube: Client,
    vcenter: Option<VcenterConfig>,
    may_register: bool,
    /// One registration at a time (the CSI driver's per-path mutex: an FCD bug could mint
    /// two ids for one VMDK registered in parallel).
    registering: tokio::sync::Mutex<()>,
    /// The GCE project put into GCE handles translation leaves as `UNSPECIFIED`.
    gce_project: Option<String>,
}

/// GCE PD handles: translation cannot know the project (`projects/UNSPECIFIED/…`), which
/// the driver repairs for migrated volumes only; a native CSI PV must carry the real one.
/// A zone translation did not know (no zone label on the PV) is an error either way.
pub fn complete_gce_handle(
    resolved: &mut ResolvedVolume,
    project: Option<&str>,
) -> Result<(), ResolveError> {
    const UNSPECIFIED: &str = csi_migrate_translate::plugins::gce_pd::UNSPECIFIED;
    if resolved.driver != csi_migrate_translate::plugins::gce_pd::DRIVER_NAME {
        return Ok(());
    }
    let mut parts: Vec<String> = resolved
        .volume_handle
        .split('/')
        .map(str::to_owned)
        .collect();
    if parts.len() < 6 {
        return Ok(());
    }
    if parts[3] == UNSPECIFIED {
        return Err(ResolveError::Translate(
            "the GCE disk's zone is unknown (no topology.kubernetes.io/zone label on the PV): label the PV with its zone".into(),
        ));
    }
    if parts[1] == UNSPECIFIED {
        let Some(project) = project else {
            return Err(ResolveError::Translate(
                "the GCE handle would name project UNSPECIFIED: pass --gce-project with the disk's project".into(),
            ));
        };
        parts[1] = project.to_owned();
        resolved.volume_handle = parts.join("/");
        resolved.source = format!("{} + --gce-project", resolved.source);
    }
    Ok(())
}

impl VsphereResolver {
    /// Also completes GCE handles with `project` (see [`complete_gce_handle`]).
    pub fn with_gce_project(mut self, project: Option<String>) -> Self {
        self.gce_project = project;
        self
    }

    /// A resolver reading records through `kube`; `vcenter` enables registration when
    /// `may_register` (a `migrate` run; `plan` and `--dry-run` only look up).
    pub fn new(kube: Client, vcenter: Option<VcenterConfig>, may_register: bool) -> Self {
        Self {
            kube,
            vcenter,
            may_register,
            registering: tokio::sync::Mutex::new(()),
            gce_project: None,
        }
    }

    fn records(&self) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk(CNS_GROUP, CNS_VERSION, CNS_MIGRATION_KIND),
            CNS_MIGRATION_PLURAL,
        );
        Api::all_with(self.kube.clone(), &resource)
    }

    /// The FCD id recorded for `path`: exact `volumepath` match first (the driver's cache
    /// key), then the same datastore and disk path written another way.
    async fn recorded_id(&self, path: &VolumePath) -> Result<Option<String>, ResolveError> {
        let records = match self.records().list(&ListParams::default()).await {
            Ok(list) => list.items,
            Err(kube::Error::Api(status)) if status.code == 404 => return Ok(None),
            Err(source) => {
                return Err(ResolveError::Kube {
                    what: "reading",
                    source,
                });
            }
        };
        let entries: Vec<(String, String)> = records
            .iter()
            .filter_map(|r| {
                let spec = r.data.get("spec")?;
                let recorded_path = spec.get("volumepath")?.as_str()?.to_owned();
                let id = spec
                    .get("volumeid")
                    .and_then(|v| v.as_str())
                    .map(str::to_owned)
                    .or_else(|| r.metadata.name.clone())?;
                Some((recorded_path, id))
            })
            .filter(|(_, id)| !id.is_empty())
            .collect();
        if let Some((_, id)) = entries.iter().find(|(p, _)| *p == path.original) {
            return Ok(Some(id.clone()));
        }
        Ok(entries
            .into_iter()
            .find(|(p, _)| {
                VolumePath::parse(p).is_ok_and(|other| {
                    other.datastore == path.datastore && other.disk_path == path.disk_path
                })
            })
            .map(|(_, id)| id))
    }

    /// Writes the record the CSI driver's syncer would; `protected` fills
    /// `protectvolumefromvmdelete` (whether the FCD has `keepAfterDeleteVm`; when `false`
    /// the driver sets the flag on the next attach).
    async fn record(
        &self,
        path: &VolumePath,
        id: &str,
        protected: bool,
    ) -> Result<(), ResolveError> {
        let object: DynamicObject = serde_json::from_value(migration_record(path, id, protected))
            .map_err(|e| ResolveError::Kube {
            what: "recording in",
            source: kube::Error::SerdeError(e),
        })?;
        match self.records().create(&PostParams::default(), &object).await {
            Ok(_) => Ok(()),
            Err(kube::Error::Api(status)) if status.code == 409 => Ok(()),
            Err(source) => Err(ResolveError::Kube {
                what: "recording in",
                source,
            }),
        }
    }

    /// Finds (read-only) or registers the VMDK through vCenter: the FCD id and whether it
    /// is protected from VM deletion (`false` when only looked up).
    async fn through_vcenter(
        &self,
        vcenter: &VcenterConfig,
        path: &VolumePath,
    ) -> Result<(String, bool), ResolveError> {
        if vcenter.datacenters.is_empty() {
            return Err(ResolveError::NoDatacenters);
        }
        let mut client = VcenterClient::new(&vcenter.url, vcenter.client_options.clone())?;
        client.login(&vcenter.credentials).await?;
        let result = if self.may_register {
            client
                .register_cns_volume(path, &vcenter.datacenters, &vcenter.cluster_id)
                .await
                .map(|r| (r.volume_id, r.protected_from_vm_delete))
                .map_err(ResolveError::from)
        } else {
            Self::find_registered(&mut client, vcenter, path)
                .await
                .map(|id| (id, false))
        };
        let _ = client.logout().await;
        result
    }

    async fn find_registered(
        client: &mut VcenterClient,
        vcenter: &VcenterConfig,
        path: &VolumePath,
    ) -> Result<String, ResolveError> {
        for dc in &vcenter.datacenters {
            let Ok(datacenter) = client.find_datacenter(dc).await else {
                continue;
            };
            let Ok(datastore) = client.find_datastore(&datacenter, &path.datastore).await else {
                continue;
            };
            if let Some(object) = client
                .find_vstorage_object_by_path(&datastore, &path.disk_path)
                .await?
            {
                return Ok(object.id);
            }
        }
        Err(ResolveError::RegistrationDeferred {
            path: path.original.clone(),
        })
    }

    async fn resolve_vsphere(
        &self,
        pv: &PersistentVolume,
        volume_path: &str,
    ) -> Result<ResolvedVolume, ResolveError> {
        let translated = TranslationResolver::translate(pv)?;
        let path = VolumePath::parse(volume_path)?;
        let mut attributes = translated.volume_attributes;
        attributes.insert("type".into(), VSPHERE_BLOCK_VOLUME_TYPE.into());
        let resolved = |id: String, source: &str| ResolvedVolume {
            driver: VSPHERE_DRIVER.into(),
            volume_handle: id,
            volume_attributes: attributes.clone(),
            source: source.into(),
        };
        if let Some(id) = self.recorded_id(&path).await? {
            return Ok(resolved(id, "CnsVSphereVolumeMigration record"));
        }
        let Some(vcenter) = &self.vcenter else {
            return Err(ResolveError::NotRegistered {
                path: path.original.clone(),
            });
        };
        let _one_at_a_time = self.registering.lock().await;
        // Someone (the driver's syncer, a parallel resolve) may have registered it meanwhile.
        if let Some(id) = self.recorded_id(&path).await? {
            return Ok(resolved(id, "CnsVSphereVolumeMigration record"));
        }
        let (id, protected) = self.through_vcenter(vcenter, &path).await?;
        if self.may_register {
            self.record(&path, &id, protected).await?;
            return Ok(resolved(id, "registered with CNS through vCenter"));
        }
        Ok(resolved(id, "first-class disk found in vCenter"))
    }
}

impl VolumeHandleResolver for VsphereResolver {
    fn resolve<'a>(
        &'a self,
        pv: &'a PersistentVolume,
    ) -> BoxFuture<'a, Result<ResolvedVolume, ResolveError>> {
        Box::pin(async move {
            let path = pv
                .spec
                .as_ref()
                .and_then(|s| s.vsphere_volume.as_ref())
                .map(|v| v.volume_path.clone());
            match path {
                Some(path) => self.resolve_vsphere(pv, &path).await,
                None => {
                    let mut resolved = TranslationResolver::translate(pv)?;
                    complete_gce_handle(&mut resolved, self.gce_project.as_deref())?;
                    Ok(resolved)
                }
            }
        })
    }
}

/// The `CnsVSphereVolumeMigration` object the vSphere CSI driver keeps for a registered
/// in-tree VMDK: named by the FCD id, spec keys all lowercase.
pub fn migration_record(path: &VolumePath, id: &str, protected: bool) -> serde_json::Value {
    json!({
        "apiVersion": format!("{CNS_GROUP}/{CNS_VERSION}"),
        "kind": CNS_MIGRATION_KIND,
        "metadata": {"name": id},
        "spec": {"volumepath": path.original, "volumeid": id, "protectvolumefromvmdelete": protected},
    })
}

/// An in-tree vSphere PV to check: its name, `volumePath` and StorageClass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VsphereVolumeRef {
    /// PV name.
    pub pv: String,
    /// `spec.vsphereVolume.volumePath`.
    pub volume_path: String,
    /// `spec.storageClassName`, if any.
    pub storage_class: Option<String>,
}

/// The workload's in-tree vSphere PVs.
pub fn workload_vsphere_volumes(snapshot: &WorkloadSnapshot) -> Vec<VsphereVolumeRef> {
    let names = workload_volumes(snapshot);
    snapshot
        .volumes
        .iter()
        .filter(|pv| {
            pv.metadata
                .name
                .as_ref()
                .is_some_and(|name| names.contains(name))
        })
        .filter_map(|pv| {
            let spec = pv.spec.as_ref()?;
            Some(VsphereVolumeRef {
                pv: pv.metadata.name.clone()?,
                volume_path: spec.vsphere_volume.as_ref()?.volume_path.clone(),
                storage_class: spec.storage_class_name.clone().filter(|c| !c.is_empty()),
            })
        })
        .collect()
}

/// `(class, storagePolicyName)` of every in-tree vSphere StorageClass the volumes use.
fn policies_of_classes(
    volumes: &[VsphereVolumeRef],
    classes: &[StorageClass],
) -> Vec<(String, Option<String>)> {
    let used: BTreeSet<&str> = volumes
        .iter()
        .filter_map(|v| v.storage_class.as_deref())
        .collect();
    classes
        .iter()
        .filter(|c| c.provisioner == "kubernetes.io/vsphere-volume")
        .filter_map(|c| {
            let name = c.metadata.name.as_deref()?;
            used.contains(name).then(|| {
                let policy = c
                    .parameters
                    .as_ref()
                    .and_then(storage_policy_parameter)
                    .map(str::to_owned);
                (name.to_owned(), policy)
            })
        })
        .collect()
}

/// Every failed vCenter check for these volumes and classes (pure).
pub fn vcenter_failures(
    host: &str,
    facts: &VcenterFacts,
    volumes: &[VsphereVolumeRef],
    classes: &[StorageClass],
) -> Vec<CheckFailure> {
    let mut failures: Vec<CheckFailure> = check_version(host, &facts.about).into_iter().collect();
    failures.extend(
        volumes
            .iter()
            .filter_map(|v| check_volume(&v.pv, &v.volume_path, facts)),
    );
    failures.extend(
        policies_of_classes(volumes, classes)
            .iter()
            .filter_map(|(class, policy)| check_storage_policy(class, policy.as_deref(), facts)),
    );
    failures
}

/// A failed check as a plan blocker: code, what is wrong, what to do.
pub fn failure_blocker(failure: CheckFailure) -> Blocker {
    Blocker {
        object: failure.object,
        field: failure.field,
        message: format!(
            "{}: {}; {}",
            failure.code.as_str(),
            failure.message,
            failure.remedy
        ),
    }
}

/// Outcome of the vCenter preflight.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VcenterChecks {
    /// Failed checks: each blocks the migration.
    pub blockers: Vec<Blocker>,
    /// Why the checks could not run (vCenter unreachable, login refused): a warning, since
    /// volumes with `CnsVSphereVolumeMigration` records do not need vCenter, and those
    /// without one fail resolution with the same cause anyway.
    pub skipped: Option<String>,
}

/// The vCenter preflight of `plan` and `migrate`: for the workload's in-tree vSphere PVs,
/// the datastore and VMDK exist, the classes' storage policies exist, and vCenter can
/// register VMDKs. Facts are gathered here; the decisions are [`vcenter_failures`].
pub async fn vcenter_checks(vcenter: &VcenterConfig, snapshot: &WorkloadSnapshot) -> VcenterChecks {
    let volumes = workload_vsphere_volumes(snapshot);
    if volumes.is_empty() {
        return VcenterChecks::default();
    }
    let host = reqwest_host(&vcenter.url);
    if vcenter.datacenters.is_empty() {
        return VcenterChecks {
            blockers: vec![Blocker {
                object: format!("vcenter/{host}"),
                field: "--vcenter-datacenters".into(),
                message: ResolveError::NoDatacenters.to_string(),
            }],
            skipped: None,
        };
    }
    let paths: Vec<VolumePath> = volumes
        .iter()
        .filter_map(|v| VolumePath::parse(&v.volume_path).ok())
        .collect();
    let with_policies = policies_of_classes(&volumes, &snapshot.storage_classes)
        .iter()
        .any(|(_, policy)| policy.is_some());
    let gathered = async {
        let mut client = VcenterClient::new(&vcenter.url, vcenter.client_options.clone())?;
        client.login(&vcenter.credentials).await?;
        let facts = client
            .gather_facts(&paths, &vcenter.datacenters, with_policies)
            .await;
        let _ = client.logout().await;
        facts
    }
    .await;
    match gathered {
        Ok(facts) => VcenterChecks {
            blockers: vcenter_failures(&host, &facts, &volumes, &snapshot.storage_classes)
                .into_iter()
                .map(failure_blocker)
                .collect(),
            skipped: None,
        },
        Err(error) => VcenterChecks {
            blockers: Vec::new(),
            skipped: Some(format!(
                "vCenter checks of the vSphere volumes skipped (datastores, VMDKs, storage policies, version): cannot ask vCenter {host}: {error}"
            )),
        },
    }
}

/// The host (and port) of a URL, for naming vCenter in messages.
fn reqwest_host(url: &str) -> String {
    let without_scheme = url.split_once("://").map_or(url, |(_, rest)| rest);
    without_scheme
        .split('/')
        .next()
        .unwrap_or(without_scheme)
        .to_owned()
}

/// The PVs bound to the claims the workload migrates.
fn workload_volumes(snapshot: &WorkloadSnapshot) -> Vec<String> {
    snapshot
        .workload_claims()
        .iter()
        .filter_map(|name| {
            snapshot
                .claims
                .iter()
                .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
        })
        .filter_map(|c| c.spec.as_ref()?.volume_name.clone())
        .collect()
}

/// Resolves the handle of every in-tree PV behind the workload's claims into
/// `snapshot.resolved_volumes`; failures go to `snapshot.unresolved_volumes` (the planner
/// turns them into blockers naming the PV).
pub async fn resolve_snapshot(
    resolver: &dyn VolumeHandleResolver,
    snapshot: &mut WorkloadSnapshot,
) {
    for volume in workload_volumes(snapshot) {
        let Some(pv) = snapshot
            .volumes
            .iter()
            .find(|p| p.metadata.name.as_deref() == Some(volume.as_str()))
        else {
            continue;
        };
        if pv.spec.as_ref().is_some_and(|s| s.csi.is_some()) {
            continue;
        }
        match resolver.resolve(pv).await {
            Ok(resolved) => {
                snapshot.unresolved_volumes.remove(&volume);
                snapshot.resolved_volumes.insert(volume, resolved);
            }
            Err(error) => {
                snapshot.resolved_volumes.remove(&volume);
                snapshot
                    .unresolved_volumes
                    .insert(volume, error.to_string());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::atomic::{AtomicUsize, Ordering};

    use serde_json::{Value, json};

    use super::*;
    use crate::plan::tests::snapshot_json;
    use crate::plan::{PlanError, PlanOptions, plan_statefulset};

    /// The 3-replica snapshot moved to vSphere: in-tree `vsphere-thin` → `vsphere-thin-csi`.
    fn vsphere_snapshot() -> WorkloadSnapshot {
        let mut value = snapshot_json(3);
        for i in 0..3 {
            let spec = &mut value["volumes"][i]["spec"];
            spec.as_object_mut().unwrap().remove("awsElasticBlockStore");
            spec["vsphereVolume"] = json!({"volumePath": format!("[vsanDatastore] kubevols/disk-{i}.vmdk"), "fsType": "ext4"});
        }
        value["storageClasses"] = json!([
            {"metadata": {"name": "vsphere-thin"}, "provisioner": "kubernetes.io/vsphere-volume"},
            {"metadata": {"name": "vsphere-thin-csi"}, "provisioner": VSPHERE_DRIVER}
        ]);
        value["csiDrivers"] = json!([{"metadata": {"name": VSPHERE_DRIVER}}]);
        serde_json::from_value::<WorkloadSnapshot>(value).unwrap()
    }

    /// Answers vSphere PVs from a fixed path → id table, counting calls.
    struct TableResolver {
        ids: BTreeMap<String, String>,
        calls: AtomicUsize,
    }

    impl VolumeHandleResolver for TableResolver {
        fn resolve<'a>(
            &'a self,
            pv: &'a PersistentVolume,
        ) -> BoxFuture<'a, Result<ResolvedVolume, ResolveError>> {
            Box::pin(async move {
                self.calls.fetch_add(1, Ordering::SeqCst);
                let path = pv
                    .spec
                    .as_ref()
                    .unwrap()
                    .vsphere_volume
                    .as_ref()
                    .unwrap()
                    .volume_path
                    .clone();
                match self.ids.get(&path) {
                    Some(id) => Ok(ResolvedVolume {
                        driver: VSPHERE_DRIVER.into(),
                        volume_handle: id.clone(),
                        volume_attributes: [(
                            "type".to_owned(),
                            VSPHERE_BLOCK_VOLUME_TYPE.to_owned(),
                        )]
                        .into(),
                        source: "table".into(),
                    }),
                    None => Err(ResolveError::NotRegistered { path }),
                }
            })
        }
    }

    fn table(known: &[usize]) -> TableResolver {
        TableResolver {
            ids: known
                .iter()
                .map(|i| {
                    (
                        format!("[vsanDatastore] kubevols/disk-{i}.vmdk"),
                        format!("fcd-{i}"),
                    )
                })
                .collect(),
            calls: AtomicUsize::new(0),
        }
    }

    #[tokio::test]
    async fn translation_resolver_gives_the_translated_ebs_handle() {
        let snapshot: WorkloadSnapshot = serde_json::from_value(snapshot_json(1)).unwrap();
        let resolved = TranslationResolver
            .resolve(&snapshot.volumes[0])
            .await
            .unwrap();
        assert_eq!(resolved.driver, "ebs.csi.aws.com");
        assert_eq!(resolved.volume_handle, "vol-0");
        assert_eq!(resolved.source, "translation");
    }

    #[tokio::test]
    async fn translation_of_vsphere_gives_the_path_not_an_fcd_id() {
        let snapshot = vsphere_snapshot();
        let resolved = TranslationResolver
            .resolve(&snapshot.volumes[0])
            .await
            .unwrap();
        assert_eq!(resolved.driver, VSPHERE_DRIVER);
        assert_eq!(
            resolved.volume_handle,
            "[vsanDatastore] kubevols/disk-0.vmdk"
        );
    }

    #[tokio::test]
    async fn resolved_fcd_ids_become_the_csi_handles_in_the_plan() {
        let mut snapshot = vsphere_snapshot();
        let resolver = table(&[0, 1, 2]);
        resolve_snapshot(&resolver, &mut snapshot).await;
        assert_eq!(resolver.calls.load(Ordering::SeqCst), 3);
        let plan = plan_statefulset(&snapshot, "vsphere-thin-csi", PlanOptions::default()).unwrap();
        assert_eq!(plan.driver, VSPHERE_DRIVER);
        for volume in plan.volumes() {
            let i = volume.old_volume.trim_start_matches("pvc-");
            assert_eq!(volume.volume_handle, format!("fcd-{i}"));
            let csi = volume
                .new_volume
                .spec
                .as_ref()
                .unwrap()
                .csi
                .as_ref()
                .unwrap();
            assert_eq!(csi.driver, VSPHERE_DRIVER);
            assert_eq!(csi.volume_handle, format!("fcd-{i}"));
            assert_eq!(csi.fs_type.as_deref(), Some("ext4"));
            assert_eq!(
                csi.volume_attributes
                    .as_ref()
                    .unwrap()
                    .get("type")
                    .map(String::as_str),
                Some(VSPHERE_BLOCK_VOLUME_TYPE)
            );
        }
        // the ids travel with the snapshot (the backup) and the plan
        let round: WorkloadSnapshot =
            serde_json::from_str(&serde_json::to_string(&snapshot).unwrap()).unwrap();
        assert_eq!(round.resolved_volumes, snapshot.resolved_volumes);
        assert!(serde_json::to_string(&plan).unwrap().contains("fcd-2"));
    }

    #[tokio::test]
    async fn unresolvable_vsphere_volume_blocks_naming_the_pv_and_what_to_configure() {
        let mut snapshot = vsphere_snapshot();
        resolve_snapshot(&table(&[0, 2]), &mut snapshot).await;
        let err =
            plan_statefulset(&snapshot, "vsphere-thin-csi", PlanOptions::default()).unwrap_err();
        let PlanError::Blocked(blockers) = &err;
        assert_eq!(blockers.len(), 1, "{err}");
        assert_eq!(blockers[0].object, "persistentvolume/pvc-1");
        assert_eq!(blockers[0].field, "spec.vsphereVolume.volumePath");
        let text = err.to_string();
        for wanted in [
            "kubevols/disk-1.vmdk",
            "--vcenter",
            "VSPHERE_USER",
            "--vsphere-config",
        ] {
            assert!(text.contains(wanted), "{wanted} missing from {text}");
        }
    }

    /// The 3-replica snapshot on GCE PD, zone-labelled: `standard` → `standard-csi`.
    fn gce_snapshot() -> WorkloadSnapshot {
        let mut value = snapshot_json(3);
        for i in 0..3 {
            let pv = &mut value["volumes"][i];
            pv["spec"]
                .as_object_mut()
                .unwrap()
                .remove("awsElasticBlockStore");
            pv["spec"]["gcePersistentDisk"] =
                json!({"pdName": format!("disk-{i}"), "fsType": "ext4"});
            pv["metadata"]["labels"] = json!({"topology.kubernetes.io/zone": "europe-west1-b"});
        }
        value["storageClasses"] = json!([
            {"metadata": {"name": "standard"}, "provisioner": "kubernetes.io/gce-pd"},
            {"metadata": {"name": "standard-csi"}, "provisioner": "pd.csi.storage.gke.io"}
        ]);
        value["csiDrivers"] = json!([{"metadata": {"name": "pd.csi.storage.gke.io"}}]);
        serde_json::from_value::<WorkloadSnapshot>(value).unwrap()
    }

    /// Resolves like the CLI's resolver does for non-vSphere volumes, with a GCE project.
    struct GceResolver(Option<&'static str>);

    impl VolumeHandleResolver for GceResolver {
        fn resolve<'a>(
            &'a self,
            pv: &'a PersistentVolume,
        ) -> BoxFuture<'a, Result<ResolvedVolume, ResolveError>> {
            Box::pin(async move {
                let mut resolved = TranslationResolver::translate(pv)?;
                complete_gce_handle(&mut resolved, self.0)?;
                Ok(resolved)
            })
        }
    }

    #[tokio::test]
    async fn gce_volumes_block_without_a_project_and_plan_with_one() {
        let mut blocked = gce_snapshot();
        resolve_snapshot(&GceResolver(None), &mut blocked).await;
        let err = plan_statefulset(&blocked, "standard-csi", PlanOptions::default()).unwrap_err();
        assert!(err.to_string().contains("--gce-project"), "{err}");

        let mut ready = gce_snapshot();
        resolve_snapshot(&GceResolver(Some("shop-prod")), &mut ready).await;
        let plan = plan_statefulset(&ready, "standard-csi", PlanOptions::default()).unwrap();
        let handles: Vec<String> = plan
            .volumes()
            .filter_map(|v| {
                v.new_volume
                    .spec
                    .as_ref()
                    .and_then(|s| s.csi.as_ref())
                    .map(|c| c.volume_handle.clone())
            })
            .collect();
        assert_eq!(handles.len(), 3);
        assert!(
            handles
                .iter()
                .all(|h| h.starts_with("projects/shop-prod/zones/europe-west1-b/disks/disk-")),
            "{handles:?}"
        );
    }

    #[test]
    fn vsphere_without_any_resolution_still_blocks() {
        let snapshot = vsphere_snapshot();
        let err =
            plan_statefulset(&snapshot, "vsphere-thin-csi", PlanOptions::default()).unwrap_err();
        let PlanError::Blocked(blockers) = &err;
        assert_eq!(blockers.len(), 3, "{err}");
        assert!(err.to_string().contains("first-class disk (FCD) id"));
    }

    #[tokio::test]
    async fn only_the_sets_own_claims_are_resolved() {
        let mut snapshot = vsphere_snapshot();
        let mut value: Value = serde_json::to_value(&snapshot).unwrap();
        value["statefulset"]["spec"]["replicas"] = json!(2);
        snapshot = serde_json::from_value(value).unwrap();
        let resolver = table(&[0, 1, 2]);
        resolve_snapshot(&resolver, &mut snapshot).await;
        assert_eq!(resolver.calls.load(Ordering::SeqCst), 2);
        assert!(!snapshot.resolved_volumes.contains_key("pvc-2"));
    }

    #[test]
    fn migration_record_has_the_drivers_lowercase_keys_and_protection() {
        let path = VolumePath::parse("[my ds] kubevols/a.vmdk").unwrap();
        let record = migration_record(&path, "fcd-1", true);
        assert_eq!(record["metadata"]["name"], "fcd-1");
        assert_eq!(record["spec"]["volumepath"], "[my ds] kubevols/a.vmdk");
        assert_eq!(record["spec"]["volumeid"], "fcd-1");
        assert_eq!(record["spec"]["protectvolumefromvmdelete"], true);
        assert_eq!(
            migration_record(&path, "fcd-1", false)["spec"]["protectvolumefromvmdelete"],
            false
        );
    }

    #[test]
    fn vcenter_failures_name_the_pv_or_class_and_the_field() {
        use csi_migrate_vsphere::{AboutInfo, CheckCode, DiskFacts};
        let facts = |api: &str| VcenterFacts {
            about: AboutInfo {
                full_name: String::new(),
                version: api.into(),
                build: "1".into(),
                api_version: api.into(),
            },
            datacenters: vec!["DC0".into()],
            disks: [
                (
                    "[ds] a.vmdk".to_owned(),
                    DiskFacts {
                        datacenter: Some("DC0".into()),
                        vmdk_exists: true,
                    },
                ),
                (
                    "[gone] b.vmdk".to_owned(),
                    DiskFacts {
                        datacenter: None,
                        vmdk_exists: false,
                    },
                ),
            ]
            .into(),
            storage_policies: Some(["vSAN Default Storage Policy".to_owned()].into()),
        };
        let volume = |pv: &str, path: &str, class: &str| VsphereVolumeRef {
            pv: pv.into(),
            volume_path: path.into(),
            storage_class: Some(class.into()),
        };
        let class = |name: &str, policy: &str| -> StorageClass {
            serde_json::from_value(json!({"metadata": {"name": name},
                "provisioner": "kubernetes.io/vsphere-volume",
                "parameters": {"storagePolicyName": policy}}))
            .unwrap()
        };
        let classes = vec![
            class("good", "vSAN Default Storage Policy"),
            class("bad", "gold"),
            class("unused", "silver"),
        ];
        /// (API version, volumes, expected (code, object) failures)
        type Case<'a> = (&'a str, Vec<VsphereVolumeRef>, Vec<(CheckCode, &'a str)>);
        let table: Vec<Case> = vec![
            (
                "7.0.3.0",
                vec![volume("pv-a", "[ds] a.vmdk", "good")],
                vec![],
            ),
            (
                "6.5",
                vec![volume("pv-a", "[ds] a.vmdk", "good")],
                vec![(CheckCode::VcenterVersion, "vcenter/vc:443")],
            ),
            (
                "7.0.3.0",
                vec![
                    volume("pv-a", "[ds] a.vmdk", "bad"),
                    volume("pv-b", "[gone] b.vmdk", "good"),
                ],
                vec![
                    (CheckCode::DatastoreMissing, "persistentvolume/pv-b"),
                    (CheckCode::StoragePolicyMissing, "storageclass/bad"),
                ],
            ),
        ];
        for (api, volumes, wanted) in table {
            let got: Vec<(CheckCode, String)> =
                vcenter_failures("vc:443", &facts(api), &volumes, &classes)
                    .into_iter()
                    .map(|f| (f.code, f.object))
                    .collect();
            let wanted: Vec<(CheckCode, String)> =
                wanted.into_iter().map(|(c, o)| (c, o.to_owned())).collect();
            assert_eq!(got, wanted, "{api} {volumes:?}");
        }
        let blocker = failure_blocker(
            vcenter_failures("vc", &facts("6.5"), &[], &classes)
                .pop()
                .unwrap(),
        );
        assert!(blocker.message.starts_with("VSPHERE_VCENTER_VERSION: "));
        assert!(blocker.message.contains("upgrade vCenter"));
        assert_eq!(
            reqwest_host("https://vc.example.com:8443/sdk"),
            "vc.example.com:8443"
        );
    }

    #[test]
    fn vcenter_config_debug_hides_the_password() {
        let config = VcenterConfig {
            url: "https://vc".into(),
            credentials: Credentials::new("admin", "Sup3r-secret"),
            datacenters: vec!["DC0".into()],
            client_options: ClientOptions::default(),
            cluster_id: "c".into(),
        };
        assert!(!format!("{config:?}").contains("Sup3r-secret"));
    }
}

#[cfg(test)]
mod gce_tests {
    use super::*;

    fn gce(handle: &str) -> ResolvedVolume {
        ResolvedVolume {
            driver: "pd.csi.storage.gke.io".into(),
            volume_handle: handle.into(),
            volume_attributes: Default::default(),
            source: "translation".into(),
        }
    }

    #[test]
    fn gce_handles_get_the_project_or_a_reason() {
        let mut zonal = gce("projects/UNSPECIFIED/zones/europe-west1-b/disks/d");
        assert!(complete_gce_handle(&mut zonal.clone(), None).is_err());
        complete_gce_handle(&mut zonal, Some("shop-prod")).ok();
        assert_eq!(
            zonal.volume_handle,
            "projects/shop-prod/zones/europe-west1-b/disks/d"
        );
        let mut regional = gce("projects/UNSPECIFIED/regions/europe-west1/disks/d");
        complete_gce_handle(&mut regional, Some("p")).ok();
        assert_eq!(
            regional.volume_handle,
            "projects/p/regions/europe-west1/disks/d"
        );
        let unknown_zone = complete_gce_handle(
            &mut gce("projects/UNSPECIFIED/zones/UNSPECIFIED/disks/d"),
            Some("p"),
        );
        assert!(unknown_zone.is_err_and(|e| e.to_string().contains("zone is unknown")));
        let mut ebs = gce("vol-1");
        ebs.driver = "ebs.csi.aws.com".into();
        assert!(complete_gce_handle(&mut ebs, None).is_ok());
    }
}
