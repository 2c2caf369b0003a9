//! API-server conformance over raw HTTP: server-side apply ownership, field validation,
//! create-time status, the scale subresource, Tables, exact error texts, selectors,
//! strategic merge through the API, and fault injection responses.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::start;
use kube_sim::RunningServer;

/// One HTTP exchange: status, headers, JSON body (Null when not JSON).
struct Reply {
    code: u16,
    headers: reqwest::header::HeaderMap,
    body: Value,
}

async fn call(
    server: &RunningServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<Value>,
) -> Reply {
    call_with(server, method, path, content_type, body, &[]).await
}

async fn call_with(
    server: &RunningServer,
    method: &str,
    path: &str,
    content_type: &str,
    body: Option<Value>,
    headers: &[(&str, &str)],
) -> Reply {
    let mut request =
        reqwest::Client::new().request(method.parse().unwrap(), format!("{}{path}", server.url));
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    if let Some(body) = body {
        request = request
            .header("Content-Type", content_type)
            .body(body.to_string());
    }
    let response = request.send().await.unwrap();
    let code = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Reply {
        code,
        headers,
        body: serde_json::from_str(&text).unwrap_or(Value::Null),
    }
}

const APPLY: &str = "application/apply-patch+yaml";
const MERGE: &str = "application/merge-patch+json";
const JSON_PATCH: &str = "application/json-patch+json";
const STRATEGIC: &str = "application/strategic-merge-patch+json";
const CM: &str = "/api/v1/namespaces/default/configmaps";

/// A ConfigMap; empty labels are left out (an empty map applied is a field of its own).
fn config_map(name: &str, labels: Value, data: Value) -> Value {
    let mut object = json!({"apiVersion": "v1", "kind": "ConfigMap",
                            "metadata": {"name": name}, "data": data});
    if labels.as_object().is_some_and(|l| !l.is_empty()) {
        object["metadata"]["labels"] = labels;
    }
    object
}

fn statefulset(name: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
           "metadata": {"name": name},
           "spec": {"replicas": 3, "serviceName": name,
                    "selector": {"matchLabels": {"app": name}},
                    "template": {"metadata": {"labels": {"app": name}},
                                 "spec": {"containers": [{"name": "app", "image": "busybox"}]}}},
           "status": {"replicas": 7}})
}

fn managed_entry<'a>(object: &'a Value, manager: &str) -> Option<&'a Value> {
    object["metadata"]["managedFields"]
        .as_array()?
        .iter()
        .find(|e| e["manager"] == manager)
}

mod server_side_apply {
    use super::*;

    #[tokio::test]
    async fn a_field_the_manager_stops_applying_is_removed_and_ownership_is_recorded() {
        let (server, _client) = start(false, 1000).await;
        let path = format!("{CM}/settings?fieldManager=tool");
        let first = config_map("settings", json!({"a": "1", "b": "2"}), json!({"k": "v"}));
        let created = call(&server, "PATCH", &path, APPLY, Some(first)).await;
        assert_eq!(created.code, 201, "{}", created.body);
        let second = config_map("settings", json!({"a": "1", "c": "3"}), json!({"k": "v"}));
        let applied = call(&server, "PATCH", &path, APPLY, Some(second)).await;
        assert_eq!(applied.code, 200, "{}", applied.body);
        assert_eq!(
            applied.body["metadata"]["labels"],
            json!({"a": "1", "c": "3"})
        );
        let entry = managed_entry(&applied.body, "tool").unwrap();
        assert_eq!(entry["operation"], "Apply");
        assert_eq!(entry["fieldsType"], "FieldsV1");
        assert_eq!(entry["apiVersion"], "v1");
        assert_eq!(
            entry["fieldsV1"],
            json!({"f:data": {"f:k": {}}, "f:metadata": {"f:labels": {"f:a": {}, "f:c": {}}}})
        );
    }

