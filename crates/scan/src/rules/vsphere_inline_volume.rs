//! `VSPHERE_INLINE_VOLUME`: a Pod or pod template with an inline `vsphereVolume`.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereInlineVolume;

impl Rule for VsphereInlineVolume {
    fn code(&self) -> &'static str {
        "VSPHERE_INLINE_VOLUME"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[
            ResourceKind::Pod,
            ResourceKind::StatefulSet,
            ResourceKind::Deployment,
            ResourceKind::DaemonSet,
            ResourceKind::ReplicaSet,
            ResourceKind::Job,
            ResourceKind::CronJob,
        ]
    }
    fn description(&self) -> &'static str {
        "An inline vSphere volume: older vSphere CSI drivers never register it with CNS, and it cannot be converted in place."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for inline in view
            .inline_volumes
            .iter()
            .filter(|v| v.plugin.name == vsphere::PLUGIN_NAME)
        {
            out.push(
                self.finding(
                    inline.owner.clone(),
                    format!(
                        "{} mounts VMDK {:?} as inline volume {:?}: vSphere CSI drivers before v2.5 never register inline volumes with CNS (attach fails after migration), and an inline volume cannot be converted without changing the pod template.",
                        inline.owner,
                        inline.volume.vsphere_volume.as_ref().map(|v| v.volume_path.as_str()).unwrap_or_default(),
                        inline.volume.name
                    ),
                    "Create a static PV and claim for the VMDK and mount the claim instead (then migrate the claim), on vSphere CSI v2.5 or later.".to_owned(),
                )
                .for_plugin(vsphere::PLUGIN_NAME),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let mut with_vmdk = deployment("app", "web", 2, "c");
        with_vmdk["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "disk", "vsphereVolume": {"volumePath": "[ds1] disks/a.vmdk"}}]);
        let mut with_ebs = deployment("app", "web", 2, "c");
        with_ebs["spec"]["template"]["spec"]["volumes"] =
            json!([{"name": "disk", "awsElasticBlockStore": {"volumeID": "vol-1"}}]);
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("vsphere inline", vec![with_vmdk], &["Deployment/app/web"]),
            ("ebs inline is the generic rule", vec![with_ebs], &[]),
            ("claim", vec![deployment("app", "web", 2, "c")], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&VsphereInlineVolume, input), *expected, "{name}");
        }
    }
}
