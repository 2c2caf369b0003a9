//! Conformance tests for the controllers' informer cache, CSINode registration, attach rules, events and the binder's rarer paths.

use std::time::Duration;

use k8s_openapi::api::core::v1::{Node, Pod};
use k8s_openapi::api::storage::v1::{CSINode, VolumeAttachment};
use kube_sim::controllers::{
    self, ControllerSettings, Informer, reconcile, run_pass, run_pass_with,
};
use serde_json::Value;

use super::*;

/// Creates an object straight in the store, as a test's setup.
fn put(store: &Store, group: &str, plural: &str, namespace: Option<&str>, object: Value) -> Value {
    let rt = store.resource(group, plural).unwrap();
    store.create(&rt, namespace, object).unwrap()
}

fn get(
    store: &Store,
    group: &str,
    plural: &str,
    namespace: Option<&str>,
    name: &str,
) -> Option<Value> {
    let rt = store.resource(group, plural).unwrap();
    store.get(&rt, namespace, name).ok()
}

fn text<'a>(object: &'a Value, pointer: &str) -> &'a str {
    object
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `(type, reason, message)` of every Event about the object named `name`.
fn events_about(store: &Store, name: &str) -> Vec<(String, String, String)> {
    let rt = store.resource("", "events").unwrap();
    let list = store
        .list(&rt, None, &kube_sim::store::ListOptions::default())
        .unwrap();
    list["items"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| text(e, "/involvedObject/name") == name)
        .map(|e| {
            (
                text(e, "/type").to_owned(),
                text(e, "/reason").to_owned(),
                text(e, "/message").to_owned(),
            )
        })
        .collect()
}

fn settle(store: &Store) {
    for _ in 0..8 {
        reconcile(store);
    }
}

fn node(store: &Store, name: &str, zone: &str) -> Value {
    put(
        store,
        "",
        "nodes",
        None,
        json!({"apiVersion": "v1", "kind": "Node",
               "metadata": {"name": name, "labels": {"topology.kubernetes.io/zone": zone}}}),
    )
}

fn csi_driver(store: &Store, name: &str, attach_required: bool) {
    put(
        store,
        "storage.k8s.io",
        "csidrivers",
        None,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "CSIDriver", "metadata": {"name": name},
               "spec": {"attachRequired": attach_required}}),
    );
}

/// A Retain PV on a fresh EBS disk, with an optional claimRef, class `""`.
fn static_volume(store: &Store, name: &str, size: &str, claim_ref: Option<Value>) -> String {
    let disk = store
        .cloud()
        .create_disk("kubernetes.io/aws-ebs", name, 1 << 30, Some("zone-a"));
    let mut spec = json!({"capacity": {"storage": size}, "accessModes": ["ReadWriteOnce"],
                          "persistentVolumeReclaimPolicy": "Retain", "storageClassName": ""});
    if let Some(reference) = claim_ref {
        spec["claimRef"] = reference;
    }
    spec.as_object_mut()
        .unwrap()
        .extend(disk.in_tree_source.as_object().unwrap().clone());
    put(
        store,
        "",
        "persistentvolumes",
        None,
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}),
    );
    disk.id
}

fn claim_json(name: &str, size: &str, volume_name: Option<&str>) -> Value {
    let mut claim = json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": name, "namespace": "default"},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "",
                 "resources": {"requests": {"storage": size}}}});
    if let Some(volume) = volume_name {
        claim["spec"]["volumeName"] = json!(volume);
    }
    claim
}

fn web_set(replicas: i64, class: &str) -> Value {
    json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": "default"},
        "spec": {"replicas": replicas, "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {"metadata": {"labels": {"app": "web"}},
                         "spec": {"containers": [{"name": "c", "image": "i",
                                  "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
            "volumeClaimTemplates": [{"metadata": {"name": "data"},
                "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": class,
                         "resources": {"requests": {"storage": "1Gi"}}}}]}})
}

#[tokio::test]
async fn a_lagging_cache_misses_a_recreated_claim_so_the_statefulset_create_conflicts() {
    let store = Store::new(1000);
    put(
        &store,
        "apps",
        "statefulsets",
        Some("default"),
        web_set(1, ""),
    );
    // The controller's cache is filled now and applies nothing newer for an hour.
    let mut stale = Informer::new(&store, Duration::from_secs(3600));
    // Meanwhile someone (the migration tool) creates the replica's claim, pre-bound.
    let made = put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("data-web-0", "1Gi", Some("new-pv")),
    );
    run_pass(&store, &mut stale);

    // Its lister says "missing": the create conflicts, the pod is not made, as upstream.
    assert!(
        events_about(&store, "web").contains(&(
            "Warning".to_owned(),
            "FailedCreate".to_owned(),
            "create Pod web-0 in StatefulSet web failed error: failed to create PVC data-web-0: \
             persistentvolumeclaims \"data-web-0\" already exists"
                .to_owned()
        )),
        "{:?}",
        events_about(&store, "web")
    );
    assert!(get(&store, "", "pods", Some("default"), "web-0").is_none());
    let kept = get(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        "data-web-0",
    )
    .unwrap();
    assert_eq!(text(&kept, "/metadata/uid"), text(&made, "/metadata/uid"));
    assert_eq!(text(&kept, "/spec/volumeName"), "new-pv");

    // A cache that has caught up uses the claim as it is and makes the pod.
    let mut current = Informer::new(&store, Duration::ZERO);
    run_pass(&store, &mut current);
    let pod = get(&store, "", "pods", Some("default"), "web-0").unwrap();
    assert_eq!(
        text(&pod, "/spec/volumes/0/persistentVolumeClaim/claimName"),
        "data-web-0"
    );
    let kept = get(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        "data-web-0",
    )
    .unwrap();
    assert_eq!(text(&kept, "/metadata/uid"), text(&made, "/metadata/uid"));
}

