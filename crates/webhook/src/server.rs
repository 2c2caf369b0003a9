//! The HTTPS admission server, the plain-HTTP metrics server, file reloading and shutdown.

use std::future::Future;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum_server::tls_rustls::RustlsConfig;
use csi_migrate_translate::Translator;
use tokio::sync::watch;

use crate::admission::{self, kind_label};
use crate::metrics::{DecisionLabels, Metrics, ReloadLabels, ReviewLabels};
use crate::policy::{Policy, PolicyError};
use crate::review::{self, ReviewError};
use crate::rules::{KnownClasses, NoClasses};
use crate::storage_classes::{ClusterAccess, StorageClassCache};
use crate::tls::{self, TlsError};

/// Largest AdmissionReview body accepted (an object plus its old version, with room to spare).
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;

/// How long a review waits for the StorageClass cache's first list before it is judged
/// with what is known (the policy's class names); below the manifests' 5 s webhook timeout.
pub const CLASS_SYNC_WAIT: Duration = Duration::from_secs(3);

/// How to run the webhook.
#[derive(Debug, Clone)]
pub struct ServeConfig {
    /// PEM certificate chain served to the API server (reloaded when it changes).
    pub tls_cert: PathBuf,
    /// PEM private key for `tls_cert` (reloaded when it changes).
    pub tls_key: PathBuf,
    /// Address of the HTTPS admission endpoint; port 0 picks a free port.
    pub listen: SocketAddr,
    /// Address of the plain-HTTP metrics endpoint (`/metrics`), if any.
    pub metrics_listen: Option<SocketAddr>,
    /// Policy file (YAML); without it every configurable rule warns.
    pub policy: Option<PathBuf>,
    /// How often the certificate, key and policy files are checked for changes.
    pub reload_interval: Duration,
    /// How long the server keeps serving after shutdown is requested, with `/readyz`
    /// already answering 503: the time it takes the endpoints controller and every
    /// API server to stop sending reviews to this pod. Then the listener closes.
    pub shutdown_delay: Duration,
    /// How long in-flight requests may take to finish once the listener has closed.
    pub shutdown_grace: Duration,
    /// Cluster access for the StorageClass cache; without it, claims are judged by the
    /// policy's `inTreeStorageClasses` names only.
    pub cluster: Option<ClusterAccess>,
}

impl ServeConfig {
    /// A configuration with no metrics endpoint, no policy file, no cluster access, a 2 s
    /// reload interval, a 5 s shutdown delay and a 10 s shutdown grace period.
    pub fn new(
        tls_cert: impl Into<PathBuf>,
        tls_key: impl Into<PathBuf>,
        listen: SocketAddr,
    ) -> Self {
        ServeConfig {
            tls_cert: tls_cert.into(),
            tls_key: tls_key.into(),
            listen,
            metrics_listen: None,
            policy: None,
            reload_interval: Duration::from_secs(2),
            shutdown_delay: Duration::from_secs(5),
            shutdown_grace: Duration::from_secs(10),
            cluster: None,
        }
    }
}

/// Why the webhook could not start or stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum WebhookError {
    /// The certificate or key could not be loaded at start-up.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The policy file could not be loaded at start-up.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A listen address could not be bound (in use, no permission, not local).
    #[error("cannot listen for {what} on {addr}: {source}")]
    Bind {
        /// `admission requests` or `metrics`.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A server stopped with an I/O error (e.g. the listening socket failed).
    #[error("{what} server failed: {source}")]
    Serve {
        /// `admission` or `metrics`.
        what: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
}

/// What the request handlers share.
struct AppState {
    policy: RwLock<Arc<Policy>>,
    translator: Translator,
    metrics: Arc<Metrics>,
    /// True from start-up until shutdown is requested.
    serving: AtomicBool,
    /// The StorageClass cache, when the webhook has cluster access (set once, at start).
    classes: OnceLock<StorageClassCache>,
}

impl AppState {
    fn policy(&self) -> Arc<Policy> {
        match self.policy.read() {
            Ok(guard) => Arc::clone(&guard),
            Err(poisoned) => Arc::clone(&poisoned.into_inner()),
        }
    }

    /// Ready: serving, and the StorageClass cache (if any) has synced once.
    fn is_ready(&self) -> bool {
        self.serving.load(Ordering::SeqCst) && self.classes.get().is_none_or(|c| c.is_synced())
    }

    fn known_classes(&self) -> &dyn KnownClasses {
        match self.classes.get() {
            Some(cache) => cache,
            None => &NoClasses,
        }
    }

    fn set_policy(&self, policy: Policy) {
        let policy = Arc::new(policy);
        match self.policy.write() {
            Ok(mut guard) => *guard = policy,
            Err(poisoned) => *poisoned.into_inner() = policy,
        }
    }
}

/// The files last seen by the reloader (their full contents: they are small, and
/// comparing bytes catches every change, whatever the file system's timestamps do).
#[derive(Default)]
struct SeenFiles {
    cert_and_key: Option<(Vec<u8>, Vec<u8>)>,
    policy: Option<Vec<u8>>,
}

/// A webhook whose sockets are bound and whose certificate and policy are loaded, ready to run.
pub struct BoundWebhook {
    config: ServeConfig,
    listener: TcpListener,
    metrics_listener: Option<TcpListener>,
    local_addr: SocketAddr,
    metrics_addr: Option<SocketAddr>,
    state: Arc<AppState>,
    rustls: RustlsConfig,
    seen: SeenFiles,
}

impl std::fmt::Debug for BoundWebhook {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BoundWebhook")
            .field("local_addr", &self.local_addr)
            .field("metrics_addr", &self.metrics_addr)
            .finish_non_exhaustive()
    }
}

