//! Rule `inTreePersistentVolume`: a new PersistentVolume with an in-tree volume source.

use csi_migrate_translate::Translator;
use k8s_openapi::api::core::v1::PersistentVolume;

use super::{Finding, ObjectName, Rule};
use crate::policy::PolicyRule;

/// Reports a PersistentVolume whose source is an in-tree plugin, naming the CSI source to use.
pub fn check(pv: &PersistentVolume, translator: &Translator) -> Option<Finding> {
    let in_tree = translator.in_tree_plugin_for_pv(pv)?;
    let name = ObjectName {
        kind: "PersistentVolume",
        namespace: None,
        name: pv.metadata.name.as_deref().unwrap_or_default(),
    };
    let mut message = format!("{name} uses the in-tree plugin {in_tree}");
    let csi = translator
        .pv_to_csi(pv)
        .ok()
        .and_then(|translated| translated.spec.and_then(|spec| spec.csi));
    match (csi, translator.csi_driver_for_in_tree(in_tree)) {
        (Some(csi), _) => message.push_str(&format!(
            "; define it with a CSI source instead: spec.csi.driver={}, spec.csi.volumeHandle={}",
            csi.driver, csi.volume_handle
        )),
        (None, Ok(driver)) => message.push_str(&format!(
            "; define it with a CSI source for driver {driver} instead"
        )),
        (None, Err(_)) => message.push_str("; define it with a CSI source instead"),
    }
    Some(Finding::new(
        Rule::Policy(PolicyRule::InTreePersistentVolume),
        message,
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::fixtures::pv;
    use serde_json::json;

    #[test]
    fn table() {
        let t = Translator::new();
        let base = json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"]});
        let with = |field: &str, source: serde_json::Value| {
            let mut spec = base.clone();
            spec[field] = source;
            spec
        };
        let cases = [
            (
                with(
                    "csi",
                    json!({"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"}),
                ),
                None,
            ),
            (
                with("nfs", json!({"server": "nfs.example", "path": "/x"})),
                None,
            ),
            (with("hostPath", json!({"path": "/x"})), None),
            (
                with(
                    "awsElasticBlockStore",
                    json!({"volumeID": "aws://us-east-1a/vol-0123"}),
                ),
                Some(vec![
                    "in-tree plugin kubernetes.io/aws-ebs",
                    "spec.csi.driver=ebs.csi.aws.com",
                    "volumeHandle=vol-0123",
                ]),
            ),
            (
                with("gcePersistentDisk", json!({"pdName": "disk-1"})),
                Some(vec![
                    "kubernetes.io/gce-pd",
                    "pd.csi.storage.gke.io",
                    "disk-1",
                ]),
            ),
            (
                with(
                    "vsphereVolume",
                    json!({"volumePath": "[ds1] kubevols/disk.vmdk"}),
                ),
                Some(vec![
                    "kubernetes.io/vsphere-volume",
                    "csi.vsphere.vmware.com",
                ]),
            ),
            (
                with("cinder", json!({"volumeID": "c-1"})),
                Some(vec!["cinder.csi.openstack.org", "c-1"]),
            ),
            (
                with(
                    "azureDisk",
                    json!({"diskName": "d", "diskURI": "/subscriptions/s/resourceGroups/r/providers/Microsoft.Compute/disks/d"}),
                ),
                Some(vec!["disk.csi.azure.com"]),
            ),
            (
                with("portworxVolume", json!({"volumeID": "px-1"})),
                Some(vec!["pxd.portworx.com", "px-1"]),
            ),
        ];
        for (spec, want) in cases {
            let got = check(&pv(spec.clone()), &t);
            match want {
                None => assert!(got.is_none(), "{spec}: {got:?}"),
                Some(needles) => {
                    let got = got.unwrap();
                    assert_eq!(got.rule, Rule::Policy(PolicyRule::InTreePersistentVolume));
                    assert!(
                        got.message.starts_with("PersistentVolume \"pv1\" uses"),
                        "{}",
                        got.message
                    );
                    for needle in needles {
                        assert!(got.message.contains(needle), "{spec}: {}", got.message);
                    }
                }
            }
        }
    }
}
