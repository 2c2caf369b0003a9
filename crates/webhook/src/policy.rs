//! The webhook policy: what to do (deny, warn, allow) per rule, namespace exemptions, in-tree class names.
//!
//! The policy is a small YAML file (see `deploy/webhook/20-policy-configmap.yaml`):
//!
//! ```yaml
//! default: warn                  # action for every rule not named below
//! rules:
//!   inTreeStorageClass: deny
//!   inTreeStorageClassParameters: deny
//!   inTreePersistentVolume: warn
//!   inTreePersistentVolumeClaim: warn
//!   inTreeInlineVolume: allow
//! exemptions:
//!   - namespace: legacy-db       # every rule is allowed here
//!   - namespace: batch
//!     rules: [inTreeInlineVolume]
//! inTreeStorageClasses:          # optional: class name -> in-tree provisioner, for the PVC rule
//!   legacy-disks: kubernetes.io/gce-pd
//! ```
//!
//! `inTreeStorageClasses` is an override: a claim on a listed class is judged in-tree with
//! the listed provisioner whatever the cluster says. With cluster access the webhook
//! watches the StorageClasses itself ([`crate::storage_classes`]) and needs no names;
//! without it, the names are the only way to judge a claim by its class.
//!
//! The `csiMigrationParameters` rule (migration-only parameters on a CSI StorageClass) is
//! not configurable: such a class is always denied.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// What the webhook does when a configurable rule matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    /// Reject the request; the user sees the rule's message.
    Deny,
    /// Admit the request with an admission warning (kubectl prints it).
    Warn,
    /// Admit the request silently.
    Allow,
}

impl Action {
    /// The lowercase name used in the policy file and in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Action::Deny => "deny",
            Action::Warn => "warn",
            Action::Allow => "allow",
        }
    }
}

/// The rules a policy can set an action for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum PolicyRule {
    /// A StorageClass whose provisioner is an in-tree plugin.
    InTreeStorageClass,
    /// An in-tree StorageClass with parameters the CSI driver rejects after migration.
    InTreeStorageClassParameters,
    /// A PersistentVolume with an in-tree volume source.
    InTreePersistentVolume,
    /// A PersistentVolumeClaim (or StatefulSet claim template) on an in-tree class.
    InTreePersistentVolumeClaim,
    /// A Pod or pod template with an inline in-tree volume.
    InTreeInlineVolume,
}

impl PolicyRule {
    /// Every configurable rule.
    pub const ALL: [PolicyRule; 5] = [
        PolicyRule::InTreeStorageClass,
        PolicyRule::InTreeStorageClassParameters,
        PolicyRule::InTreePersistentVolume,
        PolicyRule::InTreePersistentVolumeClaim,
        PolicyRule::InTreeInlineVolume,
    ];

    /// The camelCase name used in the policy file.
    pub fn as_str(self) -> &'static str {
        match self {
            PolicyRule::InTreeStorageClass => "inTreeStorageClass",
            PolicyRule::InTreeStorageClassParameters => "inTreeStorageClassParameters",
            PolicyRule::InTreePersistentVolume => "inTreePersistentVolume",
            PolicyRule::InTreePersistentVolumeClaim => "inTreePersistentVolumeClaim",
            PolicyRule::InTreeInlineVolume => "inTreeInlineVolume",
        }
    }
}

/// A namespace in which some or all rules are allowed.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Exemption {
    /// The namespace, matched exactly.
    pub namespace: String,
    /// The exempted rules; empty or absent means every configurable rule.
    #[serde(default)]
    pub rules: Vec<PolicyRule>,
}

/// The webhook's policy, as read from the policy file.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct Policy {
    /// The action for every rule without its own entry in `rules`.
    #[serde(default = "default_action")]
    pub default: Action,
    /// Per-rule actions.
    #[serde(default)]
    pub rules: BTreeMap<PolicyRule, Action>,
    /// Namespaces where rules are allowed (cluster-scoped objects have no namespace and are never exempt).
    #[serde(default)]
    pub exemptions: Vec<Exemption>,
    /// StorageClass names to treat as in-tree, mapped to their in-tree provisioner.
    ///
    /// Takes precedence over the StorageClass cache, and is the only source of class
    /// knowledge when the webhook runs without cluster access.
    #[serde(default)]
    pub in_tree_storage_classes: BTreeMap<String, String>,
}

fn default_action() -> Action {
    Action::Warn
}

impl Default for Policy {
    fn default() -> Self {
        Policy {
            default: default_action(),
            rules: BTreeMap::new(),
            exemptions: Vec::new(),
            in_tree_storage_classes: BTreeMap::new(),
        }
    }
}

/// Why a policy could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum PolicyError {
    /// The policy file could not be read (missing, unreadable).
    #[error("cannot read policy file {path}: {source}")]
    Read {
        /// The policy file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The policy file is not valid YAML or has unknown keys or values.
    #[error("invalid policy{}: {message}", .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Parse {
        /// The policy file, when the policy came from a file.
        path: Option<PathBuf>,
        /// What the YAML parser reported.
        message: String,
    },
    /// An entry is well-formed but makes no sense (e.g. an empty namespace name).
    #[error("invalid policy{}: {message}", .path.as_ref().map(|p| format!(" in {}", p.display())).unwrap_or_default())]
    Invalid {
        /// The policy file, when the policy came from a file.
        path: Option<PathBuf>,
        /// What is wrong.
        message: String,
    },
}

impl Policy {
    /// Parses a policy from YAML text. An empty document is the default policy.
    pub fn from_yaml(text: &str) -> Result<Policy, PolicyError> {
        Self::parse(text, None)
    }

