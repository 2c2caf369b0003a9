//! `csi-migrate migrate`, `resume` and `rollback`: confirm, run the plan with progress (crate::progress), report.

use std::fmt::Display;
use std::io::{self, BufRead, IsTerminal, Write};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use anyhow::anyhow;
use csi_migrate_migrate::{
    Client, Plan, PlanOptions, RollbackError, RunError, RunOptions, RunSummary, WorkloadKind,
    WorkloadRef, WorkloadSnapshot, dry_run, migrate, resume as resume_run,
    rollback as rollback_run,
};

use crate::args::{MigrateArgs, MigrateTargetArgs, MigrateWorkload, ReclaimPolicyArg, ResumeArgs};
use crate::plan_cmd::{Resolution, connect, load_resolve_and_plan, render_table, vcenter_config};
use crate::progress::{Operation, Outcome, Progress, ProgressFormat, failed_step};
use crate::targets::{self, Prefixed};
use crate::{Failure, runtime};

/// Runs `migrate`: one workload as one run in `--work-dir`; several (names or `-l`) each
/// in `DIR/<kind>-<name>`, `--concurrency` at a time, after one confirmation for all.
pub fn run(args: &MigrateArgs) -> Result<(), Failure> {
    let format = args.output;
    let (kind, args) = args.workload.target();
    // Refuse before touching anything: nobody can answer a prompt.
    if !args.yes && !args.dry_run && !io::stdin().is_terminal() {
        return Err(Failure::bad_input(anyhow!(
            "stdin is not a terminal, so the migration cannot be confirmed; pass --yes to run it"
        )));
    }
    let options = PlanOptions {
        allow_downtime: args.allow_downtime,
        reclaim_policy: args.reclaim_policy.map(ReclaimPolicyArg::into_policy),
    };
    let vcenter = vcenter_config(&args.vcenter)?;
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.cluster))?;
    let workloads = runtime.block_on(targets::workloads(
        &client,
        kind,
        &args.namespace,
        &args.names,
        args.selector.as_deref(),
    ))?;
    let workload = match workloads.as_slice() {
        [one] if args.selector.is_none() => one.clone(),
        _ => {
            let several = Several {
                args,
                format,
                options,
                resolution: Resolution {
                    vcenter,
                    may_register: !args.dry_run,
                    gce_project: args.gce_project.clone(),
                },
            };
            return runtime.block_on(several.migrate(client, workloads));
        }
    };
    // Registration with CNS (idempotent, the CSI driver's own first step) happens here,
    // before the plan is shown, so the plan names the FCD ids; --dry-run only looks up.
    let (plan, snapshot) = runtime.block_on(load_resolve_and_plan(
        client.clone(),
        &workload,
        &args.to_storageclass,
        options,
        Resolution {
            vcenter: vcenter.clone(),
            may_register: !args.dry_run,
            gce_project: args.gce_project.clone(),
        },
    ))?;
    let progress = Progress::for_terminal(format, Operation::Migrate, Some(plan.clone()));
    let table = render_table(&plan, &snapshot);
    progress.show_plan(&plan, &table)?;
    let mut err = io::stderr().lock();
    if progress.is_json() && !args.yes && !args.dry_run {
        // The event has it for programs; the person asked to confirm needs it too.
        err.write_all(table.as_bytes())?;
    }
    if args.dry_run {
        drop(err);
        // Every write with dryRun=All: the API server admits and validates each one.
        let result = runtime.block_on(dry_run(
            client,
            &plan,
            &run_options_with(args.timeout, &progress),
        ));
        let summary = match &result {
            Ok(run) => progress.summary(
                Outcome::DryRun,
                Some((run.executed, run.total)),
                None,
                &args.work_dir,
            ),
            Err(e) => progress.summary(
                Outcome::Failed,
                None,
                Some((e, failed_step(e))),
                &args.work_dir,
            ),
        };
        progress.finish(&summary)?;
        return match result {
            Ok(_) => {
                if !progress.is_json() {
                    writeln!(
                        io::stderr(),
                        "\ndry run: the API server accepted every write; nothing was changed"
                    )?;
                }
                Ok(())
            }
            Err(e) => Err(Failure::failed(anyhow!(
                "dry run: {e}\nnothing was changed; the real run would stop here"
            ))),
        };
    }
    if !args.yes {
        let question = format!(
            "\nMigrate {} {}/{} ({} steps)? Work dir: {}.",
            plan.kind,
            plan.namespace,
            plan.name,
            plan.steps.len(),
            args.work_dir.display()
        );
        if !confirmed(&question)? {
            return Err(not_confirmed(vcenter.is_some()));
        }
    }
    drop(err);
    // Time passed at the prompt: run only the plan that was confirmed.
    let (plan, snapshot) = if args.yes {
        (plan, snapshot)
    } else {
        let (fresh, snapshot) = runtime.block_on(load_resolve_and_plan(
            client.clone(),
            &workload,
            &args.to_storageclass,
            options,
            Resolution {
                vcenter,
                may_register: true,
                gce_project: args.gce_project.clone(),
            },
        ))?;
        if fresh.steps != plan.steps {
            return Err(Failure::failed(anyhow!(
                "the workload changed while waiting for confirmation; nothing was changed, run the command again"
            )));
        }
        (fresh, snapshot)
    };
    let run_options = run_options_with(args.timeout, &progress);
    let result = runtime.block_on(migrate(
        client,
        &args.work_dir,
        &plan,
        &snapshot,
        &run_options,
    ));
    report(result, &args.work_dir, &progress)
}

