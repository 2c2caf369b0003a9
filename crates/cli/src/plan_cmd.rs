//! `csi-migrate plan`: reads the workload, runs the preflight, prints the plan.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};

use anyhow::anyhow;
use csi_migrate_migrate::{
    Client, LoadError, Plan, PlanError, PlanOptions, StatefulSetSnapshot,
    load_statefulset_snapshot, plan_statefulset,
};
use csi_migrate_scan::load::live;
use k8s_openapi::api::core::v1::PersistentVolume;

use crate::args::{ClusterArgs, PlanArgs, PlanOutput, PlanWorkload, ReclaimPolicyArg};
use crate::{Failure, runtime};

/// Runs the command.
pub fn run(args: &PlanArgs) -> Result<(), Failure> {
    let PlanWorkload::Statefulset(args) = &args.workload;
    let options = PlanOptions {
        allow_downtime: args.allow_downtime,
        reclaim_policy: args.reclaim_policy.map(ReclaimPolicyArg::into_policy),
    };
    let (plan, snapshot) = runtime()?.block_on(async {
        let client = connect(&args.cluster).await?;
        let (plan, snapshot) = load_and_plan(
            client,
            &args.namespace,
            &args.name,
            &args.to_storageclass,
            options,
        )
        .await?;
        Ok::<_, Failure>((plan, snapshot))
    })?;
    let mut out = io::stdout().lock();
    match args.output {
        PlanOutput::Table => out.write_all(render_table(&plan, &snapshot).as_bytes())?,
        PlanOutput::Json => {
            let text = serde_json::to_string_pretty(&plan).map_err(Failure::failed)?;
            writeln!(out, "{text}")?;
        }
        PlanOutput::Yaml => {
            let text = serde_saphyr::to_string(&plan).map_err(Failure::failed)?;
            out.write_all(text.as_bytes())?;
        }
    }
    out.flush()?;
    Ok(())
}

/// A client for the cluster the flags (or the environment) name.
pub async fn connect(cluster: &ClusterArgs) -> Result<Client, Failure> {
    live::client(&live::LiveOptions {
        kubeconfig: cluster.kubeconfig.clone(),
        context: cluster.context.clone(),
        namespace: None,
    })
    .await
    .map_err(Failure::bad_input)
}

/// Reads the StatefulSet and plans its migration; blockers are exit code 1, a missing
/// StatefulSet exit code 2.
pub async fn load_and_plan(
    client: Client,
    namespace: &str,
    name: &str,
    target: &str,
    options: PlanOptions,
) -> Result<(Plan, StatefulSetSnapshot), Failure> {
    let snapshot = load_statefulset_snapshot(&client, namespace, name)
        .await
        .map_err(|e| match e {
            LoadError::NotFound { .. } => Failure::bad_input(e),
            other => Failure::failed(other),
        })?;
    match plan_statefulset(&snapshot, target, options) {
        Ok(plan) => Ok((plan, snapshot)),
        Err(e @ PlanError::Blocked(_)) => Err(Failure::failed(anyhow!(
            "cannot migrate statefulset {namespace}/{name}: {e}"
        ))),
    }
}

/// The plan for people: volumes (old → new), warnings, numbered steps.
pub fn render_table(plan: &Plan, snapshot: &StatefulSetSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "statefulset {}/{} → storageclass {} (CSI driver {})",
        plan.namespace, plan.statefulset, plan.target_storage_class, plan.driver
    );
    let _ = writeln!(out, "\nVolumes (same disk, new objects):");
    for volume in plan.volumes() {
        let new_name = volume
            .new_volume
            .metadata
            .name
            .as_deref()
            .unwrap_or_default();
        let _ = writeln!(
            out,
            "  {:<24} PV {} (in-tree) → {} (csi {} {}), reclaim {} → {} (Retain until the end)",
            volume.claim,
            volume.old_volume,
            new_name,
            plan.driver,
            volume.volume_handle,
            volume.original_reclaim_policy,
            volume.final_reclaim_policy
        );
        let old = snapshot
            .volumes
            .iter()
            .find(|pv| pv.metadata.name.as_deref() == Some(volume.old_volume.as_str()));
        if let Some(old) = old {
            out.push_str(&spec_diff(old, &volume.new_volume));
        }
    }
    if !plan.warnings.is_empty() {
        let _ = writeln!(out, "\nWarnings:");
        for warning in &plan.warnings {
            let _ = writeln!(out, "  - {warning}");
        }
    }
    let _ = writeln!(out, "\nSteps:");
    let width = plan.steps.len().to_string().len();
    for (i, step) in plan.steps.iter().enumerate() {
        let _ = writeln!(
            out,
            "  {:>width$}. {}",
            i + 1,
            step.describe(&plan.namespace, &plan.statefulset)
        );
    }
    out
}

impl ReclaimPolicyArg {
    /// The library's value.
    pub fn into_policy(self) -> csi_migrate_migrate::ReclaimPolicy {
        match self {
            Self::Retain => csi_migrate_migrate::ReclaimPolicy::Retain,
            Self::Delete => csi_migrate_migrate::ReclaimPolicy::Delete,
        }
    }
}

/// `- field: old` / `+ field: new` for every top-level PV spec field that changes.
fn spec_diff(old: &PersistentVolume, new: &PersistentVolume) -> String {
    let as_map = |pv: &PersistentVolume| match serde_json::to_value(&pv.spec) {
        Ok(serde_json::Value::Object(map)) => map,
        _ => serde_json::Map::new(),
    };
    let (old, new) = (as_map(old), as_map(new));
    let keys: BTreeSet<&String> = old.keys().chain(new.keys()).collect();
    let mut out = String::new();
    for key in keys {
        if key == "claimRef" {
            continue; // always rewritten: pre-bound by name, uid filled at binding
        }
        let (before, after) = (old.get(key), new.get(key));
        if before == after {
            continue;
        }
        if let Some(value) = before {
            let _ = writeln!(out, "      - {key}: {value}");
        }
        if let Some(value) = after {
            let _ = writeln!(out, "      + {key}: {value}");
        }
    }
    out
}
