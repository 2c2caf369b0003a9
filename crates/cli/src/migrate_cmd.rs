//! `csi-migrate migrate` and `resume`: confirm, run the plan with progress lines, report.

use std::io::{self, BufRead, IsTerminal, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use csi_migrate_migrate::runner::{ProgressCallback, StepProgress};
use csi_migrate_migrate::workdir::JournalEvent;
use csi_migrate_migrate::{
    PlanOptions, RollbackError, RunError, RunOptions, RunSummary, migrate, resume as resume_run,
    rollback as rollback_run,
};

use crate::args::{MigrateArgs, MigrateWorkload, ReclaimPolicyArg, ResumeArgs};
use crate::plan_cmd::{connect, load_and_plan, render_table};
use crate::{Failure, runtime};

/// Runs `migrate`.
pub fn run(args: &MigrateArgs) -> Result<(), Failure> {
    let MigrateWorkload::Statefulset(args) = &args.workload;
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
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.cluster))?;
    let (plan, snapshot) = runtime.block_on(load_and_plan(
        client.clone(),
        &args.namespace,
        &args.name,
        &args.to_storageclass,
        options,
    ))?;
    let mut err = io::stderr().lock();
    err.write_all(render_table(&plan, &snapshot).as_bytes())?;
    if args.dry_run {
        writeln!(err, "\ndry run: nothing was written")?;
        return Ok(());
    }
    if !args.yes {
        write!(
            err,
            "\nMigrate statefulset {}/{} ({} steps)? Work dir: {}. [y/N] ",
            plan.namespace,
            plan.statefulset,
            plan.steps.len(),
            args.work_dir.display()
        )?;
        err.flush()?;
        let mut answer = String::new();
        io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Err(Failure::failed(anyhow!(
                "not confirmed; nothing was changed"
            )));
        }
    }
    drop(err);
    // Time passed at the prompt: run only the plan that was confirmed.
    let (plan, snapshot) = if args.yes {
        (plan, snapshot)
    } else {
        let (fresh, snapshot) = runtime.block_on(load_and_plan(
            client.clone(),
            &args.namespace,
            &args.name,
            &args.to_storageclass,
            options,
        ))?;
        if fresh.steps != plan.steps {
            return Err(Failure::failed(anyhow!(
                "the workload changed while waiting for confirmation; nothing was changed, run the command again"
            )));
        }
        (fresh, snapshot)
    };
    let run_options = run_options(args.timeout);
    let result = runtime.block_on(migrate(
        client,
        &args.work_dir,
        &plan,
        &snapshot,
        &run_options,
    ));
    report(result, &args.work_dir)
}

/// Runs `resume`.
pub fn resume(args: &ResumeArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.cluster))?;
    let result = runtime.block_on(resume_run(
        client,
        &args.work_dir,
        &run_options(args.timeout),
    ));
    report(result, &args.work_dir)
}

/// Runs `rollback`.
pub fn rollback(args: &ResumeArgs) -> Result<(), Failure> {
    let runtime = runtime()?;
    let client = runtime.block_on(connect(&args.cluster))?;
    let result = runtime.block_on(rollback_run(
        client,
        &args.work_dir,
        &run_options(args.timeout),
    ));
    match result {
        Ok(summary) => {
            writeln!(
                io::stdout().lock(),
                "rollback complete: {} of {} steps run now; the original in-tree objects are back",
                summary.executed,
                summary.total
            )?;
            Ok(())
        }
        Err(RollbackError::WorkDir(e)) => Err(Failure::bad_input(e)),
        Err(e) => Err(Failure::failed(anyhow!(
            "{e}\n`csi-migrate rollback --work-dir {}` continues",
            args.work_dir.display()
        ))),
    }
}

/// Run options that print one progress line per step to stderr.
pub fn run_options(timeout_seconds: u64) -> RunOptions {
    let started = Instant::now();
    let progress: ProgressCallback = Arc::new(move |p: &StepProgress<'_>| {
        let event = match p.event {
            JournalEvent::Started => "start",
            JournalEvent::Done => "done ",
        };
        let _ = writeln!(
            io::stderr().lock(),
            "[{:>6.1}s] {}/{} {event} {}",
            started.elapsed().as_secs_f64(),
            p.index + 1,
            p.total,
            p.description
        );
    });
    RunOptions {
        step_timeout: Duration::from_secs(timeout_seconds),
        stop: None,
        progress: Some(progress),
    }
}

fn report(result: Result<RunSummary, RunError>, work_dir: &std::path::Path) -> Result<(), Failure> {
    match result {
        Ok(summary) => {
            writeln!(
                io::stdout().lock(),
                "migration complete: {} of {} steps run now; backups and journal in {}",
                summary.executed,
                summary.total,
                work_dir.display()
            )?;
            Ok(())
        }
        Err(RunError::WorkDir(e)) => Err(Failure::bad_input(e)),
        Err(e) => Err(Failure::failed(anyhow!(
            "{e}\nthe journal in {} records how far it got; `csi-migrate resume --work-dir {}` continues",
            work_dir.display(),
            work_dir.display()
        ))),
    }
}
