//! StorageClass parameter rewriting shared by the plugins, with deterministic conflict rules.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::TopologySelectorTerm;
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::{Result, TranslateError};
use crate::plugin::omit_empty_map;
use crate::topology::{topology_selector, translate_allowed_topologies};

/// In-tree fsType parameter (matched case-insensitively).
pub const FSTYPE: &str = "fstype";
/// CSI fsType parameter, consumed by external-provisioner.
pub const CSI_FSTYPE: &str = "csi.storage.k8s.io/fstype";
/// Single-zone parameter of the zonal in-tree provisioners.
pub const ZONE: &str = "zone";
/// Comma-separated multi-zone parameter of the zonal in-tree provisioners.
pub const ZONES: &str = "zones";

/// Lower-cases like Go's `strings.ToLower`: rune by rune with the simple Unicode mapping,
/// so `İ` (U+0130) becomes `i` (Rust's full mapping would give `i` + U+0307) and a
/// final `Σ` becomes `σ`.
pub(crate) fn go_lowercase(s: &str) -> String {
    s.chars()
        .map(|c| {
            let mut lower = c.to_lowercase();
            match (c, lower.next(), lower.next()) {
                ('\u{130}', _, _) => 'i',
                (_, Some(one), None) => one,
                _ => c,
            }
        })
        .collect()
}

/// Translated parameters that remember which source key produced each entry, so two
/// source keys landing on one target with different values are reported, not raced.
#[derive(Debug, Default)]
pub(crate) struct TranslatedParameters {
    values: BTreeMap<String, String>,
    origins: BTreeMap<String, String>,
}

impl TranslatedParameters {
    /// Sets `target` from `source_key`; the same value twice is fine, a different one is a conflict.
    pub(crate) fn insert(&mut self, source_key: &str, target: &str, value: &str) -> Result<()> {
        if let Some(existing) = self.values.get(target) {
            if existing == value {
                return Ok(());
            }
            let first = self.origins.get(target).cloned().unwrap_or_default();
            return Err(TranslateError::ConflictingParameters {
                first,
                second: source_key.to_owned(),
                target: target.to_owned(),
            });
        }
        self.values.insert(target.to_owned(), value.to_owned());
        self.origins
            .insert(target.to_owned(), source_key.to_owned());
        Ok(())
    }

    pub(crate) fn into_map(self) -> BTreeMap<String, String> {
        self.values
    }
}

/// `zone` / `zones` parameters found in a StorageClass, keyed as the user spelled them.
#[derive(Debug, Default)]
pub(crate) struct ZoneParameters {
    zone: Option<(String, String)>,
    zones: Option<(String, String)>,
}

impl ZoneParameters {
    /// Records `key` if it is `zone` or `zones` in any case; returns whether it was one.
    pub(crate) fn record(&mut self, key: &str, lower: &str, value: &str) -> Result<bool> {
        let slot = match lower {
            ZONE => &mut self.zone,
            ZONES => &mut self.zones,
            _ => return Ok(false),
        };
        match slot {
            Some((first, existing)) if existing != value => {
                Err(TranslateError::ConflictingParameters {
                    first: first.clone(),
                    second: key.to_owned(),
                    target: lower.to_owned(),
                })
            }
            Some(_) => Ok(true),
            None => {
                *slot = Some((key.to_owned(), value.to_owned()));
                Ok(true)
            }
        }
    }

    /// The allowedTopologies the parameters ask for, if any.
    fn selectors(self, topology_key: &str) -> Result<Option<Vec<TopologySelectorTerm>>> {
        match (self.zone, self.zones) {
            (Some((zone, _)), Some((zones, _))) => {
                Err(TranslateError::ZoneAndZones { zone, zones })
            }
            (Some((_, v)), None) => Ok(Some(topology_selector(topology_key, vec![v]))),
            (None, Some((_, v))) => Ok(Some(topology_selector(
                topology_key,
                v.split(',').map(str::to_owned).collect(),
            ))),
            (None, None) => Ok(None),
        }
    }
}

/// How a zonal plugin (GCE PD, AWS EBS, Azure Disk) rewrites one ordinary parameter.
pub(crate) type ParameterRule = fn(&mut TranslatedParameters, &str, &str, &str) -> Result<()>;

/// Translates a zonal StorageClass: `zone`/`zones` become allowedTopologies on
/// `topology_key` (an error together with existing allowedTopologies), existing
/// zone keys in allowedTopologies are renamed, and every other parameter goes
/// through `rule(params, key, lowercased key, value)`. Parameters always come out
/// as a map (left out when empty, as Go's `omitempty` does); the provisioner is left alone.
pub(crate) fn translate_zonal_storage_class(
    mut sc: StorageClass,
    topology_key: &str,
    rule: ParameterRule,
) -> Result<StorageClass> {
    let mut params = TranslatedParameters::default();
    let mut zones = ZoneParameters::default();
    for (key, value) in sc.parameters.iter().flatten() {
        let lower = go_lowercase(key);
        if !zones.record(key, &lower, value)? {
            rule(&mut params, key, &lower, value)?;
        }
    }
    let existing = sc.allowed_topologies.take();
    let has_existing = existing.as_ref().is_some_and(|t| !t.is_empty());
    sc.allowed_topologies = match zones.selectors(topology_key)? {
        Some(_) if has_existing => return Err(TranslateError::ZonesWithAllowedTopologies),
        Some(generated) => Some(generated),
        None if has_existing => existing.map(|t| translate_allowed_topologies(t, topology_key)),
        None => existing,
    };
    // Go writes an empty map here, which `omitempty` then leaves out.
    sc.parameters = omit_empty_map(params.into_map());
    Ok(sc)
}

/// Runs every StorageClass parameter through `rule(params, key, lowercased key, value)`.
pub(crate) fn translate_parameters(
    sc: &StorageClass,
    rule: ParameterRule,
) -> Result<TranslatedParameters> {
    let mut params = TranslatedParameters::default();
    for (key, value) in sc.parameters.iter().flatten() {
        rule(&mut params, key, &go_lowercase(key), value)?;
    }
    Ok(params)
}

/// Renames zone keys in non-empty allowedTopologies to `csi_key`.
pub(crate) fn translate_existing_topologies(sc: &mut StorageClass, csi_key: &str) {
    if sc
        .allowed_topologies
        .as_ref()
        .is_some_and(|t| !t.is_empty())
    {
        sc.allowed_topologies = sc
            .allowed_topologies
            .take()
            .map(|t| translate_allowed_topologies(t, csi_key));
    }
}
