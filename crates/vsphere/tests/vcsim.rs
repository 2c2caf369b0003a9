//! Tests of the vCenter client against VMware's vCenter simulator (vcsim), built from
//! Debian's govmomi sources by `scripts/build-vcsim`; a build or start failure fails loudly.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::sync::OnceLock;

use csi_migrate_vsphere::{
    BackingDisk, ClientOptions, ContainerCluster, Credentials, Datastore, FaultKind, VcenterClient,
    VolumePath, VsphereError,
};

const USER: &str = "administrator@vsphere.local";
const PASSWORD: &str = "s3cret-Pa55w0rd";
const SPACE_DATASTORE: &str = "my ds";

#[path = "support/vcsim_process.rs"]
mod vcsim_process;

use vcsim_process::VcsimProcess;

/// The simulator shared by every test of this file (it exits with the test process).
fn vcsim() -> &'static VcsimProcess {
    static VCSIM: OnceLock<VcsimProcess> = OnceLock::new();
    VCSIM.get_or_init(|| {
        vcsim_process::start_vcsim(USER, PASSWORD, &["-datastore", SPACE_DATASTORE])
    })
}

fn install_crypto_provider() {
    let _ = rustls::crypto::ring::default_provider().install_default();
}

async fn logged_in_client() -> VcenterClient {
    install_crypto_provider();
    let mut client = VcenterClient::new(&vcsim().url, ClientOptions::default()).unwrap();
    client
        .login(&Credentials::new(USER, PASSWORD))
        .await
        .unwrap();
    client
}

async fn datastore(client: &mut VcenterClient, name: &str) -> Datastore {
    let dc = client.find_datacenter("DC0").await.unwrap();
    client.find_datastore(&dc, name).await.unwrap()
}

/// Creates `<dir>/<file>.vmdk` through the API and writes `bytes` into its flat extent.
async fn create_disk_with_bytes(
    client: &mut VcenterClient,
    ds: &Datastore,
    dir: &str,
    file: &str,
    bytes: &[u8],
) -> String {
    client.make_directory(ds, dir).await.unwrap();
    let path = format!("{dir}/{file}.vmdk");
    client.create_virtual_disk(ds, &path, 1024).await.unwrap();
    client
        .upload_datastore_file(ds, &format!("{dir}/{file}-flat.vmdk"), bytes.to_vec())
        .await
        .unwrap();
    path
}

/// How many FCDs on `ds` are backed by the file `[datastore] path`.
async fn fcds_backed_by(client: &mut VcenterClient, ds: &Datastore, file_path: &str) -> usize {
    let mut count = 0;
    for id in client.list_vstorage_objects(ds).await.unwrap() {
        // an FCD another test deletes between list and retrieve is not ours
        if let Ok(object) = client.retrieve_vstorage_object(ds, &id).await
            && object.file_path == file_path
        {
            count += 1;
        }
    }
    count
}

fn known_bytes(seed: u8) -> Vec<u8> {
    (0..64 * 1024u32)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

#[tokio::test]
async fn login_with_good_credentials_then_logout() {
    install_crypto_provider();
    let mut client = VcenterClient::new(&vcsim().url, ClientOptions::default()).unwrap();
    let about = client
        .retrieve_service_content()
        .await
        .unwrap()
        .about
        .clone();
    assert!(!about.api_version.is_empty(), "{about:?}");
    client
        .login(&Credentials::new(USER, PASSWORD))
        .await
        .unwrap();
    assert!(client.is_logged_in());
    client.find_datacenter("DC0").await.unwrap();
    client.logout().await.unwrap();
    assert!(!client.is_logged_in());
    let err = client.find_datacenter("DC0").await.unwrap_err();
    assert!(matches!(err, VsphereError::NotLoggedIn { .. }), "{err:?}");
}

#[tokio::test]
async fn login_with_bad_password_is_invalid_login_fault_without_the_password() {
    install_crypto_provider();
    let mut client = VcenterClient::new(&vcsim().url, ClientOptions::default()).unwrap();
    let wrong = "wrong-Pa55w0rd-xyz";
    let err = client
        .login(&Credentials::new(USER, wrong))
        .await
        .unwrap_err();
    assert!(err.is_fault(FaultKind::InvalidLogin), "{err:?}");
    assert_eq!(err.fault().unwrap().name, "InvalidLogin");
    let shown = format!("{err} {err:?} {client:?}");
    assert!(
        !shown.contains(wrong) && !shown.contains(PASSWORD),
        "{shown}"
    );
    assert!(!client.is_logged_in());
}

#[tokio::test]
async fn call_without_session_cookie_is_not_authenticated_fault() {
    // A raw vim25 call without a cookie: checks vcsim's NotAuthenticated wire shape, which
    // our fault parser classifies (see client::tests::parses_recorded_faults).
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, "LocalDS_0").await;
    client.logout().await.unwrap();
    let err = client.list_vstorage_objects(&ds).await.unwrap_err();
    assert!(matches!(err, VsphereError::NotLoggedIn { .. }), "{err:?}");
    let body = r#"<?xml version="1.0"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/"><Body><ListVStorageObject xmlns="urn:vim25"><_this type="VcenterVStorageObjectManager">VStorageObjectManager</_this><datastore type="Datastore">x</datastore></ListVStorageObject></Body></Envelope>"#;
    let response = reqwest::Client::builder()
        .build()
        .unwrap()
        .post(&vcsim().url)
        .header("Content-Type", "text/xml")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status().as_u16(), 500);
    let text = response.text().await.unwrap();
    assert!(text.contains("NotAuthenticated"), "{text}");
}