impl MigrateWorkload {
    /// The kind of workload and the arguments naming it.
    pub fn target(&self) -> (WorkloadKind, &MigrateTargetArgs) {
        match self {
            Self::Statefulset(args) => (WorkloadKind::StatefulSet, args),
            Self::Deployment(args) => (WorkloadKind::Deployment, args),
            Self::Pvc(args) => (WorkloadKind::PersistentVolumeClaim, args),
        }
    }
}

/// Asks `question` on stderr; true only for an explicit yes.
fn confirmed(question: &str) -> io::Result<bool> {
    let mut err = io::stderr().lock();
    write!(err, "{question} [y/N] ")?;
    err.flush()?;
    let mut answer = String::new();
    io::stdin().lock().read_line(&mut answer)?;
    Ok(matches!(answer.trim(), "y" | "Y" | "yes"))
}

/// The answer was not yes: nothing in the cluster changed.
fn not_confirmed(with_vcenter: bool) -> Failure {
    // Resolving vSphere ids may already have registered VMDKs with CNS (what the CSI
    // driver itself does, harmless); no Kubernetes object was touched.
    let registered = if with_vcenter {
        " (VMDKs registered with CNS to show their ids stay registered)"
    } else {
        ""
    };
    Failure::failed(anyhow!(
        "not confirmed; no Kubernetes object was changed{registered}"
    ))
}

/// Runs `resume`: the run in `--work-dir`, or every run under it.
pub fn resume(args: &ResumeArgs) -> Result<(), Failure> {
    continue_runs(args, Operation::Resume)
}

/// Runs `rollback`: the run in `--work-dir`, or every run under it.
pub fn rollback(args: &ResumeArgs) -> Result<(), Failure> {
    continue_runs(args, Operation::Rollback)
}

fn continue_runs(args: &ResumeArgs, operation: Operation) -> Result<(), Failure> {
    let dirs = targets::run_dirs(&args.work_dir)?;
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.cluster))?;
    let several = dirs.len() > 1;
    let count = dirs.len();
    let (format, timeout) = (args.output, args.timeout);
    let results = runtime.block_on(targets::for_each_concurrently(
        dirs,
        args.concurrency,
        |dir| {
            // The migration's plan names the workload and batches; rollback steps act
            // on the same pods, claims and volumes.
            let plan = Progress::plan_in(&dir);
            let progress = progress_for(format, operation, plan, several);
            let client = client.clone();
            async move { continue_run(client, &dir, operation, &progress, timeout).await }
        },
    ));
    let failures: Vec<Failure> = results.into_iter().filter_map(Result::err).collect();
    match failures.len() {
        0 => Ok(()),
        1 if !several => failures.into_iter().next().map_or(Ok(()), Err),
        _ => {
            let code = failures
                .iter()
                .map(|f| f.code)
                .max()
                .unwrap_or(crate::EXIT_FAILED);
            let mut message = format!("{} of {count} runs did not finish:", failures.len());
            for failure in &failures {
                message.push_str(&format!("\n  {:#}", failure.error));
            }
            Err(Failure {
                code,
                error: anyhow!(message),
            })
        }
    }
}

