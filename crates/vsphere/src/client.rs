//! vCenter SOAP client: session, inventory lookup, datastore files, first-class disks, tasks.

use std::fmt;
use std::time::Duration;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use reqwest::header::{CONTENT_TYPE, COOKIE, SET_COOKIE};
use reqwest::{StatusCode, Url};

use crate::fault::{Fault, FaultKind};
use crate::xml::{self, Element, XmlError, escape};

/// Name of vCenter's session cookie.
const SESSION_COOKIE: &str = "vmware_soap_session";
/// `SOAPAction` sent on every call (what govmomi sends).
const SOAP_ACTION: &str = "urn:vim25/7.0";

/// Characters escaped in URL path segments and query values: everything but RFC 3986
/// unreserved characters (like Go's `url.PathEscape` plus `/` inside names).
const URL_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Errors from talking to vCenter.
#[derive(Debug, thiserror::Error)]
pub enum VsphereError {
    /// The vCenter URL given to [`VcenterClient::new`] is not an absolute http(s) URL, or
    /// carries user info (credentials belong in [`Credentials`]).
    #[error("invalid vCenter URL: {reason}")]
    InvalidUrl {
        /// What is wrong with it.
        reason: String,
    },
    /// The HTTP client could not be built (e.g. no rustls crypto provider installed).
    #[error("cannot build HTTP client: {0}")]
    HttpClient(#[source] reqwest::Error),
    /// The request could not be sent or the response not read (connection refused, timeout,
    /// TLS failure), after retrying connection failures.
    #[error("{operation}: transport error: {source}")]
    Transport {
        /// The SOAP method or HTTP action.
        operation: String,
        /// The underlying error (never contains credentials: they are only in the body).
        #[source]
        source: reqwest::Error,
    },
    /// vCenter answered with a SOAP fault.
    #[error("{operation}: vCenter fault {fault}")]
    Fault {
        /// The SOAP method.
        operation: String,
        /// The fault, with its type name and message.
        fault: Box<Fault>,
    },
    /// vCenter answered with an HTTP error status that carried no SOAP fault.
    #[error("{operation}: HTTP {status}")]
    HttpStatus {
        /// The SOAP method or HTTP action.
        operation: String,
        /// The HTTP status code.
        status: u16,
    },
    /// The response was not the XML shape we expect.
    #[error("{operation}: unexpected response: {detail}")]
    Malformed {
        /// The SOAP method.
        operation: String,
        /// What was missing or wrong.
        detail: String,
    },
    /// The response body was not XML.
    #[error("{operation}: {source}")]
    Xml {
        /// The SOAP method.
        operation: String,
        /// The parse error.
        #[source]
        source: XmlError,
    },
    /// A call that needs a session was made before [`VcenterClient::login`].
    #[error("{operation}: not logged in")]
    NotLoggedIn {
        /// The SOAP method.
        operation: String,
    },
    /// No datacenter has this inventory path.
    #[error("datacenter {name:?} not found")]
    DatacenterNotFound {
        /// The inventory path looked up.
        name: String,
    },
    /// The datacenter has no datastore with this name.
    #[error("datastore {name:?} not found in datacenter {datacenter:?}")]
    DatastoreNotFound {
        /// The datacenter searched.
        datacenter: String,
        /// The datastore name looked up.
        name: String,
    },
    /// The VMDK descriptor does not exist on the datastore.
    #[error("disk [{datastore}] {path} does not exist")]
    DiskNotFound {
        /// Datastore name.
        datastore: String,
        /// Datastore-relative path.
        path: String,
    },
    /// A task finished in state `error`.
    #[error("{operation}: task {task} failed: {fault}")]
    TaskFailed {
        /// The method that started the task.
        operation: String,
        /// Task reference value, e.g. `task-12`.
        task: String,
        /// The task's error.
        fault: Box<Fault>,
    },
    /// A CNS batch operation finished but reported a fault for the volume.
    #[error("{operation}: CNS volume fault {fault}")]
    CnsVolumeFault {
        /// The CNS method.
        operation: String,
        /// The per-volume fault.
        fault: Box<Fault>,
    },
    /// Registering an in-tree volume path failed in every datacenter tried.
    #[error("cannot register {volume_path:?} with CNS: {attempts}")]
    RegistrationFailed {
        /// The in-tree `volumePath`.
        volume_path: String,
        /// What went wrong per datacenter, `dc: error; …`.
        attempts: String,
    },
    /// A task did not finish within the client's task timeout.
    #[error("{operation}: task {task} still running after {waited:?}")]
    TaskTimeout {
        /// The method that started the task.
        operation: String,
        /// Task reference value.
        task: String,
        /// How long we waited.
        waited: Duration,
    },
}

impl VsphereError {
    /// The SOAP fault, if this error is one (directly or as a task's error).
    pub fn fault(&self) -> Option<&Fault> {
        match self {
            Self::Fault { fault, .. }
            | Self::TaskFailed { fault, .. }
            | Self::CnsVolumeFault { fault, .. } => Some(fault.as_ref()),
            _ => None,
        }
    }

    /// Whether this is a fault of the given kind.
    pub fn is_fault(&self, kind: FaultKind) -> bool {
        self.fault().is_some_and(|f| f.kind == kind)
    }
}

/// A password that never shows up in `Debug` output and has no `Display`.
#[derive(Clone)]
pub struct Password(String);

impl Password {
    /// Wraps a password.
    pub fn new(password: impl Into<String>) -> Self {
        Self(password.into())
    }

    /// The secret itself; only for putting it on the wire.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for Password {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("<redacted>")
    }
}

/// vCenter login credentials; `Debug` redacts the password.
#[derive(Clone, Debug)]
pub struct Credentials {
    /// User name, e.g. `administrator@vsphere.local`.
    pub user: String,
    /// Password (redacted in `Debug`).
    pub password: Password,
}

impl Credentials {
    /// Credentials from a user name and password.
    pub fn new(user: impl Into<String>, password: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            password: Password::new(password),
        }
    }
}

