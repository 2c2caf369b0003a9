//! Create-time defaults and the validation rules that guard volumes: what the real
//! API server's admission plugins and `Validate*Update` functions enforce.

use serde_json::{Value, json};

use crate::api_error::{ApiError, Cause};
use crate::resource::ResourceType;

/// Every field of a PV spec that is a volume source.
pub const PV_SOURCE_FIELDS: &[&str] = &[
    "awsElasticBlockStore",
    "azureDisk",
    "azureFile",
    "cephfs",
    "cinder",
    "csi",
    "fc",
    "flexVolume",
    "flocker",
    "gcePersistentDisk",
    "glusterfs",
    "hostPath",
    "iscsi",
    "local",
    "nfs",
    "photonPersistentDisk",
    "portworxVolume",
    "quobyte",
    "rbd",
    "scaleIO",
    "storageos",
    "vsphereVolume",
];

/// Annotation that marks the default StorageClass.
pub const DEFAULT_CLASS_ANNOTATION: &str = "storageclass.kubernetes.io/is-default-class";
/// Finalizer the StorageObjectInUseProtection admission plugin puts on PVCs.
pub const PVC_PROTECTION: &str = "kubernetes.io/pvc-protection";
/// Finalizer the StorageObjectInUseProtection admission plugin puts on PVs.
pub const PV_PROTECTION: &str = "kubernetes.io/pv-protection";

const STS_MUTABLE_FIELDS: &[&str] = &[
    "replicas",
    "ordinals",
    "template",
    "updateStrategy",
    "revisionHistoryLimit",
    "persistentVolumeClaimRetentionPolicy",
    "minReadySeconds",
];

fn set_default(object: &mut Value, pointer: &str, value: Value) {
    if object.pointer(pointer).is_none_or(Value::is_null) {
        let mut parts: Vec<&str> = pointer.split('/').skip(1).collect();
        let Some(last) = parts.pop() else { return };
        let mut current = object;
        for part in parts {
            if !current.get(part).is_some_and(Value::is_object) {
                current[part] = json!({});
            }
            current = &mut current[part];
        }
        current[last] = value;
    }
}

fn add_finalizer(object: &mut Value, finalizer: &str) {
    let finalizers = &mut object["metadata"]["finalizers"];
    if !finalizers.is_array() {
        *finalizers = json!([]);
    }
    if let Value::Array(list) = finalizers
        && !list.iter().any(|f| f == finalizer)
    {
        list.push(json!(finalizer));
    }
}

/// Fills in create-time defaults and admission-plugin changes. `default_class` is the
/// name of the StorageClass annotated as default, if any.
pub fn default_on_create(rt: &ResourceType, object: &mut Value, default_class: Option<&str>) {
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "PersistentVolume") => {
            set_default(
                object,
                "/spec/persistentVolumeReclaimPolicy",
                json!("Retain"),
            );
            set_default(object, "/spec/volumeMode", json!("Filesystem"));
            set_default(object, "/status/phase", json!("Pending"));
            add_finalizer(object, PV_PROTECTION);
        }
        ("", "PersistentVolumeClaim") => {
            set_default(object, "/spec/volumeMode", json!("Filesystem"));
            set_default(object, "/status/phase", json!("Pending"));
            if let Some(class) = default_class
                && object
                    .pointer("/spec/storageClassName")
                    .is_none_or(Value::is_null)
            {
                object["spec"]["storageClassName"] = json!(class);
            }
            add_finalizer(object, PVC_PROTECTION);
        }
        ("", "Pod") => {
            set_default(object, "/status/phase", json!("Pending"));
            set_default(object, "/spec/terminationGracePeriodSeconds", json!(30));
        }
        ("", "Namespace") => set_default(object, "/status/phase", json!("Active")),
        ("apps", "StatefulSet") => {
            set_default(object, "/spec/replicas", json!(1));
            set_default(object, "/spec/podManagementPolicy", json!("OrderedReady"));
            set_default(object, "/spec/revisionHistoryLimit", json!(10));
            set_default(
                object,
                "/spec/updateStrategy",
                json!({"type": "RollingUpdate", "rollingUpdate": {"partition": 0}}),
            );
            set_default(
                object,
                "/spec/persistentVolumeClaimRetentionPolicy",
                json!({"whenDeleted": "Retain", "whenScaled": "Retain"}),
            );
        }
        ("apps", "Deployment") | ("apps", "ReplicaSet") => {
            set_default(object, "/spec/replicas", json!(1))
        }
        ("storage.k8s.io", "StorageClass") => {
            set_default(object, "/reclaimPolicy", json!("Delete"));
            set_default(object, "/volumeBindingMode", json!("Immediate"));
        }
        _ => {}
    }
}

