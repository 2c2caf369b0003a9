//! `INLINE_IN_TREE_VOLUME`: a Pod or pod template with an inline in-tree volume (other than vSphere, which has its own rule).

use csi_migrate_translate::plugins::vsphere;

use crate::report::{Finding, Severity};
use crate::rules::Rule;
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct InlineInTreeVolume;

impl Rule for InlineInTreeVolume {
    fn code(&self) -> &'static str {
        "INLINE_IN_TREE_VOLUME"
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
        "An inline in-tree volume in a pod spec: it cannot be converted in place, only by changing the template."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        for inline in view
            .inline_volumes
            .iter()
            .filter(|v| v.plugin.name != vsphere::PLUGIN_NAME)
        {
            let p = inline.plugin;
            out.push(
                self.finding(
                    inline.owner.clone(),
                    format!(
                        "{} has inline {} volume {:?}: inline volumes have no PV to convert, so csi-migrate cannot move it in place.",
                        inline.owner, p.display_name, inline.volume.name
                    ),
                    format!(
                        "Create a static {} PV (`csi-migrate translate` turns the Pod into one) and a claim bound to it, and mount the claim in the template instead.",
                        p.csi_driver
                    ),
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

    #[test]
    fn table() {
        let mut bare = pod("app", "p", "n1", "c", None);
        bare["spec"]["volumes"] = json!([{"name": "pd", "gcePersistentDisk": {"pdName": "d"}}]);
        let mut owned = pod("app", "q", "n1", "c", Some(("StatefulSet", "db")));
        owned["spec"]["volumes"] = json!([{"name": "pd", "gcePersistentDisk": {"pdName": "d"}}]);
        let mut vmdk = pod("app", "v", "n1", "c", None);
        vmdk["spec"]["volumes"] =
            json!([{"name": "d", "vsphereVolume": {"volumePath": "[ds] a.vmdk"}}]);
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            ("bare pod", vec![bare], &["Pod/app/p"]),
            (
                "pod of an unknown set counts as bare",
                vec![owned],
                &["Pod/app/q"],
            ),
            ("vsphere has its own rule", vec![vmdk], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&InlineInTreeVolume, input), *expected, "{name}");
        }
    }
}
