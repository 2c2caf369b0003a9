//! `STATIC_PVC_MISSING_PROVISIONER_ANNOTATION`: a claim bound to a vSphere PV without a storage-provisioner annotation.

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, ObjectRef, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// The storage-provisioner annotations on a claim (GA, then beta).
pub const STORAGE_PROVISIONER_ANNOTATIONS: [&str; 2] = [
    "volume.kubernetes.io/storage-provisioner",
    "volume.beta.kubernetes.io/storage-provisioner",
];

/// See the module documentation.
#[derive(Debug)]
pub struct StaticPvcMissingProvisionerAnnotation;

impl Rule for StaticPvcMissingProvisionerAnnotation {
    fn code(&self) -> &'static str {
        "STATIC_PVC_MISSING_PROVISIONER_ANNOTATION"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolumeClaim]
    }
    fn description(&self) -> &'static str {
        "A claim of a static in-tree vSphere PV lacks the storage-provisioner annotation (vSphere CSI before v2.7.0)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for (pvc, index) in &view.in_tree_claims {
            let Some(volume) = view.in_tree_volumes.get(*index) else {
                continue;
            };
            if volume.plugin.name != vsphere::PLUGIN_NAME {
                continue;
            }
            let annotated = pvc.metadata.annotations.as_ref().is_some_and(|a| {
                STORAGE_PROVISIONER_ANNOTATIONS
                    .iter()
                    .any(|k| a.get(*k).is_some_and(|v| !v.is_empty()))
            });
            if annotated {
                continue;
            }
            let ns = pvc.metadata.namespace.as_deref().unwrap_or("default");
            let name = pvc.metadata.name.as_deref().unwrap_or_default();
            out.push(
                self.finding(
                    ObjectRef::namespaced("PersistentVolumeClaim", ns, name),
                    format!(
                        "Claim {ns}/{name} of vSphere PV {:?} has no storage-provisioner annotation (a static claim): vSphere CSI drivers before v2.7.0 do not treat it as migrated.",
                        volume.name()
                    ),
                    format!(
                        "Use vSphere CSI v2.7.0 or later, or annotate claim {ns}/{name} with volume.beta.kubernetes.io/storage-provisioner: {}",
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
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    #[test]
    fn table() {
        let mut annotated = pvc("db", "b", "v");
        annotated["metadata"]["annotations"] = json!({"volume.beta.kubernetes.io/storage-provisioner": "kubernetes.io/vsphere-volume"});
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "static claim",
                vec![vsphere_pv("v"), pvc("db", "a", "v")],
                &["PersistentVolumeClaim/db/a"],
            ),
            ("annotated", vec![vsphere_pv("v"), annotated], &[]),
            (
                "ebs claim",
                vec![ebs_pv("e", None), pvc("db", "a", "e")],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&StaticPvcMissingProvisionerAnnotation, input),
                *expected,
                "{name}"
            );
        }
    }
}
