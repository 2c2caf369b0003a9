//! End-to-end tests of plan + runner against kube-sim over HTTP: full migration, a crash
//! at every step boundary, and the §9 hazards a naive order would hit.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use csi_migrate_migrate::runner::{RunError, RunOptions, StopPoint};
use csi_migrate_migrate::workdir::JournalEvent;
use csi_migrate_migrate::{
    Plan, PlanOptions, Step, load_statefulset_snapshot, migrate, plan_statefulset, resume,
};
use csi_migrate_migrate::{RollbackError, rollback};
use k8s_openapi::api::apps::v1::{Deployment, StatefulSet};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{Api, DeleteParams, Patch, PatchParams, PostParams, PropagationPolicy};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config};
use kube_sim::scenario::Scenario;
use kube_sim::store::ListOptions;
use kube_sim::{RunningServer, Store};
use serde_json::{Value, json};

const NS: &str = "default";
const TARGET: &str = "gp2-csi";
const DRIVER: &str = "ebs.csi.aws.com";

/// A simulated cluster on the ebs-statefulset scenario, with a monitor that checks
/// invariants at every change the store publishes.
struct Cluster {
    store: Arc<Store>,
    /// Faults the API server injects into our client's requests (none until set).
    faults: Arc<kube_sim::faults::Faults>,
    _server: RunningServer,
    controllers: tokio::task::JoinHandle<()>,
    monitor: tokio::task::JoinHandle<()>,
    client: Client,
    /// Disk id → sha256 before anything ran.
    disks_before: BTreeMap<String, String>,
    /// Invariant violations seen by the monitor.
    violations: Arc<Mutex<Vec<String>>>,
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.controllers.abort();
        self.monitor.abort();
        self._server.shutdown();
    }
}

fn items(store: &Store, plural: &str) -> Vec<Value> {
    let rt = store.resource("", plural).unwrap();
    store
        .list(&rt, None, &ListOptions::default())
        .unwrap()
        .get("items")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default()
}

fn text<'a>(v: &'a Value, pointer: &str) -> &'a str {
    v.pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// Invariants that must hold at every observed instant: never two PVs naming one disk
/// (§5.6), no original disk deleted, no claim of the set bound to a disk that is not
/// one of the originals (an empty, freshly provisioned disk).
fn check_instant(store: &Store, originals: &BTreeMap<String, String>) -> Vec<String> {
    let mut problems = Vec::new();
    let cloud = store.cloud();
    let disks: BTreeMap<String, _> = cloud
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d))
        .collect();
    for id in originals.keys() {
        if !disks.contains_key(id) {
            problems.push(format!("disk {id} was deleted"));
        }
    }
    let mut owners: BTreeMap<String, String> = BTreeMap::new();
    let mut disk_of_pv: BTreeMap<String, String> = BTreeMap::new();
    for pv in items(store, "persistentvolumes") {
        let name = text(&pv, "/metadata/name").to_owned();
        if let Some(disk) = cloud.find_for_pv(&pv) {
            if let Some(other) = owners.insert(disk.id.clone(), name.clone()) {
                problems.push(format!("PVs {other} and {name} both name disk {}", disk.id));
            }
            disk_of_pv.insert(name, disk.id);
        }
    }
    for claim in items(store, "persistentvolumeclaims") {
        let name = text(&claim, "/metadata/name");
        if text(&claim, "/status/phase") != "Bound" {
            continue;
        }
        let volume = text(&claim, "/spec/volumeName");
        match disk_of_pv.get(volume) {
            Some(disk) if originals.contains_key(disk) => {}
            other => problems.push(format!(
                "claim {name} is bound to {volume} on disk {other:?}, not an original disk"
            )),
        }
    }
    problems
}

fn pod_uids(store: &Store) -> BTreeMap<String, String> {
    items(store, "pods")
        .iter()
        .map(|p| {
            (
                text(p, "/metadata/name").to_owned(),
                text(p, "/metadata/uid").to_owned(),
            )
        })
        .collect()
}

async fn cluster() -> Cluster {
    cluster_on(Scenario::EbsStatefulset).await
}

async fn cluster_on(scenario: Scenario) -> Cluster {
    cluster_with(scenario, Extras::None).await
}

/// Objects added to a scenario before its disks are recorded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Extras {
    None,
    /// Deployment `reports` (1 replica) on claim `reports`, bare pod `tools` on claim
    /// `tools-data`, unused claim `scratch`; all on the in-tree class gp2.
    DeploymentAndClaims,
}

async fn add_extras(client: &Client) {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NS);
    for name in ["reports", "tools-data", "scratch"] {
        let claim = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": NS},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp2",
                "resources": {"requests": {"storage": "1Gi"}}}
        }))
        .unwrap();
        claims.create(&PostParams::default(), &claim).await.unwrap();
    }
    let pod_spec = |claim: &str| {
        json!({"containers": [{"name": "app", "image": "busybox",
                "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
            "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": claim}}]})
    };
    let deployments: Api<Deployment> = Api::namespaced(client.clone(), NS);
    let deployment = serde_json::from_value(json!({
        "metadata": {"name": "reports", "namespace": NS},
        "spec": {"replicas": 1, "selector": {"matchLabels": {"app": "reports"}},
            "template": {"metadata": {"labels": {"app": "reports"}}, "spec": pod_spec("reports")}}
    }))
    .unwrap();
    deployments
        .create(&PostParams::default(), &deployment)
        .await
        .unwrap();
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let pod = serde_json::from_value(json!({
        "metadata": {"name": "tools", "namespace": NS, "labels": {"app": "tools"}},
        "spec": pod_spec("tools-data")
    }))
    .unwrap();
    pods.create(&PostParams::default(), &pod).await.unwrap();
    // scratch: nothing mounts it, so WaitForFirstConsumer-free gp2 binds it at once.
    let bound = |c: Option<&PersistentVolumeClaim>| {
        c.and_then(|c| c.status.as_ref()?.phase.as_deref()) == Some("Bound")
    };
    for name in ["reports", "tools-data", "scratch"] {
        wait(await_condition(claims.clone(), name, bound)).await;
    }
    wait(await_condition(
        deployments,
        "reports",
        |d: Option<&Deployment>| d.and_then(|d| d.status.as_ref()?.available_replicas) == Some(1),
    ))
    .await;
    wait(await_condition(pods, "tools", |p: Option<&Pod>| {
        p.and_then(|p| p.status.as_ref()?.phase.as_deref()) == Some("Running")
    }))
    .await;
}

/// Awaits a watch condition for at most 30 s.
async fn wait<T, E: std::fmt::Debug>(
    condition: impl std::future::Future<Output = Result<T, E>>,
) -> T {
    tokio::time::timeout(Duration::from_secs(30), condition)
        .await
        .expect("condition not met in 30 s")
        .unwrap()
}

async fn cluster_with(scenario: Scenario, extras: Extras) -> Cluster {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(Store::new(10_000));
    kube_sim::scenario::apply(&store, scenario, Duration::from_secs(30))
        .await
        .unwrap();
    let faults = Arc::new(kube_sim::faults::Faults::default());
    let server = kube_sim::serve_with_faults(
        store.clone(),
        "127.0.0.1:0".parse().unwrap(),
        false,
        faults.clone(),
    )
    .await
    .unwrap();
    let controllers = kube_sim::controllers::spawn(store.clone(), Default::default());
    let yaml = kube_sim::kubeconfig::kubeconfig(&server.url, server.ca_pem.as_deref());
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml).unwrap(),
        &KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    let client = Client::try_from(config).unwrap();
    if extras == Extras::DeploymentAndClaims {
        add_extras(&client).await;
    }
    let disks_before: BTreeMap<String, String> = store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    let extra_disks = if extras == Extras::DeploymentAndClaims {
        3
    } else {
        0
    };
    assert_eq!(disks_before.len(), 3 + extra_disks);
    let violations = Arc::new(Mutex::new(Vec::new()));
    let monitor = {
        let store = store.clone();
        let originals = disks_before.clone();
        let violations = violations.clone();
        let mut changes = store.subscribe();
        tokio::spawn(async move {
            loop {
                match changes.recv().await {
                    Ok(_) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(_) => return,
                }
                let found = check_instant(&store, &originals);
                if !found.is_empty() {
                    violations.lock().unwrap().extend(found);
                }
            }
        })
    };
    Cluster {
        store,
        faults,
        _server: server,
        controllers,
        monitor,
        client,
        disks_before,
        violations,
    }
}

