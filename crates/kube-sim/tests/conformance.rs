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
#[path = "conformance/api_server.rs"]
mod api_server;

async fn start(tls: bool, history: usize) -> (RunningServer, Client) {
    let (server, client, _) = start_with_store(tls, history).await;
    (server, client)
}

async fn start_with_store(tls: bool, history: usize) -> (RunningServer, Client, Arc<Store>) {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(Store::new(history));
    let server = serve(store.clone(), "127.0.0.1:0".parse().unwrap(), tls)
        .await
        .unwrap();
    let yaml = kubeconfig(&server.url, server.ca_pem.as_deref());
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    (server, Client::try_from(config).unwrap(), store)
}

/// Assigns a pod to `node-1` through the `binding` subresource, as the scheduler does.
async fn bind(pods: &Api<k8s_openapi::api::core::v1::Pod>, name: &str) {
    let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": name},
                         "target": {"apiVersion": "v1", "kind": "Node", "name": "node-1"}});
    let _: serde_json::Value = pods
        .create_subresource("binding", name, &PostParams::default(), &binding)
        .await
        .unwrap();
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

mod controllers {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;
    use kube_sim::controllers::reconcile;

    fn claim(name: &str) -> PersistentVolumeClaim {
        serde_json::from_value(json!({"metadata": {"name": name},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}))
        .unwrap()
    }

