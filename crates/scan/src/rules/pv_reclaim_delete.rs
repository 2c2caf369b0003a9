//! `PV_RECLAIM_DELETE`: an in-tree PV with reclaim policy Delete (the migration sets Retain first and restores it at the end).

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct PvReclaimDelete;

impl Rule for PvReclaimDelete {
    fn code(&self) -> &'static str {
        "PV_RECLAIM_DELETE"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "An in-tree PV has reclaim policy Delete: deleting its claim deletes the disk (csi-migrate guards this)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for volume in &view.in_tree_volumes {
            let policy = volume
                .pv
                .spec
                .as_ref()
                .and_then(|s| s.persistent_volume_reclaim_policy.as_deref());
            if policy != Some("Delete") {
                continue;
            }
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!("PV {:?} has reclaim policy Delete: deleting its claim (or the PV) by hand deletes the disk.", volume.name()),
                    "No action needed for csi-migrate: it sets Retain before touching any object and restores Delete once the new claim is Bound. Never delete these claims by hand.".to_owned(),
                )
                .for_plugin(volume.plugin.name),
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
        let mut delete = ebs_pv("d", None);
        delete["spec"]["persistentVolumeReclaimPolicy"] = "Delete".into();
        let mut unset = ebs_pv("u", None);
        unset["spec"]
            .as_object_mut()
            .map(|s| s.remove("persistentVolumeReclaimPolicy"));
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("delete", vec![delete], &["PersistentVolume/d"]),
            ("retain", vec![ebs_pv("r", None)], &[]),
            ("unset means Retain", vec![unset], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&PvReclaimDelete, input), *expected, "{name}");
        }
    }
}
