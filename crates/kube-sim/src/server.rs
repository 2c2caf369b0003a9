//! The HTTP(S) front of the simulated API server: discovery, the resource paths
//! kubectl and kube-rs use, and streaming watches.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures::StreamExt;
use serde_json::{Value, json};
use tokio::sync::broadcast::error::RecvError;

use crate::admission;
use crate::api_error::ApiError;
use crate::faults::{FaultConfig, FaultDecision, Faults};
use crate::field_validation;
use crate::patch::PatchKind;
use crate::resource::ResourceType;
use crate::selector::{FieldSelector, LabelSelector};
use crate::store::{DeleteOptions, Deleted, ListOptions, Store, Subresource, event_for_watch};
use crate::table::{self, IncludeObject};

/// The Kubernetes version the simulator reports (it chooses the kubectl a dispatcher runs).
pub const SERVER_MINOR: &str = "33";

/// Shared state of the HTTP handlers.
#[derive(Clone)]
pub struct ApiServer {
    store: Arc<Store>,
    faults: Arc<Faults>,
}

/// The parsed request target.
struct Target {
    rt: ResourceType,
    namespace: Option<String>,
    name: Option<String>,
    subresource: Option<String>,
}

fn json_response(status: StatusCode, body: &Value) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

fn error_response(error: &ApiError) -> Response {
    json_response(
        StatusCode::from_u16(error.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR),
        &error.status(),
    )
}

impl ApiServer {
    /// An API server over `store`.
    pub fn new(store: Arc<Store>, faults: Arc<Faults>) -> Self {
        Self { store, faults }
    }

    /// The axum router serving every path.
    pub fn router(self) -> Router {
        Router::new().fallback(handle).with_state(self)
    }

