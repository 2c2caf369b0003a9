//! `VSPHERE_WINDOWS_FILESYSTEM`: a vSphere volume formatted NTFS or used from a Windows node (unsupported by migration).

use std::collections::BTreeSet;

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, ObjectRef, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// The node label naming its operating system.
pub const OS_LABEL: &str = "kubernetes.io/os";

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereWindowsFilesystem;

impl Rule for VsphereWindowsFilesystem {
    fn code(&self) -> &'static str {
        "VSPHERE_WINDOWS_FILESYSTEM"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume, ResourceKind::Pod]
    }
    fn description(&self) -> &'static str {
        "A vSphere volume is NTFS-formatted or mounted on a Windows node; vSphere migration does not support Windows volumes."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let windows_node = |node: &str| {
            view.nodes.get(node).is_some_and(|n| {
                n.metadata
                    .labels
                    .as_ref()
                    .is_some_and(|l| l.get(OS_LABEL).is_some_and(|os| os == "windows"))
            })
        };
        // PVs used by pods on Windows nodes.
        let mut on_windows: BTreeSet<&str> = BTreeSet::new();
        for w in &view.workloads {
            let on_windows_node = w.pods.iter().any(|p| {
                p.spec
                    .as_ref()
                    .and_then(|s| s.node_name.as_deref())
                    .is_some_and(windows_node)
            });
            if !on_windows_node {
                continue;
            }
            for claim in &w.in_tree_claims {
                if let Some(v) = view.in_tree_volume_of_claim(w.namespace, claim) {
                    on_windows.insert(v.name());
                }
            }
            for (volume, plugin) in &w.inline_volumes {
                if plugin.name == vsphere::PLUGIN_NAME {
                    out.push(
                        self.windows_finding(
                            w.object.clone(),
                            &format!("inline volume {volume:?}"),
                        ),
                    );
                }
            }
        }
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| v.plugin.name == vsphere::PLUGIN_NAME)
        {
            let ntfs = volume
                .pv
                .spec
                .as_ref()
                .and_then(|s| s.vsphere_volume.as_ref())
                .and_then(|s| s.fs_type.as_deref())
                .is_some_and(|fs| fs.eq_ignore_ascii_case("ntfs"));
            if ntfs || on_windows.contains(volume.name()) {
                out.push(
                    self.windows_finding(
                        pv_object(volume.name()),
                        &format!("PV {:?}", volume.name()),
                    ),
                );
            }
        }
    }
}

impl VsphereWindowsFilesystem {
    fn windows_finding(&self, object: ObjectRef, what: &str) -> Finding {
        self.finding(
            object,
            format!("{what} is a Windows (NTFS) vSphere volume: in-tree to CSI migration of Windows volumes is not supported by the vSphere CSI driver."),
            "Leave it in-tree for now, or copy the data to a new CSI volume on a Windows-capable vSphere CSI node plugin.".to_owned(),
        )
        .for_plugin(vsphere::PLUGIN_NAME)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let mut ntfs = vsphere_pv("n");
        ntfs["spec"]["vsphereVolume"]["fsType"] = "NTFS".into();
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("ext4 on linux", vec![vsphere_pv("v")], &[]),
            ("ntfs", vec![ntfs], &["PersistentVolume/n"]),
            (
                "used on a windows node",
                vec![
                    vsphere_pv("v"),
                    pvc("app", "c", "v"),
                    node("win1", "windows"),
                    pod("app", "p", "win1", "c", None),
                ],
                &["PersistentVolume/v"],
            ),
            (
                "ebs on windows is another matter",
                vec![
                    ebs_pv("e", None),
                    pvc("app", "c", "e"),
                    node("win1", "windows"),
                    pod("app", "p", "win1", "c", None),
                ],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&VsphereWindowsFilesystem, input),
                *expected,
                "{name}"
            );
        }
    }
}