fn bind(what: &'static str, addr: SocketAddr) -> Result<(TcpListener, SocketAddr), WebhookError> {
    let bind_error = |source| WebhookError::Bind { what, addr, source };
    let listener = TcpListener::bind(addr).map_err(bind_error)?;
    listener.set_nonblocking(true).map_err(bind_error)?;
    let local = listener.local_addr().map_err(bind_error)?;
    Ok((listener, local))
}

impl BoundWebhook {
    /// Loads the certificate, key and policy and binds the listen addresses.
    pub fn bind(config: ServeConfig) -> Result<BoundWebhook, WebhookError> {
        let (cert_pem, key_pem) = tls::read_pair(&config.tls_cert, &config.tls_key)?;
        let server_config =
            tls::server_config(&cert_pem, &key_pem, &config.tls_cert, &config.tls_key)?;
        let mut seen = SeenFiles {
            cert_and_key: Some((cert_pem, key_pem)),
            policy: None,
        };
        let policy = match &config.policy {
            Some(path) => {
                let bytes = std::fs::read(path).map_err(|source| PolicyError::Read {
                    path: path.clone(),
                    source,
                })?;
                let policy = Policy::from_bytes(&bytes, path)?;
                seen.policy = Some(bytes);
                policy
            }
            None => Policy::default(),
        };
        let (listener, local_addr) = bind("admission requests", config.listen)?;
        let (metrics_listener, metrics_addr) = match config.metrics_listen {
            Some(addr) => {
                let (l, a) = bind("metrics", addr)?;
                (Some(l), Some(a))
            }
            None => (None, None),
        };
        let state = Arc::new(AppState {
            policy: RwLock::new(Arc::new(policy)),
            translator: Translator::new(),
            metrics: Metrics::new(),
            serving: AtomicBool::new(false),
            classes: OnceLock::new(),
        });
        Ok(BoundWebhook {
            config,
            listener,
            metrics_listener,
            local_addr,
            metrics_addr,
            state,
            rustls: RustlsConfig::from_config(server_config),
            seen,
        })
    }

