//! `STATIC_PV_MISSING_PROVISIONER_ANNOTATION`: a vSphere PV without `pv.kubernetes.io/provisioned-by` (statically created).

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// Annotation naming the provisioner of a dynamically provisioned PV.
pub const PROVISIONED_BY_ANNOTATION: &str = "pv.kubernetes.io/provisioned-by";

/// See the module documentation.
#[derive(Debug)]
pub struct StaticPvMissingProvisionerAnnotation;

impl Rule for StaticPvMissingProvisionerAnnotation {
    fn code(&self) -> &'static str {
        "STATIC_PV_MISSING_PROVISIONER_ANNOTATION"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "A static in-tree vSphere PV lacks pv.kubernetes.io/provisioned-by (vSphere CSI before v2.7.0 ignores it)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| v.plugin.name == vsphere::PLUGIN_NAME)
        {
            let annotated = volume.pv.metadata.annotations.as_ref().is_some_and(|a| {
                a.get(PROVISIONED_BY_ANNOTATION)
                    .is_some_and(|v| !v.is_empty())
            });
            if annotated {
                continue;
            }
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!(
                        "vSphere PV {:?} was created statically (no {PROVISIONED_BY_ANNOTATION}): vSphere CSI drivers before v2.7.0 never register it with CNS, so it cannot be migrated there.",
                        volume.name()
                    ),
                    format!(
                        "Use vSphere CSI v2.7.0 or later, or annotate PV {:?} with {PROVISIONED_BY_ANNOTATION}: {}",
                        volume.name(),
                        vsphere::PLUGIN_NAME
                    ),
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
        let mut static_pv = vsphere_pv("s");
        static_pv["metadata"]
            .as_object_mut()
            .map(|m| m.remove("annotations"));
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("dynamic", vec![vsphere_pv("d")], &[]),
            ("static", vec![static_pv], &["PersistentVolume/s"]),
            ("other plugin", vec![ebs_pv("e", None)], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&StaticPvMissingProvisionerAnnotation, input),
                *expected,
                "{name}"
            );
        }
    }
}
