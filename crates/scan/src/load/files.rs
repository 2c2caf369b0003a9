//! Reads dumps into a snapshot: YAML or JSON files, multi-document YAML, `v1` Lists, `kubectl get -o json|yaml`, directory trees.
//!
//! JSON is parsed straight from the bytes into typed objects (the fast path for large
//! dumps); YAML goes through a generic value first. Objects of kinds the scan does not
//! read (ConfigMaps, Services, …) are skipped. Secrets are read for their names only.

use std::borrow::Cow;
use std::fmt;
use std::io::{self, Read};
use std::path::{Path, PathBuf};

use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::Value;
use serde_json::value::RawValue;
use thiserror::Error;

use super::Trim;
use crate::snapshot::{ClusterSnapshot, ResourceKind, SecretName, ServerVersion, VersionSource};

/// Why a dump could not be loaded.
#[derive(Debug, Error)]
pub enum LoadError {
    /// A file, a directory or stdin could not be read.
    #[error("cannot read {path}: {error}")]
    Io {
        /// What was being read (`<stdin>` for stdin).
        path: String,
        /// The I/O error.
        error: io::Error,
    },
    /// A file is neither JSON nor YAML.
    #[error("{origin}: not valid YAML or JSON: {message}")]
    Syntax {
        /// Where.
        origin: Origin,
        /// The parser's message.
        message: String,
    },
    /// An object of a kind the scan reads does not match that kind's schema.
    #[error("{origin}: {kind} {name:?} is invalid at {field}: {message}")]
    InvalidObject {
        /// Where.
        origin: Origin,
        /// The object's kind.
        kind: ResourceKind,
        /// The object's name, if it could be read.
        name: String,
        /// The JSON path of the field at fault.
        field: String,
        /// What is wrong.
        message: String,
    },
    /// A directory given with `--from` holds no YAML or JSON file at all.
    #[error("{path}: no .yaml, .yml or .json files found")]
    EmptyDirectory {
        /// The directory.
        path: String,
    },
}

/// Where in the input an object came from, for error messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Origin {
    /// The file, or `<stdin>`.
    pub source: String,
    /// 1-based document index in the file.
    pub document: usize,
    /// 0-based index in a List's `items`, if it came from one.
    pub item: Option<usize>,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (document {}", self.source, self.document)?;
        if let Some(item) = self.item {
            write!(f, ", items[{item}]")?;
        }
        f.write_str(")")
    }
}

/// The `kind` and, for Lists, the `items` of a JSON document, read without building it.
#[derive(Deserialize)]
struct Peek<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    items: Option<Vec<&'a RawValue>>,
    #[serde(default, rename = "serverVersion")]
    server_version: Option<VersionInfo>,
    #[serde(default)]
    major: Option<String>,
    #[serde(default)]
    minor: Option<String>,
}

/// `/version`'s body (also `serverVersion` in `kubectl version -o json`).
#[derive(Deserialize)]
struct VersionInfo {
    major: String,
    minor: String,
}

/// Only the metadata of an object (used for Secrets: their data is never kept).
#[derive(Deserialize)]
struct MetadataOnly {
    #[serde(default)]
    metadata: ObjectMeta,
}

/// The name in an object's metadata, for error messages.
#[derive(Deserialize)]
struct NameOnly {
    #[serde(default)]
    metadata: Option<NameMeta>,
}

#[derive(Deserialize)]
struct NameMeta {
    #[serde(default)]
    name: Option<String>,
}

/// Collects objects from any number of inputs into one snapshot.
#[derive(Debug, Default)]
pub struct SnapshotBuilder {
    snapshot: ClusterSnapshot,
    /// Documents skipped because the scan does not read their kind (or they have none).
    pub skipped: usize,
}

/// One object waiting to be parsed: its index in its List, kind and JSON text.
type Pending<'t> = (usize, ResourceKind, &'t str);

impl SnapshotBuilder {
    /// An empty builder.
    pub fn new() -> Self {
        Self::default()
    }

