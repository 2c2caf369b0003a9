//! `meta.k8s.io/v1` Table responses (what `kubectl get` asks for): the columns and
//! cells upstream's printers define for the kinds a volume migration looks at.

use serde_json::{Value, json};

use crate::admission::DEFAULT_CLASS_ANNOTATION;
use crate::resource::ResourceType;

/// Whether the client asked for a Table (`Accept: application/json;as=Table;…`).
pub fn wanted(accept: &str) -> bool {
    accept
        .split(',')
        .next()
        .is_some_and(|first| first.contains("as=Table"))
}

/// What a row carries besides its cells (`includeObject`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IncludeObject {
    /// No object.
    None,
    /// `PartialObjectMetadata` (the default).
    Metadata,
    /// The whole object.
    Object,
}

impl IncludeObject {
    /// The `includeObject` query parameter.
    pub fn from_query(value: Option<&str>) -> Self {
        match value {
            Some("None") => Self::None,
            Some("Object") => Self::Object,
            _ => Self::Metadata,
        }
    }
}

/// One column: name, type, priority (1 = only with `-o wide`).
struct Column(&'static str, &'static str, u8);

fn columns(rt: &ResourceType) -> Vec<Column> {
    use Column as C;
    let name = C("Name", "string", 0);
    let age = C("Age", "string", 0);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "PersistentVolume") => vec![
            name,
            C("Capacity", "string", 0),
            C("Access Modes", "string", 0),
            C("Reclaim Policy", "string", 0),
            C("Status", "string", 0),
            C("Claim", "string", 0),
            C("StorageClass", "string", 0),
            C("VolumeAttributesClass", "string", 0),
            C("Reason", "string", 0),
            age,
            C("VolumeMode", "string", 1),
        ],
        ("", "PersistentVolumeClaim") => vec![
            name,
            C("Status", "string", 0),
            C("Volume", "string", 0),
            C("Capacity", "string", 0),
            C("Access Modes", "string", 0),
            C("StorageClass", "string", 0),
            C("VolumeAttributesClass", "string", 0),
            age,
            C("VolumeMode", "string", 1),
        ],
        ("", "Pod") => vec![
            name,
            C("Ready", "string", 0),
            C("Status", "string", 0),
            C("Restarts", "string", 0),
            age,
            C("IP", "string", 1),
            C("Node", "string", 1),
            C("Nominated Node", "string", 1),
            C("Readiness Gates", "string", 1),
        ],
        ("apps", "StatefulSet") => vec![
            name,
            C("Ready", "string", 0),
            age,
            C("Containers", "string", 1),
            C("Images", "string", 1),
        ],
        ("apps", "Deployment") => vec![
            name,
            C("Ready", "string", 0),
            C("Up-to-date", "integer", 0),
            C("Available", "integer", 0),
            age,
            C("Containers", "string", 1),
            C("Images", "string", 1),
            C("Selector", "string", 1),
        ],
        ("apps", "ReplicaSet") => vec![
            name,
            C("Desired", "integer", 0),
            C("Current", "integer", 0),
            C("Ready", "integer", 0),
            age,
            C("Containers", "string", 1),
            C("Images", "string", 1),
            C("Selector", "string", 1),
        ],
        ("storage.k8s.io", "StorageClass") => vec![
            name,
            C("Provisioner", "string", 0),
            C("ReclaimPolicy", "string", 0),
            C("VolumeBindingMode", "string", 0),
            C("AllowVolumeExpansion", "string", 0),
            age,
        ],
        ("storage.k8s.io", "VolumeAttachment") => vec![
            name,
            C("Attacher", "string", 0),
            C("PV", "string", 0),
            C("Node", "string", 0),
            C("Attached", "boolean", 0),
            age,
        ],
        ("storage.k8s.io", "CSINode") => vec![name, C("Drivers", "integer", 0), age],
        ("", "Node") => vec![
            name,
            C("Status", "string", 0),
            C("Roles", "string", 0),
            age,
            C("Version", "string", 0),
            C("Internal-IP", "string", 1),
            C("External-IP", "string", 1),
            C("OS-Image", "string", 1),
            C("Kernel-Version", "string", 1),
            C("Container-Runtime", "string", 1),
        ],
        ("", "Namespace") => vec![name, C("Status", "string", 0), age],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![name, C("Created At", "date", 0)]
        }
        ("", "Event") => vec![
            C("Last Seen", "string", 0),
            C("Type", "string", 0),
            C("Reason", "string", 0),
            C("Object", "string", 0),
            C("Subobject", "string", 1),
            C("Source", "string", 1),
            C("Message", "string", 0),
            C("First Seen", "string", 1),
            C("Count", "integer", 1),
            C("Name", "string", 1),
        ],
        _ => vec![name, age],
    }
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