    fn discovery(&self, path: &str) -> Option<Value> {
        let resources = self.store.resources();
        let group_list = |group: &str, version: &str| {
            let entries: Vec<Value> = resources
                .iter()
                .filter(|r| r.group == group && r.version == version)
                .flat_map(ResourceType::discovery_entry)
                .collect();
            (!entries.is_empty()).then(|| {
                json!({"kind": "APIResourceList", "apiVersion": "v1",
                       "groupVersion": if group.is_empty() { version.to_owned() } else { format!("{group}/{version}") },
                       "resources": entries})
            })
        };
        match path.trim_end_matches('/') {
            "/version" => Some(json!({
                "major": "1", "minor": SERVER_MINOR, "gitVersion": format!("v1.{SERVER_MINOR}.0-csi-migrate-sim"),
                "gitCommit": "", "gitTreeState": "clean", "buildDate": "2026-01-01T00:00:00Z",
                "goVersion": "go1.24", "compiler": "gc", "platform": "linux/amd64"
            })),
            "/api" => Some(json!({"kind": "APIVersions", "versions": ["v1"],
                                  "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.1"}]})),
            "/apis" => {
                let mut groups: Vec<(String, String)> = resources
                    .iter()
                    .filter(|r| !r.group.is_empty())
                    .map(|r| (r.group.clone(), r.version.clone()))
                    .collect();
                groups.sort();
                groups.dedup();
                let groups: Vec<Value> = groups
                    .iter()
                    .map(|(g, v)| {
                        let gv = json!({"groupVersion": format!("{g}/{v}"), "version": v});
                        json!({"name": g, "versions": [gv.clone()], "preferredVersion": gv})
                    })
                    .collect();
                Some(json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups}))
            }
            "/api/v1" => group_list("", "v1"),
            other => {
                let rest = other.strip_prefix("/apis/")?;
                match rest.split('/').collect::<Vec<_>>().as_slice() {
                    [group, version] => group_list(group, version),
                    [group] => {
                        let versions: Vec<&ResourceType> =
                            resources.iter().filter(|r| r.group == *group).collect();
                        let first = versions.first()?;
                        let gv = json!({"groupVersion": format!("{group}/{}", first.version), "version": first.version});
                        Some(
                            json!({"kind": "APIGroup", "apiVersion": "v1", "name": group,
                                    "versions": [gv.clone()], "preferredVersion": gv}),
                        )
                    }
                    _ => None,
                }
            }
        }
    }

    /// A minimal OpenAPI v3: an index of group-versions and, per group-version, the
    /// write operations with their `fieldValidation` parameter, which is what kubectl
    /// checks before it relies on server-side field validation.
    fn openapi_v3(&self, path: &str) -> Option<Value> {
        let resources = self.store.resources();
        let group_version_path = |r: &ResourceType| {
            if r.group.is_empty() {
                format!("api/{}", r.version)
            } else {
                format!("apis/{}/{}", r.group, r.version)
            }
        };
        let path = path.trim_end_matches('/');
        if path == "/openapi/v3" {
            let mut index = serde_json::Map::new();
            for r in &resources {
                let gv = group_version_path(r);
                let url = format!("/openapi/v3/{gv}?hash={}", self.store.resources().len());
                index.insert(gv, json!({"serverRelativeURL": url}));
            }
            return Some(json!({"paths": index}));
        }
        let gv = path.strip_prefix("/openapi/v3/")?;
        let mut paths = serde_json::Map::new();
        for r in resources.iter().filter(|r| group_version_path(r) == gv) {
            let gvk = json!({"group": r.group, "version": r.version, "kind": r.kind});
            let operation = |action: &str| {
                json!({"x-kubernetes-action": action, "x-kubernetes-group-version-kind": gvk,
                       "parameters": [{"name": "fieldValidation", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                                      {"name": "fieldManager", "in": "query", "schema": {"type": "string", "uniqueItems": true}},
                                      {"name": "dryRun", "in": "query", "schema": {"type": "string", "uniqueItems": true}}],
                       "responses": {"200": {"description": "OK"}}})
            };
            let base = if r.namespaced {
                format!("/{gv}/namespaces/{{namespace}}/{}", r.plural)
            } else {
                format!("/{gv}/{}", r.plural)
            };
            paths.insert(base.clone(), json!({"post": operation("post")}));
            paths.insert(
                format!("{base}/{{name}}"),
                json!({"put": operation("put"), "patch": operation("patch")}),
            );
        }
        if paths.is_empty() {
            return None;
        }
        Some(
            json!({"openapi": "3.0.0", "info": {"title": "Kubernetes", "version": format!("v1.{SERVER_MINOR}.0")},
                    "paths": paths, "components": {"schemas": {}}}),
        )
    }

    fn target(&self, path: &str) -> Result<Target, ApiError> {
        let unknown = || ApiError::unknown_path(path);
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        let (group, version, rest) = match segments.as_slice() {
            ["api", version, rest @ ..] => ("", *version, rest),
            ["apis", group, version, rest @ ..] => (*group, *version, rest),
            _ => return Err(unknown()),
        };
        let lookup = |plural: &str| {
            self.store
                .resource(group, plural)
                .filter(|r| r.version == version)
                .ok_or_else(unknown)
        };
        let target = |rt, namespace: Option<&str>, name: Option<&str>, sub: Option<&str>| Target {
            rt,
            namespace: namespace.map(str::to_owned),
            name: name.map(str::to_owned),
            subresource: sub.map(str::to_owned),
        };
        match rest {
            ["namespaces", ns, plural, tail @ ..]
                if self
                    .store
                    .resource(group, plural)
                    .is_some_and(|r| r.namespaced) =>
            {
                let rt = lookup(plural)?;
                match tail {
                    [] => Ok(target(rt, Some(ns), None, None)),
                    [name] => Ok(target(rt, Some(ns), Some(name), None)),
                    [name, sub] => Ok(target(rt, Some(ns), Some(name), Some(sub))),
                    _ => Err(unknown()),
                }
            }
            [plural] => Ok(target(lookup(plural)?, None, None, None)),
            [plural, name] => Ok(target(lookup(plural)?, None, Some(name), None)),
            [plural, name, sub] => Ok(target(lookup(plural)?, None, Some(name), Some(sub))),
            _ => Err(unknown()),
        }
    }
}

fn list_options(
    query: &HashMap<String, String>,
    rt: &ResourceType,
) -> Result<ListOptions, ApiError> {
    let fields = FieldSelector::parse(query.get("fieldSelector").map_or("", String::as_str))?;
    fields.check_supported(rt)?;
    Ok(ListOptions {
        labels: LabelSelector::parse(query.get("labelSelector").map_or("", String::as_str))?,
        fields,
        limit: query.get("limit").and_then(|l| l.parse().ok()).unwrap_or(0),
        continue_token: query.get("continue").filter(|c| !c.is_empty()).cloned(),
    })
}

fn parse_body(body: &Bytes, content_type: &str) -> Result<Value, ApiError> {
    if body.is_empty() {
        return Ok(Value::Null);
    }
    // Protobuf is not decoded here, and client-go does not fall back to JSON on a 415
    // for it (only for CBOR), so the error says what to use instead.
    if content_type.contains("protobuf") || content_type.contains("cbor") {
        return Err(ApiError::unsupported_body(content_type));
    }
    let text = std::str::from_utf8(body)
        .map_err(|_| ApiError::bad_request("the request body is not UTF-8"))?;
    let json = serde_json::from_str(text);
    match json {
        Ok(value) => Ok(value),
        Err(e) if content_type.contains("yaml") => serde_saphyr::from_str(text).map_err(|ye| {
            ApiError::bad_request(format!(
                "cannot decode the request body as YAML: {ye} (JSON: {e})"
            ))
        }),
        Err(e) => Err(ApiError::bad_request(format!(
            "cannot decode the request body: {e}"
        ))),
    }
}

