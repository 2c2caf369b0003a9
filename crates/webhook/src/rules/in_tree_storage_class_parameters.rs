//! Rule `inTreeStorageClassParameters`: in-tree StorageClass parameters that stop working after CSI migration.
//!
//! Once `kubernetes.io/vsphere-volume` is migrated, provisioning goes through
//! `csi.vsphere.vmware.com`, which rejects the raw vSAN policy keys and every `diskformat`
//! except `thin`. Keys are matched case-insensitively, as the in-tree plugin does.

use k8s_openapi::api::storage::v1::StorageClass;

use super::{Finding, ObjectName, Rule};
use crate::policy::PolicyRule;
use crate::rules::csi_migration_parameters::VSPHERE_IN_TREE_PLUGIN;

/// Raw vSAN policy keys the vSphere CSI driver refuses after migration.
pub const VSAN_RAW_KEYS: [&str; 6] = [
    "hostfailurestotolerate",
    "forceprovisioning",
    "cachereservation",
    "diskstripes",
    "objectspacereservation",
    "iopslimit",
];

/// Reports an in-tree vSphere StorageClass whose parameters the CSI driver rejects.
pub fn check(sc: &StorageClass) -> Option<Finding> {
    if sc.provisioner != VSPHERE_IN_TREE_PLUGIN {
        return None;
    }
    let parameters = sc.parameters.as_ref()?;
    let mut vsan: Vec<String> = Vec::new();
    let mut disk_format: Option<&str> = None;
    for (key, value) in parameters {
        let lower = key.to_ascii_lowercase();
        if VSAN_RAW_KEYS.contains(&lower.as_str()) {
            vsan.push(format!("{key}={value}"));
        } else if lower == "diskformat" && !value.eq_ignore_ascii_case("thin") {
            disk_format = Some(value);
        }
    }
    if vsan.is_empty() && disk_format.is_none() {
        return None;
    }
    vsan.sort();
    let name = ObjectName {
        kind: "StorageClass",
        namespace: None,
        name: sc.metadata.name.as_deref().unwrap_or_default(),
    };
    let mut problems: Vec<String> = Vec::new();
    if !vsan.is_empty() {
        problems.push(format!(
            "raw vSAN parameters {} are rejected by csi.vsphere.vmware.com: put them in an SPBM storage policy and set storagepolicyname",
            vsan.join(", ")
        ));
    }
    if let Some(format) = disk_format {
        problems.push(format!(
            "diskformat={format} is rejected by csi.vsphere.vmware.com, which only provisions thin disks: use diskformat=thin or leave it out"
        ));
    }
    Some(Finding::new(
        Rule::Policy(PolicyRule::InTreeStorageClassParameters),
        format!(
            "{name} stops working after CSI migration: {}",
            problems.join("; ")
        ),
    ))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use crate::rules::fixtures::storage_class;
    use serde_json::json;

    #[test]
    fn table() {
        let vs = "kubernetes.io/vsphere-volume";
        let cases = [
            (vs, json!({}), None),
            (
                vs,
                json!({"diskformat": "thin", "datastore": "ds1", "storagepolicyname": "gold"}),
                None,
            ),
            (vs, json!({"diskformat": "THIN"}), None),
            (
                vs,
                json!({"diskformat": "zeroedthick"}),
                Some(vec!["diskformat=zeroedthick", "use diskformat=thin"]),
            ),
            (
                vs,
                json!({"DiskFormat": "eagerzeroedthick"}),
                Some(vec!["diskformat=eagerzeroedthick"]),
            ),
            (
                vs,
                json!({"hostFailuresToTolerate": "1"}),
                Some(vec![
                    "raw vSAN parameters hostFailuresToTolerate=1",
                    "storagepolicyname",
                ]),
            ),
            (
                vs,
                json!({"forceProvisioning": "1", "cacheReservation": "10", "diskStripes": "2",
                        "objectSpaceReservation": "30", "iopsLimit": "100"}),
                Some(vec![
                    "cacheReservation=10",
                    "diskStripes=2",
                    "forceProvisioning=1",
                    "iopsLimit=100",
                    "objectSpaceReservation=30",
                ]),
            ),
            (
                vs,
                json!({"hostfailurestotolerate": "1", "diskformat": "zeroedthick"}),
                Some(vec!["hostfailurestotolerate=1", "diskformat=zeroedthick"]),
            ),
            // The same keys mean nothing to other provisioners.
            (
                "csi.vsphere.vmware.com",
                json!({"diskformat": "zeroedthick"}),
                None,
            ),
            ("kubernetes.io/aws-ebs", json!({"iopsLimit": "1"}), None),
        ];
        for (provisioner, params, want) in cases {
            let got = check(&storage_class(provisioner, params.clone()));
            match want {
                None => assert!(got.is_none(), "{params}: {got:?}"),
                Some(needles) => {
                    let got = got.unwrap();
                    assert_eq!(
                        got.rule,
                        Rule::Policy(PolicyRule::InTreeStorageClassParameters)
                    );
                    assert!(
                        got.message
                            .starts_with("StorageClass \"sc\" stops working after CSI migration")
                    );
                    for needle in needles {
                        assert!(got.message.contains(needle), "{params}: {}", got.message);
                    }
                }
            }
        }
    }

    #[test]
    fn no_parameters_is_fine() {
        let mut sc = storage_class("kubernetes.io/vsphere-volume", json!({}));
        sc.parameters = None;
        assert!(check(&sc).is_none());
    }
}