    /// The snapshot, without duplicates. Only kinds with at least one object, or an
    /// empty typed List (`PersistentVolumeList`), count as collected.
    pub fn finish(self) -> ClusterSnapshot {
        self.finish_counting().0
    }

    /// Like [`Self::finish`], also returning how many documents were skipped (kinds the
    /// scan does not read) and how many duplicate objects were dropped (the first copy wins).
    pub fn finish_counting(self) -> (ClusterSnapshot, usize, usize) {
        let skipped = self.skipped;
        let mut snapshot = self.snapshot;
        let duplicates = snapshot.remove_duplicates();
        (snapshot, skipped, duplicates)
    }

    /// Reads a file, or every `.yaml`/`.yml`/`.json` file under a directory (sorted, recursively).
    pub fn add_path(&mut self, path: &Path) -> Result<(), LoadError> {
        if path.as_os_str() == "-" {
            let mut bytes = Vec::new();
            io::stdin()
                .lock()
                .read_to_end(&mut bytes)
                .map_err(|error| LoadError::Io {
                    path: "<stdin>".to_owned(),
                    error,
                })?;
            return self.add_bytes(&bytes, "<stdin>");
        }
        let io_error = |error| LoadError::Io {
            path: path.display().to_string(),
            error,
        };
        if path.is_dir() {
            let mut files = Vec::new();
            collect_manifest_files(path, &mut files).map_err(io_error)?;
            if files.is_empty() {
                return Err(LoadError::EmptyDirectory {
                    path: path.display().to_string(),
                });
            }
            for file in files {
                self.add_path(&file)?;
            }
            return Ok(());
        }
        let bytes = std::fs::read(path).map_err(io_error)?;
        self.add_bytes(&bytes, &path.display().to_string())
    }

    /// Reads the text of one input (JSON, concatenated JSON, or multi-document YAML).
    pub fn add_bytes(&mut self, bytes: &[u8], source: &str) -> Result<(), LoadError> {
        let origin = |document| Origin {
            source: source.to_owned(),
            document,
            item: None,
        };
        let text = std::str::from_utf8(bytes).map_err(|e| LoadError::Syntax {
            origin: origin(1),
            message: e.to_string(),
        })?;
        let trimmed = text.trim_start();
        // The usual large input is one JSON object (a List): read its top level in one
        // pass instead of first cutting the text into documents, which is a second
        // full pass over hundreds of megabytes. Anything else (concatenated documents,
        // arrays, syntax errors) takes the general path below.
        if trimmed.starts_with('{')
            && let Ok(peek) = serde_json::from_str::<Peek<'_>>(trimmed)
        {
            return self.add_peeked(peek, trimmed, &origin(1));
        }
        if trimmed.starts_with('{') || trimmed.starts_with('[') {
            let documents: Result<Vec<&RawValue>, _> = serde_json::Deserializer::from_str(text)
                .into_iter()
                .collect();
            if let Ok(documents) = documents {
                for (i, raw) in documents.into_iter().enumerate() {
                    self.add_raw(raw, &origin(i + 1))?;
                }
                return Ok(());
            }
        }
        let documents = yaml_documents(text).map_err(|e| LoadError::Syntax {
            origin: origin(1),
            message: e.to_string(),
        })?;
        for (i, value) in documents.into_iter().enumerate() {
            self.add_value(value, &origin(i + 1))?;
        }
        Ok(())
    }