#[tokio::test]
async fn a_lagging_cache_that_still_holds_a_deleted_claim_makes_the_pod_without_it() {
    let store = Store::new(1000);
    put(
        &store,
        "apps",
        "statefulsets",
        Some("default"),
        web_set(1, ""),
    );
    settle(&store);
    let pods = store.resource("", "pods").unwrap();
    let claims = store.resource("", "persistentvolumeclaims").unwrap();
    assert!(
        get(
            &store,
            "",
            "persistentvolumeclaims",
            Some("default"),
            "data-web-0"
        )
        .is_some()
    );
    let mut stale = Informer::new(&store, Duration::from_secs(3600));
    // The pod and its claim go (the claim was never used by a scheduled pod).
    let force = kube_sim::store::DeleteOptions {
        grace_period_seconds: Some(0),
        ..Default::default()
    };
    store
        .delete(&pods, Some("default"), "web-0", &force)
        .unwrap();
    store
        .patch(
            &claims,
            Some("default"),
            "data-web-0",
            kube_sim::patch::PatchKind::Merge,
            &json!({"metadata": {"finalizers": null}}),
            kube_sim::store::Subresource::Main,
        )
        .unwrap();
    store
        .delete(&claims, Some("default"), "data-web-0", &force)
        .unwrap();
    assert!(
        get(
            &store,
            "",
            "persistentvolumeclaims",
            Some("default"),
            "data-web-0"
        )
        .is_none()
    );

    // The stale cache still shows both: the controller sees its replica and does nothing.
    run_pass(&store, &mut stale);
    assert!(get(&store, "", "pods", Some("default"), "web-0").is_none());
    assert!(
        get(
            &store,
            "",
            "persistentvolumeclaims",
            Some("default"),
            "data-web-0"
        )
        .is_none()
    );

    // Caught up, it recreates both from the template.
    settle(&store);
    assert!(get(&store, "", "pods", Some("default"), "web-0").is_some());
    assert!(
        get(
            &store,
            "",
            "persistentvolumeclaims",
            Some("default"),
            "data-web-0"
        )
        .is_some()
    );
}

