//! The PATCH flavours: JSON patch, JSON merge patch, and strategic merge patch.

use serde_json::{Map, Value};

use crate::api_error::ApiError;

/// Which patch format a request body uses, from its Content-Type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PatchKind {
    /// RFC 6902 (`application/json-patch+json`).
    Json,
    /// RFC 7386 (`application/merge-patch+json`).
    Merge,
    /// Kubernetes strategic merge (`application/strategic-merge-patch+json`).
    Strategic,
    /// Server-side apply (`application/apply-patch+yaml`).
    Apply,
}

impl PatchKind {
    /// The patch kind for a Content-Type header, or 415.
    pub fn from_content_type(content_type: &str) -> Result<Self, ApiError> {
        let media = content_type.split(';').next().unwrap_or_default().trim();
        match media {
            "application/json-patch+json" => Ok(Self::Json),
            "application/merge-patch+json" => Ok(Self::Merge),
            "application/strategic-merge-patch+json" => Ok(Self::Strategic),
            "application/apply-patch+yaml" | "application/apply-patch+cbor" => Ok(Self::Apply),
            other => Err(ApiError::unsupported_media_type(other)),
        }
    }
}

/// Applies an RFC 6902 patch; a failed `test` or a bad path is a 422.
pub fn apply_json_patch(target: &mut Value, patch: &Value) -> Result<(), String> {
    let patch: json_patch::Patch =
        serde_json::from_value(patch.clone()).map_err(|e| e.to_string())?;
    json_patch::patch(target, &patch).map_err(|e| e.to_string())
}

/// Applies an RFC 7386 merge patch: maps merge, `null` deletes, lists are replaced.
pub fn apply_merge_patch(target: &mut Value, patch: &Value) {
    json_patch::merge(target, patch);
}

/// The merge key of lists that strategic merge patch merges element-wise, by field name.
pub(crate) fn merge_key(field: &str) -> Option<&'static str> {
    Some(match field {
        "containers"
        | "initContainers"
        | "ephemeralContainers"
        | "volumes"
        | "env"
        | "imagePullSecrets" => "name",
        "volumeMounts" => "mountPath",
        "volumeDevices" => "devicePath",
        "ports" => "containerPort",
        "ownerReferences" => "uid",
        "conditions" => "type",
        "hostAliases" => "ip",
        "topologySpreadConstraints" => "topologyKey",
        _ => return None,
    })
}

/// Lists merged as sets of scalars.
pub(crate) fn is_set_list(field: &str) -> bool {
    field == "finalizers"
}

/// Applies a strategic merge patch: like a merge patch, except that keyed lists
/// (containers and volumes by name, ownerReferences by uid…) merge element-wise,
/// `metadata.finalizers` merges as a set, and the `$patch` /
/// `$deleteFromPrimitiveList/<field>` directives are honoured.
pub fn apply_strategic_merge_patch(target: &mut Value, patch: &Value) {
    let Value::Object(patch_map) = patch else {
        *target = patch.clone();
        return;
    };
    if patch_map.get("$patch").and_then(Value::as_str) == Some("replace") {
        let mut replacement = patch_map.clone();
        replacement.remove("$patch");
        *target = Value::Object(replacement);
        return;
    }
    if !target.is_object() {
        *target = Value::Object(Map::new());
    }
    let Value::Object(target_map) = target else {
        return;
    };
    for (key, value) in patch_map {
        if let Some(field) = key.strip_prefix("$deleteFromPrimitiveList/") {
            if let (Some(Value::Array(items)), Value::Array(remove)) =
                (target_map.get_mut(field), value)
            {
                items.retain(|i| !remove.contains(i));
            }
            continue;
        }
        if key.starts_with('$') {
            continue; // $setElementOrder, $retainKeys: ordering hints we do not need
        }
        match value {
            Value::Null => {
                target_map.remove(key);
            }
            Value::Array(items) if is_set_list(key) => {
                let entry = target_map
                    .entry(key.clone())
                    .or_insert_with(|| Value::Array(Vec::new()));
                if let Value::Array(existing) = entry {
                    for item in items {
                        if !existing.contains(item) {
                            existing.push(item.clone());
                        }
                    }
                } else {
                    *entry = value.clone();
                }
            }
            Value::Array(items) => match merge_key(key) {
                Some(merge_key) => merge_keyed_list(target_map, key, merge_key, items),
                None => {
                    target_map.insert(key.clone(), value.clone());
                }
            },
            Value::Object(_) => {
                let entry = target_map.entry(key.clone()).or_insert(Value::Null);
                apply_strategic_merge_patch(entry, value);
            }
            scalar => {
                target_map.insert(key.clone(), scalar.clone());
            }
        }
    }
}