fn number(object: &Value, pointer: &str) -> i64 {
    object.pointer(pointer).and_then(Value::as_i64).unwrap_or(0)
}

fn or_none(value: &str) -> Value {
    json!(if value.is_empty() { "<none>" } else { value })
}

/// `duration.HumanDuration`: `45s`, `3m20s`, `5h10m`, `3d4h`, `2y10d`.
pub fn human_duration(seconds: i64) -> String {
    if seconds < -1 {
        return "<invalid>".to_owned();
    }
    if seconds < 0 {
        return "0s".to_owned();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    let with = |big: i64, unit: &str, small: i64, small_unit: &str| {
        if small == 0 {
            format!("{big}{unit}")
        } else {
            format!("{big}{unit}{small}{small_unit}")
        }
    };
    if minutes < 10 {
        return with(minutes, "m", seconds % 60, "s");
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = seconds / 3600;
    if hours < 8 {
        return with(hours, "h", minutes % 60, "m");
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        return with(hours / 24, "d", hours % 24, "h");
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        return with(hours / 24 / 365, "y", (hours / 24) % 365, "d");
    }
    format!("{}y", hours / 24 / 365)
}

fn age_of(timestamp: &str, now: jiff::Timestamp) -> String {
    match timestamp.parse::<jiff::Timestamp>() {
        Ok(then) => human_duration(now.as_second() - then.as_second()),
        Err(_) => "<unknown>".to_owned(),
    }
}

fn access_modes(modes: Option<&Value>) -> String {
    let short: Vec<&str> = modes
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .map(|m| match m {
            "ReadWriteOnce" => "RWO",
            "ReadOnlyMany" => "ROX",
            "ReadWriteMany" => "RWX",
            "ReadWriteOncePod" => "RWOP",
            other => other,
        })
        .collect();
    short.join(",")
}

fn containers_and_images(object: &Value, pointer: &str) -> (Value, Value) {
    let containers: Vec<&Value> = object
        .pointer(pointer)
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let names: Vec<&str> = containers.iter().map(|c| text(c, "/name")).collect();
    let images: Vec<&str> = containers.iter().map(|c| text(c, "/image")).collect();
    (json!(names.join(",")), json!(images.join(",")))
}

fn selector_text(object: &Value) -> Value {
    let labels = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object);
    let terms: Vec<String> = labels
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    or_none(&terms.join(","))
}

fn pod_status(pod: &Value) -> String {
    if pod.pointer("/metadata/deletionTimestamp").is_some() {
        return "Terminating".to_owned();
    }
    let mut reason = text(pod, "/status/reason").to_owned();
    if reason.is_empty() {
        reason = text(pod, "/status/phase").to_owned();
    }
    for status in pod
        .pointer("/status/containerStatuses")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
    {
        let waiting = text(status, "/state/waiting/reason");
        let terminated = text(status, "/state/terminated/reason");
        if !waiting.is_empty() {
            reason = waiting.to_owned();
        } else if !terminated.is_empty() {
            reason = terminated.to_owned();
        }
    }
    reason
}

fn cells(rt: &ResourceType, object: &Value, now: jiff::Timestamp) -> Vec<Value> {
    let name = json!(text(object, "/metadata/name"));
    let age = json!(age_of(text(object, "/metadata/creationTimestamp"), now));
    let terminating = object.pointer("/metadata/deletionTimestamp").is_some();
    let phase = |o: &Value| {
        if terminating {
            "Terminating".to_owned()
        } else {
            text(o, "/status/phase").to_owned()
        }
    };
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "PersistentVolume") => {
            let claim = match object.pointer("/spec/claimRef") {
                Some(r) => format!("{}/{}", text(r, "/namespace"), text(r, "/name")),
                None => String::new(),
            };
            let attributes = text(object, "/spec/volumeAttributesClassName");
            vec![
                name,
                json!(text(object, "/spec/capacity/storage")),
                json!(access_modes(object.pointer("/spec/accessModes"))),
                json!(text(object, "/spec/persistentVolumeReclaimPolicy")),
                json!(phase(object)),
                json!(claim),
                json!(text(object, "/spec/storageClassName")),
                json!(if attributes.is_empty() {
                    "<unset>"
                } else {
                    attributes
                }),
                json!(text(object, "/status/reason")),
                age,
                json!(text(object, "/spec/volumeMode")),
            ]
        }
        ("", "PersistentVolumeClaim") => {
            let bound = text(object, "/status/phase") == "Bound";
            let attributes = text(object, "/spec/volumeAttributesClassName");
            vec![
                name,
                json!(phase(object)),
                json!(text(object, "/spec/volumeName")),
                json!(if bound {
                    text(object, "/status/capacity/storage")
                } else {
                    ""
                }),
                json!(if bound {
                    access_modes(object.pointer("/status/accessModes"))
                } else {
                    String::new()
                }),
                json!(text(object, "/spec/storageClassName")),
                json!(if attributes.is_empty() {
                    "<unset>"
                } else {
                    attributes
                }),
                age,
                json!(text(object, "/spec/volumeMode")),
            ]
        }
        ("", "Pod") => {
            let total = object
                .pointer("/spec/containers")
                .and_then(Value::as_array)
                .map_or(0, Vec::len);
            let statuses: Vec<&Value> = object
                .pointer("/status/containerStatuses")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .collect();
            let ready = statuses
                .iter()
                .filter(|s| s.get("ready").and_then(Value::as_bool) == Some(true))
                .count();
            let restarts: i64 = statuses.iter().map(|s| number(s, "/restartCount")).sum();
            vec![
                name,
                json!(format!("{ready}/{total}")),
                json!(pod_status(object)),
                json!(restarts.to_string()),
                age,
                or_none(text(object, "/status/podIP")),
                or_none(text(object, "/spec/nodeName")),
                or_none(text(object, "/status/nominatedNodeName")),
                json!("<none>"),
            ]
        }
        ("apps", "StatefulSet") => {
            let (containers, images) =
                containers_and_images(object, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    number(object, "/status/readyReplicas"),
                    number(object, "/spec/replicas")
                )),
                age,
                containers,
                images,
            ]
        }
        ("apps", "Deployment") => {
            let (containers, images) =
                containers_and_images(object, "/spec/template/spec/containers");
            vec![
                name,
                json!(format!(
                    "{}/{}",
                    number(object, "/status/readyReplicas"),
                    number(object, "/spec/replicas")
                )),
                json!(number(object, "/status/updatedReplicas")),
                json!(number(object, "/status/availableReplicas")),
                age,
                containers,
                images,
                selector_text(object),
            ]
        }
        ("apps", "ReplicaSet") => {
            let (containers, images) =
                containers_and_images(object, "/spec/template/spec/containers");
            vec![
                name,
                json!(number(object, "/spec/replicas")),
                json!(number(object, "/status/replicas")),
                json!(number(object, "/status/readyReplicas")),
                age,
                containers,
                images,
                selector_text(object),
            ]
        }
        ("storage.k8s.io", "StorageClass") => {
            let default = object
                .pointer("/metadata/annotations")
                .and_then(|a| a.get(DEFAULT_CLASS_ANNOTATION))
                .and_then(Value::as_str)
                == Some("true");
            let shown = if default {
                json!(format!("{} (default)", text(object, "/metadata/name")))
            } else {
                name
            };
            vec![
                shown,
                json!(text(object, "/provisioner")),
                json!(text(object, "/reclaimPolicy")),
                json!(text(object, "/volumeBindingMode")),
                json!(
                    object
                        .get("allowVolumeExpansion")
                        .and_then(Value::as_bool)
                        .unwrap_or(false)
                        .to_string()
                ),
                age,
            ]
        }
        ("storage.k8s.io", "VolumeAttachment") => vec![
            name,
            json!(text(object, "/spec/attacher")),
            json!(text(object, "/spec/source/persistentVolumeName")),
            json!(text(object, "/spec/nodeName")),
            json!(
                object
                    .pointer("/status/attached")
                    .and_then(Value::as_bool)
                    .unwrap_or(false)
            ),
            age,
        ],
        ("storage.k8s.io", "CSINode") => vec![
            name,
            json!(
                object
                    .pointer("/spec/drivers")
                    .and_then(Value::as_array)
                    .map_or(0, Vec::len)
            ),
            age,
        ],
        ("", "Node") => node_cells(object, name, age),
        ("", "Namespace") => vec![name, json!(text(object, "/status/phase")), age],
        ("apiextensions.k8s.io", "CustomResourceDefinition") => {
            vec![name, json!(text(object, "/metadata/creationTimestamp"))]
        }
        ("", "Event") => {
            let last = [
                "/lastTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .map(|p| text(object, p))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
            let first = [
                "/firstTimestamp",
                "/eventTime",
                "/metadata/creationTimestamp",
            ]
            .iter()
            .map(|p| text(object, p))
            .find(|t| !t.is_empty())
            .unwrap_or_default();
            let involved = format!(
                "{}/{}",
                text(object, "/involvedObject/kind").to_lowercase(),
                text(object, "/involvedObject/name")
            );
            let source = [
                text(object, "/source/component"),
                text(object, "/source/host"),
            ]
            .iter()
            .filter(|s| !s.is_empty())
            .copied()
            .collect::<Vec<_>>()
            .join(", ");
            vec![
                json!(age_of(last, now)),
                json!(text(object, "/type")),
                json!(text(object, "/reason")),
                json!(involved),
                json!(text(object, "/involvedObject/fieldPath")),
                json!(source),
                json!(text(object, "/message").trim()),
                json!(age_of(first, now)),
                json!(number(object, "/count").max(1)),
                name,
            ]
        }
        _ => vec![name, age],
    }
}

