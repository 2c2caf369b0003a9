//! The kinds the simulated API server serves: names, scope and per-kind behaviour.

use serde_json::{Value, json};

/// One served resource type (a built-in kind or a CustomResourceDefinition).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResourceType {
    /// API group, `""` for core.
    pub group: String,
    /// API version, e.g. `v1`.
    pub version: String,
    /// Kind, e.g. `PersistentVolume`.
    pub kind: String,
    /// Plural resource name used in URLs, e.g. `persistentvolumes`.
    pub plural: String,
    /// Lower-case singular name.
    pub singular: String,
    /// Whether objects live in a namespace.
    pub namespaced: bool,
    /// Short names kubectl accepts (`pv`, `pvc`, `sts`).
    pub short_names: Vec<String>,
    /// Whether `status` is a separate subresource.
    pub has_status: bool,
    /// Whether a spec change bumps `metadata.generation`.
    pub tracks_generation: bool,
    /// Whether DELETE of a removed object returns the object (pods, PVs, PVCs) rather than a Status.
    pub returns_deleted_object: bool,
}

impl ResourceType {
    #[allow(clippy::too_many_arguments)]
    fn builtin(
        group: &str,
        version: &str,
        kind: &str,
        plural: &str,
        namespaced: bool,
        short_names: &[&str],
        has_status: bool,
        tracks_generation: bool,
    ) -> Self {
        Self {
            group: group.to_owned(),
            version: version.to_owned(),
            kind: kind.to_owned(),
            plural: plural.to_owned(),
            singular: kind.to_lowercase(),
            namespaced,
            short_names: short_names.iter().map(|s| (*s).to_owned()).collect(),
            has_status,
            tracks_generation,
            returns_deleted_object: matches!(
                kind,
                "Pod" | "PersistentVolume" | "PersistentVolumeClaim"
            ),
        }
    }

    /// `v1` or `apps/v1`.
    pub fn api_version(&self) -> String {
        if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        }
    }

    /// `persistentvolumes` or `statefulsets.apps`, as error messages name resources.
    pub fn qualified_plural(&self) -> String {
        if self.group.is_empty() {
            self.plural.clone()
        } else {
            format!("{}.{}", self.plural, self.group)
        }
    }

    /// `PersistentVolume` or `StatefulSet.apps`, as validation errors name kinds.
    pub fn qualified_kind(&self) -> String {
        if self.group.is_empty() {
            self.kind.clone()
        } else {
            format!("{}.{}", self.kind, self.group)
        }
    }

    /// Whether a CustomResourceDefinition declares this kind (no built-in has its group and kind).
    pub fn is_custom(&self) -> bool {
        !builtin_resources()
            .iter()
            .any(|b| b.group == self.group && b.kind == self.kind)
    }

    /// Whether the kind serves the `scale` subresource (autoscaling/v1 `Scale`).
    pub fn has_scale(&self) -> bool {
        self.group == "apps"
            && matches!(
                self.kind.as_str(),
                "StatefulSet" | "Deployment" | "ReplicaSet"
            )
    }

    /// The resource's entry in an `APIResourceList`.
    pub fn discovery_entry(&self) -> Vec<Value> {
        let mut entries = vec![json!({
            "name": self.plural,
            "singularName": self.singular,
            "namespaced": self.namespaced,
            "kind": self.kind,
            "verbs": ["create", "delete", "deletecollection", "get", "list", "patch", "update", "watch"],
            "shortNames": self.short_names,
        })];
        if self.has_status {
            entries.push(json!({
                "name": format!("{}/status", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "kind": self.kind,
                "verbs": ["get", "patch", "update"],
            }));
        }
        if self.has_scale() {
            entries.push(json!({
                "name": format!("{}/scale", self.plural),
                "singularName": "",
                "namespaced": self.namespaced,
                "group": "autoscaling",
                "version": "v1",
                "kind": "Scale",
                "verbs": ["get", "patch", "update"],
            }));
        }
        entries
    }

    /// The resource type a CustomResourceDefinition object declares (its storage version).
    pub fn from_crd(crd: &Value) -> Option<Self> {
        let spec = crd.get("spec")?;
        let names = spec.get("names")?;
        let versions = spec.get("versions")?.as_array()?;
        let version = versions
            .iter()
            .find(|v| v.get("storage").and_then(Value::as_bool) == Some(true))
            .or_else(|| versions.first())?;
        let has_status = version.pointer("/subresources/status").is_some();
        let kind = names.get("kind")?.as_str()?.to_owned();
        Some(Self {
            group: spec.get("group")?.as_str()?.to_owned(),
            version: version.get("name")?.as_str()?.to_owned(),
            plural: names.get("plural")?.as_str()?.to_owned(),
            singular: names
                .get("singular")
                .and_then(Value::as_str)
                .map_or_else(|| kind.to_lowercase(), str::to_owned),
            kind,
            namespaced: spec.get("scope").and_then(Value::as_str) == Some("Namespaced"),
            short_names: names
                .get("shortNames")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_owned)
                        .collect()
                })
                .unwrap_or_default(),
            has_status,
            tracks_generation: true,
            returns_deleted_object: false,
        })
    }
}

