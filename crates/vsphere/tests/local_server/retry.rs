//! Retries with backoff against a tiny local HTTP server that misbehaves on purpose:
//! transient failures are retried until the server answers, SOAP faults are final.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use csi_migrate_vsphere::{ClientOptions, FaultKind, VcenterClient, VsphereError};
use tokio::net::TcpListener;

use super::{read_request, respond};

/// What the server does with the n-th request (0-based).
#[derive(Clone, Copy)]
enum Answer {
    /// Close the connection without a response.
    Hangup,
    /// Wait this long, then answer with service content (longer than the request timeout
    /// makes the client give up on that attempt).
    Stall(Duration),
    /// HTTP status with a plain-text body (a proxy's error page).
    Status(u16),
    /// `RetrieveServiceContent` answered.
    ServiceContent,
    /// HTTP 500 carrying a SOAP `InvalidLogin` fault.
    Fault,
}

const SERVICE_CONTENT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><RetrieveServiceContentResponse xmlns="urn:vim25"><returnval><about><fullName>VMware vCenter Server 7.0.3</fullName><version>7.0.3</version><build>1</build><apiVersion>7.0.3.0</apiVersion></about><sessionManager type="SessionManager">SessionManager</sessionManager><searchIndex type="SearchIndex">SearchIndex</searchIndex><propertyCollector type="PropertyCollector">propertyCollector</propertyCollector></returnval></RetrieveServiceContentResponse></soapenv:Body></soapenv:Envelope>"#;

const LOGIN_FAULT: &str = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>Cannot complete login due to an incorrect user name or password.</faultstring><detail><InvalidLoginFault xmlns="urn:vim25" xsi:type="InvalidLogin"></InvalidLoginFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;

/// Serves `script(n)` for the n-th request; returns the URL and the request counter.
async fn serve(
    script: impl Fn(usize) -> Answer + Send + Sync + 'static,
) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    let script = Arc::new(script);
    tokio::spawn(async move {
        loop {
            let Ok((mut socket, _)) = listener.accept().await else {
                return;
            };
            let n = counter.fetch_add(1, Ordering::SeqCst);
            let answer = script(n);
            tokio::spawn(async move {
                read_request(&mut socket).await;
                let (status, body) = match answer {
                    Answer::Hangup => return,
                    Answer::Stall(delay) => {
                        tokio::time::sleep(delay).await;
                        (200, SERVICE_CONTENT.to_owned())
                    }
                    Answer::Status(status) => (status, "upstream unavailable".to_owned()),
                    Answer::ServiceContent => (200, SERVICE_CONTENT.to_owned()),
                    Answer::Fault => (500, LOGIN_FAULT.to_owned()),
                };
                respond(&mut socket, status, "", &body).await;
            });
        }
    });
    (url, count)
}

fn fast_retries() -> ClientOptions {
    ClientOptions {
        request_timeout: Duration::from_millis(400),
        max_attempts: 4,
        retry_base_delay: Duration::from_millis(5),
        retry_max_delay: Duration::from_millis(20),
        ..ClientOptions::default()
    }
}

fn client(url: &str) -> VcenterClient {
    let _ = rustls::crypto::ring::default_provider().install_default();
    VcenterClient::new(url, fast_retries()).unwrap()
}

#[tokio::test]
async fn http_503_without_fault_is_retried_until_the_server_answers() {
    let (url, count) = serve(|n| {
        if n < 2 {
            Answer::Status(503)
        } else {
            Answer::ServiceContent
        }
    })
    .await;
    let mut client = client(&url);
    let content = client.retrieve_service_content().await.unwrap();
    assert_eq!(content.about.api_version, "7.0.3.0");
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn dropped_connections_and_timeouts_are_retried_until_the_server_answers() {
    let (url, count) = serve(|n| match n {
        0 => Answer::Hangup,
        1 => Answer::Stall(Duration::from_secs(2)),
        _ => Answer::ServiceContent,
    })
    .await;
    let mut client = client(&url);
    client.retrieve_service_content().await.unwrap();
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn a_soap_fault_is_never_retried() {
    let (url, count) = serve(|_| Answer::Fault).await;
    let mut client = client(&url);
    let err = client.retrieve_service_content().await.unwrap_err();
    assert!(err.is_fault(FaultKind::InvalidLogin), "{err:?}");
    assert_eq!(count.load(Ordering::SeqCst), 1, "a fault is final");
}

#[tokio::test]
async fn persistent_5xx_gives_up_after_max_attempts_within_bounded_time() {
    let (url, count) = serve(|_| Answer::Status(502)).await;
    let mut client = client(&url);
    let started = Instant::now();
    let err = client.retrieve_service_content().await.unwrap_err();
    assert!(
        matches!(err, VsphereError::HttpStatus { status: 502, .. }),
        "{err:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 4);
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn client_errors_like_404_are_not_retried() {
    let (url, count) = serve(|_| Answer::Status(404)).await;
    let mut client = client(&url);
    let err = client.retrieve_service_content().await.unwrap_err();
    assert!(
        matches!(err, VsphereError::HttpStatus { status: 404, .. }),
        "{err:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn connection_refused_is_a_transport_error_after_bounded_retries() {
    // a port nobody listens on any more
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/sdk", listener.local_addr().unwrap());
    drop(listener);
    let mut client = client(&url);
    let started = Instant::now();
    let err = client.retrieve_service_content().await.unwrap_err();
    assert!(matches!(err, VsphereError::Transport { .. }), "{err:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
