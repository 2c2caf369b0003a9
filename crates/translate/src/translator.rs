//! The registry of plugins and the entry points that pick the right one for an object.

use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeSpec, Volume};
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
            .ok_or_else(|| TranslateError::NoInTreePluginForDriver(driver.to_owned()))
    }

    /// The one plugin whose in-tree source the PV sets; an error if the PV sets any
    /// other volume source beside it (another plugin's, `csi`, `nfs`…), which the API
    /// server would reject and which would leave two sources in the translation.
    pub fn plugin_for_pv(
        &self,
        pv: &PersistentVolume,
    ) -> Result<Option<&'static dyn InTreePlugin>> {
        let Some(plugin) = self.plugins().find(|p| p.can_support(pv)) else {
            return Ok(None);
        };
        let spec = pv.spec.as_ref();
        match spec.and_then(|s| other_source(pv_sources(s), plugin.source_field())) {
            Some(second) => Err(TranslateError::MultipleSources {
                object: describe_pv(pv),
                first: plugin.source_field(),
                second,
            }),
            None => Ok(Some(plugin)),
        }
    }

    /// The one plugin whose in-tree source the pod volume sets; an error if the volume
    /// sets any other source beside it.
    pub fn plugin_for_inline(&self, volume: &Volume) -> Result<Option<&'static dyn InTreePlugin>> {
        let Some(plugin) = self.plugins().find(|p| p.can_support_inline(volume)) else {
            return Ok(None);
        };
        match other_source(volume_sources(volume), plugin.source_field()) {
            Some(second) => Err(TranslateError::MultipleSources {
                object: describe_volume(volume),
                first: plugin.source_field(),
                second,
            }),
            None => Ok(Some(plugin)),
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
        // A second source would be overwritten (the plugin's own) or kept beside the
        // in-tree one (any other): refuse rather than guess which one the user meant.
        if let Some(second) = pv
            .spec
            .as_ref()
            .and_then(|s| other_source(pv_sources(s), "csi"))
        {
            return Err(TranslateError::MultipleSources {
                object: describe_pv(pv),
                first: "csi",
                second,
            });
        }
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
            .ok_or_else(|| TranslateError::NoInTreePluginForDriver(driver.to_owned()))?;
        plugin.repair_volume_handle(volume_handle, node_id)
    }
}

