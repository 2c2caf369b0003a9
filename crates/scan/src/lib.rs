//! `csi-migrate scan`: finds everything in a cluster (or a dump of one) still on in-tree
//! volume plugins, and every blocker to migrating it to CSI in place.
//!
//! The core is pure: [`scan`] takes a [`ClusterSnapshot`] (plain typed objects) and
//! returns a [`Report`] (inventory, findings, per-workload readiness, counts). Loaders
//! at the edge fill the snapshot from files ([`load::files`]) or a live cluster
//! ([`load::live`]); renderers ([`render`]) turn the report into a table, JSON or
//! Markdown.
//!
//! ```
//! use csi_migrate_scan::{scan, ScanOptions, load::files::SnapshotBuilder};
//!
//! let mut input = SnapshotBuilder::new();
//! input.add_bytes(br#"{"kind": "PersistentVolume", "apiVersion": "v1",
//!     "metadata": {"name": "pv-1"},
//!     "spec": {"persistentVolumeReclaimPolicy": "Delete",
//!              "awsElasticBlockStore": {"volumeID": "vol-1"}}}"#, "pv.json").unwrap();
//! let report = scan(&input.finish(), &ScanOptions::default());
//! assert_eq!(report.inventory.persistent_volumes[0].csi_driver, "ebs.csi.aws.com");
//! assert!(report.findings.iter().any(|f| f.code == "PV_RECLAIM_DELETE"));
//! ```
//!
//! Every check is a [`rules::Rule`] in its own file under `rules/`, with a stable code.

pub mod fast_hash;
pub mod inventory;
pub mod load;
pub mod objects;
pub mod plugins;
pub mod readiness;
pub mod render;
pub mod report;
pub mod rules;
pub mod snapshot;
pub mod view;

use std::collections::BTreeMap;

pub use report::{Finding, ObjectRef, Readiness, Report, SCHEMA_VERSION, Severity};
pub use snapshot::{ClusterSnapshot, ResourceKind, SecretName, ServerVersion, VersionSource};
pub use view::ScanOptions;

use crate::report::Summary;
use crate::rules::{INPUT_INCOMPLETE, RULES};
use crate::view::ClusterView;

/// Runs every rule over the snapshot and assembles the report. No I/O.
pub fn scan(snapshot: &ClusterSnapshot, options: &ScanOptions) -> Report {
    let view = ClusterView::new(snapshot, options);
    // The inventory does not depend on the findings, and on a large cluster it takes
    // about as long as all the rules: build it on a second thread meanwhile.
    let (findings, inventory) = std::thread::scope(|scope| {
        let inventory = scope.spawn(|| inventory::build(&view));
        let findings = run_rules(&view);
        // A panic in the worker is a bug; build it again here so it surfaces normally.
        let inventory = inventory.join().unwrap_or_else(|_| inventory::build(&view));
        (findings, inventory)
    });
    let workloads = readiness::assess(&view, &findings);
    let count = |s: Severity| findings.iter().filter(|f| f.severity == s).count();
    let readiness_count = |r: Readiness| workloads.iter().filter(|w| w.readiness == r).count();
    let summary = Summary {
        blockers: count(Severity::Blocker),
        warnings: count(Severity::Warning),
        infos: count(Severity::Info),
        in_tree_storage_classes: inventory.storage_classes.len(),
        in_tree_persistent_volumes: inventory.persistent_volumes.len(),
        in_tree_persistent_volume_claims: inventory.persistent_volume_claims.len(),
        in_tree_inline_volumes: inventory.inline_volumes.len(),
        workloads: workloads.len(),
        workloads_ready: readiness_count(Readiness::Ready),
        workloads_blocked: readiness_count(Readiness::Blocked),
        workloads_manual: readiness_count(Readiness::Manual),
    };
    Report {
        schema_version: SCHEMA_VERSION,
        server_version: view.server_version,
        namespace: options.namespace.clone(),
        inventory,
        findings,
        workloads,
        summary,
    }
}

/// Runs every rule whose inputs were collected, reports those that were skipped, and
/// sorts the findings: most severe first, then by code, object and message.
fn run_rules(view: &ClusterView<'_>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let mut skipped: BTreeMap<ResourceKind, Vec<&'static str>> = BTreeMap::new();
    for rule in RULES {
        let missing: Vec<ResourceKind> = rule
            .requires()
            .iter()
            .copied()
            .filter(|k| !view.collected(*k))
            .collect();
        if missing.is_empty() {
            rule.run(view, &mut findings);
        } else {
            for kind in missing {
                skipped.entry(kind).or_default().push(rule.code());
            }
        }
    }
    if !view.plugins_in_use.is_empty() {
        for (kind, codes) in skipped {
            findings.push(Finding {
                code: INPUT_INCOMPLETE,
                severity: Severity::Warning,
                object: ObjectRef::cluster("Input", kind.plural()),
                message: format!(
                    "The input has no {kind} objects (not in the dump, or not allowed to list them), so these checks did not run: {}.",
                    codes.join(", ")
                ),
                remedy: format!(
                    "Add `kubectl get {} -A -o yaml` to the dump, or grant list on {} to the scanner.",
                    kind.plural(),
                    kind.plural()
                ),
                plugin: None,
            });
        }
    }
    findings.sort_by(|a, b| {
        b.severity
            .cmp(&a.severity)
            .then_with(|| a.code.cmp(b.code))
            .then_with(|| a.object.cmp(&b.object))
            .then_with(|| a.message.cmp(&b.message))
    });
    findings
}
