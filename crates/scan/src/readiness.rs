//! Per-workload readiness: which findings concern a workload (through its pods, claims, volumes, classes, drivers, nodes).

use std::collections::BTreeSet;

use crate::fast_hash::{HashMap, HashSet};
use crate::report::{Finding, ObjectRef, Readiness, Severity, WorkloadReport};
use crate::view::{ClusterView, Workload};

/// An [`ObjectRef`] as borrowed strings: kind, namespace, name. Readiness looks up a
/// few dozen objects per workload; building owned `ObjectRef`s for each was most of
/// its time on a large cluster.
type ObjectKey<'k> = (&'k str, Option<&'k str>, &'k str);

fn key_of(object: &ObjectRef) -> ObjectKey<'_> {
    (
        object.kind.as_str(),
        object.namespace.as_deref(),
        object.name.as_str(),
    )
}

/// Assesses every workload that uses in-tree storage.
pub fn assess(view: &ClusterView<'_>, findings: &[Finding]) -> Vec<WorkloadReport> {
    let mut by_object: HashMap<ObjectKey<'_>, Vec<&Finding>> = HashMap::default();
    for finding in findings {
        by_object
            .entry(key_of(&finding.object))
            .or_default()
            .push(finding);
    }
    // Each workload is assessed on its own; a large cluster's thousands are split over
    // the cores, results kept in workload order.
    let assess_part = |part: &[Workload<'_>]| -> Vec<WorkloadReport> {
        part.iter()
            .map(|w| assess_one(view, w, &by_object))
            .collect()
    };
    let threads = std::thread::available_parallelism().map_or(1, usize::from);
    if threads < 2 || view.workloads.len() < 256 {
        return assess_part(&view.workloads);
    }
    let chunk = view.workloads.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = view
            .workloads
            .chunks(chunk)
            .map(|part| scope.spawn(move || assess_part(part)))
            .collect();
        let mut out = Vec::with_capacity(view.workloads.len());
        for (handle, part) in handles.into_iter().zip(view.workloads.chunks(chunk)) {
            match handle.join() {
                Ok(mut done) => out.append(&mut done),
                // A panic in a worker is a bug; redo that part here so it surfaces normally.
                Err(_) => out.extend(assess_part(part)),
            }
        }
        out
    })
}

/// The objects whose findings concern `workload`, and the plugins it uses.
fn related_objects<'v>(
    view: &'v ClusterView<'_>,
    w: &'v Workload<'_>,
) -> (Vec<ObjectKey<'v>>, HashSet<&'static str>) {
    let ns = Some(w.namespace);
    let mut objects = vec![key_of(&w.object)];
    let mut plugins = HashSet::default();
    for pod in &w.pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        objects.push(("Pod", ns, name));
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            objects.push(("Node", None, node));
            objects.push(("CSINode", None, node));
        }
    }
    for claim in &w.claims {
        objects.push(("PersistentVolumeClaim", ns, claim));
        if let Some(pvc) = view.claims.get(&(w.namespace, claim.as_str()))
            && let Some(class) = crate::view::claim_class(pvc)
        {
            objects.push(("StorageClass", None, class));
        }
        if let Some(volume) = view.in_tree_volume_of_claim(w.namespace, claim) {
            objects.push(("PersistentVolume", None, volume.name()));
            plugins.insert(volume.plugin.name);
        }
    }
    for (_, plugin) in &w.inline_volumes {
        plugins.insert(plugin.name);
    }
    for (_, class, plugin) in &w.in_tree_claim_templates {
        objects.push(("StorageClass", None, class));
        plugins.insert(plugin.name);
    }
    for plugin in &plugins {
        if let Some(info) = crate::plugins::plugin_by_name(plugin) {
            objects.push(("CSIDriver", None, info.csi_driver));
        }
    }
    (objects, plugins)
}

fn assess_one(
    view: &ClusterView<'_>,
    w: &Workload<'_>,
    by_object: &HashMap<ObjectKey<'_>, Vec<&Finding>>,
) -> WorkloadReport {
    let (objects, plugins) = related_objects(view, w);
    let mut blockers = BTreeSet::new();
    let mut warnings = BTreeSet::new();
    for object in &objects {
        for finding in by_object.get(object).into_iter().flatten() {
            if finding.plugin.is_some_and(|p| !plugins.contains(p)) {
                continue;
            }
            match finding.severity {
                Severity::Blocker => blockers.insert(finding.code),
                Severity::Warning => warnings.insert(finding.code),
                Severity::Info => false,
            };
        }
    }
    let (readiness, note) = if !blockers.is_empty() {
        (Readiness::Blocked, None)
    } else if !w.inline_volumes.is_empty() {
        (
            Readiness::Manual,
            Some(
                "inline in-tree volumes: move them to PersistentVolumeClaims in the pod template first"
                    .to_owned(),
            ),
        )
    } else if !w.kind.migrate_supports() {
        (
            Readiness::Manual,
            Some(format!(
                "csi-migrate migrates StatefulSets, Deployments and single claims: stop this {} and run `csi-migrate migrate pvc` for each claim",
                w.kind.as_str()
            )),
        )
    } else {
        (Readiness::Ready, None)
    };
    WorkloadReport {
        workload: w.object.clone(),
        replicas: w.replicas,
        claims: w.claims.iter().cloned().collect(),
        in_tree_claims: w.in_tree_claims.iter().cloned().collect(),
        inline_volumes: w.inline_volumes.iter().map(|(n, _)| n.clone()).collect(),
        in_tree_claim_templates: w
            .in_tree_claim_templates
            .iter()
            .map(|(t, _, _)| t.clone())
            .collect(),
        readiness,
        blockers: blockers.into_iter().collect(),
        warnings: warnings.into_iter().collect(),
        note,
    }
}
