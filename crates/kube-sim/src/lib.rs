//! kube-sim: a simulated Kubernetes API server, served over real HTTP(S), faithful
//! where a volume migration can lose data. kubectl and kube-rs talk to it as to a cluster.
//!
//! Start with [`serve`] over a [`Store`]; [`kubeconfig::kubeconfig`] writes the
//! matching kubeconfig.
//!
//! The API server ([`server`], [`store`], [`admission`], [`patch`], [`selector`]):
//! discovery and an OpenAPI v3 index (kubectl validates server-side); create, get, list,
//! update, patch, delete with server-set metadata, one cluster-wide resourceVersion,
//! optimistic concurrency, the status and binding subresources, `dryRun=All`; finalizers
//! and deletion (preconditions, propagation policies, graceful pod deletion, namespace
//! termination); create-time defaults and protection finalizers; the PV, PVC, pod and
//! StatefulSet immutability rules with the real 422 texts; JSON, merge, strategic-merge
//! and (create-or-merge) apply patches; label and field selectors, pagination,
//! metadata-only lists; watches with bookmarks, timeouts and `410` as an ERROR event from
//! a bounded history; CustomResourceDefinitions stored generically; [`faults`] injection.
//!
//! The controllers ([`controllers`]): PV binding and reclaim (with the binder's Events),
//! provisioning for in-tree and CSI classes, PVC/PV protection, the garbage collector,
//! StatefulSet, Deployment, CSINode registration, attach/detach (PV and inline volumes)
//! with the external-attacher, and a scheduler/kubelet stand-in — over the fake disks of
//! [`cloud`], reading an informer cache that can lag behind the store
//! ([`controllers::cache`]). [`scenario`] builds realistic starting points.
//!
//! Deliberate simplifications: a continued list reads current objects after the last
//! key rather than a snapshot at the first page's resourceVersion; server-side apply does
//! not track field managers; request bodies are JSON or YAML (protobuf gets a 415).

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
