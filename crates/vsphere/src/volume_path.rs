//! Parser for the in-tree `vsphereVolume.volumePath` form `[datastore] folder/disk.vmdk`.

use std::fmt;

/// Why an in-tree volume path could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VolumePathError {
    /// The path does not start with a `[datastore]` part (after leading whitespace), or the
    /// bracket is never closed.
    #[error("volume path {path:?} does not start with a [datastore] part")]
    MissingDatastore {
        /// The path as given.
        path: String,
    },
    /// The bracket part is empty or ends in `/`, so there is no datastore name.
    #[error("volume path {path:?} has an empty datastore name")]
    EmptyDatastore {
        /// The path as given.
        path: String,
    },
    /// Nothing follows the `[datastore]` part.
    #[error("volume path {path:?} names no disk after the datastore")]
    MissingDisk {
        /// The path as given.
        path: String,
    },
    /// The disk path does not end in `.vmdk`; the CSI driver only treats `.vmdk` handles as
    /// migrated in-tree volumes.
    #[error("volume path {path:?} does not end in .vmdk")]
    NotVmdk {
        /// The path as given.
        path: String,
    },
}

/// A parsed in-tree volume path, split the way the vSphere CSI driver splits it: the text in
/// the first `[...]` is split on `/` and its last component is the datastore name (so
/// `[DatastoreCluster/ds1]` and `[/dc/datastore/ds1]` name datastore `ds1`); the rest,
/// trimmed, is the datastore-relative disk path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VolumePath {
    /// The string exactly as it appears in the PV (the CSI driver's cache key).
    pub original: String,
    /// The datastore name, e.g. `LocalDS_0` or `my ds`.
    pub datastore: String,
    /// What preceded the datastore name inside the brackets (datastore cluster or inventory
    /// folder), without the trailing `/`; `None` for the plain form.
    pub datastore_prefix: Option<String>,
    /// Datastore-relative path of the descriptor, e.g. `kubevols/disk.vmdk`.
    pub disk_path: String,
}

impl VolumePath {
    /// Parses an in-tree `volumePath`.
    pub fn parse(path: &str) -> Result<Self, VolumePathError> {
        let trimmed = path.trim_start();
        let missing = || VolumePathError::MissingDatastore {
            path: path.to_owned(),
        };
        let inner_and_rest = trimmed.strip_prefix('[').ok_or_else(missing)?;
        let close = inner_and_rest.find(']').ok_or_else(missing)?;
        let inside = &inner_and_rest[..close];
        if inside.contains('[') {
            return Err(missing());
        }
        let rest = inner_and_rest[close + 1..].trim();
        let (prefix, datastore) = match inside.rsplit_once('/') {
            Some((prefix, name)) => (Some(prefix), name),
            None => (None, inside),
        };
        if datastore.trim().is_empty() {
            return Err(VolumePathError::EmptyDatastore {
                path: path.to_owned(),
            });
        }
        if rest.is_empty() {
            return Err(VolumePathError::MissingDisk {
                path: path.to_owned(),
            });
        }
        if !rest.ends_with(".vmdk") {
            return Err(VolumePathError::NotVmdk {
                path: path.to_owned(),
            });
        }
        Ok(Self {
            original: path.to_owned(),
            datastore: datastore.to_owned(),
            datastore_prefix: prefix.filter(|p| !p.is_empty()).map(str::to_owned),
            disk_path: rest.to_owned(),
        })
    }

    /// The canonical datastore path `[datastore] disk_path`, as vCenter reports a disk's
    /// backing `filePath`.
    pub fn datastore_path(&self) -> String {
        format!("[{}] {}", self.datastore, self.disk_path)
    }
}

impl fmt::Display for VolumePath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.original)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn parses_valid_paths() {
        // (input, datastore, prefix, disk path)
        let cases: &[(&str, &str, Option<&str>, &str)] = &[
            (
                "[LocalDS_0] kubevols/disk.vmdk",
                "LocalDS_0",
                None,
                "kubevols/disk.vmdk",
            ),
            (
                "[my ds] kube vols/disk 1.vmdk",
                "my ds",
                None,
                "kube vols/disk 1.vmdk",
            ),
            ("  [ds]   a.vmdk  ", "ds", None, "a.vmdk"),
            (
                "[DatastoreCluster/ds1] kubevols/x.vmdk",
                "ds1",
                Some("DatastoreCluster"),
                "kubevols/x.vmdk",
            ),
            (
                "[/dc/datastore/ds 2] f/x.vmdk",
                "ds 2",
                Some("/dc/datastore"),
                "f/x.vmdk",
            ),
            (
                "[vsanDatastore] 6785a85e-1234/kubernetes-dynamic-pvc-1.vmdk",
                "vsanDatastore",
                None,
                "6785a85e-1234/kubernetes-dynamic-pvc-1.vmdk",
            ),
            // a trailing "vmdk" in the name must survive (the driver's old Trim bug)
            ("[ds] vmdk/dvmdk.vmdk", "ds", None, "vmdk/dvmdk.vmdk"),
            ("[ds-ä&ü] x.vmdk", "ds-ä&ü", None, "x.vmdk"),
        ];
        for (input, datastore, prefix, disk) in cases {
            let parsed = VolumePath::parse(input).unwrap_or_else(|e| panic!("{input:?}: {e}"));
            assert_eq!(parsed.datastore, *datastore, "{input:?}");
            assert_eq!(parsed.datastore_prefix.as_deref(), *prefix, "{input:?}");
            assert_eq!(parsed.disk_path, *disk, "{input:?}");
            assert_eq!(parsed.original, *input);
            assert_eq!(parsed.to_string(), *input);
        }
        assert_eq!(
            VolumePath::parse("[Cluster/my ds]  a/b.vmdk")
                .unwrap()
                .datastore_path(),
            "[my ds] a/b.vmdk"
        );
    }

    #[test]
    fn rejects_invalid_paths() {
        type Kind = fn(&VolumePathError) -> bool;
        let missing: Kind = |e| matches!(e, VolumePathError::MissingDatastore { .. });
        let empty: Kind = |e| matches!(e, VolumePathError::EmptyDatastore { .. });
        let no_disk: Kind = |e| matches!(e, VolumePathError::MissingDisk { .. });
        let not_vmdk: Kind = |e| matches!(e, VolumePathError::NotVmdk { .. });
        let cases: &[(&str, Kind)] = &[
            ("", missing),
            ("kubevols/disk.vmdk", missing),
            ("ds] kubevols/disk.vmdk", missing),
            ("[ds kubevols/disk.vmdk", missing),
            ("[d[s] x.vmdk", missing),
            ("x [ds] a.vmdk", missing),
            ("[] a.vmdk", empty),
            ("[   ] a.vmdk", empty),
            ("[Cluster/] a.vmdk", empty),
            ("[ds]", no_disk),
            ("[ds]    ", no_disk),
            ("[ds] kubevols/disk", not_vmdk),
            ("[ds] kubevols/disk.vmdk.bak", not_vmdk),
            ("[ds] kubevols/disk.VMDK", not_vmdk),
        ];
        for (input, kind) in cases {
            match VolumePath::parse(input) {
                Ok(parsed) => panic!("{input:?} parsed as {parsed:?}"),
                Err(e) => {
                    assert!(kind(&e), "{input:?}: unexpected error {e:?}");
                    assert!(e.to_string().contains(&format!("{input:?}")), "{e}");
                }
            }
        }
    }
}
