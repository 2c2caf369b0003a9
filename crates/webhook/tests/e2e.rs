//! End-to-end tests: the webhook served in-process over HTTPS, real AdmissionReviews sent with reqwest.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use csi_migrate_webhook::{BoundWebhook, ClusterAccess, ServeConfig, WebhookError};
use reqwest::StatusCode;
use serde_json::{Value, json};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// A CA and a leaf for 127.0.0.1/localhost signed by it, as PEM.
struct Pki {
    ca_pem: String,
    cert_pem: String,
    key_pem: String,
}

fn pki(ca_name: &str) -> Pki {
    use rcgen::{
        BasicConstraints, CertificateParams, DnType, IsCa, Issuer, KeyPair, KeyUsagePurpose,
    };
    let ca_key = KeyPair::generate().unwrap();
    let mut ca_params = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params
        .distinguished_name
        .push(DnType::CommonName, ca_name);
    ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
    let ca_cert = ca_params.self_signed(&ca_key).unwrap();
    let issuer = Issuer::new(ca_params, ca_key);
    let leaf_key = KeyPair::generate().unwrap();
    let mut leaf_params =
        CertificateParams::new(vec!["localhost".to_owned(), "127.0.0.1".to_owned()]).unwrap();
    leaf_params
        .distinguished_name
        .push(DnType::CommonName, "csi-migrate-webhook");
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    Pki {
        ca_pem: ca_cert.pem(),
        cert_pem: leaf.pem(),
        key_pem: leaf_key.serialize_pem(),
    }
}

fn client_trusting(ca_pem: &str) -> reqwest::Client {
    let ca = reqwest::Certificate::from_pem(ca_pem.as_bytes()).unwrap();
    reqwest::Client::builder()
        .tls_certs_only([ca])
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap()
}

struct Harness {
    dir: tempfile::TempDir,
    addr: SocketAddr,
    metrics_addr: SocketAddr,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<Result<(), WebhookError>>>,
}

impl Harness {
    fn cert_path(&self) -> PathBuf {
        self.dir.path().join("tls.crt")
    }
    fn key_path(&self) -> PathBuf {
        self.dir.path().join("tls.key")
    }
    fn policy_path(&self) -> PathBuf {
        self.dir.path().join("policy.yaml")
    }

    fn url(&self, path: &str) -> String {
        format!("https://localhost:{}{path}", self.addr.port())
    }

    /// Posts a raw body to /validate.
    async fn post(
        &self,
        content_type: Option<&str>,
        body: impl Into<reqwest::Body>,
    ) -> (StatusCode, String) {
        let mut request = self.client.post(self.url("/validate")).body(body);
        if let Some(ct) = content_type {
            request = request.header("content-type", ct);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.text().await.unwrap())
    }

    /// Sends one AdmissionReview and returns its `response`, checking the envelope.
    async fn review(
        &self,
        kind: (&str, &str),
        operation: &str,
        namespace: Option<&str>,
        object: Value,
        old: Value,
    ) -> Value {
        let uid = format!("uid-{}-{operation}", kind.1);
        let mut request = json!({
            "uid": uid, "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
            "resource": {"group": kind.0, "version": "v1", "resource": "things"},
            "operation": operation, "userInfo": {"username": "alice"},
            "object": object, "oldObject": old, "dryRun": false,
        });
        if let Some(ns) = namespace {
            request["namespace"] = json!(ns);
        }
        let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request});
        let (status, text) = self.post(Some("application/json"), body.to_string()).await;
        assert_eq!(status, StatusCode::OK, "{text}");
        let review: Value = serde_json::from_str(&text).unwrap();
        assert_eq!(review["apiVersion"], "admission.k8s.io/v1");
        assert_eq!(review["kind"], "AdmissionReview");
        assert_eq!(review["response"]["uid"], json!(uid));
        review["response"].clone()
    }

    async fn metrics(&self) -> String {
        reqwest::get(format!("http://{}/metrics", self.metrics_addr))
            .await
            .unwrap()
            .text()
            .await
            .unwrap()
    }

    /// The status of `GET /readyz` on the admission port.
    async fn readyz(&self) -> StatusCode {
        self.client
            .get(self.url("/readyz"))
            .send()
            .await
            .map_or(StatusCode::IM_A_TEAPOT, |r| r.status())
    }

    /// Asks the server to shut down (as SIGTERM does), without waiting.
    fn signal_shutdown(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    async fn shutdown(mut self) -> Result<(), WebhookError> {
        self.signal_shutdown();
        let task = self.task.take().unwrap();
        tokio::time::timeout(Duration::from_secs(15), task)
            .await
            .unwrap()
            .unwrap()
    }
}

fn write(path: &Path, text: &str) {
    // Write-then-rename, as a Secret/ConfigMap volume update does: readers never see half a file.
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

fn install_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

/// How to start a webhook for a test.
#[derive(Default)]
struct Setup<'a> {
    policy: Option<&'a str>,
    cluster: Option<ClusterAccess>,
    shutdown_delay: Duration,
    /// Return before `/readyz` answers 200.
    no_wait: bool,
}

async fn start(policy: Option<&str>) -> Harness {
    start_with(Setup {
        policy,
        ..Setup::default()
    })
    .await
}