/// Options for [`VcenterClient::new`].
#[derive(Clone, Debug)]
pub struct ClientOptions {
    /// Per-attempt timeout of one HTTP request.
    pub request_timeout: Duration,
    /// How many times one call is sent at most when it fails transiently (transport error,
    /// or an HTTP 5xx/429 without a SOAP fault). A SOAP fault is never retried. So one call
    /// takes at most `max_attempts × request_timeout` plus the backoff delays.
    pub max_attempts: u32,
    /// Delay before the first retry; doubled for each further one.
    pub retry_base_delay: Duration,
    /// Upper bound of one backoff delay.
    pub retry_max_delay: Duration,
    /// How long [`VcenterClient::wait_for_task`] polls before giving up.
    pub task_timeout: Duration,
    /// Accept any server certificate (`--vcenter-insecure`).
    pub accept_invalid_certs: bool,
    /// Extra trusted CA certificates, PEM.
    pub ca_bundle_pem: Option<Vec<u8>>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        Self {
            request_timeout: Duration::from_secs(60),
            max_attempts: 4,
            retry_base_delay: Duration::from_millis(250),
            retry_max_delay: Duration::from_secs(4),
            task_timeout: Duration::from_secs(300),
            accept_invalid_certs: false,
            ca_bundle_pem: None,
        }
    }
}

/// A managed-object reference (`type` + opaque value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MoRef {
    /// Managed-object type, e.g. `Datastore`.
    pub kind: String,
    /// Opaque id, e.g. `datastore-12` (vcsim: a directory path).
    pub value: String,
}

impl MoRef {
    pub(crate) fn from_element(element: &Element) -> Self {
        Self {
            kind: element.attribute("type").unwrap_or_default().to_owned(),
            value: element.text.trim().to_owned(),
        }
    }

    /// Serialises as `<tag type="Kind">value</tag>`.
    pub(crate) fn to_xml(&self, tag: &str) -> String {
        format!(
            r#"<{tag} type="{}">{}</{tag}>"#,
            escape(&self.kind),
            escape(&self.value)
        )
    }
}

/// `ServiceContent.about`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AboutInfo {
    /// e.g. `VMware vCenter Server 6.5.0 build-5973321`.
    pub full_name: String,
    /// Product version, e.g. `6.5.0`.
    pub version: String,
    /// Build number.
    pub build: String,
    /// API version, e.g. `6.5`.
    pub api_version: String,
}

/// The parts of `ServiceContent` this client uses.
#[derive(Clone, Debug)]
pub struct ServiceContent {
    /// Product and API version.
    pub about: AboutInfo,
    /// `SessionManager`.
    pub session_manager: MoRef,
    /// `SearchIndex`.
    pub search_index: MoRef,
    /// `PropertyCollector`.
    pub property_collector: MoRef,
    /// `FileManager`.
    pub file_manager: Option<MoRef>,
    /// `VirtualDiskManager`.
    pub virtual_disk_manager: Option<MoRef>,
    /// `VcenterVStorageObjectManager` (first-class disks).
    pub vstorage_object_manager: Option<MoRef>,
}

/// A datacenter found by inventory path.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datacenter {
    /// Inventory path as looked up, e.g. `DC0` or `folder/DC0` (used as `dcPath`).
    pub path: String,
    /// Its reference.
    pub moref: MoRef,
}

/// A datastore found by name inside a datacenter.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Datastore {
    /// Datastore name, e.g. `LocalDS_0`.
    pub name: String,
    /// The datacenter it was found in.
    pub datacenter: Datacenter,
    /// Its reference.
    pub moref: MoRef,
}

impl Datastore {
    /// `[name] path`, the datastore path form vCenter APIs take.
    pub fn datastore_path(&self, path: &str) -> String {
        format!("[{}] {}", self.name, path)
    }
}

/// A first-class disk (`VStorageObject`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VStorageObject {
    /// FCD id (UUID); becomes the CNS volume id and the CSI volume handle.
    pub id: String,
    /// Object name.
    pub name: String,
    /// Backing file as `[datastore] folder/disk.vmdk`.
    pub file_path: String,
    /// Capacity in MiB (vcsim reports 0 for registered disks).
    pub capacity_mb: i64,
    /// The datastore holding it.
    pub datastore: Option<MoRef>,
}

impl VStorageObject {
    fn from_config(operation: &str, config: &Element) -> Result<Self, VsphereError> {
        let malformed = |detail: &str| VsphereError::Malformed {
            operation: operation.to_owned(),
            detail: detail.to_owned(),
        };
        let id = config
            .path_text(&["id", "id"])
            .ok_or_else(|| malformed("config has no id/id"))?;
        Ok(Self {
            id: id.to_owned(),
            name: config.path_text(&["name"]).unwrap_or_default().to_owned(),
            file_path: config
                .path_text(&["backing", "filePath"])
                .unwrap_or_default()
                .to_owned(),
            capacity_mb: config
                .path_text(&["capacityInMB"])
                .and_then(|c| c.parse().ok())
                .unwrap_or(0),
            datastore: config
                .path(&["backing", "datastore"])
                .map(MoRef::from_element),
        })
    }
}

/// Result of [`VcenterClient::register_disk_idempotent`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Registration {
    /// The first-class disk.
    pub object: VStorageObject,
    /// `false` when the disk was already registered and the existing id was returned.
    pub newly_registered: bool,
}

/// Session state; `Debug` redacts the cookie.
#[derive(Clone)]
struct Session {
    /// `vmware_soap_session=<value>` exactly as to send in `Cookie`.
    cookie_header: String,
    /// The bare session key (quotes removed), for the CNS `vcSessionCookie` SOAP header.
    key: String,
}

impl fmt::Debug for Session {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Session(<redacted>)")
    }
}

