//! One translator per in-tree plugin, each behind [`crate::InTreePlugin`].

pub mod aws_ebs;
pub mod azure_disk;
pub mod azure_file;
pub mod cinder;
pub mod gce_pd;
pub mod portworx;
pub mod rbd;
pub mod vsphere;
