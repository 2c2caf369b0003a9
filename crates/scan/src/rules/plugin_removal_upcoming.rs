//! `PLUGIN_REMOVAL_UPCOMING`: RBD/CephFS volumes that stop working on upgrade to 1.31 (or the server version is unknown).

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct PluginRemovalUpcoming;

impl Rule for PluginRemovalUpcoming {
    fn code(&self) -> &'static str {
        "PLUGIN_REMOVAL_UPCOMING"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
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
        "Volumes of a plugin whose translation a later Kubernetes release removes (RBD, CephFS in 1.31)."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let upcoming = |minor: Option<u32>| match (minor, view.server_version) {
            (None, _) => false,
            (Some(m), Some(v)) => !v.at_least(1, m),
            (Some(_), None) => true,
        };
        let version = view
            .server_version
            .map(|v| format!("this cluster runs {v}"))
            .unwrap_or_else(|| "the server version is unknown".to_owned());
        let message = |what: String, p: &crate::plugins::PluginInfo| {
            format!(
                "{what} uses {}; Kubernetes 1.{} removes the plugin and its translation, after which pods cannot mount it ({version}).",
                p.name,
                p.translation_removed_in.unwrap_or_default()
            )
        };
        let remedy = |p: &crate::plugins::PluginInfo| {
            format!(
                "Convert these volumes to {} before upgrading to 1.{}.",
                p.csi_driver,
                p.translation_removed_in.unwrap_or_default()
            )
        };
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| upcoming(v.plugin.translation_removed_in))
        {
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    message(format!("PV {:?}", volume.name()), volume.plugin),
                    remedy(volume.plugin),
                )
                .for_plugin(volume.plugin.name),
            );
        }
        for inline in view
            .inline_volumes
            .iter()
            .filter(|v| upcoming(v.plugin.translation_removed_in))
        {
            out.push(
                self.finding(
                    inline.owner.clone(),
                    message(
                        format!("Inline volume {:?}", inline.volume.name),
                        inline.plugin,
                    ),
                    remedy(inline.plugin),
                )
                .for_plugin(inline.plugin.name),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    fn rbd_pv() -> serde_json::Value {
        json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": "r"},
            "spec": {"rbd": {"monitors": ["10.0.0.1:6789"], "image": "img"}}})
    }

    #[test]
    fn table() {
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "1.30",
                vec![rbd_pv(), server_version(30)],
                &["PersistentVolume/r"],
            ),
            ("unknown version", vec![rbd_pv()], &["PersistentVolume/r"]),
            (
                "already removed is another rule",
                vec![rbd_pv(), server_version(31)],
                &[],
            ),
            ("ebs", vec![ebs_pv("a", None)], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&PluginRemovalUpcoming, input), *expected, "{name}");
        }
    }
}
