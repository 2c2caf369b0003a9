//! `GCE_HANDLE_UNSPECIFIED_PROJECT`: a GCE PD PV whose CSI handle would carry the `UNSPECIFIED` project (or zone) with nothing to repair it from.

use csi_migrate_translate::plugins::gce_pd;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct GceHandleUnspecifiedProject;

impl Rule for GceHandleUnspecifiedProject {
    fn code(&self) -> &'static str {
        "GCE_HANDLE_UNSPECIFIED_PROJECT"
    }
    fn severity(&self) -> Severity {
        Severity::Warning
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume]
    }
    fn description(&self) -> &'static str {
        "A GCE PD handle would name project (or zone) UNSPECIFIED and no node ID can supply the real one."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        // A pd.csi node ID `projects/<p>/zones/<z>/instances/<n>` supplies the project.
        let project = view.csi_nodes.values().find_map(|n| {
            n.spec
                .drivers
                .iter()
                .filter(|d| d.name == gce_pd::DRIVER_NAME)
                .find_map(|d| d.node_id.strip_prefix("projects/"))
                .and_then(|rest| rest.split('/').next())
                .filter(|p| !p.is_empty())
        });
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| v.plugin.name == gce_pd::PLUGIN_NAME)
        {
            let Ok(handle) = &volume.translation else {
                continue;
            };
            let parts: Vec<&str> = handle.split('/').collect();
            let project_unknown = parts.get(1) == Some(&gce_pd::UNSPECIFIED);
            let zone_unknown = parts.get(3) == Some(&gce_pd::UNSPECIFIED);
            let message = match (zone_unknown, project_unknown, project) {
                (true, _, _) => format!(
                    "GCE PV {:?} has no zone label, so its CSI handle would be {handle:?}: neither project nor zone of the disk is known.",
                    volume.name()
                ),
                (false, true, None) => format!(
                    "GCE PV {:?} translates to {handle:?}; no node runs {} with a projects/… node ID to supply the project, and a native CSI PV must name the real project.",
                    volume.name(),
                    gce_pd::DRIVER_NAME
                ),
                _ => continue,
            };
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    message,
                    "Label the PV with its zone (topology.kubernetes.io/zone) and make sure the PD CSI node plugin runs, or give the project explicitly when migrating.".to_owned(),
                )
                .for_plugin(gce_pd::PLUGIN_NAME),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    fn gce_pv(name: &str, zone: Option<&str>) -> serde_json::Value {
        let mut pv = json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": name},
            "spec": {"gcePersistentDisk": {"pdName": name}}});
        if let Some(zone) = zone {
            pv["metadata"]["labels"] = json!({"topology.kubernetes.io/zone": zone});
        }
        pv
    }

    #[test]
    fn table() {
        let gke_node = csi_node("n1", &[], "");
        let mut gke_node_with_id = gke_node.clone();
        gke_node_with_id["spec"]["drivers"] = json!([{"name": "pd.csi.storage.gke.io",
            "nodeID": "projects/acme/zones/europe-west1-b/instances/n1"}]);
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "project from a node",
                vec![
                    gce_pv("a", Some("europe-west1-b")),
                    gke_node_with_id.clone(),
                ],
                &[],
            ),
            (
                "no node to ask",
                vec![gce_pv("a", Some("europe-west1-b")), gke_node],
                &["PersistentVolume/a"],
            ),
            (
                "no zone label",
                vec![gce_pv("z", None), gke_node_with_id],
                &["PersistentVolume/z"],
            ),
            ("ebs", vec![ebs_pv("e", None)], &[]),
        ];
        for (name, input, expected) in cases {
            assert_eq!(
                objects(&GceHandleUnspecifiedProject, input),
                *expected,
                "{name}"
            );
        }
    }
}
