//! Zone and region topology shared by the plugins: PV node affinity, PV labels, StorageClass allowedTopologies.

use std::collections::BTreeSet;

use k8s_openapi::api::core::v1::{
    NodeSelector, NodeSelectorRequirement, NodeSelectorTerm, PersistentVolume,
    TopologySelectorLabelRequirement, TopologySelectorTerm, VolumeNodeAffinity,
};

use crate::error::{RegionError, TranslateError};

/// GA zone label.
pub const LABEL_ZONE: &str = "topology.kubernetes.io/zone";
/// GA region label.
pub const LABEL_REGION: &str = "topology.kubernetes.io/region";
/// Deprecated beta zone label.
pub const LABEL_BETA_ZONE: &str = "failure-domain.beta.kubernetes.io/zone";
/// Deprecated beta region label.
pub const LABEL_BETA_REGION: &str = "failure-domain.beta.kubernetes.io/region";
/// Joins several zones in one label value (`us-central1-a__us-central1-b`).
pub const MULTI_ZONE_DELIMITER: &str = "__";

/// Turns a list of zones into the single region they belong to.
pub(crate) type RegionParser = fn(&[String]) -> Result<String, RegionError>;

fn terms(pv: &PersistentVolume) -> &[NodeSelectorTerm] {
    pv.spec
        .as_ref()
        .and_then(|s| s.node_affinity.as_ref())
        .and_then(|a| a.required.as_ref())
        .map_or(&[], |r| r.node_selector_terms.as_slice())
}

fn terms_mut(pv: &mut PersistentVolume) -> &mut [NodeSelectorTerm] {
    pv.spec
        .as_mut()
        .and_then(|s| s.node_affinity.as_mut())
        .and_then(|a| a.required.as_mut())
        .map_or(&mut [], |r| r.node_selector_terms.as_mut_slice())
}

fn expressions(term: &NodeSelectorTerm) -> &[NodeSelectorRequirement] {
    term.match_expressions.as_deref().unwrap_or_default()
}

/// Whether any node affinity expression uses `key`.
pub(crate) fn affinity_has_key(pv: &PersistentVolume, key: &str) -> bool {
    terms(pv)
        .iter()
        .any(|t| expressions(t).iter().any(|e| e.key == key))
}

/// The label family `(zone, region)` a PV uses: affinity first, then labels, GA by default.
pub(crate) fn label_family(pv: &PersistentVolume) -> (&'static str, &'static str) {
    let has_label = |key: &str| {
        pv.metadata
            .labels
            .as_ref()
            .is_some_and(|l| l.contains_key(key))
    };
    if affinity_has_key(pv, LABEL_ZONE) {
        (LABEL_ZONE, LABEL_REGION)
    } else if affinity_has_key(pv, LABEL_BETA_ZONE) {
        (LABEL_BETA_ZONE, LABEL_BETA_REGION)
    } else if has_label(LABEL_ZONE) {
        (LABEL_ZONE, LABEL_REGION)
    } else if has_label(LABEL_BETA_ZONE) {
        (LABEL_BETA_ZONE, LABEL_BETA_REGION)
    } else {
        (LABEL_ZONE, LABEL_REGION)
    }
}

/// All affinity values of expressions keyed `key`, de-duplicated and sorted.
pub(crate) fn affinity_values(pv: &PersistentVolume, key: &str) -> Vec<String> {
    let set: BTreeSet<&String> = terms(pv)
        .iter()
        .flat_map(expressions)
        .filter(|e| e.key == key)
        .flat_map(|e| e.values.iter().flatten())
        .collect();
    set.into_iter().cloned().collect()
}

/// Renames every affinity expression keyed `old` to `new`, leaving values and order alone.
pub(crate) fn rename_affinity_key(pv: &mut PersistentVolume, old: &str, new: &str) {
    for term in terms_mut(pv) {
        for expr in term.match_expressions.iter_mut().flatten() {
            if expr.key == old {
                expr.key = new.to_owned();
            }
        }
    }
}

/// Appends `key In zones` to every node selector term, creating one term if there is none.
///
/// Zones are trimmed, de-duplicated and sorted; returns false (and changes nothing)
/// when no non-blank zone remains.
pub(crate) fn add_affinity(pv: &mut PersistentVolume, key: &str, zones: &[&str]) -> bool {
    let zones: BTreeSet<&str> = zones
        .iter()
        .map(|z| z.trim())
        .filter(|z| !z.is_empty())
        .collect();
    if zones.is_empty() {
        return false;
    }
    let requirement = NodeSelectorRequirement {
        key: key.to_owned(),
        operator: "In".to_owned(),
        values: Some(zones.into_iter().map(str::to_owned).collect()),
    };
    let spec = pv.spec.get_or_insert_with(Default::default);
    let affinity = spec
        .node_affinity
        .get_or_insert_with(VolumeNodeAffinity::default);
    let required = affinity.required.get_or_insert_with(NodeSelector::default);
    if required.node_selector_terms.is_empty() {
        required
            .node_selector_terms
            .push(NodeSelectorTerm::default());
    }
    for term in &mut required.node_selector_terms {
        term.match_expressions
            .get_or_insert_with(Vec::new)
            .push(requirement.clone());
    }
    true
}

