//! vCenter-side preflight checks for in-tree vSphere volumes: facts gathered by the client, decisions as pure functions.

use std::collections::{BTreeMap, BTreeSet};

use crate::client::{AboutInfo, VcenterClient, VsphereError};
use crate::cns::api_version_at_least;
use crate::volume_path::VolumePath;

/// Build of vCenter 6.7U3l, the first 6.7 release the CSI driver registers VMDKs on.
const VCENTER_67U3L_BUILD: u64 = 17_137_327;

/// What vCenter says about one in-tree `volumePath`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DiskFacts {
    /// The first configured datacenter holding the path's datastore; `None` when none does.
    pub datacenter: Option<String>,
    /// Whether the VMDK descriptor exists on that datastore.
    pub vmdk_exists: bool,
}

/// Everything the checks need to know about one vCenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VcenterFacts {
    /// Product and API version.
    pub about: AboutInfo,
    /// The datacenters searched, in order.
    pub datacenters: Vec<String>,
    /// Facts per in-tree `volumePath` (the PV's string, exactly).
    pub disks: BTreeMap<String, DiskFacts>,
    /// Names of the storage policies; `None` when the policy service could not be asked.
    pub storage_policies: Option<BTreeSet<String>>,
}

/// Which check failed; the string form is a stable code (`scan -o json` reports it).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CheckCode {
    /// The datastore named in a PV's `volumePath` is in none of the configured datacenters.
    DatastoreMissing,
    /// The VMDK a PV's `volumePath` names does not exist on its datastore.
    VmdkMissing,
    /// The storage policy an in-tree StorageClass names does not exist.
    StoragePolicyMissing,
    /// vCenter is too old to give an in-tree VMDK a CNS identity.
    VcenterVersion,
}

impl CheckCode {
    /// The stable code, e.g. `VSPHERE_DATASTORE_MISSING`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::DatastoreMissing => "VSPHERE_DATASTORE_MISSING",
            Self::VmdkMissing => "VSPHERE_VMDK_MISSING",
            Self::StoragePolicyMissing => "VSPHERE_STORAGE_POLICY_MISSING",
            Self::VcenterVersion => "VSPHERE_VCENTER_VERSION",
        }
    }
}

/// One failed check: the object and field at fault, what is wrong and what to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CheckFailure {
    /// Which check.
    pub code: CheckCode,
    /// `persistentvolume/NAME`, `storageclass/NAME` or `vcenter/HOST`.
    pub object: String,
    /// The field at fault, e.g. `spec.vsphereVolume.volumePath`.
    pub field: String,
    /// What is wrong.
    pub message: String,
    /// What to do about it.
    pub remedy: String,
}

/// Whether this vCenter can register in-tree VMDKs with CNS: 7.0U1+ through
/// `backingDiskUrlPath`, 6.7U3l … 7.0.0 through `RegisterDisk` + `backingDiskId`.
pub fn supports_registration(about: &AboutInfo) -> bool {
    if api_version_at_least(&about.api_version, (6, 7, 4)) {
        return true;
    }
    api_version_at_least(&about.api_version, (6, 7, 3))
        && about
            .build
            .trim()
            .parse::<u64>()
            .is_ok_and(|build| build >= VCENTER_67U3L_BUILD)
}

/// The version check, for the vCenter at `host`.
pub fn check_version(host: &str, about: &AboutInfo) -> Option<CheckFailure> {
    (!supports_registration(about)).then(|| CheckFailure {
        code: CheckCode::VcenterVersion,
        object: format!("vcenter/{host}"),
        field: "about.apiVersion".into(),
        message: format!(
            "vCenter {host} reports API {} (build {}); registering an in-tree VMDK as a CNS volume needs vCenter 6.7U3l or later",
            about.api_version, about.build
        ),
        remedy: "upgrade vCenter to 7.0U1 or later (6.7U3l … 7.0.0 work through RegisterDisk)".into(),
    })
}

