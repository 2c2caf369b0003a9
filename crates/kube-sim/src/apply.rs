//! Server-side apply with per-manager field ownership, recorded in `metadata.managedFields`.
//!
//! A field set is a set of paths in the `fieldsV1` token form: `f:<field>` for a map
//! key, `k:{"name":"app"}` for an element of a list keyed by a merge key, `v:"x"` for an
//! element of a set list (finalizers). Other lists are owned atomically, as a leaf.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::{Map, Value, json};

use crate::api_error::ApiError;
use crate::patch;
use crate::resource::ResourceType;

/// One path of a field set, as `fieldsV1` tokens.
pub type FieldPath = Vec<String>;

/// A set of owned field paths.
pub type FieldSet = BTreeSet<FieldPath>;

/// Metadata fields the server owns; they never appear in a field set.
const STRIPPED_METADATA: &[&str] = &[
    "name",
    "namespace",
    "uid",
    "creationTimestamp",
    "selfLink",
    "generation",
    "managedFields",
    "resourceVersion",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
];

/// One `metadata.managedFields` entry.
#[derive(Debug, Clone, PartialEq)]
struct ManagedEntry {
    manager: String,
    operation: String,
    api_version: String,
    time: String,
    subresource: Option<String>,
    fields: FieldSet,
}

impl ManagedEntry {
    fn from_json(entry: &Value) -> Option<Self> {
        let text = |k: &str| entry.get(k).and_then(Value::as_str).map(str::to_owned);
        let mut fields = FieldSet::new();
        if let Some(tree) = entry.get("fieldsV1") {
            tree_to_set(tree, &mut Vec::new(), &mut fields);
        }
        Some(Self {
            manager: text("manager")?,
            operation: text("operation").unwrap_or_else(|| "Update".to_owned()),
            api_version: text("apiVersion").unwrap_or_default(),
            time: text("time").unwrap_or_default(),
            subresource: text("subresource"),
            fields,
        })
    }

    fn to_json(&self) -> Value {
        let mut entry = json!({
            "manager": self.manager,
            "operation": self.operation,
            "apiVersion": self.api_version,
            "time": self.time,
            "fieldsType": "FieldsV1",
            "fieldsV1": set_to_tree(&self.fields),
        });
        if let Some(sub) = &self.subresource {
            entry["subresource"] = json!(sub);
        }
        entry
    }

    fn is_apply_by(&self, manager: &str) -> bool {
        self.manager == manager && self.operation == "Apply" && self.subresource.is_none()
    }
}

fn tree_to_set(tree: &Value, prefix: &mut FieldPath, out: &mut FieldSet) {
    let Some(map) = tree.as_object() else { return };
    if map.is_empty() && !prefix.is_empty() {
        out.insert(prefix.clone());
        return;
    }
    for (token, child) in map {
        if token == "." {
            out.insert(prefix.clone());
            continue;
        }
        prefix.push(token.clone());
        tree_to_set(child, prefix, out);
        prefix.pop();
    }
}

fn set_to_tree(set: &FieldSet) -> Value {
    let mut root = Map::new();
    for path in set {
        let mut node = &mut root;
        for token in path {
            let child = node
                .entry(token.clone())
                .or_insert_with(|| Value::Object(Map::new()));
            let Value::Object(child) = child else { break };
            node = child;
        }
    }
    // A member with members below it carries a "." marker, as in the real format.
    fn mark(node: &mut Map<String, Value>, path: &mut FieldPath, set: &FieldSet) {
        for (token, child) in node.iter_mut() {
            let Value::Object(child) = child else {
                continue;
            };
            path.push(token.clone());
            if !child.is_empty() {
                mark(child, path, set);
                if set.contains(path) {
                    child.insert(".".to_owned(), json!({}));
                }
            }
            path.pop();
        }
    }
    mark(&mut root, &mut Vec::new(), set);
    Value::Object(root)
}

/// The key token of a keyed-list element: `k:{"name":"app"}`.
fn key_token(merge_key: &str, element: &Value) -> Option<String> {
    let key = element.get(merge_key)?;
    Some(format!("k:{}", json!({ merge_key: key })))
}

/// The field set an applied configuration claims.
pub fn fields_of(config: &Value) -> FieldSet {
    let mut set = FieldSet::new();
    let Some(map) = config.as_object() else {
        return set;
    };
    for (key, value) in map {
        if key == "apiVersion" || key == "kind" || key == "status" {
            continue;
        }
        if key == "metadata" {
            if let Some(meta) = value.as_object() {
                for (field, v) in meta {
                    if !STRIPPED_METADATA.contains(&field.as_str()) {
                        collect(
                            field,
                            v,
                            &mut vec!["f:metadata".to_owned(), format!("f:{field}")],
                            &mut set,
                        );
                    }
                }
            }
            continue;
        }
        collect(key, value, &mut vec![format!("f:{key}")], &mut set);
    }
    set
}

