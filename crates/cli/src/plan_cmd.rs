//! `csi-migrate plan`: reads the workload, runs the preflight, prints the plan.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use std::io::{self, Write};

use anyhow::anyhow;
use csi_migrate_migrate::resolve::{VcenterChecks, vcenter_checks};
use csi_migrate_migrate::{
    Client, LoadError, Plan, PlanError, PlanOptions, VcenterConfig, VsphereResolver, WorkloadKind,
    WorkloadRef, WorkloadSnapshot, load_workload_snapshot, plan_workload, resolve_snapshot,
};
use csi_migrate_scan::load::live;
use csi_migrate_vsphere::{ClientOptions, Credentials, CsiVsphereConfig};
use k8s_openapi::api::core::v1::PersistentVolume;

use crate::args::{
    ClusterArgs, PlanArgs, PlanOutput, PlanTargetArgs, PlanWorkload, ReclaimPolicyArg, VcenterArgs,
};
use crate::{Failure, runtime, targets};

/// Runs the command: one plan per workload named (or selected); exit code 1 if any is
/// blocked, after printing every plan that is not.
pub fn run(args: &PlanArgs) -> Result<(), Failure> {
    let (kind, args) = args.workload.target();
    let options = PlanOptions {
        allow_downtime: args.allow_downtime,
        reclaim_policy: args.reclaim_policy.map(ReclaimPolicyArg::into_policy),
    };
    let vcenter = vcenter_config(&args.vcenter)?;
    let results = runtime()?.block_on(async {
        let client = connect(&args.cluster).await?;
        let workloads = targets::workloads(
            &client,
            kind,
            &args.namespace,
            &args.names,
            args.selector.as_deref(),
        )
        .await?;
        let mut results = Vec::new();
        for workload in workloads {
            // plan is read-only: look vSphere ids up, never register.
            let result = load_resolve_and_plan(
                client.clone(),
                &workload,
                &args.to_storageclass,
                options,
                Resolution {
                    vcenter: vcenter.clone(),
                    may_register: false,
                    gce_project: args.gce_project.clone(),
                },
            )
            .await;
            results.push((workload, result));
        }
        Ok::<_, Failure>(results)
    })?;
    let several = results.len() > 1;
    let mut plans = Vec::new();
    let mut failures = Vec::new();
    let mut out = io::stdout().lock();
    for (workload, result) in results {
        match result {
            Ok((plan, snapshot)) => {
                if args.output == PlanOutput::Table {
                    if several && !plans.is_empty() {
                        writeln!(out)?;
                    }
                    out.write_all(render_table(&plan, &snapshot).as_bytes())?;
                }
                plans.push(plan);
            }
            Err(failure) if several => failures.push((workload, failure)),
            Err(failure) => return Err(failure),
        }
    }
    match args.output {
        PlanOutput::Table => {}
        // One plan as an object (plan.json's schema); several as an array of them.
        PlanOutput::Json => {
            let text = match plans.as_slice() {
                [plan] if !several => serde_json::to_string_pretty(plan),
                _ => serde_json::to_string_pretty(&plans),
            }
            .map_err(Failure::failed)?;
            writeln!(out, "{text}")?;
        }
        // One YAML document per plan.
        PlanOutput::Yaml => {
            for (i, plan) in plans.iter().enumerate() {
                if i > 0 {
                    writeln!(out, "---")?;
                }
                let text = serde_saphyr::to_string(plan).map_err(Failure::failed)?;
                out.write_all(text.as_bytes())?;
            }
        }
    }
    out.flush()?;
    if failures.is_empty() {
        Ok(())
    } else {
        let of = plans.len() + failures.len();
        Err(targets::combine(failures, of, "cannot be migrated"))
    }
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

/// The vCenter the flags, environment and `--vsphere-config` name, if any; the password
/// never appears in an error.
pub fn vcenter_config(args: &VcenterArgs) -> Result<Option<VcenterConfig>, Failure> {
    let file = match &args.vsphere_config {
        Some(path) => {
            let text = std::fs::read_to_string(path).map_err(|e| {
                Failure::bad_input(anyhow!("--vsphere-config {}: {e}", path.display()))
            })?;
            Some(CsiVsphereConfig::parse(&text).map_err(|e| {
                Failure::bad_input(anyhow!("--vsphere-config {}: {e}", path.display()))
            })?)
        }
        None => None,
    };
    let entry = file.as_ref().and_then(|f| f.virtual_centers.first());
    let url = match (&args.vcenter, entry) {
        (Some(url), _) => url.clone(),
        (None, Some(entry)) => format!("https://{}:{}/sdk", entry.host, entry.port),
        (None, None) => return Ok(None),
    };
    let user = args
        .vcenter_user
        .clone()
        .or_else(|| entry.and_then(|e| e.user.clone()));
    let password = args
        .vcenter_password
        .clone()
        .or_else(|| entry.and_then(|e| e.password.clone()));
    let (Some(user), Some(password)) = (user, password) else {
        return Err(Failure::bad_input(anyhow!(
            "vCenter {url} needs a user and password: --vcenter-user/--vcenter-password, VSPHERE_USER/VSPHERE_PASSWORD, or --vsphere-config"
        )));
    };
    let ca_file = args
        .vcenter_ca
        .clone()
        .or_else(|| entry.and_then(|e| e.ca_file.clone()).map(Into::into));
    let ca_bundle_pem = match ca_file {
        Some(path) => Some(std::fs::read(&path).map_err(|e| {
            Failure::bad_input(anyhow!("vCenter CA bundle {}: {e}", path.display()))
        })?),
        None => None,
    };
    let datacenters = if args.vcenter_datacenters.is_empty() {
        entry.map(|e| e.datacenters.clone()).unwrap_or_default()
    } else {
        args.vcenter_datacenters.clone()
    };
    Ok(Some(VcenterConfig {
        url,
        credentials: Credentials { user, password },
        datacenters,
        client_options: ClientOptions {
            accept_invalid_certs: args.vcenter_insecure || entry.is_some_and(|e| e.insecure),
            ca_bundle_pem,
            ..ClientOptions::default()
        },
        cluster_id: file
            .and_then(|f| f.cluster_id)
            .unwrap_or_else(|| "csi-migrate".into()),
    }))
}

/// Reads the workload and plans its migration; blockers are exit code 1, a missing
/// workload exit code 2. vSphere ids come from `CnsVSphereVolumeMigration` objects only.
pub async fn load_and_plan(
    client: Client,
    workload: &WorkloadRef,
    target: &str,
    options: PlanOptions,
) -> Result<(Plan, WorkloadSnapshot), Failure> {
    load_resolve_and_plan(client, workload, target, options, Resolution::default()).await
}

/// How volume identities are resolved before planning.
#[derive(Debug, Clone, Default)]
pub struct Resolution {
    /// A vCenter for vSphere volumes without a CnsVSphereVolumeMigration record.
    pub vcenter: Option<VcenterConfig>,
    /// Whether VMDKs may be registered with CNS (a real `migrate`); else ids are only looked up.
    pub may_register: bool,
    /// The project for GCE handles that translation leaves `UNSPECIFIED`.
    pub gce_project: Option<String>,
}

/// [`load_and_plan`] resolving volume identities as `resolution` says.
pub async fn load_resolve_and_plan(
    client: Client,
    workload: &WorkloadRef,
    target: &str,
    options: PlanOptions,
    resolution: Resolution,
) -> Result<(Plan, WorkloadSnapshot), Failure> {
    let Resolution {
        vcenter,
        may_register,
        gce_project,
    } = resolution;
    let mut snapshot = load_workload_snapshot(&client, workload)
        .await
        .map_err(|e| match e {
            LoadError::NotFound { .. } => Failure::bad_input(e),
            other => Failure::failed(other),
        })?;
    let checks = match &vcenter {
        Some(vcenter) => vcenter_checks(vcenter, &snapshot).await,
        None => VcenterChecks::default(),
    };
    let resolver =
        VsphereResolver::new(client, vcenter, may_register).with_gce_project(gce_project);
    resolve_snapshot(&resolver, &mut snapshot).await;
    let planned = match plan_workload(&snapshot, target, options) {
        Ok(mut plan) if checks.blockers.is_empty() => {
            plan.warnings.extend(checks.skipped);
            Ok(plan)
        }
        Ok(_) => Err(PlanError::Blocked(checks.blockers)),
        Err(PlanError::Blocked(mut blockers)) => {
            blockers.extend(checks.blockers);
            Err(PlanError::Blocked(blockers))
        }
    };
    match planned {
        Ok(plan) => Ok((plan, snapshot)),
        Err(e @ PlanError::Blocked(_)) => Err(Failure::failed(anyhow!(
            "cannot migrate {} {}/{}: {e}",
            workload.kind,
            workload.namespace,
            workload.name
        ))),
    }
}

/// The plan for people: volumes (old → new), warnings, numbered steps.
pub fn render_table(plan: &Plan, snapshot: &WorkloadSnapshot) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} {}/{} → storageclass {} (CSI driver {})",
        plan.kind, plan.namespace, plan.name, plan.target_storage_class, plan.driver
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
        let _ = writeln!(out, "  {:>width$}. {}", i + 1, step.describe(plan));
    }
    out
}