/// Resumes or rolls back the run in `dir`, ending `progress` with its summary.
async fn continue_run(
    client: Client,
    dir: &Path,
    operation: Operation,
    progress: &Arc<Progress>,
    timeout: u64,
) -> Result<(), Failure> {
    let options = run_options_with(timeout, progress);
    if operation != Operation::Rollback {
        let result = resume_run(client, dir, &options).await;
        return report(result, dir, progress);
    }
    let result = rollback_run(client, dir, &options).await;
    let (outcome, steps, step) = match &result {
        Ok(summary) => (
            Outcome::Succeeded,
            Some((summary.executed, summary.total)),
            None,
        ),
        Err(RollbackError::Run(e)) => (Outcome::Failed, None, failed_step(e)),
        Err(_) => (Outcome::Failed, None, None),
    };
    let error = result.as_ref().err().map(|e| (e as &dyn Display, step));
    progress.finish(&progress.summary(outcome, steps, error, dir))?;
    match result {
        Ok(_) => Ok(()),
        Err(RollbackError::WorkDir(e)) => Err(Failure::bad_input(e)),
        Err(e) => Err(Failure::failed(anyhow!(
            "{e}\n`csi-migrate rollback --work-dir {}` continues",
            dir.display()
        ))),
    }
}

/// Progress for one run; with several at once, text is plain lines named by workload
/// (bars of several runs would fight over the terminal).
fn progress_for(
    format: ProgressFormat,
    operation: Operation,
    plan: Option<Plan>,
    several: bool,
) -> Arc<Progress> {
    match (format, &plan) {
        (ProgressFormat::Text, Some(p)) if several => {
            let prefix = format!("[{} {}/{}] ", p.kind, p.namespace, p.name);
            Progress::lines(
                Box::new(Prefixed::new(io::stderr(), prefix.clone())),
                Box::new(Prefixed::new(io::stdout(), prefix)),
                operation,
                plan,
            )
        }
        _ => Progress::for_terminal(format, operation, plan),
    }
}

/// `migrate` of several workloads: every plan made (and shown) before anything is
/// written; one blocked workload stops them all.
struct Several<'a> {
    args: &'a MigrateTargetArgs,
    format: ProgressFormat,
    options: PlanOptions,
    resolution: Resolution,
}

impl Several<'_> {
    async fn migrate(self, client: Client, workloads: Vec<WorkloadRef>) -> Result<(), Failure> {
        let args = self.args;
        let count = workloads.len();
        let plans = self.plan_all(&client, &workloads).await?;
        let mut err = io::stderr().lock();
        for (plan, snapshot) in &plans {
            let table = render_table(plan, snapshot);
            if self.format == ProgressFormat::Json {
                Progress::json(
                    Box::new(io::stdout()),
                    Operation::Migrate,
                    Some(plan.clone()),
                )
                .show_plan(plan, &table)?;
            }
            if self.format == ProgressFormat::Text || (!args.yes && !args.dry_run) {
                writeln!(err, "{table}")?;
            }
        }
        if !args.yes && !args.dry_run {
            let names: Vec<&str> = workloads.iter().map(|w| w.name.as_str()).collect();
            let question = format!(
                "Migrate {count} {}s in {} ({}), {} at a time? Work dirs: {}/<kind>-<name>.",
                workloads[0].kind,
                args.namespace,
                names.join(", "),
                args.concurrency,
                args.work_dir.display()
            );
            if !confirmed(&question)? {
                return Err(not_confirmed(self.resolution.vcenter.is_some()));
            }
        }
        drop(err);
        let plans = if args.yes || args.dry_run {
            plans
        } else {
            // Time passed at the prompt: run only the plans that were confirmed.
            let fresh = self.plan_all(&client, &workloads).await?;
            if fresh
                .iter()
                .zip(&plans)
                .any(|(a, b)| a.0.steps != b.0.steps)
            {
                return Err(Failure::failed(anyhow!(
                    "a workload changed while waiting for confirmation; nothing was changed, run the command again"
                )));
            }
            fresh
        };
        let (format, timeout, dry) = (self.format, args.timeout, args.dry_run);
        let root = args.work_dir.clone();
        let results =
            targets::for_each_concurrently(plans, args.concurrency, |(plan, snapshot)| {
                let workload = WorkloadRef {
                    kind: plan.kind,
                    namespace: plan.namespace.clone(),
                    name: plan.name.clone(),
                };
                let dir = targets::run_dir(&root, &workload);
                let progress = progress_for(format, Operation::Migrate, Some(plan.clone()), true);
                let client = client.clone();
                async move {
                    let options = run_options_with(timeout, &progress);
                    let result = if dry {
                        dry_run(client, &plan, &options).await
                    } else {
                        migrate(client, &dir, &plan, &snapshot, &options).await
                    };
                    (workload, report(result, &dir, &progress))
                }
            })
            .await;
        let failures: Vec<(WorkloadRef, Failure)> = results
            .into_iter()
            .filter_map(|(workload, result)| result.err().map(|f| (workload, f)))
            .collect();
        if failures.is_empty() {
            Ok(())
        } else {
            Err(targets::combine(failures, count, "did not complete"))
        }
    }

    /// Every workload's plan, or every workload's reason why not.
    async fn plan_all(
        &self,
        client: &Client,
        workloads: &[WorkloadRef],
    ) -> Result<Vec<(Plan, WorkloadSnapshot)>, Failure> {
        let mut plans = Vec::new();
        let mut failures = Vec::new();
        for workload in workloads {
            match load_resolve_and_plan(
                client.clone(),
                workload,
                &self.args.to_storageclass,
                self.options,
                self.resolution.clone(),
            )
            .await
            {
                Ok(planned) => plans.push(planned),
                Err(failure) => failures.push((workload.clone(), failure)),
            }
        }
        if failures.is_empty() {
            Ok(plans)
        } else {
            Err(targets::combine(
                failures,
                workloads.len(),
                "cannot be migrated; nothing was changed",
            ))
        }
    }
}

