//! kube-sim: a simulated Kubernetes API server, served over real HTTP(S), faithful
//! where a volume migration can lose data. kubectl and kube-rs talk to it as to a cluster.
//!
//! Start with [`serve`] over a [`Store`]; [`kubeconfig::kubeconfig`] writes the
//! matching kubeconfig.
//!
//! The API server ([`server`], [`store`], [`admission`], [`patch`], [`apply`],
//! [`field_validation`], [`selector`], [`table`]): discovery and an OpenAPI v3 index
//! (kubectl validates server-side); create, get, list, update, patch, delete with
//! server-set metadata, one cluster-wide resourceVersion, optimistic concurrency (also for
//! patches that carry or set a resourceVersion), the status, binding and `scale`
//! subresources, `dryRun=All`; finalizers and deletion (preconditions, propagation
//! policies, graceful pod deletion, namespace termination); create-time defaults, status
//! reset on create and protection finalizers; the PV, PVC, pod and StatefulSet
//! immutability rules with the real 422 texts; JSON, merge and strategic-merge patches;
//! server-side apply with per-manager ownership in `metadata.managedFields`, removal of
//! fields a manager stops applying, and 409 conflicts (`force` takes over);
//! `fieldValidation` Strict/Warn/Ignore for built-in kinds; label and field selectors
//! (unsupported field labels are a 400), pagination, metadata-only lists, `meta.k8s.io`
//! Tables with the upstream printer columns (lists, gets and watches); watches with
//! bookmarks, timeouts and `410` as an ERROR event from a bounded history;
//! CustomResourceDefinitions stored generically and established at once; [`faults`]
//! injection.
//!
//! The controllers ([`controllers`]): PV binding and reclaim (with the binder's Events),
//! provisioning for in-tree and CSI classes, PVC/PV protection, the garbage collector,
//! StatefulSet, Deployment, CSINode registration, the namespace controller (a deleted
//! namespace is emptied through ordinary deletes, finalizers kept, then removed),
//! attach/detach (PV and inline volumes) with the external-attacher, and a
//! scheduler/kubelet stand-in — over the fake disks of
//! [`cloud`], reading an informer cache that can lag behind the store
//! ([`controllers::cache`]). [`scenario`] builds realistic starting points.
//!
//! Deliberate simplifications: the scenarios' classes bind immediately and carry no
//! zone, so their disks have none and their PVs no node affinity: `mixed` puts every
//! provider's disks on the same nodes, where no zone name is valid for all of them
//! (rollback derives AWS and GCE regions from zone names), and its bare claims must bind
//! without a consumer. Zonal provisioning and scheduling by node affinity work for
//! classes with a `zone` parameter or `WaitForFirstConsumer` (tested); a continued list reads current objects after the last
//! key rather than a snapshot at the first page's resourceVersion; server-side apply
//! records `Apply` managers only (updates leave `managedFields` as they are, so an update
//! never takes ownership) and owns lists other than the keyed ones (containers, volumes,
//! env… by their merge key) and finalizers atomically; JSON patches skip field
//! validation; request bodies are JSON or YAML. Protobuf bodies get a 415 naming the
//! alternative: client-go falls back to JSON only after a 415 for CBOR, and kubectl's
//! generators (`kubectl create configmap|namespace|deployment …`) send protobuf, so use
//! `kubectl create -f` / `kubectl apply -f` with a manifest against the simulator.

pub mod admission;
pub mod api_error;
pub mod apply;
pub mod cloud;
pub mod controllers;
pub mod faults;
pub mod field_validation;
pub mod kubeconfig;
pub mod patch;
pub mod resource;
pub mod scenario;
pub mod selector;
pub mod server;
pub mod store;
pub mod table;
pub mod tls;

pub use api_error::ApiError;
pub use server::{RunningServer, ServeError, serve, serve_with_faults};
pub use store::Store;
