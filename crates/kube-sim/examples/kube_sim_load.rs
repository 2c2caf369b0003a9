//! Load benchmark for kube-sim: request throughput over loopback and memory for many objects.
//!
//! `cargo run --release -p kube-sim --example kube_sim_load -- [REQUESTS] [CONCURRENCY] [OBJECTS] [--controllers]`
//!
//! With `--controllers` the simulated controllers run throughout (as in `csi-migrate sim`):
//! the requests compete with them; after the objects are stored the example runs
//! for passes over one warm informer cache until a pass writes nothing, and reports
//! each pass's time and the RSS.

#![allow(clippy::unwrap_used)]

use std::sync::Arc;
use std::time::Instant;

use kube_sim::store::Store;
use serde_json::json;

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let kb: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap_or(0.0);
    kb / 1024.0
}

fn pv(i: usize) -> serde_json::Value {
    json!({"apiVersion": "v1", "kind": "PersistentVolume",
           "metadata": {"name": format!("pv-{i}"), "labels": {"topology.kubernetes.io/zone": "us-east-1a"},
                        "annotations": {"pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs"}},
           "spec": {"capacity": {"storage": "10Gi"}, "accessModes": ["ReadWriteOnce"],
                    "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "gp2",
                    "claimRef": {"namespace": "default", "name": format!("data-{i}")},
                    "awsElasticBlockStore": {"volumeID": format!("aws://us-east-1a/vol-{i:017x}"), "fsType": "ext4"}}})
}

#[tokio::main]
async fn main() {
    let with_controllers = std::env::args().any(|a| a == "--controllers");
    let mut args = std::env::args()
        .skip(1)
        .filter(|a| a != "--controllers")
        .map(|a| a.parse::<usize>().unwrap_or(0));
    let requests = args.next().filter(|n| *n > 0).unwrap_or(20_000);
    let concurrency = args.next().filter(|n| *n > 0).unwrap_or(16);
    let objects = args.next().filter(|n| *n > 0).unwrap_or(100_000);

    let _ = rustls::crypto::ring::default_provider().install_default();
    let store = Arc::new(Store::new(10_000));
    let server = kube_sim::serve(store.clone(), "127.0.0.1:0".parse().unwrap(), false)
        .await
        .unwrap();
    let controllers =
        with_controllers.then(|| kube_sim::controllers::spawn(store.clone(), Default::default()));
    let client = reqwest::Client::new();
    for i in 0..100 {
        client
            .post(format!("{}/api/v1/persistentvolumes", server.url))
            .json(&pv(i))
            .send()
            .await
            .unwrap();
    }

    // Mixed load: 80% GET of one object, 20% creates, with keep-alive connections.
    let start = Instant::now();
    let per_task = requests / concurrency;
    let mut tasks = Vec::new();
    for task in 0..concurrency {
        let (client, url) = (client.clone(), server.url.clone());
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(per_task);
            let mut errors = 0;
            for i in 0..per_task {
                let t = Instant::now();
                let response = if i % 5 == 0 {
                    client
                        .post(format!("{url}/api/v1/persistentvolumes"))
                        .json(&pv(1_000_000 + task * per_task + i))
                        .send()
                        .await
                } else {
                    client
                        .get(format!("{url}/api/v1/persistentvolumes/pv-{}", i % 100))
                        .send()
                        .await
                };
                match response {
                    Ok(r) if r.status().is_success() => {
                        let _ = r.bytes().await;
                    }
                    _ => errors += 1,
                }
                latencies.push(t.elapsed().as_secs_f64() * 1000.0);
            }
            (latencies, errors)
        }));
    }
    let mut latencies = Vec::new();
    let mut errors = 0;
    for task in tasks {
        let (l, e) = task.await.unwrap();
        latencies.extend(l);
        errors += e;
    }
    let elapsed = start.elapsed().as_secs_f64();
    latencies.sort_by(f64::total_cmp);
    let p99 = latencies
        .get(latencies.len() * 99 / 100)
        .copied()
        .unwrap_or(0.0);
    println!(
        "requests: {} in {elapsed:.2} s = {:.0} req/s, p99 {p99:.2} ms, errors {errors}, concurrency {concurrency}",
        latencies.len(),
        latencies.len() as f64 / elapsed
    );

    let rt = store.resource("", "persistentvolumes").unwrap();
    let before = rss_mb();
    let start = Instant::now();
    for i in 0..objects {
        store.create(&rt, None, pv(2_000_000 + i)).unwrap();
    }
    println!(
        "stored {objects} more PersistentVolumes in {:.2} s; RSS {before:.0} MB -> {:.0} MB",
        start.elapsed().as_secs_f64(),
        rss_mb()
    );
    if let Some(controllers) = controllers {
        // The loop stops here; passes on one warm cache, each timed, until one writes nothing.
        controllers.abort();
        println!(
            "while the controllers ran: RSS {:.0} MB, resourceVersion {}",
            rss_mb(),
            store.resource_version()
        );
        let start = Instant::now();
        let mut informer = kube_sim::controllers::Informer::new(&store, std::time::Duration::ZERO);
        println!(
            "informer cache of {} objects filled in {:.2} s; RSS {:.0} MB",
            informer.cache().len(),
            start.elapsed().as_secs_f64(),
            rss_mb()
        );
        for pass in 1..=10 {
            let before = store.resource_version();
            let start = Instant::now();
            kube_sim::controllers::run_pass(&store, &mut informer);
            let writes = store.resource_version() - before;
            println!(
                "pass {pass}: {:.0} ms, {writes} writes, {} relists so far; RSS {:.0} MB",
                start.elapsed().as_secs_f64() * 1000.0,
                informer.relists() - 1,
                rss_mb()
            );
            if writes == 0 {
                break;
            }
        }
    }
    server.shutdown();
}
