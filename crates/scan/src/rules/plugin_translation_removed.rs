//! `PLUGIN_TRANSLATION_REMOVED`: the server no longer has the plugin nor its translation (RBD, CephFS from 1.31), so these volumes do not work.

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct PluginTranslationRemoved;

impl Rule for PluginTranslationRemoved {
    fn code(&self) -> &'static str {
        "PLUGIN_TRANSLATION_REMOVED"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[
            ResourceKind::PersistentVolume,
            ResourceKind::Pod,
            ResourceKind::StatefulSet,
            ResourceKind::Deployment,
        ]
    }
    fn description(&self) -> &'static str {
        "The server version removed the plugin and its CSI translation: these volumes no longer work."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let Some(version) = view.server_version else {
            return;
        };
        let removed = |minor: Option<u32>| minor.is_some_and(|m| version.at_least(1, m));
        let remedy = |p: &crate::plugins::PluginInfo| {
            format!(
                "Convert to {} static PVs with the same images (csi-migrate migrate … for RBD), on a cluster older than 1.{} if the data must be read first; until then pods using them cannot start.",
                p.csi_driver,
                p.translation_removed_in.unwrap_or_default()
            )
        };
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| removed(v.plugin.translation_removed_in))
        {
            let p = volume.plugin;
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!(
                        "PV {:?} uses {}, which Kubernetes {version} no longer supports at all (plugin and CSI translation removed in 1.{}): pods cannot mount it.",
                        volume.name(),
                        p.name,
                        p.translation_removed_in.unwrap_or_default()
                    ),
                    remedy(p),
                )
                .for_plugin(p.name),
            );
        }
        for inline in view
            .inline_volumes
            .iter()
            .filter(|v| removed(v.plugin.translation_removed_in))
        {
            let p = inline.plugin;
            out.push(
                self.finding(
                    inline.owner.clone(),
                    format!(
                        "Inline volume {:?} uses {}, which Kubernetes {version} no longer supports at all: pods cannot mount it.",
                        inline.volume.name, p.name
                    ),
                    remedy(p),
                )
                .for_plugin(p.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    fn cephfs_pv() -> serde_json::Value {
        json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "fs"},
            "spec": {"cephfs": {"monitors": ["10.0.0.1:6789"]}}})
    }

    #[test]
    fn table() {
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "1.31 cephfs",
                vec![cephfs_pv(), server_version(31)],
                &["PersistentVolume/fs"],
            ),
            (
                "1.30 cephfs still works",
                vec![cephfs_pv(), server_version(30)],
                &[],
            ),
            ("unknown version", vec![cephfs_pv()], &[]),
            (
                "ebs is still translated",
                vec![ebs_pv("a", None), server_version(35)],
                &[],
            ),
            (
                "kubelet 1.30 is only a lower bound",
                vec![cephfs_pv(), node("n", "linux")],
                &[],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&PluginTranslationRemoved, input),
                *expected,
                "{name}"
            );
        }
    }
}
