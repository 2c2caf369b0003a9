//! AWS Elastic Block Store: `kubernetes.io/aws-ebs` ⇄ `ebs.csi.aws.com`.

use std::collections::{BTreeMap, BTreeSet};

use k8s_openapi::api::core::v1::{
    AWSElasticBlockStoreVolumeSource, CSIPersistentVolumeSource, PersistentVolume,
    PersistentVolumeSpec, Volume,
};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::{RegionError, Result, TranslateError};
use crate::parameters::{CSI_FSTYPE, FSTYPE, translate_zonal_storage_class};
use crate::plugin::{
    InTreePlugin, missing_inline_source, missing_pv_source, new_pv, omit_empty, omit_false,
    spec_mut,
};
use crate::topology;

/// In-tree plugin name.
pub const PLUGIN_NAME: &str = "kubernetes.io/aws-ebs";
/// CSI driver name.
pub const DRIVER_NAME: &str = "ebs.csi.aws.com";
/// The driver's zone topology key.
pub const TOPOLOGY_KEY: &str = "topology.ebs.csi.aws.com/zone";
const IOPS_PER_GB: &str = "iopspergb";
const ALLOW_IOPS_INCREASE: &str = "allowautoiopspergbincrease";
const PARTITION: &str = "partition";

/// The AWS EBS translator.
#[derive(Debug, Clone, Copy)]
pub struct AwsEbs;

/// Reduces a Kubernetes EBS volume ID (`aws://<zone>/vol-…`) to the bare `vol-…`;
/// IDs without the `aws://` prefix are returned unchanged, unvalidated, as upstream.
pub fn ebs_volume_id(kubernetes_id: &str, field: &'static str) -> Result<String> {
    let Some(rest) = kubernetes_id.strip_prefix("aws://") else {
        return Ok(kubernetes_id.to_owned());
    };
    let invalid = |reason| TranslateError::InvalidEbsVolumeId {
        id: kubernetes_id.to_owned(),
        field,
        reason,
    };
    let end = rest.find(['?', '#']).unwrap_or(rest.len());
    let (authority, path) = rest[..end].split_at(rest[..end].find('/').unwrap_or(end));
    if let Some((_, port)) = authority.rsplit_once(':')
        && !port.bytes().all(|b| b.is_ascii_digit())
    {
        return Err(invalid("invalid port in URL"));
    }
    let path = percent_decode(path).ok_or_else(|| invalid("invalid URL escape"))?;
    let id = path.trim_matches('/');
    if !id.starts_with("vol-") || id.contains('/') {
        return Err(invalid("expected aws://<zone>/vol-<id>"));
    }
    Ok(id.to_owned())
}

fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The region of AWS zones: availability zones (`us-west-2a`, `us-gov-east-1a`),
/// local zones (`us-west-2-lax-1a`) and wavelength zones (`us-east-1-wl1-bos-wlz-1`).
pub fn region_from_zones(zones: &[String]) -> Result<String, RegionError> {
    if zones.is_empty() {
        return Err(RegionError::NoZones);
    }
    let mut regions = BTreeSet::new();
    for zone in zones {
        let parts: Vec<&str> = zone.split('-').collect();
        let region = match parts.as_slice() {
            [init @ .., last] if matches!(parts.len(), 3 | 4) && last.len() == 2 => last
                .get(..1)
                .map(|first| format!("{}-{first}", init.join("-"))),
            _ if matches!(parts.len(), 5 | 7) => Some(parts[..3].join("-")),
            _ => None,
        };
        regions.insert(region.ok_or_else(|| RegionError::UnexpectedAwsZone(zone.clone()))?);
    }
    if regions.len() != 1 {
        return Err(RegionError::MultipleRegions(regions.into_iter().collect()));
    }
    Ok(regions.into_iter().next().unwrap_or_default())
}