    /// Reads and parses a policy file.
    pub fn from_file(path: &Path) -> Result<Policy, PolicyError> {
        let text = std::fs::read_to_string(path).map_err(|source| PolicyError::Read {
            path: path.to_owned(),
            source,
        })?;
        Self::parse(&text, Some(path))
    }

    /// Parses YAML bytes read from `path` (used by the reloader).
    pub(crate) fn from_bytes(bytes: &[u8], path: &Path) -> Result<Policy, PolicyError> {
        let text = std::str::from_utf8(bytes).map_err(|e| PolicyError::Parse {
            path: Some(path.to_owned()),
            message: format!("not UTF-8: {e}"),
        })?;
        Self::parse(text, Some(path))
    }

    fn parse(text: &str, path: Option<&Path>) -> Result<Policy, PolicyError> {
        let is_blank = text
            .lines()
            .all(|l| l.trim().is_empty() || l.trim_start().starts_with('#') || l.trim() == "---");
        if is_blank {
            return Ok(Policy::default());
        }
        let policy: Policy = serde_saphyr::from_str(text).map_err(|e| PolicyError::Parse {
            path: path.map(Path::to_owned),
            message: e.to_string(),
        })?;
        policy.validate(path)?;
        Ok(policy)
    }

    fn validate(&self, path: Option<&Path>) -> Result<(), PolicyError> {
        let invalid = |message: String| PolicyError::Invalid {
            path: path.map(Path::to_owned),
            message,
        };
        if let Some(e) = self
            .exemptions
            .iter()
            .find(|e| e.namespace.trim().is_empty())
        {
            return Err(invalid(format!(
                "an exemption has an empty namespace (rules: {:?})",
                e.rules
            )));
        }
        if let Some((name, _)) = self
            .in_tree_storage_classes
            .iter()
            .find(|(name, provisioner)| name.is_empty() || provisioner.is_empty())
        {
            return Err(invalid(format!(
                "inTreeStorageClasses entry {name:?} needs a class name and an in-tree provisioner"
            )));
        }
        Ok(())
    }

    /// The action for `rule` on an object in `namespace` (`None` for cluster-scoped objects).
    pub fn action(&self, rule: PolicyRule, namespace: Option<&str>) -> Action {
        if let Some(ns) = namespace
            && self
                .exemptions
                .iter()
                .any(|e| e.namespace == ns && (e.rules.is_empty() || e.rules.contains(&rule)))
        {
            return Action::Allow;
        }
        self.rules.get(&rule).copied().unwrap_or(self.default)
    }

    /// The in-tree provisioner a StorageClass name is known to use, if it is listed.
    pub fn in_tree_class_provisioner(&self, class: &str) -> Option<&str> {
        self.in_tree_storage_classes.get(class).map(String::as_str)
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn empty_document_is_the_default_policy() {
        for text in ["", "\n", "# nothing\n", "---\n"] {
            assert_eq!(
                Policy::from_yaml(text).unwrap(),
                Policy::default(),
                "{text:?}"
            );
        }
        let p = Policy::default();
        for rule in PolicyRule::ALL {
            assert_eq!(p.action(rule, None), Action::Warn);
        }
    }

    #[test]
    fn actions_table() {
        let p = Policy::from_yaml(
            "default: allow\nrules:\n  inTreeStorageClass: deny\n  inTreeInlineVolume: warn\n\
             exemptions:\n  - namespace: legacy\n  - namespace: batch\n    rules: [inTreeInlineVolume]\n",
        )
        .unwrap();
        let cases: &[(PolicyRule, Option<&str>, Action)] = &[
            (PolicyRule::InTreeStorageClass, None, Action::Deny),
            (PolicyRule::InTreePersistentVolume, None, Action::Allow),
            (
                PolicyRule::InTreeInlineVolume,
                Some("default"),
                Action::Warn,
            ),
            (
                PolicyRule::InTreeInlineVolume,
                Some("legacy"),
                Action::Allow,
            ),
            (PolicyRule::InTreeInlineVolume, Some("batch"), Action::Allow),
            (PolicyRule::InTreeStorageClass, Some("batch"), Action::Deny),
            (
                PolicyRule::InTreeStorageClass,
                Some("legacy"),
                Action::Allow,
            ),
            (PolicyRule::InTreeInlineVolume, Some("Legacy"), Action::Warn),
        ];
        for (rule, ns, want) in cases {
            assert_eq!(p.action(*rule, *ns), *want, "{rule:?} in {ns:?}");
        }
    }

    #[test]
    fn in_tree_classes() {
        let p =
            Policy::from_yaml("inTreeStorageClasses:\n  standard: kubernetes.io/gce-pd\n").unwrap();
        assert_eq!(
            p.in_tree_class_provisioner("standard"),
            Some("kubernetes.io/gce-pd")
        );
        assert_eq!(p.in_tree_class_provisioner("premium"), None);
        assert_eq!(p.default, Action::Warn);
    }

    #[test]
    fn bad_policies_are_errors_naming_the_problem() {
        let cases = [
            ("default: block\n", "block"),
            ("rules:\n  inTreePod: deny\n", "inTreePod"),
            ("unknownKey: 1\n", "unknownKey"),
            ("exemptions:\n  - namespace: \"\"\n", "empty namespace"),
            ("inTreeStorageClasses:\n  standard: \"\"\n", "standard"),
            ("default: [\n", ""),
        ];
        for (text, needle) in cases {
            let err = Policy::from_yaml(text).unwrap_err().to_string();
            assert!(err.contains(needle), "{text:?}: {err}");
        }
    }

    #[test]
    fn file_errors_name_the_file() {
        let err = Policy::from_file(Path::new("/nonexistent/policy.yaml")).unwrap_err();
        assert!(matches!(err, PolicyError::Read { .. }));
        assert!(err.to_string().contains("/nonexistent/policy.yaml"));
    }
}