    /// Adds one JSON document (an object, a List, or an array of them).
    pub fn add_raw(&mut self, raw: &RawValue, origin: &Origin) -> Result<(), LoadError> {
        let text = raw.get();
        if text.starts_with('[') {
            let items: Vec<&RawValue> =
                serde_json::from_str(text).map_err(|e| LoadError::Syntax {
                    origin: origin.clone(),
                    message: e.to_string(),
                })?;
            return self.add_items(&items, origin);
        }
        if !text.starts_with('{') {
            self.skipped += 1;
            return Ok(());
        }
        let peek: Peek<'_> = serde_json::from_str(text).map_err(|e| LoadError::Syntax {
            origin: origin.clone(),
            message: e.to_string(),
        })?;
        self.add_peeked(peek, text, origin)
    }

    /// Adds one JSON object whose top level has been read into `peek`.
    fn add_peeked(&mut self, peek: Peek<'_>, text: &str, origin: &Origin) -> Result<(), LoadError> {
        if self.take_version(
            peek.server_version.as_ref(),
            peek.major.as_deref(),
            peek.minor.as_deref(),
        ) {
            return Ok(());
        }
        let Some(kind) = peek.kind else {
            self.skipped += 1;
            return Ok(());
        };
        if let Some(items) = peek.items.filter(|_| kind.ends_with("List")) {
            if let Some(item_kind) = ResourceKind::from_kind(&kind[..kind.len() - 4]) {
                self.snapshot.collected.insert(item_kind);
            }
            return self.add_items(&items, origin);
        }
        let Some(kind) = ResourceKind::from_kind(&kind) else {
            self.skipped += 1;
            return Ok(());
        };
        parse_pending(&[(0, kind, text)], origin, false).map(|part| self.snapshot.absorb(part))
    }

    /// Adds the items of a List or array: kinds are read first, then every kind's objects
    /// are parsed on their own thread (kinds spread over the available cores) straight
    /// into a vector of the right size, so large dumps are neither copied nor re-grown.
    fn add_items(&mut self, items: &[&RawValue], origin: &Origin) -> Result<(), LoadError> {
        let mut pending: Vec<Pending<'_>> = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let text = item.get();
            let item_origin = || Origin {
                item: Some(i),
                ..origin.clone()
            };
            if !text.starts_with('{') {
                self.add_raw(item, &item_origin())?;
                continue;
            }
            let kind = match top_level_kind(text) {
                Some(kind) => Some(Cow::Borrowed(kind)),
                None => {
                    let peek: PeekKind<'_> =
                        serde_json::from_str(text).map_err(|e| LoadError::Syntax {
                            origin: item_origin(),
                            message: e.to_string(),
                        })?;
                    peek.kind
                }
            };
            match kind.as_deref().and_then(ResourceKind::from_kind) {
                Some(kind) => pending.push((i, kind, text)),
                None if kind.as_deref().is_some_and(|k| k.ends_with("List")) => {
                    self.add_raw(item, &item_origin())?;
                }
                None => self.skipped += 1,
            }
        }
        // Spread kinds over threads by their share of the bytes, biggest first.
        let mut bytes_per_kind: Vec<(ResourceKind, usize)> = ResourceKind::ALL
            .into_iter()
            .map(|k| {
                (
                    k,
                    pending.iter().filter(|p| p.1 == k).map(|p| p.2.len()).sum(),
                )
            })
            .filter(|(_, bytes)| *bytes > 0)
            .collect();
        bytes_per_kind.sort_by_key(|k| std::cmp::Reverse(k.1));
        let threads = std::thread::available_parallelism()
            .map_or(1, |n| n.get())
            .clamp(1, 4)
            .min(bytes_per_kind.len().max(1));
        let mut loads = vec![(0usize, Vec::new()); threads];
        for (kind, bytes) in bytes_per_kind {
            if let Some(lightest) = loads.iter_mut().min_by_key(|(load, _)| *load) {
                lightest.0 += bytes;
                lightest.1.push(kind);
            }
        }
        let groups: Vec<Vec<Pending<'_>>> = loads
            .into_iter()
            .map(|(_, kinds)| {
                pending
                    .iter()
                    .filter(|p| kinds.contains(&p.1))
                    .copied()
                    .collect()
            })
            .collect();
        let parts: Vec<Result<ClusterSnapshot, LoadError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = groups
                .iter()
                .map(|group| scope.spawn(move || parse_pending(group, origin, true)))
                .collect();
            handles
                .into_iter()
                .map(|h| {
                    h.join()
                        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
                })
                .collect()
        });
        for part in parts {
            self.snapshot.absorb(part?);
        }
        Ok(())
    }

    /// Adds one generic document (an object, a List, or an array of them).
    pub fn add_value(&mut self, value: Value, origin: &Origin) -> Result<(), LoadError> {
        let mut object = match value {
            Value::Array(items) => {
                for (i, item) in items.into_iter().enumerate() {
                    self.add_value(
                        item,
                        &Origin {
                            item: Some(i),
                            ..origin.clone()
                        },
                    )?;
                }
                return Ok(());
            }
            Value::Object(object) => object,
            _ => {
                self.skipped += 1;
                return Ok(());
            }
        };
        let version = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
        if let Some(Value::Object(server)) = object.get("serverVersion") {
            let info = VersionInfo {
                major: version(server.get("major")).unwrap_or_default(),
                minor: version(server.get("minor")).unwrap_or_default(),
            };
            if self.take_version(Some(&info), None, None) {
                return Ok(());
            }
        }
        if !object.contains_key("kind")
            && self.take_version(
                None,
                version(object.get("major")).as_deref(),
                version(object.get("minor")).as_deref(),
            )
        {
            return Ok(());
        }
        let Some(kind) = object
            .get("kind")
            .and_then(Value::as_str)
            .map(str::to_owned)
        else {
            self.skipped += 1;
            return Ok(());
        };
        if kind.ends_with("List")
            && let Some(Value::Array(items)) = object.remove("items")
        {
            if let Some(item_kind) = ResourceKind::from_kind(&kind[..kind.len() - 4]) {
                self.snapshot.collected.insert(item_kind);
            }
            for (i, item) in items.into_iter().enumerate() {
                let origin = Origin {
                    item: Some(i),
                    ..origin.clone()
                };
                self.add_value(item, &origin)?;
            }
            return Ok(());
        }
        let Some(kind) = ResourceKind::from_kind(&kind) else {
            self.skipped += 1;
            return Ok(());
        };
        let value = Value::Object(object);
        parse_typed(&mut self.snapshot, kind, &TypedSource::Value(&value))
            .map_err(|e| e.at(origin, kind))
    }

    fn take_version(
        &mut self,
        info: Option<&VersionInfo>,
        major: Option<&str>,
        minor: Option<&str>,
    ) -> bool {
        let parsed = match (info, major, minor) {
            (Some(info), _, _) => {
                ServerVersion::from_parts(&info.major, &info.minor, VersionSource::ApiServer)
            }
            (None, Some(major), Some(minor)) => {
                ServerVersion::from_parts(major, minor, VersionSource::ApiServer)
            }
            _ => None,
        };
        match parsed {
            Some(version) => {
                self.snapshot.server_version = Some(version);
                true
            }
            None => false,
        }
    }
}