    #[tokio::test]
    async fn a_field_another_manager_still_owns_stays_when_one_manager_drops_it() {
        let (server, _client) = start(false, 1000).await;
        let body = config_map("shared", json!({"a": "1"}), json!({}));
        for manager in ["one", "two"] {
            let path = format!("{CM}/shared?fieldManager={manager}");
            let reply = call(&server, "PATCH", &path, APPLY, Some(body.clone())).await;
            assert!(reply.code < 300, "{}", reply.body);
        }
        let without = config_map("shared", json!({}), json!({}));
        let path = format!("{CM}/shared?fieldManager=one");
        let reply = call(&server, "PATCH", &path, APPLY, Some(without)).await;
        assert_eq!(reply.body["metadata"]["labels"], json!({"a": "1"}));
    }

    #[tokio::test]
    async fn changing_a_field_another_manager_applied_is_a_conflict_unless_forced() {
        let (server, _client) = start(false, 1000).await;
        let mine = config_map("owned", json!({}), json!({"x": "1"}));
        let path = format!("{CM}/owned?fieldManager=first");
        assert_eq!(
            call(&server, "PATCH", &path, APPLY, Some(mine)).await.code,
            201
        );
        let theirs = config_map("owned", json!({}), json!({"x": "2"}));
        let path = format!("{CM}/owned?fieldManager=second");
        let refused = call(&server, "PATCH", &path, APPLY, Some(theirs.clone())).await;
        assert_eq!(refused.code, 409);
        assert_eq!(refused.body["reason"], "Conflict");
        assert_eq!(
            refused.body["message"],
            "Apply failed with 1 conflict: conflict with \"first\": .data.x"
        );
        assert_eq!(refused.body["details"]["causes"][0]["field"], ".data.x");
        let forced = call(
            &server,
            "PATCH",
            &format!("{path}&force=true"),
            APPLY,
            Some(theirs),
        )
        .await;
        assert_eq!(forced.code, 200, "{}", forced.body);
        assert_eq!(forced.body["data"]["x"], "2");
        assert!(
            managed_entry(&forced.body, "first").is_none(),
            "the forced field moved to the new owner: {}",
            forced.body["metadata"]["managedFields"]
        );
        assert_eq!(
            managed_entry(&forced.body, "second").unwrap()["fieldsV1"],
            json!({"f:data": {"f:x": {}}})
        );
    }

    #[tokio::test]
    async fn a_keyed_list_element_the_manager_stops_applying_is_removed() {
        let (server, _client) = start(false, 1000).await;
        let deployment = |containers: Value| {
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "web"},
                   "spec": {"selector": {"matchLabels": {"app": "web"}},
                            "template": {"metadata": {"labels": {"app": "web"}},
                                         "spec": {"containers": containers}}}})
        };
        let path = "/apis/apps/v1/namespaces/default/deployments/web?fieldManager=tool";
        let two = json!([{"name": "app", "image": "a"}, {"name": "side", "image": "s"}]);
        assert_eq!(
            call(&server, "PATCH", path, APPLY, Some(deployment(two)))
                .await
                .code,
            201
        );
        let one = json!([{"name": "app", "image": "a2"}]);
        let reply = call(&server, "PATCH", path, APPLY, Some(deployment(one))).await;
        assert_eq!(reply.code, 200, "{}", reply.body);
        assert_eq!(
            reply.body["spec"]["template"]["spec"]["containers"],
            json!([{"name": "app", "image": "a2"}])
        );
        let fields = &managed_entry(&reply.body, "tool").unwrap()["fieldsV1"];
        assert_eq!(
            fields["f:spec"]["f:template"]["f:spec"]["f:containers"],
            json!({"k:{\"name\":\"app\"}": {".": {}, "f:image": {}, "f:name": {}}})
        );
    }

    #[tokio::test]
    async fn an_apply_without_a_field_manager_is_refused() {
        let (server, _client) = start(false, 1000).await;
        let body = config_map("nameless", json!({}), json!({}));
        let reply = call(
            &server,
            "PATCH",
            &format!("{CM}/nameless"),
            APPLY,
            Some(body),
        )
        .await;
        assert_eq!(reply.code, 422);
        assert_eq!(
            reply.body["message"],
            "PatchOptions.meta.k8s.io \"\" is invalid: fieldManager: Required value: is required for apply patch"
        );
    }

    #[tokio::test]
    async fn an_apply_with_an_undeclared_field_cannot_be_typed() {
        let (server, _client) = start(false, 1000).await;
        let body = json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "typo"}, "dta": {}});
        let path = format!("{CM}/typo?fieldManager=tool");
        let reply = call(&server, "PATCH", &path, APPLY, Some(body)).await;
        assert_eq!(reply.code, 400);
        assert_eq!(
            reply.body["message"],
            "failed to create typed patch object (default/typo; /v1, Kind=ConfigMap): .dta: field not declared in schema"
        );
    }
}

