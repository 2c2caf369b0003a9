//! Builds the inventory of in-tree usage (classes, PVs, claims, inline volumes, claim templates) from the view.

use std::collections::BTreeMap;

use crate::report::{
    ClaimTemplateEntry, InlineVolumeEntry, Inventory, PersistentVolumeClaimEntry,
    PersistentVolumeEntry, PluginEntry, StorageClassEntry,
};
use crate::view::{self, ClusterView};

/// Annotation the PV controller adds to migrated PVs and PVCs.
pub const MIGRATED_TO_ANNOTATION: &str = "pv.kubernetes.io/migrated-to";

/// Everything in scope that still uses an in-tree plugin.
pub fn build(view: &ClusterView<'_>) -> Inventory {
    let mut plugins: BTreeMap<&str, PluginEntry> = view
        .plugins_in_use
        .values()
        .map(|p| {
            (
                p.name,
                PluginEntry {
                    plugin: p.name.to_owned(),
                    csi_driver: p.csi_driver.to_owned(),
                    storage_classes: 0,
                    persistent_volumes: 0,
                    persistent_volume_claims: 0,
                    inline_volumes: 0,
                },
            )
        })
        .collect();

    let mut class_pvs: BTreeMap<&str, usize> = BTreeMap::new();
    let mut class_claims: BTreeMap<&str, usize> = BTreeMap::new();
    let mut persistent_volumes = Vec::with_capacity(view.in_tree_volumes.len());
    for volume in &view.in_tree_volumes {
        let pv = volume.pv;
        let spec = pv.spec.as_ref();
        if let Some(entry) = plugins.get_mut(volume.plugin.name) {
            entry.persistent_volumes += 1;
        }
        let class = view::pv_class(pv);
        if let Some(class) = class {
            *class_pvs.entry(class).or_default() += 1;
        }
        persistent_volumes.push(PersistentVolumeEntry {
            name: volume.name().to_owned(),
            plugin: volume.plugin.name.to_owned(),
            csi_driver: volume.plugin.csi_driver.to_owned(),
            phase: pv.status.as_ref().and_then(|s| s.phase.clone()),
            reclaim_policy: spec
                .and_then(|s| s.persistent_volume_reclaim_policy.clone())
                .unwrap_or_else(|| "Retain".to_owned()),
            storage_class: class.map(str::to_owned),
            claim: spec.and_then(|s| s.claim_ref.as_ref()).map(|c| {
                format!(
                    "{}/{}",
                    c.namespace.as_deref().unwrap_or_default(),
                    c.name.as_deref().unwrap_or_default()
                )
            }),
            volume_mode: spec
                .and_then(|s| s.volume_mode.clone())
                .unwrap_or_else(|| "Filesystem".to_owned()),
            migrated_to: pv
                .metadata
                .annotations
                .as_ref()
                .and_then(|a| a.get(MIGRATED_TO_ANNOTATION))
                .cloned(),
            csi_volume_handle: volume.translation.as_ref().ok().cloned(),
        });
    }

    let mut claims = Vec::with_capacity(view.in_tree_claims.len());
    for (pvc, index) in &view.in_tree_claims {
        let Some(volume) = view.in_tree_volumes.get(*index) else {
            continue;
        };
        if let Some(entry) = plugins.get_mut(volume.plugin.name) {
            entry.persistent_volume_claims += 1;
        }
        let class = view::claim_class(pvc);
        if let Some(class) = class {
            *class_claims.entry(class).or_default() += 1;
        }
        claims.push(PersistentVolumeClaimEntry {
            namespace: pvc
                .metadata
                .namespace
                .clone()
                .unwrap_or_else(|| "default".to_owned()),
            name: pvc.metadata.name.clone().unwrap_or_default(),
            volume: volume.name().to_owned(),
            plugin: volume.plugin.name.to_owned(),
            storage_class: class.map(str::to_owned),
        });
    }
    claims.sort_by(|a, b| (&a.namespace, &a.name).cmp(&(&b.namespace, &b.name)));
    persistent_volumes.sort_by(|a, b| a.name.cmp(&b.name));

    let mut storage_classes = Vec::new();
    let mut in_tree_default_storage_classes = Vec::new();
    let mut classes: Vec<_> = view.storage_classes.values().collect();
    classes.sort_by_key(|sc| sc.metadata.name.as_deref().unwrap_or_default());
    for sc in classes {
        let Some(plugin) = crate::plugins::plugin_by_name(&sc.provisioner) else {
            continue;
        };
        let name = sc.metadata.name.as_deref().unwrap_or_default();
        if let Some(entry) = plugins.get_mut(plugin.name) {
            entry.storage_classes += 1;
        }
        let is_default = view::is_default_class(sc);
        if is_default {
            in_tree_default_storage_classes.push(name.to_owned());
        }
        storage_classes.push(StorageClassEntry {
            name: name.to_owned(),
            plugin: plugin.name.to_owned(),
            csi_driver: plugin.csi_driver.to_owned(),
            is_default,
            persistent_volumes: class_pvs.get(name).copied().unwrap_or_default(),
            persistent_volume_claims: class_claims.get(name).copied().unwrap_or_default(),
        });
    }

    let inline_volumes: Vec<InlineVolumeEntry> = view
        .inline_volumes
        .iter()
        .map(|v| {
            if let Some(entry) = plugins.get_mut(v.plugin.name) {
                entry.inline_volumes += 1;
            }
            InlineVolumeEntry {
                owner: v.owner.clone(),
                volume: v.volume.name.clone(),
                plugin: v.plugin.name.to_owned(),
            }
        })
        .collect();

    let claim_templates = view
        .workloads
        .iter()
        .flat_map(|w| {
            w.in_tree_claim_templates
                .iter()
                .map(|(template, class, plugin)| ClaimTemplateEntry {
                    stateful_set: w.object.clone(),
                    template: template.clone(),
                    storage_class: class.clone(),
                    plugin: plugin.name.to_owned(),
                })
        })
        .collect();

    Inventory {
        plugins: plugins.into_values().collect(),
        in_tree_default_storage_classes,
        storage_classes,
        persistent_volumes,
        persistent_volume_claims: claims,
        inline_volumes,
        claim_templates,
    }
}
