//! What the scan knows about each in-tree plugin: its CSI driver and the Kubernetes versions that removed it.

use csi_migrate_translate::plugins::{
    aws_ebs, azure_disk, azure_file, cinder, gce_pd, portworx, rbd, vsphere,
};

/// The in-tree name of CephFS, which never had a CSI translation.
pub const CEPHFS_PLUGIN_NAME: &str = "kubernetes.io/cephfs";
/// The CSI driver that replaces in-tree CephFS.
pub const CEPHFS_DRIVER_NAME: &str = "cephfs.csi.ceph.com";

/// One in-tree plugin as far as the scan is concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PluginInfo {
    /// In-tree name, e.g. `kubernetes.io/aws-ebs`.
    pub name: &'static str,
    /// The replacing CSI driver, e.g. `ebs.csi.aws.com`.
    pub csi_driver: &'static str,
    /// A short human name for messages.
    pub display_name: &'static str,
    /// The Kubernetes minor (1.x) whose release removed the in-tree plugin code.
    pub in_tree_removed_in: u32,
    /// The minor that removed the in-tree → CSI translation as well (volumes stop working), if any.
    pub translation_removed_in: Option<u32>,
    /// Whether csi-migrate can translate it (every plugin but CephFS).
    pub translatable: bool,
    /// Whether the kubelet migrates it (lists it in `migrated-plugins`): not RBD (whose
    /// migration never left alpha) and not CephFS.
    pub kubelet_migrates: bool,
}

/// Every in-tree plugin the scan reports, by in-tree name.
pub static PLUGINS: [PluginInfo; 9] = [
    PluginInfo {
        name: aws_ebs::PLUGIN_NAME,
        csi_driver: aws_ebs::DRIVER_NAME,
        display_name: "AWS EBS",
        in_tree_removed_in: 27,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
    PluginInfo {
        name: azure_disk::PLUGIN_NAME,
        csi_driver: azure_disk::DRIVER_NAME,
        display_name: "Azure Disk",
        in_tree_removed_in: 27,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
    PluginInfo {
        name: azure_file::PLUGIN_NAME,
        csi_driver: azure_file::DRIVER_NAME,
        display_name: "Azure File",
        in_tree_removed_in: 30,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
    PluginInfo {
        name: CEPHFS_PLUGIN_NAME,
        csi_driver: CEPHFS_DRIVER_NAME,
        display_name: "CephFS",
        in_tree_removed_in: 31,
        translation_removed_in: Some(31),
        translatable: false,
        kubelet_migrates: false,
    },
    PluginInfo {
        name: cinder::PLUGIN_NAME,
        csi_driver: cinder::DRIVER_NAME,
        display_name: "OpenStack Cinder",
        in_tree_removed_in: 26,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
    PluginInfo {
        name: gce_pd::PLUGIN_NAME,
        csi_driver: gce_pd::DRIVER_NAME,
        display_name: "GCE PD",
        in_tree_removed_in: 28,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
    PluginInfo {
        name: portworx::PLUGIN_NAME,
        csi_driver: portworx::DRIVER_NAME,
        display_name: "Portworx",
        in_tree_removed_in: 36,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
    PluginInfo {
        name: rbd::PLUGIN_NAME,
        csi_driver: rbd::DRIVER_NAME,
        display_name: "Ceph RBD",
        in_tree_removed_in: 31,
        translation_removed_in: Some(31),
        translatable: true,
        kubelet_migrates: false,
    },
    PluginInfo {
        name: vsphere::PLUGIN_NAME,
        csi_driver: vsphere::DRIVER_NAME,
        display_name: "vSphere",
        in_tree_removed_in: 30,
        translation_removed_in: None,
        translatable: true,
        kubelet_migrates: true,
    },
];

/// The plugin with this in-tree name (a StorageClass provisioner), if it is one.
pub fn plugin_by_name(name: &str) -> Option<&'static PluginInfo> {
    PLUGINS.iter().find(|p| p.name == name)
}

/// The plugin replaced by this CSI driver, if any.
pub fn plugin_by_csi_driver(driver: &str) -> Option<&'static PluginInfo> {
    PLUGINS.iter().find(|p| p.csi_driver == driver)
}

#[cfg(test)]
mod tests {
    use super::*;
    use csi_migrate_translate::Translator;

    #[test]
    fn every_translatable_plugin_is_known_to_the_translator_with_the_same_driver() {
        let translator = Translator::new();
        for plugin in PLUGINS.iter().filter(|p| p.translatable) {
            assert_eq!(
                translator.csi_driver_for_in_tree(plugin.name).ok(),
                Some(plugin.csi_driver),
                "{}",
                plugin.name
            );
        }
        for plugin in translator.plugins() {
            assert!(plugin_by_name(plugin.in_tree_plugin_name()).is_some());
        }
    }
}
