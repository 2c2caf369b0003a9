//! The invocations of Google Distributed Cloud's vSphere StatefulSet migration tool,
//! mapped onto `plan` and `migrate` with the same meaning.

use anyhow::anyhow;
use csi_migrate_migrate::load_statefulset_snapshot;

use crate::args::{
    ClusterArgs, GdcStatefulSetArgs, MigrateArgs, MigrateTargetArgs, MigrateWorkload, PlanArgs,
    PlanOutput, PlanTargetArgs, PlanWorkload, PreflightArgs, RollingMigrationArgs,
};
use crate::plan_cmd::connect;
use crate::{Failure, migrate_cmd, plan_cmd, runtime};

/// `preflight`: the class check, then `plan statefulset`.
pub fn preflight(args: PreflightArgs) -> Result<(), Failure> {
    check_in_tree_class(&args.cluster, &args.target)?;
    let target = args.target;
    plan_cmd::run(&PlanArgs {
        workload: PlanWorkload::Statefulset(PlanTargetArgs {
            names: vec![target.sts_name],
            selector: None,
            namespace: target.sts_namespace,
            to_storageclass: target.csi_storageclass,
            allow_downtime: false,
            reclaim_policy: None,
            gce_project: None,
            output: PlanOutput::Table,
            cluster: args.cluster,
            vcenter: args.vcenter,
        }),
    })
}

/// `rolling-migration all`: the class check, then `migrate statefulset`.
pub fn rolling_migration(args: RollingMigrationArgs) -> Result<(), Failure> {
    check_in_tree_class(&args.cluster, &args.target)?;
    let target = args.target;
    migrate_cmd::run(&MigrateArgs {
        workload: MigrateWorkload::Statefulset(MigrateTargetArgs {
            names: vec![target.sts_name],
            selector: None,
            concurrency: 1,
            namespace: target.sts_namespace,
            to_storageclass: target.csi_storageclass,
            work_dir: args.working_directory,
            dry_run: false,
            yes: args.yes,
            allow_downtime: false,
            reclaim_policy: None,
            gce_project: None,
            timeout: 300,
            cluster: args.cluster,
            vcenter: args.vcenter,
        }),
        output: crate::args::ProgressFormat::Text,
    })
}

/// Every claim template of the StatefulSet, and every claim it has, uses `--intree-storageclass`.
fn check_in_tree_class(cluster: &ClusterArgs, target: &GdcStatefulSetArgs) -> Result<(), Failure> {
    let snapshot = runtime()?.block_on(async {
        let client = connect(cluster).await?;
        load_statefulset_snapshot(&client, &target.sts_namespace, &target.sts_name)
            .await
            .map_err(Failure::bad_input)
    })?;
    let templates = snapshot
        .statefulset
        .and_then(|set| set.spec.volume_claim_templates)
        .unwrap_or_default();
    let prefix = |template: &str| format!("{template}-{}-", target.sts_name);
    let mut wrong = Vec::new();
    for template in &templates {
        let name = template.metadata.name.clone().unwrap_or_default();
        let class = template
            .spec
            .as_ref()
            .and_then(|s| s.storage_class_name.clone())
            .unwrap_or_default();
        if class != target.intree_storageclass {
            wrong.push(format!("volumeClaimTemplate {name:?} uses class {class:?}"));
        }
        for claim in snapshot.claims.iter().filter(|c| {
            c.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.starts_with(&prefix(&name)))
        }) {
            let class = claim
                .spec
                .as_ref()
                .and_then(|s| s.storage_class_name.clone())
                .unwrap_or_default();
            if class != target.intree_storageclass {
                let claim_name = claim.metadata.name.clone().unwrap_or_default();
                wrong.push(format!("claim {claim_name:?} uses class {class:?}"));
            }
        }
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(Failure::failed(anyhow!(
        "statefulset {}/{} is not on --intree-storageclass {:?}: {}",
        target.sts_namespace,
        target.sts_name,
        target.intree_storageclass,
        wrong.join("; ")
    )))
}
