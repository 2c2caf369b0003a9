//! `csi-migrate demo`: the whole job — scan, plan, migrate, verify — on an embedded simulated cluster.

use std::collections::BTreeMap;
use std::io::{self, IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use csi_migrate_migrate::{PlanOptions, VcenterConfig, WorkloadKind, WorkloadRef, migrate};
use csi_migrate_scan::load::live;
use csi_migrate_scan::{ScanOptions, render, scan};
use csi_migrate_vsphere::simulator::Vcsim;
use csi_migrate_vsphere::{ClientOptions, Credentials};
use kube_sim::controllers::{self, ControllerSettings};
use kube_sim::kubeconfig::kubeconfig;
use kube_sim::scenario::{self, Scenario};
use kube_sim::{Store, serve};
use serde_json::Value;

use crate::args::DemoArgs;
use crate::migrate_cmd::run_options;
use crate::plan_cmd::{Resolution, load_and_plan, load_resolve_and_plan, render_table};
use crate::{Failure, runtime};

const NAMESPACE: &str = "default";
const STATEFULSET: &str = "web";

/// One migration the demo shows.
struct Case {
    scenario: Scenario,
    title: &'static str,
    target_class: &'static str,
    driver: &'static str,
    /// Whether the full scan report is printed (the first case) or only its summary.
    full_scan: bool,
    /// Whether the VMDKs are registered through a vCenter simulator (no driver records).
    through_vcenter: bool,
}

/// The datastore of the vSphere scenario's VMDKs.
const VSPHERE_DATASTORE: &str = "vsanDatastore";
/// The demo's vCenter user (the simulator accepts only it).
const VCSIM_USER: &str = "demo@vsphere.local";

/// The vSphere run through vcsim: no records, `migrate` registers every VMDK.
const VCENTER_CASE: Case = Case {
    scenario: Scenario::VsphereStatefulset,
    title: "vSphere through vCenter: the VMDKs live in the datastore files of VMware's vCenter \
            simulator (vcsim) and no CnsVSphereVolumeMigration exists, so csi-migrate registers \
            each one with CNS itself",
    target_class: "vsphere-thin-csi",
    driver: "csi.vsphere.vmware.com",
    full_scan: false,
    through_vcenter: true,
};

const CASES: [Case; 2] = [
    Case {
        scenario: Scenario::EbsStatefulset,
        title: "3 nodes, the EBS CSI driver installed, StatefulSet default/web (3 replicas) on the \
                in-tree class gp2 (kubernetes.io/aws-ebs), data on every disk",
        target_class: "gp2-csi",
        driver: "ebs.csi.aws.com",
        full_scan: true,
        through_vcenter: false,
    },
    Case {
        scenario: Scenario::VsphereStatefulset,
        title: "the same on vSphere: StatefulSet default/web on vsphere-thin (kubernetes.io/vsphere-volume); \
                the CSI driver has registered each VMDK as a first-class disk (CnsVSphereVolumeMigration)",
        target_class: "vsphere-thin-csi",
        driver: "csi.vsphere.vmware.com",
        full_scan: false,
        through_vcenter: false,
    },
];

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

/// Deletes the simulated CSI driver's `CnsVSphereVolumeMigration` records, so the VMDKs
/// have no first-class disk id csi-migrate could look up.
fn forget_first_class_disk_records(store: &Store) {
    let Some(rt) = store.resource("cns.vmware.com", "cnsvspherevolumemigrations") else {
        return;
    };
    let names: Vec<String> = store
        .list(&rt, None, &Default::default())
        .ok()
        .and_then(|l| l.get("items").and_then(Value::as_array).cloned())
        .unwrap_or_default()
        .iter()
        .filter_map(|r| {
            r.pointer("/metadata/name")
                .and_then(Value::as_str)
                .map(str::to_owned)
        })
        .collect();
    for name in names {
        let _ = store.delete(&rt, None, &name, &Default::default());
    }
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

/// The vCenter simulator to use: `--vcsim`, `$CSI_MIGRATE_VCSIM`, or the one
/// `scripts/build-vcsim` leaves next to this binary's build directory.
fn find_vcsim(args: &DemoArgs) -> Option<std::path::PathBuf> {
    if args.no_vcsim {
        return None;
    }
    if let Some(path) = &args.vcsim {
        return Some(path.clone());
    }
    if let Some(path) = std::env::var_os("CSI_MIGRATE_VCSIM") {
        return Some(path.into());
    }
    let exe = std::env::current_exe().ok()?;
    // target/<profile>/csi-migrate (or target/<profile>/deps/…) → target/vcsim/vcsim
    exe.ancestors()
        .skip(1)
        .take(3)
        .map(|dir| dir.join("vcsim").join("vcsim"))
        .find(|candidate| candidate.is_file())
}

/// Runs the demo: an EBS and a vSphere StatefulSet, each scanned, planned, migrated and
/// checked; then, when a vCenter simulator is available, vSphere registered through it.
pub fn run(args: &DemoArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    for (number, case) in CASES.iter().enumerate() {
        runtime.block_on(run_case(number + 1, case, None))?;
    }
    match find_vcsim(args) {
        Some(binary) => {
            // A throwaway password for a simulator on loopback that lives as long as the demo.
            let password = format!(
                "demo-{}-{}",
                std::process::id(),
                jiff::Timestamp::now().as_nanosecond()
            );
            let vcsim = Vcsim::start(
                &binary,
                VCSIM_USER,
                &password,
                &["-datastore", VSPHERE_DATASTORE, "-api-version", "7.0.0.0"],
            )
            .map_err(Failure::failed)?;
            runtime.block_on(run_case(
                CASES.len() + 1,
                &VCENTER_CASE,
                Some((&vcsim, password)),
            ))?;
        }
        None => println!(
            "\n(A vSphere run that registers the VMDKs through VMware's vCenter simulator is \
             skipped: build it with scripts/build-vcsim or pass --vcsim PATH.)"
        ),
    }
    println!(
        "\nTry it by hand: csi-migrate sim --scenario ebs-statefulset --kubeconfig-out /tmp/kc, then \
         KUBECONFIG=/tmp/kc csi-migrate plan statefulset web -n default --to-storageclass gp2-csi"
    );
    Ok(())
}

async fn run_case(
    number: usize,
    case: &Case,
    vcsim: Option<(&Vcsim, String)>,
) -> Result<(), Failure> {
    let step = |n: u32, text: &str| say(&format!("{number}.{n}  {text}"));
    step(1, &format!("A simulated cluster: {}", case.title))?;
    let store = Arc::new(Store::new(10_000));
    let vcenter = match (&vcsim, case.through_vcenter) {
        (Some((vcsim, password)), true) => {
            let dir = vcsim.datastore_dirs.get(VSPHERE_DATASTORE).ok_or_else(|| {
                Failure::failed(anyhow!("the vCenter simulator has no {VSPHERE_DATASTORE}"))
            })?;
            store
                .cloud()
                .back_vsphere_datastore(VSPHERE_DATASTORE, dir.clone());
            println!(
                "   vCenter simulator {}; datastore {VSPHERE_DATASTORE} in {}",
                vcsim.url,
                dir.display()
            );
            Some(VcenterConfig {
                url: vcsim.url.clone(),
                credentials: Credentials::new(VCSIM_USER, password.clone()),
                datacenters: vec!["DC0".into()],
                client_options: ClientOptions::default(),
                cluster_id: "csi-migrate-demo".into(),
            })
        }
        _ => None,
    };
    scenario::apply(&store, case.scenario, Duration::from_secs(30))
        .await
        .map_err(Failure::failed)?;
    if vcenter.is_some() {
        forget_first_class_disk_records(&store);
    }
    let learner = tokio::spawn(kube_sim::cloud::learn_first_class_disks(store.clone()));
    let address = "127.0.0.1:0"
        .parse()
        .map_err(|e| Failure::failed(anyhow!("{e}")))?;
    let server = serve(store.clone(), address, true)
        .await
        .map_err(Failure::failed)?;
    let running_controllers = controllers::spawn(store.clone(), ControllerSettings::default());
    let dir =
        std::env::temp_dir().join(format!("csi-migrate-demo-{}-{number}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir)?;
    let kubeconfig_path = dir.join("kubeconfig");
    std::fs::write(
        &kubeconfig_path,
        kubeconfig(&server.url, server.ca_pem.as_deref()),
    )?;
    println!(
        "   API server {} (HTTPS); kubeconfig {}",
        server.url,
        kubeconfig_path.display()
    );
    print_disks(&store)?;
    let before = disks(&store);

    step(
        2,
        "csi-migrate scan: what is still in-tree, and what blocks moving it",
    )?;
    let options = live::LiveOptions {
        kubeconfig: Some(kubeconfig_path.clone()),
        context: None,
        namespace: None,
    };
    let client = live::client(&options).await.map_err(Failure::failed)?;
    let snapshot = live::load_cluster(client.clone(), None)
        .await
        .map_err(Failure::failed)?;
    let report = scan(&snapshot, &ScanOptions { namespace: None });
    let table = render::table::render(&report, io::stdout().is_terminal());
    if case.full_scan {
        print!("{table}");
    } else {
        // The summary lines only; the first case showed a whole report.
        print!(
            "{}",
            table
                .lines()
                .take(3)
                .map(|l| format!("{l}\n"))
                .collect::<String>()
        );
    }

    step(
        3,
        &format!(
            "csi-migrate plan statefulset {STATEFULSET} -n {NAMESPACE} --to-storageclass {}",
            case.target_class
        ),
    )?;
    let workload = WorkloadRef {
        kind: WorkloadKind::StatefulSet,
        namespace: NAMESPACE.to_owned(),
        name: STATEFULSET.to_owned(),
    };
    let (plan, statefulset) = match vcenter {
        // migrate's own preflight: register each VMDK with CNS, then plan onto the FCD ids
        Some(vcenter) => {
            println!(
                "   (as migrate runs it: each VMDK registered with CNS through {})",
                vcenter.url
            );
            load_resolve_and_plan(
                client.clone(),
                &workload,
                case.target_class,
                PlanOptions::default(),
                Resolution {
                    vcenter: Some(vcenter),
                    may_register: true,
                    gce_project: None,
                },
            )
            .await?
        }
        None => {
            load_and_plan(
                client.clone(),
                &workload,
                case.target_class,
                PlanOptions::default(),
            )
            .await?
        }
    };
    print!("{}", render_table(&plan, &statefulset));

    let work_dir = dir.join("work");
    step(
        4,
        &format!(
            "csi-migrate migrate … --work-dir {} --yes (one replica at a time)",
            work_dir.display()
        ),
    )?;
    let summary = migrate(client, &work_dir, &plan, &statefulset, &run_options(300))
        .await
        .map_err(Failure::failed)?;
    println!(
        "   {} steps done; backups and journal in {}",
        summary.executed,
        work_dir.display()
    );

    step(
        5,
        "Afterwards: the same claims on native CSI volumes, the same disks, the same bytes",
    )?;
    // Let the recreated StatefulSet settle before reading the final state.
    tokio::time::sleep(Duration::from_millis(500)).await;
    print_disks(&store)?;
    let after = disks(&store);
    running_controllers.abort();
    learner.abort();
    server.shutdown();
    let migrated = claim_volumes(&store)
        .values()
        .all(|(driver, _)| driver == case.driver);
    let kept = before
        .iter()
        .all(|(id, (sha, _))| after.get(id).is_some_and(|(now, _)| now == sha));
    if !(migrated && kept && before.len() == after.len()) {
        return Err(Failure::failed(anyhow!(
            "the demo did not end as it should: every claim on {}: {migrated}, every disk and its data kept: {kept}",
            case.driver
        )));
    }
    println!(
        "\n   {} disks, {} unchanged checksums, every claim now on {}.",
        after.len(),
        before.len(),
        case.driver
    );
    let _ = std::fs::remove_dir_all(&dir);
    Ok(())
}