    /// The address the admission endpoint listens on (useful after binding port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The address the metrics endpoint listens on, if enabled.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics_addr
    }

    /// Serves until `shutdown` completes; then `/readyz` answers 503 at once, the server
    /// keeps serving for the shutdown delay, closes its listener and drains in-flight
    /// requests (up to the grace period).
    pub async fn run(self, shutdown: impl Future<Output = ()> + Send) -> Result<(), WebhookError> {
        let BoundWebhook {
            config,
            listener,
            metrics_listener,
            local_addr,
            metrics_addr,
            state,
            rustls,
            seen,
        } = self;
        let (stop_tx, stop_rx) = watch::channel(false);
        if let Some(access) = config.cluster.clone() {
            let cache = StorageClassCache::start(access, Arc::clone(&state.metrics));
            let _ = state.classes.set(cache);
        }

        let app = Router::new()
            .route("/validate", post(validate))
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
            .with_state(Arc::clone(&state));
        let handle = axum_server::Handle::new();
        let server = axum_server::from_tcp_rustls(listener, rustls.clone())
            .map_err(|source| WebhookError::Serve {
                what: "admission",
                source,
            })?
            .handle(handle.clone());
        let mut admission_task = tokio::spawn(server.serve(app.into_make_service()));

        let metrics_task = match metrics_listener {
            Some(listener) => {
                let listener = tokio::net::TcpListener::from_std(listener).map_err(|source| {
                    WebhookError::Serve {
                        what: "metrics",
                        source,
                    }
                })?;
                let router = Router::new()
                    .route("/metrics", get(metrics))
                    .route("/healthz", get(healthz))
                    .route("/readyz", get(readyz))
                    .with_state(Arc::clone(&state));
                let mut stop = stop_rx.clone();
                Some(tokio::spawn(async move {
                    axum::serve(listener, router)
                        .with_graceful_shutdown(async move {
                            let _ = stop.wait_for(|stopped| *stopped).await;
                        })
                        .await
                }))
            }
            None => None,
        };

        let reload_task = tokio::spawn(reload_loop(
            config.clone(),
            Arc::clone(&state),
            rustls,
            seen,
            stop_rx,
        ));

        state.serving.store(true, Ordering::SeqCst);
        tracing::info!(
            %local_addr,
            metrics_addr = ?metrics_addr,
            policy = ?config.policy,
            storage_class_cache = config.cluster.is_some(),
            "webhook serving"
        );

        let mut early_exit = tokio::select! {
            () = shutdown => None,
            result = &mut admission_task => Some(result),
        };
        state.serving.store(false, Ordering::SeqCst);
        if early_exit.is_none() && !config.shutdown_delay.is_zero() {
            // Still serving: reviews keep arriving until every API server has seen this
            // pod leave the Service's endpoints.
            tracing::info!(
                delay = ?config.shutdown_delay,
                "shutdown requested: not ready any more, serving on until endpoints are updated"
            );
            tokio::select! {
                () = tokio::time::sleep(config.shutdown_delay) => {}
                result = &mut admission_task => early_exit = Some(result),
            }
        }
        tracing::info!("webhook shutting down");
        handle.graceful_shutdown(Some(config.shutdown_grace));
        let _ = stop_tx.send(true);

        let admission_result = match early_exit {
            Some(result) => result,
            None => admission_task.await,
        };
        let _ = reload_task.await;
        if let Some(cache) = state.classes.get() {
            cache.stop();
        }
        if let Some(task) = metrics_task
            && let Ok(Err(source)) = task.await
        {
            return Err(WebhookError::Serve {
                what: "metrics",
                source,
            });
        }
        match admission_result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(source)) => Err(WebhookError::Serve {
                what: "admission",
                source,
            }),
            Err(join) => Err(WebhookError::Serve {
                what: "admission",
                source: std::io::Error::other(join.to_string()),
            }),
        }
    }
}

/// Runs the webhook until `shutdown` completes (the entry point for `csi-migrate webhook`).
pub async fn serve(
    config: ServeConfig,
    shutdown: impl Future<Output = ()> + Send,
) -> Result<(), WebhookError> {
    BoundWebhook::bind(config)?.run(shutdown).await
}

/// Completes on SIGTERM or ctrl-c (SIGINT): the usual `shutdown` argument for [`serve`].
pub async fn shutdown_signal() {
    let interrupt = async {
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut signal) => {
                signal.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => {},
        () = terminate => {},
    }
}

async fn reload_loop(
    config: ServeConfig,
    state: Arc<AppState>,
    rustls: RustlsConfig,
    mut seen: SeenFiles,
    mut stop: watch::Receiver<bool>,
) {
    let mut interval = tokio::time::interval(config.reload_interval.max(Duration::from_millis(10)));
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = interval.tick() => {}
            _ = stop.wait_for(|stopped| *stopped) => return,
        }
        reload_certificate(&config, &state, &rustls, &mut seen).await;
        reload_policy(&config, &state, &mut seen).await;
    }
}

async fn reload_certificate(
    config: &ServeConfig,
    state: &AppState,
    rustls: &RustlsConfig,
    seen: &mut SeenFiles,
) {
    let (cert, key) = match (
        tokio::fs::read(&config.tls_cert).await,
        tokio::fs::read(&config.tls_key).await,
    ) {
        (Ok(cert), Ok(key)) => (cert, key),
        // Mid-rotation a file can be briefly missing; keep serving the old pair and retry.
        (Err(error), _) | (_, Err(error)) => {
            tracing::debug!(%error, "certificate or key not readable; keeping the current certificate");
            return;
        }
    };
    if seen
        .cert_and_key
        .as_ref()
        .is_some_and(|(c, k)| *c == cert && *k == key)
    {
        return;
    }
    let outcome = tls::server_config(&cert, &key, &config.tls_cert, &config.tls_key);
    seen.cert_and_key = Some((cert, key));
    let result = match outcome {
        Ok(server_config) => {
            rustls.reload_from_config(server_config);
            tracing::info!(cert = %config.tls_cert.display(), "reloaded the serving certificate");
            "ok"
        }
        Err(error) => {
            tracing::warn!(%error, "new certificate or key unusable; keeping the current certificate");
            "error"
        }
    };
    state
        .metrics
        .reloads
        .get_or_create(&ReloadLabels {
            file: "certificate",
            result,
        })
        .inc();
}