fn node_cells(node: &Value, name: Value, age: Value) -> Vec<Value> {
    let ready = node
        .pointer("/status/conditions")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .find(|c| text(c, "/type") == "Ready")
        .map(|c| text(c, "/status"));
    let mut status = match ready {
        Some("True") => "Ready".to_owned(),
        Some("False") => "NotReady".to_owned(),
        _ => "Unknown".to_owned(),
    };
    if node.pointer("/spec/unschedulable").and_then(Value::as_bool) == Some(true) {
        status.push_str(",SchedulingDisabled");
    }
    let roles: Vec<&str> = node
        .pointer("/metadata/labels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .filter_map(|(k, _)| k.strip_prefix("node-role.kubernetes.io/"))
        .collect();
    let address = |kind: &str| {
        node.pointer("/status/addresses")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|a| text(a, "/type") == kind)
            .map_or("", |a| text(a, "/address"))
    };
    vec![
        name,
        json!(status),
        or_none(&roles.join(",")),
        age,
        json!(text(node, "/status/nodeInfo/kubeletVersion")),
        or_none(address("InternalIP")),
        or_none(address("ExternalIP")),
        json!(or_unknown(text(node, "/status/nodeInfo/osImage"))),
        json!(or_unknown(text(node, "/status/nodeInfo/kernelVersion"))),
        json!(or_unknown(text(
            node,
            "/status/nodeInfo/containerRuntimeVersion"
        ))),
    ]
}

