//! Table tests of the planner over hand-built snapshots.

#![allow(clippy::unwrap_used)]

use serde_json::{Value, json};

use super::*;

fn from(value: Value) -> serde_json::Result<WorkloadSnapshot> {
    serde_json::from_value(value)
}

/// A 3-replica StatefulSet `web` on aws-ebs (Delete), every pod Ready, target `gp2-csi`.
pub(crate) fn snapshot_json(replicas: i32) -> Value {
    let mut pods = Vec::new();
    let mut claims = Vec::new();
    let mut volumes = Vec::new();
    for i in 0..replicas {
        pods.push(json!({
            "metadata": {"name": format!("web-{i}"), "namespace": "default", "uid": format!("pod-uid-{i}"),
                "resourceVersion": "5", "labels": {"app": "web", "controller-revision-hash": "web-abc"},
                "ownerReferences": [{"apiVersion": "apps/v1", "kind": "StatefulSet", "name": "web",
                    "uid": "set-uid", "controller": true, "blockOwnerDeletion": true}]},
            "spec": {"nodeName": "node-0", "hostname": format!("web-{i}"), "subdomain": "web",
                "containers": [{"name": "app", "image": "nginx"}],
                "volumes": [{"name": "data", "persistentVolumeClaim": {"claimName": format!("data-web-{i}")}}]},
            "status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        }));
        claims.push(json!({
            "metadata": {"name": format!("data-web-{i}"), "namespace": "default", "uid": format!("claim-uid-{i}"),
                "labels": {"app": "web"},
                "annotations": {"pv.kubernetes.io/bind-completed": "yes",
                    "pv.kubernetes.io/bound-by-controller": "yes",
                    "volume.kubernetes.io/storage-provisioner": "ebs.csi.aws.com",
                    "team": "storage"}},
            "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "gp2",
                "resources": {"requests": {"storage": "1Gi"}}, "volumeName": format!("pvc-{i}"),
                "volumeMode": "Filesystem"},
            "status": {"phase": "Bound"}
        }));
        volumes.push(json!({
            "metadata": {"name": format!("pvc-{i}"), "uid": format!("pv-uid-{i}"),
                "annotations": {"pv.kubernetes.io/provisioned-by": "kubernetes.io/aws-ebs"}},
            "spec": {"capacity": {"storage": "1Gi"}, "accessModes": ["ReadWriteOnce"],
                "persistentVolumeReclaimPolicy": "Delete", "storageClassName": "gp2",
                "volumeMode": "Filesystem",
                "awsElasticBlockStore": {"volumeID": format!("aws://zone-a/vol-{i}"), "fsType": "ext4"},
                "claimRef": {"kind": "PersistentVolumeClaim", "namespace": "default",
                    "name": format!("data-web-{i}"), "uid": format!("claim-uid-{i}")}},
            "status": {"phase": "Bound"}
        }));
    }
    json!({
        "statefulset": {
            "metadata": {"name": "web", "namespace": "default", "uid": "set-uid", "resourceVersion": "9",
                "generation": 2, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": {"replicas": replicas, "serviceName": "web", "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}},
                    "spec": {"containers": [{"name": "app", "image": "nginx"}]}},
                "volumeClaimTemplates": [{"metadata": {"name": "data"}, "spec": {"accessModes": ["ReadWriteOnce"],
                    "storageClassName": "gp2", "resources": {"requests": {"storage": "1Gi"}}}}]},
            "status": {"replicas": replicas}
        },
        "pods": pods, "claims": claims, "volumes": volumes,
        "storageClasses": [
            {"metadata": {"name": "gp2"}, "provisioner": "kubernetes.io/aws-ebs", "reclaimPolicy": "Delete"},
            {"metadata": {"name": "gp2-csi"}, "provisioner": "ebs.csi.aws.com", "reclaimPolicy": "Delete"},
            {"metadata": {"name": "other-csi"}, "provisioner": "pd.csi.storage.gke.io"}
        ],
        "csiDrivers": [{"metadata": {"name": "ebs.csi.aws.com"}, "spec": {"attachRequired": true}}],
        "disruptionBudgets": []
    })
}

