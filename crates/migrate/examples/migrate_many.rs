//! Benchmark: migrates many 3-replica StatefulSets concurrently against kube-sim with injected API latency; reports wall time, API writes per volume and per workload, and peak RSS.
//!
//! ```sh
//! cargo run --release -p csi-migrate-migrate --example migrate_many -- 200 16 5
//! #                                                        sets ─┘   │  └─ ms of latency on every API request
//! #                                                     concurrency ─┘
//! ```
//!
//! kube-sim runs in this process (store, HTTP server, controllers) as `csi-migrate sim`
//! does; the migrations go through the library's public API over HTTP, each with its own
//! work dir, exactly as `csi-migrate migrate statefulset` runs them. Every request the
//! client sends is counted by a tower layer on the kube client (so the counts are the
//! tool's own API calls, not the simulated controllers'). At the end every disk's sha256
//! is compared with the one before, and every claim must be Bound to a CSI PV.

#![allow(clippy::print_stdout)]

use std::collections::BTreeMap;
use std::future::Future;
use std::path::Path;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use csi_migrate_migrate::{
    PlanOptions, RunOptions, load_statefulset_snapshot, migrate, plan_statefulset,
};
use futures::StreamExt;
use kube::client::ClientBuilder;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_sim::Store;
use kube_sim::faults::{FaultConfig, Faults};
use kube_sim::scenario::Scenario;
use kube_sim::store::ListOptions;
use serde_json::{Value, json};

const NAMESPACE: &str = "default";
const IN_TREE_CLASS: &str = "gp2";
const TARGET_CLASS: &str = "gp2-csi";
const DRIVER: &str = "ebs.csi.aws.com";
const REPLICAS: usize = 3;

type Failure = Box<dyn std::error::Error + Send + Sync>;

/// Requests the client sent, by verb (`GET`, `LIST`, `WATCH`, `POST`…) and resource plural.
#[derive(Clone, Default)]
struct Counts(Arc<Mutex<BTreeMap<(String, String), u64>>>);

impl Counts {
    fn record(&self, method: &http::Method, uri: &http::Uri) {
        let segments: Vec<&str> = uri.path().split('/').filter(|s| !s.is_empty()).collect();
        // /api/v1/namespaces/NS/PLURAL[/NAME[/SUB]] or /apis/G/V/…; cluster-scoped without namespaces/NS.
        let rest = match segments.first() {
            Some(&"api") => segments.get(2..).unwrap_or_default(),
            Some(&"apis") => segments.get(3..).unwrap_or_default(),
            _ => &[],
        };
        let rest = match rest {
            ["namespaces", _, tail @ ..] if !tail.is_empty() => tail,
            other => other,
        };
        let resource = rest.first().copied().unwrap_or("other").to_owned();
        let query = uri.query().unwrap_or_default();
        let verb = match (method.as_str(), rest.len()) {
            ("GET", _) if query.contains("watch=true") || query.contains("watch=1") => "WATCH",
            ("GET", 1) => "LIST",
            (other, _) => other,
        };
        *self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .entry((verb.to_owned(), resource))
            .or_default() += 1;
    }

    fn take(&self) -> BTreeMap<(String, String), u64> {
        std::mem::take(&mut *self.0.lock().unwrap_or_else(PoisonError::into_inner))
    }
}

/// A tower layer counting every request the kube client sends.
#[derive(Clone)]
struct CountLayer(Counts);

impl<S> tower::Layer<S> for CountLayer {
    type Service = CountService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        CountService {
            inner,
            counts: self.0.clone(),
        }
    }
}

#[derive(Clone)]
struct CountService<S> {
    inner: S,
    counts: Counts,
}

impl<S, B> tower::Service<http::Request<B>> for CountService<S>
where
    S: tower::Service<http::Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        self.counts.record(request.method(), request.uri());
        self.inner.call(request)
    }
}