/// The datastore and VMDK checks for PV `pv` with in-tree `volume_path`. Nothing is
/// reported for a path that does not parse (the resolver says why) or was not gathered.
pub fn check_volume(pv: &str, volume_path: &str, facts: &VcenterFacts) -> Option<CheckFailure> {
    let path = VolumePath::parse(volume_path).ok()?;
    let disk = facts.disks.get(volume_path)?;
    let object = format!("persistentvolume/{pv}");
    let field = "spec.vsphereVolume.volumePath".to_owned();
    match &disk.datacenter {
        None => Some(CheckFailure {
            code: CheckCode::DatastoreMissing,
            object,
            field,
            message: format!(
                "datastore {:?} (from {volume_path:?}) is in none of the datacenters {:?}",
                path.datastore, facts.datacenters
            ),
            remedy: "add the datastore's datacenter to --vcenter-datacenters (or `datacenters` in csi-vsphere.conf), or correct the datastore name; a renamed datastore must get its old name back".into(),
        }),
        Some(datacenter) if !disk.vmdk_exists => Some(CheckFailure {
            code: CheckCode::VmdkMissing,
            object,
            field,
            message: format!(
                "VMDK {:?} does not exist on datastore {:?} in datacenter {datacenter:?}",
                path.disk_path, path.datastore
            ),
            remedy: "find where the disk went (Storage DRS or Storage vMotion may have moved it) and correct the path, or restore the disk; CNS can only register a VMDK that exists".into(),
        }),
        Some(_) => None,
    }
}

/// The `storagePolicyName` parameter of an in-tree vSphere StorageClass (keys are
/// case-insensitive for the in-tree provisioner).
pub fn storage_policy_parameter<'a>(
    parameters: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> Option<&'a str> {
    parameters
        .into_iter()
        .find(|(key, _)| key.eq_ignore_ascii_case("storagePolicyName"))
        .map(|(_, value)| value.as_str())
        .filter(|value| !value.is_empty())
}

/// The storage policy check for in-tree class `class` naming `policy`. Nothing is reported
/// when the class names no policy or the policies could not be listed.
pub fn check_storage_policy(
    class: &str,
    policy: Option<&str>,
    facts: &VcenterFacts,
) -> Option<CheckFailure> {
    let policy = policy?;
    let known = facts.storage_policies.as_ref()?;
    (!known.contains(policy)).then(|| CheckFailure {
        code: CheckCode::StoragePolicyMissing,
        object: format!("storageclass/{class}"),
        field: "parameters.storagePolicyName".into(),
        message: format!(
            "storage policy {policy:?} does not exist in vCenter (known: {})",
            known.iter().cloned().collect::<Vec<_>>().join(", ")
        ),
        remedy: "create the policy in vCenter or restore its old name: the CSI driver resolves it by name when it registers and attaches migrated volumes".into(),
    })
}