async fn reload_policy(config: &ServeConfig, state: &AppState, seen: &mut SeenFiles) {
    let Some(path) = &config.policy else {
        return;
    };
    let bytes = match tokio::fs::read(path).await {
        Ok(bytes) => bytes,
        Err(error) => {
            tracing::debug!(%error, "policy file not readable; keeping the current policy");
            return;
        }
    };
    if seen.policy.as_ref() == Some(&bytes) {
        return;
    }
    let outcome = Policy::from_bytes(&bytes, path);
    seen.policy = Some(bytes);
    let result = match outcome {
        Ok(policy) => {
            state.set_policy(policy);
            tracing::info!(policy = %path.display(), "reloaded the policy");
            "ok"
        }
        Err(error) => {
            tracing::warn!(%error, "new policy invalid; keeping the current policy");
            "error"
        }
    };
    state
        .metrics
        .reloads
        .get_or_create(&ReloadLabels {
            file: "policy",
            result,
        })
        .inc();
}

async fn healthz() -> &'static str {
    "ok"
}

async fn readyz(State(state): State<Arc<AppState>>) -> Response {
    if state.is_ready() {
        (StatusCode::OK, "ok").into_response()
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready").into_response()
    }
}

async fn metrics(State(state): State<Arc<AppState>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
        )],
        state.metrics.encode(),
    )
        .into_response()
}

async fn validate(State(state): State<Arc<AppState>>, headers: HeaderMap, body: Bytes) -> Response {
    let started = Instant::now();
    if let Some(cache) = state.classes.get()
        && !cache.is_synced()
        && !cache.wait_synced(CLASS_SYNC_WAIT).await
    {
        tracing::warn!(
            "StorageClass cache not synced yet; judging claims by the policy's class names only"
        );
    }
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let response = match answer(&state, content_type, &body) {
        Ok(json) => (
            StatusCode::OK,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            json,
        )
            .into_response(),
        Err(Malformed { uid, kind, error }) => {
            // The summary never quotes the object: safe for logs and for the client.
            let summary = error.summary();
            match uid {
                Some(uid) => {
                    tracing::warn!(%uid, kind, error = %summary, "rejected a malformed admission request")
                }
                None => tracing::warn!(error = %summary, "rejected a malformed admission request"),
            }
            state
                .metrics
                .reviews
                .get_or_create(&ReviewLabels {
                    kind: "unknown",
                    result: "malformed",
                })
                .inc();
            (StatusCode::BAD_REQUEST, format!("{summary}\n")).into_response()
        }
    };
    state
        .metrics
        .latency
        .observe(started.elapsed().as_secs_f64());
    response
}

/// A request the server answers with 400, and what is known of it.
struct Malformed {
    /// The request's uid, when the envelope could be parsed.
    uid: Option<String>,
    /// The kind label, when the envelope could be parsed.
    kind: &'static str,
    error: ReviewError,
}

impl From<ReviewError> for Malformed {
    fn from(error: ReviewError) -> Self {
        Malformed {
            uid: None,
            kind: "unknown",
            error,
        }
    }
}

/// Parses, reviews and encodes one request; errors are malformed requests.
fn answer(state: &AppState, content_type: Option<&str>, body: &[u8]) -> Result<Vec<u8>, Malformed> {
    review::check_content_type(content_type)?;
    let request = review::parse_review(body)?;
    let kind = kind_label(&request.kind.group, &request.kind.kind);
    let policy = state.policy();
    let verdict = admission::review(&request, &policy, state.known_classes(), &state.translator)
        .map_err(|error| Malformed {
            uid: Some(request.uid.clone()),
            kind,
            error,
        })?;
    let result = verdict.result_label();
    for (rule, action) in &verdict.outcomes {
        state
            .metrics
            .decisions
            .get_or_create(&DecisionLabels {
                rule: rule.as_str(),
                action: action.as_str(),
            })
            .inc();
    }
    state
        .metrics
        .reviews
        .get_or_create(&ReviewLabels { kind, result })
        .inc();
    if verdict.outcomes.is_empty() {
        tracing::debug!(uid = %request.uid, kind, operation = %request.operation, result, "reviewed");
    } else {
        let rules: Vec<String> = verdict
            .outcomes
            .iter()
            .map(|(rule, action)| format!("{rule}={}", action.as_str()))
            .collect();
        tracing::info!(
            uid = %request.uid,
            kind,
            operation = %request.operation,
            namespace = request.namespace.as_deref().unwrap_or(""),
            name = request.name.as_deref().unwrap_or(""),
            result,
            rules = %rules.join(","),
            "reviewed"
        );
    }
    Ok(review::response_body(&verdict.into_response(&request.uid)))
}