async fn make_plan(cluster: &Cluster) -> (Plan, csi_migrate_migrate::WorkloadSnapshot) {
    let snapshot = load_statefulset_snapshot(&cluster.client, NS, "web")
        .await
        .unwrap();
    let plan = plan_statefulset(&snapshot, TARGET, PlanOptions::default()).unwrap();
    (plan, snapshot)
}

fn options(stop: Option<StopPoint>) -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(30),
        stop,
        progress: None,
    }
}

fn step_index(plan: &Plan, wanted: impl Fn(&Step) -> bool) -> usize {
    plan.steps.iter().position(wanted).unwrap()
}

/// The end state of a completed migration, and no invariant violated on the way.
async fn assert_migrated(cluster: &Cluster, plan: &Plan) {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
    let disks = cluster.store.cloud().list();
    let set = sets.get("web").await.unwrap();
    let set_uid = set.metadata.uid.clone().unwrap();
    assert_ne!(set_uid, plan.uid, "the StatefulSet was recreated");
    for template in set.spec.volume_claim_templates.as_ref().unwrap() {
        assert_eq!(
            template
                .spec
                .as_ref()
                .unwrap()
                .storage_class_name
                .as_deref(),
            Some(TARGET)
        );
    }
    for i in 0..3 {
        let claim = claims.get(&format!("data-web-{i}")).await.unwrap();
        assert_eq!(
            claim.status.as_ref().unwrap().phase.as_deref(),
            Some("Bound")
        );
        let spec = claim.spec.as_ref().unwrap();
        assert_eq!(spec.storage_class_name.as_deref(), Some(TARGET));
        let volume_name = spec.volume_name.clone().unwrap();
        let pv = volumes.get(&volume_name).await.unwrap();
        let pv_spec = pv.spec.as_ref().unwrap();
        let csi = pv_spec.csi.as_ref().expect("a native CSI PV");
        assert_eq!(csi.driver, DRIVER);
        assert!(pv_spec.aws_elastic_block_store.is_none());
        assert!(
            disks.iter().any(|d| d.handles.contains(&csi.volume_handle)),
            "handle {} names a disk",
            csi.volume_handle
        );
        assert_eq!(
            pv_spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete"),
            "user's policy restored"
        );
        assert_eq!(
            pv_spec.claim_ref.as_ref().unwrap().uid,
            claim.metadata.uid,
            "bound both ways"
        );
        let pod = pods.get(&format!("web-{i}")).await.unwrap();
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        let owner = pod.metadata.owner_references.as_ref().unwrap();
        assert!(
            owner
                .iter()
                .any(|o| o.uid == set_uid && o.controller == Some(true)),
            "adopted"
        );
    }
    let after: BTreeMap<String, String> =
        disks.iter().map(|d| (d.id.clone(), d.sha256())).collect();
    assert_eq!(
        after, cluster.disks_before,
        "every disk present with the same content, none added"
    );
    // No old in-tree PV objects remain.
    for volume in plan.volumes() {
        assert!(volumes.get_opt(&volume.old_volume).await.unwrap().is_none());
    }
    let violations = cluster.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "invariants violated: {violations:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_migration_keeps_every_disk_and_its_data() {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let progress_seen = seen.clone();
    // Pod uids just before the StatefulSet is recreated: adoption must not restart them.
    let before_recreate = Arc::new(Mutex::new(BTreeMap::new()));
    let (store, uids) = (cluster.store.clone(), before_recreate.clone());
    let options = RunOptions {
        progress: Some(Arc::new(move |p| {
            progress_seen.lock().unwrap().push(p.index);
            if *p.step == Step::RecreateStatefulSet && p.event == JournalEvent::Started {
                *uids.lock().unwrap() = pod_uids(&store);
            }
        })),
        ..options(None)
    };
    let summary = migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options,
    )
    .await
    .unwrap();
    assert_eq!(summary.executed, plan.steps.len());
    assert_eq!(seen.lock().unwrap().len(), 2 * plan.steps.len());
    assert_migrated(&cluster, &plan).await;
    let before = before_recreate.lock().unwrap().clone();
    assert_eq!(before.len(), 3);
    assert_eq!(
        pod_uids(&cluster.store),
        before,
        "adopted without a restart (hazard 23)"
    );
    // The work dir holds the plan, a backup of every object and a complete journal.
    for file in [
        "plan.json",
        "backup/statefulsets/web.json",
        "backup/pods/web-0.json",
        "backup/persistentvolumeclaims/data-web-2.json",
        "backup/storageclasses/gp2.json",
    ] {
        assert!(dir.path().join(file).exists(), "{file}");
    }
    for volume in plan.volumes() {
        let backup: Value = serde_json::from_str(
            &std::fs::read_to_string(dir.path().join(format!(
                "backup/persistentvolumes/{}.json",
                volume.old_volume
            )))
            .unwrap(),
        )
        .unwrap();
        assert!(
            backup
                .pointer("/spec/awsElasticBlockStore/volumeID")
                .is_some(),
            "disk identity backed up"
        );
    }
    assert!(!dir.path().join("lock").exists());
    // Resuming a finished run does nothing.
    let again = resume(cluster.client.clone(), dir.path(), &options)
        .await
        .unwrap();
    assert_eq!(again.executed, 0);
    // A second migrate into the same work dir is refused.
    let refused = migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options,
    )
    .await;
    assert!(matches!(refused, Err(RunError::WorkDir(_))));
}

