//! Rule `inTreeInlineVolume`: a Pod or pod template with an inline in-tree volume.
//!
//! On an update (a Deployment edited, say) only volumes the old object did not already
//! have are reported, so existing workloads can still be scaled, relabelled or rolled.

use csi_migrate_translate::Translator;
use k8s_openapi::api::core::v1::{PodSpec, Volume};

use super::{Finding, ObjectName, Rule};
use crate::policy::PolicyRule;

/// Reports each inline in-tree volume in `spec` that `previous` (the old object's pod
/// spec, on updates) did not have. `namespace` is the pod's namespace, needed to
/// translate secret references.
pub fn check(
    spec: &PodSpec,
    previous: Option<&PodSpec>,
    name: ObjectName<'_>,
    namespace: &str,
    translator: &Translator,
) -> Vec<Finding> {
    let Some(volumes) = spec.volumes.as_deref() else {
        return Vec::new();
    };
    let existed = |volume: &Volume, in_tree: &str| {
        previous
            .and_then(|p| p.volumes.as_deref())
            .into_iter()
            .flatten()
            .any(|old| {
                old.name == volume.name
                    && translator.in_tree_plugin_for_inline(old) == Some(in_tree)
            })
    };
    let mut findings = Vec::new();
    for volume in volumes {
        let Some(in_tree) = translator.in_tree_plugin_for_inline(volume) else {
            continue;
        };
        if existed(volume, in_tree) {
            continue;
        }
        let mut message = format!(
            "{name}: volume {:?} uses the in-tree plugin {in_tree} inline",
            volume.name
        );
        let csi = translator
            .inline_to_csi(volume, namespace)
            .ok()
            .and_then(|pv| pv.spec.and_then(|spec| spec.csi));
        match (csi, translator.csi_driver_for_in_tree(in_tree)) {
            (Some(csi), _) => message.push_str(&format!(
                "; use a PersistentVolumeClaim bound to a CSI PersistentVolume (driver {}, volumeHandle {})",
                csi.driver, csi.volume_handle
            )),
            (None, Ok(driver)) => message.push_str(&format!(
                "; use a PersistentVolumeClaim bound to a CSI PersistentVolume (driver {driver})"
            )),
            (None, Err(_)) => message.push_str("; use a PersistentVolumeClaim bound to a CSI PersistentVolume"),
        }
        findings.push(Finding::new(
            Rule::Policy(PolicyRule::InTreeInlineVolume),
            message,
        ));
    }
    findings
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::fixtures::pod_spec;
    use serde_json::json;

    fn name() -> ObjectName<'static> {
        ObjectName {
            kind: "Pod",
            namespace: Some("ns"),
            name: "web",
        }
    }

    #[test]
    fn table() {
        let t = Translator::new();
        let cases = [
            (json!([]), vec![]),
            (
                json!([{"name": "tmp", "emptyDir": {}}, {"name": "cfg", "configMap": {"name": "c"}}]),
                vec![],
            ),
            (
                json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]),
                vec![],
            ),
            (
                json!([{"name": "c", "csi": {"driver": "ebs.csi.aws.com"}}]),
                vec![],
            ),
            (
                json!([{"name": "data", "awsElasticBlockStore": {"volumeID": "vol-1"}}]),
                vec![vec![
                    "Pod \"web\" in namespace \"ns\": volume \"data\" uses the in-tree plugin kubernetes.io/aws-ebs inline",
                    "driver ebs.csi.aws.com",
                    "volumeHandle vol-1",
                ]],
            ),
            (
                json!([{"name": "a", "gcePersistentDisk": {"pdName": "d"}}, {"name": "tmp", "emptyDir": {}},
                       {"name": "b", "vsphereVolume": {"volumePath": "[ds] v.vmdk"}}]),
                vec![
                    vec!["volume \"a\"", "pd.csi.storage.gke.io"],
                    vec!["volume \"b\"", "csi.vsphere.vmware.com"],
                ],
            ),
            (
                json!([{"name": "f", "azureFile": {"secretName": "s", "shareName": "share"}}]),
                vec![vec!["kubernetes.io/azure-file", "file.csi.azure.com"]],
            ),
            (
                json!([{"name": "c", "cinder": {"volumeID": "v"}}]),
                vec![vec!["cinder.csi.openstack.org"]],
            ),
            (
                json!([{"name": "p", "portworxVolume": {"volumeID": "v"}}]),
                vec![vec!["pxd.portworx.com"]],
            ),
        ];
        for (volumes, want) in cases {
            let got = check(&pod_spec(volumes.clone()), None, name(), "ns", &t);
            assert_eq!(got.len(), want.len(), "{volumes}: {got:?}");
            for (finding, needles) in got.iter().zip(want) {
                assert_eq!(finding.rule, Rule::Policy(PolicyRule::InTreeInlineVolume));
                for needle in needles {
                    assert!(
                        finding.message.contains(needle),
                        "{volumes}: {}",
                        finding.message
                    );
                }
            }
        }
    }

    #[test]
    fn updates_report_only_new_in_tree_volumes() {
        let t = Translator::new();
        let old = pod_spec(json!([{"name": "a", "awsElasticBlockStore": {"volumeID": "vol-1"}}]));
        let same = old.clone();
        assert!(check(&same, Some(&old), name(), "ns", &t).is_empty());
        let added = pod_spec(json!([
            {"name": "a", "awsElasticBlockStore": {"volumeID": "vol-1"}},
            {"name": "b", "awsElasticBlockStore": {"volumeID": "vol-2"}},
        ]));
        let got = check(&added, Some(&old), name(), "ns", &t);
        assert_eq!(got.len(), 1);
        assert!(got[0].message.contains("volume \"b\""));
        // Same name, different plugin: new.
        let switched = pod_spec(json!([{"name": "a", "gcePersistentDisk": {"pdName": "d"}}]));
        assert_eq!(check(&switched, Some(&old), name(), "ns", &t).len(), 1);
        // No volumes at all.
        let mut none = pod_spec(json!([]));
        none.volumes = None;
        assert!(check(&none, Some(&old), name(), "ns", &t).is_empty());
    }
}