/// Run options that print one plain progress line per step to stderr, whatever it is
/// (for callers that print their own output around the run, like `demo`).
pub fn run_options(timeout_seconds: u64) -> RunOptions {
    let progress = Progress::lines(
        Box::new(io::stderr()),
        Box::new(io::sink()),
        Operation::Migrate,
        None,
    );
    run_options_with(timeout_seconds, &progress)
}

/// Run options that show every step with `progress`.
pub fn run_options_with(timeout_seconds: u64, progress: &Arc<Progress>) -> RunOptions {
    RunOptions {
        step_timeout: Duration::from_secs(timeout_seconds),
        stop: None,
        progress: Some(progress.callback()),
    }
}

/// Ends the progress with the summary, then maps the result to the exit code.
fn report(
    result: Result<RunSummary, RunError>,
    work_dir: &std::path::Path,
    progress: &Progress,
) -> Result<(), Failure> {
    let summary = match &result {
        Ok(summary) => progress.summary(
            Outcome::Succeeded,
            Some((summary.executed, summary.total)),
            None,
            work_dir,
        ),
        Err(e) => progress.summary(Outcome::Failed, None, Some((e, failed_step(e))), work_dir),
    };
    progress.finish(&summary)?;
    match result {
        Ok(_) => Ok(()),
        Err(RunError::WorkDir(e)) => Err(Failure::bad_input(e)),
        Err(e) => Err(Failure::failed(anyhow!(
            "{e}\nthe journal in {} records how far it got; `csi-migrate resume --work-dir {}` continues",
            work_dir.display(),
            work_dir.display()
        ))),
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::path::Path;
    use std::sync::{Arc, Mutex};

    use clap::Parser;
    use kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams};

    use super::*;
    use crate::args::{Cli, Command};

    const PASSWORD: &str = "vc-Secr3t-in-conf-file";

    /// Collects everything logged at any level, from every thread.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    fn files_containing(dir: &Path, needle: &str) -> Vec<String> {
        let mut hits = Vec::new();
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                hits.extend(files_containing(&path, needle));
            } else if String::from_utf8_lossy(&std::fs::read(&path).unwrap()).contains(needle) {
                hits.push(path.display().to_string());
            }
        }
        hits
    }

    fn migrate_args(kubeconfig: &Path, config: &Path, work_dir: &Path) -> MigrateArgs {
        let cli = Cli::try_parse_from([
            "csi-migrate",
            "migrate",
            "statefulset",
            "web",
            "--to-storageclass",
            "vsphere-thin-csi",
            "--yes",
            "--timeout",
            "60",
            "--work-dir",
            work_dir.to_str().unwrap(),
            "--kubeconfig",
            kubeconfig.to_str().unwrap(),
            "--vsphere-config",
            config.to_str().unwrap(),
            // nothing listens there: with CnsVSphereVolumeMigration records it is not needed
            "--vcenter",
            "https://127.0.0.1:1/sdk",
        ])
        .unwrap();
        match cli.command {
            Command::Migrate(args) => args,
            _ => unreachable!(),
        }
    }

    #[test]
    fn vcenter_password_never_reaches_logs_errors_or_the_work_dir() {
        let _ = rustls::crypto::ring::default_provider().install_default();
        let captured = Captured::default();
        let writer = captured.clone();
        let _ = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(move || writer.clone())
            .try_init();
        let sim = tokio::runtime::Runtime::new().unwrap();
        let store = Arc::new(kube_sim::Store::new(10_000));
        let server = sim.block_on(async {
            kube_sim::scenario::apply(
                &store,
                kube_sim::scenario::Scenario::VsphereStatefulset,
                Duration::from_secs(30),
            )
            .await
            .unwrap();
            kube_sim::controllers::spawn(store.clone(), Default::default());
            kube_sim::serve(store.clone(), "127.0.0.1:0".parse().unwrap(), false)
                .await
                .unwrap()
        });
        let dir = tempfile::tempdir().unwrap();
        let kubeconfig = dir.path().join("kubeconfig");
        std::fs::write(
            &kubeconfig,
            kube_sim::kubeconfig::kubeconfig(&server.url, server.ca_pem.as_deref()),
        )
        .unwrap();
        let config = dir.path().join("csi-vsphere.conf");
        std::fs::write(
            &config,
            format!("[Global]\ncluster-id = \"sim\"\n\n[VirtualCenter \"127.0.0.1\"]\nuser = \"administrator@vsphere.local\"\npassword = \"{PASSWORD}\"\ndatacenters = \"DC0\"\n"),
        )
        .unwrap();

        // A full migration: ids from the records, the vCenter configured but unused.
        let work = dir.path().join("work");
        let args = migrate_args(&kubeconfig, &config, &work);
        assert!(!format!("{args:?}").contains(PASSWORD));
        run(&args).unwrap();
        let (_, set_args) = args.workload.target();
        let cluster = set_args.cluster.clone();
        assert!(files_containing(&work, PASSWORD).is_empty());
        let plan = std::fs::read_to_string(work.join("plan.json")).unwrap();
        assert!(plan.contains("csi.vsphere.vmware.com"));

        // Rollback, drop one record: now resolution needs the (unreachable) vCenter and fails.
        super::rollback(&ResumeArgs {
            work_dir: work.clone(),
            concurrency: 1,
            timeout: 60,
            output: crate::progress::ProgressFormat::Text,
            cluster: cluster.clone(),
        })
        .unwrap();
        let records: Api<DynamicObject> = sim.block_on(async {
            let client = crate::plan_cmd::connect(&cluster).await.unwrap();
            Api::all_with(
                client,
                &ApiResource::from_gvk_with_plural(
                    &GroupVersionKind::gvk(
                        "cns.vmware.com",
                        "v1alpha1",
                        "CnsVSphereVolumeMigration",
                    ),
                    "cnsvspherevolumemigrations",
                ),
            )
        });
        sim.block_on(async {
            let first = records.list(&ListParams::default()).await.unwrap().items[0]
                .metadata
                .name
                .clone()
                .unwrap();
            records
                .delete(&first, &DeleteParams::default())
                .await
                .unwrap();
        });
        let work2 = dir.path().join("work2");
        let failure = run(&migrate_args(&kubeconfig, &config, &work2)).unwrap_err();
        let shown = format!("{:#} {:?}", failure.error, failure.error);
        assert!(shown.contains("vCenter"), "{shown}");
        assert!(!shown.contains(PASSWORD), "{shown}");
        if work2.exists() {
            assert!(files_containing(&work2, PASSWORD).is_empty());
        }
        let logs = String::from_utf8_lossy(&captured.0.lock().unwrap()).into_owned();
        assert!(!logs.contains(PASSWORD), "password logged");
        server.shutdown();
    }
}