fn plan(value: Value, target: &str, options: PlanOptions) -> Result<Plan, PlanError> {
    plan_statefulset(&from(value).unwrap(), target, options)
}

fn blockers(result: Result<Plan, PlanError>) -> Vec<Blocker> {
    match result {
        Err(PlanError::Blocked(b)) => b,
        Ok(_) => panic!("expected blockers, got a plan"),
    }
}

fn has_blocker(blockers: &[Blocker], object: &str, field: &str) -> bool {
    blockers
        .iter()
        .any(|b| b.object == object && b.field == field)
}

#[test]
fn three_replicas_plan_in_safe_order() {
    let plan = plan(snapshot_json(3), "gp2-csi", PlanOptions::default()).unwrap();
    assert_eq!(plan.driver, "ebs.csi.aws.com");
    assert_eq!(plan.kind, WorkloadKind::StatefulSet);
    assert_eq!(plan.batches.len(), 3);
    assert_eq!(
        plan.batches[0].pods[0].name, "web-2",
        "highest ordinal first"
    );
    // 3 Retain + orphan delete + 3 × 8 + recreate + adoption + 3 restores.
    assert_eq!(plan.steps.len(), 3 + 1 + 24 + 2 + 3);
    let first_delete = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::DeletePod { .. } | Step::DeleteClaim { .. }))
        .unwrap();
    let last_retain = plan
        .steps
        .iter()
        .rposition(|s| matches!(s, Step::RetainVolume { .. }))
        .unwrap();
    let orphan = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::OrphanDeleteStatefulSet { .. }))
        .unwrap();
    assert!(last_retain < orphan && orphan < first_delete);
    // The old PV is deleted before the new one is created, for every volume.
    for volume in plan.volumes() {
        let deleted = plan
            .steps
            .iter()
            .position(
                |s| matches!(s, Step::DeleteVolume { volume: v, .. } if *v == volume.old_volume),
            )
            .unwrap();
        let created = plan
            .steps
            .iter()
            .position(|s| matches!(s, Step::CreateVolume { volume: v } if Some(v) == volume.new_volume.metadata.name.as_ref()))
            .unwrap();
        assert!(deleted < created);
    }
    assert_eq!(plan.steps[plan.steps.len() - 4], Step::AwaitAdoption);
}

#[test]
fn new_objects_are_pre_bound_fresh_and_on_the_target_class() {
    let plan = plan(snapshot_json(3), "gp2-csi", PlanOptions::default()).unwrap();
    let volume = plan.volume_by_claim("data-web-1").unwrap();
    assert_eq!(volume.volume_handle, "vol-1");
    assert_eq!(volume.original_reclaim_policy, "Delete");
    let pv = volume.new_volume.spec.as_ref().unwrap();
    assert_eq!(
        volume.new_volume.metadata.name.as_deref(),
        Some("pvc-1-csi")
    );
    assert_eq!(
        pv.persistent_volume_reclaim_policy.as_deref(),
        Some("Retain")
    );
    assert_eq!(pv.storage_class_name.as_deref(), Some("gp2-csi"));
    assert_eq!(pv.csi.as_ref().unwrap().driver, "ebs.csi.aws.com");
    let claim_ref = pv.claim_ref.as_ref().unwrap();
    assert_eq!(claim_ref.name.as_deref(), Some("data-web-1"));
    assert_eq!(claim_ref.uid, None, "pre-bound by name only");
    assert_eq!(pv.volume_mode.as_deref(), Some("Filesystem"));
    let claim = &volume.new_claim;
    let spec = claim.spec.as_ref().unwrap();
    assert_eq!(spec.volume_name.as_deref(), Some("pvc-1-csi"));
    assert_eq!(spec.storage_class_name.as_deref(), Some("gp2-csi"));
    let annotations = claim.metadata.annotations.as_ref().unwrap();
    assert!(!annotations.contains_key("pv.kubernetes.io/bind-completed"));
    assert!(!annotations.contains_key("pv.kubernetes.io/bound-by-controller"));
    assert!(!annotations.contains_key("volume.kubernetes.io/storage-provisioner"));
    assert_eq!(annotations.get("team").map(String::as_str), Some("storage"));
    assert_eq!(claim.metadata.uid, None);
    // The recreated pod has no owner and no node; the set's templates use the target class.
    let pod = &plan.pod("web-0").unwrap().1.recreated;
    assert_eq!(pod.metadata.owner_references, None);
    assert_eq!(pod.metadata.uid, None);
    assert_eq!(pod.spec.as_ref().unwrap().node_name, None);
    let set = plan.recreated_statefulset.as_ref().unwrap();
    assert_eq!(set.metadata.uid, None);
    assert_eq!(set.metadata.resource_version, None);
    assert_eq!(set.status, None);
    let template = &set.spec.volume_claim_templates.as_ref().unwrap()[0];
    assert_eq!(
        template
            .spec
            .as_ref()
            .unwrap()
            .storage_class_name
            .as_deref(),
        Some("gp2-csi")
    );
}