mod field_validation {
    use super::*;

    fn typo(name: &str) -> Value {
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name}, "dta": {"a": "1"}})
    }

    #[tokio::test]
    async fn strict_refuses_unknown_fields_with_the_strict_decoding_text() {
        let (server, _client) = start(false, 1000).await;
        let reply = call(
            &server,
            "POST",
            &format!("{CM}?fieldValidation=Strict"),
            "application/json",
            Some(typo("strict")),
        )
        .await;
        assert_eq!(reply.code, 400);
        assert_eq!(reply.body["reason"], "BadRequest");
        assert_eq!(
            reply.body["message"],
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: unknown field \"dta\""
        );
        let nested = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
                            "spec": {"accessModes": ["ReadWriteOnce"], "foo": 1,
                                     "resources": {"requests": {"storage": "1Gi"}}}});
        let reply = call(
            &server,
            "POST",
            "/api/v1/namespaces/default/persistentvolumeclaims?fieldValidation=Strict",
            "application/json",
            Some(nested),
        )
        .await;
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .ends_with("strict decoding error: unknown field \"spec.foo\""),
            "{}",
            reply.body
        );
    }

    #[tokio::test]
    async fn strict_refuses_a_key_given_twice() {
        let (server, _client) = start(false, 1000).await;
        let body = r#"{"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "twice"},
                       "data": {"a": "1", "a": "2"}}"#;
        let response = reqwest::Client::new()
            .post(format!("{}{CM}?fieldValidation=Strict", server.url))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 400);
        let status: Value = response.json().await.unwrap();
        assert_eq!(
            status["message"],
            "ConfigMap in version \"v1\" cannot be handled as a ConfigMap: strict decoding error: duplicate field \"data.a\""
        );
    }

    #[tokio::test]
    async fn warn_accepts_and_sends_a_warning_header_and_ignore_stays_silent() {
        let (server, _client) = start(false, 1000).await;
        let warned = call(
            &server,
            "POST",
            &format!("{CM}?fieldValidation=Warn"),
            "application/json",
            Some(typo("warned")),
        )
        .await;
        assert_eq!(warned.code, 201);
        assert_eq!(
            warned.headers.get("warning").unwrap(),
            "299 - \"unknown field \\\"dta\\\"\""
        );
        let ignored = call(
            &server,
            "POST",
            &format!("{CM}?fieldValidation=Ignore"),
            "application/json",
            Some(typo("ignored")),
        )
        .await;
        assert_eq!(ignored.code, 201);
        assert!(ignored.headers.get("warning").is_none());
        let patched = call(
            &server,
            "PATCH",
            &format!("{CM}/ignored?fieldValidation=Strict"),
            MERGE,
            Some(json!({"metadata": {"labelz": {}}})),
        )
        .await;
        assert_eq!(patched.code, 400, "{}", patched.body);
    }

    #[tokio::test]
    async fn custom_resources_keep_unknown_fields_and_their_crd_is_established() {
        let (server, _client) = start(false, 1000).await;
        let crd = json!({"apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
                         "metadata": {"name": "widgets.example.com"},
                         "spec": {"group": "example.com", "scope": "Namespaced",
                                  "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
                                  "versions": [{"name": "v1", "served": true, "storage": true,
                                                "schema": {"openAPIV3Schema": {"type": "object",
                                                           "x-kubernetes-preserve-unknown-fields": true}}}]}});
        let created = call(
            &server,
            "POST",
            "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
            "application/json",
            Some(crd),
        )
        .await;
        assert_eq!(created.code, 201, "{}", created.body);
        let conditions: Vec<(String, String)> = created.body["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["type"].as_str().unwrap().to_owned(),
                    c["status"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        assert_eq!(
            conditions,
            [
                ("NamesAccepted".to_owned(), "True".to_owned()),
                ("Established".to_owned(), "True".to_owned())
            ]
        );
        assert_eq!(created.body["status"]["acceptedNames"]["kind"], "Widget");
        let widget = json!({"apiVersion": "example.com/v1", "kind": "Widget",
                            "metadata": {"name": "w"}, "anything": {"goes": 1}});
        let reply = call(
            &server,
            "POST",
            "/apis/example.com/v1/namespaces/default/widgets?fieldValidation=Strict",
            "application/json",
            Some(widget),
        )
        .await;
        assert_eq!(reply.code, 201, "{}", reply.body);
        assert_eq!(reply.body["anything"]["goes"], 1);
    }
}

#[tokio::test]
async fn a_status_sent_on_create_is_reset_for_kinds_with_a_status_subresource() {
    let (server, _client) = start(false, 1000).await;
    let claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim", "metadata": {"name": "c"},
                       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
                       "status": {"phase": "Bound", "capacity": {"storage": "1Gi"}}});
    let reply = call(
        &server,
        "POST",
        "/api/v1/namespaces/default/persistentvolumeclaims",
        "application/json",
        Some(claim),
    )
    .await;
    assert_eq!(reply.code, 201);
    assert_eq!(reply.body["status"], json!({"phase": "Pending"}));
    let reply = call(
        &server,
        "POST",
        "/apis/apps/v1/namespaces/default/statefulsets",
        "application/json",
        Some(statefulset("web")),
    )
    .await;
    assert_eq!(reply.code, 201);
    assert!(reply.body.get("status").is_none(), "{}", reply.body);
}