/// The value of the top-level `"kind"` key of a JSON object, found by scanning bytes
/// until it appears (kubectl writes it second), without parsing the rest. `None` when
/// it is absent or escaped; the caller then asks serde.
/// Parses a multi-document YAML stream. The parser's default budgets (1,024 documents,
/// 250,000 nodes) would refuse an ordinary `kubectl get -o yaml` of a large cluster, so
/// the size budgets grow with the text, which is already in memory; the alias and
/// anchor budgets that stop "billion laughs" expansion keep their defaults.
pub fn yaml_documents(text: &str) -> Result<Vec<Value>, serde_saphyr::Error> {
    // Every document, node and event needs at least one byte of input.
    let size = text.len().saturating_add(1024);
    let options = serde_saphyr::options! {
        budget: serde_saphyr::budget! {
            max_documents: size,
            max_nodes: size,
            max_events: size.saturating_mul(2),
            max_total_scalar_bytes: size,
        },
    };
    serde_saphyr::from_multiple_with_options::<Value>(text, options)
}

fn top_level_kind(text: &str) -> Option<&str> {
    let bytes = text.as_bytes();
    let mut depth = 0usize;
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'"' => {
                let start = i + 1;
                let mut end = start;
                while end < bytes.len() && bytes[end] != b'"' {
                    end += if bytes[end] == b'\\' { 2 } else { 1 };
                }
                let string = text.get(start..end)?;
                i = end + 1;
                if depth == 1 && string == "kind" {
                    let rest = text.get(i..)?.trim_start().strip_prefix(':')?.trim_start();
                    let value = rest.strip_prefix('"')?;
                    let close = value.find('"')?;
                    let kind = &value[..close];
                    return (!kind.contains('\\')).then_some(kind);
                }
                continue;
            }
            b'{' | b'[' => depth += 1,
            b'}' | b']' => depth = depth.saturating_sub(1),
            _ => {}
        }
        i += 1;
    }
    None
}