    fn pod(name: &str, claim: &str, owner: Option<(&str, &str)>) -> Pod {
        let mut pod = json!({"metadata": {"name": name}, "spec": {"nodeName": "node-1",
            "containers": [{"name": "c", "image": "i"}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]}});
        if let Some((kind, uid)) = owner {
            pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": kind, "name": "web",
                                                         "uid": uid, "controller": true, "blockOwnerDeletion": true}]);
        }
        serde_json::from_value(pod).unwrap()
    }

    #[tokio::test]
    async fn claim_protection_holds_while_a_scheduled_pod_uses_the_claim() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client, "default");
        claims
            .create(&PostParams::default(), &claim("data-0"))
            .await
            .unwrap();
        pods.create(&PostParams::default(), &pod("web-0", "data-0", None))
            .await
            .unwrap();
        claims
            .delete("data-0", &DeleteParams::default())
            .await
            .unwrap();
        reconcile(&store);
        let kept = claims.get("data-0").await.unwrap();
        assert!(
            kept.metadata.deletion_timestamp.is_some(),
            "terminating while the pod exists"
        );

        // A scheduled pod is deleted gracefully: it stays (terminating) and still counts.
        let pending = pods
            .delete("web-0", &DeleteParams::default())
            .await
            .unwrap()
            .left()
            .unwrap();
        assert_eq!(pending.metadata.deletion_grace_period_seconds, Some(30));
        reconcile(&store);
        assert!(claims.get("data-0").await.is_ok());

        pods.delete(
            "web-0",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
        reconcile(&store);
        assert_eq!(api_error(claims.get("data-0").await.unwrap_err()).0, 404);
    }

    fn settle(store: &Store) {
        for _ in 0..6 {
            reconcile(store);
        }
    }

    /// A disk in the fake cloud and a PV naming it, pre-bound to claim `data-0`.
    async fn volume_on_disk(
        client: &Client,
        store: &Store,
        policy: &str,
    ) -> (String, Api<PersistentVolume>) {
        // The driver is installed: its external-attacher serves the disk's attachments.
        let drivers: Api<k8s_openapi::api::storage::v1::CSIDriver> = Api::all(client.clone());
        let driver =
            json!({"metadata": {"name": "ebs.csi.aws.com"}, "spec": {"attachRequired": true}});
        drivers
            .create(
                &PostParams::default(),
                &serde_json::from_value(driver).unwrap(),
            )
            .await
            .unwrap();
        let disk = store.cloud().create_disk(
            "kubernetes.io/aws-ebs",
            "static",
            1 << 30,
            Some("us-east-1a"),
        );
        let pvs: Api<PersistentVolume> = Api::all(client.clone());
        let mut spec = json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                              "persistentVolumeReclaimPolicy": policy, "storageClassName": "",
                              "claimRef": {"namespace": "default", "name": "data-0"}});
        spec.as_object_mut()
            .unwrap()
            .extend(disk.in_tree_source.as_object().unwrap().clone());
        let pv = serde_json::from_value(json!({"metadata": {"name": "pv-static"}, "spec": spec}))
            .unwrap();
        pvs.create(&PostParams::default(), &pv).await.unwrap();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
        let mut claim = claim("data-0");
        claim.spec.as_mut().unwrap().storage_class_name = Some(String::new());
        claims.create(&PostParams::default(), &claim).await.unwrap();
        settle(store);
        (disk.id, pvs)
    }

    #[tokio::test]
    async fn a_bound_volume_outlives_its_own_deletion_until_the_claim_goes() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (disk, pvs) = volume_on_disk(&client, &store, "Retain").await;
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
        let bound = claims.get("data-0").await.unwrap();
        assert_eq!(
            bound.spec.as_ref().unwrap().volume_name.as_deref(),
            Some("pv-static")
        );
        assert_eq!(bound.status.unwrap().phase.as_deref(), Some("Bound"));
        let annotations = bound.metadata.annotations.unwrap();
        assert_eq!(
            annotations
                .get("pv.kubernetes.io/bind-completed")
                .map(String::as_str),
            Some("yes")
        );
        assert_eq!(
            annotations
                .get("pv.kubernetes.io/bound-by-controller")
                .map(String::as_str),
            Some("yes")
        );

        pvs.delete("pv-static", &DeleteParams::default())
            .await
            .unwrap();
        settle(&store);
        let pv = pvs.get("pv-static").await.unwrap();
        assert!(pv.metadata.deletion_timestamp.is_some());
        assert_eq!(pv.status.unwrap().phase.as_deref(), Some("Bound"));

        claims
            .delete("data-0", &DeleteParams::default())
            .await
            .unwrap();
        settle(&store);
        assert_eq!(api_error(pvs.get("pv-static").await.unwrap_err()).0, 404);
        assert!(store.cloud().get(&disk).is_some(), "Retain keeps the disk");
    }

    #[tokio::test]
    async fn deleting_pvc_never_deletes_disk_with_retain() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (disk, pvs) = volume_on_disk(&client, &store, "Retain").await;
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
        claims
            .delete("data-0", &DeleteParams::default())
            .await
            .unwrap();
        settle(&store);
        let pv = pvs.get("pv-static").await.unwrap();
        assert_eq!(pv.status.unwrap().phase.as_deref(), Some("Released"));
        assert!(store.cloud().get(&disk).is_some());
    }

    #[tokio::test]
    async fn deleting_the_claim_of_a_delete_policy_volume_destroys_the_disk() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (disk, pvs) = volume_on_disk(&client, &store, "Delete").await;
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
        claims
            .delete("data-0", &DeleteParams::default())
            .await
            .unwrap();
        settle(&store);
        assert_eq!(api_error(pvs.get("pv-static").await.unwrap_err()).0, 404);
        assert!(
            store.cloud().get(&disk).is_none(),
            "this is the data loss the migration must prevent"
        );
    }

    #[tokio::test]
    async fn an_in_tree_class_provisions_a_migrated_volume_on_a_fresh_disk() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let classes: Api<StorageClass> = Api::all(client.clone());
        let class = json!({"metadata": {"name": "gp2"}, "provisioner": "kubernetes.io/aws-ebs",
                           "parameters": {"type": "gp2"}});
        classes
            .create(
                &PostParams::default(),
                &serde_json::from_value(class).unwrap(),
            )
            .await
            .unwrap();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
        let mut claim = claim("data-0");
        claim.spec.as_mut().unwrap().storage_class_name = Some("gp2".into());
        claims.create(&PostParams::default(), &claim).await.unwrap();
        settle(&store);
        // Migrated: only the CSI driver's external-provisioner provisions, and it is not installed yet.
        assert!(
            claims
                .get("data-0")
                .await
                .unwrap()
                .spec
                .unwrap()
                .volume_name
                .is_none()
        );
        assert!(store.cloud().list().is_empty());
        let drivers: Api<k8s_openapi::api::storage::v1::CSIDriver> = Api::all(client.clone());
        let driver =
            json!({"metadata": {"name": "ebs.csi.aws.com"}, "spec": {"attachRequired": true}});
        drivers
            .create(
                &PostParams::default(),
                &serde_json::from_value(driver).unwrap(),
            )
            .await
            .unwrap();
        settle(&store);
        let claim = claims.get("data-0").await.unwrap();
        let annotations = claim.metadata.annotations.clone().unwrap();
        assert_eq!(
            annotations
                .get("volume.kubernetes.io/storage-provisioner")
                .map(String::as_str),
            Some("ebs.csi.aws.com")
        );
        let pvs: Api<PersistentVolume> = Api::all(client);
        let pv = pvs
            .get(claim.spec.unwrap().volume_name.as_deref().unwrap())
            .await
            .unwrap();
        let pv_annotations = pv.metadata.annotations.clone().unwrap();
        assert_eq!(
            pv_annotations
                .get("pv.kubernetes.io/provisioned-by")
                .map(String::as_str),
            Some("kubernetes.io/aws-ebs")
        );
        assert_eq!(
            pv_annotations
                .get("pv.kubernetes.io/migrated-to")
                .map(String::as_str),
            Some("ebs.csi.aws.com")
        );
        assert!(
            pv.metadata
                .finalizers
                .unwrap()
                .contains(&"external-provisioner.volume.kubernetes.io/finalizer".to_owned())
        );
        let spec = pv.spec.unwrap();
        assert!(spec.aws_elastic_block_store.is_some());
        assert_eq!(
            spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        assert_eq!(store.cloud().list().len(), 1);
    }

    #[tokio::test]
    async fn pods_run_after_attach_and_a_second_node_gets_a_multi_attach_error() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
        for name in ["node-a", "node-b"] {
            let node = json!({"metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": "us-east-1a"}}});
            nodes
                .create(
                    &PostParams::default(),
                    &serde_json::from_value(node).unwrap(),
                )
                .await
                .unwrap();
        }
        let (disk, _pvs) = volume_on_disk(&client, &store, "Retain").await;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let mut first = pod("app-0", "data-0", None);
        first.spec.as_mut().unwrap().node_name = None;
        pods.create(&PostParams::default(), &first).await.unwrap();
        settle(&store);
        let running = pods.get("app-0").await.unwrap();
        assert_eq!(running.status.unwrap().phase.as_deref(), Some("Running"));
        let attached = store.cloud().get(&disk).unwrap();
        assert_eq!(attached.attached_to, vec!["node-a".to_owned()]);
        assert_eq!(attached.filesystem.as_deref(), Some("ext4"));

        let mut second = pod("app-1", "data-0", None);
        second.spec.as_mut().unwrap().node_name = Some("node-b".into());
        pods.create(&PostParams::default(), &second).await.unwrap();
        settle(&store);
        let stuck = pods.get("app-1").await.unwrap().status.unwrap();
        assert_eq!(stuck.phase.as_deref(), Some("Pending"));
        assert!(
            stuck
                .message
                .unwrap()
                .starts_with("Multi-Attach error for volume")
        );
    }

    #[tokio::test]
    async fn attachments_hold_the_volume_and_a_force_removed_pv_leaves_the_disk_stuck_attached() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let nodes: Api<k8s_openapi::api::core::v1::Node> = Api::all(client.clone());
        let node = json!({"metadata": {"name": "node-a"}});
        nodes
            .create(
                &PostParams::default(),
                &serde_json::from_value(node).unwrap(),
            )
            .await
            .unwrap();
        let (disk, pvs) = volume_on_disk(&client, &store, "Retain").await;
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let mut app = pod("app-0", "data-0", None);
        app.spec.as_mut().unwrap().node_name = None;
        pods.create(&PostParams::default(), &app).await.unwrap();
        settle(&store);
        assert_eq!(
            pods.get("app-0")
                .await
                .unwrap()
                .status
                .unwrap()
                .phase
                .as_deref(),
            Some("Running")
        );
        let attachments: Api<k8s_openapi::api::storage::v1::VolumeAttachment> =
            Api::all(client.clone());
        let attachment = attachments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .remove(0);
        assert_eq!(attachment.spec.node_name, "node-a");
        assert!(attachment.status.unwrap().attached);
        let finalizer = "external-attacher/ebs-csi-aws-com".to_owned();
        assert!(attachment.metadata.finalizers.unwrap().contains(&finalizer));
        assert!(
            pvs.get("pv-static")
                .await
                .unwrap()
                .metadata
                .finalizers
                .unwrap()
                .contains(&finalizer)
        );

        // A naive tool strips the PV's finalizers and deletes it while the disk is attached.
        let strip = json!({"metadata": {"finalizers": null}});
        pvs.patch("pv-static", &PatchParams::default(), &Patch::Merge(&strip))
            .await
            .unwrap();
        pvs.delete("pv-static", &DeleteParams::default())
            .await
            .unwrap();
        pods.delete(
            "app-0",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
        settle(&store);
        let stuck = attachments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .remove(0);
        assert!(stuck.metadata.deletion_timestamp.is_some());
        let detach_error = stuck.status.unwrap().detach_error.unwrap().message.unwrap();
        assert!(detach_error.contains("cannot detach"), "{detach_error}");
        assert_eq!(
            store.cloud().get(&disk).unwrap().attached_to,
            vec!["node-a".to_owned()]
        );
    }

    #[tokio::test]
    async fn migrated_to_marks_provisioned_in_tree_objects_but_never_static_ones() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let pvs: Api<PersistentVolume> = Api::all(client.clone());
        let mut dynamic = pv("dynamic");
        dynamic.metadata.annotations = Some(
            [(
                "pv.kubernetes.io/provisioned-by".to_owned(),
                "kubernetes.io/gce-pd".to_owned(),
            )]
            .into(),
        );
        pvs.create(&PostParams::default(), &dynamic).await.unwrap();
        pvs.create(&PostParams::default(), &pv("static"))
            .await
            .unwrap();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
        let mut old_claim = claim("old");
        old_claim.metadata.annotations = Some(
            [(
                "volume.beta.kubernetes.io/storage-provisioner".to_owned(),
                "kubernetes.io/gce-pd".to_owned(),
            )]
            .into(),
        );
        claims
            .create(&PostParams::default(), &old_claim)
            .await
            .unwrap();
        settle(&store);
        let migrated_to = |annotations: Option<std::collections::BTreeMap<String, String>>| {
            annotations.and_then(|a| a.get("pv.kubernetes.io/migrated-to").cloned())
        };
        assert_eq!(
            migrated_to(pvs.get("dynamic").await.unwrap().metadata.annotations).as_deref(),
            Some("pd.csi.storage.gke.io")
        );
        assert_eq!(
            migrated_to(pvs.get("static").await.unwrap().metadata.annotations),
            None
        );
        assert_eq!(
            migrated_to(claims.get("old").await.unwrap().metadata.annotations).as_deref(),
            Some("pd.csi.storage.gke.io")
        );
    }

    async fn statefulset_with_pod(client: &Client) -> (Api<StatefulSet>, Api<Pod>) {
        let sets: Api<StatefulSet> = Api::namespaced(client.clone(), "default");
        let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
        let sts = json!({"metadata": {"name": "web"}, "spec": {"serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}}, "spec": {"containers": [{"name": "c", "image": "i"}]}}}});
        let sts = sets
            .create(
                &PostParams::default(),
                &serde_json::from_value(sts).unwrap(),
            )
            .await
            .unwrap();
        let uid = sts.metadata.uid.unwrap();
        pods.create(
            &PostParams::default(),
            &pod("web-0", "data-web-0", Some(("StatefulSet", &uid))),
        )
        .await
        .unwrap();
        (sets, pods)
    }

    #[tokio::test]
    async fn orphan_delete_keeps_the_pods_and_drops_their_owner_reference() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (sets, pods) = statefulset_with_pod(&client).await;
        sets.delete("web", &DeleteParams::orphan()).await.unwrap();
        let terminating = sets.get("web").await.unwrap();
        assert!(
            terminating
                .metadata
                .finalizers
                .unwrap()
                .contains(&"orphan".to_owned())
        );
        reconcile(&store);
        assert_eq!(api_error(sets.get("web").await.unwrap_err()).0, 404);
        let orphan = pods.get("web-0").await.unwrap();
        assert!(
            orphan.metadata.owner_references.is_none(),
            "{:?}",
            orphan.metadata.owner_references
        );
        reconcile(&store);
        assert!(
            pods.get("web-0").await.is_ok(),
            "an orphan is not collected"
        );
    }

    #[tokio::test]
    async fn background_delete_collects_the_dependents() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (sets, pods) = statefulset_with_pod(&client).await;
        sets.delete("web", &DeleteParams::background())
            .await
            .unwrap();
        reconcile(&store);
        let pod = pods.get("web-0").await.unwrap();
        assert!(
            pod.metadata.deletion_timestamp.is_some(),
            "the scheduled pod terminates gracefully"
        );
    }

    #[tokio::test]
    async fn foreground_delete_waits_for_the_dependents() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (sets, pods) = statefulset_with_pod(&client).await;
        sets.delete("web", &DeleteParams::foreground())
            .await
            .unwrap();
        reconcile(&store);
        assert!(
            sets.get("web").await.is_ok(),
            "the owner waits while its pod terminates"
        );
        reconcile(&store);
        let pod = pods.get("web-0").await.unwrap();
        assert_eq!(
            pod.metadata.finalizers,
            Some(vec![]),
            "the pod has no dependents of its own"
        );
        assert!(
            sets.get("web").await.is_ok(),
            "the pod is still there (grace period)"
        );
        pods.delete(
            "web-0",
            &DeleteParams {
                grace_period_seconds: Some(0),
                ..DeleteParams::default()
            },
        )
        .await
        .unwrap();
        reconcile(&store);
        assert_eq!(api_error(sets.get("web").await.unwrap_err()).0, 404);
    }
}