fn csi_source(
    ebs: &AWSElasticBlockStoreVolumeSource,
    field: &'static str,
) -> Result<CSIPersistentVolumeSource> {
    Ok(CSIPersistentVolumeSource {
        driver: DRIVER_NAME.to_owned(),
        volume_handle: ebs_volume_id(&ebs.volume_id, field)?,
        read_only: omit_false(ebs.read_only),
        fs_type: omit_empty(ebs.fs_type.clone()),
        volume_attributes: Some(BTreeMap::from([(
            PARTITION.to_owned(),
            ebs.partition.unwrap_or(0).to_string(),
        )])),
        ..Default::default()
    })
}

impl InTreePlugin for AwsEbs {
    fn in_tree_plugin_name(&self) -> &'static str {
        PLUGIN_NAME
    }

    fn csi_driver_name(&self) -> &'static str {
        DRIVER_NAME
    }

    fn source_field(&self) -> &'static str {
        "awsElasticBlockStore"
    }

    fn can_support(&self, pv: &PersistentVolume) -> bool {
        pv.spec
            .as_ref()
            .is_some_and(|s| s.aws_elastic_block_store.is_some())
    }

    fn can_support_inline(&self, volume: &Volume) -> bool {
        volume.aws_elastic_block_store.is_some()
    }

    fn storage_class_to_csi(&self, sc: StorageClass) -> Result<StorageClass> {
        translate_zonal_storage_class(sc, TOPOLOGY_KEY, |params, key, lower, value| match lower {
            FSTYPE => params.insert(key, CSI_FSTYPE, value),
            IOPS_PER_GB => {
                // Keep the in-tree behaviour: the driver may raise IOPS for small volumes.
                params.insert(key, key, value)?;
                params.insert(key, ALLOW_IOPS_INCREASE, "true")
            }
            _ => params.insert(key, key, value),
        })
    }

    fn inline_to_csi(&self, volume: &Volume, _pod_namespace: &str) -> Result<PersistentVolume> {
        let ebs = volume
            .aws_elastic_block_store
            .as_ref()
            .ok_or_else(|| missing_inline_source("awsElasticBlockStore", volume))?;
        let csi = csi_source(ebs, "awsElasticBlockStore.volumeID")?;
        Ok(new_pv(
            format!("{DRIVER_NAME}-{}", csi.volume_handle),
            PersistentVolumeSpec {
                csi: Some(csi),
                access_modes: Some(vec!["ReadWriteOnce".to_owned()]),
                ..Default::default()
            },
        ))
    }

    fn pv_to_csi(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(ebs) = pv
            .spec
            .as_mut()
            .and_then(|s| s.aws_elastic_block_store.take())
        else {
            return Err(missing_pv_source("spec.awsElasticBlockStore", &pv));
        };
        let csi = csi_source(&ebs, "spec.awsElasticBlockStore.volumeID")?;
        topology::in_tree_to_csi(&mut pv, TOPOLOGY_KEY);
        spec_mut(&mut pv).csi = Some(csi);
        Ok(pv)
    }

    fn csi_pv_to_in_tree(&self, mut pv: PersistentVolume) -> Result<PersistentVolume> {
        let Some(csi) = pv.spec.as_mut().and_then(|s| s.csi.take()) else {
            return Err(missing_pv_source("spec.csi", &pv));
        };
        let partition = match csi
            .volume_attributes
            .as_ref()
            .and_then(|a| a.get(PARTITION))
        {
            Some(p) => {
                let n: i32 = p
                    .parse()
                    .map_err(|_| TranslateError::InvalidPartition { value: p.clone() })?;
                (n != 0).then_some(n)
            }
            None => None,
        };
        topology::csi_to_in_tree(&mut pv, TOPOLOGY_KEY, Some(region_from_zones))
            .map_err(TranslateError::Region)?;
        spec_mut(&mut pv).aws_elastic_block_store = Some(AWSElasticBlockStoreVolumeSource {
            volume_id: csi.volume_handle,
            fs_type: omit_empty(csi.fs_type),
            read_only: omit_false(csi.read_only),
            partition,
        });
        Ok(pv)
    }
}
