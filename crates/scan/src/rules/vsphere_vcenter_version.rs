//! `VSPHERE_VCENTER_VERSION`: vSphere volumes are in use and vCenter is too old to give in-tree VMDKs a CNS identity.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, driver_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereVcenterVersion;

impl Rule for VsphereVcenterVersion {
    fn code(&self) -> &'static str {
        "VSPHERE_VCENTER_VERSION"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiDriver]
    }
    fn description(&self) -> &'static str {
        "With --vcenter: vSphere volumes are in use and vCenter is older than 6.7U3l, so it cannot register in-tree VMDKs as CNS volumes."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let Some(facts) = &view.snapshot.vcenter else {
            return;
        };
        if facts.registration_supported || !view.plugins_in_use.contains_key(vsphere::PLUGIN_NAME) {
            return;
        }
        out.push(
            self.finding(
                driver_object(vsphere::DRIVER_NAME),
                format!(
                    "vCenter {} reports API {} (build {}); registering an in-tree VMDK as a CNS volume needs vCenter 6.7U3l or later.",
                    facts.host, facts.api_version, facts.build
                ),
                "Upgrade vCenter to 7.0U1 or later (6.7U3l to 7.0.0 work through RegisterDisk) before migrating vSphere volumes.".to_owned(),
            )
            .for_plugin(vsphere::PLUGIN_NAME),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;
    use crate::snapshot::VcenterFacts;

    #[test]
    fn table() {
        /// (name, objects, registration supported if vCenter was asked, expected objects)
        type Case<'a> = (&'a str, Vec<serde_json::Value>, Option<bool>, &'a [&'a str]);
        let cases: &[Case] = &[
            (
                "old vcenter, vsphere in use",
                vec![vsphere_pv("v")],
                Some(false),
                &["CSIDriver/csi.vsphere.vmware.com"],
            ),
            ("supported vcenter", vec![vsphere_pv("v")], Some(true), &[]),
            (
                "old vcenter, no vsphere volumes",
                vec![ebs_pv("e", None)],
                Some(false),
                &[],
            ),
            ("no vcenter asked", vec![vsphere_pv("v")], None, &[]),
        ];
        for (name, objects, supported, expected) in cases {
            let mut snapshot = snapshot(objects);
            snapshot.vcenter = supported.map(|supported| VcenterFacts {
                host: "vc".into(),
                api_version: "6.5".into(),
                registration_supported: supported,
                ..VcenterFacts::default()
            });
            let got: Vec<String> = findings_in(&VsphereVcenterVersion, &snapshot)
                .iter()
                .map(|f| f.object.to_string())
                .collect();
            assert_eq!(got, *expected, "{name}");
        }
    }
}