#[tokio::test]
async fn controllers_with_a_lagging_cache_still_converge() {
    let store = Arc::new(Store::new(10_000));
    node(&store, "node-a", "zone-a");
    csi_driver(&store, "ebs.csi.aws.com", true);
    put(
        &store,
        "storage.k8s.io",
        "storageclasses",
        None,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp2"},
               "provisioner": "kubernetes.io/aws-ebs", "reclaimPolicy": "Delete"}),
    );
    put(
        &store,
        "apps",
        "statefulsets",
        Some("default"),
        web_set(3, "gp2"),
    );
    let settings = ControllerSettings {
        lag: Duration::from_millis(150),
        resync: Duration::from_millis(100),
        ..ControllerSettings::default()
    };
    let running = controllers::spawn(store.clone(), settings);
    let pods = store.resource("", "pods").unwrap();
    let ready = |name: &str| {
        store
            .get(&pods, Some("default"), name)
            .is_ok_and(|p| text(&p, "/status/phase") == "Running")
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    while !(ready("web-0") && ready("web-1") && ready("web-2")) {
        assert!(tokio::time::Instant::now() < deadline, "the pods never ran");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    running.abort();
    for ordinal in 0..3 {
        let claim_name = format!("data-web-{ordinal}");
        let claim = get(
            &store,
            "",
            "persistentvolumeclaims",
            Some("default"),
            &claim_name,
        )
        .unwrap();
        assert_eq!(text(&claim, "/status/phase"), "Bound");
        let pv_name = text(&claim, "/spec/volumeName");
        assert!(
            events_about(&store, &claim_name).contains(&(
                "Normal".to_owned(),
                "ProvisioningSucceeded".to_owned(),
                format!("Successfully provisioned volume {pv_name} using kubernetes.io/aws-ebs")
            )),
            "{:?}",
            events_about(&store, &claim_name)
        );
    }
    // One disk per replica: no claim was provisioned twice on a stale read.
    assert_eq!(store.cloud().list().len(), 3);
}

#[tokio::test]
async fn a_kube_watcher_resumed_past_the_history_gets_a_410_and_relists() {
    let (server, client) = start(false, 3).await;
    let pvs: Api<PersistentVolume> = Api::all(client);
    pvs.create(&PostParams::default(), &pv("before"))
        .await
        .unwrap();
    let faults = |body: Value| {
        let url = format!("{}/_sim/v1/faults", server.url);
        async move {
            let response = reqwest::Client::new()
                .put(url)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
        }
    };
    // Every watch stream ends after one event: the watcher will have to resume.
    faults(json!({"dropWatchAfterEvents": 1})).await;
    let mut stream = watcher(pvs.clone(), watcher::Config::default()).boxed();
    while let Some(event) = stream.next().await {
        if matches!(event.unwrap(), watcher::Event::InitDone) {
            break;
        }
    }
    pvs.create(&PostParams::default(), &pv("first"))
        .await
        .unwrap();
    loop {
        match stream.next().await.unwrap() {
            Ok(watcher::Event::Apply(seen)) if seen.metadata.name.as_deref() == Some("first") => {
                break;
            }
            other => assert!(other.is_ok(), "{other:?}"),
        }
    }
    // The stream is cut, and nobody polls the watcher while more changes happen than the
    // history (3) keeps: its resourceVersion is compacted away.
    for i in 0..6 {
        pvs.create(&PostParams::default(), &pv(&format!("later-{i}")))
            .await
            .unwrap();
    }
    faults(json!({})).await;

    let mut gone = false;
    let mut restarted = false;
    let mut relisted = std::collections::BTreeSet::new();
    loop {
        let event = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .expect("the watcher kept going")
            .unwrap();
        match event {
            Err(watcher::Error::WatchError(status)) => {
                assert_eq!(status.code, 410);
                assert!(
                    status.message.starts_with("too old resource version:"),
                    "{}",
                    status.message
                );
                gone = true;
            }
            // The cut stream itself; the watcher resumes from where it was.
            Err(watcher::Error::WatchFailed(_)) => {}
            Err(other) => panic!("unexpected watcher error {other:?}"),
            Ok(watcher::Event::Init) => restarted = true,
            Ok(watcher::Event::InitApply(pv)) if restarted => {
                relisted.insert(pv.metadata.name.unwrap());
            }
            Ok(watcher::Event::InitDone) if restarted => break,
            Ok(_) => {}
        }
    }
    assert!(gone, "the resumed watch got a 410");
    let mut expected: std::collections::BTreeSet<String> =
        ["before", "first"].map(String::from).into();
    expected.extend((0..6).map(|i| format!("later-{i}")));
    assert_eq!(relisted, expected);
}

#[tokio::test]
async fn a_node_and_a_csi_driver_get_a_csinode_listing_the_driver_and_the_migrated_plugins() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    let nodes: Api<Node> = Api::all(client.clone());
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "node-a"}})).unwrap(),
        )
        .await
        .unwrap();
    nodes
        .create(
            &PostParams::default(),
            &serde_json::from_value(json!({"metadata": {"name": "no-kubelet",
                "annotations": {"kube-sim.csi-migrate.io/csinode-unmanaged": "true"}}}))
            .unwrap(),
        )
        .await
        .unwrap();
    csi_driver(&store, "ebs.csi.aws.com", true);
    reconcile(&store);
    let csi_nodes: Api<CSINode> = Api::all(client.clone());
    let csi_node = csi_nodes.get("node-a").await.unwrap();
    let drivers: Vec<String> = csi_node
        .spec
        .drivers
        .iter()
        .map(|d| d.name.clone())
        .collect();
    assert_eq!(drivers, ["ebs.csi.aws.com"]);
    assert_eq!(csi_node.spec.drivers[0].node_id, "node-a");
    let annotations = csi_node.metadata.annotations.unwrap();
    assert_eq!(
        annotations["storage.alpha.kubernetes.io/migrated-plugins"],
        "kubernetes.io/aws-ebs,kubernetes.io/azure-disk,kubernetes.io/azure-file,kubernetes.io/cinder,\
         kubernetes.io/gce-pd,kubernetes.io/portworx-volume,kubernetes.io/vsphere-volume"
    );
    let owner = &csi_node.metadata.owner_references.unwrap()[0];
    assert_eq!(
        (owner.kind.as_str(), owner.name.as_str()),
        ("Node", "node-a")
    );
    assert_eq!(
        api_error(csi_nodes.get("no-kubelet").await.unwrap_err()).0,
        404
    );

    // A driver registered later is added; the Node's removal takes its CSINode along.
    csi_driver(&store, "pd.csi.storage.gke.io", true);
    reconcile(&store);
    let drivers: Vec<String> = csi_nodes
        .get("node-a")
        .await
        .unwrap()
        .spec
        .drivers
        .iter()
        .map(|d| d.name.clone())
        .collect();
    assert_eq!(drivers, ["ebs.csi.aws.com", "pd.csi.storage.gke.io"]);
    nodes
        .delete("node-a", &DeleteParams::default())
        .await
        .unwrap();
    reconcile(&store);
    reconcile(&store);
    assert_eq!(api_error(csi_nodes.get("node-a").await.unwrap_err()).0, 404);
}

