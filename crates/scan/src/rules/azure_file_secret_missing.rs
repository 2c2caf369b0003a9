//! `AZURE_FILE_SECRET_MISSING`: an Azure File volume whose storage-account Secret does not exist.

use csi_migrate_translate::plugins::azure_file;

use crate::report::{Finding, Severity};
use crate::rules::{Rule, pv_object};
use crate::snapshot::ResourceKind;
use crate::view::ClusterView;

/// See the module documentation.
#[derive(Debug)]
pub struct AzureFileSecretMissing;

impl Rule for AzureFileSecretMissing {
    fn code(&self) -> &'static str {
        "AZURE_FILE_SECRET_MISSING"
    }
    fn severity(&self) -> Severity {
        Severity::Blocker
    }
    fn applies_to(&self) -> &'static [ResourceKind] {
        &[ResourceKind::PersistentVolume, ResourceKind::Pod]
    }
    fn requires(&self) -> &'static [ResourceKind] {
        &[ResourceKind::Secret]
    }
    fn description(&self) -> &'static str {
        "The Secret an Azure File volume names (account name and key) does not exist; the CSI driver cannot mount it."
    }
    fn run(&self, view: &ClusterView<'_>, out: &mut Vec<Finding>) {
        let remedy = |ns: &str, name: &str| {
            format!(
                "Create Secret {ns}/{name} with azurestorageaccountname and azurestorageaccountkey (the CSI PV references it as nodeStageSecretRef), or fix the volume's secretName/secretNamespace."
            )
        };
        for volume in view
            .in_tree_volumes
            .iter()
            .filter(|v| v.plugin.name == azure_file::PLUGIN_NAME)
        {
            let Some(spec) = volume.pv.spec.as_ref() else {
                continue;
            };
            let Some(source) = spec.azure_file.as_ref() else {
                continue;
            };
            let namespace = source
                .secret_namespace
                .as_deref()
                .filter(|n| !n.is_empty())
                .or_else(|| spec.claim_ref.as_ref().and_then(|c| c.namespace.as_deref()))
                .unwrap_or("default");
            if view
                .secrets
                .contains(&(namespace, source.secret_name.as_str()))
            {
                continue;
            }
            out.push(
                self.finding(
                    pv_object(volume.name()),
                    format!(
                        "Azure File PV {:?} needs Secret {namespace}/{}, which does not exist: the CSI driver cannot mount the share.",
                        volume.name(),
                        source.secret_name
                    ),
                    remedy(namespace, &source.secret_name),
                )
                .for_plugin(azure_file::PLUGIN_NAME),
            );
        }
        for inline in view
            .inline_volumes
            .iter()
            .filter(|v| v.plugin.name == azure_file::PLUGIN_NAME)
        {
            let Some(source) = inline.volume.azure_file.as_ref() else {
                continue;
            };
            if view
                .secrets
                .contains(&(inline.namespace, source.secret_name.as_str()))
            {
                continue;
            }
            out.push(
                self.finding(
                    inline.owner.clone(),
                    format!(
                        "Inline Azure File volume {:?} needs Secret {}/{}, which does not exist.",
                        inline.volume.name, inline.namespace, source.secret_name
                    ),
                    remedy(inline.namespace, &source.secret_name),
                )
                .for_plugin(azure_file::PLUGIN_NAME),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::rules::test_support::*;

    fn af_pv(name: &str, secret_ns: Option<&str>) -> serde_json::Value {
        let mut pv = json!({"kind": "PersistentVolume", "apiVersion": "v1", "metadata": {"name": name},
            "spec": {"azureFile": {"secretName": "azure-secret", "shareName": "share"},
                     "claimRef": {"namespace": "app", "name": "c"}}});
        if let Some(ns) = secret_ns {
            pv["spec"]["azureFile"]["secretNamespace"] = ns.into();
        }
        pv
    }

    fn secret(ns: &str) -> serde_json::Value {
        json!({"kind": "Secret", "apiVersion": "v1", "metadata": {"name": "azure-secret", "namespace": ns}})
    }

    #[test]
    fn table() {
        let cases: &[(&str, Vec<serde_json::Value>, &[&str])] = &[
            (
                "secret in claim namespace",
                vec![af_pv("a", None), secret("app")],
                &[],
            ),
            (
                "secret elsewhere",
                vec![af_pv("a", None), secret("other")],
                &["PersistentVolume/a"],
            ),
            (
                "explicit namespace",
                vec![af_pv("a", Some("other")), secret("other")],
                &[],
            ),
            (
                "no secrets",
                vec![af_pv("a", None)],
                &["PersistentVolume/a"],
            ),
        ];
        for (name, input, expected) in cases {
            assert_eq!(objects(&AzureFileSecretMissing, input), *expected, "{name}");
        }
    }
}
