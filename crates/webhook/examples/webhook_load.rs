//! Bounded load generator for the webhook: N keep-alive HTTPS connections, a fixed number of reviews, loopback only.
//!
//! ```text
//! webhook_load --addr 127.0.0.1:PORT --ca CA.crt [--connections 32] [--requests 200000] [--threads 1]
//! ```
//! Sends a fixed mix of AdmissionReviews (8 of 10 plain Pods, 1 Pod with an inline
//! in-tree volume, 1 in-tree StorageClass), checks every answer, prints reviews/s and
//! latency percentiles, and exits non-zero on any error.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::json;

struct Args {
    addr: SocketAddr,
    ca: String,
    connections: usize,
    requests: usize,
    threads: usize,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        addr: "127.0.0.1:8443".parse()?,
        ca: String::new(),
        connections: 32,
        requests: 200_000,
        threads: 1,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--addr" => args.addr = value.parse()?,
            "--ca" => args.ca = value,
            "--connections" => args.connections = value.parse()?,
            "--requests" => args.requests = value.parse()?,
            "--threads" => args.threads = value.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if !args.addr.ip().is_loopback() {
        bail!(
            "refusing to send load to {}: loopback addresses only",
            args.addr
        );
    }
    if args.ca.is_empty() || args.connections == 0 || args.threads == 0 {
        bail!(
            "usage: webhook_load --addr 127.0.0.1:PORT --ca CA.crt [--connections N] [--requests N] [--threads N]"
        );
    }
    Ok(args)
}

fn review(uid: usize, kind: (&str, &str), object: serde_json::Value) -> String {
    json!({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": format!("bench-{uid}"), "kind": {"group": kind.0, "version": "v1", "kind": kind.1},
        "resource": {"group": kind.0, "version": "v1", "resource": "x"}, "namespace": "shop",
        "operation": "CREATE", "userInfo": {"username": "system:serviceaccount:kube-system:replicaset-controller"},
        "object": object, "dryRun": false}})
    .to_string()
}

fn bodies() -> Vec<String> {
    let pod = |volumes: serde_json::Value| {
        json!({"apiVersion": "v1", "kind": "Pod",
               "metadata": {"name": "web-7d9f-abcde", "namespace": "shop", "labels": {"app": "web", "pod-template-hash": "7d9f"}},
               "spec": {"containers": [{"name": "web", "image": "nginx:1.27", "ports": [{"containerPort": 80}],
                                        "env": [{"name": "MODE", "value": "prod"}],
                                        "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}},
                                        "volumeMounts": [{"name": "data", "mountPath": "/data"}]}],
                        "volumes": volumes}})
    };
    let plain = pod(
        json!([{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                           {"name": "kube-api-access", "projected": {"sources": [{"serviceAccountToken": {"path": "token"}}]}}]),
    );
    let in_tree = pod(
        json!([{"name": "data", "awsElasticBlockStore": {"volumeID": "aws://us-east-1a/vol-0abc", "fsType": "ext4"}}]),
    );
    let sc = json!({"apiVersion": "storage.k8s.io/v1", "kind": "StorageClass", "metadata": {"name": "gp2"},
                    "provisioner": "kubernetes.io/aws-ebs", "parameters": {"type": "gp2"}});
    let mut out: Vec<String> = (0..8)
        .map(|i| review(i, ("", "Pod"), plain.clone()))
        .collect();
    out.push(review(8, ("", "Pod"), in_tree));
    out.push(review(9, ("storage.k8s.io", "StorageClass"), sc));
    out
}

fn main() -> anyhow::Result<()> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let args = parse_args()?;
    let ca = reqwest::Certificate::from_pem(&std::fs::read(&args.ca)?)?;
    let url = format!("https://localhost:{}/validate", args.addr.port());
    let bodies = Arc::new(bodies());
    let next = Arc::new(AtomicUsize::new(0));
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(args.threads)
        .enable_all()
        .build()?;

    let (elapsed, latencies, errors) = runtime.block_on(async {
        // One client per connection: each keeps exactly one keep-alive HTTP/1.1 connection.
        let mut clients = Vec::new();
        for _ in 0..args.connections {
            let client = reqwest::Client::builder()
                .tls_certs_only([ca.clone()])
                .http1_only()
                .pool_max_idle_per_host(1)
                .resolve("localhost", args.addr)
                .timeout(Duration::from_secs(10))
                .build()?;
            // Warm up: handshake outside the measured window.
            client
                .get(url.replace("/validate", "/healthz"))
                .send()
                .await?
                .error_for_status()?;
            clients.push(client);
        }
        let started = Instant::now();
        let mut tasks = Vec::new();
        for client in clients {
            let (url, bodies, next, total) = (
                url.clone(),
                Arc::clone(&bodies),
                Arc::clone(&next),
                args.requests,
            );
            tasks.push(tokio::spawn(async move {
                let mut latencies: Vec<u32> = Vec::with_capacity(total / 8);
                let mut errors = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    if i >= total {
                        break;
                    }
                    let body = bodies[i % bodies.len()].clone();
                    let sent = Instant::now();
                    let result = client
                        .post(&url)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    let ok = match result {
                        Ok(response) if response.status().is_success() => {
                            match response.bytes().await {
                                Ok(bytes) => bytes.windows(14).any(|w| w == b"\"allowed\":true"),
                                Err(_) => false,
                            }
                        }
                        _ => false,
                    };
                    latencies.push(u32::try_from(sent.elapsed().as_micros()).unwrap_or(u32::MAX));
                    if !ok {
                        errors += 1;
                    }
                }
                (latencies, errors)
            }));
        }
        let mut all = Vec::with_capacity(args.requests);
        let mut errors = 0;
        for task in tasks {
            let (latencies, e) = task.await?;
            all.extend(latencies);
            errors += e;
        }
        anyhow::Ok((started.elapsed(), all, errors))
    })?;

    let mut latencies = latencies;
    latencies.sort_unstable();
    let pct = |p: f64| {
        let idx = ((latencies.len() as f64 * p).ceil() as usize).saturating_sub(1);
        latencies.get(idx).copied().unwrap_or(0) as f64 / 1000.0
    };
    let rate = latencies.len() as f64 / elapsed.as_secs_f64();
    println!(
        "requests={} connections={} errors={} elapsed={:.2}s reviews/s={:.0} p50={:.2}ms p90={:.2}ms p99={:.2}ms max={:.2}ms",
        latencies.len(),
        args.connections,
        errors,
        elapsed.as_secs_f64(),
        rate,
        pct(0.50),
        pct(0.90),
        pct(0.99),
        pct(1.0),
    );
    if errors > 0 {
        bail!("{errors} requests failed");
    }
    Ok(())
}