async fn start_with(setup: Setup<'_>) -> Harness {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki("test CA 1");
    write(&dir.path().join("tls.crt"), &pki.cert_pem);
    write(&dir.path().join("tls.key"), &pki.key_pem);
    let mut config = ServeConfig::new(
        dir.path().join("tls.crt"),
        dir.path().join("tls.key"),
        "127.0.0.1:0".parse().unwrap(),
    );
    config.metrics_listen = Some("127.0.0.1:0".parse().unwrap());
    config.reload_interval = Duration::from_millis(50);
    config.shutdown_grace = Duration::from_secs(2);
    config.shutdown_delay = setup.shutdown_delay;
    config.cluster = setup.cluster;
    if let Some(policy) = setup.policy {
        let path = dir.path().join("policy.yaml");
        write(&path, policy);
        config.policy = Some(path);
    }
    let bound = BoundWebhook::bind(config).unwrap();
    let addr = bound.local_addr();
    let metrics_addr = bound.metrics_addr().unwrap();
    let (stop_tx, stop_rx) = oneshot::channel::<()>();
    let task = tokio::spawn(bound.run(async move {
        let _ = stop_rx.await;
    }));
    let harness = Harness {
        dir,
        addr,
        metrics_addr,
        client: client_trusting(&pki.ca_pem),
        stop: Some(stop_tx),
        task: Some(task),
    };
    if !setup.no_wait {
        wait_until("the server is ready", || async {
            harness.readyz().await == StatusCode::OK
        })
        .await;
    }
    harness
}

async fn wait_until<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    wait_within(Duration::from_secs(10), what, check).await;
}

/// Polls `check` until it holds, failing the test after `limit`.
async fn wait_within<F, Fut>(limit: Duration, what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = Instant::now() + limit;
    while !check().await {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

// ---- objects ----

fn storage_class(name: &str, provisioner: &str, parameters: Value) -> Value {
    json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": name},
           "provisioner": provisioner, "parameters": parameters})
}

fn ebs_volumes() -> Value {
    json!([{"name": "data", "awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-0abc", "fsType": "ext4"}},
           {"name": "tmp", "emptyDir": {}}])
}

fn pod_template(volumes: Value) -> Value {
    json!({"metadata": {"labels": {"app": "web"}},
           "spec": {"containers": [{"name": "c", "image": "busybox", "env": [{"name": "PASSWORD", "value": "hunter2"}]}],
                    "volumes": volumes}})
}