fn label<'a>(pv: &'a PersistentVolume, key: &str) -> Option<&'a String> {
    pv.metadata.labels.as_ref().and_then(|l| l.get(key))
}

fn set_label_if_absent(pv: &mut PersistentVolume, key: &str, value: String) {
    pv.metadata
        .labels
        .get_or_insert_with(Default::default)
        .entry(key.to_owned())
        .or_insert(value);
}

/// In-tree → CSI topology for GCE PD, AWS EBS and Cinder: zone affinity (or the zone
/// label, split on `__`) moves to `csi_key`; a beta region key becomes the GA one.
pub(crate) fn in_tree_to_csi(pv: &mut PersistentVolume, csi_key: &str) {
    let (zone_label, region_label) = label_family(pv);
    if !affinity_values(pv, zone_label).is_empty() {
        rename_affinity_key(pv, zone_label, csi_key);
    } else if let Some(value) = label(pv, zone_label).cloned() {
        // Upstream ignores the "no valid zones" outcome here: blank labels add nothing.
        let parts: Vec<&str> = value.split(MULTI_ZONE_DELIMITER).collect();
        add_affinity(pv, csi_key, &parts);
    }
    if region_label == LABEL_BETA_REGION && !affinity_values(pv, region_label).is_empty() {
        rename_affinity_key(pv, region_label, LABEL_REGION);
    }
}

/// CSI → in-tree topology for GCE PD, AWS EBS and Cinder: the CSI key becomes the zone
/// label key, a region is derived per term when a parser is given, and missing
/// zone/region labels are filled in. Existing labels are never overwritten.
pub(crate) fn csi_to_in_tree(
    pv: &mut PersistentVolume,
    csi_key: &str,
    region_parser: Option<RegionParser>,
) -> Result<(), TranslateError> {
    let (zone_label, _) = label_family(pv);
    rename_affinity_key(pv, csi_key, zone_label);
    if let Some(parser) = region_parser {
        add_region_affinity(pv, parser)?;
    }
    let zones = affinity_values(pv, zone_label);
    if !zones.is_empty() {
        set_label_if_absent(pv, zone_label, zones.join(MULTI_ZONE_DELIMITER));
    }
    Ok(())
}

/// Adds a region expression to every term that lacks one, derived from that term's zones.
fn add_region_affinity(
    pv: &mut PersistentVolume,
    parser: RegionParser,
) -> Result<(), TranslateError> {
    let (zone_label, region_label) = label_family(pv);
    for (index, term) in terms_mut(pv).iter_mut().enumerate() {
        let mut zones = Vec::new();
        let mut has_region = false;
        for expr in expressions(term) {
            if expr.key == region_label {
                has_region = true;
                break;
            }
            if expr.key == zone_label {
                zones.extend(expr.values.iter().flatten().cloned());
            }
        }
        if has_region {
            continue;
        }
        let region = parser(&zones).map_err(|error| TranslateError::Region {
            field: format!("spec.nodeAffinity.required.nodeSelectorTerms[{index}]"),
            error,
        })?;
        term.match_expressions
            .get_or_insert_with(Vec::new)
            .push(NodeSelectorRequirement {
                key: region_label.to_owned(),
                operator: "In".to_owned(),
                values: Some(vec![region]),
            });
    }
    let regions = affinity_values(pv, region_label);
    if let [region] = regions.as_slice() {
        set_label_if_absent(pv, region_label, region.clone());
    }
    Ok(())
}

/// In-tree → CSI topology for vSphere: zone and region each move to their CSI key,
/// from affinity or else from the (unsplit) label of the same family.
pub(crate) fn vsphere_in_tree_to_csi(pv: &mut PersistentVolume, csi_zone: &str, csi_region: &str) {
    let (zone_label, region_label) = label_family(pv);
    for (label_key, csi_key) in [(zone_label, csi_zone), (region_label, csi_region)] {
        if !affinity_values(pv, label_key).is_empty() {
            rename_affinity_key(pv, label_key, csi_key);
        } else if let Some(value) = label(pv, label_key).filter(|v| !v.is_empty()).cloned() {
            add_affinity(pv, csi_key, &[value.as_str()]);
        }
    }
}

/// CSI → in-tree topology for vSphere: CSI keys back to label keys, and missing
/// zone/region labels set to the first sorted value.
pub(crate) fn vsphere_csi_to_in_tree(pv: &mut PersistentVolume, csi_zone: &str, csi_region: &str) {
    let (zone_label, region_label) = label_family(pv);
    rename_affinity_key(pv, csi_zone, zone_label);
    rename_affinity_key(pv, csi_region, region_label);
    for key in [zone_label, region_label] {
        if let Some(first) = affinity_values(pv, key).into_iter().next() {
            set_label_if_absent(pv, key, first);
        }
    }
}

