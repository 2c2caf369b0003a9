//! Azure File: `kubernetes.io/azure-file` ⇄ `file.csi.azure.com`.

use std::collections::BTreeMap;
use std::sync::LazyLock;

use k8s_openapi::api::core::v1::{
    AzureFilePersistentVolumeSource, CSIPersistentVolumeSource, PersistentVolume,
    PersistentVolumeSpec, SecretReference, Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;
use regex::Regex;

use crate::error::{Result, TranslateError};
use crate::plugin::{
    InTreePlugin, attributes_lowercased, missing_inline_source, missing_pv_source, new_pv,
    omit_false, plugin_identity, spec_mut,
};

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/azure-file";
/// CSI driver name.
pub const DRIVER_NAME: &str = "file.csi.azure.com";
/// PV annotation that carries the storage account's resource group.
pub const RESOURCE_GROUP_ANNOTATION: &str = "kubernetes.io/azure-file-resource-group";
const SHARE_NAME: &str = "sharename";
const SECRET_NAME: &str = "secretname";
const SECRET_NAMESPACE: &str = "secretnamespace";
const DEFAULT_SECRET_NAMESPACE: &str = "default";

static ACCOUNT_FROM_SECRET: LazyLock<Regex> = LazyLock::new(|| {
    Regex::new("azure-storage-account-(.+)-secret").expect("constant pattern compiles")
});

/// The Azure File translator.
#[derive(Debug, Clone, Copy)]
pub struct AzureFile;

/// The storage account named by an `azure-storage-account-<account>-secret` secret,
/// or the whole secret name when it does not follow that pattern.
pub fn storage_account_name(secret_name: &str) -> String {
    ACCOUNT_FROM_SECRET
        .captures(secret_name)
        .and_then(|c| c.get(1))
        .map_or(secret_name, |m| m.as_str())
        .to_owned()
}

/// `<resourceGroup>#<account>#<share>#<name>#<namespace>`.
fn volume_handle(
    resource_group: &str,
    account: &str,
    share: &str,
    name: &str,
    namespace: &str,
) -> String {
    format!("{resource_group}#{account}#{share}#{name}#{namespace}")
}

fn share_attributes(share: &str) -> Option<BTreeMap<String, String>> {
    Some(BTreeMap::from([(SHARE_NAME.to_owned(), share.to_owned())]))
}

impl InTreePlugin for AzureFile {
    plugin_identity!("azureFile", azure_file);

    /// Azure File StorageClasses need no change.
    fn storage_class_to_csi(&self, sc: StorageClass) -> Result<StorageClass> {
        Ok(sc)
    }

    fn inline_to_csi(&self, volume: &Volume, pod_namespace: &str) -> Result<PersistentVolume> {
        let file = volume
            .azure_file
            .as_ref()
            .ok_or_else(|| missing_inline_source("azureFile", volume))?;
        let account = storage_account_name(&file.secret_name);
        let namespace = if pod_namespace.is_empty() {
            DEFAULT_SECRET_NAMESPACE
        } else {
            pod_namespace
        };
        let handle = volume_handle("", &account, &file.share_name, &volume.name, namespace);
        Ok(new_pv(
            handle.clone(),
            PersistentVolumeSpec {
                csi: Some(CSIPersistentVolumeSource {
                    driver: DRIVER_NAME.to_owned(),
                    volume_handle: handle,
                    read_only: omit_false(file.read_only),
                    volume_attributes: share_attributes(&file.share_name),
                    node_stage_secret_ref: Some(SecretReference {
                        name: Some(file.secret_name.clone()),
                        namespace: Some(namespace.to_owned()),
                    }),
                    ..Default::default()
                }),
                access_modes: Some(vec!["ReadWriteMany".to_owned()]),
                ..Default::default()
            },
        ))
    }

    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(file) = pv.spec.as_ref().and_then(|s| s.azure_file.as_ref()) else {
            return Err(missing_pv_source("spec.azureFile", &pv));
        };
        let account = storage_account_name(&file.secret_name);
        let resource_group = pv
            .metadata
            .annotations
            .as_ref()
            .and_then(|a| a.get(RESOURCE_GROUP_ANNOTATION))
            .map_or("", String::as_str);
        // An explicit secretNamespace wins even when empty, as upstream.
        let namespace = match &file.secret_namespace {
            Some(ns) => ns.as_str(),
            None => pv
                .spec
                .as_ref()
                .and_then(|s| s.claim_ref.as_ref())
                .and_then(|c| c.namespace.as_deref())
                .unwrap_or_default(),
        };
        if namespace.is_empty() {
            return Err(TranslateError::MissingSecretNamespace);
        }
        let name = pv.metadata.name.as_deref().unwrap_or_default();
        let csi = CSIPersistentVolumeSource {
            driver: DRIVER_NAME.to_owned(),
            volume_handle: volume_handle(
                resource_group,
                &account,
                &file.share_name,
                name,
                namespace,
            ),
            read_only: omit_false(file.read_only),
            volume_attributes: share_attributes(&file.share_name),
            node_stage_secret_ref: Some(SecretReference {
                name: Some(file.secret_name.clone()),
                namespace: Some(namespace.to_owned()),
            }),
            ..Default::default()
        };
        let spec = spec_mut(&mut pv);
        spec.azure_file = None;
        spec.csi = Some(csi);
        Ok(pv)
    }

    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        let attributes = attributes_lowercased(csi.volume_attributes.as_ref());
        let mut share_name = attributes.get(SHARE_NAME).cloned().unwrap_or_default();
        let mut secret_name = attributes.get(SECRET_NAME).cloned().unwrap_or_default();
        let mut secret_namespace = attributes.get(SECRET_NAMESPACE).cloned();
        if let Some(secret) = csi
            .node_stage_secret_ref
            .as_ref()
            .filter(|s| s.name.as_deref().is_some_and(|n| !n.is_empty()))
        {
            secret_name = secret.name.clone().unwrap_or_default();
            // Upstream takes the reference's namespace even when it is empty.
            secret_namespace = Some(secret.namespace.clone().unwrap_or_default());
        }
        let mut resource_group = String::new();
        if share_name.is_empty() || secret_name.is_empty() {
            let parts: Vec<&str> = csi.volume_handle.split('#').collect();
            if parts.len() < 3 {
                return Err(TranslateError::InvalidVolumeHandle {
                    handle: csi.volume_handle.clone(),
                    field: "spec.csi.volumeHandle",
                    reason: "should at least contain two #".to_owned(),
                });
            }
            if share_name.is_empty() {
                share_name = parts[2].to_owned();
            }
            if secret_name.is_empty() {
                secret_name = format!("azure-storage-account-{}-secret", parts[1]);
            }
            resource_group = parts[0].to_owned();
        }
        if !resource_group.is_empty() {
            pv.metadata
                .annotations
                .get_or_insert_with(Default::default)
                .insert(RESOURCE_GROUP_ANNOTATION.to_owned(), resource_group);
        }
        spec_mut(&mut pv).azure_file = Some(AzureFilePersistentVolumeSource {
            share_name,
            secret_name,
            secret_namespace: Some(
                secret_namespace.unwrap_or_else(|| DEFAULT_SECRET_NAMESPACE.to_owned()),
            ),
            read_only: omit_false(csi.read_only),
        });
        Ok(pv)
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{Value, json};

    use super::*;
    use crate::test_support::{check, json, pv, sc, vol};

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    #[test]
    fn azure_file_storage_class_is_unchanged() {
        let input = json!({"metadata": {"name": "af"}, "provisioner": PLUGIN_NAME,
            "parameters": {"skuName": "Standard_LRS", "fstype": "ext4", "zone": "1"},
            "allowedTopologies": [{"matchLabelExpressions": [
                {"key": "topology.kubernetes.io/zone", "values": ["1"]}]}]});
        let out = AzureFile.storage_class_to_csi(sc(input.clone())).unwrap();
        assert_eq!(
            json(&out),
            input,
            "azure_file_sc_parameters_and_topologies_untouched"
        );
    }

    #[test]
    fn azure_file_storage_account_name() {
        let cases = [
            (
                "azure_file_account_from_secret_pattern",
                "azure-storage-account-acct-secret",
                "acct",
            ),
            (
                "azure_file_account_with_dash",
                "azure-storage-account-a-dup-secret",
                "a-dup",
            ),
            (
                "azure_file_account_greedy_and_unanchored",
                "xazure-storage-account-a-secret-b-secretx",
                "a-secret-b",
            ),
            (
                "azure_file_account_falls_back_to_secret_name",
                "my-secret",
                "my-secret",
            ),
        ];
        for (name, secret, want) in cases {
            assert_eq!(storage_account_name(secret), want, "case {name:?}");
        }
    }

    #[test]
    fn azure_file_inline_volume_to_csi() {
        let secret = "azure-storage-account-acct-secret";
        let cases = [
            (
                Case {
                    name: "azure_file_inline_uses_pod_namespace",
                    input: json!({"name": "vol", "azureFile": {"secretName": secret,
                    "shareName": "share", "readOnly": true}}),
                    want: Ok(
                        json!({"metadata": {"name": "#acct#share#vol#team"}, "spec": {
                    "accessModes": ["ReadWriteMany"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "#acct#share#vol#team", "readOnly": true,
                    "volumeAttributes": {"sharename": "share"},
                    "nodeStageSecretRef": {"name": secret, "namespace": "team"}}}}),
                    ),
                },
                "team",
            ),
            (
                Case {
                    name: "azure_file_inline_without_pod_namespace_uses_default",
                    input: json!({"name": "vol", "azureFile": {"secretName": "plain",
                    "shareName": "share", "readOnly": false}}),
                    want: Ok(
                        json!({"metadata": {"name": "#plain#share#vol#default"}, "spec": {
                    "accessModes": ["ReadWriteMany"], "csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "#plain#share#vol#default",
                    "volumeAttributes": {"sharename": "share"},
                    "nodeStageSecretRef": {"name": "plain", "namespace": "default"}}}}),
                    ),
                },
                "",
            ),
            (
                Case {
                    name: "azure_file_inline_without_azure_file_is_rejected",
                    input: json!({"name": "vol", "azureDisk": {"diskName": "d", "diskURI": "u"}}),
                    want: Err(TranslateError::MissingSource {
                        field: "azureFile",
                        object: "volume \"vol\"".into(),
                    }),
                },
                "team",
            ),
        ];
        for (case, namespace) in cases {
            check(
                case.name,
                AzureFile.inline_to_csi(&vol(case.input), namespace),
                &case.want,
            );
        }
    }

    fn file_pv(annotations: Value, source: Value, claim_ns: Option<&str>) -> Value {
        let mut spec = json!({"accessModes": ["ReadWriteMany"], "azureFile": source});
        if let Some(ns) = claim_ns {
            spec["claimRef"] = json!({"name": "claim", "namespace": ns});
        }
        json!({"metadata": {"name": "pv-1", "annotations": annotations}, "spec": spec})
    }

    #[test]
    fn azure_file_pv_to_csi() {
        let secret = "azure-storage-account-acct-secret";
        let cases = [
            Case {
                name: "azure_file_pv_handle_has_resource_group_and_secret_namespace",
                input: file_pv(
                    json!({RESOURCE_GROUP_ANNOTATION: "rg"}),
                    json!({"secretName": secret, "shareName": "share", "secretNamespace": "sec-ns"}),
                    Some("claim-ns"),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1",
                        "annotations": {RESOURCE_GROUP_ANNOTATION: "rg"}},
                    "spec": {"accessModes": ["ReadWriteMany"],
                    "claimRef": {"name": "claim", "namespace": "claim-ns"},
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": "rg#acct#share#pv-1#sec-ns",
                        "volumeAttributes": {"sharename": "share"},
                        "nodeStageSecretRef": {"name": secret, "namespace": "sec-ns"}}}})),
            },
            Case {
                name: "azure_file_pv_falls_back_to_claim_namespace",
                input: file_pv(
                    json!({}),
                    json!({"secretName": secret, "shareName": "share", "readOnly": true}),
                    Some("claim-ns"),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1", "annotations": {}},
                    "spec": {"accessModes": ["ReadWriteMany"],
                    "claimRef": {"name": "claim", "namespace": "claim-ns"},
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": "#acct#share#pv-1#claim-ns",
                        "readOnly": true, "volumeAttributes": {"sharename": "share"},
                        "nodeStageSecretRef": {"name": secret, "namespace": "claim-ns"}}}})),
            },
            Case {
                name: "azure_file_pv_empty_secret_namespace_does_not_fall_back",
                input: file_pv(
                    json!({}),
                    json!({"secretName": secret, "shareName": "share", "secretNamespace": ""}),
                    Some("claim-ns"),
                ),
                want: Err(TranslateError::MissingSecretNamespace),
            },
            Case {
                name: "azure_file_pv_without_any_namespace_is_rejected",
                input: file_pv(
                    json!({}),
                    json!({"secretName": secret, "shareName": "share"}),
                    None,
                ),
                want: Err(TranslateError::MissingSecretNamespace),
            },
            Case {
                name: "azure_file_pv_without_azure_file_is_rejected",
                input: json!({"metadata": {"name": "pv-1"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.azureFile",
                    object: "persistent volume \"pv-1\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, AzureFile.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    fn csi_pv(handle: &str, extra: Value) -> Value {
        let mut csi = json!({"driver": DRIVER_NAME, "volumeHandle": handle});
        for (k, v) in extra.as_object().into_iter().flatten() {
            csi[k] = v.clone();
        }
        json!({"metadata": {"name": "pv-1"}, "spec": {"csi": csi}})
    }

    #[test]
    fn azure_file_csi_pv_to_in_tree() {
        let cases = [
            Case {
                name: "azure_file_rollback_reads_attributes_case_insensitively",
                input: csi_pv(
                    "rg#acct#share#pv-1#ns",
                    json!({"readOnly": true, "volumeAttributes": {
                    "shareName": "s1", "SecretName": "sec", "secretnamespace": "ns1"}}),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {"azureFile": {
                    "shareName": "s1", "secretName": "sec", "secretNamespace": "ns1",
                    "readOnly": true}}})),
            },
            Case {
                name: "azure_file_rollback_secret_ref_overrides_even_with_empty_namespace",
                input: csi_pv(
                    "rg#acct#share",
                    json!({"volumeAttributes": {"sharename": "s1",
                    "secretname": "attr-sec", "secretnamespace": "attr-ns"},
                    "nodeStageSecretRef": {"name": "ref-sec"}}),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {"azureFile": {
                    "shareName": "s1", "secretName": "ref-sec", "secretNamespace": ""}}})),
            },
            Case {
                name: "azure_file_rollback_parses_handle_for_share_secret_and_resource_group",
                input: csi_pv("rg#acct#share#pv-1#ignored-ns", json!({})),
                want: Ok(json!({"metadata": {"name": "pv-1",
                        "annotations": {RESOURCE_GROUP_ANNOTATION: "rg"}},
                    "spec": {"azureFile": {"shareName": "share",
                        "secretName": "azure-storage-account-acct-secret",
                        "secretNamespace": "default"}}})),
            },
            Case {
                name: "azure_file_rollback_empty_resource_group_adds_no_annotation",
                input: csi_pv(
                    "#acct#share",
                    json!({"nodeStageSecretRef": {"name": "s",
                    "namespace": "n"}}),
                ),
                want: Ok(json!({"metadata": {"name": "pv-1"}, "spec": {"azureFile": {
                    "shareName": "share", "secretName": "s", "secretNamespace": "n"}}})),
            },
            Case {
                name: "azure_file_rollback_rejects_handle_with_one_separator",
                input: csi_pv("acct#share", json!({})),
                want: Err(TranslateError::InvalidVolumeHandle {
                    handle: "acct#share".into(),
                    field: "spec.csi.volumeHandle",
                    reason: "should at least contain two #".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                AzureFile.csi_pv_to_in_tree(pv(case.input)),
                &case.want,
            );
        }
    }
}