/// A pod on `node` using claim `claim` through `volumeMounts`.
fn pod_json(name: &str, node: &str, volumes: Value) -> Value {
    json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": name, "namespace": "default"},
        "spec": {"nodeName": node, "volumes": volumes,
                 "containers": [{"name": "c", "image": "i",
                                 "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}})
}

#[tokio::test]
async fn a_driver_without_attach_required_runs_pods_with_no_volume_attachment() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    node(&store, "node-a", "zone-a");
    csi_driver(&store, "ebs.csi.aws.com", false);
    let disk = static_volume(&store, "pv-a", "1Gi", None);
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("data", "1Gi", Some("pv-a")),
    );
    put(
        &store,
        "",
        "pods",
        Some("default"),
        pod_json(
            "app",
            "node-a",
            json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]),
        ),
    );
    settle(&store);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let status = pods.get("app").await.unwrap().status.unwrap();
    assert_eq!(status.phase.as_deref(), Some("Running"));
    let attachments: Api<VolumeAttachment> = Api::all(client);
    assert!(
        attachments
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );
    let disk = store.cloud().get(&disk).unwrap();
    assert!(disk.attached_to.is_empty(), "{:?}", disk.attached_to);
    assert_eq!(
        disk.filesystem.as_deref(),
        Some("ext4"),
        "mounted all the same"
    );
}

#[tokio::test]
async fn an_inline_in_tree_volume_is_attached_through_its_csi_driver_and_refused_a_second_node() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    node(&store, "node-a", "zone-a");
    node(&store, "node-b", "zone-a");
    csi_driver(&store, "disk.csi.azure.com", true);
    let disk = store
        .cloud()
        .create_disk("kubernetes.io/azure-disk", "inline", 1 << 30, None);
    let mut inline = json!({"name": "data"});
    inline
        .as_object_mut()
        .unwrap()
        .extend(disk.in_tree_source.as_object().unwrap().clone());
    put(
        &store,
        "",
        "pods",
        Some("default"),
        pod_json("first", "node-a", json!([inline.clone()])),
    );
    reconcile(&store);
    let pods: Api<Pod> = Api::namespaced(client.clone(), "default");
    let waiting = pods.get("first").await.unwrap().status.unwrap();
    assert_eq!(
        waiting.phase.as_deref(),
        Some("Pending"),
        "not Ready before the attach"
    );
    assert_eq!(
        waiting.message.as_deref(),
        Some("waiting for volume \"data\" to attach")
    );

    settle(&store);
    assert_eq!(
        pods.get("first")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Running")
    );
    let attachments: Api<VolumeAttachment> = Api::all(client.clone());
    let list = attachments
        .list(&ListParams::default())
        .await
        .unwrap()
        .items;
    assert_eq!(list.len(), 1);
    let spec = &list[0].spec;
    assert_eq!(spec.attacher, "disk.csi.azure.com");
    assert_eq!(spec.node_name, "node-a");
    assert_eq!(spec.source.persistent_volume_name, None);
    let csi = spec
        .source
        .inline_volume_spec
        .as_ref()
        .and_then(|s| s.csi.as_ref())
        .unwrap();
    assert_eq!(csi.driver, "disk.csi.azure.com");
    assert_eq!(csi.volume_handle, disk.handles[0]);
    assert!(list[0].status.as_ref().unwrap().attached);
    assert_eq!(store.cloud().get(&disk.id).unwrap().attached_to, ["node-a"]);

    // The same disk inline in a pod on another node: refused by the physical disk.
    put(
        &store,
        "",
        "pods",
        Some("default"),
        pod_json("second", "node-b", json!([inline])),
    );
    settle(&store);
    let stuck = pods.get("second").await.unwrap().status.unwrap();
    assert_eq!(stuck.phase.as_deref(), Some("Pending"));
    assert!(
        stuck
            .message
            .unwrap()
            .starts_with("Multi-Attach error for volume")
    );
    let events = events_about(&store, "second");
    assert_eq!(
        events,
        [(
            "Warning".to_owned(),
            "FailedAttachVolume".to_owned(),
            "Multi-Attach error for volume \"data\" Volume is already exclusively attached to one \
             node and can't be attached to another"
                .to_owned()
        )],
        "one event, however many passes"
    );
    assert_eq!(store.cloud().get(&disk.id).unwrap().attached_to, ["node-a"]);
}

#[tokio::test]
async fn path_a_a_claim_naming_a_too_small_volume_stays_pending_with_volume_mismatch() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    static_volume(&store, "small", "1Gi", None);
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("big", "2Gi", Some("small")),
    );
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let claim = claims.get("big").await.unwrap();
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Pending"));
    assert_eq!(
        events_about(&store, "big"),
        [(
            "Warning".to_owned(),
            "VolumeMismatch".to_owned(),
            "Cannot bind to requested volume \"small\": requested PV is too small".to_owned()
        )]
    );
    let pvs: Api<PersistentVolume> = Api::all(client);
    let volume = pvs.get("small").await.unwrap();
    assert!(
        volume.spec.unwrap().claim_ref.is_none(),
        "the volume was not touched"
    );
    assert_eq!(volume.status.unwrap().phase.as_deref(), Some("Available"));
}

