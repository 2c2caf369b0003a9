//! The admission rules: pure functions from one Kubernetes object to the findings against it.
//!
//! Each rule lives in its own module and only reports what it found; what to do about a
//! finding (deny, warn, allow) is the policy's business (see [`crate::admission`]).

use std::collections::BTreeMap;
use std::fmt;

use k8s_openapi::api::storage::v1::StorageClass;

use crate::policy::PolicyRule;

pub mod csi_migration_parameters;
pub mod in_tree_claim;
pub mod in_tree_persistent_volume;
pub mod in_tree_storage_class;
pub mod in_tree_storage_class_parameters;
pub mod inline_volume;

/// Every rule the webhook applies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Rule {
    /// A CSI StorageClass with parameters only the in-tree translation may set (always denied).
    CsiMigrationParameters,
    /// One of the policy-controlled rules.
    Policy(PolicyRule),
}

impl Rule {
    /// Every rule, for metrics and documentation.
    pub const ALL: [Rule; 6] = [
        Rule::CsiMigrationParameters,
        Rule::Policy(PolicyRule::InTreeStorageClass),
        Rule::Policy(PolicyRule::InTreeStorageClassParameters),
        Rule::Policy(PolicyRule::InTreePersistentVolume),
        Rule::Policy(PolicyRule::InTreePersistentVolumeClaim),
        Rule::Policy(PolicyRule::InTreeInlineVolume),
    ];

    /// The rule's name, as used in the policy file and the `rule` metrics label.
    pub fn as_str(self) -> &'static str {
        match self {
            Rule::CsiMigrationParameters => "csiMigrationParameters",
            Rule::Policy(rule) => rule.as_str(),
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One thing a rule objects to, with the message the user will see.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// The rule that matched.
    pub rule: Rule,
    /// A one-line explanation that names the CSI equivalent.
    pub message: String,
}

impl Finding {
    pub(crate) fn new(rule: Rule, message: String) -> Self {
        Finding { rule, message }
    }
}

/// How an object is named in messages: `Pod "web-0" in namespace "shop"`.
#[derive(Debug, Clone, Copy)]
pub struct ObjectName<'a> {
    /// The object's kind.
    pub kind: &'a str,
    /// The namespace; `None` for cluster-scoped objects.
    pub namespace: Option<&'a str>,
    /// The name (or `generateName` prefix); may be empty.
    pub name: &'a str,
}

impl fmt::Display for ObjectName<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {:?}", self.kind, self.name)?;
        if let Some(ns) = self.namespace.filter(|ns| !ns.is_empty()) {
            write!(f, " in namespace {ns:?}")?;
        }
        Ok(())
    }
}

/// The annotation that makes a StorageClass the cluster's default.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// The pre-GA spelling of [`DEFAULT_CLASS_ANNOTATION`], still honoured by Kubernetes.
pub const BETA_DEFAULT_CLASS_ANNOTATION: &str = "storageclass.beta.kubernetes.io/is-default-class";

/// Whether `class` is marked as the cluster default (either annotation set to exactly
/// `"true"`, as the API server's DefaultStorageClass admission plugin checks).
pub fn is_default_class(class: &StorageClass) -> bool {
    class.metadata.annotations.as_ref().is_some_and(|a| {
        [DEFAULT_CLASS_ANNOTATION, BETA_DEFAULT_CLASS_ANNOTATION]
            .iter()
            .any(|key| a.get(*key).is_some_and(|v| v == "true"))
    })
}

/// The class the API server would use for a claim without one: among the classes marked
/// default, the most recently created (ties: the first name), as Kubernetes does since 1.26.
pub fn pick_default_class<'a>(
    classes: impl IntoIterator<Item = &'a StorageClass>,
) -> Option<&'a StorageClass> {
    classes
        .into_iter()
        .filter(|c| is_default_class(c))
        .max_by(|a, b| {
            let created = |c: &StorageClass| c.metadata.creation_timestamp.as_ref().map(|t| t.0);
            created(a)
                .cmp(&created(b))
                .then_with(|| b.metadata.name.cmp(&a.metadata.name))
        })
}

/// What the webhook knows about the cluster's StorageClasses (from the cluster, when it
/// has access; see `crate::storage_classes`). Lookups must be cheap: they run per review.
pub trait KnownClasses {
    /// The provisioner of the class named `name`, if that class is known.
    fn provisioner(&self, name: &str) -> Option<String>;
    /// The cluster's default class: its name and provisioner, if one is known.
    fn default_class(&self) -> Option<(String, String)>;
}

/// No knowledge of the cluster: claims are judged by the policy's class names only.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoClasses;

impl KnownClasses for NoClasses {
    fn provisioner(&self, _name: &str) -> Option<String> {
        None
    }
    fn default_class(&self) -> Option<(String, String)> {
        None
    }
}

impl KnownClasses for Vec<StorageClass> {
    fn provisioner(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|c| c.metadata.name.as_deref() == Some(name))
            .map(|c| c.provisioner.clone())
    }
    fn default_class(&self) -> Option<(String, String)> {
        pick_default_class(self.iter()).map(|c| {
            (
                c.metadata.name.clone().unwrap_or_default(),
                c.provisioner.clone(),
            )
        })
    }
}

/// `k1=v1, k2=v2` for a parameter map, in key order.
pub(crate) fn format_parameters<'a>(
    parameters: impl IntoIterator<Item = (&'a String, &'a String)>,
) -> String {
    let sorted: BTreeMap<&String, &String> = parameters.into_iter().collect();
    let mut out = String::new();
    for (i, (k, v)) in sorted.into_iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(k);
        out.push('=');
        out.push_str(v);
    }
    out
}

#[cfg(test)]
pub(crate) mod fixtures {
    //! JSON-built Kubernetes objects shared by the rule tests.
    #![allow(clippy::unwrap_used)]
    use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, PodSpec};
    use k8s_openapi::api::storage::v1::StorageClass;
    use serde_json::{Value, json};

    pub fn storage_class(provisioner: &str, parameters: Value) -> StorageClass {
        serde_json::from_value(json!({
            "apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
            "metadata": {"name": "sc"}, "provisioner": provisioner, "parameters": parameters,
        }))
        .unwrap()
    }

    pub fn pv(spec: Value) -> PersistentVolume {
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv1"}, "spec": spec,
        }))
        .unwrap()
    }

    pub fn pvc(class: Option<&str>, annotations: Value) -> PersistentVolumeClaim {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if let Some(class) = class {
            spec["storageClassName"] = json!(class);
        }
        serde_json::from_value(json!({
            "apiVersion": "v1", "kind": "PersistentVolumeClaim",
            "metadata": {"name": "data", "namespace": "ns", "annotations": annotations}, "spec": spec,
        }))
        .unwrap()
    }

    pub fn pod_spec(volumes: Value) -> PodSpec {
        serde_json::from_value(
            json!({"containers": [{"name": "c", "image": "busybox"}], "volumes": volumes}),
        )
        .unwrap()
    }
}
