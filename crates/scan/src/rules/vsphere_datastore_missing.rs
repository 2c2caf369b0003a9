//! `VSPHERE_DATASTORE_MISSING`: vCenter has no datastore of the name an in-tree vSphere PV's `volumePath` names.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object, vsphere_volume_paths};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereDatastoreMissing;

impl Rule for VsphereDatastoreMissing {
    fn code(&self) -> &'static str {
        "VSPHERE_DATASTORE_MISSING"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "With --vcenter: the datastore in a vSphere PV's volumePath is in none of the configured datacenters."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let Some(facts) = &view.snapshot.vcenter else {
            return;
        };
        for (volume, path) in vsphere_volume_paths(view) {
            if facts
                .disks
                .get(path)
                .is_some_and(|d| d.datacenter.is_none())
            {
                out.push(
                    self.finding(
                        pv_object(volume.name()),
                        format!(
                            "spec.vsphereVolume.volumePath {path:?} names a datastore vCenter {} has in none of the datacenters {:?}.",
                            facts.host, facts.datacenters
                        ),
                        "Add the datastore's datacenter to --vcenter-datacenters (or `datacenters` in csi-vsphere.conf), or give a renamed datastore its old name back.".to_owned(),
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
        let disk = |dc: Option<&str>| VcenterDisk {
            datacenter: dc.map(str::to_owned),
            vmdk_exists: dc.is_some(),
        };
        /// (name, where the datastore was found if vCenter was asked, expected objects)
        type Case<'a> = (&'a str, Option<Option<&'a str>>, &'a [&'a str]);
        let cases: &[Case] = &[
            ("datastore found", Some(Some("DC0")), &[]),
            ("datastore missing", Some(None), &["PersistentVolume/v"]),
            ("no vcenter asked", None, &[]),
        ];
        for (name, found, expected) in cases {
            let mut snapshot = snapshot(&[vsphere_pv("v"), ebs_pv("e", None)]);
            snapshot.vcenter = found.map(|dc| VcenterFacts {
                disks: [("[ds1] kubevols/v.vmdk".to_owned(), disk(dc))].into(),
                ..VcenterFacts::default()
            });
            let got: Vec<String> = findings_in(&VsphereDatastoreMissing, &snapshot)
                .iter()
                .map(|f| f.object.to_string())
                .collect();
            assert_eq!(got, *expected, "{name}");
        }
    }
}