fn delete_options(body: &Value, query: &HashMap<String, String>) -> DeleteOptions {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
    DeleteOptions {
        propagation_policy: text(body.get("propagationPolicy"))
            .or_else(|| query.get("propagationPolicy").cloned())
            .or_else(
                || match body.get("orphanDependents").and_then(Value::as_bool) {
                    Some(true) => Some("Orphan".to_owned()),
                    Some(false) => Some("Background".to_owned()),
                    None => None,
                },
            ),
        precondition_uid: text(body.pointer("/preconditions/uid")),
        precondition_resource_version: text(body.pointer("/preconditions/resourceVersion")),
        grace_period_seconds: body
            .get("gracePeriodSeconds")
            .and_then(Value::as_i64)
            .or_else(|| query.get("gracePeriodSeconds").and_then(|g| g.parse().ok())),
    }
}

async fn handle(
    State(server): State<ApiServer>,
    method: Method,
    uri: Uri,
    Query(query): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let path = uri.path().to_owned();
    tracing::debug!(%method, %uri, "request");
    if method == Method::GET {
        if matches!(path.as_str(), "/healthz" | "/readyz" | "/livez") {
            return (StatusCode::OK, "ok").into_response();
        }
        if path == "/_sim/v1/objects" {
            return json_response(StatusCode::OK, &server.store.dump());
        }
        if path == "/_sim/v1/disks" {
            let disks: Vec<Value> = server
                .store
                .cloud()
                .list()
                .iter()
                .map(|d| d.to_json())
                .collect();
            return json_response(StatusCode::OK, &json!({"disks": disks}));
        }
        if let Some(document) = server.discovery(&path).or_else(|| server.openapi_v3(&path)) {
            return json_response(StatusCode::OK, &document);
        }
    }
    if let Some(id) = path
        .strip_prefix("/_sim/v1/disks/")
        .and_then(|p| p.strip_suffix("/content"))
    {
        return disk_content(&server, &method, id, body);
    }
    if path == "/_sim/v1/faults" {
        return fault_api(&server, &method, &body);
    }
    if let Ok(target) = server.target(&path) {
        match server.faults.decide(method.as_str(), &target.rt.plural) {
            FaultDecision::Serve { delay } => tokio::time::sleep(delay).await,
            FaultDecision::Fail(error) => return injected_error(error, &target, &body),
            FaultDecision::Drop => {
                // A body that fails before its first byte makes hyper reset the connection.
                let broken = futures::stream::once(async {
                    Err::<Bytes, _>(std::io::Error::other("injected drop"))
                });
                return (StatusCode::OK, Body::from_stream(broken)).into_response();
            }
        }
    }
    // dryRun=All comes as a query parameter, or for DELETE inside the DeleteOptions body.
    let in_body = method == Method::DELETE
        && serde_json::from_slice::<Value>(&body)
            .ok()
            .and_then(|b| b.get("dryRun").and_then(Value::as_array).cloned())
            .is_some_and(|modes| modes.iter().any(|m| m == "All"));
    let dry_run =
        (query.get("dryRun").is_some_and(|d| d == "All") || in_body) && method != Method::GET;
    let mut warnings = Vec::new();
    let request = Request {
        method: &method,
        path: &path,
        query: &query,
        headers: &headers,
        body: &body,
    };
    let served = if dry_run {
        server
            .store
            .dry_run(|copy| serve_resource(&server, copy, &request, &mut warnings))
    } else {
        serve_resource(&server, &server.store, &request, &mut warnings)
    };
    match served {
        Ok(Served::Json(status, value)) => {
            let mut response = json_response(status, &value);
            for warning in &warnings {
                // `299 - "<text>"`, the text quoted as Go quotes it (JSON's escapes agree).
                let value = format!("299 - {}", Value::String(warning.clone()));
                if let Ok(value) = header::HeaderValue::from_str(&value) {
                    response.headers_mut().append(header::WARNING, value);
                }
            }
            response
        }
        Ok(Served::Watch(watched)) => {
            let (target, options, as_table) = *watched;
            watch(&server, target, &query, options, as_table)
        }
        Err(error) => {
            tracing::debug!(%method, %uri, code = error.code, message = %error.message, "request failed");
            error_response(&error)
        }
    }
}