/// A vCenter SOAP client. Needs a rustls crypto provider installed in the process
/// (`rustls::crypto::ring::default_provider().install_default()`) before [`VcenterClient::new`].
#[derive(Debug)]
pub struct VcenterClient {
    http: reqwest::Client,
    /// Scheme + authority of vCenter, e.g. `https://vc.example.com`.
    base: Url,
    options: ClientOptions,
    service: Option<ServiceContent>,
    session: Option<Session>,
    user: Option<String>,
}

/// Which SOAP endpoint a call goes to.
#[derive(Clone, Copy)]
pub(crate) enum Endpoint {
    /// vim25 on `/sdk`.
    Vim,
    /// CNS on `/vsanHealth` (authenticated by the session cookie and the
    /// `vcSessionCookie` SOAP header a real vCenter's vsanHealth service needs).
    Cns,
    /// Storage policies (SPBM) on `/pbm`, authenticated like CNS.
    Pbm,
}

impl VcenterClient {
    /// A client for the vCenter at `url` (`https://host[:port]`, optionally with `/sdk`).
    pub fn new(url: &str, options: ClientOptions) -> Result<Self, VsphereError> {
        let parsed = Url::parse(url).map_err(|e| VsphereError::InvalidUrl {
            reason: e.to_string(),
        })?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
            return Err(VsphereError::InvalidUrl {
                reason: "expected an http(s) URL with a host".into(),
            });
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(VsphereError::InvalidUrl {
                reason: "the URL must not contain user info; pass credentials separately".into(),
            });
        }
        let mut base = parsed;
        base.set_path("/");
        base.set_query(None);
        base.set_fragment(None);

