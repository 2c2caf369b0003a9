//! vCenter SOAP client for csi-migrate's vSphere support: sessions, inventory lookup,
//! first-class disk registration, and the in-tree volume path parser.

pub mod client;
pub mod cns;
pub mod csi_config;
pub mod fault;
pub mod volume_path;
pub mod xml;

pub use client::{
    AboutInfo, ClientOptions, Credentials, Datacenter, Datastore, MoRef, Password, Registration,
    ServiceContent, VStorageObject, VcenterClient, VsphereError,
};
pub use cns::{BackingDisk, CnsCreated, CnsRegistration, CnsVolume, ContainerCluster};
pub use csi_config::{CsiConfigError, CsiVsphereConfig, VirtualCenterEntry};
pub use fault::{Fault, FaultKind};
pub use volume_path::{VolumePath, VolumePathError};