impl VcenterClient {
    /// Gathers the facts the checks need: version, where each path's datastore and VMDK
    /// are, and (when `with_policies`) the storage policy names. Needs a session.
    pub async fn gather_facts(
        &mut self,
        paths: &[VolumePath],
        datacenters: &[String],
        with_policies: bool,
    ) -> Result<VcenterFacts, VsphereError> {
        let about = match self.service_content() {
            Some(service) => service.about.clone(),
            None => self.retrieve_service_content().await?.about.clone(),
        };
        let mut disks = BTreeMap::new();
        for path in paths {
            let mut facts = DiskFacts {
                datacenter: None,
                vmdk_exists: false,
            };
            for dc in datacenters {
                let datacenter = match self.find_datacenter(dc).await {
                    Ok(found) => found,
                    Err(VsphereError::DatacenterNotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                let datastore = match self.find_datastore(&datacenter, &path.datastore).await {
                    Ok(found) => found,
                    Err(VsphereError::DatastoreNotFound { .. }) => continue,
                    Err(e) => return Err(e),
                };
                facts = DiskFacts {
                    datacenter: Some(dc.clone()),
                    vmdk_exists: self
                        .datastore_file_exists(&datastore, &path.disk_path)
                        .await?,
                };
                break;
            }
            disks.insert(path.original.clone(), facts);
        }
        let storage_policies = if with_policies {
            // A vCenter without a reachable policy service is not a blocker by itself.
            self.storage_policy_names()
                .await
                .ok()
                .map(|names| names.into_iter().collect())
        } else {
            None
        };
        Ok(VcenterFacts {
            about,
            datacenters: datacenters.to_vec(),
            disks,
            storage_policies,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn about(api: &str, build: &str) -> AboutInfo {
        AboutInfo {
            full_name: "VMware vCenter Server".into(),
            version: api.into(),
            build: build.into(),
            api_version: api.into(),
        }
    }

    fn facts() -> VcenterFacts {
        let disk = |dc: Option<&str>, exists| DiskFacts {
            datacenter: dc.map(str::to_owned),
            vmdk_exists: exists,
        };
        VcenterFacts {
            about: about("7.0.3.0", "1"),
            datacenters: vec!["DC0".into()],
            disks: [
                ("[ds1] kubevols/ok.vmdk".to_owned(), disk(Some("DC0"), true)),
                (
                    "[ds1] kubevols/gone.vmdk".to_owned(),
                    disk(Some("DC0"), false),
                ),
                ("[nods] kubevols/x.vmdk".to_owned(), disk(None, false)),
            ]
            .into(),
            storage_policies: Some(["vSAN Default Storage Policy".to_owned()].into()),
        }
    }

    #[test]
    fn version_table() {
        let table = [
            ("6.5", "5973321", false),
            ("6.7.3", "15000000", false),
            ("6.7.3", "17137327", true),
            ("6.7.3", "not-a-number", false),
            ("7.0.0.0", "1", true),
            ("7.0.1.0", "1", true),
            ("8.0.3.0", "1", true),
        ];
        for (api, build, supported) in table {
            assert_eq!(
                supports_registration(&about(api, build)),
                supported,
                "{api} {build}"
            );
            let failure = check_version("vc", &about(api, build));
            assert_eq!(failure.is_none(), supported);
            if let Some(failure) = failure {
                assert_eq!(failure.code.as_str(), "VSPHERE_VCENTER_VERSION");
                assert!(failure.message.contains(api), "{}", failure.message);
            }
        }
    }

    #[test]
    fn volume_table() {
        let facts = facts();
        let table = [
            ("[ds1] kubevols/ok.vmdk", None),
            ("[ds1] kubevols/gone.vmdk", Some(CheckCode::VmdkMissing)),
            ("[nods] kubevols/x.vmdk", Some(CheckCode::DatastoreMissing)),
            ("[ds1] kubevols/not-gathered.vmdk", None),
            ("no brackets", None),
        ];
        for (path, wanted) in table {
            let failure = check_volume("pv-a", path, &facts);
            assert_eq!(failure.as_ref().map(|f| f.code), wanted, "{path}");
            if let Some(failure) = failure {
                assert_eq!(failure.object, "persistentvolume/pv-a");
                assert_eq!(failure.field, "spec.vsphereVolume.volumePath");
                assert!(!failure.remedy.is_empty());
            }
        }
    }

    #[test]
    fn storage_policy_table() {
        let mut unknown = facts();
        unknown.storage_policies = None;
        let table = [
            (Some("vSAN Default Storage Policy"), facts(), None),
            (Some("gold"), facts(), Some(CheckCode::StoragePolicyMissing)),
            (None, facts(), None),
            (Some("gold"), unknown, None),
        ];
        for (policy, facts, wanted) in table {
            let failure = check_storage_policy("thin", policy, &facts);
            assert_eq!(failure.as_ref().map(|f| f.code), wanted, "{policy:?}");
            if let Some(failure) = failure {
                assert_eq!(failure.object, "storageclass/thin");
                assert_eq!(failure.field, "parameters.storagePolicyName");
                assert!(failure.message.contains("gold"));
            }
        }
    }

    #[test]
    fn storage_policy_parameter_is_case_insensitive() {
        let params: BTreeMap<String, String> = [
            ("diskformat".to_owned(), "thin".to_owned()),
            ("storagepolicyname".to_owned(), "gold".to_owned()),
        ]
        .into();
        assert_eq!(storage_policy_parameter(&params), Some("gold"));
        let none: BTreeMap<String, String> = [("storagePolicyName".into(), String::new())].into();
        assert_eq!(storage_policy_parameter(&none), None);
    }
}
