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
    omit_false, spec_mut,
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
    fn in_tree_plugin_name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn csi_driver_name(&self) -> &'static str {
        DRIVER_NAME
    }

    fn source_field(&self) -> &'static str {
        "azureFile"
    }

    fn can_support(&self, pv: &PersistentVolume) -> bool {
        pv.spec.as_ref().is_some_and(|s| s.azure_file.is_some())
    }

    fn can_support_inline(&self, volume: &Volume) -> bool {
        volume.azure_file.is_some()
    }

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