/// An injected error as the real server would word it: a 409 names the object it
/// concerns, a 429 says when to retry in a `Retry-After` header.
fn injected_error(error: ApiError, target: &Target, body: &Bytes) -> Response {
    let body_name = || {
        serde_json::from_slice::<Value>(body).ok().and_then(|b| {
            b.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
    };
    let error = match target.name.clone().or_else(body_name) {
        Some(name) if error.code == 409 => ApiError::conflict(&target.rt, &name),
        _ => error,
    };
    let mut response = error_response(&error);
    if error.code == 429 {
        response
            .headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("1"));
    }
    response
}

/// The test API for faults: `GET` shows the configuration, `PUT` replaces it, `DELETE` clears it.
fn fault_api(server: &ApiServer, method: &Method, body: &Bytes) -> Response {
    match method.as_str() {
        "GET" => json_response(
            StatusCode::OK,
            &serde_json::to_value(server.faults.config()).unwrap_or(Value::Null),
        ),
        "PUT" => match serde_json::from_slice::<Value>(body).and_then(|mut config| {
            // A configuration without a seed keeps the current one.
            if let Some(map) = config.as_object_mut()
                && !map.contains_key("seed")
            {
                map.insert("seed".to_owned(), json!(server.faults.config().seed));
            }
            serde_json::from_value::<FaultConfig>(config)
        }) {
            Ok(config) => {
                server.faults.set(config);
                json_response(
                    StatusCode::OK,
                    &serde_json::to_value(server.faults.config()).unwrap_or(Value::Null),
                )
            }
            Err(e) => error_response(&ApiError::bad_request(format!(
                "invalid fault configuration: {e}"
            ))),
        },
        "DELETE" => {
            server.faults.set(FaultConfig::default());
            json_response(StatusCode::OK, &json!({}))
        }
        verb => error_response(&ApiError::method_not_allowed(format!(
            "{verb} is not supported on /_sim/v1/faults"
        ))),
    }
}

/// The test API for disk content: `GET` reads the bytes, `PUT` replaces them (a pod's writes).
fn disk_content(server: &ApiServer, method: &Method, id: &str, body: Bytes) -> Response {
    let cloud = server.store.cloud();
    match (method.as_str(), cloud.get(id)) {
        (_, None) => error_response(&ApiError::unknown_path(&format!("/_sim/v1/disks/{id}"))),
        ("GET", Some(disk)) => (StatusCode::OK, disk.content).into_response(),
        ("PUT", Some(_)) => match cloud.write(id, body.to_vec()) {
            Ok(()) => json_response(
                StatusCode::OK,
                &cloud.get(id).map(|d| d.to_json()).unwrap_or(Value::Null),
            ),
            Err(error) => error_response(&ApiError::internal(error.to_string())),
        },
        (verb, Some(_)) => error_response(&ApiError::method_not_allowed(format!(
            "{verb} is not supported on disk content"
        ))),
    }
}

enum Served {
    Json(StatusCode, Value),
    /// A watch: what to watch, and the Table form its events take, if asked for.
    Watch(Box<(Target, ListOptions, Option<IncludeObject>)>),
}

/// One resource request, as the handler received it.
struct Request<'a> {
    method: &'a Method,
    path: &'a str,
    query: &'a HashMap<String, String>,
    headers: &'a HeaderMap,
    body: &'a Bytes,
}

/// The Table form the client asked for, if any (`Accept: …;as=Table;…`).
fn table_request(request: &Request<'_>) -> Option<IncludeObject> {
    let accept = request
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())?;
    table::wanted(accept)
        .then(|| IncludeObject::from_query(request.query.get("includeObject").map(String::as_str)))
}

/// Checks a built-in kind's body for undeclared fields per `fieldValidation`: a 400 for
/// `Strict`, warnings for `Warn` (the default).
fn validate_fields(
    rt: &ResourceType,
    object: &Value,
    raw: &Bytes,
    query: &HashMap<String, String>,
    warnings: &mut Vec<String>,
) -> Result<(), ApiError> {
    let directive =
        field_validation::Directive::from_query(query.get("fieldValidation").map(String::as_str))?;
    if directive == field_validation::Directive::Ignore || rt.is_custom() {
        return Ok(());
    }
    let findings = field_validation::Findings {
        unknown: field_validation::unknown_fields(rt, object),
        duplicate: field_validation::duplicate_fields(raw),
    };
    if findings.is_empty() {
        return Ok(());
    }
    match directive {
        field_validation::Directive::Strict => Err(field_validation::strict_error(rt, &findings)),
        _ => {
            warnings.extend(findings.messages());
            Ok(())
        }
    }
}

