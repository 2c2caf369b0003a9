//! Loaders at the edge: files and directories ([`files`]) or a live cluster ([`live`]) into a [`crate::ClusterSnapshot`].

pub mod files;
pub mod live;
