//! Azure Disk: `kubernetes.io/azure-disk` ⇄ `disk.csi.azure.com`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    AzureDiskVolumeSource, CSIPersistentVolumeSource, PersistentVolume, PersistentVolumeSpec,
    Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;
use regex::Regex;

use crate::error::{Result, TranslateError};
use crate::parameters::translate_zonal_storage_class;
use crate::plugin::{
    InTreePlugin, attributes_lowercased, missing_inline_source, missing_pv_source, new_pv,
    omit_false, plugin_identity, spec_mut,
};

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/azure-disk";
/// CSI driver name.
pub const DRIVER_NAME: &str = "disk.csi.azure.com";
/// The driver's zone topology key.
pub const TOPOLOGY_KEY: &str = "topology.disk.csi.azure.com/zone";
const KIND: &str = "kind";
const CACHING_MODE: &str = "cachingmode";
const FSTYPE: &str = "fstype";
const MANAGED: &str = "Managed";

const MANAGED_DISK_PATTERN: &str =
    r".*/subscriptions/(?:.*)/resourceGroups/(?:.*)/providers/Microsoft.Compute/disks/(.+)";
const UNMANAGED_DISK_PATTERN: &str = r"http(?:.*)://(?:.*)/vhds/(.+)";

static MANAGED_DISK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(MANAGED_DISK_PATTERN).expect("constant pattern compiles"));
static UNMANAGED_DISK: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(UNMANAGED_DISK_PATTERN).expect("constant pattern compiles"));

/// The Azure Disk translator.
#[derive(Debug, Clone, Copy)]
pub struct AzureDisk;

/// The disk name at the end of a managed disk ID or an unmanaged `…/vhds/<name>` URI.
pub fn disk_name(disk_uri: &str) -> Result<String> {
    let unmanaged = disk_uri.len() > 4 && disk_uri.as_bytes()[..4].eq_ignore_ascii_case(b"http");
    let (re, pattern) = if unmanaged {
        (&*UNMANAGED_DISK, UNMANAGED_DISK_PATTERN)
    } else {
        (&*MANAGED_DISK, MANAGED_DISK_PATTERN)
    };
    re.captures(disk_uri)
        .and_then(|c| c.get(1))
        .map(|m| m.as_str().to_owned())
        .ok_or_else(|| TranslateError::InvalidVolumeHandle {
            handle: disk_uri.to_owned(),
            field: "spec.csi.volumeHandle",
            reason: format!("could not get disk name, correct format: {pattern}"),
        })
}

fn check_kind(disk: &AzureDiskVolumeSource) -> Result<()> {
    match &disk.kind {
        Some(kind) if !kind.eq_ignore_ascii_case(MANAGED) => {
            Err(TranslateError::UnsupportedAzureDiskKind(kind.clone()))
        }
        _ => Ok(()),
    }
}

/// The CSI source for a disk; `empty_caching_mode` says whether an empty caching
/// mode is still written as an attribute (PVs do, inline volumes do not).
fn csi_source(
    disk: &AzureDiskVolumeSource,
    empty_caching_mode: bool,
) -> Result<CSIPersistentVolumeSource> {
    check_kind(disk)?;
    let mut attributes = BTreeMap::from([(KIND.to_owned(), MANAGED.to_owned())]);
    if let Some(mode) = disk
        .caching_mode
        .as_ref()
        .filter(|m| empty_caching_mode || !m.is_empty())
    {
        attributes.insert(CACHING_MODE.to_owned(), mode.clone());
    }
    if let Some(fs_type) = &disk.fs_type {
        attributes.insert(FSTYPE.to_owned(), fs_type.clone());
    }
    Ok(CSIPersistentVolumeSource {
        driver: DRIVER_NAME.to_owned(),
        volume_handle: disk.disk_uri.clone(),
        read_only: omit_false(disk.read_only),
        fs_type: disk.fs_type.clone().filter(|f| !f.is_empty()),
        volume_attributes: Some(attributes),
        ..Default::default()
    })
}

/// Zone numbers (`"0"`, `"1"`) mean "no zone" in-tree; the CSI driver writes `""`.
fn blank_numeric_zones(sc: &mut StorageClass) {
    for term in sc.allowed_topologies.iter_mut().flatten() {
        for expr in term.match_label_expressions.iter_mut().flatten() {
            if expr.key == TOPOLOGY_KEY {
                for value in expr.values.iter_mut() {
                    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
                        value.clear();
                    }
                }
            }
        }
    }
}

impl InTreePlugin for AzureDisk {
    plugin_identity!("azureDisk", azure_disk);

