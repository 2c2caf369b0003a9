//! Per-workload readiness: which findings concern a workload (through its pods, claims, volumes, classes, drivers, nodes).

use std::collections::{BTreeSet, HashMap, HashSet};

use crate::report::{Finding, ObjectRef, Readiness, Severity, WorkloadReport};
use crate::view::{ClusterView, Workload};

/// Assesses every workload that uses in-tree storage.
pub fn assess(view: &ClusterView<'_>, findings: &[Finding]) -> Vec<WorkloadReport> {
    let mut by_object: HashMap<&ObjectRef, Vec<&Finding>> = HashMap::new();
    for finding in findings {
        by_object.entry(&finding.object).or_default().push(finding);
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
fn related_objects(
    view: &ClusterView<'_>,
    w: &Workload<'_>,
) -> (Vec<ObjectRef>, HashSet<&'static str>) {
    let mut objects = vec![w.object.clone()];
    let mut plugins = HashSet::new();
    for pod in &w.pods {
        let name = pod.metadata.name.as_deref().unwrap_or_default();
        objects.push(ObjectRef::namespaced("Pod", w.namespace, name));
        if let Some(node) = pod.spec.as_ref().and_then(|s| s.node_name.as_deref()) {
            objects.push(ObjectRef::cluster("Node", node));
            objects.push(ObjectRef::cluster("CSINode", node));
        }
    }
    for claim in &w.claims {
        objects.push(ObjectRef::namespaced(
            "PersistentVolumeClaim",
            w.namespace,
            claim,
        ));
        if let Some(pvc) = view.claims.get(&(w.namespace, claim.as_str()))
            && let Some(class) = crate::view::claim_class(pvc)
        {
            objects.push(ObjectRef::cluster("StorageClass", class));
        }
        if let Some(volume) = view.in_tree_volume_of_claim(w.namespace, claim) {
            objects.push(ObjectRef::cluster("PersistentVolume", volume.name()));
            plugins.insert(volume.plugin.name);
        }
    }
    for (_, plugin) in &w.inline_volumes {
        plugins.insert(plugin.name);
    }
    for (_, class, plugin) in &w.in_tree_claim_templates {
        objects.push(ObjectRef::cluster("StorageClass", class));
        plugins.insert(plugin.name);
    }
    for plugin in &plugins {
        if let Some(info) = crate::plugins::plugin_by_name(plugin) {
            objects.push(ObjectRef::cluster("CSIDriver", info.csi_driver));
        }
    }
    (objects, plugins)
}

fn assess_one(
    view: &ClusterView<'_>,
    w: &Workload<'_>,
    by_object: &HashMap<&ObjectRef, Vec<&Finding>>,
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
