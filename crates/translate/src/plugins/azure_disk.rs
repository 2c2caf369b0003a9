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
    omit_false, spec_mut,
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
    fn in_tree_plugin_name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn csi_driver_name(&self) -> &'static str {
        DRIVER_NAME
    }

    fn source_field(&self) -> &'static str {
        "azureDisk"
    }

    fn can_support(&self, pv: &PersistentVolume) -> bool {
        pv.spec.as_ref().is_some_and(|s| s.azure_disk.is_some())
    }

    fn can_support_inline(&self, volume: &Volume) -> bool {
        volume.azure_disk.is_some()
    }

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