#[tokio::test]
async fn path_d_a_claim_naming_a_volume_bound_elsewhere_gets_failed_binding() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    static_volume(&store, "taken", "1Gi", None);
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("owner", "1Gi", None),
    );
    settle(&store);
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("latecomer", "1Gi", Some("taken")),
    );
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        claims
            .get("owner")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Bound")
    );
    assert_eq!(
        claims
            .get("latecomer")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Pending")
    );
    assert_eq!(
        events_about(&store, "latecomer"),
        [(
            "Warning".to_owned(),
            "FailedBinding".to_owned(),
            "volume \"taken\" already bound to a different claim.".to_owned()
        )]
    );
    let pvs: Api<PersistentVolume> = Api::all(client);
    let reference = pvs
        .get("taken")
        .await
        .unwrap()
        .spec
        .unwrap()
        .claim_ref
        .unwrap();
    assert_eq!(reference.name.as_deref(), Some("owner"));
}

#[tokio::test]
async fn a_bound_claim_whose_volume_is_force_removed_is_lost_with_claim_lost() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    let disk = static_volume(&store, "doomed", "1Gi", None);
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("data", "1Gi", None),
    );
    settle(&store);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    pvs.patch(
        "doomed",
        &PatchParams::default(),
        &Patch::Merge(json!({"metadata": {"finalizers": null}})),
    )
    .await
    .unwrap();
    pvs.delete("doomed", &DeleteParams::default())
        .await
        .unwrap();
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client, "default");
    let claim = claims.get("data").await.unwrap();
    assert_eq!(claim.status.unwrap().phase.as_deref(), Some("Lost"));
    assert_eq!(claim.spec.unwrap().volume_name.as_deref(), Some("doomed"));
    assert_eq!(
        events_about(&store, "data"),
        [(
            "Warning".to_owned(),
            "ClaimLost".to_owned(),
            "Bound claim has lost its PersistentVolume. Data on the volume is lost!".to_owned()
        )]
    );
    assert!(
        store.cloud().get(&disk).is_some(),
        "the disk itself is untouched"
    );
}

#[tokio::test]
async fn a_claim_copied_with_bind_completed_onto_a_volume_of_another_claim_is_misbound() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    static_volume(
        &store,
        "shared",
        "1Gi",
        Some(json!({"namespace": "default", "name": "original", "uid": "0000-original"})),
    );
    let mut copy = claim_json("copy", "1Gi", Some("shared"));
    copy["metadata"]["annotations"] = json!({"pv.kubernetes.io/bind-completed": "yes"});
    put(&store, "", "persistentvolumeclaims", Some("default"), copy);
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    assert_eq!(
        claims
            .get("copy")
            .await
            .unwrap()
            .status
            .unwrap()
            .phase
            .as_deref(),
        Some("Lost")
    );
    assert_eq!(
        events_about(&store, "copy"),
        [(
            "Warning".to_owned(),
            "ClaimMisbound".to_owned(),
            "Two claims are bound to the same volume, this one is bound incorrectly".to_owned()
        )]
    );
    let pvs: Api<PersistentVolume> = Api::all(client);
    let reference = pvs
        .get("shared")
        .await
        .unwrap()
        .spec
        .unwrap()
        .claim_ref
        .unwrap();
    assert_eq!(
        reference.uid.as_deref(),
        Some("0000-original"),
        "the volume keeps its claim"
    );
}

#[tokio::test]
async fn a_released_volume_is_reused_once_its_claim_ref_uid_is_cleared() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    let disk = static_volume(&store, "keep", "1Gi", None);
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("data", "1Gi", None),
    );
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    settle(&store);
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let released = pvs.get("keep").await.unwrap();
    assert_eq!(released.status.unwrap().phase.as_deref(), Some("Released"));

    // The same-named claim pointing at it: the stale uid holds it (hazard 7).
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("data", "1Gi", Some("keep")),
    );
    settle(&store);
    let waiting = claims.get("data").await.unwrap();
    assert_eq!(waiting.status.unwrap().phase.as_deref(), Some("Pending"));
    assert!(events_about(&store, "data").contains(&(
        "Warning".to_owned(),
        "FailedBinding".to_owned(),
        "volume \"keep\" already bound to a different claim.".to_owned()
    )));

    // Clearing uid and resourceVersion makes it a reservation for that name: it binds.
    pvs.patch(
        "keep",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"claimRef": {"uid": null, "resourceVersion": null}}})),
    )
    .await
    .unwrap();
    settle(&store);
    let bound = claims.get("data").await.unwrap();
    assert_eq!(bound.status.unwrap().phase.as_deref(), Some("Bound"));
    let volume = pvs.get("keep").await.unwrap();
    assert_eq!(volume.status.unwrap().phase.as_deref(), Some("Bound"));
    assert_eq!(
        volume.spec.unwrap().claim_ref.unwrap().uid,
        bound.metadata.uid
    );
    assert!(store.cloud().get(&disk).is_some());
}