impl PlanWorkload {
    /// The kind of workload and the arguments naming it.
    pub fn target(&self) -> (WorkloadKind, &PlanTargetArgs) {
        match self {
            Self::Statefulset(args) => (WorkloadKind::StatefulSet, args),
            Self::Deployment(args) => (WorkloadKind::Deployment, args),
            Self::Pvc(args) => (WorkloadKind::PersistentVolumeClaim, args),
        }
    }
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

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use clap::Parser;

    use super::*;
    use crate::args::{Cli, Command};

    fn vcenter_args(extra: &[&str]) -> VcenterArgs {
        let mut argv = vec![
            "csi-migrate",
            "plan",
            "statefulset",
            "web",
            "--to-storageclass",
            "sc",
        ];
        argv.extend_from_slice(extra);
        match Cli::try_parse_from(argv).unwrap().command {
            Command::Plan(PlanArgs {
                workload: PlanWorkload::Statefulset(args),
            }) => args.vcenter,
            _ => unreachable!(),
        }
    }

    #[test]
    fn vcenter_from_config_file_with_flag_overrides_and_no_password_in_errors() {
        let dir = tempfile::tempdir().unwrap();
        let conf = dir.path().join("csi-vsphere.conf");
        std::fs::write(
            &conf,
            "[Global]\ncluster-id = \"prod\"\n[VirtualCenter \"vc.example.com\"]\nuser = \"u@vsphere.local\"\npassword = \"conf-Secret-1\"\ninsecure-flag = \"true\"\ndatacenters = \"DC0,DC1\"\n",
        )
        .unwrap();
        let path = conf.to_str().unwrap();
        let config = vcenter_config(&vcenter_args(&["--vsphere-config", path]))
            .unwrap()
            .unwrap();
        assert_eq!(config.url, "https://vc.example.com:443/sdk");
        assert_eq!(config.credentials.user, "u@vsphere.local");
        assert_eq!(config.credentials.password.expose(), "conf-Secret-1");
        assert_eq!(config.datacenters, vec!["DC0", "DC1"]);
        assert!(config.client_options.accept_invalid_certs);
        assert_eq!(config.cluster_id, "prod");
        assert!(!format!("{config:?}").contains("conf-Secret-1"));

        let config = vcenter_config(&vcenter_args(&[
            "--vsphere-config",
            path,
            "--vcenter",
            "https://other:8443",
            "--vcenter-user",
            "flag-user",
            "--vcenter-datacenters",
            "X",
        ]))
        .unwrap()
        .unwrap();
        assert_eq!(config.url, "https://other:8443");
        assert_eq!(config.credentials.user, "flag-user");
        assert_eq!(config.datacenters, vec!["X"]);

        // no vCenter named at all: none, even if credentials are around
        assert!(
            vcenter_config(&vcenter_args(&["--vcenter-password", "flag-Secret-2"]))
                .unwrap()
                .is_none()
        );
        // a URL without a user: a clear error, never the password
        let failure = vcenter_config(&vcenter_args(&[
            "--vcenter",
            "https://vc",
            "--vcenter-password",
            "flag-Secret-2",
        ]));
        if std::env::var_os("VSPHERE_USER").is_none() {
            let shown = format!("{:#}", failure.unwrap_err().error);
            assert!(shown.contains("VSPHERE_USER"), "{shown}");
            assert!(!shown.contains("flag-Secret-2"));
        }
        // a malformed config file names the line, not its content
        std::fs::write(
            &conf,
            "[VirtualCenter \"vc\"]\npassword \"conf-Secret-3\"\n",
        )
        .unwrap();
        let shown = format!(
            "{:#}",
            vcenter_config(&vcenter_args(&["--vsphere-config", path]))
                .unwrap_err()
                .error
        );
        assert!(shown.contains("line 2"), "{shown}");
        assert!(!shown.contains("conf-Secret-3"));
        // insecure is never implied by flags alone
        let config = vcenter_config(&vcenter_args(&[
            "--vcenter",
            "https://vc",
            "--vcenter-user",
            "u",
            "--vcenter-password",
            "p",
        ]))
        .unwrap()
        .unwrap();
        assert!(!config.client_options.accept_invalid_certs);
    }
}