/// Stops the run at `stop`, checks nothing was lost, resumes to the end.
async fn crash_and_resume(stop: StopPoint) -> Result<(), String> {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    match migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options(Some(stop)),
    )
    .await
    {
        Err(RunError::Stopped(_)) => {}
        // A step without a wait never reaches the InWait hook.
        Ok(_) if matches!(stop, StopPoint::InWait(_)) => {}
        other => return Err(format!("{stop:?}: expected a stop, got {other:?}")),
    }
    let during = check_instant(&cluster.store, &cluster.disks_before);
    if !during.is_empty() {
        return Err(format!("{stop:?}: after the crash: {during:?}"));
    }
    resume(cluster.client.clone(), dir.path(), &options(None))
        .await
        .map_err(|e| format!("{stop:?}: resume failed: {e}"))?;
    assert_migrated(&cluster, &plan).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn crash_at_every_step_and_wait_then_resume_converges() {
    let steps = {
        let cluster = cluster().await;
        make_plan(&cluster).await.0.steps.len()
    };
    let mut stops = Vec::new();
    for k in 0..steps {
        stops.push(StopPoint::AfterStep(k));
        stops.push(StopPoint::BeforeDone(k));
        stops.push(StopPoint::InWait(k));
    }
    let mut failures = Vec::new();
    for batch in stops.chunks(8) {
        let results = futures::future::join_all(
            batch
                .iter()
                .map(|stop| tokio::spawn(crash_and_resume(*stop))),
        )
        .await;
        for result in results {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(panic) => failures.push(format!("panicked: {panic}")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Hazard 1: deleting a claim whose PV is `Delete` destroys the disk. The simulator
/// really does it (naive order), and the runner refuses when a PV is not Retain.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_deleted_while_pv_is_delete_loses_the_disk_but_the_runner_refuses() {
    // The naive order: orphan the set, delete pod and claim, PV still Delete.
    let naive = cluster().await;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(naive.client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(naive.client.clone(), NS);
    let sets: Api<StatefulSet> = Api::namespaced(naive.client.clone(), NS);
    let set = sets.get("web").await.unwrap();
    let orphan = DeleteParams {
        propagation_policy: Some(PropagationPolicy::Orphan),
        ..Default::default()
    };
    sets.delete("web", &orphan).await.unwrap();
    await_condition(
        sets.clone(),
        "web",
        conditions::is_deleted(set.metadata.uid.as_deref().unwrap()),
    )
    .await
    .unwrap();
    let pod = pods.get("web-2").await.unwrap();
    pods.delete("web-2", &DeleteParams::default())
        .await
        .unwrap();
    await_condition(
        pods.clone(),
        "web-2",
        conditions::is_deleted(pod.metadata.uid.as_deref().unwrap()),
    )
    .await
    .unwrap();
    let claim = claims.get("data-web-2").await.unwrap();
    let pv_name = claim.spec.as_ref().unwrap().volume_name.clone().unwrap();
    claims
        .delete("data-web-2", &DeleteParams::default())
        .await
        .unwrap();
    let volumes: Api<PersistentVolume> = Api::all(naive.client.clone());
    tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(volumes, &pv_name, |pv: Option<&PersistentVolume>| {
            pv.is_none()
        }),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(
        naive.store.cloud().list().len(),
        2,
        "the naive order deleted a disk"
    );
    // The monitor runs on its own task: give it a moment to see the last change.
    let seen = async {
        while !naive
            .violations
            .lock()
            .unwrap()
            .iter()
            .any(|v| v.contains("was deleted"))
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    };
    assert!(
        tokio::time::timeout(Duration::from_secs(10), seen)
            .await
            .is_ok(),
        "the monitor sees the loss"
    );

    // Our runner: a competing writer flips a PV back to Delete after the Retain steps;
    // the runner stops before deleting anything, and finishes once it is fixed.
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let orphan_step = step_index(&plan, |s| matches!(s, Step::OrphanDeleteStatefulSet { .. }));
    let stop = Some(StopPoint::AfterStep(orphan_step));
    assert!(matches!(
        migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(stop)
        )
        .await,
        Err(RunError::Stopped(_))
    ));
    let first = &plan.batches[0].volumes[0].old_volume;
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let to = |policy: &str| json!({"spec": {"persistentVolumeReclaimPolicy": policy}});
    volumes
        .patch(first, &PatchParams::default(), &Patch::Merge(&to("Delete")))
        .await
        .unwrap();
    let err = resume(cluster.client.clone(), dir.path(), &options(None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Unexpected { message, .. } if message.contains("not Retain")),
        "{err}"
    );
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    assert!(
        claims
            .get_opt(&plan.batches[0].volumes[0].claim)
            .await
            .unwrap()
            .is_some(),
        "nothing deleted"
    );
    volumes
        .patch(first, &PatchParams::default(), &Patch::Merge(&to("Retain")))
        .await
        .unwrap();
    resume(cluster.client.clone(), dir.path(), &options(None))
        .await
        .unwrap();
    assert_migrated(&cluster, &plan).await;
}

/// Hazard 5: a StatefulSet that exists while a claim is missing creates a fresh claim
/// from its template on an EMPTY disk. The naive order (recreate the set right after
/// deleting the claim) does it; our runner never leaves that window, and when someone
/// else opens it (GitOps re-applies the set mid-run) it stops instead of papering over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_recreated_before_the_claim_exists_provisions_an_empty_disk_and_is_detected() {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let delete_claim = step_index(&plan, |s| matches!(s, Step::DeleteClaim { .. }));
    let stop = Some(StopPoint::AfterStep(delete_claim));
    assert!(matches!(
        migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(stop)
        )
        .await,
        Err(RunError::Stopped(_))
    ));
    // Someone re-applies the StatefulSet (still on the in-tree class) now.
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
    let mut again = snapshot.statefulset.clone().unwrap();
    again.metadata = kube::api::ObjectMeta {
        name: Some("web".into()),
        namespace: Some(NS.into()),
        ..Default::default()
    };
    again.status = None;
    sets.create(&PostParams::default(), &again).await.unwrap();
    let claim = &plan.batches[0].volumes[0].claim;
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    let fresh = tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(
            claims.clone(),
            claim,
            |c: Option<&PersistentVolumeClaim>| {
                c.is_some_and(|c| {
                    c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Bound")
                })
            },
        ),
    )
    .await
    .unwrap()
    .unwrap()
    .unwrap();
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let fresh_pv = volumes
        .get(fresh.spec.as_ref().unwrap().volume_name.as_deref().unwrap())
        .await
        .unwrap();
    let disk = cluster
        .store
        .cloud()
        .find_for_pv(&serde_json::to_value(&fresh_pv).unwrap())
        .unwrap();
    assert!(
        !cluster.disks_before.contains_key(&disk.id),
        "the naive window gives the replica a new, empty disk"
    );
    assert!(disk.content.is_empty());
    assert!(
        cluster
            .violations
            .lock()
            .unwrap()
            .iter()
            .any(|v| v.contains("not an original disk")),
        "the monitor sees the empty-disk window"
    );
    // The runner notices the foreign claim and stops; the original disk is untouched.
    let err = resume(cluster.client.clone(), dir.path(), &options(None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Unexpected { message, .. } if message.contains("not created by this run")),
        "{err}"
    );
    let after: BTreeMap<String, String> = cluster
        .store
        .cloud()
        .list()
        .into_iter()
        .filter(|d| cluster.disks_before.contains_key(&d.id))
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    assert_eq!(after, cluster.disks_before);
}

/// Hazard 5 (our side): during an uninterrupted migration no claim of the set is ever
/// bound to anything but an original disk, and no disk is created; checked by the
/// monitor at every change, and here with the controllers lagging (stale caches).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_window_for_a_template_claim_even_with_lagging_controllers() {
    let cluster = cluster().await;
    // Replace the controller loop with a lagging one.
    cluster.controllers.abort();
    let lagging = kube_sim::controllers::spawn(
        cluster.store.clone(),
        kube_sim::controllers::ControllerSettings {
            lag: Duration::from_millis(150),
            resync: Duration::from_millis(300),
            ..Default::default()
        },
    );
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options(None),
    )
    .await
    .unwrap();
    assert_migrated(&cluster, &plan).await;
    lagging.abort();
}

/// Sets `whenDeleted: Delete` on the StatefulSet and waits until the controller has put
/// its reference on every claim.
async fn retain_policy_when_deleted_delete(cluster: &Cluster) -> String {
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
    let patch = json!({"spec": {"persistentVolumeClaimRetentionPolicy":
        {"whenDeleted": "Delete", "whenScaled": "Retain"}}});
    let set = sets
        .patch("web", &PatchParams::default(), &Patch::Merge(&patch))
        .await
        .unwrap();
    let uid = set.metadata.uid.clone().unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    for i in 0..3 {
        let owned = |c: Option<&PersistentVolumeClaim>| {
            c.is_some_and(|c| {
                c.metadata
                    .owner_references
                    .iter()
                    .flatten()
                    .any(|o| o.uid == uid)
            })
        };
        tokio::time::timeout(
            Duration::from_secs(20),
            await_condition(claims.clone(), &format!("data-web-{i}"), owned),
        )
        .await
        .unwrap()
        .unwrap();
    }
    uid
}

/// Hazard 4 and §4.6: with `whenDeleted: Delete`, deleting the StatefulSet the default
/// (background) way garbage-collects every claim and, with `Delete` PVs, every disk.
/// Our run orphan-deletes it after Retain and migrates with every disk intact.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retention_when_deleted_delete_is_handled_by_orphan_deletion() {
    let naive = cluster().await;
    retain_policy_when_deleted_delete(&naive).await;
    let sets: Api<StatefulSet> = Api::namespaced(naive.client.clone(), NS);
    sets.delete("web", &DeleteParams::background())
        .await
        .unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    while !naive.store.cloud().list().is_empty() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the naive delete should lose every disk"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    let cluster = cluster().await;
    retain_policy_when_deleted_delete(&cluster).await;
    let (plan, snapshot) = make_plan(&cluster).await;
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("whenDeleted=Delete"))
    );
    let dir = tempfile::tempdir().unwrap();
    migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options(None),
    )
    .await
    .unwrap();
    assert_migrated(&cluster, &plan).await;
}

