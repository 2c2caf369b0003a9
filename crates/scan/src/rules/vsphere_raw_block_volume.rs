//! `VSPHERE_RAW_BLOCK_VOLUME`: an in-tree vSphere PV with `volumeMode: Block`.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereRawBlockVolume;

impl Rule for VsphereRawBlockVolume {
    fn code(&self) -> &'static str {
        "VSPHERE_RAW_BLOCK_VOLUME"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "An in-tree vSphere PV is a raw block volume (migration parity came late; check the driver version)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| v.plugin.name == vsphere::PLUGIN_NAME)
        {
            let block = volume
                .pv
                .spec
                .as_ref()
                .and_then(|s| s.volume_mode.as_deref())
                == Some("Block");
            if !block {
                continue;
            }
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!("vSphere PV {:?} is a raw block volume: vSphere CSI supported migrated raw block volumes only from v3.0, and the new PV must keep volumeMode: Block exactly.", volume.name()),
                    "Run vSphere CSI v3.0 or later; csi-migrate copies volumeMode to the new PV and claim.".to_owned(),
                )
                .for_plugin(vsphere::PLUGIN_NAME),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let mut block = vsphere_pv("b");
        block["spec"]["volumeMode"] = "Block".into();
        let mut ebs_block = ebs_pv("e", None);
        ebs_block["spec"]["volumeMode"] = "Block".into();
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("filesystem", vec![vsphere_pv("f")], &[]),
            ("block", vec![block], &["PersistentVolume/b"]),
            ("ebs block", vec![ebs_block], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&VsphereRawBlockVolume, input), *expected, "{name}");
        }
    }
}
