//! `VSPHERE_UNSUPPORTED_SC_PARAMETER`: an in-tree vSphere class with parameters the CSI driver rejects after migration.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, class_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// Raw vSAN policy keys the CSI driver refuses for migrated classes.
pub const RAW_VSAN_PARAMETERS: &[&str] = &[
    "hostfailurestotolerate",
    "forceprovisioning",
    "cachereservation",
    "diskstripes",
    "objectspacereservation",
    "iopslimit",
];

/// See the module documentation.
#[derive(Debug)]
pub struct VsphereUnsupportedScParameter;

impl Rule for VsphereUnsupportedScParameter {
    fn code(&self) -> &'static str {
        "VSPHERE_UNSUPPORTED_SC_PARAMETER"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::StorageClass]
    }
    fn description(&self) -> &'static str {
        "An in-tree vSphere class uses raw vSAN policy keys or a diskformat other than thin (unsupported after migration)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let mut classes: Vec<_> = view
            .storage_classes
            .iter()
            .filter(|(_, sc)| sc.provisioner == vsphere::PLUGIN_NAME)
            .collect();
        classes.sort_by_key(|(name, _)| **name);
        for (name, sc) in classes {
            let mut bad: Vec<String> = Vec::new();
            for (key, value) in sc.parameters.iter().flatten() {
                let lower = key.to_ascii_lowercase();
                let raw_vsan = RAW_VSAN_PARAMETERS.contains(&lower.as_str());
                let thick = lower == "diskformat" && !value.eq_ignore_ascii_case("thin");
                if raw_vsan || thick {
                    bad.push(format!("{key}={value}"));
                }
            }
            if bad.is_empty() {
                continue;
            }
            out.push(
                self.finding(
                    class_object(name),
                    format!(
                        "vSphere StorageClass {name:?} sets {}, which {} rejects once the class is migrated: new claims of this class fail to provision.",
                        bad.join(", "),
                        vsphere::DRIVER_NAME
                    ),
                    "Move the vSAN settings into an SPBM storage policy and use storagepolicyname (diskformat: thin only) in a new CSI class; point new claims and the migration target at it.".to_owned(),
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
        let vs = "kubernetes.io/vsphere-volume";
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "policy name only",
                vec![storage_class(
                    "a",
                    vs,
                    json!({"storagePolicyName": "gold", "diskformat": "thin"}),
                )],
                &[],
            ),
            (
                "raw vsan key, any case",
                vec![storage_class(
                    "a",
                    vs,
                    json!({"hostFailuresToTolerate": "1"}),
                )],
                &["StorageClass/a"],
            ),
            (
                "zeroedthick",
                vec![storage_class("a", vs, json!({"diskformat": "zeroedthick"}))],
                &["StorageClass/a"],
            ),
            (
                "THIN",
                vec![storage_class("a", vs, json!({"DiskFormat": "THIN"}))],
                &[],
            ),
            (
                "other plugin",
                vec![storage_class(
                    "a",
                    "kubernetes.io/aws-ebs",
                    json!({"iopslimit": "1"}),
                )],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&VsphereUnsupportedScParameter, input),
                *expected,
                "{name}"
            );
        }
    }
}