/// What the real registry's `PrepareForCreate` does to status: a client cannot create
/// an object with a status for kinds with a status subresource (nodes excepted, their
/// kubelet registers them with one); create-time defaults then set the initial phase.
pub fn reset_status_on_create(rt: &ResourceType, object: &mut Value) {
    if rt.has_status
        && !(rt.group.is_empty() && rt.kind == "Node")
        && let Some(map) = object.as_object_mut()
    {
        map.remove("status");
    }
}

fn sources_of(spec: Option<&Value>) -> Vec<&'static str> {
    PV_SOURCE_FIELDS
        .iter()
        .copied()
        .filter(|f| spec.and_then(|s| s.get(*f)).is_some_and(|v| !v.is_null()))
        .collect()
}

fn object_name(object: &Value) -> &str {
    object
        .pointer("/metadata/name")
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Validates an object about to be created.
pub fn validate_create(rt: &ResourceType, object: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    let spec = object.get("spec");
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "PersistentVolume") => {
            match sources_of(spec).len() {
                0 => causes.push(Cause::required_because(
                    "spec",
                    "must specify a volume type",
                )),
                1 => {}
                _ => causes.push(Cause::forbidden(
                    "spec",
                    "may not specify more than 1 volume type",
                )),
            }
            if spec
                .and_then(|s| s.get("accessModes"))
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                causes.push(Cause::required("spec.accessModes"));
            }
            if spec.and_then(|s| s.pointer("/capacity/storage")).is_none() {
                causes.push(Cause::required("spec.capacity"));
            }
            if let Some(csi) = spec.and_then(|s| s.get("csi")) {
                if csi
                    .get("driver")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required("spec.csi.driver"));
                }
                if csi
                    .get("volumeHandle")
                    .and_then(Value::as_str)
                    .is_none_or(str::is_empty)
                {
                    causes.push(Cause::required("spec.csi.volumeHandle"));
                }
            }
            validate_enum(
                spec,
                "persistentVolumeReclaimPolicy",
                &["Delete", "Recycle", "Retain"],
                &mut causes,
            );
            validate_enum(spec, "volumeMode", &["Block", "Filesystem"], &mut causes);
        }
        ("", "PersistentVolumeClaim") => {
            if spec
                .and_then(|s| s.get("accessModes"))
                .and_then(Value::as_array)
                .is_none_or(Vec::is_empty)
            {
                causes.push(Cause::required("spec.accessModes"));
            }
            if spec
                .and_then(|s| s.pointer("/resources/requests/storage"))
                .is_none()
            {
                causes.push(Cause::required("spec.resources[storage]"));
            }
            validate_enum(spec, "volumeMode", &["Block", "Filesystem"], &mut causes);
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, object_name(object), causes))
    }
}

fn validate_enum(spec: Option<&Value>, field: &str, allowed: &[&str], causes: &mut Vec<Cause>) {
    if let Some(value) = spec.and_then(|s| s.get(field)).and_then(Value::as_str)
        && !allowed.contains(&value)
    {
        let quoted: Vec<String> = allowed.iter().map(|a| format!("{a:?}")).collect();
        causes.push(Cause {
            reason: "FieldValueNotSupported",
            field: format!("spec.{field}"),
            message: format!(
                "Unsupported value: {value:?}: supported values: {}",
                quoted.join(", ")
            ),
        });
    }
}

fn quantity_bytes(value: &Value) -> Option<f64> {
    let text = value
        .as_str()
        .map(str::to_owned)
        .or_else(|| value.as_f64().map(|n| n.to_string()))?;
    let split = text
        .find(|c: char| c.is_ascii_alphabetic())
        .unwrap_or(text.len());
    let (number, suffix) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let factor = match suffix {
        "" => 1.0,
        "Ki" => 1024.0,
        "Mi" => 1024f64.powi(2),
        "Gi" => 1024f64.powi(3),
        "Ti" => 1024f64.powi(4),
        "Pi" => 1024f64.powi(5),
        "k" => 1e3,
        "M" => 1e6,
        "G" => 1e9,
        "T" => 1e12,
        "P" => 1e15,
        "m" => 1e-3,
        _ => return None,
    };
    Some(number * factor)
}

/// Parses a Kubernetes quantity (`10Gi`, `500M`) into bytes.
pub fn parse_quantity(value: &Value) -> Option<f64> {
    quantity_bytes(value)
}