    fn storage_class_to_csi(&self, sc: StorageClass) -> Result<StorageClass> {
        // Azure Disk keeps `fstype` as it is: the driver reads that parameter itself.
        let mut sc = translate_zonal_storage_class(sc, TOPOLOGY_KEY, |params, key, _, value| {
            params.insert(key, key, value)
        })?;
        blank_numeric_zones(&mut sc);
        Ok(sc)
    }

    fn inline_to_csi(&self, volume: &Volume, _pod_namespace: &str) -> Result<PersistentVolume> {
        let disk = volume
            .azure_disk
            .as_ref()
            .ok_or_else(|| missing_inline_source("azureDisk", volume))?;
        Ok(new_pv(
            disk.disk_uri.clone(),
            PersistentVolumeSpec {
                csi: Some(csi_source(disk, false)?),
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                ..Default::default()
            },
        ))
    }

    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(disk) = pv.spec.as_ref().and_then(|s| s.azure_disk.as_ref()) else {
            return Err(missing_pv_source("spec.azureDisk", &pv));
        };
        let csi = csi_source(disk, true)?;
        let spec = spec_mut(&mut pv);
        spec.azure_disk = None;
        spec.csi = Some(csi);
        Ok(pv)
    }

    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        let disk_name = disk_name(&csi.volume_handle)?;
        let attributes = attributes_lowercased(csi.volume_attributes.as_ref());
        let non_empty = |key: &str| attributes.get(key).filter(|v| !v.is_empty()).cloned();
        spec_mut(&mut pv).azure_disk = Some(AzureDiskVolumeSource {
            disk_name,
            disk_uri: csi.volume_handle,
            fs_type: Some(non_empty(FSTYPE).unwrap_or(csi.fs_type.unwrap_or_default())),
            read_only: Some(csi.read_only.unwrap_or(false)),
            caching_mode: non_empty(CACHING_MODE),
            kind: Some(MANAGED.to_owned()),
        });
        Ok(pv)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_support::{check, pv, sc, vol};
    use crate::topology::{LABEL_BETA_ZONE, LABEL_REGION, LABEL_ZONE};

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    const URI: &str =
        "/subscriptions/sub/resourceGroups/rg/providers/Microsoft.Compute/disks/disk-1";

    fn term(exprs: Value) -> Value {
        json!({"matchLabelExpressions": exprs})
    }

    fn class(extra: Value) -> Value {
        let mut sc = json!({"metadata": {"name": "managed"}, "provisioner": PLUGIN_NAME});
        for (k, v) in extra.as_object().into_iter().flatten() {
            sc[k] = v.clone();
        }
        sc
    }

    #[test]
    fn azure_disk_storage_class_to_csi() {
        let cases = [
            Case {
                name: "azure_disk_sc_fstype_is_not_renamed",
                input: class(json!({"parameters": {"fstype": "xfs", "skuName": "Premium_LRS"}})),
                want: Ok(class(
                    json!({"parameters": {"fstype": "xfs", "skuName": "Premium_LRS"}}),
                )),
            },
            Case {
                name: "azure_disk_sc_numeric_zone_is_blanked",
                input: class(json!({"parameters": {"zone": "1"}})),
                want: Ok(class(json!({"allowedTopologies": [term(json!([
                    {"key": TOPOLOGY_KEY, "values": [""]}]))]}))),
            },
            Case {
                name: "azure_disk_sc_zones_blank_only_numeric_values",
                input: class(json!({"parameters": {"Zones": "1,westus-2,02", "kind": "managed"}})),
                want: Ok(class(json!({"parameters": {"kind": "managed"},
                    "allowedTopologies": [term(json!([
                        {"key": TOPOLOGY_KEY, "values": ["", "westus-2", ""]}]))]}))),
            },
            Case {
                name: "azure_disk_sc_allowed_topologies_renamed_then_numeric_blanked",
                input: class(json!({"allowedTopologies": [
                    term(json!([{"key": LABEL_ZONE, "values": ["0", "centralus-1"]},
                        {"key": LABEL_REGION, "values": ["1"]}])),
                    term(json!([{"key": LABEL_BETA_ZONE, "values": ["2"]},
                        {"key": TOPOLOGY_KEY, "values": ["3", "3a"]}]))]})),
                want: Ok(class(json!({"allowedTopologies": [
                    term(json!([{"key": TOPOLOGY_KEY, "values": ["", "centralus-1"]},
                        {"key": LABEL_REGION, "values": ["1"]}])),
                    term(json!([{"key": TOPOLOGY_KEY, "values": [""]},
                        {"key": TOPOLOGY_KEY, "values": ["", "3a"]}]))]}))),
            },
            Case {
                name: "azure_disk_sc_zone_with_allowed_topologies_is_rejected",
                input: class(json!({"parameters": {"zone": "1"}, "allowedTopologies": [
                    term(json!([{"key": LABEL_ZONE, "values": ["1"]}]))]})),
                want: Err(TranslateError::ZonesWithAllowedTopologies),
            },
            Case {
                name: "azure_disk_sc_no_parameters_stay_omitted",
                input: class(json!({})),
                want: Ok(class(json!({}))),
            },
        ];
        for case in cases {
            check(
                case.name,
                AzureDisk.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    fn disk(extra: Value) -> Value {
        let mut d = json!({"diskName": "disk-1", "diskURI": URI});
        for (k, v) in extra.as_object().into_iter().flatten() {
            d[k] = v.clone();
        }
        d
    }

    #[test]
    fn azure_disk_inline_volume_to_csi() {
        let cases = [
            Case {
                name: "azure_disk_inline_named_after_uri_with_managed_kind",
                input: json!({"name": "v", "azureDisk": disk(json!({}))}),
                want: Ok(
                    json!({"metadata": {"name": URI}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": URI,
                        "volumeAttributes": {"kind": "Managed"}}}}),
                ),
            },
            Case {
                name: "azure_disk_inline_caching_mode_fstype_and_read_only",
                input: json!({"name": "v", "azureDisk": disk(json!({"cachingMode": "ReadOnly",
                    "fsType": "ext4", "readOnly": true, "kind": "managed"}))}),
                want: Ok(
                    json!({"metadata": {"name": URI}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": URI, "fsType": "ext4",
                        "readOnly": true, "volumeAttributes": {"kind": "Managed",
                        "cachingmode": "ReadOnly", "fstype": "ext4"}}}}),
                ),
            },
            Case {
                name: "azure_disk_inline_empty_caching_mode_is_dropped_empty_fstype_kept_as_attribute",
                input: json!({"name": "v", "azureDisk": disk(json!({"cachingMode": "", "fsType": "",
                    "readOnly": false}))}),
                want: Ok(
                    json!({"metadata": {"name": URI}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": URI,
                        "volumeAttributes": {"kind": "Managed", "fstype": ""}}}}),
                ),
            },
            Case {
                name: "azure_disk_inline_unmanaged_kind_is_rejected",
                input: json!({"name": "v", "azureDisk": disk(json!({"kind": "Shared"}))}),
                want: Err(TranslateError::UnsupportedAzureDiskKind("Shared".into())),
            },
            Case {
                name: "azure_disk_inline_without_azure_disk_is_rejected",
                input: json!({"name": "v", "cinder": {"volumeID": "c"}}),
                want: Err(TranslateError::MissingSource {
                    field: "azureDisk",
                    object: "volume \"v\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                AzureDisk.inline_to_csi(&vol(case.input), ""),
                &case.want,
            );
        }
    }

    #[test]
    fn azure_disk_pv_to_csi() {
        let affinity = json!({"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": LABEL_ZONE, "operator": "In", "values": ["westus-1"]}]}]}});
        let cases = [
            Case {
                name: "azure_disk_pv_keeps_topology_labels_and_access_modes",
                input: json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "westus-1"}},
                    "spec": {"accessModes": ["ReadWriteMany"], "nodeAffinity": affinity.clone(),
                    "azureDisk": disk(json!({"cachingMode": "None", "kind": "Managed"}))}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "westus-1"}},
                    "spec": {"accessModes": ["ReadWriteMany"], "nodeAffinity": affinity,
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": URI,
                        "volumeAttributes": {"kind": "Managed", "cachingmode": "None"}}}}),
                ),
            },
            Case {
                name: "azure_disk_pv_empty_caching_mode_is_kept_as_attribute",
                input: json!({"metadata": {"name": "p"}, "spec": {
                    "azureDisk": disk(json!({"cachingMode": "", "fsType": "xfs", "readOnly": true}))}}),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": URI, "fsType": "xfs", "readOnly": true,
                        "volumeAttributes": {"kind": "Managed", "cachingmode": "", "fstype": "xfs"}}}})),
            },
            Case {
                name: "azure_disk_pv_dedicated_kind_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {
                    "azureDisk": disk(json!({"kind": "Dedicated"}))}}),
                want: Err(TranslateError::UnsupportedAzureDiskKind("Dedicated".into())),
            },
            Case {
                name: "azure_disk_pv_without_azure_disk_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.azureDisk",
                    object: "persistent volume \"p\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, AzureDisk.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    fn csi_pv(handle: &str, extra: Value) -> Value {
        let mut csi = json!({"driver": DRIVER_NAME, "volumeHandle": handle});
        for (k, v) in extra.as_object().into_iter().flatten() {
            csi[k] = v.clone();
        }
        json!({"metadata": {"name": "p"}, "spec": {"csi": csi}})
    }

    #[test]
    fn azure_disk_csi_pv_to_in_tree() {
        let vhd = "https://acct.blob.core.windows.net/vhds/disk-2.vhd";
        let cases = [
            Case {
                name: "azure_disk_rollback_always_writes_fstype_read_only_and_kind",
                input: csi_pv(URI, json!({})),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {"azureDisk": {
                    "diskName": "disk-1", "diskURI": URI, "fsType": "", "readOnly": false,
                    "kind": "Managed"}}})),
            },
            Case {
                name: "azure_disk_rollback_reads_attributes_case_insensitively",
                input: csi_pv(
                    URI,
                    json!({"fsType": "ext4", "readOnly": true,
                    "volumeAttributes": {"cachingMode": "ReadWrite", "FSTYPE": "xfs"}}),
                ),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {"azureDisk": {
                    "diskName": "disk-1", "diskURI": URI, "fsType": "xfs", "readOnly": true,
                    "cachingMode": "ReadWrite", "kind": "Managed"}}})),
            },
            Case {
                name: "azure_disk_rollback_lowercases_attribute_keys_like_go",
                input: csi_pv(
                    URI,
                    json!({"volumeAttributes": {"CACH\u{130}NGMODE": "None"}}),
                ),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {"azureDisk": {
                    "diskName": "disk-1", "diskURI": URI, "fsType": "", "readOnly": false,
                    "cachingMode": "None", "kind": "Managed"}}})),
            },
            Case {
                name: "azure_disk_rollback_ignores_empty_attributes",
                input: csi_pv(
                    URI,
                    json!({"fsType": "ext4",
                    "volumeAttributes": {"cachingmode": "", "fstype": ""}}),
                ),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {"azureDisk": {
                    "diskName": "disk-1", "diskURI": URI, "fsType": "ext4", "readOnly": false,
                    "kind": "Managed"}}})),
            },
            Case {
                name: "azure_disk_rollback_unmanaged_vhd_uri",
                input: csi_pv(vhd, json!({})),
                want: Ok(json!({"metadata": {"name": "p"}, "spec": {"azureDisk": {
                    "diskName": "disk-2.vhd", "diskURI": vhd, "fsType": "", "readOnly": false,
                    "kind": "Managed"}}})),
            },
            Case {
                name: "azure_disk_rollback_rejects_unrecognised_handle",
                input: csi_pv("disk-1", json!({})),
                want: Err(TranslateError::InvalidVolumeHandle {
                    handle: "disk-1".into(),
                    field: "spec.csi.volumeHandle",
                    reason: format!(
                        "could not get disk name, correct format: {MANAGED_DISK_PATTERN}"
                    ),
                }),
            },
            Case {
                name: "azure_disk_rollback_rejects_http_uri_without_vhds",
                input: csi_pv("HTTP://acct/disks/d", json!({})),
                want: Err(TranslateError::InvalidVolumeHandle {
                    handle: "HTTP://acct/disks/d".into(),
                    field: "spec.csi.volumeHandle",
                    reason: format!(
                        "could not get disk name, correct format: {UNMANAGED_DISK_PATTERN}"
                    ),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                AzureDisk.csi_pv_to_in_tree(pv(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn azure_disk_name_from_uri() {
        let cases: [(&str, &str, Option<&str>); 6] = [
            ("azure_disk_name_managed", URI, Some("disk-1")),
            (
                "azure_disk_name_managed_is_greedy",
                "/subscriptions/a/resourceGroups/b/providers/Microsoft.Compute/disks/x/providers/Microsoft.Compute/disks/y",
                Some("y"),
            ),
            (
                "azure_disk_name_unmanaged_regex_is_case_sensitive",
                "Https://a/vhds/d.vhd",
                None,
            ),
            (
                "azure_disk_name_unmanaged_vhd",
                "http://a/vhds/d.vhd",
                Some("d.vhd"),
            ),
            (
                "azure_disk_name_exactly_http_is_treated_as_managed",
                "http",
                None,
            ),
            (
                "azure_disk_name_case_sensitive_path",
                "/SUBSCRIPTIONS/a/resourceGroups/b/providers/Microsoft.Compute/disks/x",
                None,
            ),
        ];
        for (name, uri, want) in cases {
            assert_eq!(disk_name(uri).ok().as_deref(), want, "case {name:?}");
        }
    }
}