/// Rewrites beta or GA zone keys in StorageClass allowedTopologies to `csi_key`;
/// every other expression, term order and expression order are kept.
pub(crate) fn translate_allowed_topologies(
    terms: Vec<TopologySelectorTerm>,
    csi_key: &str,
) -> Vec<TopologySelectorTerm> {
    terms
        .into_iter()
        .map(|term| TopologySelectorTerm {
            // An empty list is left out, as Go's `omitempty` does.
            match_label_expressions: term.match_label_expressions.filter(|e| !e.is_empty()).map(
                |exprs| {
                    exprs
                        .into_iter()
                        .map(|e| {
                            if e.key == LABEL_ZONE || e.key == LABEL_BETA_ZONE {
                                TopologySelectorLabelRequirement {
                                    key: csi_key.to_owned(),
                                    values: e.values,
                                }
                            } else {
                                e
                            }
                        })
                        .collect()
                },
            ),
        })
        .collect()
}

/// One allowedTopologies term with one expression `key ∈ values`.
pub(crate) fn topology_selector(key: &str, values: Vec<String>) -> Vec<TopologySelectorTerm> {
    vec![TopologySelectorTerm {
        match_label_expressions: Some(vec![TopologySelectorLabelRequirement {
            key: key.to_owned(),
            values,
        }]),
    }]
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::PersistentVolumeSpec;

    fn pv_with_affinity(terms: Vec<Vec<(&str, Vec<&str>)>>) -> PersistentVolume {
        PersistentVolume {
            spec: Some(PersistentVolumeSpec {
                node_affinity: Some(VolumeNodeAffinity {
                    required: Some(NodeSelector {
                        node_selector_terms: terms
                            .into_iter()
                            .map(|t| NodeSelectorTerm {
                                match_expressions: Some(
                                    t.into_iter()
                                        .map(|(k, v)| NodeSelectorRequirement {
                                            key: k.into(),
                                            operator: "In".into(),
                                            values: Some(v.into_iter().map(Into::into).collect()),
                                        })
                                        .collect(),
                                ),
                                match_fields: None,
                            })
                            .collect(),
                    }),
                }),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn affinity_values_are_sorted_and_unique_across_terms() {
        let pv = pv_with_affinity(vec![
            vec![(LABEL_ZONE, vec!["b", "a"])],
            vec![(LABEL_ZONE, vec!["a", "c"]), ("other", vec!["x"])],
        ]);
        assert_eq!(affinity_values(&pv, LABEL_ZONE), vec!["a", "b", "c"]);
    }

    #[test]
    fn add_affinity_appends_to_every_term_and_drops_blank_zones() {
        let mut pv = pv_with_affinity(vec![vec![("h", vec!["n1"])], vec![("h", vec!["n2"])]]);
        assert!(add_affinity(&mut pv, "k", &[" z2 ", "", "z1", "z2"]));
        for term in terms(&pv) {
            let last = expressions(term).last().cloned().unwrap_or_default();
            assert_eq!(last.key, "k");
            assert_eq!(last.values, Some(vec!["z1".to_string(), "z2".to_string()]));
        }
        let mut empty = PersistentVolume::default();
        assert!(!add_affinity(&mut empty, "k", &["  ", ""]));
        assert_eq!(empty, PersistentVolume::default());
    }

    #[test]
    fn label_family_prefers_affinity_then_labels_then_ga() {
        let cases = [
            (
                pv_with_affinity(vec![vec![(LABEL_BETA_ZONE, vec!["a"])]]),
                LABEL_BETA_ZONE,
            ),
            (
                pv_with_affinity(vec![vec![
                    (LABEL_ZONE, vec!["a"]),
                    (LABEL_BETA_ZONE, vec!["a"]),
                ]]),
                LABEL_ZONE,
            ),
            (PersistentVolume::default(), LABEL_ZONE),
        ];
        for (pv, want) in cases {
            assert_eq!(label_family(&pv).0, want);
        }
        let mut labelled = PersistentVolume::default();
        labelled.metadata.labels = Some([(LABEL_BETA_ZONE.to_string(), String::new())].into());
        assert_eq!(
            label_family(&labelled),
            (LABEL_BETA_ZONE, LABEL_BETA_REGION)
        );
    }

    #[test]
    fn region_affinity_fails_for_a_term_without_zones() {
        let mut pv = pv_with_affinity(vec![vec![("kubernetes.io/hostname", vec!["n1"])]]);
        let parser: RegionParser = |z| {
            if z.is_empty() {
                Err(RegionError::NoZones)
            } else {
                Ok("r".into())
            }
        };
        assert_eq!(
            csi_to_in_tree(&mut pv, "csi", Some(parser)),
            Err(TranslateError::region(
                "spec.nodeAffinity.required.nodeSelectorTerms[0]",
                RegionError::NoZones
            ))
        );
    }
}