#[tokio::test]
async fn finds_datastores_including_a_name_with_a_space() {
    let mut client = logged_in_client().await;
    let local = datastore(&mut client, "LocalDS_0").await;
    assert_eq!(local.moref.kind, "Datastore");
    let spaced = datastore(&mut client, SPACE_DATASTORE).await;
    assert_eq!(spaced.name, SPACE_DATASTORE);
    assert_ne!(spaced.moref, local.moref);
}

#[tokio::test]
async fn missing_datastore_and_datacenter_are_typed_errors() {
    let mut client = logged_in_client().await;
    let dc = client.find_datacenter("DC0").await.unwrap();
    let err = client.find_datastore(&dc, "NoSuchDS").await.unwrap_err();
    assert!(
        matches!(&err, VsphereError::DatastoreNotFound { name, .. } if name == "NoSuchDS"),
        "{err:?}"
    );
    let err = client.find_datacenter("NoSuchDC").await.unwrap_err();
    assert!(
        matches!(&err, VsphereError::DatacenterNotFound { .. }),
        "{err:?}"
    );
}

async fn register_retrieve_reregister(datastore_name: &str, dir: &str) {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, datastore_name).await;
    let bytes = known_bytes(datastore_name.len() as u8);
    let path = create_disk_with_bytes(&mut client, &ds, dir, "disk 1", &bytes).await;
    assert!(client.datastore_file_exists(&ds, &path).await.unwrap());

    let first = client
        .register_disk_idempotent(&ds, &path, "pv-disk-1")
        .await
        .unwrap();
    assert!(first.newly_registered);
    assert_eq!(first.object.file_path, format!("[{datastore_name}] {path}"));

    let retrieved = client
        .retrieve_vstorage_object(&ds, &first.object.id)
        .await
        .unwrap();
    assert_eq!(retrieved.id, first.object.id);
    assert_eq!(retrieved.file_path, first.object.file_path);

    let second = client
        .register_disk_idempotent(&ds, &path, "pv-disk-1")
        .await
        .unwrap();
    assert!(!second.newly_registered);
    assert_eq!(second.object.id, first.object.id);
    // other tests add FCDs to the same datastore concurrently: count only ours
    assert_eq!(
        fcds_backed_by(&mut client, &ds, &first.object.file_path).await,
        1,
        "re-registration created a new FCD"
    );

    // bytes unchanged, through the API and on the simulator's disk
    let flat = format!("{dir}/disk 1-flat.vmdk");
    assert_eq!(
        client.download_datastore_file(&ds, &flat).await.unwrap(),
        bytes
    );
    let on_disk = std::fs::read(vcsim().datastore_dirs[datastore_name].join(&flat)).unwrap();
    assert_eq!(on_disk, bytes);
}

#[tokio::test]
async fn registers_vmdk_retrieves_same_id_and_reregistration_is_idempotent() {
    register_retrieve_reregister("LocalDS_0", "kubevols-a").await;
}

#[tokio::test]
async fn registers_vmdk_on_datastore_with_space_in_name() {
    register_retrieve_reregister(SPACE_DATASTORE, "kube vols").await;
}