/// Every object kind that carries a pod spec, with an inline in-tree EBS volume.
fn workloads() -> Vec<((&'static str, &'static str), Value)> {
    let t = pod_template(ebs_volumes());
    let meta = |name: &str| json!({"name": name, "namespace": "shop"});
    vec![
        (
            ("", "Pod"),
            json!({"apiVersion": "v1", "kind": "Pod", "metadata": meta("web-0"), "spec": t["spec"]}),
        ),
        (
            ("apps", "Deployment"),
            json!({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": meta("web"),
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": t}}),
        ),
        (
            ("apps", "StatefulSet"),
            json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": meta("db"),
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "serviceName": "db", "template": t}}),
        ),
        (
            ("apps", "DaemonSet"),
            json!({"apiVersion": "apps/v1", "kind": "DaemonSet", "metadata": meta("agent"),
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": t}}),
        ),
        (
            ("apps", "ReplicaSet"),
            json!({"apiVersion": "apps/v1", "kind": "ReplicaSet", "metadata": meta("web-1"),
            "spec": {"selector": {"matchLabels": {"app": "web"}}, "template": t}}),
        ),
        (
            ("batch", "Job"),
            json!({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("once"),
            "spec": {"template": t}}),
        ),
        (
            ("batch", "CronJob"),
            json!({"apiVersion": "batch/v1", "kind": "CronJob", "metadata": meta("nightly"),
            "spec": {"schedule": "0 0 * * *", "jobTemplate": {"spec": {"template": t}}}}),
        ),
        (
            ("", "PodTemplate"),
            json!({"apiVersion": "v1", "kind": "PodTemplate", "metadata": meta("web-template"),
            "template": t}),
        ),
        (
            ("", "ReplicationController"),
            json!({"apiVersion": "v1", "kind": "ReplicationController", "metadata": meta("web-rc"),
            "spec": {"replicas": 2, "selector": {"app": "web"}, "template": t}}),
        ),
    ]
}

/// The response's warnings, each checked to fit in 256 characters (the API server may
/// truncate longer ones).
fn warnings(response: &Value) -> Vec<String> {
    let warnings: Vec<String> = response["warnings"]
        .as_array()
        .map(|w| w.iter().map(|s| s.as_str().unwrap().to_owned()).collect())
        .unwrap_or_default();
    for w in &warnings {
        assert!(w.chars().count() <= 256, "{} chars: {w}", w.chars().count());
        // Every warning these tests provoke fits without being shortened.
        assert!(!w.ends_with('…'), "shortened: {w}");
    }
    warnings
}

fn denial(response: &Value) -> String {
    assert_eq!(response["allowed"], false, "{response}");
    assert_eq!(response["status"]["code"], 403, "{response}");
    response["status"]["message"].as_str().unwrap().to_owned()
}

// ---- rules ----

#[tokio::test]
async fn csi_storage_class_with_migration_parameters_is_denied() {
    let h = start(Some("default: allow")).await;
    let sc = storage_class(
        "vsan",
        "csi.vsphere.vmware.com",
        json!({"csimigration": "true", "datastore-migrationparam": "ds1", "storagepolicyname": "gold"}),
    );
    for op in ["CREATE", "UPDATE"] {
        let r = h
            .review(
                ("storage.k8s.io", "StorageClass"),
                op,
                None,
                sc.clone(),
                Value::Null,
            )
            .await;
        let message = denial(&r);
        assert!(
            message.contains("csimigration, datastore-migrationparam"),
            "{message}"
        );
        assert!(message.contains("datastoreurl"), "{message}");
    }
    let clean = storage_class(
        "vsan",
        "csi.vsphere.vmware.com",
        json!({"storagepolicyname": "gold"}),
    );
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            clean,
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);
    assert!(
        r.get("status").is_none() && r.get("warnings").is_none(),
        "{r}"
    );
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_tree_storage_class_warns_by_default_and_denies_by_policy() {
    let sc = storage_class("gp2", "kubernetes.io/aws-ebs", json!({"type": "gp2"}));
    let h = start(None).await;
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            sc.clone(),
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains("use provisioner ebs.csi.aws.com with parameters type=gp2"),
        "{w:?}"
    );
    h.shutdown().await.unwrap();

    let h = start(Some("rules:\n  inTreeStorageClass: deny\n")).await;
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            sc.clone(),
            Value::Null,
        )
        .await;
    assert!(denial(&r).contains("ebs.csi.aws.com"));
    // Updates of existing in-tree classes stay possible (softened to a warning).
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "UPDATE",
            None,
            sc.clone(),
            sc.clone(),
        )
        .await;
    assert_eq!(r["allowed"], true);
    assert_eq!(warnings(&r).len(), 1);
    // ... unless the update makes the in-tree class the cluster default: every new claim
    // without a class would land on it.
    for key in [
        "storageclass.kubernetes.io/is-default-class",
        "storageclass.beta.kubernetes.io/is-default-class",
    ] {
        let mut default = sc.clone();
        default["metadata"]["annotations"] = json!({key: "true"});
        let r = h
            .review(
                ("storage.k8s.io", "StorageClass"),
                "UPDATE",
                None,
                default.clone(),
                sc.clone(),
            )
            .await;
        let message = denial(&r);
        assert!(
            message.contains("StorageClass \"gp2\" would become the cluster default class"),
            "{message}"
        );
        assert!(message.contains("ebs.csi.aws.com"), "{message}");
        // Already the default: an ordinary update, softened.
        let r = h
            .review(
                ("storage.k8s.io", "StorageClass"),
                "UPDATE",
                None,
                default.clone(),
                default.clone(),
            )
            .await;
        assert_eq!(r["allowed"], true, "{r}");
        // Removing the annotation (a migration step) is always possible.
        let r = h
            .review(
                ("storage.k8s.io", "StorageClass"),
                "UPDATE",
                None,
                sc.clone(),
                default,
            )
            .await;
        assert_eq!(r["allowed"], true, "{r}");
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_tree_storage_class_parameters_that_stop_working() {
    let h = start(Some(
        "rules:\n  inTreeStorageClassParameters: deny\n  inTreeStorageClass: allow\n",
    ))
    .await;
    let sc = storage_class(
        "thick",
        "kubernetes.io/vsphere-volume",
        json!({"diskformat": "zeroedthick", "hostFailuresToTolerate": "1", "datastore": "ds1"}),
    );
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            sc,
            Value::Null,
        )
        .await;
    let message = denial(&r);
    assert!(message.contains("hostFailuresToTolerate=1"), "{message}");
    assert!(message.contains("diskformat=zeroedthick"), "{message}");
    assert!(message.contains("storagepolicyname"), "{message}");
    let thin = storage_class(
        "thin",
        "kubernetes.io/vsphere-volume",
        json!({"diskformat": "thin"}),
    );
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            thin,
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);
    assert!(r.get("warnings").is_none(), "{r}");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn in_tree_persistent_volume() {
    let h = start(Some("rules:\n  inTreePersistentVolume: deny\n")).await;
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-1"},
                    "spec": {"capacity": {"storage": "5Gi"}, "accessModes": ["ReadWriteOnce"],
                             "gcePersistentDisk": {"pdName": "disk-1", "fsType": "ext4"}}});
    let r = h
        .review(
            ("", "PersistentVolume"),
            "CREATE",
            None,
            pv.clone(),
            Value::Null,
        )
        .await;
    let message = denial(&r);
    assert!(
        message.contains("PersistentVolume \"pv-1\" uses the in-tree plugin kubernetes.io/gce-pd"),
        "{message}"
    );
    assert!(
        message.contains("spec.csi.driver=pd.csi.storage.gke.io"),
        "{message}"
    );
    assert!(message.contains("disk-1"), "{message}");
    // Existing PVs are updated by controllers all the time: never judged on UPDATE.
    let r = h
        .review(("", "PersistentVolume"), "UPDATE", None, pv.clone(), pv)
        .await;
    assert_eq!(r["allowed"], true);
    let csi = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv-2"},
                     "spec": {"csi": {"driver": "pd.csi.storage.gke.io", "volumeHandle": "projects/p/zones/z/disks/d"}}});
    let r = h
        .review(("", "PersistentVolume"), "CREATE", None, csi, Value::Null)
        .await;
    assert_eq!(r["allowed"], true);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn claims_on_in_tree_classes() {
    let h = start(Some(
        "rules:\n  inTreePersistentVolumeClaim: deny\ninTreeStorageClasses:\n  standard: kubernetes.io/gce-pd\n",
    ))
    .await;
    let claim = |class: Option<&str>, annotations: Value| {
        let mut spec = json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
        if let Some(class) = class {
            spec["storageClassName"] = json!(class);
        }
        json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
               "metadata": {"name": "data", "namespace": "shop", "annotations": annotations}, "spec": spec})
    };
    let r = h
        .review(
            ("", "PersistentVolumeClaim"),
            "CREATE",
            Some("shop"),
            claim(Some("standard"), json!({})),
            Value::Null,
        )
        .await;
    let message = denial(&r);
    assert!(
        message.contains(
            "PersistentVolumeClaim \"data\" in namespace \"shop\" uses StorageClass \"standard\""
        ),
        "{message}"
    );
    assert!(message.contains("pd.csi.storage.gke.io"), "{message}");

    let annotated = claim(
        None,
        json!({"volume.beta.kubernetes.io/storage-provisioner": "kubernetes.io/azure-disk"}),
    );
    let r = h
        .review(
            ("", "PersistentVolumeClaim"),
            "CREATE",
            Some("shop"),
            annotated,
            Value::Null,
        )
        .await;
    assert!(denial(&r).contains("disk.csi.azure.com"));

    for ok in [claim(Some("premium"), json!({})), claim(None, json!({}))] {
        let r = h
            .review(
                ("", "PersistentVolumeClaim"),
                "CREATE",
                Some("shop"),
                ok,
                Value::Null,
            )
            .await;
        assert_eq!(r["allowed"], true, "{r}");
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn inline_in_tree_volumes_in_pods_and_every_template_kind() {
    let h = start(None).await;
    for (kind, object) in workloads() {
        let r = h
            .review(kind, "CREATE", Some("shop"), object, Value::Null)
            .await;
        assert_eq!(r["allowed"], true, "{kind:?}: {r}");
        let w = warnings(&r);
        assert_eq!(w.len(), 1, "{kind:?}: {w:?}");
        assert!(w[0].starts_with(kind.1), "{w:?}");
        assert!(
            w[0].contains("volume \"data\" uses the in-tree plugin kubernetes.io/aws-ebs"),
            "{w:?}"
        );
        assert!(
            w[0].contains("driver ebs.csi.aws.com, volumeHandle vol-0abc"),
            "{w:?}"
        );
        assert!(!w[0].contains("hunter2"), "{w:?}");
    }
    // Seven workload kinds, Pods, PodTemplates and ReplicationControllers: nine kinds.
    assert_eq!(workloads().len(), 9);
    h.shutdown().await.unwrap();

    let h = start(Some("rules:\n  inTreeInlineVolume: deny\n")).await;
    for (kind, object) in workloads() {
        let r = h
            .review(kind, "CREATE", Some("shop"), object.clone(), Value::Null)
            .await;
        assert!(denial(&r).contains("ebs.csi.aws.com"), "{kind:?}");
        // An update that keeps the same in-tree volume is not new: allowed.
        let r = h
            .review(kind, "UPDATE", Some("shop"), object.clone(), object)
            .await;
        assert_eq!(r["allowed"], true, "{kind:?}: {r}");
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn namespace_exemptions_and_allow() {
    let h = start(Some(
        "default: deny\nrules:\n  inTreePersistentVolume: allow\nexemptions:\n  - namespace: legacy\n  - namespace: batch\n    rules: [inTreeInlineVolume]\n",
    ))
    .await;
    let (kind, deployment) = workloads().swap_remove(1);
    for (ns, allowed) in [("legacy", true), ("batch", true), ("shop", false)] {
        let mut object = deployment.clone();
        object["metadata"]["namespace"] = json!(ns);
        let r = h
            .review(kind, "CREATE", Some(ns), object, Value::Null)
            .await;
        assert_eq!(r["allowed"], allowed, "{ns}: {r}");
        if allowed {
            assert!(r.get("warnings").is_none(), "{r}");
        }
    }
    let pv = json!({"apiVersion": "v1", "kind": "PersistentVolume", "metadata": {"name": "pv"},
                    "spec": {"cinder": {"volumeID": "c-1"}}});
    let r = h
        .review(("", "PersistentVolume"), "CREATE", None, pv, Value::Null)
        .await;
    assert_eq!(r["allowed"], true);
    assert!(r.get("warnings").is_none(), "{r}");
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn unknown_kinds_deletes_and_subresources_are_allowed() {
    let h = start(Some("default: deny")).await;
    let r = h
        .review(
            ("example.com", "Widget"),
            "CREATE",
            Some("shop"),
            json!({"spec": 42}),
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);
    let r = h
        .review(
            ("", "Secret"),
            "CREATE",
            Some("shop"),
            json!({"data": {"password": "aHVudGVyMg=="}}),
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);
    let (kind, pod) = workloads().swap_remove(0);
    let r = h
        .review(kind, "DELETE", Some("shop"), Value::Null, pod.clone())
        .await;
    assert_eq!(r["allowed"], true);

    let body = json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": "sub", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "subResource": "status",
        "operation": "UPDATE", "namespace": "shop", "object": pod, "oldObject": pod}});
    let (status, text) = h.post(Some("application/json"), body.to_string()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        serde_json::from_str::<Value>(&text).unwrap()["response"]["allowed"],
        true
    );
    h.shutdown().await.unwrap();
}

// ---- malformed requests ----

#[tokio::test]
async fn malformed_requests_get_400_with_a_clear_message() {
    let h = start(None).await;
    let envelope = |request: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
            .to_string()
    };
    let pod_kind = json!({"group": "", "version": "v1", "kind": "Pod"});
    let cases: Vec<(Option<&str>, String, &str)> = vec![
        (Some("application/json"), String::new(), "empty request body"),
        (Some("application/json"), "{not json".to_owned(), "not a valid AdmissionReview"),
        (Some("application/json"), "[]".to_owned(), "expected apiVersion admission.k8s.io/v1"),
        (Some("text/plain"), envelope(json!({"uid": "x"})), "invalid Content-Type \"text/plain\""),
        (None, envelope(json!({"uid": "x"})), "expected application/json"),
        (
            Some("application/json"),
            json!({"apiVersion": "admission.k8s.io/v1beta1", "kind": "AdmissionReview", "request": {"uid": "x"}}).to_string(),
            "admission.k8s.io/v1beta1",
        ),
        (Some("application/json"), json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).to_string(), "has no request"),
        (Some("application/json"), envelope(json!({"uid": ""})), "empty uid"),
        (Some("application/json"), envelope(json!({"uid": 17})), "not a valid AdmissionReview"),
        (
            Some("application/json"),
            envelope(json!({"uid": "x", "kind": pod_kind, "operation": "CREATE"})),
            "CREATE request for Pod has no object",
        ),
        (
            Some("application/json"),
            envelope(json!({"uid": "x", "kind": pod_kind, "operation": "CREATE",
                            "object": {"apiVersion": "v1", "kind": "Pod", "spec": {"volumes": "hunter2"}}})),
            "object is not a valid Pod",
        ),
        (
            Some("application/json"),
            envelope(json!({"uid": "x", "kind": {"group": "storage.k8s.io", "version": "v1", "kind": "StorageClass"},
                            "operation": "CREATE", "object": ["not", "an", "object"]})),
            "object is not a valid StorageClass",
        ),
        (
            Some("application/json"),
            envelope(json!({"uid": "x", "kind": {"group": "apps", "version": "v1", "kind": "Deployment"}, "operation": "UPDATE",
                            "object": workloads()[1].1, "oldObject": 5})),
            "oldObject is not a valid Deployment",
        ),
    ];
    for (content_type, body, needle) in cases {
        let (status, text) = h.post(content_type, body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(text.contains(needle), "{body}: {text}");
        assert!(!text.contains("hunter2"), "{body}: {text}");
    }
    // Wrong method and oversized bodies are refused by the HTTP layer, not crashes.
    let get = h.client.get(h.url("/validate")).send().await.unwrap();
    assert_eq!(get.status(), StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = h
        .post(Some("application/json"), vec![b' '; 9 * 1024 * 1024])
        .await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // The server is still fine.
    let r = h
        .review(
            ("", "Pod"),
            "CREATE",
            Some("shop"),
            workloads()[0].1.clone(),
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);
    assert!(
        h.metrics().await.contains(
            "csi_migrate_webhook_reviews_total{kind=\"unknown\",result=\"malformed\"} 13\n"
        )
    );
    h.shutdown().await.unwrap();
}

// ---- server behaviour ----

#[tokio::test]
async fn health_readiness_and_metrics() {
    let h = start(None).await;
    for path in ["/healthz", "/readyz"] {
        let r = h.client.get(h.url(path)).send().await.unwrap();
        assert_eq!(r.status(), StatusCode::OK, "{path}");
    }
    let sc = storage_class("gp2", "kubernetes.io/aws-ebs", json!({}));
    h.review(
        ("storage.k8s.io", "StorageClass"),
        "CREATE",
        None,
        sc,
        Value::Null,
    )
    .await;
    let text = h.metrics().await;
    for needle in [
        "csi_migrate_webhook_reviews_total{kind=\"StorageClass\",result=\"warned\"} 1",
        "csi_migrate_webhook_rule_decisions_total{rule=\"inTreeStorageClass\",action=\"warn\"} 1",
        "csi_migrate_webhook_review_duration_seconds_count 1",
        "csi_migrate_webhook_review_duration_seconds_bucket{le=",
    ] {
        assert!(text.contains(needle), "{needle}\n{text}");
    }
    // The metrics port serves probes too, over plain HTTP.
    let r = reqwest::get(format!("http://{}/healthz", h.metrics_addr))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn certificate_rotation_takes_effect_without_restart() {
    let h = start(None).await;
    let old_ca = pki("unused").ca_pem; // a CA the server never used
    let new = pki("test CA 2");
    // Before rotation a client trusting only the new CA is refused.
    let new_client = client_trusting(&new.ca_pem);
    assert!(new_client.get(h.url("/healthz")).send().await.is_err());

    write(&h.key_path(), &new.key_pem);
    write(&h.cert_path(), &new.cert_pem);
    wait_until("the new certificate is served", || async {
        // A fresh client each time: a new connection, a new handshake.
        client_trusting(&new.ca_pem)
            .get(h.url("/healthz"))
            .send()
            .await
            .is_ok()
    })
    .await;
    // The old CA no longer verifies new connections.
    let fresh_old = client_trusting(&old_ca);
    assert!(fresh_old.get(h.url("/healthz")).send().await.is_err());
    assert!(
        h.metrics()
            .await
            .contains("csi_migrate_webhook_reloads_total{file=\"certificate\",result=\"ok\"}")
    );

    // A broken certificate is ignored; the last good one keeps being served.
    write(
        &h.cert_path(),
        "-----BEGIN CERTIFICATE-----\nnot base64\n-----END CERTIFICATE-----\n",
    );
    wait_until("the bad certificate is noticed", || async {
        h.metrics()
            .await
            .contains("reloads_total{file=\"certificate\",result=\"error\"} 1")
    })
    .await;
    let r = client_trusting(&new.ca_pem)
        .get(h.url("/readyz"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn policy_file_changes_take_effect_without_restart() {
    let h = start(Some("default: warn\n")).await;
    let sc = storage_class("gp2", "kubernetes.io/aws-ebs", json!({}));
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            sc.clone(),
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], true);

    write(&h.policy_path(), "default: deny\n");
    wait_until("the new policy denies", || async {
        h.review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            sc.clone(),
            Value::Null,
        )
        .await["allowed"]
            == false
    })
    .await;

    // An invalid policy is ignored: the last good one stays in force.
    write(&h.policy_path(), "default: sometimes\n");
    wait_until("the bad policy is noticed", || async {
        h.metrics()
            .await
            .contains("reloads_total{file=\"policy\",result=\"error\"} 1")
    })
    .await;
    let r = h
        .review(
            ("storage.k8s.io", "StorageClass"),
            "CREATE",
            None,
            sc,
            Value::Null,
        )
        .await;
    assert_eq!(r["allowed"], false);
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn graceful_shutdown_stops_serving() {
    let h = start(None).await;
    let url = h.url("/healthz");
    let client = h.client.clone();
    assert!(client.get(&url).send().await.is_ok());
    h.shutdown().await.unwrap();
    let fresh = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(fresh.get(&url).send().await.is_err());
}

#[tokio::test]
async fn start_up_errors_are_reported_not_panics() {
    install_provider();
    let dir = tempfile::tempdir().unwrap();
    let pki = pki("ca");
    let (cert, key) = (dir.path().join("tls.crt"), dir.path().join("tls.key"));
    write(&cert, &pki.cert_pem);
    write(&key, &pki.key_pem);
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();

    let missing = ServeConfig::new(dir.path().join("nope.crt"), &key, listen);
    let err = BoundWebhook::bind(missing).unwrap_err().to_string();
    assert!(err.contains("cannot read certificate file"), "{err}");

    let swapped = ServeConfig::new(&key, &cert, listen);
    assert!(matches!(
        BoundWebhook::bind(swapped),
        Err(WebhookError::Tls(_))
    ));

    let policy = dir.path().join("policy.yaml");
    write(&policy, "rules:\n  inTreeEverything: deny\n");
    let mut bad_policy = ServeConfig::new(&cert, &key, listen);
    bad_policy.policy = Some(policy);
    let err = BoundWebhook::bind(bad_policy).unwrap_err().to_string();
    assert!(err.contains("inTreeEverything"), "{err}");

    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = ServeConfig::new(&cert, &key, taken.local_addr().unwrap());
    assert!(matches!(
        BoundWebhook::bind(busy),
        Err(WebhookError::Bind { .. })
    ));

    // `serve` reports the same errors.
    let missing = ServeConfig::new(dir.path().join("nope.crt"), &key, listen);
    assert!(csi_migrate_webhook::serve(missing, async {}).await.is_err());
}

#[tokio::test]
async fn a_400_answer_names_the_type_and_path_never_the_value() {
    let h = start(None).await;
    const SECRET: &str = "TOPSECRETVALUE";
    let envelope = |request: Value| {
        json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": request})
            .to_string()
    };
    let cases = [
        (
            envelope(
                json!({"uid": "u1", "kind": {"group": "", "version": "v1", "kind": "Pod"}, "operation": "CREATE",
                            "object": {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "p"},
                                       "spec": {"containers": [{"name": "c", "ports": [{"containerPort": SECRET}]}]}}}),
            ),
            vec![
                "object is not a valid Pod: invalid type, expected i32",
                "(at object.spec.containers[0].ports[0].containerPort)",
            ],
        ),
        (
            envelope(
                json!({"uid": "u2", "kind": {"group": "storage.k8s.io", "version": "v1", "kind": "StorageClass"}, "operation": "CREATE",
                            "object": {"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "s"},
                                       "provisioner": "kubernetes.io/aws-ebs", "allowVolumeExpansion": SECRET}}),
            ),
            vec![
                "object is not a valid StorageClass: invalid type, expected a boolean",
                "(at object.allowVolumeExpansion)",
            ],
        ),
        (
            envelope(json!({"uid": "u4", "kind": SECRET})),
            vec![
                "request body is not a valid AdmissionReview: invalid type, expected struct GroupVersionKind, at line 1 column",
            ],
        ),
        (
            format!(
                r#"{{"apiVersion":"admission.k8s.io/v1","kind":"AdmissionReview","request":{{"uid":"u3","token":"{SECRET}"#
            ),
            vec!["request body is not a valid AdmissionReview: EOF while parsing"],
        ),
    ];
    for (body, needles) in cases {
        let (status, text) = h.post(Some("application/json"), body.clone()).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{body}: {text}");
        assert!(!text.contains(SECRET), "{text}");
        for needle in needles {
            assert!(text.contains(needle), "{needle:?} in {text}");
        }
    }
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn shutdown_turns_readiness_off_then_serves_for_the_delay() {
    let delay = Duration::from_secs(3);
    let mut h = start_with(Setup {
        shutdown_delay: delay,
        ..Setup::default()
    })
    .await;
    let (kind, pod) = workloads().swap_remove(0);
    let signalled = Instant::now();
    h.signal_shutdown();
    wait_until("readyz answers 503", || async {
        h.readyz().await == StatusCode::SERVICE_UNAVAILABLE
    })
    .await;
    // The metrics port's probe agrees, and liveness is unaffected.
    let r = reqwest::get(format!("http://{}/readyz", h.metrics_addr))
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SERVICE_UNAVAILABLE);
    let r = h.client.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    // Reviews are still answered during the delay, on new connections too.
    let r = h
        .review(kind, "CREATE", Some("shop"), pod.clone(), Value::Null)
        .await;
    assert_eq!(r["allowed"], true);
    let fresh = h.client.clone();
    let r = fresh.get(h.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert!(
        signalled.elapsed() < delay,
        "the checks took longer than the delay; cannot tell"
    );
    let url = h.url("/healthz");
    h.shutdown().await.unwrap();
    assert!(
        signalled.elapsed() >= delay,
        "stopped after {:?}, before the {delay:?} delay",
        signalled.elapsed()
    );
    let after = reqwest::Client::builder()
        .timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    assert!(after.get(&url).send().await.is_err());
}

// ---- the StorageClass cache, against kube-sim over HTTPS ----

/// A simulated API server over HTTPS, with a kube client trusting its CA.
struct Sim {
    server: kube_sim::RunningServer,
    faults: std::sync::Arc<kube_sim::faults::Faults>,
    client: kube::Client,
}

async fn sim() -> Sim {
    install_provider();
    let store = std::sync::Arc::new(kube_sim::Store::new(1_000));
    let faults = std::sync::Arc::new(kube_sim::faults::Faults::default());
    let server =
        kube_sim::serve_with_faults(store, "127.0.0.1:0".parse().unwrap(), true, faults.clone())
            .await
            .unwrap();
    assert!(server.url.starts_with("https://"), "{}", server.url);
    let yaml = kube_sim::kubeconfig::kubeconfig(&server.url, server.ca_pem.as_deref());
    let config = kube::Config::from_custom_kubeconfig(
        kube::config::Kubeconfig::from_yaml(&yaml).unwrap(),
        &kube::config::KubeConfigOptions::default(),
    )
    .await
    .unwrap();
    Sim {
        server,
        faults,
        client: kube::Client::try_from(config).unwrap(),
    }
}

impl Sim {
    async fn create_class(&self, name: &str, provisioner: &str, default: bool) {
        let mut class = storage_class(name, provisioner, json!({}));
        if default {
            class["metadata"]["annotations"] =
                json!({"storageclass.kubernetes.io/is-default-class": "true"});
        }
        let class: k8s_openapi::api::storage::v1::StorageClass =
            serde_json::from_value(class).unwrap();
        kube::Api::all(self.client.clone())
            .create(&kube::api::PostParams::default(), &class)
            .await
            .unwrap();
    }

    /// Every list and watch of StorageClasses fails with a 500 while `on`.
    fn fail_storage_class_reads(&self, on: bool) {
        let mut config = kube_sim::faults::FaultConfig::default();
        if on {
            config.errors.push(kube_sim::faults::ErrorRule {
                verb: Some("GET".into()),
                resource: Some("storageclasses".into()),
                code: 500,
                rate: 1.0,
            });
        }
        self.faults.set(config);
    }
}

fn claim(class: Option<&str>) -> Value {
    let mut spec =
        json!({"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}});
    if let Some(class) = class {
        spec["storageClassName"] = json!(class);
    }
    json!({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
           "metadata": {"name": "data", "namespace": "shop"}, "spec": spec})
}

impl Harness {
    /// `csi_migrate_webhook_storage_class_watch_errors_total`.
    async fn watch_errors(&self) -> u64 {
        self.metrics()
            .await
            .lines()
            .find_map(|l| l.strip_prefix("csi_migrate_webhook_storage_class_watch_errors_total "))
            .and_then(|n| n.trim().parse().ok())
            .unwrap_or(0)
    }

    async fn review_claim(&self, class: Option<&str>) -> Value {
        self.review(
            ("", "PersistentVolumeClaim"),
            "CREATE",
            Some("shop"),
            claim(class),
            Value::Null,
        )
        .await
    }
}

#[tokio::test]
async fn claims_are_judged_by_the_cluster_storage_classes() {
    let sim = sim().await;
    sim.create_class("old-disks", "kubernetes.io/gce-pd", false)
        .await;
    sim.create_class("fast", "pd.csi.storage.gke.io", false)
        .await;
    // The API server refuses to list classes at first: the webhook must not be ready.
    sim.fail_storage_class_reads(true);
    let mut h = start_with(Setup {
        policy: Some("default: warn\n"),
        cluster: Some(ClusterAccess(sim.client.clone())),
        no_wait: true,
        ..Setup::default()
    })
    .await;
    wait_until("the server listens", || async {
        h.client.get(h.url("/healthz")).send().await.is_ok()
    })
    .await;
    for _ in 0..10 {
        assert_eq!(h.readyz().await, StatusCode::SERVICE_UNAVAILABLE);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    wait_until("a failed list is counted", || async {
        h.watch_errors().await > 0
    })
    .await;
    // The watcher retries with backoff and syncs once the API server answers.
    sim.fail_storage_class_reads(false);
    // Room for the watcher's backoff (0.8 s doubling, with jitter).
    wait_within(
        Duration::from_secs(30),
        "ready after the first list",
        || async { h.readyz().await == StatusCode::OK },
    )
    .await;

    let r = h.review_claim(Some("old-disks")).await;
    assert_eq!(r["allowed"], true, "{r}");
    let w = warnings(&r);
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].contains(
            "PersistentVolumeClaim \"data\" in namespace \"shop\" uses StorageClass \"old-disks\" (in-tree: kubernetes.io/gce-pd)"
        ),
        "{w:?}"
    );
    assert!(w[0].contains("pd.csi.storage.gke.io"), "{w:?}");
    for ok in [Some("fast"), Some("unknown"), Some(""), None] {
        let r = h.review_claim(ok).await;
        assert_eq!(r["allowed"], true, "{ok:?}: {r}");
        assert!(r.get("warnings").is_none(), "{ok:?}: {r}");
    }

    // Classes created after start-up are picked up by the watch, including a new default.
    sim.create_class("late-ebs", "kubernetes.io/aws-ebs", false)
        .await;
    sim.create_class("legacy-default", "kubernetes.io/cinder", true)
        .await;
    wait_until("the new classes are known", || async {
        !warnings(&h.review_claim(Some("late-ebs")).await).is_empty()
            && !warnings(&h.review_claim(None).await).is_empty()
    })
    .await;
    let w = warnings(&h.review_claim(None).await);
    assert!(
        w[0].contains("has no class, so gets the default StorageClass \"legacy-default\""),
        "{w:?}"
    );
    assert!(w[0].contains("cinder.csi.openstack.org"), "{w:?}");

    // Under a deny policy the same claims are denied.
    write(
        &h.policy_path(),
        "rules:\n  inTreePersistentVolumeClaim: deny\n",
    );
    wait_until("the deny policy is in force", || async {
        h.review_claim(Some("old-disks")).await["allowed"] == false
    })
    .await;
    let message = denial(&h.review_claim(Some("late-ebs")).await);
    assert!(message.contains("ebs.csi.aws.com"), "{message}");
    let r = h.review_claim(Some("fast")).await;
    assert_eq!(r["allowed"], true, "{r}");
    // StatefulSet claim templates are judged the same way.
    let sts = json!({"apiVersion": "apps/v1", "kind": "StatefulSet", "metadata": {"name": "db", "namespace": "shop"},
        "spec": {"selector": {"matchLabels": {"app": "db"}}, "serviceName": "db",
                 "template": {"spec": {"containers": [{"name": "c", "image": "busybox"}]}},
                 "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": claim(Some("old-disks"))["spec"]}]}});
    let r = h
        .review(
            ("apps", "StatefulSet"),
            "CREATE",
            Some("shop"),
            sts,
            Value::Null,
        )
        .await;
    assert!(denial(&r).contains("claim template"), "{r}");

    // The API server goes away: the watch breaks, retries with backoff, and meanwhile the
    // last known classes are still used (and the webhook stays ready).
    let before = h.watch_errors().await;
    sim.server.shutdown();
    wait_until("the broken watch is noticed", || async {
        h.watch_errors().await > before
    })
    .await;
    assert_eq!(h.readyz().await, StatusCode::OK);
    assert!(denial(&h.review_claim(Some("old-disks")).await).contains("pd.csi.storage.gke.io"));
    assert!(denial(&h.review_claim(None).await).contains("legacy-default"));
    h.signal_shutdown();
    h.shutdown().await.unwrap();
}

#[tokio::test]
async fn without_cluster_access_only_the_policy_names_count() {
    let h = start(Some(
        "rules:\n  inTreePersistentVolumeClaim: deny\ninTreeStorageClasses:\n  old-disks: kubernetes.io/gce-pd\n",
    ))
    .await;
    assert!(
        denial(&h.review_claim(Some("old-disks")).await)
            .contains("listed as in-tree by the webhook policy")
    );
    for ok in [Some("late-ebs"), None] {
        assert_eq!(h.review_claim(ok).await["allowed"], true, "{ok:?}");
    }
    h.shutdown().await.unwrap();
}
