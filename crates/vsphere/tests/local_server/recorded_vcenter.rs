//! What vcsim cannot show, against recorded real-vCenter answers served by a tiny local
//! HTTP server: the `keepAfterDeleteVm` control flag (vcsim answers `MethodNotFound`) and
//! the 8.0U3 registration that sets it by itself.

use std::sync::{Arc, Mutex};

use csi_migrate_vsphere::{ClientOptions, Credentials, VcenterClient, VolumePath};
use tokio::net::TcpListener;

use super::{read_request, respond};

const ENVELOPE_START: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body>"#;
const ENVELOPE_END: &str = "</soapenv:Body></soapenv:Envelope>";
const FCD_ID: &str = "1f0e9c6a-0000-4000-8000-0000000000aa";

/// A recorded vCenter of API `api_version`; `set_flags` is its answer to
/// `SetVStorageObjectControlFlags` (`None`: `MethodNotFound`, as vcsim).
fn answer(api_version: &str, set_flags_supported: bool, method: &str, body: &str) -> (u16, String) {
    let ok = |inner: String| (200, format!("{ENVELOPE_START}{inner}{ENVELOPE_END}"));
    match method {
        "RetrieveServiceContent" => ok(format!(
            r#"<RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><about><fullName>VMware vCenter Server</fullName><version>{api_version}</version><build>1</build><apiVersion>{api_version}</apiVersion></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector><vStorageObjectManager type="VcenterVStorageObjectManager">VStorageObjectManager</vStorageObjectManager></returnval></RetrieveServiceContentResponse>"#
        )),
        "Login" => ok(r#"<LoginResponse xmlns="urn:vim25"><returnval><key>k</key><userName>u</userName></returnval></LoginResponse>"#.into()),
        "Logout" => ok(r#"<LogoutResponse xmlns="urn:vim25"></LogoutResponse>"#.into()),
        "FindByInventoryPath" if body.contains("/datastore/") => ok(
            r#"<FindByInventoryPathResponse xmlns="urn:vim25"><returnval type="Datastore">datastore-11</returnval></FindByInventoryPathResponse>"#.into(),
        ),
        "FindByInventoryPath" => ok(
            r#"<FindByInventoryPathResponse xmlns="urn:vim25"><returnval type="Datacenter">datacenter-3</returnval></FindByInventoryPathResponse>"#.into(),
        ),
        "RegisterDisk" => ok(format!(
            r#"<RegisterDiskResponse xmlns="urn:vim25"><returnval><config><id><id>{FCD_ID}</id></id><name>[ds1] kubevols/a.vmdk</name><capacityInMB>1024</capacityInMB><backing xsi:type="BaseConfigInfoDiskFileBackingInfo"><datastore type="Datastore">datastore-11</datastore><filePath>[ds1] kubevols/a.vmdk</filePath></backing></config></returnval></RegisterDiskResponse>"#
        )),
        "CnsCreateVolume" => ok(
            r#"<CnsCreateVolumeResponse xmlns="urn:vsan"><returnval type="Task">task-7</returnval></CnsCreateVolumeResponse>"#.into(),
        ),
        "RetrievePropertiesEx" => ok(format!(
            r#"<RetrievePropertiesExResponse xmlns="urn:vim25"><returnval><objects><obj type="Task">task-7</obj><propSet><name>info</name><val xsi:type="TaskInfo"><state>success</state><result xsi:type="CnsVolumeOperationBatchResult"><volumeResults xsi:type="CnsVolumeCreateResult"><volumeId><id>{FCD_ID}</id></volumeId></volumeResults></result></val></propSet></objects></returnval></RetrievePropertiesExResponse>"#
        )),
        "SetVStorageObjectControlFlags" if set_flags_supported => ok(
            r#"<SetVStorageObjectControlFlagsResponse xmlns="urn:vim25"></SetVStorageObjectControlFlagsResponse>"#.into(),
        ),
        _ => (
            500,
            format!(
                r#"{ENVELOPE_START}<soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>{method} not implemented</faultstring><detail><MethodNotFoundFault xmlns="urn:vim25" xsi:type="MethodNotFound"><receiver>x</receiver><method>{method}</method></MethodNotFoundFault></detail></soapenv:Fault>{ENVELOPE_END}"#
            ),
        ),
    }
}

/// Serves the recorded vCenter; returns its URL and every request as `METHOD body`.
async fn recorded_vcenter(
    api_version: &'static str,
    set_flags_supported: bool,
) -> (String, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let log = log.clone();
            tokio::spawn(async move {
                let (head, body) = read_request(&mut socket).await;
                let verb = head
                    .split_whitespace()
                    .next()
                    .unwrap_or_default()
                    .to_owned();
                let (status, text) = if verb == "HEAD" {
                    (200, String::new()) // the VMDK exists
                } else {
                    let method = soap_method(&body);
                    log.lock().unwrap().push(format!("{method} {body}"));
                    answer(api_version, set_flags_supported, &method, &body)
                };
                let cookie = "Set-Cookie: vmware_soap_session=\"abc\"; Path=/\r\n";
                respond(&mut socket, status, cookie, &text).await;
            });
        }
    });
    (url, seen)
}

