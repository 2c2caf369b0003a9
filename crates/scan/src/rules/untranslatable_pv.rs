//! `UNTRANSLATABLE_PV`: an in-tree PV the translation rejects (the reason is the translator's error).

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct UntranslatablePv;

impl Rule for UntranslatablePv {
    fn code(&self) -> &'static str {
        "UNTRANSLATABLE_PV"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "An in-tree PV cannot be translated to CSI; the finding carries the translator's reason."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for volume in &view.in_tree_volumes {
            let Err(reason) = &volume.translation else {
                continue;
            };
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!("PV {:?} cannot be translated to {}: {reason}.", volume.name(), volume.plugin.csi_driver),
                    "Fix the PV's source or labels the error names (edit a copy, the source is immutable), or migrate this volume by hand.".to_owned(),
                )
                .for_plugin(volume.plugin.name),
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
        let blob_disk = json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "blob"},
            "spec": {"azureDisk": {"diskName": "d", "diskURI": "https://acct.blob.core.windows.net/vhds/d.vhd", "kind": "Dedicated"}}});
        let two_sources = json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "two"},
            "spec": {"awsElasticBlockStore": {"volumeID": "vol-1"}, "gcePersistentDisk": {"pdName": "d"}}});
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("valid", vec![ebs_pv("a", None)], &[]),
            (
                "unmanaged azure disk",
                vec![blob_disk],
                &["PersistentVolume/blob"],
            ),
            ("two sources", vec![two_sources], &["PersistentVolume/two"]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&UntranslatablePv, input), *expected, "{name}");
        }
        let found = findings(
            &UntranslatablePv,
            &[json!({"kind": "PersistentVolume", "apiVersion": "v1",
            "metadata": {"name": "fs"}, "spec": {"cephfs": {"monitors": ["m"]}}})],
        );
        assert!(
            found[0].message.contains("no in-tree to CSI translation"),
            "{}",
            found[0].message
        );
    }
}