/// The `autoscaling/v1` Scale of a StatefulSet, Deployment or ReplicaSet.
fn scale_of(object: &Value) -> Value {
    let metadata = &object["metadata"];
    let selector: Vec<String> = object
        .pointer("/spec/selector/matchLabels")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
        .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or_default()))
        .collect();
    json!({
        "kind": "Scale", "apiVersion": "autoscaling/v1",
        "metadata": {"name": metadata["name"], "namespace": metadata["namespace"], "uid": metadata["uid"],
                     "resourceVersion": metadata["resourceVersion"], "creationTimestamp": metadata["creationTimestamp"]},
        "spec": {"replicas": object.pointer("/spec/replicas").cloned().unwrap_or(json!(0))},
        "status": {"replicas": object.pointer("/status/replicas").cloned().unwrap_or(json!(0)),
                   "selector": selector.join(",")}
    })
}

/// The `scale` subresource: GET reads the Scale, PUT and PATCH change `spec.replicas`
/// (conditionally when the Scale carries a resourceVersion).
fn serve_scale(
    store: &Arc<Store>,
    target: &Target,
    request: &Request<'_>,
    content_type: &str,
) -> Result<Served, ApiError> {
    let rt = &target.rt;
    let ns = target.namespace.as_deref();
    let name = target.name.as_deref().unwrap_or_default();
    let current = store.get(rt, ns, name)?;
    let wanted = match request.method.as_str() {
        "GET" => return Ok(Served::Json(StatusCode::OK, scale_of(&current))),
        "PUT" => parse_body(request.body, content_type)?,
        "PATCH" => {
            let patch = parse_body(request.body, content_type)?;
            let mut scale = scale_of(&current);
            match PatchKind::from_content_type(content_type)? {
                PatchKind::Json => crate::patch::apply_json_patch(&mut scale, &patch)
                    .map_err(|e| ApiError::bad_request(format!("invalid JSON patch: {e}")))?,
                PatchKind::Merge => crate::patch::apply_merge_patch(&mut scale, &patch),
                PatchKind::Strategic | PatchKind::Apply => {
                    crate::patch::apply_strategic_merge_patch(&mut scale, &patch)
                }
            }
            scale
        }
        verb => {
            return Err(ApiError::method_not_allowed(format!(
                "{verb} is not supported on {}",
                request.path
            )));
        }
    };
    let replicas = wanted
        .pointer("/spec/replicas")
        .and_then(Value::as_i64)
        .ok_or_else(|| {
            ApiError::invalid_kind(
                "Scale.autoscaling",
                "autoscaling",
                "Scale",
                name,
                vec![crate::api_error::Cause::required("spec.replicas")],
            )
        })?;
    if replicas < 0 {
        return Err(ApiError::invalid_kind(
            "Scale.autoscaling",
            "autoscaling",
            "Scale",
            name,
            vec![crate::api_error::Cause::invalid_number(
                "spec.replicas",
                replicas,
                "must be greater than or equal to 0",
            )],
        ));
    }
    let mut change = json!({"spec": {"replicas": replicas}});
    if let Some(rv) = wanted
        .pointer("/metadata/resourceVersion")
        .and_then(Value::as_str)
        .filter(|rv| !rv.is_empty())
    {
        change["metadata"] = json!({"resourceVersion": rv});
    }
    let updated = store.patch(rt, ns, name, PatchKind::Merge, &change, Subresource::Main)?;
    Ok(Served::Json(StatusCode::OK, scale_of(&updated)))
}

