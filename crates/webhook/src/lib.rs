//! Admission webhook that keeps Kubernetes clusters from sliding back to in-tree volumes.
//!
//! The rules ([`rules`]) are pure functions of one object; [`admission`] decodes a request,
//! runs the rules for its kind and applies the [`policy`]; [`server`] serves that over
//! HTTPS (axum + rustls/ring) with health, readiness and Prometheus [`metrics`] endpoints,
//! and reloads the certificate and the policy file when they change.
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
pub mod tls;

pub use policy::{Action, Policy, PolicyError, PolicyRule};
pub use review::ReviewError;
pub use server::{BoundWebhook, ServeConfig, WebhookError, serve, shutdown_signal};
pub use tls::TlsError;