fn or_unknown(value: &str) -> &str {
    if value.is_empty() { "<unknown>" } else { value }
}

fn row(rt: &ResourceType, object: &Value, include: IncludeObject, now: jiff::Timestamp) -> Value {
    let mut row = json!({"cells": cells(rt, object, now)});
    match include {
        IncludeObject::None => {}
        IncludeObject::Metadata => {
            row["object"] = json!({"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1",
                                   "metadata": object.get("metadata").cloned().unwrap_or(Value::Null)});
        }
        IncludeObject::Object => row["object"] = object.clone(),
    }
    row
}

/// A Table of `objects`, with `metadata` (resourceVersion, continue) of the list.
pub fn table(
    rt: &ResourceType,
    objects: &[Value],
    metadata: Value,
    include: IncludeObject,
) -> Value {
    let now = jiff::Timestamp::now();
    let definitions: Vec<Value> = columns(rt)
        .iter()
        .map(|Column(name, kind, priority)| {
            let format = if *name == "Name" { "name" } else { "" };
            json!({"name": name, "type": kind, "format": format, "description": "", "priority": priority})
        })
        .collect();
    let rows: Vec<Value> = objects.iter().map(|o| row(rt, o, include, now)).collect();
    json!({"kind": "Table", "apiVersion": "meta.k8s.io/v1", "metadata": metadata,
           "columnDefinitions": definitions, "rows": rows})
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_durations_read_like_kubectl() {
        let cases = [
            (5, "5s"),
            (119, "119s"),
            (200, "3m20s"),
            (600, "10m"),
            (3 * 3600 + 600, "3h10m"),
            (30 * 3600, "30h"),
            (3 * 86400 + 4 * 3600, "3d4h"),
            (40 * 86400, "40d"),
            (3 * 365 * 86400 + 10 * 86400, "3y10d"),
        ];
        for (seconds, want) in cases {
            assert_eq!(human_duration(seconds), want, "{seconds}");
        }
    }
}
