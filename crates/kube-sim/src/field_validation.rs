//! Server-side field validation (`fieldValidation=Strict|Warn|Ignore`): unknown fields
//! of built-in kinds, found by a round trip through the kind's k8s-openapi type.

use k8s_openapi::api::{
    admissionregistration::v1 as admission, apps::v1 as apps, batch::v1 as batch, core::v1 as core,
    policy::v1 as policy, rbac::v1 as rbac, storage::v1 as storage,
};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1 as apiextensions;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::api_error::ApiError;
use crate::resource::ResourceType;

/// What to do with unknown fields in a request body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Directive {
    /// Refuse the request with a 400.
    Strict,
    /// Accept it and warn (the server default).
    Warn,
    /// Accept it silently.
    Ignore,
}

impl Directive {
    /// The directive of the `fieldValidation` query parameter; absent means `Warn`.
    pub fn from_query(value: Option<&str>) -> Result<Self, ApiError> {
        match value {
            None | Some("") | Some("Warn") => Ok(Self::Warn),
            Some("Strict") => Ok(Self::Strict),
            Some("Ignore") => Ok(Self::Ignore),
            Some(other) => Err(ApiError::bad_request(format!(
                "fieldValidation: Unsupported value: {other:?}: supported values: \"Ignore\", \"Strict\", \"Warn\""
            ))),
        }
    }
}

fn round_trip<T: DeserializeOwned + Serialize>(body: &Value) -> Option<Value> {
    let typed: T = serde_json::from_value(body.clone()).ok()?;
    serde_json::to_value(typed).ok()
}

/// The body as its typed built-in kind understands it; None for custom resources and
/// bodies that do not decode (those are left to the later steps).
fn typed_round_trip(rt: &ResourceType, body: &Value) -> Option<Value> {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "Namespace") => round_trip::<core::Namespace>(body),
        ("", "Node") => round_trip::<core::Node>(body),
        ("", "Pod") => round_trip::<core::Pod>(body),
        ("", "PersistentVolume") => round_trip::<core::PersistentVolume>(body),
        ("", "PersistentVolumeClaim") => round_trip::<core::PersistentVolumeClaim>(body),
        ("", "Event") => round_trip::<core::Event>(body),
        ("", "Secret") => round_trip::<core::Secret>(body),
        ("", "ConfigMap") => round_trip::<core::ConfigMap>(body),
        ("", "Service") => round_trip::<core::Service>(body),
        ("", "ServiceAccount") => round_trip::<core::ServiceAccount>(body),
        ("apps", "StatefulSet") => round_trip::<apps::StatefulSet>(body),
        ("apps", "ControllerRevision") => round_trip::<apps::ControllerRevision>(body),
        ("apps", "Deployment") => round_trip::<apps::Deployment>(body),
        ("apps", "ReplicaSet") => round_trip::<apps::ReplicaSet>(body),
        ("apps", "DaemonSet") => round_trip::<apps::DaemonSet>(body),
        ("batch", "Job") => round_trip::<batch::Job>(body),
        ("batch", "CronJob") => round_trip::<batch::CronJob>(body),
        ("policy", "PodDisruptionBudget") => round_trip::<policy::PodDisruptionBudget>(body),
        ("storage.k8s.io", "StorageClass") => round_trip::<storage::StorageClass>(body),
        ("storage.k8s.io", "CSIDriver") => round_trip::<storage::CSIDriver>(body),
        ("storage.k8s.io", "CSINode") => round_trip::<storage::CSINode>(body),
        ("storage.k8s.io", "VolumeAttachment") => round_trip::<storage::VolumeAttachment>(body),
        ("rbac.authorization.k8s.io", "ClusterRole") => round_trip::<rbac::ClusterRole>(body),
        ("rbac.authorization.k8s.io", "ClusterRoleBinding") => {
            round_trip::<rbac::ClusterRoleBinding>(body)
        }
        ("admissionregistration.k8s.io", "ValidatingWebhookConfiguration") => {
            round_trip::<admission::ValidatingWebhookConfiguration>(body)
        }
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            round_trip::<apiextensions::CustomResourceDefinition>(body)
        }
        _ => None,
    }
}

/// The paths (`spec.foo`, `spec.containers[0].bar`) of fields in `body` that the kind
/// does not declare. Patch directives (`$patch`, `$setElementOrder/…`) are not fields.
pub fn unknown_fields(rt: &ResourceType, body: &Value) -> Vec<String> {
    let mut body = body.clone();
    strip_directives(&mut body);
    // The type may lack these envelope fields or leave them out; they are always known.
    if let Some(map) = body.as_object_mut() {
        map.remove("apiVersion");
        map.remove("kind");
    }
    let Some(known) = typed_round_trip(rt, &body) else {
        return Vec::new();
    };
    let mut unknown = Vec::new();
    compare(&body, &known, "", &mut unknown);
    unknown
}

fn strip_directives(value: &mut Value) {
    match value {
        Value::Object(map) => {
            map.retain(|k, _| !k.starts_with('$'));
            map.values_mut().for_each(strip_directives);
        }
        Value::Array(items) => items.iter_mut().for_each(strip_directives),
        _ => {}
    }
}

fn compare(input: &Value, known: &Value, path: &str, unknown: &mut Vec<String>) {
    match (input, known) {
        (Value::Object(input), Value::Object(known)) => {
            for (key, value) in input {
                let child = if path.is_empty() {
                    key.clone()
                } else {
                    format!("{path}.{key}")
                };
                match known.get(key) {
                    Some(k) => compare(value, k, &child, unknown),
                    // A null of a declared optional field vanishes in the round trip too.
                    None if value.is_null() => {}
                    None => unknown.push(child),
                }
            }
        }
        (Value::Array(input), Value::Array(known)) => {
            for (i, (value, k)) in input.iter().zip(known).enumerate() {
                compare(value, k, &format!("{path}[{i}]"), unknown);
            }
        }
        _ => {}
    }
}

