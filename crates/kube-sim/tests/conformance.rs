//! Conformance tests: the real kube-rs client (and kubectl) against kube-sim over HTTP(S),
//! each asserting the status code, the message and the resulting state.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;

use futures::{StreamExt, TryStreamExt};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams, Preconditions};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::watcher;
use kube::{Client, Config};
use kube_sim::{RunningServer, Store, kubeconfig::kubeconfig, serve};
use serde_json::json;

async fn start(tls: bool, history: usize) -> (RunningServer, Client) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(Store::new(history));
    let server = serve(store, "127.0.0.1:0".parse().unwrap(), tls)
        .await
        .unwrap();
    let yaml = kubeconfig(&server.url, server.ca_pem.as_deref());
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    (server, Client::try_from(config).unwrap())
}

fn pv(name: &str) -> PersistentVolume {
    serde_json::from_value(json!({
        "metadata": {"name": name},
        "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                 "persistentVolumeReclaimPolicy": "Delete",
                 "gcePersistentDisk": {"pdName": format!("disk-{name}")}}
    }))
    .unwrap()
}

fn api_error(e: kube::Error) -> (u16, String) {
    match e {
        kube::Error::Api(status) => (status.code, status.message),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn https_create_defaults_and_server_owned_metadata() {
    let (_server, client) = start(true, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    let created = pvs
        .create(&PostParams::default(), &pv("pv-a"))
        .await
        .unwrap();
    let meta = &created.metadata;
    assert!(meta.uid.as_deref().is_some_and(|u| u.len() == 36));
    assert!(meta.creation_timestamp.is_some());
    assert_eq!(
        meta.finalizers.as_deref(),
        Some(&["kubernetes.io/pv-protection".to_owned()][..])
    );
    let spec = created.spec.unwrap();
    assert_eq!(spec.volume_mode.as_deref(), Some("Filesystem"));
    assert_eq!(created.status.unwrap().phase.as_deref(), Some("Pending"));
    let again = pvs
        .create(&PostParams::default(), &pv("pv-a"))
        .await
        .unwrap_err();
    assert_eq!(
        api_error(again),
        (409, "persistentvolumes \"pv-a\" already exists".to_owned())
    );
}

#[tokio::test]
async fn stale_resource_version_is_a_conflict_with_the_real_message() {
    let (_server, client) = start(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    let first = pvs
        .create(&PostParams::default(), &pv("pv-c"))
        .await
        .unwrap();
    let mut changed = first.clone();
    changed
        .spec
        .as_mut()
        .unwrap()
        .persistent_volume_reclaim_policy = Some("Retain".into());
    pvs.replace("pv-c", &PostParams::default(), &changed)
        .await
        .unwrap();
    let err = pvs
        .replace("pv-c", &PostParams::default(), &changed)
        .await
        .unwrap_err();
    assert_eq!(
        api_error(err),
        (
            409,
            "Operation cannot be fulfilled on persistentvolumes \"pv-c\": the object has been modified; \
             please apply your changes to the latest version and try again"
                .to_owned()
        )
    );
}

#[tokio::test]
async fn pv_source_is_immutable() {
    let (_server, client) = start(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    pvs.create(&PostParams::default(), &pv("pv-i"))
        .await
        .unwrap();
    let patch = json!({"spec": {"gcePersistentDisk": null,
                                "csi": {"driver": "pd.csi.storage.gke.io", "volumeHandle": "h"}}});
    let err = pvs
        .patch("pv-i", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap_err();
    let (code, message) = api_error(err);
    assert_eq!(code, 422);
    assert!(
        message.starts_with("PersistentVolume \"pv-i\" is invalid: spec.persistentvolumesource: Forbidden: spec.persistentvolumesource is immutable after creation"),
        "{message}"
    );
    // Reclaim policy is mutable.
    let retain = json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}});
    let pv = pvs
        .patch("pv-i", &PatchParams::default(), &Patch::Strategic(&retain))
        .await
        .unwrap();
    assert_eq!(
        pv.spec.unwrap().persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
}

#[tokio::test]
async fn delete_with_wrong_uid_precondition_is_refused() {
    let (_server, client) = start(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    let created = pvs
        .create(&PostParams::default(), &pv("pv-u"))
        .await
        .unwrap();
    let params = DeleteParams {
        preconditions: Some(Preconditions {
            uid: Some("not-the-uid".into()),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    let (code, message) = api_error(pvs.delete("pv-u", &params).await.unwrap_err());
    assert_eq!(code, 409);
    let uid = created.metadata.uid.unwrap();
    assert!(
        message.ends_with(&format!(
            "Precondition failed: UID in precondition: not-the-uid, UID in object meta: {uid}"
        )),
        "{message}"
    );
    assert!(pvs.get("pv-u").await.is_ok(), "the PV survives");
}

#[tokio::test]
async fn finalizers_keep_a_deleted_claim_terminating_until_removed() {
    let (_server, client) = start(false, 1000).await;
    let classes: Api<StorageClass> = Api::all(client.clone());
    let class = json!({"metadata": {"name": "standard",
                                    "annotations": {"storageclass.kubernetes.io/is-default-class": "true"}},
                       "provisioner": "kubernetes.io/gce-pd"});
    classes
        .create(
            &PostParams::default(),
            &serde_json::from_value(class).unwrap(),
        )
        .await
        .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
    let claim = json!({"metadata": {"name": "data-0"},
                       "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
    let created = claims
        .create(
            &PostParams::default(),
            &serde_json::from_value(claim).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(
        created.spec.as_ref().unwrap().storage_class_name.as_deref(),
        Some("standard")
    );
    assert_eq!(
        created.metadata.finalizers.as_deref(),
        Some(&["kubernetes.io/pvc-protection".to_owned()][..])
    );

    let deleted = claims
        .delete("data-0", &DeleteParams::default())
        .await
        .unwrap();
    let terminating = deleted.left().unwrap();
    assert!(terminating.metadata.deletion_timestamp.is_some());

    let add = json!({"metadata": {"finalizers": ["example.com/late"]}});
    let (code, message) = api_error(
        claims
            .patch("data-0", &PatchParams::default(), &Patch::Strategic(&add))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("no new finalizers can be added if the object is being deleted"),
        "{message}"
    );

    let mut events = watcher(claims.clone(), watcher::Config::default()).boxed();
    // Let the watcher finish its initial list before the claim goes away.
    while let Some(event) = events.try_next().await.unwrap() {
        if matches!(event, watcher::Event::InitDone) {
            break;
        }
    }
    let remove = json!({"metadata": {"finalizers": null}});
    claims
        .patch("data-0", &PatchParams::default(), &Patch::Merge(&remove))
        .await
        .unwrap();
    let gone = claims.get("data-0").await.unwrap_err();
    assert_eq!(
        api_error(gone),
        (
            404,
            "persistentvolumeclaims \"data-0\" not found".to_owned()
        )
    );
    // The watcher saw the claim and then its deletion.
    let mut saw_delete = false;
    while let Ok(Ok(Some(event))) =
        tokio::time::timeout(std::time::Duration::from_secs(5), events.try_next()).await
    {
        if matches!(event, watcher::Event::Delete(_)) {
            saw_delete = true;
            break;
        }
    }
    assert!(saw_delete);
}

#[tokio::test]
async fn statefulset_claim_templates_are_immutable() {
    let (_server, client) = start(false, 1000).await;
    let sets: Api<StatefulSet> = Api::namespaced(client, "default");
    let sts = json!({"metadata": {"name": "web"}, "spec": {
        "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
        "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "nginx"}]}},
        "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": "intree", "resources": {"requests": {"storage": "1Gi"}}}}]}});
    let created = sets
        .create(
            &PostParams::default(),
            &serde_json::from_value(sts).unwrap(),
        )
        .await
        .unwrap();
    assert_eq!(created.metadata.generation, Some(1));
    let patch = json!({"spec": {"volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {
        "accessModes": ["ReadWriteOnce"], "storageClassName": "csi", "resources": {"requests": {"storage": "1Gi"}}}}]}});
    let (code, message) = api_error(
        sets.patch("web", &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_err(),
    );
    assert_eq!(code, 422);
    assert!(
        message.contains("spec: Forbidden: updates to statefulset spec for fields other than"),
        "{message}"
    );
    let scale = json!({"spec": {"replicas": 3}});
    let scaled = sets
        .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
        .await
        .unwrap();
    assert_eq!(scaled.metadata.generation, Some(2));
}

#[tokio::test]
async fn list_pages_with_limit_and_continue() {
    let (_server, client) = start(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    for i in 0..5 {
        pvs.create(&PostParams::default(), &pv(&format!("pv-{i}")))
            .await
            .unwrap();
    }
    let mut names = Vec::new();
    let mut params = ListParams::default().limit(2);
    loop {
        let page = pvs.list(&params).await.unwrap();
        assert!(page.items.len() <= 2);
        names.extend(page.items.into_iter().filter_map(|p| p.metadata.name));
        match page.metadata.continue_ {
            Some(token) if !token.is_empty() => params = params.continue_token(&token),
            _ => break,
        }
    }
    assert_eq!(names, ["pv-0", "pv-1", "pv-2", "pv-3", "pv-4"]);
    let selected = pvs
        .list(&ListParams::default().fields("metadata.name=pv-3"))
        .await
        .unwrap();
    assert_eq!(selected.items.len(), 1);
}

#[tokio::test]
async fn watch_from_a_compacted_version_gets_a_410_error_event() {
    let (server, client) = start(false, 3).await;
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    for i in 0..6 {
        pvs.create(&PostParams::default(), &pv(&format!("w-{i}")))
            .await
            .unwrap();
    }
    let url = format!(
        "{}/api/v1/persistentvolumes?watch=true&resourceVersion=1&timeoutSeconds=2",
        server.url
    );
    let body = reqwest::get(&url).await.unwrap();
    assert_eq!(
        body.status(),
        200,
        "a too-old watch starts with 200, not 410"
    );
    let text = body.text().await.unwrap();
    let first: serde_json::Value = serde_json::from_str(text.lines().next().unwrap()).unwrap();
    assert_eq!(first["type"], "ERROR");
    assert_eq!(first["object"]["code"], 410);
    assert!(
        first["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version: 1")
    );

    // kube's watcher relists and keeps going.
    let mut stream = watcher(pvs.clone(), watcher::Config::default()).boxed();
    let mut seen = 0;
    while let Ok(Some(Ok(event))) =
        tokio::time::timeout(std::time::Duration::from_secs(5), stream.next()).await
    {
        if let watcher::Event::InitApply(_) = event {
            seen += 1;
        }
        if matches!(event, watcher::Event::InitDone) {
            break;
        }
    }
    assert_eq!(seen, 6);
}
