//! The Deployment planner: scale to zero, replace every in-tree claim, scale back.

use std::collections::BTreeMap;

use csi_migrate_translate::Translator;

use super::{
    Batch, PLAN_API_VERSION, Plan, PlanError, PlanOptions, Preflight, VolumeContext,
    WorkloadIdentity, WorkloadKind, is_on_csi, pods_using,
};
use crate::snapshot::WorkloadSnapshot;

/// Plans the migration of a Deployment's in-tree claims to `target_class`: the Deployment
/// is scaled to zero (its pods go, nothing mounts the claims), each claim is replaced,
/// and it is scaled back to the replicas it had. Downtime by nature: `--allow-downtime`.
///
/// Pure: reads only `snapshot`. Returns every blocker found, or the plan.
pub fn plan_deployment(
    snapshot: &WorkloadSnapshot,
    target_class: &str,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let Some(deployment) = snapshot.deployment.as_ref() else {
        return Err(PlanError::missing(WorkloadKind::Deployment));
    };
    let mut preflight = Preflight::default();
    let WorkloadIdentity {
        name,
        namespace,
        uid,
        object,
    } = WorkloadIdentity::of(WorkloadKind::Deployment, &deployment.metadata);
    let spec = &deployment.spec;
    let replicas = spec.replicas.unwrap_or(1);

    preflight.check_workload_meta(&deployment.metadata, &object, target_class);
    if replicas > 0 && !options.allow_downtime {
        preflight.block(
            object.clone(),
            "spec.replicas",
            format!(
                "its {replicas} replica(s) are scaled to zero while the claims are replaced; pass --allow-downtime"
            ),
        );
    }
    for autoscaler in &snapshot.autoscalers {
        let target = &autoscaler.spec.scale_target_ref;
        if target.kind == "Deployment" && target.name == name {
            preflight.warn(format!(
                "horizontalpodautoscaler/{namespace}/{} scales this Deployment: it does not act while the Deployment has 0 replicas and takes over again once it is scaled back to {replicas}",
                autoscaler.metadata.name.clone().unwrap_or_default()
            ));
        }
    }

    // The Deployment's own pods match its selector; any other pod using a claim would
    // keep it mounted through the scale-down.
    let selector: BTreeMap<String, String> = spec.selector.match_labels.clone().unwrap_or_default();
    let is_own = |labels: Option<&BTreeMap<String, String>>| {
        !selector.is_empty()
            && labels.is_some_and(|l| selector.iter().all(|(k, v)| l.get(k) == Some(v)))
    };
    let mut claims = Vec::new();
    for claim in snapshot.workload_claims() {
        if is_on_csi(snapshot, &claim) {
            preflight.warn(format!(
                "persistentvolumeclaim/{namespace}/{claim} is already on a CSI volume and is left as is"
            ));
            continue;
        }
        for pod in pods_using(snapshot, &claim) {
            if !is_own(pod.metadata.labels.as_ref()) {
                preflight.block(
                    format!(
                        "pod/{namespace}/{}",
                        pod.metadata.name.as_deref().unwrap_or_default()
                    ),
                    "spec.volumes",
                    format!(
                        "uses claim {claim} but does not belong to {object}: scaling it down would not release the claim; stop that pod first"
                    ),
                );
            }
        }
        claims.push(claim);
    }
    if claims.is_empty() {
        preflight.block(
            object.clone(),
            "spec.template.spec.volumes",
            "the pod template names no claim on an in-tree volume: nothing to migrate",
        );
    }

    let context = VolumeContext {
        snapshot,
        namespace: &namespace,
        target_class,
        owner_uid: "",
        translator: Translator::new(),
    };
    let mut driver = None;
    let volumes = preflight.plan_claims(&context, &claims, &mut driver);
    let driver = driver.unwrap_or_default();
    preflight.check_target(&context, &driver);
    let template_labels = spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    preflight.warn_disruption_budgets(
        snapshot,
        &namespace,
        &template_labels,
        "scaling the Deployment to zero is not an eviction, so the budget does not hold it back",
    );

    let plan = Plan {
        api_version: PLAN_API_VERSION.to_owned(),
        kind: WorkloadKind::Deployment,
        namespace,
        name,
        uid,
        target_storage_class: target_class.to_owned(),
        driver,
        batches: vec![Batch {
            pods: Vec::new(),
            volumes,
        }],
        recreated_statefulset: None,
        deployment_replicas: Some(replicas),
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    preflight.finish(plan, options)
}