#[tokio::test]
async fn a_volume_of_a_non_migrated_in_tree_plugin_carries_the_pv_controller_finalizer_until_reclaimed()
 {
    let (_server, client, store) = start_with_store(false, 1000).await;
    put(
        &store,
        "storage.k8s.io",
        "storageclasses",
        None,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "ceph"},
               "provisioner": "kubernetes.io/rbd", "reclaimPolicy": "Delete"}),
    );
    let mut claim = claim_json("data", "1Gi", None);
    claim["spec"]["storageClassName"] = json!("ceph");
    put(&store, "", "persistentvolumeclaims", Some("default"), claim);
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let bound = claims.get("data").await.unwrap();
    let pv_name = bound.spec.unwrap().volume_name.unwrap();
    let pvs: Api<PersistentVolume> = Api::all(client.clone());
    let volume = pvs.get(&pv_name).await.unwrap();
    let finalizers = volume.metadata.finalizers.unwrap();
    assert!(
        finalizers.contains(&"kubernetes.io/pv-controller".to_owned()),
        "{finalizers:?}"
    );
    assert!(
        !finalizers.contains(&"external-provisioner.volume.kubernetes.io/finalizer".to_owned())
    );
    assert_eq!(store.cloud().list().len(), 1);

    claims
        .delete("data", &DeleteParams::default())
        .await
        .unwrap();
    settle(&store);
    assert_eq!(api_error(pvs.get(&pv_name).await.unwrap_err()).0, 404);
    assert!(
        store.cloud().list().is_empty(),
        "reclaimed: the disk is deleted"
    );
}

#[tokio::test]
async fn retain_takes_the_pv_controller_finalizer_off() {
    let (_server, client, store) = start_with_store(false, 1000).await;
    put(
        &store,
        "storage.k8s.io",
        "storageclasses",
        None,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "ceph"},
               "provisioner": "kubernetes.io/rbd", "reclaimPolicy": "Delete"}),
    );
    let mut claim = claim_json("data", "1Gi", None);
    claim["spec"]["storageClassName"] = json!("ceph");
    put(&store, "", "persistentvolumeclaims", Some("default"), claim);
    settle(&store);
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let pv_name = claims
        .get("data")
        .await
        .unwrap()
        .spec
        .unwrap()
        .volume_name
        .unwrap();
    let pvs: Api<PersistentVolume> = Api::all(client);
    pvs.patch(
        &pv_name,
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"persistentVolumeReclaimPolicy": "Retain"}})),
    )
    .await
    .unwrap();
    settle(&store);
    let finalizers = pvs
        .get(&pv_name)
        .await
        .unwrap()
        .metadata
        .finalizers
        .unwrap();
    assert_eq!(finalizers, ["kubernetes.io/pv-protection"]);
}

#[tokio::test]
async fn foreground_deletion_waits_only_for_dependents_that_block_it() {
    let store = Store::new(1000);
    let owner = put(
        &store,
        "",
        "configmaps",
        Some("default"),
        json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "owner"}}),
    );
    let reference = |block: bool| {
        json!([{"apiVersion": "v1", "kind": "ConfigMap", "name": "owner",
                "uid": text(&owner, "/metadata/uid"), "blockOwnerDeletion": block}])
    };
    for (name, block) in [("blocking", true), ("free", false)] {
        put(
            &store,
            "",
            "configmaps",
            Some("default"),
            json!({"apiVersion": "v1", "kind": "ConfigMap",
                   "metadata": {"name": name, "finalizers": ["test/hold"], "ownerReferences": reference(block)}}),
        );
    }
    let maps = store.resource("", "configmaps").unwrap();
    let foreground = kube_sim::store::DeleteOptions {
        propagation_policy: Some("Foreground".to_owned()),
        ..Default::default()
    };
    store
        .delete(&maps, Some("default"), "owner", &foreground)
        .unwrap();
    settle(&store);
    // Both dependents are being deleted (held by their own finalizer); the blocking one holds the owner.
    for name in ["blocking", "free"] {
        let dependent = get(&store, "", "configmaps", Some("default"), name).unwrap();
        assert!(
            dependent.pointer("/metadata/deletionTimestamp").is_some(),
            "{name}"
        );
    }
    assert!(get(&store, "", "configmaps", Some("default"), "owner").is_some());

    let release = |name: &str| {
        store
            .patch(
                &maps,
                Some("default"),
                name,
                kube_sim::patch::PatchKind::Merge,
                &json!({"metadata": {"finalizers": null}}),
                kube_sim::store::Subresource::Main,
            )
            .unwrap();
    };
    release("blocking");
    settle(&store);
    assert!(
        get(&store, "", "configmaps", Some("default"), "owner").is_none(),
        "a non-blocking dependent does not hold the owner"
    );
    assert!(get(&store, "", "configmaps", Some("default"), "free").is_some());
    release("free");
    assert!(get(&store, "", "configmaps", Some("default"), "free").is_none());
}