/// Hazard 8: a new claim that copies the old one's binding annotations
/// (`pv.kubernetes.io/bind-completed`) goes straight to the bound-claim logic and ends
/// `Lost`. The plan builds claims from scratch; here the naive copy is made by hand at
/// the point the runner would create its own, and the runner refuses to adopt it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claim_copied_with_binding_annotations_is_lost_and_refused() {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let create_volume = step_index(&plan, |s| matches!(s, Step::CreateVolume { .. }));
    let stop = Some(StopPoint::AfterStep(create_volume));
    assert!(matches!(
        migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(stop)
        )
        .await,
        Err(RunError::Stopped(_))
    ));
    let volume = &plan.batches[0].volumes[0];
    let mut naive = volume.new_claim.clone();
    naive
        .metadata
        .annotations
        .get_or_insert_with(Default::default)
        .insert("pv.kubernetes.io/bind-completed".into(), "yes".into());
    naive
        .metadata
        .annotations
        .as_mut()
        .unwrap()
        .remove("csi-migrate.io/migrated-from");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    claims.create(&PostParams::default(), &naive).await.unwrap();
    tokio::time::timeout(
        Duration::from_secs(20),
        await_condition(
            claims.clone(),
            &volume.claim,
            |c: Option<&PersistentVolumeClaim>| {
                c.is_some_and(|c| {
                    c.status.as_ref().and_then(|s| s.phase.as_deref()) == Some("Lost")
                })
            },
        ),
    )
    .await
    .expect("the copied claim ends Lost")
    .unwrap();
    let err = resume(cluster.client.clone(), dir.path(), &options(None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Unexpected { message, .. } if message.contains("not created by this run")),
        "{err}"
    );
    let after: BTreeMap<String, String> = cluster
        .store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    assert_eq!(after, cluster.disks_before);
}

/// A single replica migrates only with `allow_downtime`; claims of scaled-away
/// ordinals are left alone (and reported).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn single_replica_migrates_with_allow_downtime_only() {
    let cluster = cluster().await;
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
    sets.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(&json!({"spec": {"replicas": 1}})),
    )
    .await
    .unwrap();
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    for gone in ["web-1", "web-2"] {
        tokio::time::timeout(
            Duration::from_secs(20),
            await_condition(pods.clone(), gone, |p: Option<&Pod>| p.is_none()),
        )
        .await
        .unwrap()
        .unwrap();
    }
    let snapshot = load_statefulset_snapshot(&cluster.client, NS, "web")
        .await
        .unwrap();
    assert!(plan_statefulset(&snapshot, TARGET, PlanOptions::default()).is_err());
    let allow = PlanOptions {
        allow_downtime: true,
        ..Default::default()
    };
    let plan = plan_statefulset(&snapshot, TARGET, allow).unwrap();
    assert_eq!(plan.batches.len(), 1);
    assert!(plan.warnings.iter().any(|w| w.contains("data-web-2")));
    let dir = tempfile::tempdir().unwrap();
    migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options(None),
    )
    .await
    .unwrap();
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let migrated = claims.get("data-web-0").await.unwrap();
    let pv = volumes
        .get(migrated.spec.unwrap().volume_name.as_deref().unwrap())
        .await
        .unwrap();
    assert_eq!(pv.spec.unwrap().csi.unwrap().driver, DRIVER);
    let untouched = claims.get("data-web-2").await.unwrap();
    let pv = volumes
        .get(untouched.spec.unwrap().volume_name.as_deref().unwrap())
        .await
        .unwrap();
    assert!(pv.spec.unwrap().aws_elastic_block_store.is_some());
    let after: BTreeMap<String, String> = cluster
        .store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    assert_eq!(after, cluster.disks_before);
    assert!(cluster.violations.lock().unwrap().is_empty());
}

