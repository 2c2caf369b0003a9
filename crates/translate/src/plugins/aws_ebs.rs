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
    plugin_identity, spec_mut,
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
///
/// `aws://` IDs are checked the way Go's `url.Parse` checks them (control characters,
/// `%` escapes, host characters, port, userinfo) before the path is taken.
pub fn ebs_volume_id(kubernetes_id: &str, field: &'static str) -> Result<String> {
    let Some(rest) = kubernetes_id.strip_prefix("aws://") else {
        return Ok(kubernetes_id.to_owned());
    };
    let invalid = |reason| TranslateError::InvalidEbsVolumeId {
        id: kubernetes_id.to_owned(),
        field,
        reason,
    };
    // Go cuts the fragment off first and only checks its escapes.
    let (url, fragment) = rest.split_once('#').unwrap_or((rest, ""));
    if url.bytes().any(|b| b < 0x20 || b == 0x7f) {
        return Err(invalid("invalid control character in URL"));
    }
    if !valid_escapes(fragment, false) {
        return Err(invalid("invalid URL escape"));
    }
    let url = url.split_once('?').map_or(url, |(url, _query)| url);
    let (authority, path) = url.split_at(url.find('/').unwrap_or(url.len()));
    let host = match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            check_userinfo(userinfo).map_err(invalid)?;
            host
        }
        None => authority,
    };
    check_host(host).map_err(invalid)?;
    if !valid_escapes(path, false) {
        return Err(invalid("invalid URL escape"));
    }
    let path = String::from_utf8(percent_decode(path))
        .map_err(|_| invalid("escaped volume ID is not valid UTF-8"))?;
    let id = path.trim_matches('/');
    if !id.starts_with("vol-") || id.contains('/') {
        return Err(invalid("expected aws://<zone>/vol-<id>"));
    }
    Ok(id.to_owned())
}

/// Whether every `%` starts a two-digit hex escape; in a host, escapes may only
/// encode non-ASCII bytes (or `%25`), and unescaped ASCII must be a host character.
fn valid_escapes(s: &str, host: bool) -> bool {
    let bytes = s.as_bytes();
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let (Some(&hi), Some(&lo)) = (bytes.get(i + 1), bytes.get(i + 2)) else {
                return false;
            };
            if !hi.is_ascii_hexdigit() || !lo.is_ascii_hexdigit() {
                return false;
            }
            if host && hi < b'8' && &bytes[i..i + 3] != b"%25" {
                return false;
            }
            i += 3;
        } else {
            if host && bytes[i].is_ascii() && !is_host_char(bytes[i]) {
                return false;
            }
            i += 1;
        }
    }
    true
}

/// ASCII characters Go's `url.Parse` accepts unescaped in a host.
fn is_host_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~!$&'()*+,;=:[]<>\"".contains(&b)
}

fn check_host(host: &str) -> Result<(), &'static str> {
    let port = if host.starts_with('[') {
        let Some(end) = host.rfind(']') else {
            return Err("missing ']' in host");
        };
        &host[end + 1..]
    } else {
        host.rfind(':').map_or("", |i| &host[i..])
    };
    if let Some(digits) = port.strip_prefix(':') {
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err("invalid port in URL");
        }
    } else if !port.is_empty() {
        return Err("invalid port in URL");
    }
    if !valid_escapes(host, true) {
        return Err("invalid character in host name");
    }
    Ok(())
}

fn check_userinfo(userinfo: &str) -> Result<(), &'static str> {
    let allowed = |c: char| c.is_ascii_alphanumeric() || "-._:~!$&'()*+,;=%@".contains(c);
    if !userinfo.chars().all(allowed) {
        return Err("invalid userinfo");
    }
    if !valid_escapes(userinfo, false) {
        return Err("invalid URL escape");
    }
    Ok(())
}

