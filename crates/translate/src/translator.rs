//! The registry of plugins and the entry points that pick the right one for an object.

use k8s_openapi::api::core::v1::{PersistentVolume, Volume};
use k8s_openapi::api::storage::v1::StorageClass;

use crate::error::{Result, TranslateError};
use crate::plugin::{InTreePlugin, describe_pv, describe_volume};
use crate::plugins;

/// Every plugin, in the fixed order used to report objects with several sources.
static ALL_PLUGINS: [&dyn InTreePlugin; 8] = [
    &plugins::gce_pd::GcePd,
    &plugins::aws_ebs::AwsEbs,
    &plugins::cinder::Cinder,
    &plugins::azure_disk::AzureDisk,
    &plugins::azure_file::AzureFile,
    &plugins::vsphere::VsphereVolume,
    &plugins::portworx::Portworx,
    &plugins::rbd::Rbd,
];

/// Dispatches translations to the plugin an object belongs to, like upstream's
/// `CSITranslator`. Every method copies its input; the caller's object is never changed.
#[derive(Debug, Clone, Copy)]
pub struct Translator {
    plugins: &'static [&'static dyn InTreePlugin],
}

impl Default for Translator {
    fn default() -> Self {
        Self::new()
    }
}

impl Translator {
    /// A translator with every supported plugin, `kubernetes.io/rbd` included.
    pub fn new() -> Self {
        Self {
            plugins: &ALL_PLUGINS,
        }
    }

    /// The registered plugins.
    pub fn plugins(&self) -> impl Iterator<Item = &'static dyn InTreePlugin> + '_ {
        self.plugins.iter().copied()
    }

