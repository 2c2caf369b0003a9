//! Admission webhook that keeps Kubernetes clusters from sliding back to in-tree volumes.
//!
//! The rules ([`rules`]) are pure functions of one object; [`admission`] decodes a request,
//! runs the rules for its kind and applies the [`policy`]; [`server`] serves that over
//! HTTPS (axum + rustls/ring) with health, readiness and Prometheus [`metrics`] endpoints,
//! and reloads the certificate and the policy file when they change. With cluster access
//! ([`ServeConfig::cluster`]) it keeps a cache of the cluster's StorageClasses
//! ([`storage_classes`]) so that claims are judged by their class's real provisioner.
//!
//! Shutdown: when the `shutdown` future completes, `/readyz` turns 503 at once, the server
//! keeps answering for [`ServeConfig::shutdown_delay`] (while the pod leaves the Service's
//! endpoints), then stops accepting connections and drains in-flight requests.
//!
//! ```no_run
//! # async fn run() -> Result<(), csi_migrate_webhook::WebhookError> {
//! use csi_migrate_webhook::{ServeConfig, serve, shutdown_signal};
//! let config = ServeConfig::new("/tls/tls.crt", "/tls/tls.key", "0.0.0.0:8443".parse().expect("valid address"));
//! serve(config, shutdown_signal()).await
//! # }
//! ```

pub mod admission;
pub mod metrics;
pub mod policy;
pub mod review;
pub mod rules;
pub mod server;
pub mod storage_classes;
pub mod tls;

pub use policy::{Action, Policy, PolicyError, PolicyRule};
pub use review::ReviewError;
pub use server::{BoundWebhook, ServeConfig, WebhookError, serve, shutdown_signal};
pub use storage_classes::{ClusterAccess, StorageClassCache};
pub use tls::TlsError;