/// Paths of keys that occur twice in one JSON object of `body` (`serde_json` keeps the
/// last silently). Bodies that are not JSON (YAML) report none.
pub fn duplicate_fields(body: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut deserializer = serde_json::Deserializer::from_slice(body);
    let finder = DuplicateFinder {
        path: String::new(),
        found: &mut found,
    };
    if serde::de::DeserializeSeed::deserialize(finder, &mut deserializer).is_err() {
        return Vec::new();
    }
    found
}

/// Walks a JSON document, recording the path of every repeated key.
struct DuplicateFinder<'a> {
    path: String,
    found: &'a mut Vec<String>,
}

impl<'de> serde::de::DeserializeSeed<'de> for DuplicateFinder<'_> {
    type Value = ();

    fn deserialize<D: serde::Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> serde::de::Visitor<'de> for DuplicateFinder<'_> {
    type Value = ();

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut seen = std::collections::BTreeSet::new();
        while let Some(key) = map.next_key::<String>()? {
            let child = if self.path.is_empty() {
                key.clone()
            } else {
                format!("{}.{key}", self.path)
            };
            if !seen.insert(key) {
                self.found.push(child.clone());
            }
            map.next_value_seed(DuplicateFinder {
                path: child,
                found: &mut *self.found,
            })?;
        }
        Ok(())
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        let mut index = 0;
        while seq
            .next_element_seed(DuplicateFinder {
                path: format!("{}[{index}]", self.path),
                found: &mut *self.found,
            })?
            .is_some()
        {
            index += 1;
        }
        Ok(())
    }

    fn visit_bool<E>(self, _: bool) -> Result<(), E> {
        Ok(())
    }
    fn visit_i64<E>(self, _: i64) -> Result<(), E> {
        Ok(())
    }
    fn visit_u64<E>(self, _: u64) -> Result<(), E> {
        Ok(())
    }
    fn visit_f64<E>(self, _: f64) -> Result<(), E> {
        Ok(())
    }
    fn visit_str<E>(self, _: &str) -> Result<(), E> {
        Ok(())
    }
    fn visit_unit<E>(self) -> Result<(), E> {
        Ok(())
    }
}

/// What strict decoding found wrong with a body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Findings {
    /// Paths of undeclared fields.
    pub unknown: Vec<String>,
    /// Paths of keys given twice.
    pub duplicate: Vec<String>,
}

impl Findings {
    /// Whether nothing was found.
    pub fn is_empty(&self) -> bool {
        self.unknown.is_empty() && self.duplicate.is_empty()
    }

    /// The strict-decoding texts: `unknown field "spec.foo"`, `duplicate field "data.a"`.
    pub fn messages(&self) -> Vec<String> {
        let unknown = self.unknown.iter().map(|f| format!("unknown field {f:?}"));
        let duplicate = self
            .duplicate
            .iter()
            .map(|f| format!("duplicate field {f:?}"));
        unknown.chain(duplicate).collect()
    }
}

/// The 400 a `Strict` create or update gets: `ConfigMap in version "v1" cannot be
/// handled as a ConfigMap: strict decoding error: unknown field "dta"`.
pub fn strict_error(rt: &ResourceType, findings: &Findings) -> ApiError {
    ApiError::bad_request(format!(
        "{} in version {:?} cannot be handled as a {}: strict decoding error: {}",
        rt.kind,
        rt.version,
        rt.kind,
        findings.messages().join(", ")
    ))
}

/// The 400 an apply with undeclared fields gets, whatever the directive: server-side
/// apply cannot type them.
pub fn apply_error(rt: &ResourceType, namespace: &str, name: &str, unknown: &[String]) -> ApiError {
    let details: Vec<String> = unknown
        .iter()
        .map(|f| format!(".{f}: field not declared in schema"))
        .collect();
    // One error alone, or an `errors:` list with one indented line each, as upstream joins them.
    let details = match details.as_slice() {
        [one] => one.clone(),
        many => format!("errors:\n  {}", many.join("\n  ")),
    };
    ApiError::bad_request(format!(
        "failed to create typed patch object ({namespace}/{name}; {}/{}, Kind={}): {details}",
        rt.group, rt.version, rt.kind,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::resource::builtin_resources;
    use serde_json::json;

    fn kind(name: &str) -> ResourceType {
        let found = builtin_resources().into_iter().find(|r| r.kind == name);
        found.unwrap_or_else(|| panic!("no built-in kind {name}"))
    }

    #[test]
    fn unknown_fields_are_reported_by_path_and_nulls_of_known_fields_are_not() {
        let pod = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": null, "colour": "red"},
            "spec": {"containers": [{"name": "a", "image": "i", "imagee": "x"}], "foo": 1}
        });
        assert_eq!(
            unknown_fields(&kind("Pod"), &pod),
            vec!["metadata.colour", "spec.containers[0].imagee", "spec.foo"]
        );
        let config_map = json!({"metadata": {"name": "c"}, "data": {"a": "1"}, "$patch": "x"});
        assert!(unknown_fields(&kind("ConfigMap"), &config_map).is_empty());
    }

    #[test]
    fn repeated_keys_are_found_at_any_depth() {
        let body = br#"{"data": {"a": "1", "a": "2"}, "items": [{"x": 1, "x": 2}], "k": 1}"#;
        assert_eq!(duplicate_fields(body), vec!["data.a", "items[0].x"]);
        assert!(duplicate_fields(b"a: 1\na: 2\n").is_empty());
    }
}