mod scale {
    use super::*;

    const WEB: &str = "/apis/apps/v1/namespaces/default/statefulsets/web";

    async fn with_statefulset() -> RunningServer {
        let (server, _client) = start(false, 1000).await;
        let reply = call(
            &server,
            "POST",
            "/apis/apps/v1/namespaces/default/statefulsets",
            "application/json",
            Some(statefulset("web")),
        )
        .await;
        assert_eq!(reply.code, 201);
        server
    }

    #[tokio::test]
    async fn the_scale_subresource_reads_and_changes_replicas() {
        let server = with_statefulset().await;
        let scale = call(&server, "GET", &format!("{WEB}/scale"), "", None).await;
        assert_eq!(scale.code, 200);
        assert_eq!(scale.body["kind"], "Scale");
        assert_eq!(scale.body["apiVersion"], "autoscaling/v1");
        assert_eq!(scale.body["spec"]["replicas"], 3);
        assert_eq!(scale.body["status"]["selector"], "app=web");
        let merged = call(
            &server,
            "PATCH",
            &format!("{WEB}/scale"),
            MERGE,
            Some(json!({"spec": {"replicas": 2}})),
        )
        .await;
        assert_eq!(merged.body["spec"]["replicas"], 2);
        let patched = call(
            &server,
            "PATCH",
            &format!("{WEB}/scale"),
            JSON_PATCH,
            Some(json!([{"op": "replace", "path": "/spec/replicas", "value": 1}])),
        )
        .await;
        assert_eq!(patched.body["spec"]["replicas"], 1);
        let mut put = patched.body.clone();
        put["spec"]["replicas"] = json!(4);
        let replaced = call(
            &server,
            "PUT",
            &format!("{WEB}/scale"),
            "application/json",
            Some(put.clone()),
        )
        .await;
        assert_eq!(replaced.code, 200);
        assert_eq!(
            call(&server, "GET", WEB, "", None).await.body["spec"]["replicas"],
            4
        );
        let stale = call(
            &server,
            "PUT",
            &format!("{WEB}/scale"),
            "application/json",
            Some(put),
        )
        .await;
        assert_eq!(
            stale.code, 409,
            "the Scale's resourceVersion is a precondition"
        );
    }

    #[tokio::test]
    async fn discovery_lists_the_scale_subresource() {
        let server = with_statefulset().await;
        let list = call(&server, "GET", "/apis/apps/v1", "", None).await;
        let scale = list.body["resources"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["name"] == "statefulsets/scale")
            .cloned()
            .unwrap();
        assert_eq!(scale["kind"], "Scale");
        assert_eq!(scale["group"], "autoscaling");
    }
}