#[tokio::test]
async fn the_kubelet_honours_the_grace_period_only_up_to_the_configured_cap() {
    let store = Arc::new(Store::new(1000));
    node(&store, "node-a", "zone-a");
    let pods = store.resource("", "pods").unwrap();
    let mut pod = pod_json("slow", "node-a", json!([]));
    pod["spec"]["terminationGracePeriodSeconds"] = json!(3600);
    pod["spec"]["containers"][0]["volumeMounts"] = json!([]);
    store.create(&pods, Some("default"), pod).unwrap();
    settle(&store);
    store
        .delete(&pods, Some("default"), "slow", &Default::default())
        .unwrap();
    let terminating = store.get(&pods, Some("default"), "slow").unwrap();
    assert_eq!(terminating["metadata"]["deletionGracePeriodSeconds"], 3600);
    let pass_with_cap = |cap: Duration| {
        let settings = ControllerSettings {
            termination_grace_cap: cap,
            ..ControllerSettings::default()
        };
        run_pass_with(
            &store,
            &mut Informer::new(&store, Duration::ZERO),
            &settings,
        );
    };
    // Capped at an hour, the hour's grace period is honoured: the pod stays.
    pass_with_cap(Duration::from_secs(3600));
    assert!(store.get(&pods, Some("default"), "slow").is_ok());
    // Capped at nothing, the kubelet finishes at once instead of waiting an hour.
    pass_with_cap(Duration::ZERO);
    assert_eq!(
        store.get(&pods, Some("default"), "slow").unwrap_err().code,
        404
    );
}

#[tokio::test]
async fn deleting_a_namespace_deletes_its_contents_one_by_one_under_their_finalizers() {
    let store = Arc::new(Store::new(1000));
    node(&store, "node-a", "zone-a");
    put(
        &store,
        "",
        "namespaces",
        None,
        json!({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "team"}}),
    );
    let disk = static_volume(&store, "pv-team", "1Gi", None);
    let mut claim = claim_json("data", "1Gi", Some("pv-team"));
    claim["metadata"]["namespace"] = json!("team");
    put(&store, "", "persistentvolumeclaims", Some("team"), claim);
    let mut pod = pod_json(
        "app",
        "node-a",
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}}]),
    );
    pod["metadata"]["namespace"] = json!("team");
    put(&store, "", "pods", Some("team"), pod);
    settle(&store);

    let namespaces = store.resource("", "namespaces").unwrap();
    store
        .delete(&namespaces, None, "team", &Default::default())
        .unwrap();
    // Nothing new may go into a terminating namespace (NamespaceLifecycle).
    let config_maps = store.resource("", "configmaps").unwrap();
    let refused = store
        .create(
            &config_maps,
            Some("team"),
            json!({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "late", "namespace": "team"}}),
        )
        .unwrap_err();
    assert_eq!(refused.code, 403);
    assert_eq!(
        refused.message,
        "configmaps \"late\" is forbidden: unable to create new content in namespace team because it is being terminated"
    );

    // Like the real controller, this one leaves a fresh deletion alone for a moment:
    // `kubectl delete -f` still finds the objects listed after the Namespace.
    reconcile(&store);
    let pod = get(&store, "", "pods", Some("team"), "app").unwrap();
    assert!(pod["metadata"].get("deletionTimestamp").is_none());

    // With the kubelet holding to the pod's grace period, the pod is only terminating, and
    // the claim it mounts stays behind its pvc-protection finalizer.
    let pass_with_grace = |cap: Duration| {
        let settings = ControllerSettings {
            termination_grace_cap: cap,
            namespace_cleanup_delay: Duration::ZERO,
            ..ControllerSettings::default()
        };
        for _ in 0..4 {
            run_pass_with(
                &store,
                &mut Informer::new(&store, Duration::ZERO),
                &settings,
            );
        }
    };
    pass_with_grace(Duration::from_secs(3600));
    let pod = get(&store, "", "pods", Some("team"), "app").unwrap();
    assert!(pod["metadata"]["deletionTimestamp"].is_string());
    let claim = get(&store, "", "persistentvolumeclaims", Some("team"), "data").unwrap();
    assert!(claim["metadata"]["deletionTimestamp"].is_string());
    assert!(get(&store, "", "namespaces", None, "team").is_some());

    // Once the pod is gone the claim follows, then the namespace; the Retain volume and
    // its disk stay.
    pass_with_grace(Duration::ZERO);
    assert!(get(&store, "", "pods", Some("team"), "app").is_none());
    assert!(get(&store, "", "persistentvolumeclaims", Some("team"), "data").is_none());
    assert!(get(&store, "", "namespaces", None, "team").is_none());
    let volume = get(&store, "", "persistentvolumes", None, "pv-team").unwrap();
    assert_eq!(text(&volume, "/status/phase"), "Released");
    assert!(store.cloud().get(&disk).is_some());
}