/// Serves one resource request against `store` (the cluster, or a dry-run copy of it).
fn serve_resource(
    server: &ApiServer,
    store: &Arc<Store>,
    request: &Request<'_>,
    warnings: &mut Vec<String>,
) -> Result<Served, ApiError> {
    let Request {
        method,
        path,
        query,
        headers,
        body,
    } = *request;
    let target = server.target(path)?;
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if target.subresource.as_deref() == Some("binding")
        && target.rt.plural == "pods"
        && method == Method::POST
    {
        let binding = parse_body(body, content_type)?;
        let node = binding
            .pointer("/target/name")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if node.is_empty() {
            return Err(ApiError::bad_request("a Binding needs target.name"));
        }
        let name = target.name.as_deref().unwrap_or_default();
        store.bind_pod(target.namespace.as_deref().unwrap_or("default"), name, node)?;
        return Ok(Served::Json(
            StatusCode::CREATED,
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 201}),
        ));
    }
    if target.subresource.as_deref() == Some("scale")
        && target.rt.has_scale()
        && target.name.is_some()
    {
        return serve_scale(store, &target, request, content_type);
    }
    let as_table = table_request(request);
    let subresource = match target.subresource.as_deref() {
        None => Subresource::Main,
        Some("status") if target.rt.has_status => Subresource::Status,
        Some(other) => {
            return Err(ApiError::unknown_path(&format!(
                "{path} (subresource {other:?})"
            )));
        }
    };
    let ns = target.namespace.as_deref();
    let ok = |v: Value| Ok(Served::Json(StatusCode::OK, v));
    match (method.as_str(), target.name.as_deref()) {
        ("GET", None) => {
            let options = list_options(query, &target.rt)?;
            if query.get("watch").is_some_and(|w| w == "true" || w == "1") {
                return Ok(Served::Watch(Box::new((target, options, as_table))));
            }
            let list = store.list(&target.rt, ns, &options)?;
            ok(if let Some(include) = as_table {
                let items = list["items"].as_array().cloned().unwrap_or_default();
                table::table(&target.rt, &items, list["metadata"].clone(), include)
            } else if wants_metadata_only(headers) {
                metadata_only_list(list)
            } else {
                list
            })
        }
        ("GET", Some(name)) => {
            let object = store.get(&target.rt, ns, name)?;
            ok(if let Some(include) = as_table {
                let metadata =
                    json!({"resourceVersion": object.pointer("/metadata/resourceVersion")});
                table::table(&target.rt, &[object], metadata, include)
            } else if wants_metadata_only(headers) {
                metadata_only(&object)
            } else {
                object
            })
        }
        ("POST", None) => {
            let mut object = parse_body(body, content_type)?;
            validate_fields(&target.rt, &object, body, query, warnings)?;
            admission::reset_status_on_create(&target.rt, &mut object);
            Ok(Served::Json(
                StatusCode::CREATED,
                store.create(&target.rt, ns, object)?,
            ))
        }
        ("PUT", Some(name)) => {
            let object = parse_body(body, content_type)?;
            validate_fields(&target.rt, &object, body, query, warnings)?;
            ok(store.update(&target.rt, ns, name, object, subresource)?)
        }
        ("PATCH", Some(name)) => {
            let kind = PatchKind::from_content_type(content_type)?;
            let patch = parse_body(body, content_type)?;
            let force = query.get("force").is_some_and(|f| f == "true");
            let manager = query
                .get("fieldManager")
                .map(String::as_str)
                .unwrap_or_default();
            let existed = store.get(&target.rt, ns, name).is_ok();
            let object = if kind == PatchKind::Apply {
                if manager.is_empty() {
                    return Err(ApiError::invalid_kind(
                        "PatchOptions.meta.k8s.io",
                        "meta.k8s.io",
                        "PatchOptions",
                        "",
                        vec![crate::api_error::Cause::required_because(
                            "fieldManager",
                            "is required for apply patch",
                        )],
                    ));
                }
                let unknown = field_validation::unknown_fields(&target.rt, &patch);
                if !unknown.is_empty() {
                    return Err(field_validation::apply_error(
                        &target.rt,
                        ns.unwrap_or_default(),
                        name,
                        &unknown,
                    ));
                }
                let mut config = patch;
                if !existed {
                    admission::reset_status_on_create(&target.rt, &mut config);
                }
                store.apply(&target.rt, ns, name, &config, manager, force)?
            } else {
                if query.contains_key("force") {
                    return Err(ApiError::invalid_kind(
                        "PatchOptions.meta.k8s.io",
                        "meta.k8s.io",
                        "PatchOptions",
                        "",
                        vec![crate::api_error::Cause::forbidden(
                            "force",
                            "may not be specified for non-apply patch",
                        )],
                    ));
                }
                if kind != PatchKind::Json {
                    validate_fields(&target.rt, &patch, body, query, warnings)?;
                }
                store.patch(&target.rt, ns, name, kind, &patch, subresource)?
            };
            let status = if existed {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            };
            Ok(Served::Json(status, object))
        }
        ("DELETE", Some(name)) => {
            let options = delete_options(&parse_body(body, content_type)?, query);
            match store.delete(&target.rt, ns, name, &options)? {
                Deleted::Pending(object) => ok(object),
                Deleted::Removed(object) if target.rt.returns_deleted_object => ok(object),
                Deleted::Removed(object) => ok(json!({
                    "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                    "details": {"name": name, "group": target.rt.group, "kind": target.rt.plural,
                                "uid": object.pointer("/metadata/uid").cloned().unwrap_or(Value::Null)}
                })),
            }
        }
        ("DELETE", None) => {
            let options = delete_options(&parse_body(body, content_type)?, query);
            let list = store.list(&target.rt, ns, &list_options(query, &target.rt)?)?;
            let mut deleted = Vec::new();
            for item in list["items"].as_array().into_iter().flatten() {
                let name = item
                    .pointer("/metadata/name")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                let item_ns = item.pointer("/metadata/namespace").and_then(Value::as_str);
                if let Ok(Deleted::Removed(o) | Deleted::Pending(o)) =
                    store.delete(&target.rt, item_ns, name, &options)
                {
                    deleted.push(o);
                }
            }
            ok(
                json!({"apiVersion": target.rt.api_version(), "kind": format!("{}List", target.rt.kind),
                      "metadata": {"resourceVersion": store.resource_version().to_string()}, "items": deleted}),
            )
        }
        (verb, _) => Err(ApiError::method_not_allowed(format!(
            "{verb} is not supported on {path}"
        ))),
    }
}