#[tokio::test]
async fn vcsim_reregistration_is_invalid_argument_not_already_exists() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, "LocalDS_0").await;
    let path = create_disk_with_bytes(&mut client, &ds, "kubevols-b", "raw", b"x").await;
    client.register_disk(&ds, &path, "raw").await.unwrap();
    let err = client.register_disk(&ds, &path, "raw").await.unwrap_err();
    // Real vCenter answers AlreadyExists carrying the FCD id; vcsim says InvalidArgument(path).
    assert!(err.is_fault(FaultKind::InvalidArgument), "{err:?}");
    assert_eq!(err.fault().unwrap().field("invalidProperty"), Some("path"));
}

#[tokio::test]
async fn missing_vmdk_is_disk_not_found() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, "LocalDS_0").await;
    let err = client
        .register_disk_idempotent(&ds, "kubevols/nope.vmdk", "nope")
        .await
        .unwrap_err();
    assert!(
        matches!(&err, VsphereError::DiskNotFound { path, .. } if path == "kubevols/nope.vmdk"),
        "{err:?}"
    );
    assert!(
        !client
            .datastore_file_exists(&ds, "kubevols/nope.vmdk")
            .await
            .unwrap()
    );
    // the raw call: vcsim reports a missing file as InvalidArgument(path)
    let err = client
        .register_disk(&ds, "kubevols/nope.vmdk", "nope")
        .await
        .unwrap_err();
    assert!(err.is_fault(FaultKind::InvalidArgument), "{err:?}");
}

#[tokio::test]
async fn retrieve_unknown_fcd_is_not_found_fault() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, "LocalDS_0").await;
    let err = client
        .retrieve_vstorage_object(&ds, "00000000-0000-0000-0000-000000000000")
        .await
        .unwrap_err();
    assert!(err.is_fault(FaultKind::NotFound), "{err:?}");
}

#[tokio::test]
async fn creating_existing_disk_is_file_already_exists_task_fault() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, "LocalDS_0").await;
    let path = create_disk_with_bytes(&mut client, &ds, "kubevols-c", "twice", b"y").await;
    let err = client
        .create_virtual_disk(&ds, &path, 1024)
        .await
        .unwrap_err();
    assert!(matches!(err, VsphereError::TaskFailed { .. }), "{err:?}");
    assert!(err.is_fault(FaultKind::FileAlreadyExists), "{err:?}");
}

#[tokio::test]
async fn cns_create_volume_with_backing_disk_id_then_query_it_back_bytes_unchanged() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, SPACE_DATASTORE).await;
    let bytes = known_bytes(7);
    let path = create_disk_with_bytes(&mut client, &ds, "kube vols cns", "disk", &bytes).await;
    let fcd = client
        .register_disk_idempotent(&ds, &path, "pv-cns")
        .await
        .unwrap()
        .object
        .id;
    let cluster = ContainerCluster {
        cluster_id: "csi-migrate-test".into(),
        vsphere_user: USER.into(),
    };
    let created = client
        .cns_create_block_volume("pv-cns", &BackingDisk::DiskId(fcd.clone()), &cluster)
        .await
        .unwrap();
    assert_eq!(created.volume_id, fcd);
    let volumes = client.cns_query_volumes(&[&fcd]).await.unwrap();
    assert_eq!(volumes.len(), 1, "{volumes:?}");
    assert_eq!(volumes[0].volume_id, fcd);
    assert_eq!(volumes[0].volume_type, "BLOCK");
    assert!(
        client
            .cns_query_volumes(&["no-such-volume"])
            .await
            .unwrap()
            .is_empty()
    );
    let flat = "kube vols cns/disk-flat.vmdk";
    assert_eq!(
        client.download_datastore_file(&ds, flat).await.unwrap(),
        bytes
    );
}