/// A pod the scheduler places (no `nodeName`) mounting claim `claim` as `data`.
fn unscheduled_pod(name: &str, claim: &str) -> Value {
    let mut pod = pod_json(
        name,
        "",
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]),
    );
    if let Some(spec) = pod["spec"].as_object_mut() {
        spec.remove("nodeName");
    }
    pod
}

/// A static volume on a fresh disk in `zone`, whose node affinity requires that zone.
fn zonal_volume(store: &Store, name: &str, zone: &str) {
    let disk = store
        .cloud()
        .create_disk("kubernetes.io/aws-ebs", name, 1 << 30, Some(zone));
    let mut spec = json!({"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
        "persistentVolumeReclaimPolicy": "Retain", "storageClassName": "",
        "nodeAffinity": {"required": {"nodeSelectorTerms": [{"matchExpressions": [
            {"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]}]}]}}});
    spec.as_object_mut()
        .unwrap()
        .extend(disk.in_tree_source.as_object().unwrap().clone());
    put(
        store,
        "",
        "persistentvolumes",
        None,
        json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": name}, "spec": spec}),
    );
}

#[tokio::test]
async fn the_scheduler_places_pods_where_their_volumes_node_affinity_allows() {
    let store = Arc::new(Store::new(1000));
    node(&store, "node-a", "zone-a");
    node(&store, "node-b", "zone-b");
    csi_driver(&store, "ebs.csi.aws.com", true);
    zonal_volume(&store, "in-b", "zone-b");
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("in-b", "1Gi", Some("in-b")),
    );
    put(
        &store,
        "",
        "pods",
        Some("default"),
        unscheduled_pod("user-b", "in-b"),
    );
    zonal_volume(&store, "in-c", "zone-c");
    put(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        claim_json("in-c", "1Gi", Some("in-c")),
    );
    put(
        &store,
        "",
        "pods",
        Some("default"),
        unscheduled_pod("user-c", "in-c"),
    );
    settle(&store);

    let placed = get(&store, "", "pods", Some("default"), "user-b").unwrap();
    assert_eq!(text(&placed, "/spec/nodeName"), "node-b");
    assert_eq!(text(&placed, "/status/phase"), "Running");
    // No node is in zone-c: the pod waits, with the scheduler's message.
    let stuck = get(&store, "", "pods", Some("default"), "user-c").unwrap();
    assert_eq!(text(&stuck, "/spec/nodeName"), "");
    assert_eq!(text(&stuck, "/status/reason"), "Unschedulable");
    assert_eq!(
        text(&stuck, "/status/message"),
        "0/2 nodes are available: node(s) had volume node affinity conflict"
    );
}

#[tokio::test]
async fn a_wait_for_first_consumer_class_provisions_in_the_zone_of_the_chosen_node() {
    let store = Arc::new(Store::new(1000));
    node(&store, "node-a", "zone-a");
    node(&store, "node-b", "zone-b");
    csi_driver(&store, "ebs.csi.aws.com", true);
    put(
        &store,
        "storage.k8s.io",
        "storageclasses",
        None,
        json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass",
               "metadata": {"name": "gp2-late"}, "provisioner": "kubernetes.io/aws-ebs",
               "volumeBindingMode": "WaitForFirstConsumer"}),
    );
    let mut claim = claim_json("late", "1Gi", None);
    claim["spec"]["storageClassName"] = json!("gp2-late");
    put(&store, "", "persistentvolumeclaims", Some("default"), claim);
    settle(&store);
    // No consumer yet: nothing is provisioned.
    let waiting = get(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        "late",
    )
    .unwrap();
    assert_eq!(text(&waiting, "/status/phase"), "Pending");
    assert!(store.cloud().list().is_empty());

    put(
        &store,
        "",
        "pods",
        Some("default"),
        unscheduled_pod("consumer", "late"),
    );
    settle(&store);
    let claim = get(
        &store,
        "",
        "persistentvolumeclaims",
        Some("default"),
        "late",
    )
    .unwrap();
    let node = text(
        &claim,
        "/metadata/annotations/volume.kubernetes.io~1selected-node",
    )
    .to_owned();
    let zone = if node == "node-a" { "zone-a" } else { "zone-b" };
    assert_eq!(text(&claim, "/status/phase"), "Bound");
    let volume = get(
        &store,
        "",
        "persistentvolumes",
        None,
        text(&claim, "/spec/volumeName"),
    )
    .unwrap();
    assert_eq!(
        text(&volume, "/metadata/labels/topology.kubernetes.io~1zone"),
        zone
    );
    assert_eq!(
        volume["spec"]["nodeAffinity"]["required"]["nodeSelectorTerms"][0]["matchExpressions"][0],
        json!({"key": "topology.kubernetes.io/zone", "operator": "In", "values": [zone]})
    );
    let disks = store.cloud().list();
    assert_eq!(disks.len(), 1);
    assert_eq!(disks[0].zone.as_deref(), Some(zone));
    let pod = get(&store, "", "pods", Some("default"), "consumer").unwrap();
    assert_eq!(text(&pod, "/spec/nodeName"), node);
    assert_eq!(text(&pod, "/status/phase"), "Running");
}