fn collect(field: &str, value: &Value, path: &mut FieldPath, out: &mut FieldSet) {
    match value {
        Value::Object(map) if !map.is_empty() => {
            for (key, child) in map {
                path.push(format!("f:{key}"));
                collect(key, child, path, out);
                path.pop();
            }
        }
        Value::Array(items) if patch::is_set_list(field) => {
            for item in items {
                path.push(format!("v:{item}"));
                out.insert(path.clone());
                path.pop();
            }
        }
        Value::Array(items) => match patch::merge_key(field) {
            Some(merge_key) if items.iter().all(|i| i.get(merge_key).is_some()) => {
                for item in items {
                    let Some(token) = key_token(merge_key, item) else {
                        continue;
                    };
                    path.push(token);
                    out.insert(path.clone());
                    if let Some(map) = item.as_object() {
                        for (key, child) in map {
                            path.push(format!("f:{key}"));
                            collect(key, child, path, out);
                            path.pop();
                        }
                    }
                    path.pop();
                }
            }
            _ => {
                out.insert(path.clone());
            }
        },
        _ => {
            out.insert(path.clone());
        }
    }
}

/// The value at a field path, if present.
fn value_at<'a>(object: &'a Value, path: &[String]) -> Option<&'a Value> {
    let mut current = object;
    for token in path {
        current = step(current, token)?;
    }
    Some(current)
}

fn step<'a>(value: &'a Value, token: &str) -> Option<&'a Value> {
    if let Some(field) = token.strip_prefix("f:") {
        return value.get(field);
    }
    let items = value.as_array()?;
    if let Some(key) = token.strip_prefix("k:") {
        let key: Map<String, Value> = serde_json::from_str(key).ok()?;
        return items
            .iter()
            .find(|i| key.iter().all(|(k, v)| i.get(k) == Some(v)));
    }
    let wanted: Value = serde_json::from_str(token.strip_prefix("v:")?).ok()?;
    items.iter().find(|i| **i == wanted)
}

/// Removes the field or list element a path names.
fn remove_at(object: &mut Value, path: &[String]) {
    let Some((last, parents)) = path.split_last() else {
        return;
    };
    let mut current = object;
    for token in parents {
        let next = if let Some(field) = token.strip_prefix("f:") {
            current.get_mut(field)
        } else {
            let position = current
                .as_array()
                .and_then(|items| element_position(items, token));
            match (position, current.as_array_mut()) {
                (Some(i), Some(items)) => items.get_mut(i),
                _ => None,
            }
        };
        match next {
            Some(next) => current = next,
            None => return,
        }
    }
    if let Some(field) = last.strip_prefix("f:") {
        if let Some(map) = current.as_object_mut() {
            map.remove(field);
        }
    } else if let Some(i) = current
        .as_array()
        .and_then(|items| element_position(items, last))
        && let Some(items) = current.as_array_mut()
    {
        items.remove(i);
    }
}

fn element_position(items: &[Value], token: &str) -> Option<usize> {
    let found = step(&Value::Array(items.to_vec()), token)?.clone();
    items.iter().position(|i| *i == found)
}

/// `.spec.containers[name="app"].image`, as conflict messages print paths.
pub fn path_string(path: &[String]) -> String {
    let mut text = String::new();
    for token in path {
        if let Some(field) = token.strip_prefix("f:") {
            text.push('.');
            text.push_str(field);
        } else if let Some(key) = token.strip_prefix("k:") {
            let pairs: Vec<String> = serde_json::from_str::<Map<String, Value>>(key)
                .map(|m| m.iter().map(|(k, v)| format!("{k}={v}")).collect())
                .unwrap_or_default();
            text.push_str(&format!("[{}]", pairs.join(",")));
        } else if let Some(value) = token.strip_prefix("v:") {
            text.push_str(&format!("[={value}]"));
        }
    }
    text
}

/// Whether a path names a leaf value (rather than a list element).
fn is_leaf(path: &[String]) -> bool {
    path.last().is_some_and(|t| t.starts_with("f:"))
}

/// Whether `set` holds `path` or anything below it.
fn owns_at_or_below(set: &FieldSet, path: &FieldPath) -> bool {
    set.range(path.clone()..)
        .next()
        .is_some_and(|p| p.starts_with(path))
}

/// What one apply asks for.
pub struct ApplyRequest<'a> {
    /// The `fieldManager` query parameter.
    pub manager: &'a str,
    /// `force=true`: take fields other managers own instead of failing.
    pub force: bool,
    /// The applied configuration.
    pub config: &'a Value,
    /// When the apply happens (`managedFields[].time`).
    pub now: &'a str,
}