#[tokio::test]
async fn tables_carry_the_printer_columns_of_the_kind() {
    let (server, _client) = start(false, 1000).await;
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-t"},
                    "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                             "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "slow",
                             "gcePersistentDisk": {"pdName": "d"}}});
    call(
        &server,
        "POST",
        "/api/v1/persistentvolumes",
        "application/json",
        Some(pv),
    )
    .await;
    let accept = [(
        "Accept",
        "application/json;as=Table;v=v1;g=meta.k8s.io,application/json",
    )];
    let table = call_with(
        &server,
        "GET",
        "/api/v1/persistentvolumes",
        "",
        None,
        &accept,
    )
    .await;
    assert_eq!(table.body["kind"], "Table");
    let names: Vec<&str> = table.body["columnDefinitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        [
            "Name",
            "Capacity",
            "Access Modes",
            "Reclaim Policy",
            "Status",
            "Claim",
            "StorageClass",
            "VolumeAttributesClass",
            "Reason",
            "Age",
            "VolumeMode"
        ]
    );
    assert_eq!(table.body["columnDefinitions"][10]["priority"], 1);
    let row = &table.body["rows"][0];
    assert_eq!(
        row["cells"].as_array().unwrap()[..9],
        [
            json!("pv-t"),
            json!("5Gi"),
            json!("RWO"),
            json!("Retain"),
            json!("Pending"),
            json!(""),
            json!("slow"),
            json!("<unset>"),
            json!("")
        ]
    );
    assert_eq!(row["object"]["kind"], "PartialObjectMetadata");
    let one = call_with(
        &server,
        "GET",
        "/api/v1/persistentvolumes/pv-t",
        "",
        None,
        &accept,
    )
    .await;
    assert_eq!(one.body["rows"].as_array().unwrap().len(), 1);
    let plain = call(
        &server,
        "GET",
        "/api/v1/namespaces/default/configmaps",
        "",
        None,
    )
    .await;
    assert_eq!(
        plain.body["kind"], "ConfigMapList",
        "no Table unless asked for"
    );
}

mod error_texts {
    use super::*;

