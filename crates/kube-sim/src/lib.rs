//! kube-sim: a simulated Kubernetes API server, served over real HTTP(S), faithful
//! where a volume migration can lose data. kubectl and kube-rs talk to it as to a cluster.
//!
//! Start with [`serve`] over a [`Store`]; [`kubeconfig::kubeconfig`] writes the
//! matching kubeconfig.
//!
//! What is simulated today: discovery; create/get/list/update/patch/delete with
//! server-set metadata, one cluster-wide resourceVersion, optimistic concurrency,
//! the status subresource, finalizers and deletion (preconditions, propagation
//! policies, graceful pod deletion), create-time defaults and protection finalizers,
//! the PV/PVC/StatefulSet immutability rules; JSON, merge, strategic-merge and
//! (create-or-merge) apply patches; label and field selectors, pagination; watches
//! with bookmarks, timeouts and `410` as an ERROR event from a bounded history;
//! CustomResourceDefinitions stored generically; controllers for PVC and PV
//! protection and the garbage collector (orphan, background, foreground). Deliberate simplifications: a
//! continued list reads current objects after the last key rather than a snapshot
//! at the first page's resourceVersion; server-side apply does not track field managers.

pub mod admission;
pub mod api_error;
pub mod cloud;
pub mod controllers;
pub mod faults;
pub mod kubeconfig;
pub mod patch;
pub mod resource;
pub mod scenario;
pub mod selector;
pub mod server;
pub mod store;
pub mod tls;

pub use api_error::ApiError;
pub use server::{RunningServer, ServeError, serve, serve_with_faults};
pub use store::Store;
