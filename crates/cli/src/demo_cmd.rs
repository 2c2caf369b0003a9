//! `csi-migrate demo`: the whole job — scan, plan, migrate, verify — on an embedded simulated cluster.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use csi_migrate_migrate::{PlanOptions, migrate};
use csi_migrate_scan::load::live;
use csi_migrate_scan::{ScanOptions, render, scan};
use kube_sim::controllers::{self, ControllerSettings};
use kube_sim::kubeconfig::kubeconfig;
use kube_sim::scenario::{self, Scenario};
use kube_sim::{Store, serve};
use serde_json::Value;

use crate::migrate_cmd::run_options;
use crate::plan_cmd::{load_and_plan, render_table};
use crate::{Failure, runtime};

const NAMESPACE: &str = "default";
const STATEFULSET: &str = "web";
const TARGET_CLASS: &str = "gp2-csi";

fn say(text: &str) -> io::Result<()> {
    let mut out = io::stdout().lock();
    writeln!(out, "\n== {text}")?;
    out.flush()
}

/// Disk id → (sha256 of the content, handles).
fn disks(store: &Store) -> BTreeMap<String, (String, Vec<String>)> {
    store
        .cloud()
        .list()
        .into_iter()
        .map(|d| (d.id.clone(), (d.sha256(), d.handles.clone())))
        .collect()
}

/// Claim name → (driver, volume handle) of the PV it is bound to.
fn claim_volumes(store: &Store) -> BTreeMap<String, (String, String)> {
    let (Some(claims), Some(volumes)) = (
        store.resource("", "persistentvolumeclaims"),
        store.resource("", "persistentvolumes"),
    ) else {
        return BTreeMap::new();
    };
    let text = |v: &Value, p: &str| {
        v.pointer(p)
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned()
    };
    let list = store
        .list(&claims, Some(NAMESPACE), &Default::default())
        .ok();
    list.iter()
        .flat_map(|l| l["items"].as_array().cloned().unwrap_or_default())
        .filter_map(|claim| {
            let pv = store
                .get(&volumes, None, &text(&claim, "/spec/volumeName"))
                .ok()?;
            let identity = kube_sim::cloud::pv_identity(&pv)?;
            let driver = if pv.pointer("/spec/csi").is_some() {
                identity.0
            } else {
                "in-tree".to_owned()
            };
            Some((text(&claim, "/metadata/name"), (driver, identity.1)))
        })
        .collect()
}

fn print_disks(store: &Store) -> io::Result<()> {
    let mut out = io::stdout().lock();
    for (claim, (driver, handle)) in claim_volumes(store) {
        let disk = store
            .cloud()
            .list()
            .into_iter()
            .find(|d| d.handles.contains(&handle));
        let sha = disk.map(|d| d.sha256()).unwrap_or_default();
        writeln!(
            out,
            "   {claim:<12} {driver:<16} {handle:<24} sha256 {}…",
            sha.get(..16).unwrap_or_default()
        )?;
    }
    Ok(())
}

/// Runs the demo.
pub fn run() -> Result<(), Failure> {
    runtime()?.block_on(async {
        say("1/5  A simulated cluster: 3 nodes, the EBS CSI driver installed, StatefulSet default/web \
             (3 replicas) on the in-tree class gp2 (kubernetes.io/aws-ebs), data on every disk")?;
        let store = Arc::new(Store::new(10_000));
        scenario::apply(&store, Scenario::EbsStatefulset, Duration::from_secs(30)).await.map_err(Failure::failed)?;
        let server = serve(store.clone(), "127.0.0.1:0".parse().map_err(|e| Failure::failed(anyhow!("{e}")))?, true)
            .await
            .map_err(Failure::failed)?;
        let running_controllers = controllers::spawn(store.clone(), ControllerSettings::default());
        let dir = std::env::temp_dir().join(format!("csi-migrate-demo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir)?;
        let kubeconfig_path = dir.join("kubeconfig");
        std::fs::write(&kubeconfig_path, kubeconfig(&server.url, server.ca_pem.as_deref()))?;
        println!("   API server {} (HTTPS); kubeconfig {}", server.url, kubeconfig_path.display());
        print_disks(&store)?;
        let before = disks(&store);

        say("2/5  csi-migrate scan: what is still in-tree, and what blocks moving it")?;
        let options = live::LiveOptions { kubeconfig: Some(kubeconfig_path.clone()), context: None, namespace: None };
        let client = live::client(&options).await.map_err(Failure::failed)?;
        let snapshot = live::load_cluster(client.clone(), None).await.map_err(Failure::failed)?;
        let report = scan(&snapshot, &ScanOptions { namespace: None });
        print!("{}", render::table::render(&report, io::stdout().is_terminal()));

        say(&format!("3/5  csi-migrate plan statefulset {STATEFULSET} -n {NAMESPACE} --to-storageclass {TARGET_CLASS}"))?;
        let (plan, statefulset) =
            load_and_plan(client.clone(), NAMESPACE, STATEFULSET, TARGET_CLASS, PlanOptions::default()).await?;
        print!("{}", render_table(&plan, &statefulset));

        let work_dir = dir.join("work");
        say(&format!("4/5  csi-migrate migrate … --work-dir {} --yes (one replica at a time)", work_dir.display()))?;
        let summary = migrate(client, &work_dir, &plan, &statefulset, &run_options(300)).await.map_err(Failure::failed)?;
        println!("   {} steps done; backups and journal in {}", summary.executed, work_dir.display());

        say("5/5  Afterwards: the same claims on native CSI volumes, the same disks, the same bytes")?;
        // Let the recreated StatefulSet settle before reading the final state.
        tokio::time::sleep(Duration::from_millis(500)).await;
        print_disks(&store)?;
        let after = disks(&store);
        running_controllers.abort();
        server.shutdown();
        let migrated = claim_volumes(&store).values().all(|(driver, _)| driver == "ebs.csi.aws.com");
        let kept = before.iter().all(|(id, (sha, _))| after.get(id).is_some_and(|(now, _)| now == sha));
        if !(migrated && kept && before.len() == after.len()) {
            return Err(Failure::failed(anyhow!(
                "the demo did not end as it should: every claim on CSI: {migrated}, every disk and its data kept: {kept}"
            )));
        }
        println!(
            "\n   {} disks, {} unchanged checksums, every claim now on ebs.csi.aws.com.\n   \
             Try it by hand: csi-migrate sim --scenario ebs-statefulset --kubeconfig-out /tmp/kc, then \
             KUBECONFIG=/tmp/kc csi-migrate plan statefulset web -n default --to-storageclass gp2-csi",
            after.len(),
            before.len()
        );
        let _ = std::fs::remove_dir_all(&dir);
        Ok(())
    })
}