/// Decodes `%XY` escapes; the input has been checked by [`valid_escapes`].
fn percent_decode(s: &str) -> Vec<u8> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = (bytes[i] == b'%')
            .then(|| s.get(i + 1..i + 3))
            .flatten()
            .and_then(|hex| u8::from_str_radix(hex, 16).ok());
        match escaped {
            Some(b) => {
                out.push(b);
                i += 3;
            }
            None => {
                out.push(bytes[i]);
                i += 1;
            }
        }
    }
    out
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
    plugin_identity!("awsElasticBlockStore", aws_elastic_block_store);

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
        topology::csi_to_in_tree(&mut pv, TOPOLOGY_KEY, Some(region_from_zones))?;
        spec_mut(&mut pv).aws_elastic_block_store = Some(AWSElasticBlockStoreVolumeSource {
            volume_id: csi.volume_handle,
            fs_type: omit_empty(csi.fs_type),
            read_only: omit_false(csi.read_only),
            partition,
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
    use crate::topology::{LABEL_BETA_REGION, LABEL_BETA_ZONE, LABEL_REGION, LABEL_ZONE};

    struct Case {
        name: &'static str,
        input: Value,
        want: Result<Value>,
    }

    fn zone_term(key: &str, values: &[&str]) -> Value {
        json!({"matchLabelExpressions": [{"key": key, "values": values}]})
    }

    fn class(parameters: Value) -> Value {
        json!({"metadata": {"name": "gp"}, "provisioner": PLUGIN_NAME, "parameters": parameters})
    }

    #[test]
    fn ebs_storage_class_to_csi() {
        let cases = [
            Case {
                name: "ebs_sc_fstype_renamed_others_copied",
                input: class(json!({"type": "io1", "FsType": "ext4", "encrypted": "true"})),
                want: Ok(class(
                    json!({"type": "io1", "csi.storage.k8s.io/fstype": "ext4",
                    "encrypted": "true"}),
                )),
            },
            Case {
                name: "ebs_sc_iops_per_gb_keeps_spelling_and_allows_increase",
                input: class(json!({"type": "io1", "iopsPerGB": "50"})),
                want: Ok(class(json!({"type": "io1", "iopsPerGB": "50",
                    "allowautoiopspergbincrease": "true"}))),
            },
            Case {
                name: "ebs_sc_existing_allow_increase_in_other_case_survives",
                input: class(json!({"IOPSPERGB": "10", "allowAutoIOPSPerGBIncrease": "false"})),
                want: Ok(class(
                    json!({"IOPSPERGB": "10", "allowAutoIOPSPerGBIncrease": "false",
                    "allowautoiopspergbincrease": "true"}),
                )),
            },
            Case {
                name: "ebs_sc_keys_are_lowercased_like_go_dotted_capital_i_matches",
                input: class(json!({"\u{130}opsPerGB": "10"})),
                want: Ok(class(json!({"\u{130}opsPerGB": "10",
                    "allowautoiopspergbincrease": "true"}))),
            },
            Case {
                name: "ebs_sc_conflicting_lowercase_allow_increase_is_rejected",
                input: class(json!({"iopspergb": "10", "allowautoiopspergbincrease": "false"})),
                want: Err(TranslateError::ConflictingParameters {
                    first: "allowautoiopspergbincrease".into(),
                    second: "iopspergb".into(),
                    target: "allowautoiopspergbincrease".into(),
                }),
            },
            Case {
                name: "ebs_sc_agreeing_lowercase_allow_increase_is_accepted",
                input: class(json!({"iopspergb": "10", "allowautoiopspergbincrease": "true"})),
                want: Ok(class(
                    json!({"iopspergb": "10", "allowautoiopspergbincrease": "true"}),
                )),
            },
            Case {
                name: "ebs_sc_zones_become_allowed_topologies",
                input: class(json!({"zones": "us-east-1a,us-east-1b", "type": "gp3"})),
                want: Ok(
                    json!({"metadata": {"name": "gp"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"type": "gp3"},
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["us-east-1a", "us-east-1b"])]}),
                ),
            },
            Case {
                name: "ebs_sc_zone_with_allowed_topologies_is_rejected",
                input: json!({"metadata": {"name": "gp"}, "provisioner": PLUGIN_NAME,
                    "parameters": {"zone": "us-east-1a"},
                    "allowedTopologies": [zone_term(LABEL_BETA_ZONE, &["us-east-1a"])]}),
                want: Err(TranslateError::ZonesWithAllowedTopologies),
            },
            Case {
                name: "ebs_sc_allowed_topologies_zone_key_renamed",
                input: json!({"metadata": {"name": "gp"}, "provisioner": PLUGIN_NAME,
                    "allowedTopologies": [zone_term(LABEL_ZONE, &["us-east-1a"]),
                        {"matchLabelExpressions": []}]}),
                want: Ok(
                    json!({"metadata": {"name": "gp"}, "provisioner": PLUGIN_NAME,
                    "allowedTopologies": [zone_term(TOPOLOGY_KEY, &["us-east-1a"]), {}]}),
                ),
            },
        ];
        for case in cases {
            check(
                case.name,
                AwsEbs.storage_class_to_csi(sc(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn ebs_volume_id_parsing() {
        let bad = |id: &str, reason| {
            Err(TranslateError::InvalidEbsVolumeId {
                id: id.into(),
                field: "f",
                reason,
            })
        };
        let cases: Vec<(&str, &str, Result<String>)> = vec![
            (
                "ebs_bare_volume_id_is_kept",
                "vol-0abc",
                Ok("vol-0abc".into()),
            ),
            (
                "ebs_unprefixed_garbage_is_accepted_verbatim",
                "garbage/with/slash",
                Ok("garbage/with/slash".into()),
            ),
            (
                "ebs_uppercase_scheme_is_not_a_url",
                "AWS://zone/vol-1",
                Ok("AWS://zone/vol-1".into()),
            ),
            (
                "ebs_aws_url_with_zone_gives_bare_id",
                "aws://us-west-2a/vol-0abc",
                Ok("vol-0abc".into()),
            ),
            (
                "ebs_aws_url_without_zone_gives_bare_id",
                "aws:///vol-0abc",
                Ok("vol-0abc".into()),
            ),
            (
                "ebs_aws_url_trailing_slash_is_trimmed",
                "aws://z/vol-1/",
                Ok("vol-1".into()),
            ),
            (
                "ebs_aws_url_query_and_fragment_are_ignored",
                "aws://z/vol-1?x=1#frag",
                Ok("vol-1".into()),
            ),
            (
                "ebs_aws_url_path_escapes_are_decoded",
                "aws://z/vol-%41b",
                Ok("vol-Ab".into()),
            ),
            (
                "ebs_aws_url_with_port_and_userinfo_is_accepted",
                "aws://u:p@z:80/vol-1",
                Ok("vol-1".into()),
            ),
            (
                "ebs_aws_url_with_volume_in_host_position_is_rejected",
                "aws://vol-0abc",
                bad("aws://vol-0abc", "expected aws://<zone>/vol-<id>"),
            ),
            (
                "ebs_aws_url_without_vol_prefix_is_rejected",
                "aws://z/disk-1",
                bad("aws://z/disk-1", "expected aws://<zone>/vol-<id>"),
            ),
            (
                "ebs_aws_url_with_nested_path_is_rejected",
                "aws://z/a/vol-1",
                bad("aws://z/a/vol-1", "expected aws://<zone>/vol-<id>"),
            ),
            (
                "ebs_aws_url_escaped_slash_is_rejected",
                "aws://z/vol-a%2Fb",
                bad("aws://z/vol-a%2Fb", "expected aws://<zone>/vol-<id>"),
            ),
            (
                "ebs_aws_url_bad_escape_is_rejected",
                "aws://z/vol-%zz",
                bad("aws://z/vol-%zz", "invalid URL escape"),
            ),
            (
                "ebs_aws_url_truncated_escape_is_rejected",
                "aws://z/vol-%4",
                bad("aws://z/vol-%4", "invalid URL escape"),
            ),
            (
                "ebs_aws_url_bad_escape_in_fragment_is_rejected",
                "aws://z/vol-1#%",
                bad("aws://z/vol-1#%", "invalid URL escape"),
            ),
            (
                "ebs_aws_url_non_numeric_port_is_rejected",
                "aws://z:ab/vol-1",
                bad("aws://z:ab/vol-1", "invalid port in URL"),
            ),
            (
                "ebs_aws_url_space_in_host_is_rejected",
                "aws://us east/vol-1",
                bad("aws://us east/vol-1", "invalid character in host name"),
            ),
            (
                "ebs_aws_url_ascii_escape_in_host_is_rejected",
                "aws://%41/vol-1",
                bad("aws://%41/vol-1", "invalid character in host name"),
            ),
            (
                "ebs_aws_url_control_character_is_rejected",
                "aws://z/vol-\n1",
                bad("aws://z/vol-\n1", "invalid control character in URL"),
            ),
            (
                "ebs_aws_url_bad_userinfo_is_rejected",
                "aws://a b@z/vol-1",
                bad("aws://a b@z/vol-1", "invalid userinfo"),
            ),
            (
                "ebs_aws_url_unclosed_ipv6_host_is_rejected",
                "aws://[::1/vol-1",
                bad("aws://[::1/vol-1", "missing ']' in host"),
            ),
            (
                "ebs_aws_url_non_ascii_host_is_accepted",
                "aws://zöne/vol-1",
                Ok("vol-1".into()),
            ),
        ];
        for (name, id, want) in cases {
            assert_eq!(ebs_volume_id(id, "f"), want, "case {name:?}");
        }
    }

    #[test]
    fn ebs_inline_volume_to_csi() {
        let cases = [
            Case {
                name: "ebs_inline_gets_bare_id_partition_zero_and_rwo",
                input: json!({"name": "v", "awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-1"}}),
                want: Ok(
                    json!({"metadata": {"name": "ebs.csi.aws.com-vol-1"}, "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": "vol-1",
                        "volumeAttributes": {"partition": "0"}}}}),
                ),
            },
            Case {
                name: "ebs_inline_read_only_keeps_rwo_and_sets_read_only",
                input: json!({"name": "v", "awsElasticBlockStore": {"volumeID": "vol-1",
                    "readOnly": true, "fsType": "xfs", "partition": 2}}),
                want: Ok(
                    json!({"metadata": {"name": "ebs.csi.aws.com-vol-1"}, "spec": {
                    "accessModes": ["ReadWriteOnce"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": "vol-1", "readOnly": true,
                        "fsType": "xfs", "volumeAttributes": {"partition": "2"}}}}),
                ),
            },
            Case {
                name: "ebs_inline_invalid_aws_url_is_rejected",
                input: json!({"name": "v", "awsElasticBlockStore": {"volumeID": "aws://vol-1"}}),
                want: Err(TranslateError::InvalidEbsVolumeId {
                    id: "aws://vol-1".into(),
                    field: "awsElasticBlockStore.volumeID",
                    reason: "expected aws://<zone>/vol-<id>",
                }),
            },
            Case {
                name: "ebs_inline_without_ebs_source_is_rejected",
                input: json!({"name": "v", "gcePersistentDisk": {"pdName": "d"}}),
                want: Err(TranslateError::MissingSource {
                    field: "awsElasticBlockStore",
                    object: "volume \"v\"".into(),
                }),
            },
        ];
        for case in cases {
            check(
                case.name,
                AwsEbs.inline_to_csi(&vol(case.input), ""),
                &case.want,
            );
        }
    }

    fn expr(key: &str, values: &[&str]) -> Value {
        json!({"key": key, "operator": "In", "values": values})
    }

    fn required(terms: Value) -> Value {
        json!({"required": {"nodeSelectorTerms": terms}})
    }

    fn csi(handle: &str) -> Value {
        json!({"driver": DRIVER_NAME, "volumeHandle": handle, "volumeAttributes": {"partition": "0"}})
    }

    #[test]
    fn ebs_pv_to_csi() {
        let cases = [
            Case {
                name: "ebs_pv_zone_label_becomes_csi_affinity_access_modes_kept",
                input: json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "us-east-1a"}},
                    "spec": {"accessModes": ["ReadOnlyMany", "ReadWriteMany"],
                    "awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-1", "fsType": "ext4"}}}),
                want: Ok(
                    json!({"metadata": {"name": "p", "labels": {LABEL_ZONE: "us-east-1a"}},
                    "spec": {"accessModes": ["ReadOnlyMany", "ReadWriteMany"],
                    "csi": {"driver": DRIVER_NAME, "volumeHandle": "vol-1", "fsType": "ext4",
                        "volumeAttributes": {"partition": "0"}},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_KEY, &["us-east-1a"])]}]))}}),
                ),
            },
            Case {
                name: "ebs_pv_multi_zone_label_sorted_and_deduplicated",
                input: json!({"metadata": {"name": "p",
                        "labels": {LABEL_BETA_ZONE: "us-east-1b__us-east-1a__ us-east-1b"}},
                    "spec": {"awsElasticBlockStore": {"volumeID": "vol-1"}}}),
                want: Ok(json!({"metadata": {"name": "p",
                        "labels": {LABEL_BETA_ZONE: "us-east-1b__us-east-1a__ us-east-1b"}},
                    "spec": {"csi": csi("vol-1"),
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_KEY, &["us-east-1a", "us-east-1b"])]}]))}})),
            },
            Case {
                name: "ebs_pv_beta_affinity_upgrades_region_to_ga",
                input: json!({"metadata": {"name": "p"}, "spec": {
                    "awsElasticBlockStore": {"volumeID": "vol-1"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(LABEL_BETA_ZONE, &["us-east-1a"]), expr(LABEL_BETA_REGION, &["us-east-1"])]}]))}}),
                want: Ok(
                    json!({"metadata": {"name": "p"}, "spec": {"csi": csi("vol-1"),
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(TOPOLOGY_KEY, &["us-east-1a"]), expr(LABEL_REGION, &["us-east-1"])]}]))}}),
                ),
            },
            Case {
                name: "ebs_pv_with_volume_in_host_position_is_rejected",
                input: json!({"metadata": {"name": "p"},
                    "spec": {"awsElasticBlockStore": {"volumeID": "aws://vol-1"}}}),
                want: Err(TranslateError::InvalidEbsVolumeId {
                    id: "aws://vol-1".into(),
                    field: "spec.awsElasticBlockStore.volumeID",
                    reason: "expected aws://<zone>/vol-<id>",
                }),
            },
            Case {
                name: "ebs_pv_without_ebs_source_is_rejected",
                input: json!({"metadata": {"name": "p"}, "spec": {}}),
                want: Err(TranslateError::MissingSource {
                    field: "spec.awsElasticBlockStore",
                    object: "persistent volume \"p\"".into(),
                }),
            },
        ];
        for case in cases {
            check(case.name, AwsEbs.pv_to_csi(pv(case.input)), &case.want);
        }
    }

    fn csi_pv(attributes: Value, zones: &[&[&str]]) -> Value {
        let terms: Vec<Value> = zones
            .iter()
            .map(|z| json!({"matchExpressions": [expr(TOPOLOGY_KEY, z)]}))
            .collect();
        let mut spec = json!({"csi": {"driver": DRIVER_NAME, "volumeHandle": "vol-1",
            "volumeAttributes": attributes}});
        if !terms.is_empty() {
            spec["nodeAffinity"] = required(json!(terms));
        }
        json!({"metadata": {"name": "p"}, "spec": spec})
    }

    #[test]
    fn ebs_csi_pv_to_in_tree() {
        let cases = [
            Case {
                name: "ebs_rollback_without_topology_keeps_bare_id",
                input: json!({"metadata": {"name": "p"}, "spec": {"csi": {"driver": DRIVER_NAME,
                    "volumeHandle": "vol-1", "fsType": "ext4", "readOnly": true}}}),
                want: Ok(
                    json!({"metadata": {"name": "p"}, "spec": {"awsElasticBlockStore": {
                    "volumeID": "vol-1", "fsType": "ext4", "readOnly": true}}}),
                ),
            },
            Case {
                name: "ebs_rollback_parses_partition",
                input: csi_pv(json!({"partition": "3"}), &[]),
                want: Ok(
                    json!({"metadata": {"name": "p"}, "spec": {"awsElasticBlockStore": {
                    "volumeID": "vol-1", "partition": 3}}}),
                ),
            },
            Case {
                name: "ebs_rollback_rejects_empty_partition",
                input: csi_pv(json!({"partition": ""}), &[]),
                want: Err(TranslateError::InvalidPartition {
                    value: String::new(),
                }),
            },
            Case {
                name: "ebs_rollback_adds_region_from_availability_zone",
                input: csi_pv(json!({"partition": "0"}), &[&["us-west-2a"]]),
                want: Ok(json!({"metadata": {"name": "p",
                        "labels": {LABEL_ZONE: "us-west-2a", LABEL_REGION: "us-west-2"}},
                    "spec": {"awsElasticBlockStore": {"volumeID": "vol-1"},
                    "nodeAffinity": required(json!([{"matchExpressions": [
                        expr(LABEL_ZONE, &["us-west-2a"]), expr(LABEL_REGION, &["us-west-2"])]}]))}})),
            },
            Case {
                name: "ebs_rollback_terms_in_two_regions_get_no_region_label",
                input: csi_pv(json!({}), &[&["us-west-2a"], &["us-east-1-wl1-bos-wlz-1"]]),
                want: Ok(json!({"metadata": {"name": "p",
                        "labels": {LABEL_ZONE: "us-east-1-wl1-bos-wlz-1__us-west-2a"}},
                    "spec": {"awsElasticBlockStore": {"volumeID": "vol-1"},
                    "nodeAffinity": required(json!([
                        {"matchExpressions": [expr(LABEL_ZONE, &["us-west-2a"]),
                            expr(LABEL_REGION, &["us-west-2"])]},
                        {"matchExpressions": [expr(LABEL_ZONE, &["us-east-1-wl1-bos-wlz-1"]),
                            expr(LABEL_REGION, &["us-east-1"])]}]))}})),
            },
            Case {
                name: "ebs_rollback_unknown_zone_format_fails",
                input: csi_pv(json!({}), &[&["us-west-10a"]]),
                want: Err(TranslateError::region(
                    "spec.nodeAffinity.required.nodeSelectorTerms[0]",
                    RegionError::UnexpectedAwsZone("us-west-10a".into()),
                )),
            },
        ];
        for case in cases {
            check(
                case.name,
                AwsEbs.csi_pv_to_in_tree(pv(case.input)),
                &case.want,
            );
        }
    }

    #[test]
    fn ebs_region_from_zones() {
        let cases: [(&str, &[&str], Result<String, RegionError>); 9] = [
            (
                "ebs_region_availability_zone",
                &["us-west-2a"],
                Ok("us-west-2".into()),
            ),
            (
                "ebs_region_gov_zone",
                &["us-gov-east-1a"],
                Ok("us-gov-east-1".into()),
            ),
            (
                "ebs_region_local_zone",
                &["us-west-2-lax-1a"],
                Ok("us-west-2".into()),
            ),
            (
                "ebs_region_wavelength_zone",
                &["us-east-1-wl1-bos-wlz-1"],
                Ok("us-east-1".into()),
            ),
            (
                "ebs_region_zones_of_one_region",
                &["us-west-2a", "us-west-2-lax-1a"],
                Ok("us-west-2".into()),
            ),
            ("ebs_region_no_zones", &[], Err(RegionError::NoZones)),
            (
                "ebs_region_two_digit_zone_suffix",
                &["us-west-10a"],
                Err(RegionError::UnexpectedAwsZone("us-west-10a".into())),
            ),
            (
                "ebs_region_six_part_zone",
                &["a-b-c-d-e-f"],
                Err(RegionError::UnexpectedAwsZone("a-b-c-d-e-f".into())),
            ),
            (
                "ebs_region_mixed_regions",
                &["us-west-2a", "eu-west-1b"],
                Err(RegionError::MultipleRegions(vec![
                    "eu-west-1".into(),
                    "us-west-2".into(),
                ])),
            ),
        ];
        for (name, zones, want) in cases {
            let zones: Vec<String> = zones.iter().map(|z| (*z).to_owned()).collect();
            assert_eq!(region_from_zones(&zones), want, "case {name:?}");
        }
    }
}