/// Validates an update of `old` into `new` (both full objects).
pub fn validate_update(rt: &ResourceType, old: &Value, new: &Value) -> Result<(), ApiError> {
    let mut causes = Vec::new();
    if old.pointer("/metadata/deletionTimestamp").is_some() {
        let old_finalizers = old
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array);
        let added: Vec<String> = new
            .pointer("/metadata/finalizers")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|f| old_finalizers.is_none_or(|o| !o.contains(f)))
            .filter_map(|f| f.as_str().map(|s| format!("{s:?}")))
            .collect();
        if !added.is_empty() {
            causes.push(Cause::forbidden(
                "metadata.finalizers",
                &format!(
                    "no new finalizers can be added if the object is being deleted, found new finalizers []string{{{}}}",
                    added.join(", ")
                ),
            ));
        }
    }
    let (old_spec, new_spec) = (old.get("spec"), new.get("spec"));
    let field =
        |spec: Option<&Value>, f: &str| spec.and_then(|s| s.get(f)).cloned().unwrap_or(Value::Null);
    match (rt.group.as_str(), rt.kind.as_str()) {
        ("", "PersistentVolume") => {
            let old_sources: Vec<Value> = PV_SOURCE_FIELDS
                .iter()
                .map(|f| field(old_spec, f))
                .collect();
            let new_sources: Vec<Value> = PV_SOURCE_FIELDS
                .iter()
                .map(|f| field(new_spec, f))
                .collect();
            if old_sources != new_sources {
                causes.push(Cause::forbidden(
                    "spec.persistentvolumesource",
                    "spec.persistentvolumesource is immutable after creation",
                ));
            }
            if field(old_spec, "volumeMode") != field(new_spec, "volumeMode") {
                causes.push(Cause::invalid(
                    "volumeMode",
                    &display_value(&field(new_spec, "volumeMode")),
                    "field is immutable",
                ));
            }
            let old_affinity = field(old_spec, "nodeAffinity");
            if !old_affinity.is_null() && old_affinity != field(new_spec, "nodeAffinity") {
                causes.push(Cause::invalid(
                    "spec.nodeAffinity",
                    "",
                    "field is immutable",
                ));
            }
        }
        ("", "PersistentVolumeClaim") => validate_claim_update(old, new, &mut causes),
        ("", "Pod") if mutable_pod_spec_removed(old_spec) != mutable_pod_spec_removed(new_spec) => {
            causes.push(Cause::forbidden("spec", POD_UPDATE_FORBIDDEN));
        }
        ("apps", "StatefulSet") => {
            let strip = |spec: Option<&Value>| {
                let mut spec = spec.cloned().unwrap_or(Value::Null);
                if let Value::Object(map) = &mut spec {
                    for f in STS_MUTABLE_FIELDS {
                        map.remove(*f);
                    }
                }
                spec
            };
            if strip(old_spec) != strip(new_spec) {
                causes.push(Cause::forbidden(
                    "spec",
                    "updates to statefulset spec for fields other than 'replicas', 'ordinals', 'template', \
                     'updateStrategy', 'revisionHistoryLimit', 'persistentVolumeClaimRetentionPolicy' and \
                     'minReadySeconds' are forbidden",
                ));
            }
        }
        _ => {}
    }
    if causes.is_empty() {
        Ok(())
    } else {
        Err(ApiError::invalid(rt, object_name(new), causes))
    }
}

/// The beta annotation that named a claim's class before `spec.storageClassName`.
const BETA_CLASS_ANNOTATION: &str = "volume.beta.kubernetes.io/storage-class";

/// The Go field order of `PersistentVolumeClaimSpec`, for the diff in the immutability error.
const CLAIM_SPEC_FIELDS: &[(&str, &str)] = &[
    ("accessModes", "AccessModes"),
    ("selector", "Selector"),
    ("resources", "Resources"),
    ("volumeName", "VolumeName"),
    ("storageClassName", "StorageClassName"),
    ("volumeMode", "VolumeMode"),
    ("dataSource", "DataSource"),
    ("dataSourceRef", "DataSourceRef"),
    ("volumeAttributesClassName", "VolumeAttributesClassName"),
];