    /// The plugin with this in-tree name (`kubernetes.io/aws-ebs`).
    pub fn plugin_by_in_tree_name(&self, name: &str) -> Option<&'static dyn InTreePlugin> {
        self.plugins().find(|p| p.in_tree_plugin_name() == name)
    }

    /// The plugin for this CSI driver (`ebs.csi.aws.com`), matched exactly.
    pub fn plugin_by_csi_driver(&self, driver: &str) -> Option<&'static dyn InTreePlugin> {
        self.plugins().find(|p| p.csi_driver_name() == driver)
    }

    /// Whether `name` is an in-tree plugin this library can translate.
    pub fn is_migratable_in_tree_plugin(&self, name: &str) -> bool {
        self.plugin_by_in_tree_name(name).is_some()
    }

    /// Whether `driver` is the CSI driver of a translatable in-tree plugin.
    pub fn is_migrated_csi_driver(&self, driver: &str) -> bool {
        self.plugin_by_csi_driver(driver).is_some()
    }

    /// The CSI driver that replaces an in-tree plugin.
    pub fn csi_driver_for_in_tree(&self, name: &str) -> Result<&'static str> {
        self.plugin_by_in_tree_name(name)
            .map(|p| p.csi_driver_name())
            .ok_or_else(|| TranslateError::NoCsiDriverForPlugin(name.to_owned()))
    }

    /// The in-tree plugin a CSI driver replaces.
    pub fn in_tree_for_csi_driver(&self, driver: &str) -> Result<&'static str> {
        self.plugin_by_csi_driver(driver)
            .map(|p| p.in_tree_plugin_name())
            .ok_or_else(|| TranslateError::UnknownCsiDriver(driver.to_owned()))
    }

    /// The one plugin whose in-tree source the PV sets; an error if it sets several.
    pub fn plugin_for_pv(
        &self,
        pv: &PersistentVolume,
    ) -> Result<Option<&'static dyn InTreePlugin>> {
        let mut found = self.plugins().filter(|p| p.can_support(pv));
        let first = found.next();
        if let (Some(first), Some(second)) = (first, found.next()) {
            return Err(TranslateError::MultipleSources {
                object: describe_pv(pv),
                first: first.source_field(),
                second: second.source_field(),
            });
        }
        if let Some(first) = first
            && pv.spec.as_ref().is_some_and(|s| s.csi.is_some())
        {
            return Err(TranslateError::MultipleSources {
                object: describe_pv(pv),
                first: first.source_field(),
                second: "csi",
            });
        }
        Ok(first)
    }

    /// The one plugin whose in-tree source the pod volume sets; an error if it sets several.
    pub fn plugin_for_inline(&self, volume: &Volume) -> Result<Option<&'static dyn InTreePlugin>> {
        let mut found = self.plugins().filter(|p| p.can_support_inline(volume));
        match (found.next(), found.next()) {
            (Some(first), Some(second)) => Err(TranslateError::MultipleSources {
                object: describe_volume(volume),
                first: first.source_field(),
                second: second.source_field(),
            }),
            (first, _) => Ok(first),
        }
    }

    /// The in-tree plugin name of the PV's source, if it has exactly one in-tree source.
    pub fn in_tree_plugin_for_pv(&self, pv: &PersistentVolume) -> Option<&'static str> {
        self.plugin_for_pv(pv)
            .ok()
            .flatten()
            .map(|p| p.in_tree_plugin_name())
    }

    /// The in-tree plugin name of the pod volume's source, if it has exactly one in-tree source.
    pub fn in_tree_plugin_for_inline(&self, volume: &Volume) -> Option<&'static str> {
        self.plugin_for_inline(volume)
            .ok()
            .flatten()
            .map(|p| p.in_tree_plugin_name())
    }

    /// Whether the PV can be translated to CSI.
    pub fn is_pv_migratable(&self, pv: &PersistentVolume) -> bool {
        self.in_tree_plugin_for_pv(pv).is_some()
    }

    /// Whether the pod volume can be translated to CSI.
    pub fn is_inline_migratable(&self, volume: &Volume) -> bool {
        self.in_tree_plugin_for_inline(volume).is_some()
    }

    /// Translates a StorageClass with the plugin named `in_tree_name` (not the class's
    /// own provisioner field, as upstream).
    pub fn storage_class_to_csi(
        &self,
        in_tree_name: &str,
        sc: &StorageClass,
    ) -> Result<StorageClass> {
        let plugin = self
            .plugin_by_in_tree_name(in_tree_name)
            .ok_or_else(|| TranslateError::UnknownStorageClassPlugin(in_tree_name.to_owned()))?;
        plugin.storage_class_to_csi(sc.clone())
    }

    /// Translates a PersistentVolume with an in-tree source to one with `spec.csi`.
    pub fn pv_to_csi(&self, pv: &PersistentVolume) -> Result<PersistentVolume> {
        let plugin = self
            .plugin_for_pv(pv)?
            .ok_or_else(|| no_plugin(pv.metadata.name.as_deref()))?;
        plugin.pv_to_csi(pv.clone())
    }

    /// Translates a pod's inline in-tree volume to a CSI PersistentVolume. The
    /// result always has `volumeMode: Filesystem` (inline volumes cannot be raw block).
    pub fn inline_to_csi(&self, volume: &Volume, pod_namespace: &str) -> Result<PersistentVolume> {
        let plugin = self
            .plugin_for_inline(volume)?
            .ok_or_else(|| no_plugin(Some(volume.name.as_str())))?;
        let mut pv = plugin.inline_to_csi(volume, pod_namespace)?;
        let spec = crate::plugin::spec_mut(&mut pv);
        spec.volume_mode
            .get_or_insert_with(|| "Filesystem".to_owned());
        Ok(pv)
    }

    /// Translates a CSI PersistentVolume back to its in-tree source (rollback),
    /// choosing the plugin by exact `spec.csi.driver`.
    pub fn pv_to_in_tree(&self, pv: &PersistentVolume) -> Result<PersistentVolume> {
        let csi = pv
            .spec
            .as_ref()
            .and_then(|s| s.csi.as_ref())
            .ok_or_else(|| {
                TranslateError::MissingCsiSource(pv.metadata.name.clone().unwrap_or_default())
            })?;
        let plugin = self
            .plugin_by_csi_driver(&csi.driver)
            .ok_or_else(|| TranslateError::UnknownCsiDriver(csi.driver.clone()))?;
        plugin.csi_pv_to_in_tree(pv.clone())
    }

    /// Completes a volume handle with what only the node knows (GCE PD); identity elsewhere.
    pub fn repair_volume_handle(
        &self,
        driver: &str,
        volume_handle: &str,
        node_id: &str,
    ) -> Result<String> {
        let plugin = self
            .plugin_by_csi_driver(driver)
            .ok_or_else(|| TranslateError::UnknownCsiDriver(driver.to_owned()))?;
        plugin.repair_volume_handle(volume_handle, node_id)
    }
}

fn no_plugin(name: Option<&str>) -> TranslateError {
    TranslateError::NoPluginForObject(name.unwrap_or_default().to_owned())
}