#[tokio::test]
async fn register_cns_volume_from_in_tree_path_is_idempotent() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, SPACE_DATASTORE).await;
    let bytes = known_bytes(9);
    let path = create_disk_with_bytes(&mut client, &ds, "kubevols-e2e", "pvc-1", &bytes).await;
    // datastore-cluster prefix as the CSI driver accepts it
    let in_tree = VolumePath::parse(&format!("[StoragePod/{SPACE_DATASTORE}] {path}")).unwrap();
    let dcs = vec!["NoSuchDC".to_owned(), "DC0".to_owned()];
    let first = client
        .register_cns_volume(&in_tree, &dcs, "cluster-1")
        .await
        .unwrap();
    assert_eq!(first.datacenter, "DC0");
    assert!(first.used_register_disk, "vcsim reports API 6.5");
    assert!(
        !first.protected_from_vm_delete,
        "vcsim has no SetVStorageObjectControlFlags; the record must say so"
    );
    let second = client
        .register_cns_volume(&in_tree, &dcs, "cluster-1")
        .await
        .unwrap();
    assert_eq!(second.volume_id, first.volume_id);
    // exactly one FCD is backed by this VMDK (other tests add FCDs to the datastore concurrently)
    assert_eq!(
        fcds_backed_by(&mut client, &ds, &format!("[{SPACE_DATASTORE}] {path}")).await,
        1
    );
    // vcsim files a re-created CNS volume under an arbitrary datastore, so the id can be
    // listed more than once; real CNS answers CnsAlreadyRegisteredFault instead.
    let volumes = client.cns_query_volumes(&[&first.volume_id]).await.unwrap();
    assert!(!volumes.is_empty());
    assert!(volumes.iter().all(|v| v.volume_id == first.volume_id));
    let on_disk =
        std::fs::read(vcsim().datastore_dirs[SPACE_DATASTORE].join("kubevols-e2e/pvc-1-flat.vmdk"))
            .unwrap();
    assert_eq!(on_disk, bytes);

    // a missing VMDK fails in every datacenter, naming the path
    let missing = VolumePath::parse("[LocalDS_0] kubevols/absent.vmdk").unwrap();
    let err = client
        .register_cns_volume(&missing, &["DC0".to_owned()], "cluster-1")
        .await
        .unwrap_err();
    assert!(
        matches!(err, VsphereError::RegistrationFailed { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("absent.vmdk"), "{err}");
}

#[tokio::test]
async fn cns_call_without_session_is_refused_locally() {
    install_crypto_provider();
    let mut client = VcenterClient::new(&vcsim().url, ClientOptions::default()).unwrap();
    let err = client.cns_query_volumes(&["x"]).await.unwrap_err();
    assert!(matches!(err, VsphereError::NotLoggedIn { .. }), "{err:?}");
}

#[tokio::test]
async fn vcsim_lacks_set_vstorage_object_control_flags_method_not_found() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, "LocalDS_0").await;
    let path =
        create_disk_with_bytes(&mut client, &ds, "kubevols-flags", "pvc-f", &known_bytes(3)).await;
    let registered = client
        .register_disk_idempotent(&ds, &path, "pvc-f")
        .await
        .unwrap();
    let err = client
        .set_keep_after_delete_vm(&ds, &registered.object.id)
        .await
        .unwrap_err();
    assert!(err.is_fault(FaultKind::MethodNotFound), "{err:?}");
}

#[tokio::test]
async fn gathers_check_facts_from_vcsim_datastores_vmdks_policies_and_version() {
    let mut client = logged_in_client().await;
    let ds = datastore(&mut client, SPACE_DATASTORE).await;
    let path = create_disk_with_bytes(
        &mut client,
        &ds,
        "kubevols-facts",
        "pvc-ok",
        &known_bytes(5),
    )
    .await;
    let present = format!("[{SPACE_DATASTORE}] {path}");
    let absent = format!("[{SPACE_DATASTORE}] kubevols-facts/absent.vmdk");
    let no_datastore = "[NoSuchDatastore] kubevols/a.vmdk".to_owned();
    let paths: Vec<VolumePath> = [&present, &absent, &no_datastore]
        .iter()
        .map(|p| VolumePath::parse(p).unwrap())
        .collect();
    let facts = client
        .gather_facts(&paths, &["NoSuchDC".to_owned(), "DC0".to_owned()], true)
        .await
        .unwrap();
    let check = |p: &str| csi_migrate_vsphere::check_volume("pv", p, &facts).map(|f| f.code);
    assert_eq!(check(&present), None);
    assert_eq!(
        check(&absent),
        Some(csi_migrate_vsphere::CheckCode::VmdkMissing)
    );
    assert_eq!(
        check(&no_datastore),
        Some(csi_migrate_vsphere::CheckCode::DatastoreMissing)
    );
    // vcsim serves PBM with its canned policies
    let policies = facts.storage_policies.clone().expect("vcsim answers PBM");
    assert!(
        policies.contains("vSAN Default Storage Policy"),
        "{policies:?}"
    );
    assert!(
        csi_migrate_vsphere::check_storage_policy("c", Some("vSAN Default Storage Policy"), &facts)
            .is_none()
    );
    assert!(csi_migrate_vsphere::check_storage_policy("c", Some("gold"), &facts).is_some());
    // vcsim's VPX model reports API 6.5: too old to register for the CSI driver
    assert_eq!(facts.about.api_version, "6.5");
    assert!(csi_migrate_vsphere::check_version("vcsim", &facts.about).is_some());
}