/// Every built-in kind the simulator serves.
pub fn builtin_resources() -> Vec<ResourceType> {
    use ResourceType as R;
    vec![
        R::builtin(
            "",
            "v1",
            "Namespace",
            "namespaces",
            false,
            &["ns"],
            true,
            false,
        ),
        R::builtin("", "v1", "Node", "nodes", false, &["no"], true, false),
        R::builtin("", "v1", "Pod", "pods", true, &["po"], true, false),
        R::builtin(
            "",
            "v1",
            "PersistentVolume",
            "persistentvolumes",
            false,
            &["pv"],
            true,
            false,
        ),
        R::builtin(
            "",
            "v1",
            "PersistentVolumeClaim",
            "persistentvolumeclaims",
            true,
            &["pvc"],
            true,
            false,
        ),
        R::builtin("", "v1", "Event", "events", true, &["ev"], false, false),
        R::builtin("", "v1", "Secret", "secrets", true, &[], false, false),
        R::builtin(
            "",
            "v1",
            "ConfigMap",
            "configmaps",
            true,
            &["cm"],
            false,
            false,
        ),
        R::builtin("", "v1", "Service", "services", true, &["svc"], true, false),
        R::builtin(
            "",
            "v1",
            "ServiceAccount",
            "serviceaccounts",
            true,
            &["sa"],
            false,
            false,
        ),
        R::builtin(
            "apps",
            "v1",
            "StatefulSet",
            "statefulsets",
            true,
            &["sts"],
            true,
            true,
        ),
        R::builtin(
            "apps",
            "v1",
            "ControllerRevision",
            "controllerrevisions",
            true,
            &[],
            false,
            false,
        ),
        R::builtin(
            "apps",
            "v1",
            "Deployment",
            "deployments",
            true,
            &["deploy"],
            true,
            true,
        ),
        R::builtin(
            "apps",
            "v1",
            "ReplicaSet",
            "replicasets",
            true,
            &["rs"],
            true,
            true,
        ),
        R::builtin(
            "apps",
            "v1",
            "DaemonSet",
            "daemonsets",
            true,
            &["ds"],
            true,
            true,
        ),
        R::builtin("batch", "v1", "Job", "jobs", true, &[], true, true),
        R::builtin(
            "batch",
            "v1",
            "CronJob",
            "cronjobs",
            true,
            &["cj"],
            true,
            true,
        ),
        R::builtin(
            "policy",
            "v1",
            "PodDisruptionBudget",
            "poddisruptionbudgets",
            true,
            &["pdb"],
            true,
            true,
        ),
        R::builtin(
            "storage.k8s.io",
            "v1",
            "StorageClass",
            "storageclasses",
            false,
            &["sc"],
            false,
            false,
        ),
        R::builtin(
            "storage.k8s.io",
            "v1",
            "CSIDriver",
            "csidrivers",
            false,
            &[],
            false,
            false,
        ),
        R::builtin(
            "storage.k8s.io",
            "v1",
            "CSINode",
            "csinodes",
            false,
            &[],
            false,
            false,
        ),
        R::builtin(
            "storage.k8s.io",
            "v1",
            "VolumeAttachment",
            "volumeattachments",
            false,
            &[],
            true,
            false,
        ),
        R::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRole",
            "clusterroles",
            false,
            &[],
            false,
            false,
        ),
        R::builtin(
            "rbac.authorization.k8s.io",
            "v1",
            "ClusterRoleBinding",
            "clusterrolebindings",
            false,
            &[],
            false,
            false,
        ),
        R::builtin(
            "admissionregistration.k8s.io",
            "v1",
            "ValidatingWebhookConfiguration",
            "validatingwebhookconfigurations",
            false,
            &[],
            false,
            true,
        ),
        R::builtin(
            "apiextensions.k8s.io",
            "v1",
            "CustomResourceDefinition",
            "customresourcedefinitions",
            false,
            &["crd", "crds"],
            true,
            true,
        ),
    ]
}
