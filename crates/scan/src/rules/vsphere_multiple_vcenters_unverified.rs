//! `VSPHERE_MULTIPLE_VCENTERS_UNVERIFIED`: vSphere volumes are in use; the vCenter count lives in a Secret the scan does not read.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, driver_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereMultipleVcentersUnverified;

impl Rule for VsphereMultipleVcentersUnverified {
    fn code(&self) -> &'static str {
        "VSPHERE_MULTIPLE_VCENTERS_UNVERIFIED"
    }
    fn severity(&self) -> Severity {
        Severity::Info
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::CsiDriver]
    }
    fn description(&self) -> &'static str {
        "vSphere migration is unsupported with more than one vCenter; the scan cannot see the vCenter list (it is in a Secret)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        if !view.plugins_in_use.contains_key(vsphere::PLUGIN_NAME) {
            return;
        }
        out.push(
            self.finding(
                driver_object(vsphere::DRIVER_NAME),
                "vSphere in-tree volumes are in use. In-tree to CSI migration is not supported when the driver is configured with more than one vCenter, and the vCenter list lives in the driver's config Secret, which csi-migrate scan never reads.".to_owned(),
                "Check that the vsphere-config-secret (namespace vmware-system-csi) has exactly one [VirtualCenter] section before migrating.".to_owned(),
            )
            .for_plugin(vsphere::PLUGIN_NAME),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "vsphere in use",
                vec![vsphere_pv("v")],
                &["CSIDriver/csi.vsphere.vmware.com"],
            ),
            ("no vsphere", vec![ebs_pv("e", None)], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&VsphereMultipleVcentersUnverified, input),
                *expected,
                "{name}"
            );
        }
    }
}