#[tokio::test]
async fn disk_content_is_written_and_listed_with_its_checksum_through_the_test_api() {
    let (server, _client, store) = start_with_store(false, 1000).await;
    let disk =
        store
            .cloud()
            .create_disk("kubernetes.io/gce-pd", "d", 1 << 20, Some("us-central1-a"));
    let http = reqwest::Client::new();
    let url = format!("{}/_sim/v1/disks/{}/content", server.url, disk.id);
    let put = http.put(&url).body("hello").send().await.unwrap();
    assert_eq!(put.status(), 200);
    let listed: serde_json::Value = http
        .get(format!("{}/_sim/v1/disks", server.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entry = &listed["disks"][0];
    assert_eq!(entry["id"], disk.id);
    // sha256("hello")
    assert_eq!(
        entry["sha256"],
        "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
    );
    assert_eq!(
        http.get(&url).send().await.unwrap().text().await.unwrap(),
        "hello"
    );
    let missing = http
        .put(format!("{}/_sim/v1/disks/nope/content", server.url))
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
}

mod statefulset {
    use super::*;
    use k8s_openapi::api::apps::v1::ControllerRevision;
    use k8s_openapi::api::core::v1::{Event, Pod};
    use kube_sim::controllers::reconcile;

    /// A StatefulSet `web` (selector app=web); pods go at once when deleted (grace 0).
    fn web(replicas: i32, policy: &str, claims: bool) -> StatefulSet {
        let mut sts = json!({"metadata": {"name": "web"}, "spec": {"serviceName": "web", "replicas": replicas,
            "podManagementPolicy": policy,
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": "nginx:1"}]}}}});
        if claims {
            sts["spec"]["volumeClaimTemplates"] = json!([{"metadata": {"name": "data", "labels": {"tier": "db"}},
                "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}}]);
        }
        serde_json::from_value(sts).unwrap()
    }

    struct Apis {
        sets: Api<StatefulSet>,
        pods: Api<Pod>,
        claims: Api<PersistentVolumeClaim>,
        revisions: Api<ControllerRevision>,
    }

    fn apis(client: &Client) -> Apis {
        Apis {
            sets: Api::namespaced(client.clone(), "default"),
            pods: Api::namespaced(client.clone(), "default"),
            claims: Api::namespaced(client.clone(), "default"),
            revisions: Api::namespaced(client.clone(), "default"),
        }
    }

    /// The scheduler and kubelet, by hand: bind the pod and report it Running and Ready.
    async fn run(pods: &Api<Pod>, name: &str) {
        let bound = pods
            .get(name)
            .await
            .unwrap()
            .spec
            .and_then(|s| s.node_name)
            .is_some();
        if !bound {
            bind(pods, name).await;
        }
        let ready = json!({"status": {"phase": "Running",
            "conditions": [{"type": "Ready", "status": "True"}]}});
        pods.patch_status(name, &PatchParams::default(), &Patch::Merge(&ready))
            .await
            .unwrap();
    }

    async fn names(pods: &Api<Pod>) -> Vec<String> {
        let mut names: Vec<String> = pods
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter_map(|p| p.metadata.name)
            .collect();
        names.sort();
        names
    }

    fn revision_label(pod: &Pod) -> String {
        pod.metadata.labels.as_ref().unwrap()["controller-revision-hash"].clone()
    }

    /// Reconciles and runs every pod until `expected` pods run (or gives up).
    async fn run_all(store: &Store, pods: &Api<Pod>, expected: usize) {
        for _ in 0..(3 * expected + 3) {
            reconcile(store);
            let list = pods.list(&ListParams::default()).await.unwrap().items;
            for pod in &list {
                let running =
                    pod.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running");
                if !running && pod.metadata.deletion_timestamp.is_none() {
                    run(pods, pod.metadata.name.as_deref().unwrap()).await;
                }
            }
            let running = pods
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .iter()
                .filter(|p| p.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Running"))
                .count();
            if list.len() == expected && running == expected {
                reconcile(store);
                return;
            }
        }
        panic!("pods never settled: {:?}", names(pods).await);
    }

    #[tokio::test]
    async fn ordered_ready_creates_the_next_replica_only_when_the_previous_is_ready() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let set = api
            .sets
            .create(&PostParams::default(), &web(3, "OrderedReady", false))
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0"]);
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0"], "web-0 is not ready yet");

        let pod = api.pods.get("web-0").await.unwrap();
        let labels = pod.metadata.labels.clone().unwrap();
        assert_eq!(labels["app"], "web");
        assert_eq!(labels["statefulset.kubernetes.io/pod-name"], "web-0");
        assert_eq!(labels["apps.kubernetes.io/pod-index"], "0");
        let owner = &pod.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!(
            (owner.kind.as_str(), owner.name.as_str()),
            ("StatefulSet", "web")
        );
        assert_eq!(Some(&owner.uid), set.metadata.uid.as_ref());
        assert_eq!(
            (owner.controller, owner.block_owner_deletion),
            (Some(true), Some(true))
        );
        let spec = pod.spec.unwrap();
        assert_eq!(
            (spec.hostname.as_deref(), spec.subdomain.as_deref()),
            (Some("web-0"), Some("web"))
        );

        run(&api.pods, "web-0").await;
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1"]);
        // Running but not Ready still blocks.
        bind(&api.pods, "web-1").await;
        let not_ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}]}});
        api.pods
            .patch_status("web-1", &PatchParams::default(), &Patch::Merge(&not_ready))
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1"]);
        run(&api.pods, "web-1").await;
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1", "web-2"]);
        run(&api.pods, "web-2").await;
        reconcile(&store);

        let status = api.sets.get("web").await.unwrap().status.unwrap();
        assert_eq!(
            (
                status.replicas,
                status.ready_replicas,
                status.current_replicas,
                status.updated_replicas,
                status.available_replicas
            ),
            (3, Some(3), Some(3), Some(3), Some(3))
        );
        assert_eq!(status.observed_generation, Some(1));
        let revision = status.update_revision.unwrap();
        assert_eq!(status.current_revision.as_ref(), Some(&revision));
        assert_eq!(
            revision_label(&api.pods.get("web-2").await.unwrap()),
            revision
        );
    }

    #[tokio::test]
    async fn parallel_creates_every_replica_at_once() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        api.sets
            .create(&PostParams::default(), &web(3, "Parallel", false))
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1", "web-2"]);
    }

    #[tokio::test]
    async fn claims_are_created_from_templates_only_when_missing() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        // A claim of the same name exists already, with another size: it is used as-is.
        let existing = json!({"metadata": {"name": "data-web-0"},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "5Gi"}}}});
        let existing = api
            .claims
            .create(
                &PostParams::default(),
                &serde_json::from_value(existing).unwrap(),
            )
            .await
            .unwrap();
        api.sets
            .create(&PostParams::default(), &web(2, "Parallel", true))
            .await
            .unwrap();
        reconcile(&store);

        let kept = api.claims.get("data-web-0").await.unwrap();
        assert_eq!(kept.metadata.uid, existing.metadata.uid);
        assert_eq!(
            kept.metadata.resource_version, existing.metadata.resource_version,
            "never updated"
        );
        assert!(
            kept.metadata.owner_references.is_none(),
            "claims are never adopted"
        );
        let created = api.claims.get("data-web-1").await.unwrap();
        let labels = created.metadata.labels.clone().unwrap();
        assert_eq!(
            (labels["tier"].as_str(), labels["app"].as_str()),
            ("db", "web"),
            "template labels plus the selector's"
        );
        assert_eq!(
            created
                .spec
                .as_ref()
                .unwrap()
                .resources
                .as_ref()
                .unwrap()
                .requests
                .as_ref()
                .unwrap()["storage"]
                .0,
            "1Gi"
        );
        assert!(
            created.metadata.owner_references.is_none(),
            "Retain: no owner"
        );
        for (pod, claim) in [("web-0", "data-web-0"), ("web-1", "data-web-1")] {
            let volumes = api
                .pods
                .get(pod)
                .await
                .unwrap()
                .spec
                .unwrap()
                .volumes
                .unwrap();
            let data = volumes.iter().find(|v| v.name == "data").unwrap();
            assert_eq!(
                data.persistent_volume_claim.as_ref().unwrap().claim_name,
                claim
            );
        }

        // A replaced pod finds its claim and does not get a new one.
        api.pods
            .delete("web-1", &DeleteParams::default())
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1"]);
        let again = api.claims.get("data-web-1").await.unwrap();
        assert_eq!(again.metadata.uid, created.metadata.uid);
        assert_eq!(
            again.metadata.resource_version,
            created.metadata.resource_version
        );
    }

    #[tokio::test]
    async fn a_terminating_claim_blocks_its_pod() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let held = json!({"metadata": {"name": "data-web-0", "finalizers": ["example.com/hold"]},
            "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}}});
        let old = api
            .claims
            .create(
                &PostParams::default(),
                &serde_json::from_value(held).unwrap(),
            )
            .await
            .unwrap();
        api.claims
            .delete("data-web-0", &DeleteParams::default())
            .await
            .unwrap();
        api.sets
            .create(&PostParams::default(), &web(1, "OrderedReady", true))
            .await
            .unwrap();
        reconcile(&store);
        reconcile(&store);
        assert!(
            names(&api.pods).await.is_empty(),
            "no pod while its claim is being deleted"
        );
        let events: Api<Event> = Api::namespaced(client.clone(), "default");
        let event = events
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .find(|e| e.reason.as_deref() == Some("FailedCreate"))
            .expect("a FailedCreate event");
        assert_eq!(event.type_.as_deref(), Some("Warning"));
        assert_eq!(
            event.message.as_deref(),
            Some(
                "create Pod web-0 in StatefulSet web failed error: pvc data-web-0 is being deleted"
            )
        );
        assert_eq!(event.involved_object.name.as_deref(), Some("web"));

        let release = json!({"metadata": {"finalizers": null}});
        api.claims
            .patch(
                "data-web-0",
                &PatchParams::default(),
                &Patch::Merge(&release),
            )
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0"]);
        let fresh = api.claims.get("data-web-0").await.unwrap();
        assert_ne!(
            fresh.metadata.uid, old.metadata.uid,
            "a fresh claim from the template"
        );
    }

    #[tokio::test]
    async fn a_pending_pod_gets_its_deleted_claim_recreated_from_the_template() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        api.sets
            .create(&PostParams::default(), &web(1, "OrderedReady", true))
            .await
            .unwrap();
        reconcile(&store);
        let first = api.claims.get("data-web-0").await.unwrap();
        // The pod is unscheduled, so nothing protects the claim: it goes, and comes back empty.
        api.claims
            .delete("data-web-0", &DeleteParams::default())
            .await
            .unwrap();
        reconcile(&store);
        let second = api.claims.get("data-web-0").await.unwrap();
        assert_ne!(second.metadata.uid, first.metadata.uid);
        assert!(second.metadata.deletion_timestamp.is_none());
    }

    #[tokio::test]
    async fn orphaned_pods_are_adopted_by_a_recreated_statefulset() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        api.sets
            .create(&PostParams::default(), &web(2, "OrderedReady", true))
            .await
            .unwrap();
        run_all(&store, &api.pods, 2).await;
        let before: Vec<Pod> = api.pods.list(&ListParams::default()).await.unwrap().items;
        let revision = api
            .sets
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .update_revision
            .unwrap();

        api.sets
            .delete("web", &DeleteParams::orphan())
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(api_error(api.sets.get("web").await.unwrap_err()).0, 404);
        for pod in api.pods.list(&ListParams::default()).await.unwrap().items {
            assert!(pod.metadata.owner_references.is_none(), "orphaned");
        }
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1"], "orphans stay");

        let set = api
            .sets
            .create(&PostParams::default(), &web(2, "OrderedReady", true))
            .await
            .unwrap();
        reconcile(&store);
        reconcile(&store);
        let after = api.pods.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(after.len(), 2);
        for (old, new) in before.iter().zip(&after) {
            assert_eq!(old.metadata.uid, new.metadata.uid, "adopted, not recreated");
            assert!(
                new.metadata.deletion_timestamp.is_none(),
                "same template: no roll"
            );
            let owner = &new.metadata.owner_references.as_ref().unwrap()[0];
            assert_eq!(Some(&owner.uid), set.metadata.uid.as_ref());
            assert_eq!(owner.controller, Some(true));
        }
        let status = api.sets.get("web").await.unwrap().status.unwrap();
        assert_eq!(
            status.update_revision.as_ref(),
            Some(&revision),
            "same template, same revision"
        );
        assert_eq!(status.ready_replicas, Some(2));
        let revisions = api
            .revisions
            .list(&ListParams::default())
            .await
            .unwrap()
            .items;
        assert_eq!(revisions.len(), 1, "the orphaned revision is adopted too");
        assert_eq!(
            revisions[0].metadata.owner_references.as_ref().unwrap()[0].uid,
            set.metadata.uid.clone().unwrap()
        );
    }

    #[tokio::test]
    async fn a_pod_that_does_not_match_the_selector_is_not_adopted() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let stranger = json!({"metadata": {"name": "web-0", "labels": {"app": "other"}},
            "spec": {"containers": [{"name": "c", "image": "i"}]}});
        let stranger = api
            .pods
            .create(
                &PostParams::default(),
                &serde_json::from_value(stranger).unwrap(),
            )
            .await
            .unwrap();
        api.sets
            .create(&PostParams::default(), &web(2, "OrderedReady", false))
            .await
            .unwrap();
        reconcile(&store);
        reconcile(&store);
        let pod = api.pods.get("web-0").await.unwrap();
        assert_eq!(pod.metadata.uid, stranger.metadata.uid);
        assert!(pod.metadata.owner_references.is_none());
        assert_eq!(
            names(&api.pods).await,
            ["web-0"],
            "stuck on web-0: AlreadyExists on every pass"
        );
        assert_eq!(
            api.sets.get("web").await.unwrap().status.unwrap().replicas,
            0
        );
    }

    #[tokio::test]
    async fn revision_hash_ignores_changes_outside_the_template() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let set = api
            .sets
            .create(&PostParams::default(), &web(1, "OrderedReady", true))
            .await
            .unwrap();
        reconcile(&store);
        let first = api
            .sets
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .update_revision
            .unwrap();
        assert!(first.starts_with("web-") && first.len() > 4, "{first}");
        let revision = api.revisions.get(&first).await.unwrap();
        assert_eq!(revision.revision, Some(1));
        assert_eq!(
            revision.metadata.owner_references.as_ref().unwrap()[0].uid,
            set.metadata.uid.clone().unwrap()
        );
        let data = revision.data.0;
        assert_eq!(
            data["spec"]["template"]["spec"]["containers"][0]["image"],
            "nginx:1"
        );
        assert!(
            data["spec"].get("volumeClaimTemplates").is_none(),
            "only the template is stored"
        );

        let outside = json!({"spec": {"replicas": 2, "updateStrategy": {"rollingUpdate": {"partition": 1}},
            "persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete", "whenScaled": "Retain"}}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&outside))
            .await
            .unwrap();
        reconcile(&store);
        let status = api.sets.get("web").await.unwrap().status.unwrap();
        assert_eq!(status.update_revision.as_ref(), Some(&first));
        assert_eq!(status.observed_generation, Some(2));
        assert_eq!(
            api.revisions
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .len(),
            1
        );

        let inside =
            json!({"spec": {"template": {"metadata": {"annotations": {"note": "cosmetic"}}}}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&inside))
            .await
            .unwrap();
        reconcile(&store);
        let status = api.sets.get("web").await.unwrap().status.unwrap();
        let second = status.update_revision.unwrap();
        assert_ne!(
            second, first,
            "even a cosmetic template change is a new revision"
        );
        assert_eq!(
            status.current_revision.as_ref(),
            Some(&first),
            "nothing rolled yet"
        );
        assert_eq!(api.revisions.get(&second).await.unwrap().revision, Some(2));
    }

    #[tokio::test]
    async fn a_template_change_rolls_from_the_highest_ordinal_one_at_a_time_above_the_partition() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        api.sets
            .create(&PostParams::default(), &web(3, "OrderedReady", false))
            .await
            .unwrap();
        run_all(&store, &api.pods, 3).await;
        let old = api
            .sets
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .update_revision
            .unwrap();
        let web0 = api.pods.get("web-0").await.unwrap().metadata.uid;
        let change = json!({"spec": {"updateStrategy": {"type": "RollingUpdate", "rollingUpdate": {"partition": 1}},
            "template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&change))
            .await
            .unwrap();

        reconcile(&store);
        assert_eq!(
            names(&api.pods).await,
            ["web-0", "web-1"],
            "web-2 goes first"
        );
        reconcile(&store);
        let new = api
            .sets
            .get("web")
            .await
            .unwrap()
            .status
            .unwrap()
            .update_revision
            .unwrap();
        assert_eq!(revision_label(&api.pods.get("web-2").await.unwrap()), new);
        reconcile(&store);
        assert_eq!(
            names(&api.pods).await,
            ["web-0", "web-1", "web-2"],
            "waits for web-2 to be ready"
        );
        run(&api.pods, "web-2").await;
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-2"], "then web-1");
        reconcile(&store);
        run(&api.pods, "web-1").await;
        for _ in 0..3 {
            reconcile(&store);
        }
        let web_0 = api.pods.get("web-0").await.unwrap();
        assert_eq!(web_0.metadata.uid, web0, "below the partition: untouched");
        assert_eq!(revision_label(&web_0), old);
        let status = api.sets.get("web").await.unwrap().status.unwrap();
        assert_eq!(
            (status.updated_replicas, status.current_replicas),
            (Some(2), Some(1))
        );
        assert_eq!(status.current_revision.as_ref(), Some(&old));

        let no_partition = json!({"spec": {"updateStrategy": {"rollingUpdate": {"partition": 0}}}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&no_partition))
            .await
            .unwrap();
        run_all(&store, &api.pods, 3).await;
        let status = api.sets.get("web").await.unwrap().status.unwrap();
        assert_eq!(status.current_revision.as_ref(), Some(&new), "rolled out");
        assert_eq!(status.updated_replicas, Some(3));
    }

    #[tokio::test]
    async fn scale_down_removes_the_highest_ordinal_first() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        api.sets
            .create(&PostParams::default(), &web(3, "OrderedReady", true))
            .await
            .unwrap();
        run_all(&store, &api.pods, 3).await;
        // web-2 lingers while terminating (a finalizer stands in for its kubelet).
        let hold = json!({"metadata": {"finalizers": ["example.com/hold"]}});
        api.pods
            .patch("web-2", &PatchParams::default(), &Patch::Merge(&hold))
            .await
            .unwrap();
        let scale = json!({"spec": {"replicas": 1}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .unwrap();
        reconcile(&store);
        assert!(
            api.pods
                .get("web-2")
                .await
                .unwrap()
                .metadata
                .deletion_timestamp
                .is_some()
        );
        reconcile(&store);
        let web1 = api.pods.get("web-1").await.unwrap();
        assert!(
            web1.metadata.deletion_timestamp.is_none(),
            "one at a time: web-2 is still terminating"
        );

        let release = json!({"metadata": {"finalizers": null}});
        api.pods
            .patch("web-2", &PatchParams::default(), &Patch::Merge(&release))
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0"]);
        let claims: Vec<String> = api
            .claims
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .map(|c| c.metadata.name.unwrap())
            .collect();
        assert_eq!(
            claims,
            ["data-web-0", "data-web-1", "data-web-2"],
            "Retain keeps the claims"
        );
        assert_eq!(
            api.sets.get("web").await.unwrap().status.unwrap().replicas,
            1
        );
    }

    #[tokio::test]
    async fn retention_policy_delete_owns_the_claims() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let mut sts = web(2, "Parallel", true);
        sts.spec.persistent_volume_claim_retention_policy = Some(
            serde_json::from_value(json!({"whenDeleted": "Delete", "whenScaled": "Retain"}))
                .unwrap(),
        );
        let set = api.sets.create(&PostParams::default(), &sts).await.unwrap();
        reconcile(&store);
        let owners = |claim: &PersistentVolumeClaim| -> Vec<(String, String, Option<bool>)> {
            claim
                .metadata
                .owner_references
                .iter()
                .flatten()
                .map(|r| (r.kind.clone(), r.uid.clone(), r.controller))
                .collect()
        };
        let uid = set.metadata.uid.clone().unwrap();
        for name in ["data-web-0", "data-web-1"] {
            let claim = api.claims.get(name).await.unwrap();
            assert_eq!(
                owners(&claim),
                [("StatefulSet".to_owned(), uid.clone(), Some(true))]
            );
        }

        let retain =
            json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Retain"}}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&retain))
            .await
            .unwrap();
        reconcile(&store);
        for name in ["data-web-0", "data-web-1"] {
            assert!(
                owners(&api.claims.get(name).await.unwrap()).is_empty(),
                "Retain removes our refs"
            );
        }
        let delete =
            json!({"spec": {"persistentVolumeClaimRetentionPolicy": {"whenDeleted": "Delete"}}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&delete))
            .await
            .unwrap();
        reconcile(&store);
        assert_eq!(
            owners(&api.claims.get("data-web-0").await.unwrap()).len(),
            1
        );

        // Deleting the set without orphaning takes the claims with it.
        api.sets
            .delete("web", &DeleteParams::background())
            .await
            .unwrap();
        for _ in 0..3 {
            reconcile(&store);
        }
        assert!(
            api.claims
                .list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
    }

    #[tokio::test]
    async fn retention_policy_when_scaled_delete_hands_removed_replicas_claims_to_their_pod() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let mut sts = web(2, "Parallel", true);
        sts.spec.persistent_volume_claim_retention_policy = Some(
            serde_json::from_value(json!({"whenDeleted": "Retain", "whenScaled": "Delete"}))
                .unwrap(),
        );
        api.sets.create(&PostParams::default(), &sts).await.unwrap();
        run_all(&store, &api.pods, 2).await;
        assert!(
            api.claims
                .get("data-web-1")
                .await
                .unwrap()
                .metadata
                .owner_references
                .is_none(),
            "in range: no owner"
        );
        let web1 = api.pods.get("web-1").await.unwrap();

        let scale = json!({"spec": {"replicas": 1}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .unwrap();
        reconcile(&store);
        let claim = api.claims.get("data-web-1").await.unwrap();
        let owner = &claim.metadata.owner_references.as_ref().unwrap()[0];
        assert_eq!((owner.kind.as_str(), owner.name.as_str()), ("Pod", "web-1"));
        assert_eq!(Some(&owner.uid), web1.metadata.uid.as_ref());
        assert_eq!(names(&api.pods).await, ["web-0"]);

        for _ in 0..3 {
            reconcile(&store);
        }
        assert_eq!(
            api_error(api.claims.get("data-web-1").await.unwrap_err()).0,
            404,
            "collected with its pod"
        );
        assert!(
            api.claims
                .get("data-web-0")
                .await
                .unwrap()
                .metadata
                .owner_references
                .is_none()
        );
    }

    #[tokio::test]
    async fn nothing_is_created_or_deleted_while_the_statefulset_is_terminating() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let api = apis(&client);
        let mut sts = web(2, "Parallel", false);
        sts.metadata.finalizers = Some(vec!["example.com/hold".to_owned()]);
        api.sets.create(&PostParams::default(), &sts).await.unwrap();
        reconcile(&store);
        assert_eq!(names(&api.pods).await, ["web-0", "web-1"]);
        api.sets
            .delete("web", &DeleteParams::default())
            .await
            .unwrap();
        api.pods
            .delete("web-1", &DeleteParams::default())
            .await
            .unwrap();
        let scale = json!({"spec": {"replicas": 1}});
        api.sets
            .patch("web", &PatchParams::default(), &Patch::Merge(&scale))
            .await
            .unwrap();
        reconcile(&store);
        reconcile(&store);
        assert_eq!(
            names(&api.pods).await,
            ["web-0"],
            "web-1 is not recreated, web-0 not condemned"
        );
        assert_eq!(
            api.sets.get("web").await.unwrap().status.unwrap().replicas,
            1,
            "status still updated"
        );
    }
}

mod deployment {
    use super::*;
    use k8s_openapi::api::apps::v1::{Deployment, ReplicaSet};
    use k8s_openapi::api::core::v1::Pod;
    use kube_sim::controllers::reconcile;

    fn api(client: &Client) -> (Api<Deployment>, Api<ReplicaSet>, Api<Pod>) {
        (
            Api::namespaced(client.clone(), "default"),
            Api::namespaced(client.clone(), "default"),
            Api::namespaced(client.clone(), "default"),
        )
    }

    fn app(replicas: i32, image: &str) -> Deployment {
        serde_json::from_value(json!({"metadata": {"name": "app"}, "spec": {"replicas": replicas,
            "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}},
                         "spec": {"terminationGracePeriodSeconds": 0, "containers": [{"name": "c", "image": image}]}}}}))
        .unwrap()
    }

    /// Reconciles, playing the kubelet for every pod, until nothing changes.
    async fn settle(store: &Store, pods: &Api<Pod>) {
        for _ in 0..12 {
            reconcile(store);
            for pod in pods.list(&ListParams::default()).await.unwrap().items {
                let name = pod.metadata.name.clone().unwrap();
                if pod.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Running") {
                    if pod
                        .spec
                        .as_ref()
                        .and_then(|s| s.node_name.as_deref())
                        .is_none()
                    {
                        bind(pods, &name).await;
                    }
                    let ready = json!({"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}});
                    pods.patch_status(&name, &PatchParams::default(), &Patch::Merge(&ready))
                        .await
                        .unwrap();
                }
            }
        }
        reconcile(store);
    }

    fn owner_of(meta: &kube::api::ObjectMeta) -> (String, String) {
        let owner = &meta.owner_references.as_ref().unwrap()[0];
        assert_eq!(owner.controller, Some(true));
        (owner.kind.clone(), owner.uid.clone())
    }

    #[tokio::test]
    async fn deployment_scales_to_zero_and_back() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (deployments, sets, pods) = api(&client);
        let deployment = deployments
            .create(&PostParams::default(), &app(2, "nginx:1"))
            .await
            .unwrap();
        settle(&store, &pods).await;
        let rs = sets.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(rs.len(), 1);
        let rs = &rs[0];
        let rs_name = rs.metadata.name.clone().unwrap();
        assert!(rs_name.starts_with("app-"), "{rs_name}");
        assert_eq!(
            owner_of(&rs.metadata),
            (
                "Deployment".to_owned(),
                deployment.metadata.uid.clone().unwrap()
            )
        );
        let running = pods.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(running.len(), 2);
        for pod in &running {
            let name = pod.metadata.name.as_deref().unwrap();
            assert_eq!(name.len(), rs_name.len() + 6, "{name}");
            assert!(name.starts_with(&format!("{rs_name}-")));
            assert_eq!(
                owner_of(&pod.metadata),
                ("ReplicaSet".to_owned(), rs.metadata.uid.clone().unwrap())
            );
            assert!(
                pod.metadata
                    .labels
                    .as_ref()
                    .unwrap()
                    .contains_key("pod-template-hash")
            );
        }
        let status = deployments.get("app").await.unwrap().status.unwrap();
        assert_eq!(
            (
                status.replicas,
                status.ready_replicas,
                status.available_replicas
            ),
            (Some(2), Some(2), Some(2))
        );
        assert_eq!(status.observed_generation, Some(1));

        let zero = json!({"spec": {"replicas": 0}});
        deployments
            .patch("app", &PatchParams::default(), &Patch::Merge(&zero))
            .await
            .unwrap();
        settle(&store, &pods).await;
        assert!(
            pods.list(&ListParams::default())
                .await
                .unwrap()
                .items
                .is_empty()
        );
        let status = deployments.get("app").await.unwrap().status.unwrap();
        assert_eq!(
            (
                status.replicas,
                status.available_replicas,
                status.observed_generation
            ),
            (Some(0), Some(0), Some(2))
        );
        let same = sets.get(&rs_name).await.unwrap();
        assert_eq!(
            same.metadata.uid, rs.metadata.uid,
            "the ReplicaSet stays, at zero"
        );
        assert_eq!(same.spec.replicas, Some(0));

        let back = json!({"spec": {"replicas": 2}});
        deployments
            .patch("app", &PatchParams::default(), &Patch::Merge(&back))
            .await
            .unwrap();
        settle(&store, &pods).await;
        assert_eq!(
            pods.list(&ListParams::default()).await.unwrap().items.len(),
            2
        );
        assert_eq!(
            sets.list(&ListParams::default()).await.unwrap().items.len(),
            1
        );
        let status = deployments.get("app").await.unwrap().status.unwrap();
        assert_eq!(
            (
                status.replicas,
                status.ready_replicas,
                status.observed_generation
            ),
            (Some(2), Some(2), Some(3))
        );
    }

    #[tokio::test]
    async fn a_deployment_template_change_moves_the_pods_to_a_new_replica_set() {
        let (_server, client, store) = start_with_store(false, 1000).await;
        let (deployments, sets, pods) = api(&client);
        deployments
            .create(&PostParams::default(), &app(4, "nginx:1"))
            .await
            .unwrap();
        settle(&store, &pods).await;
        let old = sets.list(&ListParams::default()).await.unwrap().items[0]
            .metadata
            .name
            .clone()
            .unwrap();

        let change = json!({"spec": {"template": {"spec": {"containers": [{"name": "c", "image": "nginx:2"}]}}}});
        deployments
            .patch("app", &PatchParams::default(), &Patch::Merge(&change))
            .await
            .unwrap();
        reconcile(&store);
        // maxSurge 25% of 4: one new pod before anything old goes.
        let all_rs = sets.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(all_rs.len(), 2);
        let new = all_rs
            .iter()
            .find(|rs| rs.metadata.name.as_deref() != Some(old.as_str()))
            .unwrap();
        assert_eq!(new.spec.replicas, Some(1));
        assert_eq!(
            pods.list(&ListParams::default()).await.unwrap().items.len(),
            5
        );

        settle(&store, &pods).await;
        let new_name = new.metadata.name.clone().unwrap();
        assert_eq!(sets.get(&old).await.unwrap().spec.replicas, Some(0));
        assert_eq!(sets.get(&new_name).await.unwrap().spec.replicas, Some(4));
        let remaining = pods.list(&ListParams::default()).await.unwrap().items;
        assert_eq!(remaining.len(), 4);
        assert!(
            remaining
                .iter()
                .all(|p| p.metadata.name.as_deref().unwrap().starts_with(&new_name))
        );
        let status = deployments.get("app").await.unwrap().status.unwrap();
        assert_eq!(
            (status.updated_replicas, status.available_replicas),
            (Some(4), Some(4))
        );
    }
}

mod faults {
    use super::*;
    use std::collections::BTreeSet;
    use std::time::Duration;

    async fn set_faults(server: &RunningServer, faults: serde_json::Value) {
        let response = reqwest::Client::new()
            .put(format!("{}/_sim/v1/faults", server.url))
            .json(&faults)
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }

    #[tokio::test]
    async fn the_nth_write_fails_with_a_500_and_the_next_succeeds() {
        let (server, client) = start(false, 1000).await;
        let pvs: Api<PersistentVolume> = Api::all(client);
        set_faults(&server, json!({"failNthWrite": 2})).await;
        pvs.create(&PostParams::default(), &pv("f-1"))
            .await
            .unwrap();
        let (code, message) = api_error(
            pvs.create(&PostParams::default(), &pv("f-2"))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, 500);
        assert!(message.contains("injected"), "{message}");
        assert_eq!(
            api_error(pvs.get("f-2").await.unwrap_err()).0,
            404,
            "a failed write changes nothing"
        );
        pvs.create(&PostParams::default(), &pv("f-2"))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn a_kube_watcher_survives_dropped_watch_streams() {
        let (server, client) = start(false, 1000).await;
        let pvs: Api<PersistentVolume> = Api::all(client);
        set_faults(&server, json!({"dropWatchAfterEvents": 1})).await;
        let mut stream = watcher(pvs.clone(), watcher::Config::default()).boxed();
        // Finish the initial list first.
        while let Some(event) = stream.next().await {
            if matches!(event, Ok(watcher::Event::InitDone)) {
                break;
            }
        }
        let mut seen = BTreeSet::new();
        for i in 0..4 {
            pvs.create(&PostParams::default(), &pv(&format!("d-{i}")))
                .await
                .unwrap();
        }
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while seen.len() < 4 && tokio::time::Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(5), stream.next()).await {
                Ok(Some(Ok(watcher::Event::Apply(pv) | watcher::Event::InitApply(pv)))) => {
                    seen.insert(pv.metadata.name.unwrap());
                }
                Ok(Some(_)) => {} // stream errors and restarts are expected; the watcher retries
                Ok(None) | Err(_) => break,
            }
        }
        assert_eq!(seen.len(), 4, "saw {seen:?}");
    }
}