fn items(store: &Store, group: &str, plural: &str) -> Vec<Value> {
    store
        .resource(group, plural)
        .and_then(|rt| store.list(&rt, None, &ListOptions::default()).ok())
        .and_then(|list| list.get("items").and_then(Value::as_array).cloned())
        .unwrap_or_default()
}

fn text<'a>(value: &'a Value, pointer: &str) -> &'a str {
    value
        .pointer(pointer)
        .and_then(Value::as_str)
        .unwrap_or_default()
}

/// `sets` StatefulSets `db-000`… like the ebs-statefulset scenario's `web`, each with one
/// claim template on the in-tree class, created through the store; then the controllers
/// run until every pod is Running, and every disk gets known content.
async fn populate(store: &Store, sets: usize) -> Result<Vec<String>, Failure> {
    let rt = store
        .resource("apps", "statefulsets")
        .ok_or("no statefulsets resource")?;
    let names: Vec<String> = (0..sets).map(|i| format!("db-{i:03}")).collect();
    for name in &names {
        let set = json!({"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"serviceName": name, "replicas": REPLICAS, "selector": {"matchLabels": {"app": name}},
                "template": {"metadata": {"labels": {"app": name}},
                    "spec": {"containers": [{"name": "app", "image": "registry.k8s.io/nginx-slim:0.27",
                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "storageClassName": IN_TREE_CLASS, "resources": {"requests": {"storage": "1Gi"}}}}]}});
        store
            .create(&rt, Some(NAMESPACE), set)
            .map_err(|e| format!("creating statefulset {name}: {e}"))?;
    }
    let want = REPLICAS * (sets + 1); // + the scenario's own `web`
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        kube_sim::controllers::reconcile(store);
        let running = items(store, "", "pods")
            .iter()
            .filter(|p| text(p, "/status/phase") == "Running")
            .count();
        if running >= want {
            break;
        }
        if Instant::now() > deadline {
            return Err(format!("only {running} of {want} pods Running after 600 s").into());
        }
        tokio::task::yield_now().await;
    }
    for disk in store.cloud().list() {
        if disk.content.is_empty() {
            store
                .cloud()
                .write(&disk.id, format!("data of {}\n", disk.id).into_bytes())
                .map_err(|e| format!("writing disk {}: {e}", disk.id))?;
        }
    }
    Ok(names)
}

async fn client(url: &str, counts: &Counts) -> Result<Client, Failure> {
    let yaml = kube_sim::kubeconfig::kubeconfig(url, None);
    let config = Config::from_custom_kubeconfig(
        Kubeconfig::from_yaml(&yaml)?,
        &KubeConfigOptions::default(),
    )
    .await?;
    Ok(ClientBuilder::try_from(config)?
        .with_layer(&CountLayer(counts.clone()))
        .build())
}

type Migration<'a> = Pin<Box<dyn Future<Output = Result<(), Failure>> + Send + 'a>>;

/// Plan and migrate one StatefulSet, as `csi-migrate migrate statefulset NAME --yes` does.
fn migrate_one<'a>(client: &'a Client, work: &'a Path, name: &'a str) -> Migration<'a> {
    Box::pin(async move {
        let snapshot = load_statefulset_snapshot(client, NAMESPACE, name).await?;
        let plan = plan_statefulset(&snapshot, TARGET_CLASS, PlanOptions::default())
            .map_err(|e| format!("{name}: {e}"))?;
        let options = RunOptions {
            step_timeout: Duration::from_secs(600),
            ..RunOptions::default()
        };
        migrate(client.clone(), &work.join(name), &plan, &snapshot, &options)
            .await
            .map_err(|e| format!("{name}: {e}"))?;
        Ok(())
    })
}

fn peak_rss_kb() -> Option<u64> {
    std::fs::read_to_string("/proc/self/status")
        .ok()?
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_default()
}

fn argument(position: usize, default: u64) -> Result<u64, Failure> {
    match std::env::args().nth(position) {
        Some(text) => Ok(text
            .parse()
            .map_err(|e| format!("argument {position} ({text:?}): {e}"))?),
        None => Ok(default),
    }
}