    #[tokio::test]
    async fn pv_volume_mode_is_immutable_with_the_value_quoted_once() {
        let (server, _client) = start(false, 1000).await;
        let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-m"},
                        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                                 "gcePersistentDisk": {"pdName": "d"}}});
        call(
            &server,
            "POST",
            "/api/v1/persistentvolumes",
            "application/json",
            Some(pv),
        )
        .await;
        let reply = call(
            &server,
            "PATCH",
            "/api/v1/persistentvolumes/pv-m",
            MERGE,
            Some(json!({"spec": {"volumeMode": "Block"}})),
        )
        .await;
        assert_eq!(reply.code, 422);
        assert_eq!(
            reply.body["message"],
            "PersistentVolume \"pv-m\" is invalid: volumeMode: Invalid value: \"Block\": field is immutable"
        );
    }

    async fn claim(server: &RunningServer, name: &str, class: Value) {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if !class.is_null() {
            spec["storageClassName"] = class;
        }
        let body = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                          "metadata": {"name": name}, "spec": spec});
        let reply = call(
            server,
            "POST",
            "/api/v1/namespaces/default/persistentvolumeclaims",
            "application/json",
            Some(body),
        )
        .await;
        assert_eq!(reply.code, 201, "{}", reply.body);
    }

    #[tokio::test]
    async fn a_claim_class_may_be_set_from_unset_but_not_changed_from_empty() {
        let (server, _client) = start(false, 1000).await;
        claim(&server, "unset", Value::Null).await;
        claim(&server, "empty", json!("")).await;
        async fn set(server: &RunningServer, name: &str) -> Reply {
            let path = format!("/api/v1/namespaces/default/persistentvolumeclaims/{name}");
            let class = json!({"spec": {"storageClassName": "fast"}});
            call(server, "PATCH", &path, MERGE, Some(class)).await
        }
        assert_eq!(set(&server, "unset").await.code, 200);
        let refused = set(&server, "empty").await;
        assert_eq!(refused.code, 422);
        let message = refused.body["message"].as_str().unwrap();
        assert!(
            message.starts_with(
                "PersistentVolumeClaim \"empty\" is invalid: spec: Forbidden: spec is immutable after creation \
                 except resources.requests and volumeAttributesClassName for bound claims\n  core.PersistentVolumeClaimSpec{"
            ),
            "{message}"
        );
        assert!(
            message.contains("- \tStorageClassName: \"\",\n+ \tStorageClassName: \"fast\","),
            "{message}"
        );
    }

    #[tokio::test]
    async fn a_claim_volume_mode_change_reports_both_the_spec_and_the_field() {
        let (server, _client) = start(false, 1000).await;
        claim(&server, "mode", json!("x")).await;
        let reply = call(
            &server,
            "PATCH",
            "/api/v1/namespaces/default/persistentvolumeclaims/mode",
            MERGE,
            Some(json!({"spec": {"volumeMode": "Block"}})),
        )
        .await;
        let causes: Vec<&str> = reply.body["details"]["causes"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c["field"].as_str().unwrap())
            .collect();
        assert_eq!(causes, ["spec", "volumeMode"]);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .ends_with("volumeMode: Invalid value: \"Block\": field is immutable]"),
            "{}",
            reply.body
        );
    }

    #[tokio::test]
    async fn a_json_patch_setting_a_stale_resource_version_is_a_conflict() {
        let (server, _client) = start(false, 1000).await;
        let body = config_map("guarded", json!({}), json!({"a": "1"}));
        let created = call(&server, "POST", CM, "application/json", Some(body)).await;
        let rv = created.body["metadata"]["resourceVersion"]
            .as_str()
            .unwrap()
            .to_owned();
        let change = |rv: &str, value: &str| {
            json!([{"op": "replace", "path": "/metadata/resourceVersion", "value": rv},
                   {"op": "replace", "path": "/data/a", "value": value}])
        };
        let first = call(
            &server,
            "PATCH",
            &format!("{CM}/guarded"),
            JSON_PATCH,
            Some(change(&rv, "2")),
        )
        .await;
        assert_eq!(first.code, 200, "{}", first.body);
        let stale = call(
            &server,
            "PATCH",
            &format!("{CM}/guarded"),
            JSON_PATCH,
            Some(change(&rv, "3")),
        )
        .await;
        assert_eq!(stale.code, 409);
        assert_eq!(
            stale.body["message"],
            "Operation cannot be fulfilled on configmaps \"guarded\": the object has been modified; \
             please apply your changes to the latest version and try again"
        );
    }

    #[tokio::test]
    async fn creating_a_name_whose_object_is_terminating_says_it_is_being_deleted() {
        let (server, _client) = start(false, 1000).await;
        let mut body = config_map("held", json!({}), json!({}));
        body["metadata"]["finalizers"] = json!(["example.com/hold"]);
        call(&server, "POST", CM, "application/json", Some(body.clone())).await;
        let deleted = call(&server, "DELETE", &format!("{CM}/held"), "", None).await;
        assert_eq!(deleted.code, 200);
        let again = call(&server, "POST", CM, "application/json", Some(body)).await;
        assert_eq!(again.code, 409);
        assert_eq!(again.body["reason"], "AlreadyExists");
        assert_eq!(
            again.body["message"],
            "object is being deleted: configmaps \"held\" already exists"
        );
    }

    #[tokio::test]
    async fn a_protobuf_body_is_refused_naming_the_alternative() {
        let (server, _client) = start(false, 1000).await;
        let reply = call(
            &server,
            "POST",
            CM,
            "application/vnd.kubernetes.protobuf",
            Some(json!("k8s")),
        )
        .await;
        assert_eq!(reply.code, 415);
        assert!(
            reply.body["message"]
                .as_str()
                .unwrap()
                .contains("kubectl apply -f"),
            "{}",
            reply.body
        );
    }
}

mod selectors {
    use super::*;

    async fn labelled(server: &RunningServer) {
        for (name, labels) in [
            ("one", json!({"app": "web", "tier": "front"})),
            ("two", json!({"app": "web", "tier": "back"})),
            ("three", json!({"app": "db"})),
        ] {
            let body = config_map(name, labels, json!({}));
            assert_eq!(
                call(server, "POST", CM, "application/json", Some(body))
                    .await
                    .code,
                201
            );
        }
    }