/// Applies `request.config` to `live` (None when the object does not exist yet) and
/// returns the object to store, with its `metadata.managedFields` updated. A changed
/// field another manager owns is a 409 unless forced.
pub fn apply(
    rt: &ResourceType,
    name: &str,
    live: Option<&Value>,
    request: &ApplyRequest<'_>,
) -> Result<Value, ApiError> {
    let mut entries: Vec<ManagedEntry> = live
        .and_then(|l| l.pointer("/metadata/managedFields"))
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(ManagedEntry::from_json)
        .collect();
    let applied = fields_of(request.config);
    let previous = entries
        .iter()
        .find(|e| e.is_apply_by(request.manager))
        .map(|e| e.fields.clone())
        .unwrap_or_default();
    if let Some(live) = live {
        let mut conflicts: Vec<(String, FieldPath)> = Vec::new();
        for entry in entries.iter().filter(|e| !e.is_apply_by(request.manager)) {
            for path in applied.intersection(&entry.fields).filter(|p| is_leaf(p)) {
                if value_at(live, path) != value_at(request.config, path) {
                    conflicts.push((entry.manager.clone(), path.clone()));
                }
            }
        }
        if !conflicts.is_empty() {
            if !request.force {
                return Err(conflict_error(rt, name, &conflicts));
            }
            for entry in &mut entries {
                if !entry.is_apply_by(request.manager) {
                    for (_, path) in &conflicts {
                        entry.fields.remove(path);
                    }
                }
            }
        }
    }
    let mut object = live.cloned().unwrap_or_else(|| json!({}));
    // Fields this manager applied before and leaves out now go, unless someone else owns them.
    let mut released: Vec<&FieldPath> = previous
        .difference(&applied)
        .filter(|path| {
            !entries
                .iter()
                .filter(|e| !e.is_apply_by(request.manager))
                .any(|e| owns_at_or_below(&e.fields, path))
        })
        .collect();
    // Shallowest first; a path under one already removed went with it.
    released.sort_by_key(|p| p.len());
    let mut removed: Vec<&FieldPath> = Vec::new();
    for path in released {
        if !removed.iter().any(|r| path.starts_with(r)) {
            remove_at(&mut object, path);
            removed.push(path);
        }
    }
    let mut config = request.config.clone();
    if let Some(meta) = config.get_mut("metadata").and_then(Value::as_object_mut) {
        meta.remove("managedFields");
    }
    patch::apply_strategic_merge_patch(&mut object, &config);
    entries.retain(|e| !e.is_apply_by(request.manager));
    entries.push(ManagedEntry {
        manager: request.manager.to_owned(),
        operation: "Apply".to_owned(),
        api_version: rt.api_version(),
        time: request.now.to_owned(),
        subresource: None,
        fields: applied,
    });
    entries.retain(|e| !e.fields.is_empty());
    if !object.get("metadata").is_some_and(Value::is_object) {
        object["metadata"] = json!({});
    }
    object["metadata"]["managedFields"] =
        Value::Array(entries.iter().map(ManagedEntry::to_json).collect());
    Ok(object)
}

/// The 409 the real server sends for apply conflicts.
fn conflict_error(rt: &ResourceType, name: &str, conflicts: &[(String, FieldPath)]) -> ApiError {
    let message = if let [(manager, path)] = conflicts {
        format!(
            "Apply failed with 1 conflict: conflict with {manager:?}: {}",
            path_string(path)
        )
    } else {
        let mut by_manager: BTreeMap<&str, Vec<String>> = BTreeMap::new();
        for (manager, path) in conflicts {
            by_manager
                .entry(manager)
                .or_default()
                .push(path_string(path));
        }
        let mut lines = Vec::new();
        for (manager, paths) in by_manager {
            lines.push(format!("conflicts with {manager:?}:"));
            lines.extend(paths.iter().map(|p| format!("- {p}")));
        }
        format!(
            "Apply failed with {} conflicts: {}",
            conflicts.len(),
            lines.join("\n")
        )
    };
    let causes: Vec<Value> = conflicts
        .iter()
        .map(|(manager, path)| {
            json!({"reason": "FieldManagerConflict", "message": format!("conflict with {manager:?}"),
                   "field": path_string(path)})
        })
        .collect();
    ApiError {
        code: 409,
        reason: "Conflict",
        message,
        details: Some(
            json!({"name": name, "group": rt.group, "kind": rt.plural, "causes": causes}),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_sets_use_the_fields_v1_tokens_and_round_trip() {
        let config = json!({
            "apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": "p", "labels": {"a": "1"}, "finalizers": ["x"]},
            "spec": {"containers": [{"name": "app", "image": "i"}], "tolerations": [{"key": "k"}]}
        });
        let set = fields_of(&config);
        let tree = set_to_tree(&set);
        assert_eq!(
            tree,
            json!({
                "f:metadata": {"f:labels": {"f:a": {}}, "f:finalizers": {"v:\"x\"": {}}},
                "f:spec": {"f:containers": {"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}},
                           "f:tolerations": {}}
            })
        );
        let mut back = FieldSet::new();
        tree_to_set(&tree, &mut Vec::new(), &mut back);
        assert_eq!(back, set);
        assert_eq!(
            path_string(&[
                "f:spec".into(),
                "f:containers".into(),
                "k:{\"name\":\"app\"}".into(),
                "f:image".into()
            ]),
            ".spec.containers[name=\"app\"].image"
        );
    }
}
