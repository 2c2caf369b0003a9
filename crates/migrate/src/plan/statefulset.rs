//! The rolling StatefulSet planner: one replica at a time, the set orphan-deleted meanwhile.

use super::{
    Batch, PLAN_API_VERSION, Plan, PlanError, PlanOptions, PodPlan, Preflight, VolumeContext,
    WorkloadIdentity, WorkloadKind, is_ready, recreated_pod, recreated_statefulset,
};
use crate::snapshot::WorkloadSnapshot;
use csi_migrate_translate::Translator;

/// Plans the rolling in-place migration of one StatefulSet's volumes to `target_class`.
///
/// Pure: reads only `snapshot`. Returns every blocker found, or the plan.
pub fn plan_statefulset(
    snapshot: &WorkloadSnapshot,
    target_class: &str,
    options: PlanOptions,
) -> Result<Plan, PlanError> {
    let Some(set) = snapshot.statefulset.as_ref() else {
        return Err(PlanError::missing(WorkloadKind::StatefulSet));
    };
    let mut preflight = Preflight::default();
    let WorkloadIdentity {
        name,
        namespace,
        uid: set_uid,
        object: set_object,
    } = WorkloadIdentity::of(WorkloadKind::StatefulSet, &set.metadata);
    let set_spec = &set.spec;
    let replicas = set_spec.replicas.unwrap_or(1);

    preflight.check_workload_meta(&set.metadata, &set_object, target_class);
    if replicas == 0 {
        preflight.block(
            set_object.clone(),
            "spec.replicas",
            "0 replicas: nothing runs to migrate rolling; scale up first",
        );
    } else if replicas == 1 && !options.allow_downtime {
        preflight.block(
            set_object.clone(),
            "spec.replicas",
            "a single replica is down while its volume is replaced; pass --allow-downtime",
        );
    }
    let retention = set_spec.persistent_volume_claim_retention_policy.as_ref();
    if retention.and_then(|r| r.when_deleted.as_deref()) == Some("Delete") {
        preflight.warn(format!(
            "{set_object} has persistentVolumeClaimRetentionPolicy.whenDeleted=Delete: handled by deleting it with propagationPolicy=Orphan (the garbage collector strips its ownerReferences from the claims instead of deleting them) while every PV is Retain"
        ));
    }
    let templates = set_spec.volume_claim_templates.clone().unwrap_or_default();
    if templates.is_empty() {
        preflight.block(
            set_object.clone(),
            "spec.volumeClaimTemplates",
            "the StatefulSet has no volumeClaimTemplates: nothing to migrate",
        );
    }

    let context = VolumeContext {
        snapshot,
        namespace: &namespace,
        target_class,
        // whenDeleted=Delete: the set's own reference is stripped by the orphan delete.
        owner_uid: &set_uid,
        translator: Translator::new(),
    };
    let mut driver = None;
    let mut batches = Vec::new();
    for ordinal in (0..replicas.max(0)).rev() {
        let pod_name = format!("{name}-{ordinal}");
        let pod_object = format!("pod/{namespace}/{pod_name}");
        let pod = snapshot.pods.iter().find(|p| {
            p.metadata.name.as_deref() == Some(pod_name.as_str())
                && p.metadata.namespace.as_deref() == Some(namespace.as_str())
        });
        let Some(pod) = pod else {
            preflight.block(
                pod_object,
                "metadata.name",
                "pod not found; every replica must be Running and Ready before a rolling migration",
            );
            continue;
        };
        if !is_ready(pod) {
            preflight.block(
                pod_object.clone(),
                "status.conditions[Ready]",
                "pod is not Running and Ready",
            );
        }
        if pod.metadata.deletion_timestamp.is_some() {
            preflight.block(
                pod_object.clone(),
                "metadata.deletionTimestamp",
                "pod is terminating",
            );
        }
        let controlled_by_set = pod
            .metadata
            .owner_references
            .iter()
            .flatten()
            .any(|o| o.controller == Some(true) && o.uid == set_uid);
        if !controlled_by_set {
            preflight.block(
                pod_object.clone(),
                "metadata.ownerReferences",
                format!("pod is not controlled by {set_object}"),
            );
        }
        let claims: Vec<String> = templates
            .iter()
            .map(|t| {
                let template = t.metadata.name.as_deref().unwrap_or_default();
                format!("{template}-{name}-{ordinal}")
            })
            .collect();
        let volumes = preflight.plan_claims(&context, &claims, &mut driver);
        batches.push(Batch {
            pods: vec![PodPlan {
                name: pod_name,
                uid: pod.metadata.uid.clone().unwrap_or_default(),
                recreated: recreated_pod(pod),
            }],
            volumes,
        });
    }

    let driver = driver.unwrap_or_default();
    preflight.check_target(&context, &driver);
    let template_labels = set_spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.labels.clone())
        .unwrap_or_default();
    preflight.warn_disruption_budgets(
        snapshot,
        &namespace,
        &template_labels,
        "the migration deletes them directly, one at a time, each back Ready before the next",
    );
    for claim in &snapshot.claims {
        let claim_name = claim.metadata.name.as_deref().unwrap_or_default();
        let scaled_away = templates.iter().any(|t| {
            let prefix = format!("{}-{name}-", t.metadata.name.as_deref().unwrap_or_default());
            claim_name
                .strip_prefix(&prefix)
                .and_then(|ordinal| ordinal.parse::<i32>().ok())
                .is_some_and(|ordinal| ordinal >= replicas)
        });
        if scaled_away && claim.metadata.namespace.as_deref() == Some(namespace.as_str()) {
            preflight.warn(format!(
                "persistentvolumeclaim/{namespace}/{claim_name} belongs to a scaled-away ordinal and stays on its in-tree PV; scaling up later reuses it as is"
            ));
        }
    }

    let plan = Plan {
        api_version: PLAN_API_VERSION.to_owned(),
        kind: WorkloadKind::StatefulSet,
        namespace,
        name,
        uid: set_uid,
        target_storage_class: target_class.to_owned(),
        driver,
        recreated_statefulset: Some(recreated_statefulset(set, target_class)),
        deployment_replicas: None,
        batches,
        steps: Vec::new(),
        warnings: Vec::new(),
    };
    preflight.finish(plan, options)
}