/// Whether the client asked for `PartialObjectMetadata` (kube-rs `list_metadata`, kubectl
/// for some kinds): then nothing but metadata leaves the server — a Secret's data included.
fn wants_metadata_only(headers: &HeaderMap) -> bool {
    headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|accept| accept.contains("as=PartialObjectMetadata"))
}

fn metadata_only(object: &Value) -> Value {
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata",
           "metadata": object.get("metadata").cloned().unwrap_or(Value::Null)})
}

fn metadata_only_list(list: Value) -> Value {
    let items: Vec<Value> = list["items"]
        .as_array()
        .into_iter()
        .flatten()
        .map(metadata_only)
        .collect();
    json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
           "metadata": list.get("metadata").cloned().unwrap_or(Value::Null), "items": items})
}

/// The kind and Table form of a watch whose events carry Table rows.
fn rt_for_table(
    rt: &ResourceType,
    as_table: Option<IncludeObject>,
) -> Option<(ResourceType, IncludeObject)> {
    as_table.map(|include| (rt.clone(), include))
}

/// An event's object as the watch sends it: as is, or a one-row Table.
fn watched_object(table_rt: &Option<(ResourceType, IncludeObject)>, object: &Value) -> Value {
    match table_rt {
        Some((rt, include)) => {
            let metadata = json!({"resourceVersion": object.pointer("/metadata/resourceVersion")});
            table::table(rt, std::slice::from_ref(object), metadata, *include)
        }
        None => object.clone(),
    }
}

/// One watch event line.
fn event_line(kind: &str, object: &Value) -> Bytes {
    let mut line = json!({"type": kind, "object": object}).to_string();
    line.push('\n');
    Bytes::from(line)
}

fn watch(
    server: &ApiServer,
    target: Target,
    query: &HashMap<String, String>,
    options: ListOptions,
    as_table: Option<IncludeObject>,
) -> Response {
    let namespace = target.namespace.clone();
    let start = match server.store.watch(
        &target.rt,
        namespace.as_deref(),
        query.get("resourceVersion").map(String::as_str),
        &options,
    ) {
        Ok(start) => start,
        Err(error) => return error_response(&error),
    };
    let timeout = Duration::from_secs(
        query
            .get("timeoutSeconds")
            .and_then(|t| t.parse().ok())
            .unwrap_or(1800),
    );
    let bookmarks = query
        .get("allowWatchBookmarks")
        .is_some_and(|b| b == "true");
    let rt = target.rt;
    let resource = format!("{}/{}", rt.group, rt.plural);
    let expired = |message: String| {
        event_line(
            "ERROR",
            &json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                                    "message": message, "reason": "Expired", "code": 410}),
        )
    };
    let mut initial: Vec<Bytes> = Vec::new();
    if let Some(message) = start.too_old {
        initial.push(expired(message));
        let body = Body::from_stream(futures::stream::iter(
            initial.into_iter().map(Ok::<_, std::io::Error>),
        ));
        return (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "application/json")],
            body,
        )
            .into_response();
    }
    let table_rt = rt_for_table(&rt, as_table);
    let mut last_rv = 0;
    for event in &start.replay {
        if let Some(kind) = event_for_watch(event, &resource, namespace.as_deref(), &options) {
            initial.push(event_line(
                kind.as_str(),
                &watched_object(&table_rt, &event.object),
            ));
        }
        last_rv = last_rv.max(event.resource_version);
    }
    let store = server.store.clone();
    let deadline = tokio::time::Instant::now() + timeout;
    let state = (start.live, last_rv, false);
    let live = futures::stream::unfold(state, move |(mut live, last_rv, done)| {
        let (resource, namespace, options, store, rt, table_rt) = (
            resource.clone(),
            namespace.clone(),
            options.clone(),
            store.clone(),
            rt.clone(),
            table_rt.clone(),
        );
        async move {
            if done {
                return None;
            }
            loop {
                let next = tokio::time::timeout_at(
                    deadline.min(tokio::time::Instant::now() + Duration::from_secs(5)),
                    live.recv(),
                )
                .await;
                match next {
                    Ok(Ok(event)) => {
                        if event.resource_version <= last_rv {
                            continue; // already replayed from history
                        }
                        if let Some(kind) =
                            event_for_watch(&event, &resource, namespace.as_deref(), &options)
                        {
                            return Some((
                                event_line(
                                    kind.as_str(),
                                    &watched_object(&table_rt, &event.object),
                                ),
                                (live, event.resource_version, false),
                            ));
                        }
                    }
                    Ok(Err(RecvError::Lagged(_))) => {
                        let message = format!(
                            "too old resource version: {last_rv} ({})",
                            store.resource_version()
                        );
                        return Some((expired(message), (live, last_rv, true)));
                    }
                    Ok(Err(RecvError::Closed)) => return None,
                    Err(_) if tokio::time::Instant::now() >= deadline => return None,
                    Err(_) if bookmarks => {
                        let rv = store.resource_version();
                        let object = json!({"kind": rt.kind, "apiVersion": rt.api_version(),
                                            "metadata": {"resourceVersion": rv.to_string()}});
                        return Some((event_line("BOOKMARK", &object), (live, last_rv, false)));
                    }
                    Err(_) => {}
                }
            }
        }
    });
    let events = futures::stream::iter(initial)
        .chain(live)
        .map(Ok::<_, std::io::Error>);
    // An injected drop ends the stream with an error: hyper resets the connection mid-watch.
    let stream: futures::stream::BoxStream<'static, Result<Bytes, std::io::Error>> =
        match server.faults.drop_watch_after() {
            Some(count) => events
                .take(usize::try_from(count).unwrap_or(usize::MAX))
                .chain(futures::stream::once(async {
                    // Let the last event reach the client before the connection goes.
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    Err(std::io::Error::other("injected watch drop"))
                }))
                .boxed(),
            None => events.boxed(),
        };
    (
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        Body::from_stream(stream),
    )
        .into_response()
}