fn merge_keyed_list(
    target: &mut Map<String, Value>,
    field: &str,
    merge_key: &str,
    items: &[Value],
) {
    let entry = target
        .entry(field.to_owned())
        .or_insert_with(|| Value::Array(Vec::new()));
    if !entry.is_array() {
        *entry = Value::Array(Vec::new());
    }
    let Value::Array(existing) = entry else {
        return;
    };
    for item in items {
        let key_value = item.get(merge_key);
        let position =
            key_value.and_then(|k| existing.iter().position(|e| e.get(merge_key) == Some(k)));
        let directive = item.get("$patch").and_then(Value::as_str);
        match (position, directive) {
            (Some(i), Some("delete")) => {
                existing.remove(i);
            }
            (None, Some("delete")) => {}
            (Some(i), _) => apply_strategic_merge_patch(&mut existing[i], item),
            (None, _) => {
                let mut new_item = Value::Null;
                apply_strategic_merge_patch(&mut new_item, item);
                existing.push(new_item);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn strategic_merge_merges_keyed_lists_and_finalizer_sets() {
        let mut pod = json!({
            "metadata": {"finalizers": ["a"], "labels": {"x": "1", "y": "2"}},
            "spec": {"containers": [{"name": "app", "image": "v1"}, {"name": "side", "image": "s"}]}
        });
        let patch = json!({
            "metadata": {"finalizers": ["b"], "labels": {"y": null}},
            "spec": {"containers": [{"name": "app", "image": "v2"}, {"name": "side", "$patch": "delete"}]}
        });
        apply_strategic_merge_patch(&mut pod, &patch);
        assert_eq!(pod["metadata"]["finalizers"], json!(["a", "b"]));
        assert_eq!(pod["metadata"]["labels"], json!({"x": "1"}));
        assert_eq!(
            pod["spec"]["containers"],
            json!([{"name": "app", "image": "v2"}])
        );
    }

    #[test]
    fn strategic_merge_delete_from_primitive_list_removes_finalizers() {
        let mut pvc = json!({"metadata": {"finalizers": ["kubernetes.io/pvc-protection", "x"]}});
        apply_strategic_merge_patch(
            &mut pvc,
            &json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["x"]}}),
        );
        assert_eq!(
            pvc["metadata"]["finalizers"],
            json!(["kubernetes.io/pvc-protection"])
        );
    }

    #[test]
    fn merge_patch_replaces_lists() {
        let mut pv = json!({"metadata": {"finalizers": ["a", "b"]}});
        apply_merge_patch(&mut pv, &json!({"metadata": {"finalizers": []}}));
        assert_eq!(pv["metadata"]["finalizers"], json!([]));
    }

    #[test]
    fn json_patch_test_op_guards_the_change() {
        let mut pv =
            json!({"metadata": {"uid": "u1"}, "spec": {"persistentVolumeReclaimPolicy": "Delete"}});
        let guarded = json!([
            {"op": "test", "path": "/metadata/uid", "value": "u2"},
            {"op": "replace", "path": "/spec/persistentVolumeReclaimPolicy", "value": "Retain"}
        ]);
        assert!(apply_json_patch(&mut pv, &guarded).is_err());
        assert_eq!(pv["spec"]["persistentVolumeReclaimPolicy"], "Delete");
    }
}