        let mut builder = reqwest::Client::builder()
            .timeout(options.request_timeout)
            .connect_timeout(Duration::from_secs(10))
            .danger_accept_invalid_certs(options.accept_invalid_certs);
        if let Some(pem) = &options.ca_bundle_pem {
            for cert in
                reqwest::Certificate::from_pem_bundle(pem).map_err(VsphereError::HttpClient)?
            {
                builder = builder.add_root_certificate(cert);
            }
        }
        let http = builder.build().map_err(VsphereError::HttpClient)?;
        Ok(Self {
            http,
            base,
            options,
            service: None,
            session: None,
            user: None,
        })
    }

    /// `ServiceContent` from the last [`VcenterClient::retrieve_service_content`] (or login).
    pub fn service_content(&self) -> Option<&ServiceContent> {
        self.service.as_ref()
    }

    /// The user name of the current session (CNS records it as the cluster's `vSphereUser`).
    pub fn user(&self) -> Option<&str> {
        self.user.as_deref()
    }

    /// Whether a session is held.
    pub fn is_logged_in(&self) -> bool {
        self.session.is_some()
    }

    /// The bare session key, for callers that talk to other vCenter endpoints.
    pub fn session_key(&self) -> Option<&str> {
        self.session.as_ref().map(|s| s.key.as_str())
    }

    fn endpoint_url(&self, endpoint: Endpoint) -> Result<Url, VsphereError> {
        let path = match endpoint {
            Endpoint::Vim => "sdk",
            Endpoint::Cns => "vsanHealth",
            Endpoint::Pbm => "pbm",
        };
        self.base.join(path).map_err(|e| VsphereError::InvalidUrl {
            reason: e.to_string(),
        })
    }

    /// Sends one SOAP call and returns the element inside `Body` (e.g. `LoginResponse`).
    pub(crate) async fn call(
        &mut self,
        endpoint: Endpoint,
        operation: &str,
        body: &str,
    ) -> Result<(Element, reqwest::header::HeaderMap), VsphereError> {
        let url = self.endpoint_url(endpoint)?;
        let header = match (endpoint, &self.session) {
            (Endpoint::Cns | Endpoint::Pbm, Some(session)) => format!(
                "<Header><vcSessionCookie>{}</vcSessionCookie></Header>",
                escape(&session.key)
            ),
            _ => String::new(),
        };
        let envelope = format!(
            r#"<?xml version="1.0" encoding="UTF-8"?><Envelope xmlns="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">{header}<Body>{body}</Body></Envelope>"#
        );
        let mut attempt = 1;
        loop {
            let outcome = self.send_soap(&url, &envelope).await;
            let retry = match &outcome {
                Err(e) => is_transient_transport_error(e),
                Ok(reply) => is_transient_status(reply.status, reply.fault.is_some()),
            };
            if !retry || attempt >= self.options.max_attempts.max(1) {
                return finish_soap(operation, outcome);
            }
            tokio::time::sleep(backoff_delay(
                attempt,
                self.options.retry_base_delay,
                self.options.retry_max_delay,
            ))
            .await;
            attempt += 1;
        }
    }

    /// One HTTP exchange of a SOAP call: the status, headers, parsed body and fault, if any.
    async fn send_soap(&self, url: &Url, envelope: &str) -> Result<SoapReply, reqwest::Error> {
        let mut request = self
            .http
            .post(url.clone())
            .header(CONTENT_TYPE, r#"text/xml; charset="utf-8""#)
            .header("SOAPAction", SOAP_ACTION)
            .body(envelope.to_owned());
        if let Some(session) = &self.session {
            request = request.header(COOKIE, session.cookie_header.clone());
        }
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let parsed = xml::parse(&text);
        let fault = parsed
            .as_ref()
            .ok()
            .and_then(|root| root.child("Body"))
            .and_then(|b| b.children.first())
            .filter(|element| element.name == "Fault")
            .map(Fault::from_soap_fault);
        Ok(SoapReply {
            status,
            headers,
            parsed,
            fault,
        })
    }

    pub(crate) async fn call_vim(
        &mut self,
        operation: &str,
        body: &str,
    ) -> Result<Element, VsphereError> {
        Ok(self.call(Endpoint::Vim, operation, body).await?.0)
    }

    pub(crate) fn require_session(&self, operation: &str) -> Result<(), VsphereError> {
        match self.session {
            Some(_) => Ok(()),
            None => Err(VsphereError::NotLoggedIn {
                operation: operation.to_owned(),
            }),
        }
    }

    pub(crate) fn malformed(operation: &str, detail: &str) -> VsphereError {
        VsphereError::Malformed {
            operation: operation.to_owned(),
            detail: detail.to_owned(),
        }
    }

    pub(crate) fn service(&self, operation: &str) -> Result<&ServiceContent, VsphereError> {
        self.service
            .as_ref()
            .ok_or_else(|| VsphereError::NotLoggedIn {
                operation: operation.to_owned(),
            })
    }

    /// `RetrieveServiceContent` on `ServiceInstance` (no session needed).
    pub async fn retrieve_service_content(&mut self) -> Result<&ServiceContent, VsphereError> {
        const OP: &str = "RetrieveServiceContent";
        let response = self
            .call_vim(OP, r#"<RetrieveServiceContent xmlns="urn:vim25"><_this type="ServiceInstance">ServiceInstance</_this></RetrieveServiceContent>"#)
            .await?;
        let content = response
            .child("returnval")
            .ok_or_else(|| Self::malformed(OP, "no returnval"))?;
        let moref = |name: &str| content.child(name).map(MoRef::from_element);
        let required =
            |name: &str| moref(name).ok_or_else(|| Self::malformed(OP, &format!("no {name}")));
        let about = content
            .child("about")
            .ok_or_else(|| Self::malformed(OP, "no about"))?;
        let text = |name: &str| about.path_text(&[name]).unwrap_or_default().to_owned();
        let service = ServiceContent {
            about: AboutInfo {
                full_name: text("fullName"),
                version: text("version"),
                build: text("build"),
                api_version: text("apiVersion"),
            },
            session_manager: required("sessionManager")?,
            search_index: required("searchIndex")?,
            property_collector: required("propertyCollector")?,
            file_manager: moref("fileManager"),
            virtual_disk_manager: moref("virtualDiskManager"),
            vstorage_object_manager: moref("vStorageObjectManager"),
        };
        Ok(self.service.insert(service))
    }

    /// `SessionManager.Login`; keeps the session cookie for later calls.
    pub async fn login(&mut self, credentials: &Credentials) -> Result<(), VsphereError> {
        const OP: &str = "Login";
        if self.service.is_none() {
            self.retrieve_service_content().await?;
        }
        let session_manager = self.service(OP)?.session_manager.to_xml("_this");
        let body = format!(
            r#"<Login xmlns="urn:vim25">{session_manager}<userName>{}</userName><password>{}</password></Login>"#,
            escape(&credentials.user),
            escape(credentials.password.expose())
        );
        let (_, headers) = match self.call(Endpoint::Vim, OP, &body).await {
            Ok(ok) => ok,
            Err(mut e) => {
                redact_secret(&mut e, credentials.password.expose());
                return Err(e);
            }
        };
        let cookie = headers
            .get_all(SET_COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .filter_map(|v| v.split(';').next())
            .map(str::trim)
            .find(|pair| pair.starts_with(&format!("{SESSION_COOKIE}=")))
            .ok_or_else(|| Self::malformed(OP, "no vmware_soap_session cookie in the response"))?;
        let key = cookie[SESSION_COOKIE.len() + 1..]
            .trim_matches('"')
            .to_owned();
        self.session = Some(Session {
            cookie_header: cookie.to_owned(),
            key,
        });
        self.user = Some(credentials.user.clone());
        Ok(())
    }

    /// `SessionManager.Logout`; forgets the session even if the call fails.
    pub async fn logout(&mut self) -> Result<(), VsphereError> {
        const OP: &str = "Logout";
        self.require_session(OP)?;
        let body = format!(
            r#"<Logout xmlns="urn:vim25">{}</Logout>"#,
            self.service(OP)?.session_manager.to_xml("_this")
        );
        let result = self.call_vim(OP, &body).await.map(|_| ());
        self.session = None;
        result
    }

    /// `SearchIndex.FindByInventoryPath`; `None` when nothing is at that path.
    async fn find_by_inventory_path(
        &mut self,
        operation: &str,
        path: &str,
    ) -> Result<Option<MoRef>, VsphereError> {
        self.require_session(operation)?;
        let body = format!(
            r#"<FindByInventoryPath xmlns="urn:vim25">{}<inventoryPath>{}</inventoryPath></FindByInventoryPath>"#,
            self.service(operation)?.search_index.to_xml("_this"),
            escape(path)
        );
        let response = self.call_vim(operation, &body).await?;
        Ok(response
            .child("returnval")
            .map(MoRef::from_element)
            .filter(|m| !m.value.is_empty()))
    }

    /// Finds a datacenter by inventory path (`DC0`, or `folder/DC0` for one inside a folder).
    /// A `/` inside a single name must be written `%2f`, as vCenter does.
    pub async fn find_datacenter(&mut self, path: &str) -> Result<Datacenter, VsphereError> {
        let found = self
            .find_by_inventory_path("FindDatacenter", path.trim_matches('/'))
            .await?;
        match found {
            Some(moref) if moref.kind == "Datacenter" => Ok(Datacenter {
                path: path.trim_matches('/').to_owned(),
                moref,
            }),
            _ => Err(VsphereError::DatacenterNotFound {
                name: path.to_owned(),
            }),
        }
    }

    /// Finds a datastore by name directly in the datacenter's datastore folder.
    pub async fn find_datastore(
        &mut self,
        datacenter: &Datacenter,
        name: &str,
    ) -> Result<Datastore, VsphereError> {
        let inventory_path = format!(
            "{}/datastore/{}",
            datacenter.path,
            escape_inventory_name(name)
        );
        let found = self
            .find_by_inventory_path("FindDatastore", &inventory_path)
            .await?;
        match found {
            Some(moref) if moref.kind == "Datastore" => Ok(Datastore {
                name: name.to_owned(),
                datacenter: datacenter.clone(),
                moref,
            }),
            _ => Err(VsphereError::DatastoreNotFound {
                datacenter: datacenter.path.clone(),
                name: name.to_owned(),
            }),
        }
    }

    /// `https://<vc host>/folder/<path>?dcPath=<dc>&dsName=<ds>`, every component
    /// percent-encoded; this is the URL `RegisterDisk` and CNS `backingDiskUrlPath` take.
    pub fn disk_url(&self, datastore: &Datastore, path: &str) -> String {
        let host = self.base.host_str().unwrap_or_default();
        let host = match self.base.port() {
            Some(port) => format!("{host}:{port}"),
            None => host.to_owned(),
        };
        format!("https://{host}/{}", folder_path_and_query(datastore, path))
    }

    /// The URL of a datastore file on this client's own endpoint.
    fn folder_url(&self, datastore: &Datastore, path: &str) -> Result<Url, VsphereError> {
        self.base
            .join(&folder_path_and_query(datastore, path))
            .map_err(|e| VsphereError::InvalidUrl {
                reason: e.to_string(),
            })
    }

    /// Sends one session-authenticated request on a datastore file's `/folder` URL.
    async fn send_folder(
        &self,
        method: reqwest::Method,
        datastore: &Datastore,
        path: &str,
        body: Option<Vec<u8>>,
        operation: &str,
    ) -> Result<reqwest::Response, VsphereError> {
        let session = self
            .session
            .as_ref()
            .ok_or_else(|| VsphereError::NotLoggedIn {
                operation: operation.into(),
            })?;
        let url = self.folder_url(datastore, path)?;
        let mut attempt = 1;
        loop {
            let mut request = self
                .http
                .request(method.clone(), url.clone())
                .header(COOKIE, session.cookie_header.clone());
            if let Some(body) = &body {
                request = request.body(body.clone());
            }
            let outcome = request.send().await;
            let retry = match &outcome {
                Err(e) => is_transient_transport_error(e),
                Ok(response) => is_transient_status(response.status(), false),
            };
            if !retry || attempt >= self.options.max_attempts.max(1) {
                return outcome.map_err(|source| VsphereError::Transport {
                    operation: operation.into(),
                    source,
                });
            }
            tokio::time::sleep(backoff_delay(
                attempt,
                self.options.retry_base_delay,
                self.options.retry_max_delay,
            ))
            .await;
            attempt += 1;
        }
    }

    /// Whether a file exists on the datastore (HTTP `HEAD` on `/folder`).
    pub async fn datastore_file_exists(
        &mut self,
        datastore: &Datastore,
        path: &str,
    ) -> Result<bool, VsphereError> {
        const OP: &str = "HEAD /folder";
        let response = self
            .send_folder(reqwest::Method::HEAD, datastore, path, None, OP)
            .await?;
        match response.status() {
            StatusCode::OK => Ok(true),
            StatusCode::NOT_FOUND => Ok(false),
            status => Err(VsphereError::HttpStatus {
                operation: OP.into(),
                status: status.as_u16(),
            }),
        }
    }

    /// Uploads bytes to a datastore file (HTTP `PUT` on `/folder`), replacing it.
    pub async fn upload_datastore_file(
        &mut self,
        datastore: &Datastore,
        path: &str,
        bytes: Vec<u8>,
    ) -> Result<(), VsphereError> {
        const OP: &str = "PUT /folder";
        let response = self
            .send_folder(reqwest::Method::PUT, datastore, path, Some(bytes), OP)
            .await?;
        if response.status().is_success() {
            Ok(())
        } else {
            Err(VsphereError::HttpStatus {
                operation: OP.into(),
                status: response.status().as_u16(),
            })
        }
    }

    /// Downloads a datastore file (HTTP `GET` on `/folder`).
    pub async fn download_datastore_file(
        &mut self,
        datastore: &Datastore,
        path: &str,
    ) -> Result<Vec<u8>, VsphereError> {
        const OP: &str = "GET /folder";
        let response = self
            .send_folder(reqwest::Method::GET, datastore, path, None, OP)
            .await?;
        if !response.status().is_success() {
            return Err(VsphereError::HttpStatus {
                operation: OP.into(),
                status: response.status().as_u16(),
            });
        }
        let bytes = response
            .bytes()
            .await
            .map_err(|source| VsphereError::Transport {
                operation: OP.into(),
                source,
            })?;
        Ok(bytes.to_vec())
    }

    /// `FileManager.MakeDirectory` (with parents) for a datastore-relative directory.
    pub async fn make_directory(
        &mut self,
        datastore: &Datastore,
        path: &str,
    ) -> Result<(), VsphereError> {
        const OP: &str = "MakeDirectory";
        self.require_session(OP)?;
        let manager = self
            .service(OP)?
            .file_manager
            .clone()
            .ok_or_else(|| Self::malformed(OP, "no FileManager"))?;
        let body = format!(
            r#"<MakeDirectory xmlns="urn:vim25">{}<name>{}</name>{}<createParentDirectories>true</createParentDirectories></MakeDirectory>"#,
            manager.to_xml("_this"),
            escape(&datastore.datastore_path(path)),
            datastore.datacenter.moref.to_xml("datacenter"),
        );
        self.call_vim(OP, &body).await.map(|_| ())
    }

    /// `VirtualDiskManager.CreateVirtualDisk_Task` (thin, lsiLogic) and waits for it.
    pub async fn create_virtual_disk(
        &mut self,
        datastore: &Datastore,
        path: &str,
        capacity_kb: u64,
    ) -> Result<(), VsphereError> {
        const OP: &str = "CreateVirtualDisk_Task";
        self.require_session(OP)?;
        let manager = self
            .service(OP)?
            .virtual_disk_manager
            .clone()
            .ok_or_else(|| Self::malformed(OP, "no VirtualDiskManager"))?;
        let body = format!(
            r#"<CreateVirtualDisk_Task xmlns="urn:vim25">{}<name>{}</name>{}<spec xsi:type="FileBackedVirtualDiskSpec"><diskType>thin</diskType><adapterType>lsiLogic</adapterType><capacityKb>{capacity_kb}</capacityKb></spec></CreateVirtualDisk_Task>"#,
            manager.to_xml("_this"),
            escape(&datastore.datastore_path(path)),
            datastore.datacenter.moref.to_xml("datacenter"),
        );
        let response = self.call_vim(OP, &body).await?;
        let task = response
            .child("returnval")
            .map(MoRef::from_element)
            .ok_or_else(|| Self::malformed(OP, "no task"))?;
        self.wait_for_task(OP, &task).await.map(|_| ())
    }

    /// Polls a task with `RetrievePropertiesEx(info)` until it succeeds (returns
    /// `info.result`, if any) or fails ([`VsphereError::TaskFailed`]).
    pub async fn wait_for_task(
        &mut self,
        operation: &str,
        task: &MoRef,
    ) -> Result<Option<Element>, VsphereError> {
        const OP: &str = "RetrievePropertiesEx";
        let collector = self.service(OP)?.property_collector.to_xml("_this");
        let body = format!(
            r#"<RetrievePropertiesEx xmlns="urn:vim25">{collector}<specSet><propSet><type>Task</type><pathSet>info</pathSet></propSet><objectSet>{}<skip>false</skip></objectSet></specSet><options></options></RetrievePropertiesEx>"#,
            task.to_xml("obj")
        );
        let started = std::time::Instant::now();
        let mut delay = Duration::from_millis(50);
        loop {
            let response = self.call_vim(OP, &body).await?;
            let info = response
                .path(&["returnval", "objects", "propSet", "val"])
                .ok_or_else(|| Self::malformed(OP, "no task info"))?;
            match info.path_text(&["state"]) {
                Some("success") => return Ok(info.child("result").cloned()),
                Some("error") => {
                    let fault = info
                        .child("error")
                        .map(Fault::from_localized)
                        .unwrap_or_else(|| Fault::from_detail(None, ""));
                    return Err(VsphereError::TaskFailed {
                        operation: operation.to_owned(),
                        task: task.value.clone(),
                        fault: Box::new(fault),
                    });
                }
                Some(_) => {}
                None => return Err(Self::malformed(OP, "task info has no state")),
            }
            if started.elapsed() > self.options.task_timeout {
                return Err(VsphereError::TaskTimeout {
                    operation: operation.to_owned(),
                    task: task.value.clone(),
                    waited: started.elapsed(),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    fn vstorage_manager(&self, operation: &str) -> Result<String, VsphereError> {
        self.service(operation)?
            .vstorage_object_manager
            .as_ref()
            .map(|m| m.to_xml("_this"))
            .ok_or_else(|| Self::malformed(operation, "vCenter has no VStorageObjectManager"))
    }

    /// `VcenterVStorageObjectManager.RegisterDisk` on the disk's `/folder` URL; one call, no
    /// existence check and no idempotency (see [`VcenterClient::register_disk_idempotent`]).
    pub async fn register_disk(
        &mut self,
        datastore: &Datastore,
        path: &str,
        name: &str,
    ) -> Result<VStorageObject, VsphereError> {
        const OP: &str = "RegisterDisk";
        self.require_session(OP)?;
        let body = format!(
            r#"<RegisterDisk xmlns="urn:vim25">{}<path>{}</path><name>{}</name></RegisterDisk>"#,
            self.vstorage_manager(OP)?,
            escape(&self.disk_url(datastore, path)),
            escape(name)
        );
        let response = self.call_vim(OP, &body).await?;
        let config = response
            .path(&["returnval", "config"])
            .ok_or_else(|| Self::malformed(OP, "no returnval/config"))?;
        VStorageObject::from_config(OP, config)
    }

    /// `VcenterVStorageObjectManager.SetVStorageObjectControlFlags(id, datastore,
    /// [keepAfterDeleteVm])`: deleting a VM the disk is attached to then keeps the disk.
    /// In-tree VMDKs lack this flag; vcsim 0.24 answers `MethodNotFound`.
    pub async fn set_keep_after_delete_vm(
        &mut self,
        datastore: &Datastore,
        id: &str,
    ) -> Result<(), VsphereError> {
        const OP: &str = "SetVStorageObjectControlFlags";
        self.require_session(OP)?;
        let body = set_keep_after_delete_vm_body(&self.vstorage_manager(OP)?, datastore, id);
        self.call_vim(OP, &body).await.map(|_| ())
    }

    /// `RetrieveVStorageObject(id, datastore)`.
    pub async fn retrieve_vstorage_object(
        &mut self,
        datastore: &Datastore,
        id: &str,
    ) -> Result<VStorageObject, VsphereError> {
        const OP: &str = "RetrieveVStorageObject";
        self.require_session(OP)?;
        let body = format!(
            r#"<RetrieveVStorageObject xmlns="urn:vim25">{}<id><id>{}</id></id>{}</RetrieveVStorageObject>"#,
            self.vstorage_manager(OP)?,
            escape(id),
            datastore.moref.to_xml("datastore")
        );
        let response = self.call_vim(OP, &body).await?;
        let config = response
            .path(&["returnval", "config"])
            .ok_or_else(|| Self::malformed(OP, "no returnval/config"))?;
        VStorageObject::from_config(OP, config)
    }

    /// `ListVStorageObject(datastore)`: the FCD ids on a datastore.
    pub async fn list_vstorage_objects(
        &mut self,
        datastore: &Datastore,
    ) -> Result<Vec<String>, VsphereError> {
        const OP: &str = "ListVStorageObject";
        self.require_session(OP)?;
        let body = format!(
            r#"<ListVStorageObject xmlns="urn:vim25">{}{}</ListVStorageObject>"#,
            self.vstorage_manager(OP)?,
            datastore.moref.to_xml("datastore")
        );
        let response = self.call_vim(OP, &body).await?;
        Ok(response
            .children_named("returnval")
            .filter_map(|r| r.path_text(&["id"]))
            .map(str::to_owned)
            .collect())
    }

    /// The FCD whose backing file is `[datastore] path`, if any (lists and retrieves every
    /// FCD on the datastore).
    pub async fn find_vstorage_object_by_path(
        &mut self,
        datastore: &Datastore,
        path: &str,
    ) -> Result<Option<VStorageObject>, VsphereError> {
        let wanted = datastore.datastore_path(path);
        for id in self.list_vstorage_objects(datastore).await? {
            match self.retrieve_vstorage_object(datastore, &id).await {
                Ok(object) if object.file_path == wanted => return Ok(Some(object)),
                Ok(_) => {}
                // an FCD whose backing file vanished is not ours; keep looking
                Err(e) if e.is_fault(FaultKind::NotFound) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(None)
    }

    /// Registers `[datastore] path` as a first-class disk unless it already is one; a second
    /// call returns the same id and creates nothing.
    ///
    /// * missing descriptor → [`VsphereError::DiskNotFound`];
    /// * `AlreadyExists` (real vCenter, carries the id in `name`) → success with that id;
    /// * `InvalidArgument(path)` (how vcsim reports a re-registration) → success if an FCD
    ///   with this backing path exists, otherwise the fault is returned.
    pub async fn register_disk_idempotent(
        &mut self,
        datastore: &Datastore,
        path: &str,
        name: &str,
    ) -> Result<Registration, VsphereError> {
        if !self.datastore_file_exists(datastore, path).await? {
            return Err(VsphereError::DiskNotFound {
                datastore: datastore.name.clone(),
                path: path.to_owned(),
            });
        }
        match self.register_disk(datastore, path, name).await {
            Ok(object) => Ok(Registration {
                object,
                newly_registered: true,
            }),
            Err(error) => {
                let existing_id = error
                    .fault()
                    .filter(|f| f.kind == FaultKind::AlreadyExists)
                    .and_then(|f| f.field("name"))
                    .filter(|id| !id.is_empty())
                    .map(str::to_owned);
                if let Some(id) = existing_id {
                    let object = self.retrieve_vstorage_object(datastore, &id).await?;
                    return Ok(Registration {
                        object,
                        newly_registered: false,
                    });
                }
                if (error.is_fault(FaultKind::AlreadyExists)
                    || error.is_fault(FaultKind::InvalidArgument))
                    && let Some(object) = self.find_vstorage_object_by_path(datastore, path).await?
                {
                    return Ok(Registration {
                        object,
                        newly_registered: false,
                    });
                }
                Err(error)
            }
        }
    }
}

/// What one HTTP exchange of a SOAP call gave.
struct SoapReply {
    status: StatusCode,
    headers: reqwest::header::HeaderMap,
    parsed: Result<Element, XmlError>,
    fault: Option<Fault>,
}

/// Turns the last exchange of a call into its result: a fault wins over the status.
fn finish_soap(
    operation: &str,
    outcome: Result<SoapReply, reqwest::Error>,
) -> Result<(Element, reqwest::header::HeaderMap), VsphereError> {
    let reply = match outcome {
        Ok(reply) => reply,
        Err(source) => {
            return Err(VsphereError::Transport {
                operation: operation.to_owned(),
                source,
            });
        }
    };
    if let Some(fault) = reply.fault {
        return Err(VsphereError::Fault {
            operation: operation.to_owned(),
            fault: Box::new(fault),
        });
    }
    if reply.status != StatusCode::OK {
        return Err(VsphereError::HttpStatus {
            operation: operation.to_owned(),
            status: reply.status.as_u16(),
        });
    }
    let root = reply.parsed.map_err(|source| VsphereError::Xml {
        operation: operation.to_owned(),
        source,
    })?;
    let element = root
        .child("Body")
        .and_then(|b| b.children.first())
        .cloned()
        .ok_or_else(|| VsphereError::Malformed {
            operation: operation.to_owned(),
            detail: "empty SOAP Body".into(),
        })?;
    Ok((element, reply.headers))
}

/// Whether a failed exchange may succeed when sent again: the connection could not be
/// made, timed out, or broke before a response arrived. Our calls tolerate a repeat
/// (re-registration and CNS re-creation are treated as success).
fn is_transient_transport_error(error: &reqwest::Error) -> bool {
    error.is_connect() || error.is_timeout() || error.is_request() || error.is_body()
}

/// Whether an HTTP status is worth retrying: 5xx or 429 that carry no SOAP fault (a
/// proxy or a vCenter service restarting). A SOAP fault is vCenter's answer and final.
pub fn is_transient_status(status: StatusCode, has_fault: bool) -> bool {
    !has_fault && (status.is_server_error() || status == StatusCode::TOO_MANY_REQUESTS)
}

/// Delay after failed attempt `attempt` (1-based): `base × 2^(attempt-1)`, at most `cap`.
pub fn backoff_delay(attempt: u32, base: Duration, cap: Duration) -> Duration {
    let factor = 1u32
        .checked_shl(attempt.saturating_sub(1))
        .unwrap_or(u32::MAX);
    base.saturating_mul(factor).min(cap)
}

/// The `SetVStorageObjectControlFlags` body setting `keepAfterDeleteVm` on one FCD.
pub fn set_keep_after_delete_vm_body(manager_xml: &str, datastore: &Datastore, id: &str) -> String {
    format!(
        r#"<SetVStorageObjectControlFlags xmlns="urn:vim25">{manager_xml}<id><id>{}</id></id>{}<controlFlags>keepAfterDeleteVm</controlFlags></SetVStorageObjectControlFlags>"#,
        escape(id),
        datastore.moref.to_xml("datastore")
    )
}

/// `folder/<path>?dcPath=<dc>&dsName=<ds>` with every component percent-encoded.
fn folder_path_and_query(datastore: &Datastore, path: &str) -> String {
    let encoded_path: Vec<String> = path
        .trim_start_matches('/')
        .split('/')
        .map(|segment| utf8_percent_encode(segment, URL_COMPONENT).to_string())
        .collect();
    format!(
        "folder/{}?dcPath={}&dsName={}",
        encoded_path.join("/"),
        utf8_percent_encode(&datastore.datacenter.path, URL_COMPONENT),
        utf8_percent_encode(&datastore.name, URL_COMPONENT)
    )
}

/// Escapes one inventory name for `FindByInventoryPath` (`%` and `/` as vCenter does).
fn escape_inventory_name(name: &str) -> String {
    name.replace('%', "%25").replace('/', "%2f")
}

/// Removes a secret from any message text an error might carry (defence in depth: a
/// server could echo what it was sent).
fn redact_secret(error: &mut VsphereError, secret: &str) {
    if secret.is_empty() {
        return;
    }
    if let VsphereError::Fault { fault, .. } | VsphereError::TaskFailed { fault, .. } = error {
        fault.message = fault.message.replace(secret, "<redacted>");
        for (_, value) in &mut fault.fields {
            *value = value.replace(secret, "<redacted>");
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn datastore(dc: &str, name: &str) -> Datastore {
        Datastore {
            name: name.into(),
            datacenter: Datacenter {
                path: dc.into(),
                moref: MoRef {
                    kind: "Datacenter".into(),
                    value: "dc".into(),
                },
            },
            moref: MoRef {
                kind: "Datastore".into(),
                value: "ds".into(),
            },
        }
    }

    #[test]
    fn disk_url_encodes_every_component() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let client =
            VcenterClient::new("https://vc.example.com/sdk", ClientOptions::default()).unwrap();
        assert_eq!(
            client.disk_url(&datastore("DC 0", "my ds&x"), "kube vols/a+b.vmdk"),
            "https://vc.example.com/folder/kube%20vols/a%2Bb.vmdk?dcPath=DC%200&dsName=my%20ds%26x"
        );
        let client =
            VcenterClient::new("http://127.0.0.1:8989/sdk", ClientOptions::default()).unwrap();
        assert_eq!(
            client.disk_url(&datastore("DC0", "LocalDS_0"), "kubevols/a.vmdk"),
            "https://127.0.0.1:8989/folder/kubevols/a.vmdk?dcPath=DC0&dsName=LocalDS_0"
        );
    }

    #[test]
    fn rejects_urls_with_credentials() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let err = VcenterClient::new("https://admin:s3cret@vc/sdk", ClientOptions::default())
            .unwrap_err();
        assert!(!format!("{err} {err:?}").contains("s3cret"));
        assert!(VcenterClient::new("ftp://vc", ClientOptions::default()).is_err());
    }

    #[test]
    fn credentials_debug_redacts_password() {
        let credentials = Credentials::new("administrator@vsphere.local", "hunter2-secret");
        let shown = format!(
            "{credentials:?} {:?} {credentials:#?}",
            credentials.password
        );
        assert!(!shown.contains("hunter2-secret"), "{shown}");
        assert!(shown.contains("administrator@vsphere.local"));
        assert!(shown.contains("<redacted>"));
    }

    #[test]
    fn parses_recorded_faults() {
        // vcsim's re-registration answer, recorded.
        let doc = r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenc="http://schemas.xmlsoap.org/soap/encoding/" xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:xsd="http://www.w3.org/2001/XMLSchema" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>A specified parameter was not correct: path</faultstring><detail><InvalidArgumentFault xmlns:XMLSchema-instance="http://www.w3.org/2001/XMLSchema-instance" xmlns="urn:vim25" XMLSchema-instance:type="InvalidArgument"><invalidProperty>path</invalidProperty></InvalidArgumentFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let root = xml::parse(doc).unwrap();
        let fault = Fault::from_soap_fault(root.path(&["Body", "Fault"]).unwrap());
        assert_eq!(fault.kind, FaultKind::InvalidArgument);
        assert_eq!(fault.name, "InvalidArgument");
        assert_eq!(fault.field("invalidProperty"), Some("path"));
        assert!(
            fault
                .to_string()
                .contains("A specified parameter was not correct")
        );

        // Real vCenter's AlreadyExists on RegisterDisk (shape per the vim25 WSDL; `name` = FCD id).
        let doc = r#"<soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/"><soapenv:Body><soapenv:Fault><faultcode>ServerFaultCode</faultcode><faultstring>The specified key, name, or identifier '1f0e...' already exists.</faultstring><detail><AlreadyExistsFault xmlns="urn:vim25" xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xsi:type="AlreadyExists"><name>1f0e9c6a-0000-4000-8000-000000000001</name></AlreadyExistsFault></detail></soapenv:Fault></soapenv:Body></soapenv:Envelope>"#;
        let root = xml::parse(doc).unwrap();
        let fault = Fault::from_soap_fault(root.path(&["Body", "Fault"]).unwrap());
        assert_eq!(fault.kind, FaultKind::AlreadyExists);
        assert_eq!(
            fault.field("name"),
            Some("1f0e9c6a-0000-4000-8000-000000000001")
        );
    }

    #[test]
    fn backoff_doubles_from_the_base_up_to_the_cap() {
        let (base, cap) = (Duration::from_millis(100), Duration::from_millis(700));
        let delays: Vec<u128> = (1..=5)
            .map(|a| backoff_delay(a, base, cap).as_millis())
            .collect();
        assert_eq!(delays, vec![100, 200, 400, 700, 700]);
        assert_eq!(backoff_delay(200, base, cap), cap, "no overflow");
    }

    #[test]
    fn only_faultless_5xx_and_429_are_transient() {
        let table = [
            (503, false, true),
            (502, false, true),
            (500, false, true),
            (429, false, true),
            (500, true, false),
            (404, false, false),
            (200, false, false),
            (401, false, false),
        ];
        for (status, has_fault, transient) in table {
            let status = StatusCode::from_u16(status).unwrap();
            assert_eq!(
                is_transient_status(status, has_fault),
                transient,
                "{status} fault={has_fault}"
            );
        }
    }

    #[test]
    fn redacts_password_echoed_in_fault() {
        let mut error = VsphereError::Fault {
            operation: "Login".into(),
            fault: Box::new(Fault::from_detail(None, "bad password p4ss for user")),
        };
        redact_secret(&mut error, "p4ss");
        assert!(!format!("{error} {error:?}").contains("p4ss"));
    }
}
