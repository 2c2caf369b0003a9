//! The vSphere resolver registering through VMware's vCenter simulator (vcsim, built by
//! `scripts/build-vcsim` from Debian's govmomi; a build or start failure fails the test):
//! kube-sim's `vsphere-statefulset` with no `CnsVSphereVolumeMigration` records, its VMDKs
//! created on vcsim's `vsanDatastore`, migrated onto the FCD ids vcsim hands out.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use csi_migrate_migrate::runner::RunOptions;
use csi_migrate_migrate::{
    PlanOptions, VcenterConfig, VsphereResolver, load_statefulset_snapshot, migrate,
    plan_statefulset, resolve_snapshot,
};
use csi_migrate_vsphere::{ClientOptions, Credentials, VcenterClient, VolumePath};
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim};
use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use kube_sim::Store;
use kube_sim::scenario::Scenario;

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = "vcsim-Pa55w0rd-e2e";
const DATASTORE: &str = "vsanDatastore";

#[path = "../../vsphere/tests/support/vcsim_process.rs"]
mod vcsim_process;

fn records(client: &Client) -> Api<DynamicObject> {
    Api::all_with(
        client.clone(),
        &ApiResource::from_gvk_with_plural(
            &GroupVersionKind::gvk("cns.vmware.com", "v1alpha1", "CnsVSphereVolumeMigration"),
            "cnsvspherevolumemigrations",
        ),
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn vsphere_statefulset_registered_through_vcsim_and_migrated_onto_its_fcd_ids() {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let vcsim = vcsim_process::start_vcsim(USER, PASSWORD, &["-datastore", DATASTORE]);
    let vcsim_url = vcsim.url.clone();
    let datastore_dir = vcsim.datastore_dirs[DATASTORE].clone();

    let store = Arc::new(Store::new(10_000));
    kube_sim::scenario::apply(
        &store,
        Scenario::VsphereStatefulset,
        Duration::from_secs(30),
    )
    .await
    .unwrap();
    let server = kube_sim::serve(store.clone(), "127.0.0.1:0".parse().unwrap(), false)
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

    // The CSI driver never registered anything: no records.
    let recs = records(&client);
    for record in recs.list(&ListParams::default()).await.unwrap().items {
        recs.delete(&record.metadata.name.unwrap(), &DeleteParams::default())
            .await
            .unwrap();
    }
    // Each kube-sim disk's VMDK exists on vcsim's vsanDatastore, with the same bytes.
    let mut vc = VcenterClient::new(&vcsim_url, ClientOptions::default()).unwrap();
    vc.login(&Credentials::new(USER, PASSWORD)).await.unwrap();
    let dc = vc.find_datacenter("DC0").await.unwrap();
    let ds = vc.find_datastore(&dc, DATASTORE).await.unwrap();
    let mut disk_of_path = BTreeMap::new();
    for disk in store.cloud().list() {
        let path = disk.in_tree_source["vsphereVolume"]["volumePath"]
            .as_str()
            .unwrap()
            .to_owned();
        let parsed = VolumePath::parse(&path).unwrap();
        assert_eq!(parsed.datastore, DATASTORE);
        let (folder, _) = parsed.disk_path.rsplit_once('/').unwrap();
        vc.make_directory(&ds, folder).await.unwrap();
        vc.create_virtual_disk(&ds, &parsed.disk_path, 1024)
            .await
            .unwrap();
        let flat = parsed.disk_path.replace(".vmdk", "-flat.vmdk");
        vc.upload_datastore_file(&ds, &flat, disk.content.clone())
            .await
            .unwrap();
        disk_of_path.insert(path, (disk.id.clone(), flat, disk.sha256()));
    }
    vc.logout().await.unwrap();

    let vcenter = VcenterConfig {
        url: vcsim_url.clone(),
        credentials: Credentials::new(USER, PASSWORD),
        datacenters: vec!["DC0".into()],
        client_options: ClientOptions::default(),
        cluster_id: "kube-sim".into(),
    };
    // plan (read-only) cannot show an id for an unregistered VMDK: it blocks, registers nothing
    let mut snapshot = load_statefulset_snapshot(&client, "default", "web")
        .await
        .unwrap();
    let lookup = VsphereResolver::new(client.clone(), Some(vcenter.clone()), false);
    resolve_snapshot(&lookup, &mut snapshot).await;
    assert_eq!(
        snapshot.unresolved_volumes.len(),
        3,
        "{:?}",
        snapshot.resolved_volumes
    );
    assert!(plan_statefulset(&snapshot, "vsphere-thin-csi", PlanOptions::default()).is_err());
    assert!(
        recs.list(&ListParams::default())
            .await
            .unwrap()
            .items
            .is_empty()
    );

    // migrate registers; twice gives the same ids and no new records
    let mut snapshot = load_statefulset_snapshot(&client, "default", "web")
        .await
        .unwrap();
    let register = VsphereResolver::new(client.clone(), Some(vcenter.clone()), true);
    resolve_snapshot(&register, &mut snapshot).await;
    assert!(
        snapshot.unresolved_volumes.is_empty(),
        "{:?}",
        snapshot.unresolved_volumes
    );
    let first = snapshot.resolved_volumes.clone();
    let handles = |s: &csi_migrate_migrate::WorkloadSnapshot| -> BTreeMap<String, String> {
        s.resolved_volumes
            .iter()
            .map(|(pv, r)| (pv.clone(), r.volume_handle.clone()))
            .collect()
    };
    let first_handles = handles(&snapshot);
    assert!(first.values().all(|r| r.source.contains("vCenter")));
    resolve_snapshot(&register, &mut snapshot).await;
    assert_eq!(handles(&snapshot), first_handles);
    assert!(
        snapshot
            .resolved_volumes
            .values()
            .all(|r| r.source.contains("CnsVSphereVolumeMigration")),
        "the second time comes from our records"
    );
    let recorded = recs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(recorded.len(), 3);
    // Even with the records gone, vCenter hands back the same ids and no new FCD.
    let mut vc = VcenterClient::new(&vcsim_url, ClientOptions::default()).unwrap();
    vc.login(&Credentials::new(USER, PASSWORD)).await.unwrap();
    let fcds = async |vc: &mut VcenterClient| {
        let mut ids = vc.list_vstorage_objects(&ds).await.unwrap();
        ids.sort();
        ids
    };
    let fcds_before = fcds(&mut vc).await;
    for record in &recorded {
        recs.delete(
            record.metadata.name.as_deref().unwrap(),
            &DeleteParams::default(),
        )
        .await
        .unwrap();
    }
    resolve_snapshot(&register, &mut snapshot).await;
    assert_eq!(handles(&snapshot), first_handles);
    assert_eq!(fcds(&mut vc).await, fcds_before);
    let ids: Vec<String> = first_handles.values().cloned().collect();
    let id_refs: Vec<&str> = ids.iter().map(String::as_str).collect();
    // vcsim files a re-created CNS volume under an arbitrary datastore, so one id can be
    // listed twice; a real CNS answers CnsAlreadyRegisteredFault instead. Distinct ids count.
    let cns_ids: std::collections::BTreeSet<String> = vc
        .cns_query_volumes(&id_refs)
        .await
        .unwrap()
        .into_iter()
        .map(|v| v.volume_id)
        .collect();
    assert_eq!(cns_ids, ids.iter().cloned().collect(), "CNS volumes");
    vc.logout().await.unwrap();
    let recorded = recs.list(&ListParams::default()).await.unwrap().items;
    assert_eq!(recorded.len(), 3);

    // kube-sim's disks answer to the ids vcsim gave (they are the same VMDKs)
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    for (pv_name, resolved) in &first {
        let pv = volumes.get(pv_name).await.unwrap();
        let path = pv.spec.unwrap().vsphere_volume.unwrap().volume_path;
        store
            .cloud()
            .add_handle(&disk_of_path[&path].0, &resolved.volume_handle)
            .unwrap();
        assert!(recorded.iter().any(|r| {
            r.metadata.name.as_deref() == Some(resolved.volume_handle.as_str())
                && r.data["spec"]["volumepath"] == path.as_str()
                // vcsim cannot set keepAfterDeleteVm, so the driver is told to do it
                && r.data["spec"]["protectvolumefromvmdelete"] == false
        }));
    }

    let plan = plan_statefulset(&snapshot, "vsphere-thin-csi", PlanOptions::default()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let options = RunOptions {
        step_timeout: Duration::from_secs(30),
        stop: None,
        progress: None,
    };
    migrate(client.clone(), dir.path(), &plan, &snapshot, &options)
        .await
        .unwrap();

    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), "default");
    let ids: Vec<&str> = first.values().map(|r| r.volume_handle.as_str()).collect();
    for i in 0..3 {
        let claim = claims.get(&format!("data-web-{i}")).await.unwrap();
        let pv = volumes
            .get(claim.spec.unwrap().volume_name.as_deref().unwrap())
            .await
            .unwrap();
        let csi = pv.spec.unwrap().csi.unwrap();
        assert_eq!(csi.driver, "csi.vsphere.vmware.com");
        assert!(
            ids.contains(&csi.volume_handle.as_str()),
            "{}",
            csi.volume_handle
        );
    }
    // vcsim's VMDK bytes and kube-sim's disks unchanged
    for (id, flat, sha) in disk_of_path.values() {
        let disk = store
            .cloud()
            .list()
            .into_iter()
            .find(|d| &d.id == id)
            .unwrap();
        assert_eq!(&disk.sha256(), sha);
        assert_eq!(
            std::fs::read(datastore_dir.join(flat)).unwrap(),
            disk.content
        );
    }
    let plan_text = std::fs::read_to_string(dir.path().join("plan.json")).unwrap();
    assert!(!plan_text.contains(PASSWORD));
    controllers.abort();
    server.shutdown();
}