/// Only the `kind` of a List item.
#[derive(Deserialize)]
struct PeekKind<'a> {
    #[serde(borrow, default)]
    kind: Option<Cow<'a, str>>,
}

/// Parses pending objects into a fresh snapshot of exactly the right size; `in_list` puts item indexes into error origins.
fn parse_pending(
    pending: &[Pending<'_>],
    origin: &Origin,
    in_list: bool,
) -> Result<ClusterSnapshot, LoadError> {
    let mut snapshot = ClusterSnapshot::default();
    for kind in ResourceKind::ALL {
        let n = pending.iter().filter(|p| p.1 == kind).count();
        if n > 0 {
            snapshot.reserve(kind, n);
        }
    }
    for (i, kind, text) in pending {
        parse_typed(&mut snapshot, *kind, &TypedSource::Raw(text)).map_err(|e| {
            let origin = Origin {
                item: in_list.then_some(*i),
                ..origin.clone()
            };
            e.at(&origin, *kind)
        })?;
    }
    Ok(snapshot)
}

/// A failed typed parse, with the path of the field at fault.
struct TypedError {
    name: String,
    field: String,
    message: String,
}

impl TypedError {
    fn at(self, origin: &Origin, kind: ResourceKind) -> LoadError {
        LoadError::InvalidObject {
            origin: origin.clone(),
            kind,
            name: self.name,
            field: self.field,
            message: self.message,
        }
    }
}

/// The text or value an object is parsed from.
enum TypedSource<'t> {
    Raw(&'t str),
    Value(&'t Value),
}

impl TypedSource<'_> {
    fn parse<T: DeserializeOwned>(&self) -> Result<T, TypedError> {
        let fast = match self {
            TypedSource::Raw(text) => serde_json::from_str::<T>(text).ok(),
            TypedSource::Value(_) => None,
        };
        if let Some(object) = fast {
            return Ok(object);
        }
        // Slow path, for YAML and for error messages: track the field path.
        let (result, name) = match self {
            TypedSource::Raw(text) => {
                let mut de = serde_json::Deserializer::from_str(text);
                let name = serde_json::from_str::<NameOnly>(text).ok();
                (serde_path_to_error::deserialize::<_, T>(&mut de), name)
            }
            TypedSource::Value(value) => (
                serde_path_to_error::deserialize::<_, T>(*value),
                NameOnly::deserialize(*value).ok(),
            ),
        };
        result.map_err(|e| TypedError {
            name: name
                .and_then(|n| n.metadata)
                .and_then(|m| m.name)
                .unwrap_or_default(),
            field: e.path().to_string(),
            message: e.into_inner().to_string(),
        })
    }
}

fn push<T: DeserializeOwned + Trim>(
    source: &TypedSource<'_>,
    into: &mut Vec<T>,
) -> Result<(), TypedError> {
    let mut object: T = source.parse()?;
    object.trim();
    into.push(object);
    Ok(())
}

/// Deserialises one object of `kind` into the snapshot.
fn parse_typed(
    snapshot: &mut ClusterSnapshot,
    kind: ResourceKind,
    source: &TypedSource<'_>,
) -> Result<(), TypedError> {
    match kind {
        ResourceKind::StorageClass => push(source, &mut snapshot.storage_classes)?,
        ResourceKind::PersistentVolume => push(source, &mut snapshot.persistent_volumes)?,
        ResourceKind::PersistentVolumeClaim => {
            push(source, &mut snapshot.persistent_volume_claims)?
        }
        ResourceKind::Pod => push(source, &mut snapshot.pods)?,
        ResourceKind::StatefulSet => push(source, &mut snapshot.stateful_sets)?,
        ResourceKind::Deployment => push(source, &mut snapshot.deployments)?,
        ResourceKind::DaemonSet => push(source, &mut snapshot.daemon_sets)?,
        ResourceKind::ReplicaSet => push(source, &mut snapshot.replica_sets)?,
        ResourceKind::Job => push(source, &mut snapshot.jobs)?,
        ResourceKind::CronJob => push(source, &mut snapshot.cron_jobs)?,
        ResourceKind::Node => push(source, &mut snapshot.nodes)?,
        ResourceKind::CsiDriver => push(source, &mut snapshot.csi_drivers)?,
        ResourceKind::CsiNode => push(source, &mut snapshot.csi_nodes)?,
        ResourceKind::PodDisruptionBudget => push(source, &mut snapshot.pod_disruption_budgets)?,
        ResourceKind::Secret => {
            let secret: MetadataOnly = source.parse()?;
            snapshot.secrets.push(SecretName {
                namespace: secret
                    .metadata
                    .namespace
                    .unwrap_or_else(|| "default".to_owned()),
                name: secret.metadata.name.unwrap_or_default(),
            });
        }
    }
    snapshot.collected.insert(kind);
    Ok(())
}

fn collect_manifest_files(dir: &Path, out: &mut Vec<PathBuf>) -> io::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)?
        .map(|e| e.map(|e| e.path()))
        .collect::<io::Result<_>>()?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            collect_manifest_files(&path, out)?;
        } else if path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
            ["yaml", "yml", "json"]
                .iter()
                .any(|x| e.eq_ignore_ascii_case(x))
        }) {
            out.push(path);
        }
    }
    Ok(())
}

