//! The bare-claim planner: one claim, unused or with the bare pods using it recreated.

use csi_migrate_translate::Translator;

use super::{
    Batch, PLAN_API_VERSION, Plan, PlanError, PlanOptions, PodPlan, Preflight, VolumeContext,
    WorkloadKind, is_ready, pods_using, recreated_pod,
};
use crate::snapshot::WorkloadSnapshot;

/// Plans the migration of one claim to `target_class`. A claim no pod uses is replaced
/// directly; pods using it must be bare (no controller, which would recreate them at
/// once) and are deleted and recreated around the replacement with `--allow-downtime`.
///
/// Pure: reads only `snapshot`. Returns every blocker found, or the plan.
pub fn plan_claim(
    snapshot: &WorkloadSnapshot,
    target_class: &str,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let Some(name) = snapshot.claim.clone() else {
        return Err(PlanError::missing(WorkloadKind::PersistentVolumeClaim));
    };
    let mut preflight = Preflight::default();
    let namespace = snapshot
        .claims
        .iter()
        .find(|c| c.metadata.name.as_deref() == Some(name.as_str()))
        .and_then(|c| c.metadata.namespace.clone())
        .unwrap_or_default();

    let mut pods = Vec::new();
    for pod in pods_using(snapshot, &name) {
        let pod_name = pod.metadata.name.clone().unwrap_or_default();
        let pod_object = format!("pod/{namespace}/{pod_name}");
        if !options.allow_downtime {
            preflight.block(
                pod_object,
                "spec.volumes",
                format!(
                    "uses claim {name}; pass --allow-downtime to delete and recreate the pod around the replacement"
                ),
            );
            continue;
        }
        if let Some(owner) = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .find(|o| o.controller == Some(true))
        {
            preflight.block(
                pod_object,
                "metadata.ownerReferences",
                format!(
                    "controlled by {}/{}, which would recreate it at once; migrate that workload instead",
                    owner.kind, owner.name
                ),
            );
            continue;
        }
        if !is_ready(pod) {
            preflight.block(
                pod_object,
                "status.conditions[Ready]",
                "pod is not Running and Ready",
            );
            continue;
        }
        pods.push(PodPlan {
            name: pod_name,
            uid: pod.metadata.uid.clone().unwrap_or_default(),
            recreated: recreated_pod(pod),
        });
    }

    let context = VolumeContext {
        snapshot,
        namespace: &namespace,
        target_class,
        owner_uid: "",
        translator: Translator::new(),
    };
    let mut driver = None;
    let volumes = preflight.plan_claims(&context, std::slice::from_ref(&name), &mut driver);
    let driver = driver.unwrap_or_default();
    preflight.check_target(&context, &driver);

    let plan = Plan {
        api_version: PLAN_API_VERSION.to_owned(),
        kind: WorkloadKind::PersistentVolumeClaim,
        namespace,
        name,
        uid: String::new(),
        target_storage_class: target_class.to_owned(),
        driver,
        batches: vec![Batch { pods, volumes }],
        recreated_statefulset: None,
        deployment_replicas: None,
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    preflight.finish(plan, options)
}
