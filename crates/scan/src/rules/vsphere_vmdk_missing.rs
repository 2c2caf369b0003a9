//! `VSPHERE_VMDK_MISSING`: the VMDK an in-tree vSphere PV's `volumePath` names is not on its datastore.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object, vsphere_volume_paths};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereVmdkMissing;

impl Rule for VsphereVmdkMissing {
    fn code(&self) -> &'static str {
        "VSPHERE_VMDK_MISSING"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "With --vcenter: the VMDK a vSphere PV's volumePath names does not exist on its datastore."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let Some(facts) = &view.snapshot.vcenter else {
            return;
        };
        for (volume, path) in vsphere_volume_paths(view) {
            let Some(disk) = facts.disks.get(path) else {
                continue;
            };
            if let Some(datacenter) = &disk.datacenter
                && !disk.vmdk_exists
            {
                out.push(
                    self.finding(
                        pv_object(volume.name()),
                        format!(
                            "spec.vsphereVolume.volumePath {path:?}: the VMDK is not on its datastore (datacenter {datacenter:?}, vCenter {}).",
                            facts.host
                        ),
                        "Find where the disk went (Storage DRS or Storage vMotion may have moved it) and correct the path, or restore the disk; CNS can only register a VMDK that exists.".to_owned(),
                    )
                    .for_plugin(vsphere::PLUGIN_NAME),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use crate::snapshot::{VcenterDisk, VcenterFacts};

    #[test]
    fn table() {
        /// (name, (datacenter, VMDK exists) if vCenter was asked, expected objects)
        type Case<'a> = (&'a str, Option<(Option<&'a str>, bool)>, &'a [&'a str]);
        let cases: &[Case] = &[
            ("vmdk present", Some((Some("DC0"), true)), &[]),
            (
                "vmdk missing",
                Some((Some("DC0"), false)),
                &["PersistentVolume/v"],
            ),
            (
                "datastore missing is another rule",
                Some((None, false)),
                &[],
            ),
            ("no vcenter asked", None, &[]),
        ];
        for (name, disk, expected) in cases {
            let mut snapshot = snapshot(&[vsphere_pv("v")]);
            snapshot.vcenter = disk.map(|(dc, exists)| VcenterFacts {
                disks: [(
                    "[ds1] kubevols/v.vmdk".to_owned(),
                    VcenterDisk {
                        datacenter: dc.map(str::to_owned),
                        vmdk_exists: exists,
                    },
                )]
                .into(),
                ..VcenterFacts::default()
            });
            let got: Vec<String> = findings_in(&VsphereVmdkMissing, &snapshot)
                .iter()
                .map(|f| f.object.to_string())
                .collect();
            assert_eq!(got, *expected, "{name}");
        }
    }
}
