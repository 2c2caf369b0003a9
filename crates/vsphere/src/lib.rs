//! vCenter SOAP client for csi-migrate's vSphere support: sessions, inventory lookup,
//! first-class disk registration, storage policies, the preflight checks, the in-tree
//! volume path parser, and a launcher for the vCenter simulator.

pub mod checks;
pub mod client;
pub mod cns;
pub mod csi_config;
pub mod fault;
pub mod pbm;
pub mod simulator;
pub mod volume_path;
pub mod xml;

pub use checks::{
    CheckCode, CheckFailure, DiskFacts, VcenterFacts, check_storage_policy, check_version,
    check_volume, storage_policy_parameter, supports_registration,
};
pub use client::{
    AboutInfo, ClientOptions, Credentials, Datacenter, Datastore, MoRef, Password, Registration,
    ServiceContent, VStorageObject, VcenterClient, VsphereError,
};
pub use cns::{
    BackingDisk, CnsCreated, CnsRegistration, CnsVolume, ContainerCluster, VmDeleteProtection,
    api_version_at_least, supports_backing_disk_url_path, vm_delete_protection,
};
pub use csi_config::{CsiConfigError, CsiVsphereConfig, VirtualCenterEntry};
pub use fault::{Fault, FaultKind};
pub use volume_path::{VolumePath, VolumePathError};