/// Loads every path (files, directories, `-` for stdin) into one snapshot.
pub fn load_paths(paths: &[PathBuf]) -> Result<ClusterSnapshot, LoadError> {
    let mut builder = SnapshotBuilder::new();
    for path in paths {
        builder.add_path(path)?;
    }
    Ok(builder.finish())
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn yaml_streams_larger_than_the_parser_defaults_are_read() {
        // 2,000 documents (default budget 1,024) and a List of 40,000 items
        // (about 320,000 nodes; default budget 250,000).
        let documents: String = (0..2_000)
            .map(|i| format!("---\nkind: ConfigMap\nmetadata:\n  name: c{i}\n"))
            .collect();
        assert_eq!(yaml_documents(&documents).unwrap().len(), 2_000);
        let items: String = (0..40_000)
            .map(|i| format!("- kind: PersistentVolume\n  metadata:\n    name: pv{i}\n  spec:\n    capacity: {{storage: 1Gi}}\n"))
            .collect();
        let list = format!("kind: List\napiVersion: v1\nitems:\n{items}");
        let parsed = yaml_documents(&list).unwrap();
        assert_eq!(parsed[0]["items"].as_array().map(Vec::len), Some(40_000));
    }

    #[test]
    fn yaml_alias_bombs_are_still_refused() {
        let mut bomb = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for level in 1..12 {
            let previous = format!("*a{}", level - 1);
            let row = vec![previous; 10].join(", ");
            bomb.push_str(&format!("a{level}: &a{level} [{row}]\n"));
        }
        assert!(yaml_documents(&bomb).is_err());
    }

    fn load(text: &str) -> Result<ClusterSnapshot, LoadError> {
        let mut builder = SnapshotBuilder::new();
        builder.add_bytes(text.as_bytes(), "test")?;
        Ok(builder.finish())
    }

    #[test]
    fn json_list_of_mixed_kinds_is_sorted_into_the_snapshot() {
        let snapshot = load(
            r#"{"apiVersion":"v1","kind":"List","items":[
                {"apiVersion":"v1","kind":"PersistentVolume","metadata":{"name":"a"},"spec":{}},
                {"apiVersion":"v1","kind":"ConfigMap","metadata":{"name":"c"}},
                {"apiVersion":"v1","kind":"Secret","metadata":{"name":"s","namespace":"x"},"data":{"k":"c2VjcmV0"}}
            ]}"#,
        )
        .unwrap();
        assert_eq!(snapshot.persistent_volumes.len(), 1);
        assert_eq!(
            snapshot.secrets,
            vec![SecretName {
                namespace: "x".into(),
                name: "s".into()
            }]
        );
        assert!(snapshot.collected.contains(&ResourceKind::PersistentVolume));
        assert!(!snapshot.collected.contains(&ResourceKind::Pod));
    }

    #[test]
    fn multi_document_yaml_and_typed_empty_lists_are_read() {
        let snapshot = load(
            "apiVersion: storage.k8s.io/v1\nkind: StorageClass\nmetadata: {name: gp2}\nprovisioner: kubernetes.io/aws-ebs\n---\n\
             apiVersion: storage.k8s.io/v1\nkind: CSIDriverList\nitems: []\n---\n\
             serverVersion: {major: \"1\", minor: \"31+\", gitVersion: v1.31.2}\n",
        )
        .unwrap();
        assert_eq!(snapshot.storage_classes.len(), 1);
        assert!(snapshot.collected.contains(&ResourceKind::CsiDriver));
        assert_eq!(snapshot.server_version.map(|v| v.minor), Some(31));
    }

    #[test]
    fn concatenated_json_and_version_output_are_read() {
        let snapshot = load(
            r#"{"clientVersion":{"major":"1","minor":"33"},"serverVersion":{"major":"1","minor":"30"}}
               {"kind":"Node","apiVersion":"v1","metadata":{"name":"n1"}}"#,
        )
        .unwrap();
        assert_eq!(snapshot.nodes.len(), 1);
        assert_eq!(snapshot.server_version.map(|v| v.minor), Some(30));
    }

    #[test]
    fn duplicates_keep_the_first_copy() {
        let mut builder = SnapshotBuilder::new();
        let pv = r#"{"kind":"PersistentVolume","metadata":{"name":"a"}}"#;
        builder.add_bytes(pv.as_bytes(), "one").unwrap();
        builder.add_bytes(pv.as_bytes(), "two").unwrap();
        let (snapshot, _, duplicates) = builder.finish_counting();
        assert_eq!(duplicates, 1);
        assert_eq!(snapshot.persistent_volumes.len(), 1);
    }

    #[test]
    fn an_invalid_object_names_the_file_the_object_and_the_field() {
        let error = load(
            r#"{"kind":"List","items":[{"kind":"PersistentVolume","metadata":{"name":"bad"},"spec":{"capacity":7}}]}"#,
        )
        .unwrap_err()
        .to_string();
        assert!(error.contains("test (document 1, items[0])"), "{error}");
        assert!(error.contains("PersistentVolume \"bad\""), "{error}");
        assert!(error.contains("spec.capacity"), "{error}");

        let yaml_error =
            load("kind: PersistentVolume\nmetadata: {name: bad}\nspec: {capacity: 7}\n")
                .unwrap_err()
                .to_string();
        assert!(yaml_error.contains("spec.capacity"), "{yaml_error}");
    }

    #[test]
    fn the_top_level_kind_is_found_without_parsing() {
        assert_eq!(
            top_level_kind(r#"{"apiVersion":"v1","kind":"Pod","metadata":{}}"#),
            Some("Pod")
        );
        assert_eq!(
            top_level_kind(
                "{\n  \"metadata\": {\"kind\": \"x\", \"a\": [\"}\"]},\n  \"kind\" : \"Node\"}"
            ),
            Some("Node")
        );
        assert_eq!(top_level_kind(r#"{"metadata":{"kind":"Pod"}}"#), None);
        assert_eq!(top_level_kind(r#"{"kind":"P\u006fd"}"#), None);
        assert_eq!(
            top_level_kind(r#"{"a":"\"kind\"","kind":"Pod"}"#),
            Some("Pod")
        );
    }

    #[test]
    fn garbage_is_a_syntax_error() {
        assert!(matches!(load("a: [1, 2\n"), Err(LoadError::Syntax { .. })));
    }
}