#[test]
fn plan_round_trips_through_json() {
    let plan = plan(snapshot_json(2), "gp2-csi", PlanOptions::default()).unwrap();
    let text = serde_json::to_string(&plan).unwrap();
    assert!(text.contains(r#""action":"retainVolume""#));
    let back: Plan = serde_json::from_str(&text).unwrap();
    assert_eq!(back, plan);
}

#[test]
fn missing_target_class_and_wrong_provisioner_block() {
    let b = blockers(plan(snapshot_json(3), "nope", PlanOptions::default()));
    assert!(has_blocker(&b, "storageclass/nope", "metadata.name"));
    let b = blockers(plan(snapshot_json(3), "other-csi", PlanOptions::default()));
    assert!(has_blocker(&b, "storageclass/other-csi", "provisioner"));
    assert!(b[0].to_string().contains("ebs.csi.aws.com"));
    let b = blockers(plan(snapshot_json(3), "gp2", PlanOptions::default()));
    assert!(has_blocker(&b, "storageclass/gp2", "provisioner"));
}

#[test]
fn single_replica_needs_allow_downtime() {
    let b = blockers(plan(snapshot_json(1), "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(&b, "statefulset/default/web", "spec.replicas"));
    let allowed = PlanOptions {
        allow_downtime: true,
        ..Default::default()
    };
    assert!(plan(snapshot_json(1), "gp2-csi", allowed).is_ok());
}

#[test]
fn unbound_claim_and_stale_claim_ref_block() {
    let mut value = snapshot_json(3);
    value["claims"][0]["status"]["phase"] = json!("Pending");
    value["volumes"][1]["spec"]["claimRef"]["uid"] = json!("someone-else");
    let b = blockers(plan(value, "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(
        &b,
        "persistentvolumeclaim/default/data-web-0",
        "status.phase"
    ));
    assert!(has_blocker(&b, "persistentvolume/pvc-1", "spec.claimRef"));
}

#[test]
fn capacity_access_mode_and_volume_mode_mismatches_block() {
    let mut value = snapshot_json(3);
    value["volumes"][0]["spec"]["capacity"]["storage"] = json!("1G"); // < 1Gi requested
    value["claims"][1]["spec"]["accessModes"] = json!(["ReadWriteMany"]);
    value["claims"][2]["spec"]["volumeMode"] = json!("Block");
    let b = blockers(plan(value, "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(
        &b,
        "persistentvolume/pvc-0",
        "spec.capacity.storage"
    ));
    assert!(has_blocker(
        &b,
        "persistentvolumeclaim/default/data-web-1",
        "spec.accessModes"
    ));
    assert!(has_blocker(
        &b,
        "persistentvolumeclaim/default/data-web-2",
        "spec.volumeMode"
    ));
}

#[test]
fn already_csi_untranslatable_and_second_pv_on_the_disk_block() {
    let mut value = snapshot_json(3);
    value["volumes"][0]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("awsElasticBlockStore");
    value["volumes"][0]["spec"]["csi"] =
        json!({"driver": "ebs.csi.aws.com", "volumeHandle": "vol-0"});
    value["volumes"][1]["spec"]
        .as_object_mut()
        .unwrap()
        .remove("awsElasticBlockStore");
    let mut twin = value["volumes"][2].clone();
    twin["metadata"]["name"] = json!("twin");
    twin["spec"]["claimRef"] = Value::Null;
    value["volumes"].as_array_mut().unwrap().push(twin);
    let b = blockers(plan(value, "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(&b, "persistentvolume/pvc-0", "spec.csi"));
    assert!(has_blocker(&b, "persistentvolume/pvc-1", "spec"));
    assert!(has_blocker(&b, "persistentvolume/twin", "spec"));
}

#[test]
fn retention_policy_when_deleted_delete_is_handled_but_pod_owned_claims_block() {
    let mut value = snapshot_json(3);
    value["statefulset"]["spec"]["persistentVolumeClaimRetentionPolicy"] =
        json!({"whenDeleted": "Delete", "whenScaled": "Delete"});
    for claim in value["claims"].as_array_mut().unwrap() {
        claim["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "StatefulSet",
            "name": "web", "uid": "set-uid", "controller": true}]);
    }
    let ok = plan(value.clone(), "gp2-csi", PlanOptions::default()).unwrap();
    assert!(ok.warnings.iter().any(|w| w.contains("whenDeleted=Delete")));
    value["claims"][0]["metadata"]["ownerReferences"] = json!([{"apiVersion": "v1", "kind": "Pod",
        "name": "web-0", "uid": "pod-uid-0", "controller": true}]);
    let b = blockers(plan(value, "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(
        &b,
        "persistentvolumeclaim/default/data-web-0",
        "metadata.ownerReferences"
    ));
}

#[test]
fn unready_pod_owned_set_vsphere_and_missing_driver_block() {
    let mut value = snapshot_json(3);
    value["pods"][0]["status"]["conditions"][0]["status"] = json!("False");
    value["statefulset"]["metadata"]["ownerReferences"] = json!([{"apiVersion": "example.com/v1", "kind": "Database", "name": "db", "uid": "x", "controller": true}]);
    value["csiDrivers"] = json!([]);
    let b = blockers(plan(value, "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(
        &b,
        "pod/default/web-0",
        "status.conditions[Ready]"
    ));
    assert!(has_blocker(
        &b,
        "statefulset/default/web",
        "metadata.ownerReferences"
    ));
    assert!(has_blocker(
        &b,
        "csidriver/ebs.csi.aws.com",
        "metadata.name"
    ));
}

#[test]
fn pdb_and_gitops_are_warnings() {
    let mut value = snapshot_json(3);
    value["disruptionBudgets"] = json!([{"metadata": {"name": "web", "namespace": "default"},
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": {"app": "web"}}}}]);
    value["statefulset"]["metadata"]["annotations"] =
        json!({"argocd.argoproj.io/tracking-id": "x"});
    let plan = plan(value, "gp2-csi", PlanOptions::default()).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("poddisruptionbudget/default/web"))
    );
    assert!(plan.warnings.iter().any(|w| w.contains("GitOps")));
}

#[test]
fn several_templates_and_block_volumes_are_planned_per_replica() {
    let mut value = snapshot_json(2);
    value["statefulset"]["spec"]["volumeClaimTemplates"]
        .as_array_mut()
        .unwrap()
        .push(json!({"metadata": {"name": "logs"}, "spec": {"accessModes": ["ReadWriteOnce"],
            "storageClassName": "gp2", "volumeMode": "Block", "resources": {"requests": {"storage": "1Gi"}}}}));
    for i in 0..2 {
        let mut claim = value["claims"][i].clone();
        claim["metadata"]["name"] = json!(format!("logs-web-{i}"));
        claim["metadata"]["uid"] = json!(format!("logs-claim-uid-{i}"));
        claim["spec"]["volumeName"] = json!(format!("logs-pv-{i}"));
        claim["spec"]["volumeMode"] = json!("Block");
        value["claims"].as_array_mut().unwrap().push(claim);
        let mut pv = value["volumes"][i].clone();
        pv["metadata"]["name"] = json!(format!("logs-pv-{i}"));
        pv["metadata"]["uid"] = json!(format!("logs-pv-uid-{i}"));
        pv["spec"]["volumeMode"] = json!("Block");
        pv["spec"]["awsElasticBlockStore"]["volumeID"] =
            json!(format!("aws://zone-a/vol-logs-{i}"));
        pv["spec"]["claimRef"]["name"] = json!(format!("logs-web-{i}"));
        pv["spec"]["claimRef"]["uid"] = json!(format!("logs-claim-uid-{i}"));
        value["volumes"].as_array_mut().unwrap().push(pv);
    }
    let plan = plan(value, "gp2-csi", PlanOptions::default()).unwrap();
    assert_eq!(plan.batches[0].volumes.len(), 2);
    // Per replica: delete pod, 2 × 5 volume steps, create pod, await Ready.
    assert_eq!(plan.steps.len(), 4 + 1 + 2 * (1 + 10 + 2) + 2 + 4);
    let logs = plan.volume_by_claim("logs-web-1").unwrap();
    assert_eq!(logs.volume_handle, "vol-logs-1");
    assert_eq!(
        logs.new_volume
            .spec
            .as_ref()
            .unwrap()
            .volume_mode
            .as_deref(),
        Some("Block")
    );
    assert_eq!(
        logs.new_claim.spec.as_ref().unwrap().volume_mode.as_deref(),
        Some("Block")
    );
    // The pod is deleted once, before either of its claims.
    let pod_deleted = plan
        .steps
        .iter()
        .position(|s| matches!(s, Step::DeletePod { pod, .. } if pod == "web-1"))
        .unwrap();
    let claims_deleted: Vec<usize> = plan
        .steps
        .iter()
        .enumerate()
        .filter(|(_, s)| matches!(s, Step::DeleteClaim { claim, .. } if claim.ends_with("web-1")))
        .map(|(i, _)| i)
        .collect();
    assert_eq!(claims_deleted.len(), 2);
    assert!(claims_deleted.iter().all(|i| *i > pod_deleted));
}

#[test]
fn chosen_reclaim_policy_replaces_the_original_at_the_end() {
    let options = PlanOptions {
        reclaim_policy: Some(ReclaimPolicy::Retain),
        ..Default::default()
    };
    let plan = plan(snapshot_json(2), "gp2-csi", options).unwrap();
    assert!(
        !plan
            .steps
            .iter()
            .any(|s| matches!(s, Step::RestoreReclaimPolicy { .. })),
        "Retain needs no final patch"
    );
    let volume = plan.volume_by_claim("data-web-0").unwrap();
    assert_eq!(volume.original_reclaim_policy, "Delete");
    assert_eq!(volume.final_reclaim_policy, "Retain");
}

/// `snapshot_json(2)` turned into a Deployment `app` (2 replicas, selector app=app) whose
/// pods mount `data-web-0` and `data-web-1`.
fn deployment_json() -> Value {
    let mut value = snapshot_json(2);
    value.as_object_mut().unwrap().remove("statefulset");
    let volumes = json!([
        {"name": "a", "persistentVolumeClaim": {"claimName": "data-web-0"}},
        {"name": "b", "persistentVolumeClaim": {"claimName": "data-web-1"}},
        {"name": "tmp", "emptyDir": {}}
    ]);
    value["deployment"] = json!({
        "metadata": {"name": "app", "namespace": "default", "uid": "deploy-uid"},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "app"}},
            "template": {"metadata": {"labels": {"app": "app"}},
                "spec": {"containers": [{"name": "app", "image": "nginx"}], "volumes": volumes}}}
    });
    for (i, pod) in value["pods"].as_array_mut().unwrap().iter_mut().enumerate() {
        pod["metadata"]["name"] = json!(format!("app-{i}"));
        pod["metadata"]["labels"] = json!({"app": "app"});
        pod["metadata"]["ownerReferences"] = json!([{"apiVersion": "apps/v1", "kind": "ReplicaSet",
            "name": "app-abc", "uid": "rs-uid", "controller": true}]);
        pod["spec"]["volumes"] = volumes.clone();
    }
    value
}

fn downtime() -> PlanOptions {
    PlanOptions {
        allow_downtime: true,
        ..Default::default()
    }
}

#[test]
fn deployment_is_scaled_to_zero_around_its_claims_and_back() {
    let plan = plan_workload(&from(deployment_json()).unwrap(), "gp2-csi", downtime()).unwrap();
    assert_eq!(plan.kind, WorkloadKind::Deployment);
    assert_eq!(plan.uid, "deploy-uid");
    assert_eq!(plan.deployment_replicas, Some(2));
    assert_eq!(plan.batches.len(), 1);
    assert!(plan.batches[0].pods.is_empty(), "its pods go by scaling");
    assert_eq!(plan.volumes().count(), 2);
    let kinds: Vec<&str> = plan
        .steps
        .iter()
        .map(|s| match s {
            Step::RetainVolume { .. } => "retain",
            Step::ScaleDeployment { replicas: 0 } => "scale-0",
            Step::ScaleDeployment { .. } => "scale-back",
            Step::AwaitClaimsReleased => "released",
            Step::AwaitDeploymentAvailable => "available",
            Step::RestoreReclaimPolicy { .. } => "restore",
            _ => "claim",
        })
        .collect();
    let mut expected = vec!["retain", "retain", "scale-0", "released"];
    expected.extend(["claim"; 10]);
    expected.extend(["scale-back", "available", "restore", "restore"]);
    assert_eq!(kinds, expected);
    assert_eq!(
        plan.steps[plan.steps.len() - 4],
        Step::ScaleDeployment { replicas: 2 }
    );
    let text = serde_json::to_string(&plan).unwrap();
    assert_eq!(serde_json::from_str::<Plan>(&text).unwrap(), plan);
}

#[test]
fn deployment_blockers_and_warnings() {
    struct Case {
        name: &'static str,
        change: fn(&mut Value),
        options: PlanOptions,
        blocked: Option<(&'static str, &'static str)>,
        warning: Option<&'static str>,
    }
    let cases = [
        Case {
            name: "downtime needs consent",
            change: |_| {},
            options: PlanOptions::default(),
            blocked: Some(("deployment/default/app", "spec.replicas")),
            warning: None,
        },
        Case {
            name: "a pod of something else mounts the claim",
            change: |v| v["pods"][1]["metadata"]["labels"] = json!({"app": "other"}),
            options: downtime(),
            blocked: Some(("pod/default/app-1", "spec.volumes")),
            warning: None,
        },
        Case {
            name: "no in-tree claim",
            change: |v| {
                v["deployment"]["spec"]["template"]["spec"]["volumes"] =
                    json!([{"name": "tmp", "emptyDir": {}}])
            },
            options: downtime(),
            blocked: Some(("deployment/default/app", "spec.template.spec.volumes")),
            warning: None,
        },
        Case {
            name: "owned by an operator",
            change: |v| {
                v["deployment"]["metadata"]["ownerReferences"] = json!([{"apiVersion": "x/v1",
                    "kind": "App", "name": "a", "uid": "u", "controller": true}])
            },
            options: downtime(),
            blocked: Some(("deployment/default/app", "metadata.ownerReferences")),
            warning: None,
        },
        Case {
            name: "an autoscaler is recorded",
            change: |v| {
                v["autoscalers"] = json!([{"metadata": {"name": "app-hpa", "namespace": "default"},
                    "spec": {"maxReplicas": 5, "scaleTargetRef": {"apiVersion": "apps/v1",
                        "kind": "Deployment", "name": "app"}}}])
            },
            options: downtime(),
            blocked: None,
            warning: Some("horizontalpodautoscaler/default/app-hpa"),
        },
        Case {
            name: "a claim already on CSI is left alone",
            change: |v| {
                v["volumes"][1]["spec"]["csi"] =
                    json!({"driver": "ebs.csi.aws.com", "volumeHandle": "vol-1"});
                v["volumes"][1]["spec"]
                    .as_object_mut()
                    .unwrap()
                    .remove("awsElasticBlockStore");
            },
            options: downtime(),
            blocked: None,
            warning: Some("data-web-1 is already on a CSI volume"),
        },
    ];
    for case in cases {
        let mut value = deployment_json();
        (case.change)(&mut value);
        let result = plan_workload(&from(value).unwrap(), "gp2-csi", case.options);
        match (case.blocked, result) {
            (Some((object, field)), result) => {
                let b = blockers(result);
                assert!(has_blocker(&b, object, field), "{}: {b:#?}", case.name);
            }
            (None, Ok(plan)) => {
                let warning = case.warning.unwrap_or_default();
                assert!(
                    plan.warnings.iter().any(|w| w.contains(warning)),
                    "{}: {:#?}",
                    case.name,
                    plan.warnings
                );
            }
            (None, Err(e)) => panic!("{}: {e}", case.name),
        }
    }
}

/// `snapshot_json(1)` as a bare claim `data-web-0` target.
fn claim_json() -> Value {
    let mut value = snapshot_json(1);
    value.as_object_mut().unwrap().remove("statefulset");
    value["claim"] = json!("data-web-0");
    value
}

#[test]
fn claim_planning_depends_on_who_mounts_it() {
    // Mounted by a controlled pod: refused even with downtime.
    let b = blockers(plan_workload(
        &from(claim_json()).unwrap(),
        "gp2-csi",
        downtime(),
    ));
    assert!(has_blocker(
        &b,
        "pod/default/web-0",
        "metadata.ownerReferences"
    ));
    // Mounted by a bare pod: needs downtime, then the pod is deleted and recreated.
    let mut bare = claim_json();
    bare["pods"][0]["metadata"]
        .as_object_mut()
        .unwrap()
        .remove("ownerReferences");
    let b = blockers(plan_workload(
        &from(bare.clone()).unwrap(),
        "gp2-csi",
        PlanOptions::default(),
    ));
    assert!(has_blocker(&b, "pod/default/web-0", "spec.volumes"));
    let plan = plan_workload(&from(bare).unwrap(), "gp2-csi", downtime()).unwrap();
    assert_eq!(plan.kind, WorkloadKind::PersistentVolumeClaim);
    assert_eq!(plan.batches[0].pods[0].name, "web-0");
    assert!(matches!(plan.steps[1], Step::DeletePod { .. }));
    assert_eq!(plan.steps[2], Step::AwaitClaimsReleased);
    // Unused (its pod finished): replaced directly, no pod steps.
    let mut unused = claim_json();
    unused["pods"][0]["status"]["phase"] = json!("Succeeded");
    let plan = plan_workload(&from(unused).unwrap(), "gp2-csi", PlanOptions::default()).unwrap();
    assert!(plan.batches[0].pods.is_empty());
    assert_eq!(plan.steps[1], Step::AwaitClaimsReleased);
    assert_eq!(plan.steps.len(), 1 + 1 + 5 + 1);
}

#[test]
fn the_driver_must_run_on_some_node_and_nodes_without_it_are_named() {
    let node = |name: &str, drivers: &[&str]| {
        let drivers: Vec<Value> = drivers
            .iter()
            .map(|d| json!({"name": d, "nodeID": name}))
            .collect();
        json!({"metadata": {"name": name}, "spec": {"drivers": drivers}})
    };
    let mut value = snapshot_json(2);
    value["csiNodes"] = json!([node("node-0", &["pd.csi.storage.gke.io"])]);
    let b = blockers(plan(value.clone(), "gp2-csi", PlanOptions::default()));
    assert!(has_blocker(
        &b,
        "csidriver/ebs.csi.aws.com",
        "csinode.spec.drivers"
    ));
    value["csiNodes"] = json!([node("node-0", &["ebs.csi.aws.com"]), node("node-1", &[])]);
    let plan = plan(value, "gp2-csi", PlanOptions::default()).unwrap();
    assert!(
        plan.warnings
            .iter()
            .any(|w| w.contains("not registered on node(s) node-1")),
        "{:#?}",
        plan.warnings
    );
}