#[tokio::main]
async fn main() -> Result<(), Failure> {
    let sets = usize::try_from(argument(1, 200)?)?;
    let concurrency = usize::try_from(argument(2, 16)?)?.max(1);
    let latency_ms = argument(3, 5)?;
    let _ = rustls::crypto::ring::default_provider().install_default();
    println!(
        "{sets} StatefulSets x {REPLICAS} replicas, concurrency {concurrency}, {latency_ms} ms API latency; load average {}",
        load_average()
    );

    let store = Arc::new(Store::new(200_000));
    let setup = Instant::now();
    kube_sim::scenario::apply(&store, Scenario::EbsStatefulset, Duration::from_secs(60)).await?;
    let names = populate(&store, sets).await?;
    let disks_before: BTreeMap<String, String> = store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    println!(
        "setup: {} pods Running, {} disks with data, {:.1} s",
        REPLICAS * (sets + 1),
        disks_before.len(),
        setup.elapsed().as_secs_f64()
    );

    // What one pass of the simulated controllers costs at this size: they reconcile
    // everything after every change (and every 500 ms), which bounds how fast the
    // cluster reacts while many migrations write at once.
    let passes = Instant::now();
    for _ in 0..3 {
        kube_sim::controllers::reconcile(&store);
    }
    let pass = passes.elapsed().as_secs_f64() * 1000.0 / 3.0;
    let time = |reconcile: fn(&Store)| {
        let at = Instant::now();
        reconcile(&store);
        at.elapsed().as_secs_f64() * 1000.0
    };
    let parts = [
        (
            "statefulset",
            time(kube_sim::controllers::statefulset::reconcile),
        ),
        (
            "volume_binding",
            time(kube_sim::controllers::volume_binding::reconcile),
        ),
        ("attacher", time(kube_sim::controllers::attacher::reconcile)),
        ("kubelet", time(kube_sim::controllers::kubelet::reconcile)),
        (
            "deployment",
            time(kube_sim::controllers::deployment::reconcile),
        ),
    ];
    let named: f64 = parts.iter().map(|(_, ms)| ms).sum();
    println!(
        "one controller pass over {} pods, claims and PVs: {pass:.0} ms ({}, garbage collector and protection {:.0} ms)",
        ["pods", "persistentvolumeclaims", "persistentvolumes"]
            .iter()
            .map(|plural| items(&store, "", plural).len())
            .sum::<usize>(),
        parts
            .iter()
            .map(|(name, ms)| format!("{name} {ms:.0} ms"))
            .collect::<Vec<_>>()
            .join(", "),
        (pass - named).max(0.0)
    );

    let faults = Arc::new(Faults::default());
    faults.set(FaultConfig {
        latency_ms,
        ..FaultConfig::default()
    });
    let server =
        kube_sim::serve_with_faults(store.clone(), "127.0.0.1:0".parse()?, false, faults.clone())
            .await?;
    let controllers = kube_sim::controllers::spawn(store.clone(), Default::default());
    let counts = Counts::default();
    let client = client(&server.url, &counts).await?;
    let work = tempfile::tempdir()?;

    let started = Instant::now();
    let results: Vec<Result<(), Failure>> = futures::stream::iter(names.iter())
        .map(|name| migrate_one(&client, work.path(), name))
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let wall = started.elapsed();
    let requests = counts.take();
    controllers.abort();
    server.shutdown();
    let failures: Vec<String> = results
        .into_iter()
        .filter_map(|r| r.err().map(|e| e.to_string()))
        .collect();

    // Every disk present with the same bytes; every migrated claim Bound to a CSI PV.
    let disks_after: BTreeMap<String, String> = store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), d.sha256()))
        .collect();
    let changed = disks_before
        .iter()
        .filter(|(id, sum)| disks_after.get(*id) != Some(*sum))
        .count();
    let volumes = items(&store, "", "persistentvolumes");
    let csi_bound = items(&store, "", "persistentvolumeclaims")
        .iter()
        .filter(|c| text(c, "/metadata/name").starts_with("data-db-"))
        .filter(|c| text(c, "/status/phase") == "Bound")
        .filter(|c| {
            let pv = text(c, "/spec/volumeName");
            volumes
                .iter()
                .any(|v| text(v, "/metadata/name") == pv && text(v, "/spec/csi/driver") == DRIVER)
        })
        .count();

    let migrated_volumes = sets * REPLICAS;
    let sum = |filter: &dyn Fn(&str, &str) -> bool| -> u64 {
        requests
            .iter()
            .filter(|((verb, resource), _)| filter(verb, resource))
            .map(|(_, n)| n)
            .sum()
    };
    let is_write = |verb: &str| matches!(verb, "POST" | "PUT" | "PATCH" | "DELETE");
    let writes = sum(&|verb, _| is_write(verb));
    let volume_writes = sum(&|verb, resource| {
        is_write(verb)
            && matches!(
                resource,
                "persistentvolumes" | "persistentvolumeclaims" | "pods"
            )
    });
    let workload_writes = writes - volume_writes;
    println!("\nrequests by verb and resource:");
    for ((verb, resource), n) in &requests {
        println!("  {verb:<6} {resource:<24} {n:>7}");
    }
    println!(
        "\nwall time: {:.1} s ({:.2} s per StatefulSet at concurrency {concurrency})",
        wall.as_secs_f64(),
        wall.as_secs_f64() * concurrency as f64 / sets as f64
    );
    println!(
        "API writes: {writes} in all; pods, claims and PVs {volume_writes} = {:.2} per volume; \
         StatefulSets, lock ConfigMaps and Events {workload_writes} = {:.2} per workload",
        volume_writes as f64 / migrated_volumes as f64,
        workload_writes as f64 / sets as f64
    );
    println!(
        "API reads: {} GET, {} LIST, {} WATCH = {:.1} per volume",
        sum(&|verb, _| verb == "GET"),
        sum(&|verb, _| verb == "LIST"),
        sum(&|verb, _| verb == "WATCH"),
        sum(&|verb, _| !is_write(verb)) as f64 / migrated_volumes as f64
    );
    println!(
        "disks: {} of {} unchanged; claims Bound to {DRIVER} PVs: {csi_bound} of {migrated_volumes}",
        disks_before.len() - changed,
        disks_before.len()
    );
    println!(
        "peak RSS: {} KB (kube-sim and the migrations in one process); load average {}",
        peak_rss_kb().unwrap_or_default(),
        load_average()
    );
    if !failures.is_empty() || changed > 0 || csi_bound != migrated_volumes {
        for failure in failures.iter().take(10) {
            println!("failed: {failure}");
        }
        // What holds a PV that does not go: its finalizers, phase, and attachments naming it.
        let attachments = items(&store, "storage.k8s.io", "volumeattachments");
        for pv in volumes
            .iter()
            .filter(|v| v.pointer("/metadata/deletionTimestamp").is_some())
        {
            let name = text(pv, "/metadata/name");
            let attached: Vec<String> = attachments
                .iter()
                .filter(|a| text(a, "/spec/source/persistentVolumeName") == name)
                .map(|a| {
                    format!(
                        "{} on {} attached={}",
                        text(a, "/metadata/name"),
                        text(a, "/spec/nodeName"),
                        a.pointer("/status/attached").unwrap_or(&Value::Null)
                    )
                })
                .collect();
            println!(
                "terminating PV {name}: phase {}, finalizers {}, claimRef {}, attachments {attached:?}",
                text(pv, "/status/phase"),
                pv.pointer("/metadata/finalizers").unwrap_or(&Value::Null),
                pv.pointer("/spec/claimRef").unwrap_or(&Value::Null)
            );
        }
        return Err(format!(
            "{} migrations failed, {changed} disks changed, {csi_bound} of {migrated_volumes} claims on CSI",
            failures.len()
        )
        .into());
    }
    Ok(())
}