/// The first set source field other than `own`.
fn other_source<const N: usize>(
    sources: [(&'static str, bool); N],
    own: &str,
) -> Option<&'static str> {
    sources
        .into_iter()
        .find(|(field, set)| *set && *field != own)
        .map(|(field, _)| field)
}

/// Every volume source field of a PersistentVolume, and whether it is set.
fn pv_sources(s: &PersistentVolumeSpec) -> [(&'static str, bool); 22] {
    [
        ("awsElasticBlockStore", s.aws_elastic_block_store.is_some()),
        ("azureDisk", s.azure_disk.is_some()),
        ("azureFile", s.azure_file.is_some()),
        ("cephfs", s.cephfs.is_some()),
        ("cinder", s.cinder.is_some()),
        ("csi", s.csi.is_some()),
        ("fc", s.fc.is_some()),
        ("flexVolume", s.flex_volume.is_some()),
        ("flocker", s.flocker.is_some()),
        ("gcePersistentDisk", s.gce_persistent_disk.is_some()),
        ("glusterfs", s.glusterfs.is_some()),
        ("hostPath", s.host_path.is_some()),
        ("iscsi", s.iscsi.is_some()),
        ("local", s.local.is_some()),
        ("nfs", s.nfs.is_some()),
        ("photonPersistentDisk", s.photon_persistent_disk.is_some()),
        ("portworxVolume", s.portworx_volume.is_some()),
        ("quobyte", s.quobyte.is_some()),
        ("rbd", s.rbd.is_some()),
        ("scaleIO", s.scale_io.is_some()),
        ("storageos", s.storageos.is_some()),
        ("vsphereVolume", s.vsphere_volume.is_some()),
    ]
}

/// Every volume source field of a pod volume, and whether it is set.
fn volume_sources(v: &Volume) -> [(&'static str, bool); 30] {
    [
        ("awsElasticBlockStore", v.aws_elastic_block_store.is_some()),
        ("azureDisk", v.azure_disk.is_some()),
        ("azureFile", v.azure_file.is_some()),
        ("cephfs", v.cephfs.is_some()),
        ("cinder", v.cinder.is_some()),
        ("configMap", v.config_map.is_some()),
        ("csi", v.csi.is_some()),
        ("downwardAPI", v.downward_api.is_some()),
        ("emptyDir", v.empty_dir.is_some()),
        ("ephemeral", v.ephemeral.is_some()),
        ("fc", v.fc.is_some()),
        ("flexVolume", v.flex_volume.is_some()),
        ("flocker", v.flocker.is_some()),
        ("gcePersistentDisk", v.gce_persistent_disk.is_some()),
        ("gitRepo", v.git_repo.is_some()),
        ("glusterfs", v.glusterfs.is_some()),
        ("hostPath", v.host_path.is_some()),
        ("image", v.image.is_some()),
        ("iscsi", v.iscsi.is_some()),
        ("nfs", v.nfs.is_some()),
        ("persistentVolumeClaim", v.persistent_volume_claim.is_some()),
        ("photonPersistentDisk", v.photon_persistent_disk.is_some()),
        ("portworxVolume", v.portworx_volume.is_some()),
        ("projected", v.projected.is_some()),
        ("quobyte", v.quobyte.is_some()),
        ("rbd", v.rbd.is_some()),
        ("scaleIO", v.scale_io.is_some()),
        ("secret", v.secret.is_some()),
        ("storageos", v.storageos.is_some()),
        ("vsphereVolume", v.vsphere_volume.is_some()),
    ]
}

fn no_plugin(name: Option<&str>) -> TranslateError {
    TranslateError::NoPluginForObject(name.unwrap_or_default().to_owned())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::test_support::{json, pv, sc, vol};

    const NAMES: [(&str, &str, &str); 8] = [
        (
            "kubernetes.io/gce-pd",
            "pd.csi.storage.gke.io",
            "gcePersistentDisk",
        ),
        (
            "kubernetes.io/aws-ebs",
            "ebs.csi.aws.com",
            "awsElasticBlockStore",
        ),
        ("kubernetes.io/cinder", "cinder.csi.openstack.org", "cinder"),
        (
            "kubernetes.io/azure-disk",
            "disk.csi.azure.com",
            "azureDisk",
        ),
        (
            "kubernetes.io/azure-file",
            "file.csi.azure.com",
            "azureFile",
        ),
        (
            "kubernetes.io/vsphere-volume",
            "csi.vsphere.vmware.com",
            "vsphereVolume",
        ),
        (
            "kubernetes.io/portworx-volume",
            "pxd.portworx.com",
            "portworxVolume",
        ),
        ("kubernetes.io/rbd", "rbd.csi.ceph.com", "rbd"),
    ];

    /// One minimal, translatable in-tree source per plugin, in `NAMES` order.
    fn sources() -> [serde_json::Value; 8] {
        [
            json!({"pdName": "d"}),
            json!({"volumeID": "vol-1"}),
            json!({"volumeID": "c-1"}),
            json!({"diskName": "d",
                "diskURI": "/subscriptions/s/resourceGroups/g/providers/Microsoft.Compute/disks/d"}),
            json!({"secretName": "azure-storage-account-a-secret", "shareName": "sh",
                "secretNamespace": "ns"}),
            json!({"volumePath": "[ds] d.vmdk"}),
            json!({"volumeID": "px-1"}),
            json!({"monitors": ["m:1"], "image": "img"}),
        ]
    }

    #[test]
    fn every_plugin_maps_names_both_ways() {
        let t = Translator::new();
        assert_eq!(t.plugins().count(), 8);
        for (in_tree, driver, field) in NAMES {
            assert_eq!(t.csi_driver_for_in_tree(in_tree), Ok(driver), "{in_tree}");
            assert_eq!(t.in_tree_for_csi_driver(driver), Ok(in_tree), "{driver}");
            assert!(t.is_migratable_in_tree_plugin(in_tree), "{in_tree}");
            assert!(t.is_migrated_csi_driver(driver), "{driver}");
            assert!(
                !t.is_migratable_in_tree_plugin(driver),
                "{driver} is not a plugin name"
            );
            assert_eq!(
                t.plugin_by_in_tree_name(in_tree).map(|p| p.source_field()),
                Some(field)
            );
        }
    }

    #[test]
    fn unknown_names_give_upstream_error_messages() {
        let t = Translator::new();
        let cases: [(&str, TranslateError, &str); 6] = [
            (
                "unknown_plugin_has_no_driver",
                t.csi_driver_for_in_tree("kubernetes.io/nfs").unwrap_err(),
                "could not find CSI Driver name for plugin kubernetes.io/nfs",
            ),
            (
                "unknown_driver_has_no_plugin",
                t.in_tree_for_csi_driver("nfs.csi.k8s.io").unwrap_err(),
                "could not find In-Tree driver name for CSI plugin nfs.csi.k8s.io",
            ),
            (
                "driver_names_are_matched_exactly",
                t.in_tree_for_csi_driver("PD.csi.storage.gke.io")
                    .unwrap_err(),
                "could not find In-Tree driver name for CSI plugin PD.csi.storage.gke.io",
            ),
            (
                "unknown_storage_class_plugin",
                t.storage_class_to_csi(
                    "kubernetes.io/nfs",
                    &sc(json!({"metadata": {"name": "s"}, "provisioner": "kubernetes.io/gce-pd"})),
                )
                .unwrap_err(),
                "could not find in-tree storage class parameter translation logic for \"kubernetes.io/nfs\"",
            ),
            (
                "pv_without_in_tree_source",
                t.pv_to_csi(&pv(json!({"metadata": {"name": "pv-1"},
                    "spec": {"nfs": {"server": "s", "path": "/"}}})))
                    .unwrap_err(),
                "could not find in-tree plugin translation logic for \"pv-1\"",
            ),
            (
                "csi_pv_of_unknown_driver",
                t.pv_to_in_tree(&pv(json!({"metadata": {"name": "pv-1"},
                    "spec": {"csi": {"driver": "nfs.csi.k8s.io", "volumeHandle": "h"}}})))
                    .unwrap_err(),
                "could not find in-tree plugin translation logic for nfs.csi.k8s.io",
            ),
        ];
        for (name, err, want) in cases {
            assert_eq!(err.to_string(), want, "case {name:?}");
        }
        let inline = t.inline_to_csi(&vol(json!({"name": "scratch", "emptyDir": {}})), "ns");
        assert_eq!(
            inline.unwrap_err(),
            TranslateError::NoPluginForObject("scratch".into())
        );
        let no_csi = t.pv_to_in_tree(&pv(json!({"metadata": {"name": "pv-1"},
            "spec": {"gcePersistentDisk": {"pdName": "d"}}})));
        assert_eq!(
            no_csi.unwrap_err(),
            TranslateError::MissingCsiSource("pv-1".into())
        );
    }

    #[test]
    fn storage_class_dispatch_uses_the_given_plugin_name_not_the_provisioner() {
        let t = Translator::new();
        let class = sc(
            json!({"metadata": {"name": "s"}, "provisioner": "kubernetes.io/gce-pd",
            "parameters": {"fstype": "ext4", "zone": "z"}}),
        );
        let out = t
            .storage_class_to_csi("kubernetes.io/vsphere-volume", &class)
            .unwrap();
        assert_eq!(
            json(&out)["parameters"],
            json!({"csi.storage.k8s.io/fstype": "ext4", "csimigration": "true"})
        );
        assert_eq!(out.provisioner, "kubernetes.io/gce-pd");
    }

    #[test]
    fn every_plugin_translates_its_pv_and_back_through_the_translator() {
        let t = Translator::new();
        for ((in_tree, driver, field), source) in NAMES.into_iter().zip(sources()) {
            let input = pv(json!({"metadata": {"name": "pv-1", "labels": {"a": "b"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "claimRef": {"namespace": "ns", "name": "c"},
                    field: source}}));
            let before = input.clone();
            assert_eq!(t.in_tree_plugin_for_pv(&input), Some(in_tree));
            assert!(t.is_pv_migratable(&input));
            let csi = t
                .pv_to_csi(&input)
                .unwrap_or_else(|e| panic!("{in_tree}: {e}"));
            assert_eq!(input, before, "{in_tree}: pv_to_csi changed its input");
            let spec = csi.spec.clone().unwrap();
            assert_eq!(spec.csi.as_ref().map(|c| c.driver.as_str()), Some(driver));
            assert_eq!(
                json(&spec).get(field),
                None,
                "{in_tree}: in-tree source left behind"
            );
            assert_eq!(
                t.in_tree_plugin_for_pv(&csi),
                None,
                "{in_tree}: CSI PV is not in-tree"
            );
            let back = t
                .pv_to_in_tree(&csi)
                .unwrap_or_else(|e| panic!("{in_tree}: {e}"));
            assert_eq!(
                csi.spec.as_ref(),
                Some(&spec),
                "{in_tree}: pv_to_in_tree changed its input"
            );
            assert!(
                json(&back)["spec"].get(field).is_some(),
                "{in_tree}: rollback lost the source"
            );
            assert_eq!(back.spec.and_then(|s| s.csi), None);
        }
    }

    #[test]
    fn inline_volumes_always_get_filesystem_mode_and_are_not_changed() {
        let t = Translator::new();
        for ((in_tree, driver, field), mut source) in NAMES.into_iter().zip(sources()) {
            if let Some(s) = source.as_object_mut() {
                s.remove("secretNamespace");
            }
            let input = vol(json!({"name": "v", field: source}));
            let before = input.clone();
            assert_eq!(t.in_tree_plugin_for_inline(&input), Some(in_tree));
            assert!(t.is_inline_migratable(&input));
            let out = t
                .inline_to_csi(&input, "ns")
                .unwrap_or_else(|e| panic!("{in_tree}: {e}"));
            assert_eq!(input, before, "{in_tree}: inline_to_csi changed its input");
            let spec = out.spec.unwrap();
            assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"), "{in_tree}");
            assert_eq!(spec.csi.map(|c| c.driver), Some(driver.to_owned()));
        }
    }

    #[test]
    fn inline_pv_names_differ_for_different_volumes_of_one_plugin() {
        let t = Translator::new();
        let variants = [
            (
                "gcePersistentDisk",
                json!({"pdName": "a"}),
                json!({"pdName": "b"}),
            ),
            (
                "awsElasticBlockStore",
                json!({"volumeID": "vol-a"}),
                json!({"volumeID": "vol-b"}),
            ),
            ("cinder", json!({"volumeID": "a"}), json!({"volumeID": "b"})),
            (
                "azureDisk",
                json!({"diskName": "a", "diskURI": "uri-a"}),
                json!({"diskName": "b", "diskURI": "uri-b"}),
            ),
            (
                "azureFile",
                json!({"secretName": "s", "shareName": "a"}),
                json!({"secretName": "s", "shareName": "b"}),
            ),
            (
                "vsphereVolume",
                json!({"volumePath": "[ds] a"}),
                json!({"volumePath": "[ds] b"}),
            ),
            (
                "portworxVolume",
                json!({"volumeID": "a"}),
                json!({"volumeID": "b"}),
            ),
            (
                "rbd",
                json!({"monitors": ["m"], "image": "a"}),
                json!({"monitors": ["m"], "image": "b"}),
            ),
        ];
        for (field, a, b) in variants {
            let name = |source: serde_json::Value| {
                t.inline_to_csi(&vol(json!({"name": "v", field: source})), "")
                    .unwrap()
                    .metadata
                    .name
            };
            assert_ne!(name(a), name(b), "{field}");
        }
    }

    #[test]
    fn storage_class_translation_does_not_change_its_input() {
        let t = Translator::new();
        let class = sc(json!({"metadata": {"name": "s"}, "provisioner": "x",
            "parameters": {"fstype": "ext4", "zone": "us-central1-a", "monitors": "m",
                "adminSecretName": "a", "openstorage.io/auth-secret-name": "s"}}));
        for (in_tree, _, _) in NAMES {
            let before = class.clone();
            let _ = t.storage_class_to_csi(in_tree, &class);
            assert_eq!(class, before, "{in_tree}");
        }
    }

    #[test]
    fn objects_with_two_sources_are_rejected() {
        let t = Translator::new();
        let two = pv(json!({"metadata": {"name": "pv-2"}, "spec": {
            "gcePersistentDisk": {"pdName": "d"}, "rbd": {"monitors": ["m"], "image": "i"}}}));
        let err = TranslateError::MultipleSources {
            object: "persistent volume \"pv-2\"".into(),
            first: "gcePersistentDisk",
            second: "rbd",
        };
        assert_eq!(t.pv_to_csi(&two).unwrap_err(), err);
        assert_eq!(t.in_tree_plugin_for_pv(&two), None);
        assert!(!t.is_pv_migratable(&two));

        let with_csi = pv(json!({"metadata": {"name": "pv-3"}, "spec": {
            "awsElasticBlockStore": {"volumeID": "vol-1"},
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"}}}));
        assert_eq!(
            t.pv_to_csi(&with_csi).unwrap_err(),
            TranslateError::MultipleSources {
                object: "persistent volume \"pv-3\"".into(),
                first: "awsElasticBlockStore",
                second: "csi"
            }
        );

        let inline = vol(json!({"name": "v2", "cinder": {"volumeID": "c"},
            "portworxVolume": {"volumeID": "p"}}));
        assert_eq!(
            t.inline_to_csi(&inline, "").unwrap_err(),
            TranslateError::MultipleSources {
                object: "volume \"v2\"".into(),
                first: "cinder",
                second: "portworxVolume"
            }
        );
        assert_eq!(
            t.inline_to_csi(&inline, "").unwrap_err().to_string(),
            "volume \"v2\" sets more than one volume source: cinder and portworxVolume"
        );
    }

    #[test]
    fn a_second_source_of_any_kind_is_rejected_in_every_direction() {
        let t = Translator::new();
        let multiple = |object: &str, first, second| TranslateError::MultipleSources {
            object: object.to_owned(),
            first,
            second,
        };
        // In-tree -> CSI: a source no plugin migrates still counts (the result would
        // carry both `csi` and `nfs`).
        let with_nfs = pv(json!({"metadata": {"name": "a"}, "spec": {
            "gcePersistentDisk": {"pdName": "d"}, "nfs": {"server": "s", "path": "/"}}}));
        assert_eq!(
            t.pv_to_csi(&with_nfs).unwrap_err(),
            multiple("persistent volume \"a\"", "gcePersistentDisk", "nfs")
        );
        // Rollback: the in-tree source beside `csi` would be silently overwritten.
        let rollback = pv(json!({"metadata": {"name": "b"}, "spec": {
            "gcePersistentDisk": {"pdName": "x"},
            "csi": {"driver": "pd.csi.storage.gke.io",
                    "volumeHandle": "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/d"}}}));
        assert_eq!(
            t.pv_to_in_tree(&rollback).unwrap_err(),
            multiple("persistent volume \"b\"", "csi", "gcePersistentDisk")
        );
        let rollback_nfs = pv(json!({"metadata": {"name": "c"}, "spec": {
            "nfs": {"server": "s", "path": "/"},
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"}}}));
        assert_eq!(
            t.pv_to_in_tree(&rollback_nfs).unwrap_err(),
            multiple("persistent volume \"c\"", "csi", "nfs")
        );
        // Inline: an in-tree source beside `csi` or `emptyDir`.
        for (other, source) in [
            ("csi", json!({"driver": "pd.csi.storage.gke.io"})),
            ("emptyDir", json!({})),
        ] {
            let inline =
                vol(json!({"name": "v", "gcePersistentDisk": {"pdName": "d"}, other: source}));
            assert_eq!(
                t.inline_to_csi(&inline, "ns").unwrap_err(),
                multiple("volume \"v\"", "gcePersistentDisk", other),
                "{other}"
            );
            assert!(!t.is_inline_migratable(&inline), "{other}");
        }
        // One source alone is still fine.
        let single = pv(json!({"metadata": {"name": "d"}, "spec": {
            "csi": {"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"}}}));
        assert!(t.pv_to_in_tree(&single).is_ok());
    }

    #[test]
    fn repair_volume_handle_dispatches_by_driver() {
        let t = Translator::new();
        let node = "projects/p/zones/us-central1-b/instances/vm";
        let handle = "projects/UNSPECIFIED/zones/UNSPECIFIED/disks/d";
        assert_eq!(
            t.repair_volume_handle("pd.csi.storage.gke.io", handle, node),
            Ok("projects/p/zones/us-central1-b/disks/d".to_owned())
        );
        for (_, driver, _) in NAMES.into_iter().skip(1) {
            assert_eq!(
                t.repair_volume_handle(driver, handle, "x"),
                Ok(handle.to_owned()),
                "{driver}"
            );
        }
        assert_eq!(
            t.repair_volume_handle("nfs.csi.k8s.io", handle, node)
                .unwrap_err()
                .to_string(),
            "could not find In-Tree driver name for CSI plugin nfs.csi.k8s.io"
        );
    }
}
