//! The checks: one [`Rule`] per file, each with a stable code; [`RULES`] is the registry.
//!
//! Adding a rule is one new file implementing [`Rule`] plus one line in [`RULES`].

use crate::report::{Finding, ObjectRef, Severity};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

pub mod azure_file_secret_missing;
pub mod csi_class_has_migration_parameters;
pub mod csi_driver_missing;
pub mod csi_driver_not_on_node;
pub mod default_class_in_tree;
pub mod gce_handle_unspecified_project;
pub mod in_tree_plugin_removed;
pub mod inline_in_tree_volume;
pub mod managed_by_gitops;
pub mod migrated_plugins_annotation_missing;
pub mod no_pdb;
pub mod owned_by_operator;
pub mod plugin_removal_upcoming;
pub mod plugin_translation_removed;
pub mod pv_reclaim_delete;
pub mod pv_released_or_failed;
pub mod single_replica;
pub mod static_pv_missing_provisioner_annotation;
pub mod static_pvc_missing_provisioner_annotation;
pub mod sts_retention_deletes_pvcs;
pub mod sts_template_in_tree_class;
pub mod untranslatable_pv;
pub mod untranslatable_storage_class;
pub mod vsphere_datastore_missing;
pub mod vsphere_inline_volume;
pub mod vsphere_multiple_vcenters_unverified;
pub mod vsphere_raw_block_volume;
pub mod vsphere_storage_policy_missing;
pub mod vsphere_unsupported_sc_parameter;
pub mod vsphere_vcenter_version;
pub mod vsphere_vmdk_missing;
pub mod vsphere_windows_filesystem;

#[cfg(test)]
pub(crate) mod test_support;

/// One check.
pub trait Rule: Sync {
    /// The stable code findings carry, SCREAMING_SNAKE (`CSI_DRIVER_MISSING`).
    fn code(&self) -> &'static str;

    /// The severity of every finding of this rule.
    fn severity(&self) -> Severity;

    /// The kinds of object this rule reports on.
    fn applies_to(&self) -> &'static [ResourceKind];

    /// Kinds that must have been collected for the rule to mean anything (proving absence
    /// needs the list). When one is missing the rule is skipped and `INPUT_INCOMPLETE` says so.
    fn requires(&self) -> &'static [ResourceKind] {
        &[]
    }

    /// One line saying what the rule checks, for documentation.
    fn description(&self) -> &'static str;

    /// Appends this rule's findings.
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>);

    /// A finding of this rule.
    fn finding(&self, object: ObjectRef, message: String, remedy: String) -> Finding {
        Finding {
            code: self.code(),
            severity: self.severity(),
            object,
            message,
            remedy,
            plugin: None,
        }
    }
}

/// Every rule, run in this order.
pub static RULES: &[&dyn Rule] = &[
    &csi_driver_missing::CsiDriverMissing,
    &csi_driver_not_on_node::CsiDriverNotOnNode,
    &migrated_plugins_annotation_missing::MigratedPluginsAnnotationMissing,
    &plugin_translation_removed::PluginTranslationRemoved,
    &plugin_removal_upcoming::PluginRemovalUpcoming,
    &in_tree_plugin_removed::InTreePluginRemoved,
    &untranslatable_pv::UntranslatablePv,
    &untranslatable_storage_class::UntranslatableStorageClass,
    &default_class_in_tree::DefaultClassInTree,
    &sts_template_in_tree_class::StsTemplateInTreeClass,
    &vsphere_unsupported_sc_parameter::VsphereUnsupportedScParameter,
    &csi_class_has_migration_parameters::CsiClassHasMigrationParameters,
    &static_pv_missing_provisioner_annotation::StaticPvMissingProvisionerAnnotation,
    &static_pvc_missing_provisioner_annotation::StaticPvcMissingProvisionerAnnotation,
    &vsphere_windows_filesystem::VsphereWindowsFilesystem,
    &vsphere_raw_block_volume::VsphereRawBlockVolume,
    &vsphere_inline_volume::VsphereInlineVolume,
    &vsphere_multiple_vcenters_unverified::VsphereMultipleVcentersUnverified,
    &vsphere_vcenter_version::VsphereVcenterVersion,
    &vsphere_datastore_missing::VsphereDatastoreMissing,
    &vsphere_vmdk_missing::VsphereVmdkMissing,
    &vsphere_storage_policy_missing::VsphereStoragePolicyMissing,
    &inline_in_tree_volume::InlineInTreeVolume,
    &gce_handle_unspecified_project::GceHandleUnspecifiedProject,
    &azure_file_secret_missing::AzureFileSecretMissing,
    &pv_released_or_failed::PvReleasedOrFailed,
    &pv_reclaim_delete::PvReclaimDelete,
    &sts_retention_deletes_pvcs::StsRetentionDeletesPvcs,
    &single_replica::SingleReplica,
    &no_pdb::NoPdb,
    &owned_by_operator::OwnedByOperator,
    &managed_by_gitops::ManagedByGitops,
];

/// `PersistentVolume/<name>`.
pub(crate) fn pv_object(name: &str) -> ObjectRef {
    ObjectRef::cluster("PersistentVolume", name)
}

/// Every in-tree vSphere PV with its `volumePath`.
pub(crate) fn vsphere_volume_paths<'v, 'a>(
    view: &'v ClusterView<'a>,
) -> impl Iterator<Item = (&'v crate::view::InTreeVolume<'a>, &'a str)> {
    view.in_tree_volumes
        .iter()
        .filter(|v| v.plugin.name == csi_migrate_translate::plugins::vsphere::PLUGIN_NAME)
        .filter_map(|volume| {
            let source = volume.pv.spec.as_ref()?.vsphere_volume.as_ref()?;
            Some((volume, source.volume_path.as_str()))
        })
}

/// `StorageClass/<name>`.
pub(crate) fn class_object(name: &str) -> ObjectRef {
    ObjectRef::cluster("StorageClass", name)
}

/// `CSIDriver/<name>`.
pub(crate) fn driver_object(name: &str) -> ObjectRef {
    ObjectRef::cluster("CSIDriver", name)
}

/// A count with its noun, `1 PV` / `3 PVs`.
pub(crate) fn plural(n: usize, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// The code of the finding emitted when a rule was skipped for lack of input.
pub const INPUT_INCOMPLETE: &str = "INPUT_INCOMPLETE";

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use super::*;

    #[test]
    fn codes_are_unique_and_screaming_snake() {
        let mut seen = HashSet::new();
        for rule in RULES {
            let code = rule.code();
            assert!(seen.insert(code), "duplicate code {code}");
            assert!(
                code.bytes()
                    .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'),
                "{code}"
            );
            assert!(!rule.applies_to().is_empty(), "{code}");
            assert!(!rule.description().is_empty(), "{code}");
        }
        assert!(!seen.contains(INPUT_INCOMPLETE));
    }

    #[test]
    fn every_code_is_documented_in_the_json_schema_doc() {
        let doc = include_str!("../../../../docs/scan-json.md");
        for code in RULES.iter().map(|r| r.code()).chain([INPUT_INCOMPLETE]) {
            assert!(
                doc.contains(&format!("`{code}`")),
                "docs/scan-json.md lacks {code}"
            );
        }
    }
}