fn validate_claim_update(old: &Value, new: &Value, causes: &mut Vec<Cause>) {
    let mut old_spec = old.get("spec").cloned().unwrap_or(Value::Null);
    let mut new_spec = new.get("spec").cloned().unwrap_or(Value::Null);
    let bound = new.pointer("/status/phase").and_then(Value::as_str) == Some("Bound");
    let old_size = old_spec
        .pointer("/resources/requests/storage")
        .and_then(parse_quantity);
    let new_size = new_spec
        .pointer("/resources/requests/storage")
        .and_then(parse_quantity);
    // As upstream: volumeName may be set once (from ""), storageClassName only from
    // unset (nil, not "") and only to the class a beta annotation named, if any.
    if old_spec
        .get("volumeName")
        .is_none_or(|v| v.is_null() || v == "")
        && let Some(value) = new_spec.get("volumeName").cloned()
    {
        old_spec["volumeName"] = value;
    }
    let annotation = old
        .pointer(&format!(
            "/metadata/annotations/{}",
            BETA_CLASS_ANNOTATION.replace('/', "~1")
        ))
        .and_then(Value::as_str);
    if old_spec.get("storageClassName").is_none_or(Value::is_null)
        && let Some(class) = new_spec
            .get("storageClassName")
            .filter(|c| !c.is_null())
            .cloned()
        && annotation.is_none_or(|a| class == a)
    {
        old_spec["storageClassName"] = class;
    }
    if bound
        && let Some(storage) = old_spec.pointer("/resources/requests/storage").cloned()
        && new_spec.pointer("/resources/requests").is_some()
    {
        new_spec["resources"]["requests"]["storage"] = storage;
    }
    for spec in [&mut old_spec, &mut new_spec] {
        if let Some(map) = spec.as_object_mut() {
            map.remove("volumeAttributesClassName");
        }
    }
    if old_spec != new_spec {
        causes.push(Cause::forbidden(
            "spec",
            &format!(
                "spec is immutable after creation except resources.requests and volumeAttributesClassName for bound claims\n{}",
                claim_spec_diff(&old_spec, &new_spec)
            ),
        ));
    }
    if let (Some(before), Some(after)) = (old_size, new_size)
        && after < before
    {
        causes.push(Cause::forbidden(
            "spec.resources.requests.storage",
            "field can not be less than previous value",
        ));
    }
    let (old_mode, new_mode) = (
        field_is_str_or_null(old.get("spec").unwrap_or(&Value::Null), "volumeMode"),
        field_is_str_or_null(new.get("spec").unwrap_or(&Value::Null), "volumeMode"),
    );
    if old_mode != new_mode {
        causes.push(Cause::invalid(
            "volumeMode",
            &display_value(&new_mode),
            "field is immutable",
        ));
    }
}

/// A diff of two claim specs in the shape of upstream's `cmp.Diff` (which deliberately
/// randomises its whitespace, so only the shape can match): changed fields as `-`/`+`
/// lines in Go field order, runs of identical fields summarised.
fn claim_spec_diff(old: &Value, new: &Value) -> String {
    let mut lines = vec!["  core.PersistentVolumeClaimSpec{".to_owned()];
    let mut identical = 0;
    let flush = |identical: &mut usize, lines: &mut Vec<String>| {
        if *identical > 0 {
            let noun = if *identical == 1 { "field" } else { "fields" };
            lines.push(format!("  \t... // {identical} identical {noun}"));
            *identical = 0;
        }
    };
    for (json_name, go_name) in CLAIM_SPEC_FIELDS {
        let (before, after) = (old.get(*json_name), new.get(*json_name));
        if before == after {
            identical += 1;
            continue;
        }
        flush(&mut identical, &mut lines);
        let show = |v: Option<&Value>| v.map_or_else(|| "nil".to_owned(), Value::to_string);
        lines.push(format!("- \t{go_name}: {},", show(before)));
        lines.push(format!("+ \t{go_name}: {},", show(after)));
    }
    flush(&mut identical, &mut lines);
    lines.push("  }".to_owned());
    lines.join("\n") + "\n"
}

/// A field value as upstream prints it in `Invalid value: …` (strings unquoted here;
/// the cause quotes them once), `null` when unset.
fn display_value(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => "null".to_owned(),
        other => other.to_string(),
    }
}

fn field_is_str_or_null(spec: &Value, field: &str) -> Value {
    spec.get(field).cloned().unwrap_or(Value::Null)
}

/// What the API server says when a pod update touches an immutable field.
const POD_UPDATE_FORBIDDEN: &str = "pod updates may not change fields other than `spec.containers[*].image`,\
`spec.initContainers[*].image`,`spec.activeDeadlineSeconds`,`spec.tolerations` (only additions to existing \
tolerations),`spec.terminationGracePeriodSeconds` (allow it to be set to 1 if it was previously negative)";

/// A pod spec without the fields an update may change (images, deadline, tolerations,
/// grace period); `nodeName` only changes through the `binding` subresource.
fn mutable_pod_spec_removed(spec: Option<&Value>) -> Value {
    let mut spec = spec.cloned().unwrap_or(Value::Null);
    if let Some(map) = spec.as_object_mut() {
        for field in [
            "activeDeadlineSeconds",
            "tolerations",
            "terminationGracePeriodSeconds",
        ] {
            map.remove(field);
        }
        for list in ["containers", "initContainers"] {
            for container in map
                .get_mut(list)
                .and_then(Value::as_array_mut)
                .into_iter()
                .flatten()
            {
                if let Some(c) = container.as_object_mut() {
                    c.remove("image");
                }
            }
        }
    }
    spec
}