    fn names(list: &Value) -> Vec<String> {
        let mut names: Vec<String> = list["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|i| i["metadata"]["name"].as_str().unwrap().to_owned())
            .collect();
        names.sort();
        names
    }

    #[tokio::test]
    async fn label_selectors_filter_lists_over_http() {
        let (server, _client) = start(false, 1000).await;
        labelled(&server).await;
        for (selector, want) in [
            ("app=web", vec!["one", "two"]),
            ("app!=web", vec!["three"]),
            ("tier in (front,middle)", vec!["one"]),
            ("tier notin (front)", vec!["three", "two"]),
            ("tier", vec!["one", "two"]),
            ("!tier", vec!["three"]),
        ] {
            let path = format!("{CM}?labelSelector={}", percent(selector));
            let reply = call(&server, "GET", &path, "", None).await;
            assert_eq!(names(&reply.body), want, "{selector}");
        }
    }

    #[tokio::test]
    async fn field_selectors_filter_and_unsupported_fields_are_refused() {
        let (server, _client) = start(false, 1000).await;
        labelled(&server).await;
        let reply = call(
            &server,
            "GET",
            &format!("{CM}?fieldSelector=metadata.name%3Dtwo"),
            "",
            None,
        )
        .await;
        assert_eq!(names(&reply.body), ["two"]);
        let reply = call(
            &server,
            "GET",
            &format!("{CM}?fieldSelector=metadata.name!%3Dtwo"),
            "",
            None,
        )
        .await;
        assert_eq!(names(&reply.body), ["one", "three"]);
        let refused = call(
            &server,
            "GET",
            &format!("{CM}?fieldSelector=data.x%3Dy"),
            "",
            None,
        )
        .await;
        assert_eq!(refused.code, 400);
        assert_eq!(
            refused.body["message"],
            "\"data.x\" is not a known field selector: only \"metadata.name\", \"metadata.namespace\""
        );
        let pods = call(
            &server,
            "GET",
            "/api/v1/pods?fieldSelector=spec.volumes%3Dx",
            "",
            None,
        )
        .await;
        assert_eq!(pods.code, 400);
        assert_eq!(
            pods.body["message"],
            "field label not supported: spec.volumes"
        );
        let by_node = call(
            &server,
            "GET",
            "/api/v1/pods?fieldSelector=spec.nodeName%3Dn",
            "",
            None,
        )
        .await;
        assert_eq!(by_node.code, 200);
    }

    fn percent(text: &str) -> String {
        text.bytes()
            .map(|b| match b {
                b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'.' | b'_' => {
                    (b as char).to_string()
                }
                other => format!("%{other:02X}"),
            })
            .collect()
    }
}

#[tokio::test]
async fn strategic_merge_through_the_api_merges_keyed_lists_and_metadata_lists() {
    let (server, _client) = start(false, 1000).await;
    let deployment = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "smp", "finalizers": ["example.com/a"]},
        "spec": {"selector": {"matchLabels": {"app": "smp"}},
                 "template": {"metadata": {"labels": {"app": "smp"}},
                              "spec": {"containers": [{"name": "app", "image": "v1"},
                                                      {"name": "side", "image": "s1"}]}}}});
    let path = "/apis/apps/v1/namespaces/default/deployments";
    assert_eq!(
        call(&server, "POST", path, "application/json", Some(deployment))
            .await
            .code,
        201
    );
    let patch = json!({"metadata": {"finalizers": ["example.com/b"]},
        "spec": {"template": {"spec": {"containers": [
            {"name": "app", "image": "v2"}, {"name": "side", "$patch": "delete"},
            {"name": "new", "image": "n1"}]}}}});
    let reply = call(
        &server,
        "PATCH",
        &format!("{path}/smp"),
        STRATEGIC,
        Some(patch),
    )
    .await;
    assert_eq!(reply.code, 200, "{}", reply.body);
    assert_eq!(
        reply.body["spec"]["template"]["spec"]["containers"],
        json!([{"name": "app", "image": "v2"}, {"name": "new", "image": "n1"}])
    );
    assert_eq!(
        reply.body["metadata"]["finalizers"],
        json!(["example.com/a", "example.com/b"])
    );
    let removed = call(
        &server,
        "PATCH",
        &format!("{path}/smp"),
        STRATEGIC,
        Some(json!({"metadata": {"$deleteFromPrimitiveList/finalizers": ["example.com/a", "example.com/b"]}})),
    )
    .await;
    assert_eq!(removed.body["metadata"]["finalizers"], json!([]));
}