/// The first element inside `<Body>`.
fn soap_method(body: &str) -> String {
    let after = body.split("<Body>").nth(1).unwrap_or_default();
    after
        .trim_start_matches('<')
        .split([' ', '>', '/'])
        .next()
        .unwrap_or_default()
        .to_owned()
}

async fn register(url: &str) -> csi_migrate_vsphere::CnsRegistration {
    let _ = rustls::crypto::ring::default_provider().install_default();
    let mut client = VcenterClient::new(url, ClientOptions::default()).unwrap();
    client.login(&Credentials::new("u", "p")).await.unwrap();
    client
        .register_cns_volume(
            &VolumePath::parse("[ds1] kubevols/a.vmdk").unwrap(),
            &["DC1".to_owned()],
            "cluster-1",
        )
        .await
        .unwrap()
}

fn calls_of<'a>(seen: &'a [String], method: &str) -> Vec<&'a String> {
    seen.iter()
        .filter(|s| s.starts_with(&format!("{method} ")))
        .collect()
}

#[tokio::test]
async fn recorded_vcenter_7_0_0_registers_disk_then_sets_keep_after_delete_vm() {
    let (url, seen) = recorded_vcenter("7.0.0.0", true).await;
    let registration = register(&url).await;
    assert_eq!(registration.volume_id, FCD_ID);
    assert!(registration.used_register_disk);
    assert!(registration.protected_from_vm_delete);
    let seen = seen.lock().unwrap().clone();
    let set = calls_of(&seen, "SetVStorageObjectControlFlags");
    assert_eq!(set.len(), 1, "{seen:#?}");
    for wanted in [
        &format!("<id><id>{FCD_ID}</id></id>"),
        r#"<datastore type="Datastore">datastore-11</datastore>"#,
        "<controlFlags>keepAfterDeleteVm</controlFlags>",
        r#"<_this type="VcenterVStorageObjectManager">VStorageObjectManager</_this>"#,
    ] {
        assert!(set[0].contains(wanted), "{wanted} missing from {}", set[0]);
    }
    // the flag is set after the disk is a CNS volume
    let position = |m: &str| seen.iter().position(|s| s.starts_with(m)).unwrap();
    assert!(position("CnsCreateVolume") < position("SetVStorageObjectControlFlags"));
}

#[tokio::test]
async fn recorded_vcenter_8_0_3_url_registration_is_protected_without_setting_flags() {
    let (url, seen) = recorded_vcenter("8.0.3.0", true).await;
    let registration = register(&url).await;
    assert_eq!(registration.volume_id, FCD_ID);
    assert!(!registration.used_register_disk);
    assert!(registration.protected_from_vm_delete);
    let seen = seen.lock().unwrap().clone();
    assert!(calls_of(&seen, "SetVStorageObjectControlFlags").is_empty());
    assert!(calls_of(&seen, "RegisterDisk").is_empty());
    assert!(calls_of(&seen, "CnsCreateVolume")[0].contains("<backingDiskUrlPath>"));
}

#[tokio::test]
async fn vcenter_without_set_control_flags_like_vcsim_registers_unprotected() {
    let (url, seen) = recorded_vcenter("7.0.0.0", false).await;
    let registration = register(&url).await;
    assert_eq!(registration.volume_id, FCD_ID);
    assert!(
        !registration.protected_from_vm_delete,
        "the CSI driver sets the flag on attach when the record says false"
    );
    assert_eq!(
        calls_of(&seen.lock().unwrap(), "SetVStorageObjectControlFlags").len(),
        1
    );
}