/// The state before the migration: in-tree PVs with their original names, claims on
/// the original class, the user's reclaim policy, pods adopted, disks unchanged.
async fn assert_rolled_back(cluster: &Cluster, plan: &Plan) {
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
    let set = sets.get("web").await.unwrap();
    let set_uid = set.metadata.uid.clone().unwrap();
    for template in set.spec.volume_claim_templates.as_ref().unwrap() {
        assert_eq!(
            template
                .spec
                .as_ref()
                .unwrap()
                .storage_class_name
                .as_deref(),
            Some("gp2")
        );
    }
    for volume in plan.volumes() {
        let claim = claims.get(&volume.claim).await.unwrap();
        assert_eq!(
            claim.status.as_ref().unwrap().phase.as_deref(),
            Some("Bound")
        );
        let spec = claim.spec.as_ref().unwrap();
        assert_eq!(
            spec.volume_name.as_deref(),
            Some(volume.old_volume.as_str())
        );
        assert_eq!(spec.storage_class_name.as_deref(), Some("gp2"));
        let pv = volumes.get(&volume.old_volume).await.unwrap();
        let pv_spec = pv.spec.as_ref().unwrap();
        assert!(pv_spec.aws_elastic_block_store.is_some());
        assert_eq!(
            pv_spec.persistent_volume_reclaim_policy.as_deref(),
            Some("Delete")
        );
        let new_name = volume.new_volume.metadata.name.as_deref().unwrap();
        assert!(volumes.get_opt(new_name).await.unwrap().is_none());
    }
    for i in 0..3 {
        let pod = pods.get(&format!("web-{i}")).await.unwrap();
        assert_eq!(
            pod.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        let owners = pod.metadata.owner_references.as_ref().unwrap();
        assert!(owners.iter().any(|o| o.uid == set_uid));
    }
    let after: BTreeMap<String, String> = cluster
        .store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    assert_eq!(after, cluster.disks_before);
    let violations = cluster.violations.lock().unwrap().clone();
    assert!(
        violations.is_empty(),
        "invariants violated: {violations:#?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rollback_of_a_completed_migration_restores_the_in_tree_objects() {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options(None),
    )
    .await
    .unwrap();
    // Interrupt the rollback itself once, mid-way, then finish it.
    let stop = Some(StopPoint::BeforeDone(8));
    assert!(matches!(
        rollback(cluster.client.clone(), dir.path(), &options(stop)).await,
        Err(RollbackError::Run(RunError::Stopped(8)))
    ));
    rollback(cluster.client.clone(), dir.path(), &options(None))
        .await
        .unwrap();
    assert!(dir.path().join("rollback-journal.jsonl").exists());
    assert_rolled_back(&cluster, &plan).await;
}

/// Stops the migration at `stop`, rolls back, checks the original state.
async fn crash_and_roll_back(stop: StopPoint) -> Result<(), String> {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    match migrate(
        cluster.client.clone(),
        dir.path(),
        &plan,
        &snapshot,
        &options(Some(stop)),
    )
    .await
    {
        Err(RunError::Stopped(_)) => {}
        other => return Err(format!("{stop:?}: expected a stop, got {other:?}")),
    }
    rollback(cluster.client.clone(), dir.path(), &options(None))
        .await
        .map_err(|e| format!("{stop:?}: rollback failed: {e}"))?;
    assert_rolled_back(&cluster, &plan).await;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_after_a_crash_at_every_step_restores_the_original() {
    let steps = {
        let cluster = cluster().await;
        make_plan(&cluster).await.0.steps.len()
    };
    let stops: Vec<StopPoint> = (0..steps)
        .flat_map(|k| [StopPoint::AfterStep(k), StopPoint::BeforeDone(k)])
        .collect();
    let mut failures = Vec::new();
    for batch in stops.chunks(8) {
        let results = futures::future::join_all(
            batch
                .iter()
                .map(|stop| tokio::spawn(crash_and_roll_back(*stop))),
        )
        .await;
        for result in results {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(panic) => failures.push(format!("panicked: {panic}")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Rollback is itself resumable: interrupted at every step (after acting, or while
/// waiting), run again, it converges to the original state.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn rollback_interrupted_at_every_step_converges() {
    async fn interrupted_rollback(k: usize, in_wait: bool) -> Result<(), String> {
        let cluster = cluster().await;
        let (plan, snapshot) = make_plan(&cluster).await;
        let dir = tempfile::tempdir().unwrap();
        migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(None),
        )
        .await
        .map_err(|e| e.to_string())?;
        let stop = if in_wait {
            StopPoint::InWait(k)
        } else {
            StopPoint::BeforeDone(k)
        };
        match rollback(cluster.client.clone(), dir.path(), &options(Some(stop))).await {
            Err(RollbackError::Run(RunError::Stopped(_))) => {}
            Ok(_) if in_wait => {}
            other => return Err(format!("{stop:?}: expected a stop, got {other:?}")),
        }
        rollback(cluster.client.clone(), dir.path(), &options(None))
            .await
            .map_err(|e| format!("{stop:?}: second rollback failed: {e}"))?;
        assert_rolled_back(&cluster, &plan).await;
        Ok(())
    }
    let steps = {
        let cluster = cluster().await;
        make_plan(&cluster).await.0.steps.len()
    };
    let cases: Vec<(usize, bool)> = (0..steps).flat_map(|k| [(k, false), (k, true)]).collect();
    let mut failures = Vec::new();
    for batch in cases.chunks(8) {
        let results = futures::future::join_all(
            batch
                .iter()
                .map(|(k, in_wait)| tokio::spawn(interrupted_rollback(*k, *in_wait))),
        )
        .await;
        for result in results {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(e)) => failures.push(e),
                Err(panic) => failures.push(format!("panicked: {panic}")),
            }
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

/// Two work dirs cannot migrate the same workload: the second is refused while the
/// first holds the workload lock, which goes away when the first completes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_run_on_the_same_workload_is_refused() {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let first = tempfile::tempdir().unwrap();
    let second = tempfile::tempdir().unwrap();
    let stop = Some(StopPoint::AfterStep(0));
    assert!(matches!(
        migrate(
            cluster.client.clone(),
            first.path(),
            &plan,
            &snapshot,
            &options(stop)
        )
        .await,
        Err(RunError::Stopped(0))
    ));
    let refused = migrate(
        cluster.client.clone(),
        second.path(),
        &plan,
        &snapshot,
        &options(None),
    )
    .await;
    assert!(
        matches!(refused, Err(RunError::WorkloadLocked { .. })),
        "{refused:?}"
    );
    resume(cluster.client.clone(), first.path(), &options(None))
        .await
        .unwrap();
    assert_migrated(&cluster, &plan).await;
    let locks: Api<k8s_openapi::api::core::v1::ConfigMap> =
        Api::namespaced(cluster.client.clone(), NS);
    assert!(
        locks
            .get_opt("csi-migrate-lock-statefulset-web")
            .await
            .unwrap()
            .is_none()
    );
}

/// Competing writer: a pod of the set recreated by someone else while the set is gone
/// is reported, never deleted or papered over.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pod_recreated_by_someone_else_is_reported() {
    let cluster = cluster().await;
    let (plan, snapshot) = make_plan(&cluster).await;
    let dir = tempfile::tempdir().unwrap();
    let orphan_step = step_index(&plan, |s| matches!(s, Step::OrphanDeleteStatefulSet { .. }));
    let stop = Some(StopPoint::AfterStep(orphan_step));
    assert!(matches!(
        migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(stop)
        )
        .await,
        Err(RunError::Stopped(_))
    ));
    let replica = &plan.batches[0].pods[0];
    let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
    pods.delete(&replica.name, &DeleteParams::default())
        .await
        .unwrap();
    await_condition(
        pods.clone(),
        &replica.name,
        conditions::is_deleted(&replica.uid),
    )
    .await
    .unwrap();
    let stranger = pods
        .create(&PostParams::default(), &replica.recreated)
        .await
        .unwrap();
    let err = resume(cluster.client.clone(), dir.path(), &options(None))
        .await
        .unwrap_err();
    assert!(
        matches!(&err, RunError::Unexpected { message, .. } if message.contains("something else recreated it")),
        "{err}"
    );
    let still = pods.get(&replica.name).await.unwrap();
    assert_eq!(still.metadata.uid, stranger.metadata.uid, "not deleted");
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
    let claim = claims.get(&plan.batches[0].volumes[0].claim).await.unwrap();
    assert_eq!(
        claim.metadata.uid.as_deref(),
        Some(plan.batches[0].volumes[0].claim_uid.as_str())
    );
}

mod vsphere {
    //! The `vsphere-statefulset` scenario: handles resolved from the CSI driver's
    //! `CnsVSphereVolumeMigration` records (FCD ids), never the VMDK paths.

    use super::*;
    use csi_migrate_migrate::{PlanError, VcenterConfig, VsphereResolver, resolve_snapshot};
    use csi_migrate_vsphere::{ClientOptions, Credentials};
    use kube::api::{ApiResource, DynamicObject, GroupVersionKind, ListParams};

    const VSPHERE_TARGET: &str = "vsphere-thin-csi";
    const VSPHERE_DRIVER: &str = "csi.vsphere.vmware.com";
    const PASSWORD: &str = "vc-Pa55w0rd-never-shown";

    fn records(client: &Client) -> Api<DynamicObject> {
        let resource = ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cns.vmware.com", "v1alpha1", "CnsVSphereVolumeMigration"),
            "cnsvspherevolumemigrations",
        );
        Api::all_with(client.clone(), &resource)
    }

    /// A vCenter that is configured but unreachable (nothing listens on port 1): resolution
    /// must not need it while records exist, and its password must never leak.
    fn unreachable_vcenter() -> VcenterConfig {
        VcenterConfig {
            url: "https://127.0.0.1:1/sdk".into(),
            credentials: Credentials::new("administrator@vsphere.local", PASSWORD),
            datacenters: vec!["DC0".into()],
            client_options: ClientOptions {
                request_timeout: Duration::from_secs(2),
                ..ClientOptions::default()
            },
            cluster_id: "kube-sim".into(),
        }
    }

    /// path → FCD id from the records kube-sim's driver wrote.
    async fn recorded_ids(client: &Client) -> BTreeMap<String, String> {
        records(client)
            .list(&ListParams::default())
            .await
            .unwrap()
            .items
            .iter()
            .map(|r| {
                (
                    r.data["spec"]["volumepath"].as_str().unwrap().to_owned(),
                    r.data["spec"]["volumeid"].as_str().unwrap().to_owned(),
                )
            })
            .collect()
    }

    fn grep_dir(dir: &std::path::Path, needle: &str) -> Vec<String> {
        let mut hits = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                hits.extend(grep_dir(&path, needle));
            } else if std::fs::read(&path)
                .unwrap()
                .windows(needle.len())
                .any(|w| w == needle.as_bytes())
            {
                hits.push(path.display().to_string());
            }
        }
        hits
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vsphere_statefulset_migrates_onto_fcd_ids_with_every_disk_unchanged() {
        let cluster = cluster_on(Scenario::VsphereStatefulset).await;
        let ids = recorded_ids(&cluster.client).await;
        assert_eq!(ids.len(), 3, "{ids:?}");
        let mut snapshot = load_statefulset_snapshot(&cluster.client, NS, "web")
            .await
            .unwrap();
        let resolver =
            VsphereResolver::new(cluster.client.clone(), Some(unreachable_vcenter()), true);
        resolve_snapshot(&resolver, &mut snapshot).await;
        assert!(
            snapshot.unresolved_volumes.is_empty(),
            "{:?}",
            snapshot.unresolved_volumes
        );
        // resolving again gives the same ids and creates no record
        let mut again = snapshot.clone();
        resolve_snapshot(&resolver, &mut again).await;
        assert_eq!(again.resolved_volumes, snapshot.resolved_volumes);
        assert_eq!(recorded_ids(&cluster.client).await, ids);

        let plan = plan_statefulset(&snapshot, VSPHERE_TARGET, PlanOptions::default()).unwrap();
        assert_eq!(plan.driver, VSPHERE_DRIVER);
        let mut handles = BTreeMap::new();
        for volume in plan.volumes() {
            let old = snapshot
                .volumes
                .iter()
                .find(|pv| pv.metadata.name.as_deref() == Some(volume.old_volume.as_str()))
                .unwrap();
            let path = old
                .spec
                .as_ref()
                .unwrap()
                .vsphere_volume
                .as_ref()
                .unwrap()
                .volume_path
                .clone();
            assert_eq!(
                volume.volume_handle, ids[&path],
                "the plan shows the FCD id"
            );
            handles.insert(volume.claim.clone(), ids[&path].clone());
        }
        let dir = tempfile::tempdir().unwrap();
        migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(None),
        )
        .await
        .unwrap();

        let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
        let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
        let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
        let set = sets.get("web").await.unwrap();
        assert_ne!(set.metadata.uid.as_deref(), Some(plan.uid.as_str()));
        for template in set.spec.volume_claim_templates.as_ref().unwrap() {
            assert_eq!(
                template
                    .spec
                    .as_ref()
                    .unwrap()
                    .storage_class_name
                    .as_deref(),
                Some(VSPHERE_TARGET)
            );
        }
        for i in 0..3 {
            let claim = claims.get(&format!("data-web-{i}")).await.unwrap();
            assert_eq!(
                claim.status.as_ref().unwrap().phase.as_deref(),
                Some("Bound")
            );
            let pv = volumes
                .get(claim.spec.as_ref().unwrap().volume_name.as_deref().unwrap())
                .await
                .unwrap();
            let spec = pv.spec.as_ref().unwrap();
            let csi = spec.csi.as_ref().expect("a native CSI PV");
            assert_eq!(csi.driver, VSPHERE_DRIVER);
            assert_eq!(csi.volume_handle, handles[&format!("data-web-{i}")]);
            assert!(!csi.volume_handle.contains(".vmdk"));
            assert!(spec.vsphere_volume.is_none());
            assert_eq!(spec.storage_class_name.as_deref(), Some(VSPHERE_TARGET));
            let pod = pods.get(&format!("web-{i}")).await.unwrap();
            assert_eq!(
                pod.status.as_ref().unwrap().phase.as_deref(),
                Some("Running")
            );
        }
        let after: BTreeMap<String, String> = cluster
            .store
            .cloud()
            .list()
            .iter()
            .map(|d| (d.id.clone(), d.sha256()))
            .collect();
        assert_eq!(after, cluster.disks_before, "same disks, same bytes");
        let violations = cluster.violations.lock().unwrap().clone();
        assert!(violations.is_empty(), "{violations:#?}");
        // the ids are in the plan and the backup; the vCenter password is nowhere
        let plan_file = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
        for id in handles.values() {
            assert!(plan_file.contains(id.as_str()));
        }
        assert!(
            grep_dir(dir.path(), PASSWORD).is_empty(),
            "password in the work dir"
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn vsphere_pv_without_record_and_without_vcenter_blocks_clearly() {
        let cluster = cluster_on(Scenario::VsphereStatefulset).await;
        let ids = recorded_ids(&cluster.client).await;
        // the driver never registered web-1's disk
        let mut snapshot = load_statefulset_snapshot(&cluster.client, NS, "web")
            .await
            .unwrap();
        let pv_of_1 = snapshot
            .claims
            .iter()
            .find(|c| c.metadata.name.as_deref() == Some("data-web-1"))
            .and_then(|c| c.spec.as_ref()?.volume_name.clone())
            .unwrap();
        let path = snapshot
            .volumes
            .iter()
            .find(|pv| pv.metadata.name.as_deref() == Some(pv_of_1.as_str()))
            .and_then(|pv| {
                Some(
                    pv.spec
                        .as_ref()?
                        .vsphere_volume
                        .as_ref()?
                        .volume_path
                        .clone(),
                )
            })
            .unwrap();
        records(&cluster.client)
            .delete(&ids[&path], &DeleteParams::default())
            .await
            .unwrap();

        resolve_snapshot(
            &VsphereResolver::new(cluster.client.clone(), None, true),
            &mut snapshot,
        )
        .await;
        let err = plan_statefulset(&snapshot, VSPHERE_TARGET, PlanOptions::default()).unwrap_err();
        let PlanError::Blocked(blockers) = &err;
        assert_eq!(blockers.len(), 1, "{err}");
        assert_eq!(blockers[0].object, format!("persistentvolume/{pv_of_1}"));
        let text = err.to_string();
        for wanted in [
            path.as_str(),
            "--vcenter",
            "VSPHERE_USER",
            "--vsphere-config",
        ] {
            assert!(text.contains(wanted), "{wanted:?} missing from {text}");
        }

        // With an (unreachable) vCenter configured the blocker says why, without the password.
        let mut snapshot = load_statefulset_snapshot(&cluster.client, NS, "web")
            .await
            .unwrap();
        let resolver =
            VsphereResolver::new(cluster.client.clone(), Some(unreachable_vcenter()), false);
        resolve_snapshot(&resolver, &mut snapshot).await;
        let err = plan_statefulset(&snapshot, VSPHERE_TARGET, PlanOptions::default()).unwrap_err();
        let shown = format!("{err} {err:?} {snapshot:?}");
        assert!(shown.contains("vCenter"), "{shown}");
        assert!(!shown.contains(PASSWORD), "password leaked: {shown}");
    }
}

/// Deployments and bare claims: the same invariants, journal, resume and rollback.
mod deployment_and_claims {
    use super::*;
    use csi_migrate_migrate::{
        PlanError, WorkloadKind, WorkloadRef, load_workload_snapshot, plan_workload,
    };

    async fn extras_cluster() -> Cluster {
        cluster_with(Scenario::EbsStatefulset, Extras::DeploymentAndClaims).await
    }

    async fn plan_for(
        cluster: &Cluster,
        kind: WorkloadKind,
        name: &str,
        allow_downtime: bool,
    ) -> Result<(Plan, csi_migrate_migrate::WorkloadSnapshot), PlanError> {
        let workload = WorkloadRef {
            kind,
            namespace: NS.into(),
            name: name.into(),
        };
        let snapshot = load_workload_snapshot(&cluster.client, &workload)
            .await
            .unwrap();
        let options = PlanOptions {
            allow_downtime,
            ..Default::default()
        };
        Ok((plan_workload(&snapshot, TARGET, options)?, snapshot))
    }

    fn blocker_text(
        result: Result<(Plan, csi_migrate_migrate::WorkloadSnapshot), PlanError>,
    ) -> String {
        match result {
            Err(e) => e.to_string(),
            Ok(_) => panic!("expected blockers"),
        }
    }

    /// Every claim of `plan` is Bound both ways to a native CSI PV naming one of the
    /// original disks, with the user's reclaim policy back; no disk changed, none added;
    /// no old PV left; no invariant violated on the way.
    async fn assert_claims_migrated(cluster: &Cluster, plan: &Plan) {
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
        let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
        let disks = cluster.store.cloud().list();
        for volume in plan.volumes() {
            let claim = claims.get(&volume.claim).await.unwrap();
            assert_eq!(
                claim.status.as_ref().unwrap().phase.as_deref(),
                Some("Bound")
            );
            let spec = claim.spec.as_ref().unwrap();
            assert_eq!(spec.storage_class_name.as_deref(), Some(TARGET));
            let pv = volumes
                .get(spec.volume_name.as_ref().unwrap())
                .await
                .unwrap();
            let pv_spec = pv.spec.as_ref().unwrap();
            let csi = pv_spec.csi.as_ref().expect("a native CSI PV");
            assert_eq!(csi.driver, DRIVER);
            assert!(disks.iter().any(|d| d.handles.contains(&csi.volume_handle)));
            assert_eq!(
                pv_spec.persistent_volume_reclaim_policy.as_deref(),
                Some("Delete")
            );
            assert_eq!(pv_spec.claim_ref.as_ref().unwrap().uid, claim.metadata.uid);
            assert!(volumes.get_opt(&volume.old_volume).await.unwrap().is_none());
        }
        let after: BTreeMap<String, String> =
            disks.iter().map(|d| (d.id.clone(), d.sha256())).collect();
        assert_eq!(
            after, cluster.disks_before,
            "every disk present, same content, none added"
        );
        let violations = cluster.violations.lock().unwrap().clone();
        assert!(
            violations.is_empty(),
            "invariants violated: {violations:#?}"
        );
    }

    async fn assert_deployment_back(cluster: &Cluster) -> Pod {
        let deployments: Api<Deployment> = Api::namespaced(cluster.client.clone(), NS);
        let deployment = deployments.get("reports").await.unwrap();
        assert_eq!(deployment.spec.replicas, Some(1), "scaled back");
        assert_eq!(
            deployment.status.as_ref().unwrap().available_replicas,
            Some(1)
        );
        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
        let running: Vec<Pod> = pods
            .list(&Default::default())
            .await
            .unwrap()
            .items
            .into_iter()
            .filter(|p| {
                p.metadata
                    .labels
                    .as_ref()
                    .and_then(|l| l.get("app"))
                    .map(String::as_str)
                    == Some("reports")
            })
            .collect();
        assert_eq!(running.len(), 1, "one pod of the Deployment");
        running.into_iter().next().unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_is_scaled_to_zero_converted_and_scaled_back_on_the_same_disk() {
        let cluster = Box::pin(extras_cluster()).await;
        let refused =
            blocker_text(plan_for(&cluster, WorkloadKind::Deployment, "reports", false).await);
        assert!(refused.contains("--allow-downtime"), "{refused}");
        let (plan, snapshot) = plan_for(&cluster, WorkloadKind::Deployment, "reports", true)
            .await
            .unwrap();
        assert_eq!(plan.deployment_replicas, Some(1));
        assert_eq!(plan.steps[1], Step::ScaleDeployment { replicas: 0 });
        assert_eq!(plan.steps[2], Step::AwaitClaimsReleased);
        let writes = plan
            .steps
            .iter()
            .filter(|s| {
                !matches!(
                    s,
                    Step::AwaitClaimBound { .. }
                        | Step::AwaitClaimsReleased
                        | Step::AwaitDeploymentAvailable
                )
            })
            .count();
        // Retain, delete claim + PV, create PV + claim, restore policy; two scales.
        assert_eq!(writes, 6 + 2);
        let old_pod = assert_deployment_back(&cluster).await;
        let dir = tempfile::tempdir().unwrap();
        Box::pin(migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(None),
        ))
        .await
        .unwrap();
        assert_claims_migrated(&cluster, &plan).await;
        let new_pod = assert_deployment_back(&cluster).await;
        assert_ne!(
            new_pod.metadata.uid, old_pod.metadata.uid,
            "a new pod mounts the CSI PV"
        );
        // The StatefulSet and the other claims were not touched.
        let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
        let set = sets.get("web").await.unwrap();
        assert_eq!(set.metadata.uid, snapshot_uid(&cluster, "web").await);
        assert!(dir.path().join("backup/deployments/reports.json").exists());
    }

    async fn snapshot_uid(cluster: &Cluster, set: &str) -> Option<String> {
        let sets: Api<StatefulSet> = Api::namespaced(cluster.client.clone(), NS);
        sets.get(set).await.unwrap().metadata.uid
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_migration_stopped_mid_step_anywhere_resumes_to_the_same_end() {
        let probe = Box::pin(extras_cluster()).await;
        let (probe_plan, _) = plan_for(&probe, WorkloadKind::Deployment, "reports", true)
            .await
            .unwrap();
        let steps = probe_plan.steps.len();
        drop(probe);
        for index in 0..steps {
            for stop in [StopPoint::BeforeDone(index), StopPoint::InWait(index)] {
                let cluster = Box::pin(extras_cluster()).await;
                let (plan, snapshot) =
                    plan_for(&cluster, WorkloadKind::Deployment, "reports", true)
                        .await
                        .unwrap();
                let dir = tempfile::tempdir().unwrap();
                match Box::pin(migrate(
                    cluster.client.clone(),
                    dir.path(),
                    &plan,
                    &snapshot,
                    &options(Some(stop)),
                ))
                .await
                {
                    Err(RunError::Stopped(_)) | Ok(_) => {}
                    Err(e) => panic!("{stop:?}: {e}"),
                }
                Box::pin(resume(cluster.client.clone(), dir.path(), &options(None)))
                    .await
                    .unwrap_or_else(|e| panic!("{stop:?}: resume: {e}"));
                assert_claims_migrated(&cluster, &plan).await;
                assert_deployment_back(&cluster).await;
            }
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deployment_rollback_after_a_stop_restores_the_in_tree_claim_and_replicas() {
        let probe = Box::pin(extras_cluster()).await;
        let (probe_plan, _) = plan_for(&probe, WorkloadKind::Deployment, "reports", true)
            .await
            .unwrap();
        // Stopped with the Deployment at zero and the claim gone; and after completion.
        let claim_deleted = step_index(&probe_plan, |s| matches!(s, Step::DeleteClaim { .. }));
        drop(probe);
        for stop in [Some(StopPoint::AfterStep(claim_deleted)), None] {
            let cluster = Box::pin(extras_cluster()).await;
            let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
            let original = claims.get("reports").await.unwrap();
            let original_pv = original.spec.as_ref().unwrap().volume_name.clone().unwrap();
            let (plan, snapshot) = plan_for(&cluster, WorkloadKind::Deployment, "reports", true)
                .await
                .unwrap();
            let dir = tempfile::tempdir().unwrap();
            let _ = Box::pin(migrate(
                cluster.client.clone(),
                dir.path(),
                &plan,
                &snapshot,
                &options(stop),
            ))
            .await;
            Box::pin(rollback(cluster.client.clone(), dir.path(), &options(None)))
                .await
                .unwrap_or_else(|e| panic!("{stop:?}: {e}"));
            let claim = claims.get("reports").await.unwrap();
            let spec = claim.spec.as_ref().unwrap();
            assert_eq!(spec.storage_class_name.as_deref(), Some("gp2"));
            assert_eq!(spec.volume_name.as_deref(), Some(original_pv.as_str()));
            let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
            let pv = volumes.get(&original_pv).await.unwrap();
            let pv_spec = pv.spec.as_ref().unwrap();
            assert!(pv_spec.aws_elastic_block_store.is_some(), "in-tree again");
            assert_eq!(
                pv_spec.persistent_volume_reclaim_policy.as_deref(),
                Some("Delete")
            );
            assert_deployment_back(&cluster).await;
            let after: BTreeMap<String, String> = cluster
                .store
                .cloud()
                .list()
                .iter()
                .map(|d| (d.id.clone(), d.sha256()))
                .collect();
            assert_eq!(after, cluster.disks_before);
            assert!(cluster.violations.lock().unwrap().is_empty());
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unused_claim_is_converted_in_place() {
        let cluster = Box::pin(extras_cluster()).await;
        let (plan, snapshot) = plan_for(
            &cluster,
            WorkloadKind::PersistentVolumeClaim,
            "scratch",
            false,
        )
        .await
        .unwrap();
        assert!(plan.batches[0].pods.is_empty());
        let dir = tempfile::tempdir().unwrap();
        Box::pin(migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(None),
        ))
        .await
        .unwrap();
        assert_claims_migrated(&cluster, &plan).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn claim_used_by_a_bare_pod_needs_downtime_and_the_pod_comes_back_on_the_same_disk() {
        let cluster = Box::pin(extras_cluster()).await;
        let refused = blocker_text(
            plan_for(
                &cluster,
                WorkloadKind::PersistentVolumeClaim,
                "tools-data",
                false,
            )
            .await,
        );
        assert!(
            refused.contains("pod/default/tools") && refused.contains("--allow-downtime"),
            "{refused}"
        );
        // A claim whose pod a controller would recreate at once: migrate the workload instead.
        let refused = blocker_text(
            plan_for(
                &cluster,
                WorkloadKind::PersistentVolumeClaim,
                "reports",
                true,
            )
            .await,
        );
        assert!(refused.contains("controlled by ReplicaSet"), "{refused}");

        let pods: Api<Pod> = Api::namespaced(cluster.client.clone(), NS);
        let before = pods.get("tools").await.unwrap();
        let (plan, snapshot) = plan_for(
            &cluster,
            WorkloadKind::PersistentVolumeClaim,
            "tools-data",
            true,
        )
        .await
        .unwrap();
        assert_eq!(plan.batches[0].pods[0].name, "tools");
        let dir = tempfile::tempdir().unwrap();
        Box::pin(migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(None),
        ))
        .await
        .unwrap();
        assert_claims_migrated(&cluster, &plan).await;
        let after = pods.get("tools").await.unwrap();
        assert_ne!(after.metadata.uid, before.metadata.uid, "recreated");
        assert_eq!(
            after.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );

        // And back.
        Box::pin(rollback(cluster.client.clone(), dir.path(), &options(None)))
            .await
            .unwrap();
        let claims: Api<PersistentVolumeClaim> = Api::namespaced(cluster.client.clone(), NS);
        let claim = claims.get("tools-data").await.unwrap();
        assert_eq!(
            claim.spec.as_ref().unwrap().volume_name.as_deref(),
            Some(plan.batches[0].volumes[0].old_volume.as_str())
        );
        let back = pods.get("tools").await.unwrap();
        assert_eq!(
            back.status.as_ref().unwrap().phase.as_deref(),
            Some("Running")
        );
        assert!(cluster.violations.lock().unwrap().is_empty());
    }
}

/// `--dry-run`: every write reaches the API server with dryRun=All; nothing changes.
mod dry_run {
    use super::*;
    use csi_migrate_migrate::dry_run;

    fn recording_options(seen: Arc<Mutex<Vec<(JournalEvent, String)>>>) -> RunOptions {
        RunOptions {
            progress: Some(Arc::new(move |p| {
                seen.lock().unwrap().push((p.event, p.description.clone()));
            })),
            ..options(None)
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dry_run_sends_every_write_and_changes_nothing() {
        let cluster = Box::pin(cluster()).await;
        let (plan, _) = make_plan(&cluster).await;
        let pods_before = pod_uids(&cluster.store);
        let rv_before = cluster.store.resource_version();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let summary = Box::pin(dry_run(
            cluster.client.clone(),
            &plan,
            &recording_options(seen.clone()),
        ))
        .await
        .unwrap();
        assert_eq!(summary.executed, plan.steps.len());
        let seen = seen.lock().unwrap().clone();
        let done: Vec<&String> = seen
            .iter()
            .filter(|(e, _)| *e == JournalEvent::Done)
            .map(|(_, d)| d)
            .collect();
        assert_eq!(done.len(), plan.steps.len());
        // Deletes and patches accepted; the new PVs validated for real; the claims, pods
        // and set validated although the originals still hold their names.
        let count = |note: &str| done.iter().filter(|d| d.ends_with(note)).count();
        assert_eq!(count("accepted (dry run)"), 3 + 1 + 3 * 3 + 3);
        assert_eq!(
            count("validated (dry run; the original still holds the name)"),
            3 + 3 + 1
        );
        assert_eq!(
            cluster.store.resource_version(),
            rv_before,
            "nothing written"
        );
        assert_eq!(pod_uids(&cluster.store), pods_before);
        let volumes: Api<PersistentVolume> = Api::all(cluster.client.clone());
        for volume in plan.volumes() {
            let pv = volumes.get(&volume.old_volume).await.unwrap();
            assert_eq!(
                pv.spec.unwrap().persistent_volume_reclaim_policy.as_deref(),
                Some("Delete"),
                "the Retain patch was only a dry run"
            );
            assert!(
                volumes
                    .get_opt(&format!("{}-csi", volume.old_volume))
                    .await
                    .unwrap()
                    .is_none()
            );
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn dry_run_stops_at_the_first_write_the_server_refuses() {
        let cluster = Box::pin(cluster()).await;
        let (mut plan, _) = make_plan(&cluster).await;
        // As if the PV had been recreated since planning: the uid precondition fails.
        let index = step_index(&plan, |s| matches!(s, Step::DeleteVolume { .. }));
        if let Step::DeleteVolume { uid, .. } = &mut plan.steps[index] {
            *uid = "not-the-planned-uid".into();
        }
        let err = Box::pin(dry_run(cluster.client.clone(), &plan, &options(None)))
            .await
            .unwrap_err();
        assert!(
            matches!(&err, RunError::Api { index: i, source: kube::Error::Api(s), .. } if *i == index && s.code == 409),
            "{err}"
        );
    }
}

/// Seeded runs against an API server that fails, conflicts, throttles, drops connections
/// and watch streams, and answers late: every run converges, or stops with an error
/// naming its step and leaves a journal that `resume` (faults gone) takes to the end.
mod fault_injection {
    use super::*;
    use kube_sim::faults::{ErrorRule, FaultConfig};

    /// Seeds run; each is a full 3-replica migration on a fresh cluster.
    const SEEDS: u64 = 200;
    /// Runs at once (each cluster is its own server and controllers).
    const PARALLEL: usize = 4;

    fn faults(seed: u64) -> FaultConfig {
        let rule = |verb: Option<&str>, code, rate| ErrorRule {
            verb: verb.map(str::to_owned),
            resource: None,
            code,
            rate,
        };
        FaultConfig {
            seed,
            latency_ms: seed % 3,
            errors: vec![
                rule(None, 500, 0.01),
                rule(Some("PATCH"), 409, 0.05),
                rule(None, 429, 0.005),
            ],
            fail_nth_write: Some(1 + seed % 20),
            drop_rate: 0.003,
            drop_watch_after_events: Some(1 + seed % 4),
        }
    }

    /// One seed: (stopped by a fault, resumes needed).
    async fn run_seed(seed: u64) -> Result<(bool, usize), String> {
        let cluster = Box::pin(cluster()).await;
        let (plan, snapshot) = make_plan(&cluster).await;
        let dir = tempfile::tempdir().unwrap();
        cluster.faults.set(faults(seed));
        let first = Box::pin(migrate(
            cluster.client.clone(),
            dir.path(),
            &plan,
            &snapshot,
            &options(None),
        ))
        .await;
        let stopped = first.is_err();
        let mut resumes = 0;
        if let Err(error) = first {
            // Clear: it names the step (or the workload lock) it stopped at.
            let text = error.to_string();
            let clear = text.starts_with("step ") || text.starts_with("workload lock");
            if !clear || !dir.path().join("plan.json").exists() {
                return Err(format!("seed {seed}: unclear stop or no plan: {text}"));
            }
            // Faults still on: a resume may stop again; then the operator fixes the API.
            for attempt in 0..3 {
                resumes += 1;
                if attempt == 2 {
                    cluster.faults.set(FaultConfig::default());
                }
                match Box::pin(resume(cluster.client.clone(), dir.path(), &options(None))).await {
                    Ok(_) => break,
                    Err(e) if attempt < 2 => {
                        let text = e.to_string();
                        if !text.starts_with("step ") && !text.starts_with("workload lock") {
                            return Err(format!("seed {seed}: unclear stop: {text}"));
                        }
                    }
                    Err(e) => return Err(format!("seed {seed}: resume without faults: {e}")),
                }
            }
        }
        cluster.faults.set(FaultConfig::default());
        assert_migrated(&cluster, &plan).await;
        Ok((stopped, resumes))
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn seeded_faults_converge_or_stop_with_a_resumable_journal() {
        let semaphore = Arc::new(tokio::sync::Semaphore::new(PARALLEL));
        let mut runs = tokio::task::JoinSet::new();
        for seed in 0..SEEDS {
            let permit = semaphore.clone().acquire_owned().await.unwrap();
            runs.spawn(async move {
                let result = run_seed(seed).await;
                drop(permit);
                result
            });
        }
        let (mut stopped, mut resumed) = (0, 0);
        while let Some(result) = runs.join_next().await {
            let (was_stopped, resumes) = result.unwrap().unwrap();
            stopped += usize::from(was_stopped);
            resumed += resumes;
        }
        // The faults must actually bite, or this test proves nothing.
        assert!(
            stopped > SEEDS as usize / 4,
            "only {stopped} of {SEEDS} runs were stopped"
        );
        eprintln!("{SEEDS} seeds: {stopped} stopped by a fault, {resumed} resumes");
    }
}