mod faults {
    use super::*;

    async fn set(server: &RunningServer, config: Value) -> Value {
        let reply = call(
            server,
            "PUT",
            "/_sim/v1/faults",
            "application/json",
            Some(config),
        )
        .await;
        assert_eq!(reply.code, 200, "{}", reply.body);
        reply.body
    }

    #[tokio::test]
    async fn an_injected_conflict_names_the_object_and_a_429_says_when_to_retry() {
        let (server, _client) = start(false, 1000).await;
        let body = config_map("target", json!({}), json!({}));
        call(&server, "POST", CM, "application/json", Some(body)).await;
        set(&server, json!({"errors": [{"verb": "PATCH", "resource": "configmaps", "code": 409, "rate": 1.0},
                                       {"verb": "GET", "resource": "configmaps", "code": 429, "rate": 1.0}]}))
        .await;
        let conflict = call(
            &server,
            "PATCH",
            &format!("{CM}/target"),
            MERGE,
            Some(json!({})),
        )
        .await;
        assert_eq!(conflict.code, 409);
        assert_eq!(
            conflict.body["message"],
            "Operation cannot be fulfilled on configmaps \"target\": the object has been modified; \
             please apply your changes to the latest version and try again"
        );
        let throttled = call(&server, "GET", &format!("{CM}/target"), "", None).await;
        assert_eq!(throttled.code, 429);
        assert_eq!(throttled.headers.get("retry-after").unwrap(), "1");
    }

    #[tokio::test]
    async fn errors_hit_only_the_configured_verb_and_kind() {
        let (server, _client) = start(false, 1000).await;
        for name in ["a", "b"] {
            call(
                &server,
                "POST",
                CM,
                "application/json",
                Some(config_map(name, json!({}), json!({}))),
            )
            .await;
        }
        set(&server, json!({"errors": [{"verb": "DELETE", "resource": "configmaps", "code": 500, "rate": 1.0}]})).await;
        assert_eq!(
            call(&server, "DELETE", &format!("{CM}/a"), "", None)
                .await
                .code,
            500
        );
        assert_eq!(
            call(&server, "GET", &format!("{CM}/a"), "", None)
                .await
                .code,
            200
        );
        assert_eq!(
            call(
                &server,
                "DELETE",
                "/api/v1/namespaces/default/secrets/none",
                "",
                None
            )
            .await
            .code,
            404,
            "other kinds are served normally"
        );
    }

    #[tokio::test]
    async fn a_configuration_without_a_seed_keeps_the_current_seed() {
        let (server, _client) = start(false, 1000).await;
        set(&server, json!({"seed": 42})).await;
        let kept = set(&server, json!({"latencyMs": 1})).await;
        assert_eq!(kept["seed"], 42);
        assert_eq!(kept["latencyMs"], 1);
    }

    #[tokio::test]
    async fn injected_latency_delays_each_resource_request() {
        let (server, _client) = start(false, 1000).await;
        set(&server, json!({"latencyMs": 300})).await;
        let began = Instant::now();
        assert_eq!(call(&server, "GET", CM, "", None).await.code, 200);
        // A lower bound only: the server sleeps at least this long before answering.
        assert!(began.elapsed() >= Duration::from_millis(300));
    }

    #[tokio::test]
    async fn a_dropped_connection_gets_no_answer() {
        let (server, _client) = start(false, 1000).await;
        set(&server, json!({"dropRate": 1.0})).await;
        let dropped = reqwest::Client::new()
            .get(format!("{}{CM}", server.url))
            .send()
            .await
            .and_then(|r| r.error_for_status());
        let failed = match dropped {
            Err(_) => true,
            Ok(response) => response.text().await.is_err(),
        };
        assert!(failed, "the request must fail without a response body");
        // The test API itself is never dropped.
        assert_eq!(set(&server, json!({})).await["dropRate"], 0.0);
    }
}