mod pods {
    use super::*;
    use k8s_openapi::api::core::v1::Pod;

    #[tokio::test]
    async fn pod_spec_is_immutable_except_images_and_node_comes_from_binding() {
        let (_server, client) = start(false, 1000).await;
        let pods: Api<Pod> = Api::namespaced(client, "default");
        let pod = json!({"metadata": {"name": "p"}, "spec": {"containers": [{"name": "c", "image": "v1"}],
                         "volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "a"}}]}});
        pods.create(
            &PostParams::default(),
            &serde_json::from_value(pod).unwrap(),
        )
        .await
        .unwrap();
        let swap = json!({"spec": {"volumes": [{"name": "d", "persistentVolumeClaim": {"claimName": "b"}}]}});
        let (code, message) = api_error(
            pods.patch("p", &PatchParams::default(), &Patch::Merge(&swap))
                .await
                .unwrap_err(),
        );
        assert_eq!(code, 422);
        assert!(
            message.contains("pod updates may not change fields other than"),
            "{message}"
        );
        let node = json!({"spec": {"nodeName": "node-9"}});
        assert_eq!(
            api_error(
                pods.patch("p", &PatchParams::default(), &Patch::Merge(&node))
                    .await
                    .unwrap_err()
            )
            .0,
            422
        );
        let image = json!({"spec": {"containers": [{"name": "c", "image": "v2"}]}});
        pods.patch("p", &PatchParams::default(), &Patch::Strategic(&image))
            .await
            .unwrap();

        bind(&pods, "p").await;
        assert_eq!(
            pods.get("p")
                .await
                .unwrap()
                .spec
                .unwrap()
                .node_name
                .as_deref(),
            Some("node-1")
        );
        let binding = json!({"apiVersion": "v1", "kind": "Binding", "metadata": {"name": "p"},
                             "target": {"kind": "Node", "name": "node-2"}});
        let again = pods
            .create_subresource::<_, serde_json::Value>(
                "binding",
                "p",
                &PostParams::default(),
                &binding,
            )
            .await
            .unwrap_err();
        let (code, message) = api_error(again);
        assert_eq!(code, 409);
        assert!(
            message.contains("is already assigned to node \"node-1\""),
            "{message}"
        );
    }
}

#[tokio::test]
async fn a_saved_cluster_loads_back_with_its_objects_disks_and_versions() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    pvs.create(&PostParams::default(), &pv("kept"))
        .await
        .unwrap();
    let disk = store.cloud().create_disk("kubernetes.io/rbd", "r", 1, None);
    store.cloud().write(&disk.id, b"bytes".to_vec()).unwrap();
    let path = std::env::temp_dir().join(format!("kube-sim-state-{}.json", std::process::id()));
    store.save(&path).unwrap();
    let loaded = Store::load(&path, 1000).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.resource_version(), store.resource_version());
    let rt = loaded.resource("", "persistentvolumes").unwrap();
    let kept = loaded.get(&rt, None, "kept").unwrap();
    assert_eq!(
        kept["metadata"]["uid"],
        json!(pvs.get("kept").await.unwrap().metadata.uid)
    );
    assert_eq!(
        loaded.cloud().get(&disk.id).unwrap().sha256(),
        disk_sha("bytes")
    );
    let next = loaded
        .cloud()
        .create_disk("kubernetes.io/rbd", "s", 1, None);
    assert_ne!(next.id, disk.id, "disk ids continue after a restore");
}

fn disk_sha(content: &str) -> String {
    use sha2::Digest;
    sha2::Sha256::digest(content.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

#[tokio::test]
async fn the_vsphere_scenario_records_each_volume_as_a_first_class_disk() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(Store::new(1000));
    kube_sim::scenario::apply(
        &store,
        kube_sim::scenario::Scenario::VsphereStatefulset,
        std::time::Duration::from_secs(30),
    )
    .await
    .unwrap();
    let server = serve(store.clone(), "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    // The CRD is served and its objects list like any kind (kubectl get cnsvspherevolumemigrations).
    let url = format!(
        "{}/apis/cns.vmware.com/v1alpha1/cnsvspherevolumemigrations",
        server.url
    );
    let list: serde_json::Value = reqwest::get(&url).await.unwrap().json().await.unwrap();
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    for record in items {
        let path = record["spec"]["volumepath"].as_str().unwrap();
        let id = record["spec"]["volumeid"].as_str().unwrap();
        assert_eq!(record["metadata"]["name"], id);
        let disk = store
            .cloud()
            .list()
            .into_iter()
            .find(|d| d.handles.iter().any(|h| h == path))
            .unwrap();
        assert!(
            disk.handles.iter().any(|h| h == id),
            "the disk answers to its FCD id"
        );
    }
}

#[tokio::test]
async fn a_metadata_only_list_never_carries_secret_data() {
    let (_server, client) = start(false, 1000).await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(client, "default");
    let secret = json!({"metadata": {"name": "creds", "labels": {"app": "x"}}, "stringData": {"password": "hunter2"},
                        "data": {"token": "c2VjcmV0"}});
    secrets
        .create(
            &PostParams::default(),
            &serde_json::from_value(secret).unwrap(),
        )
        .await
        .unwrap();
    let listed = secrets.list_metadata(&ListParams::default()).await.unwrap();
    assert_eq!(listed.items.len(), 1);
    assert_eq!(listed.items[0].metadata.name.as_deref(), Some("creds"));
    let raw = serde_json::to_string(&listed).unwrap();
    assert!(
        !raw.contains("c2VjcmV0") && !raw.contains("hunter2"),
        "{raw}"
    );
}

#[tokio::test]
async fn an_idle_watch_gets_bookmarks_and_ends_at_its_timeout() {
    let (server, client) = start(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    let created = pvs
        .create(&PostParams::default(), &pv("b-1"))
        .await
        .unwrap();
    let rv = created.metadata.resource_version.unwrap();
    let url = format!(
        "{}/api/v1/persistentvolumes?watch=true&resourceVersion={rv}&allowWatchBookmarks=true&timeoutSeconds=6",
        server.url
    );
    let started = std::time::Instant::now();
    let text = reqwest::get(&url).await.unwrap().text().await.unwrap();
    let elapsed = started.elapsed();
    assert!(
        elapsed >= std::time::Duration::from_secs(5),
        "the stream ended early: {elapsed:?}"
    );
    let events: Vec<serde_json::Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert!(!events.is_empty(), "no bookmark in {elapsed:?}");
    for event in &events {
        assert_eq!(event["type"], "BOOKMARK");
        // kube-rs needs apiVersion and kind on bookmark objects.
        assert_eq!(event["object"]["apiVersion"], "v1");
        assert_eq!(event["object"]["kind"], "PersistentVolume");
        assert!(
            event["object"]["metadata"]["resourceVersion"]
                .as_str()
                .is_some()
        );
    }
}

#[tokio::test]
async fn dry_run_writes_validate_and_default_but_store_nothing() {
    let (_server, client) = start(false, 1000).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    let dry = PostParams {
        dry_run: true,
        ..PostParams::default()
    };
    let would_be = pvs.create(&dry, &pv("dry")).await.unwrap();
    assert_eq!(
        would_be.metadata.finalizers.as_deref(),
        Some(&["kubernetes.io/pv-protection".to_owned()][..])
    );
    assert_eq!(
        api_error(pvs.get("dry").await.unwrap_err()).0,
        404,
        "a dry-run create stores nothing"
    );

    pvs.create(&PostParams::default(), &pv("real"))
        .await
        .unwrap();
    let before = pvs.get("real").await.unwrap().metadata.resource_version;
    let invalid =
        json!({"spec": {"gcePersistentDisk": null, "csi": {"driver": "d", "volumeHandle": "h"}}});
    let dry_patch = PatchParams {
        dry_run: true,
        ..PatchParams::default()
    };
    assert_eq!(
        api_error(
            pvs.patch("real", &dry_patch, &Patch::Merge(&invalid))
                .await
                .unwrap_err()
        )
        .0,
        422
    );
    let retain = json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}});
    let patched = pvs
        .patch("real", &dry_patch, &Patch::Merge(&retain))
        .await
        .unwrap();
    assert_eq!(
        patched
            .spec
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Retain")
    );
    let dry_delete = DeleteParams {
        dry_run: true,
        ..DeleteParams::default()
    };
    pvs.delete("real", &dry_delete).await.unwrap();
    let after = pvs.get("real").await.unwrap();
    assert_eq!(after.metadata.resource_version, before, "nothing changed");
    assert!(after.metadata.deletion_timestamp.is_none());
    assert_eq!(
        after
            .spec
            .unwrap()
            .persistent_volume_reclaim_policy
            .as_deref(),
        Some("Delete")
    );
}
#[path = "conformance/controllers_more.rs"]
mod controllers_more;