/// A running simulated API server.
pub struct RunningServer {
    /// The address it listens on.
    pub address: SocketAddr,
    /// `http://…` or `https://…`.
    pub url: String,
    /// The CA certificate (PEM) clients must trust, for HTTPS.
    pub ca_pem: Option<String>,
    handle: axum_server::Handle<SocketAddr>,
}

impl RunningServer {
    /// Stops accepting connections and ends open ones.
    pub fn shutdown(&self) {
        self.handle.shutdown();
    }
}

/// Why the server could not start.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The address could not be bound.
    #[error("cannot listen on {address}: {error}")]
    Bind {
        /// The address asked for.
        address: SocketAddr,
        /// The OS error.
        error: std::io::Error,
    },
    /// The TLS certificate could not be made or loaded.
    #[error("cannot set up TLS: {0}")]
    Tls(String),
}

/// Serves `store` on `address` (port 0 picks one), over HTTPS with a fresh CA and
/// leaf certificate when `tls` is true. Returns once listening.
pub async fn serve(
    store: Arc<Store>,
    address: SocketAddr,
    tls: bool,
) -> Result<RunningServer, ServeError> {
    serve_with_faults(store, address, tls, Arc::new(Faults::default())).await
}

/// Like [`serve`], injecting the faults `faults` describes (changeable while running
/// through `PUT /_sim/v1/faults`).
pub async fn serve_with_faults(
    store: Arc<Store>,
    address: SocketAddr,
    tls: bool,
    faults: Arc<Faults>,
) -> Result<RunningServer, ServeError> {
    let listener = std::net::TcpListener::bind(address)
        .map_err(|error| ServeError::Bind { address, error })?;
    listener
        .set_nonblocking(true)
        .map_err(|error| ServeError::Bind { address, error })?;
    let bound = listener
        .local_addr()
        .map_err(|error| ServeError::Bind { address, error })?;
    let app = ApiServer::new(store, faults).router();
    let handle = axum_server::Handle::new();
    let (url, ca_pem) = if tls {
        let certs = crate::tls::ServingCertificates::generate()
            .map_err(|e| ServeError::Tls(e.to_string()))?;
        let config = axum_server::tls_rustls::RustlsConfig::from_pem(
            certs.chain_pem().into_bytes(),
            certs.key_pem.into_bytes(),
        )
        .await
        .map_err(|e| ServeError::Tls(e.to_string()))?;
        let server = axum_server::from_tcp_rustls(listener, config)
            .map_err(|error| ServeError::Bind { address, error })?
            .handle(handle.clone());
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        (format!("https://{bound}"), Some(certs.ca_pem))
    } else {
        let server = axum_server::from_tcp(listener)
            .map_err(|error| ServeError::Bind { address, error })?
            .handle(handle.clone());
        tokio::spawn(async move { server.serve(app.into_make_service()).await });
        (format!("http://{bound}"), None)
    };
    Ok(RunningServer {
        address: bound,
        url,
        ca_pem,
        handle,
    })
}
