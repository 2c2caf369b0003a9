//! Progress of `migrate`, `resume` and `rollback`: indicatif bars on a terminal, plain lines otherwise, or a JSON event stream.
//!
//! The event stream (`-o json`) is a contract, documented in docs/migrate-events.md:
//! one JSON object per line on stdout — the plan (`migrate` only), every step as it
//! starts and as it is done, then one summary. Text goes to stderr (bars only when
//! stderr is a terminal, so a log file gets plain lines and no escape codes); the
//! one-line summary of a successful run goes to stdout. Errors are not rendered here:
//! `main` prints them to stderr with the exit code, whatever the format.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant, SystemTime};

use csi_migrate_migrate::runner::{ProgressCallback, StepProgress};
use csi_migrate_migrate::workdir::JournalEvent;
use csi_migrate_migrate::{Plan, RunError, Step};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

/// `apiVersion` of every object in the event stream.
pub const EVENTS_API_VERSION: &str = "csi-migrate.events/v1";

/// How progress is shown (`-o/--output`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ProgressFormat {
    /// Bars on stderr when it is a terminal, plain lines otherwise.
    Text,
    /// One JSON object per line on stdout (docs/migrate-events.md).
    Json,
}

/// The command whose progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Operation {
    /// `migrate`.
    Migrate,
    /// `resume`.
    Resume,
    /// `rollback`.
    Rollback,
}

impl Operation {
    /// The command's name.
    pub fn verb(self) -> &'static str {
        match self {
            Self::Migrate => "migrate",
            Self::Resume => "resume",
            Self::Rollback => "rollback",
        }
    }
}

/// The workload a run is about, as every event names it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Workload {
    /// `StatefulSet`, `Deployment` or `PersistentVolumeClaim`.
    pub kind: String,
    /// Its namespace.
    pub namespace: String,
    /// Its name.
    pub name: String,
}

impl Workload {
    /// The workload of `plan`.
    pub fn of(plan: &Plan) -> Self {
        let kind = serde_json::to_value(plan.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_else(|| plan.kind.to_string());
        Self {
            kind,
            namespace: plan.namespace.clone(),
            name: plan.name.clone(),
        }
    }
}

/// Where a step sits in the plan: the batch (a StatefulSet replica, a Deployment's
/// claims, a claim and its pods) whose pod, claim or volume it acts on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchOf {
    /// Index into `plan.batches`.
    pub index: usize,
    /// The batch's pods (a StatefulSet replica: one).
    pub pods: Vec<String>,
}

/// The batch whose pod, claim or (old or new) volume `step` names; None for steps on
/// the workload itself or steps the plan does not know.
pub fn batch_of(plan: &Plan, step: &Step) -> Option<BatchOf> {
    enum Names<'a> {
        Pod(&'a str),
        Claim(&'a str),
        Volume(&'a str),
    }
    let names = match step {
        Step::DeletePod { pod, .. } | Step::CreatePod { pod } | Step::AwaitPodReady { pod } => {
            Names::Pod(pod)
        }
        Step::DeleteClaim { claim, .. }
        | Step::CreateClaim { claim }
        | Step::AwaitClaimBound { claim, .. } => Names::Claim(claim),
        Step::RetainVolume { volume, .. }
        | Step::DeleteVolume { volume, .. }
        | Step::CreateVolume { volume }
        | Step::RestoreReclaimPolicy { volume, .. } => Names::Volume(volume),
        _ => return None,
    };
    let index = plan.batches.iter().position(|batch| match names {
        Names::Pod(pod) => batch.pods.iter().any(|p| p.name == pod),
        Names::Claim(claim) => batch.volumes.iter().any(|v| v.claim == claim),
        Names::Volume(volume) => batch.volumes.iter().any(|v| {
            v.old_volume == volume || v.new_volume.metadata.name.as_deref() == Some(volume)
        }),
    })?;
    let pods = plan.batches.get(index)?.pods.iter().map(|p| p.name.clone());
    Some(BatchOf {
        index,
        pods: pods.collect(),
    })
}

/// Seconds with millisecond precision, as the events carry them.
fn seconds(duration: Duration) -> f64 {
    (duration.as_secs_f64() * 1000.0).round() / 1000.0
}

fn rfc3339(at: SystemTime) -> String {
    jiff::Timestamp::try_from(at)
        .map(|t| format!("{t:.3}"))
        .unwrap_or_default()
}

/// One step started or done: a line of the event stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StepRecord {
    /// [`EVENTS_API_VERSION`].
    pub api_version: &'static str,
    /// Always `step`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// The command.
    pub operation: Operation,
    /// The workload, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// `started` or `done`.
    pub event: JournalEvent,
    /// Index of the step in the plan (0-based).
    pub index: usize,
    /// Steps in the plan.
    pub total: usize,
    /// The step as `plan.json` and the journal hold it.
    pub step: Step,
    /// One line: the API call or wait.
    pub description: String,
    /// Index of the plan batch the step acts on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub batch: Option<usize>,
    /// That batch's pods (a StatefulSet replica).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pods: Option<Vec<String>>,
    /// Since the command started.
    pub elapsed_seconds: f64,
    /// `done` only: since this step started (absent when it started in an earlier run).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step_seconds: Option<f64>,
    /// Wall-clock time, RFC 3339 UTC.
    pub time: String,
}

/// How a command ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum Outcome {
    /// Every step is done.
    Succeeded,
    /// Stopped with an error; the journal allows continuing.
    Failed,
    /// `--dry-run`: the plan was shown, nothing was written.
    DryRun,
}

/// The last line of the event stream.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SummaryRecord {
    /// [`EVENTS_API_VERSION`].
    pub api_version: &'static str,
    /// Always `summary`.
    #[serde(rename = "type")]
    pub type_: &'static str,
    /// The command.
    pub operation: Operation,
    /// The workload, when known.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub workload: Option<Workload>,
    /// How it ended.
    pub outcome: Outcome,
    /// Steps this invocation ran (absent for a dry run or when the run never started).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub executed: Option<usize>,
    /// Steps in the plan (absent when unknown).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub total: Option<usize>,
    /// The step that failed, when the error names one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub failed_step: Option<usize>,
    /// The error, as printed on stderr.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The work dir (journal, backups).
    pub work_dir: PathBuf,
    /// Since the command started.
    pub elapsed_seconds: f64,
    /// Wall-clock time, RFC 3339 UTC.
    pub time: String,
}

/// The plan about to run (`migrate -o json` only): the first line of the stream.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
struct PlanRecord<'a> {
    api_version: &'static str,
    #[serde(rename = "type")]
    type_: &'static str,
    operation: Operation,
    workload: Workload,
    /// The same object `csi-migrate plan -o json` prints.
    plan: &'a Plan,
    time: String,
}

/// The step a run error names, if any.
pub fn failed_step(error: &RunError) -> Option<usize> {
    match error {
        RunError::Api { index, .. }
        | RunError::Timeout { index, .. }
        | RunError::Watch { index, .. }
        | RunError::Unexpected { index, .. } => Some(*index),
        RunError::Stopped(index) => Some(*index),
        _ => None,
    }
}

/// A plain progress line (no escape codes, one write per line). Pure.
pub fn plain_line(record: &StepRecord) -> String {
    let event = match record.event {
        JournalEvent::Started => "start",
        JournalEvent::Done => "done ",
    };
    let pods = match &record.pods {
        Some(pods) if !pods.is_empty() => format!("({}) ", pods.join(",")),
        _ => String::new(),
    };
    let took = match record.step_seconds {
        Some(s) => format!(" ({s:.1}s)"),
        None => String::new(),
    };
    format!(
        "[{:>6.1}s] {}/{} {event} {pods}{}{took}",
        record.elapsed_seconds,
        record.index + 1,
        record.total,
        record.description
    )
}

/// The one-line result of a successful text run, on stdout. Pure.
pub fn plain_summary(summary: &SummaryRecord) -> Option<String> {
    let (Some(executed), Some(total)) = (summary.executed, summary.total) else {
        return None;
    };
    match (summary.outcome, summary.operation) {
        (Outcome::Succeeded, Operation::Rollback) => Some(format!(
            "rollback complete: {executed} of {total} steps run now; the original in-tree objects are back"
        )),
        (Outcome::Succeeded, _) => Some(format!(
            "migration complete: {executed} of {total} steps run now; backups and journal in {}",
            summary.work_dir.display()
        )),
        _ => None,
    }
}

/// Indicatif bars: the workload's steps overall, and the step running now with its
/// elapsed time; finished steps are printed above them.
struct Bars {
    multi: MultiProgress,
    overall: ProgressBar,
    current: ProgressBar,
}

impl Bars {
    fn new(target: ProgressDrawTarget, title: &str) -> Self {
        let multi = MultiProgress::with_draw_target(target);
        let overall = multi.add(ProgressBar::new(0));
        overall.set_style(
            ProgressStyle::with_template(
                "{prefix:.bold} [{elapsed_precise}] {wide_bar:.cyan/blue} {pos}/{len} {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> "),
        );
        overall.set_prefix(title.to_owned());
        let current = multi.add(ProgressBar::new_spinner());
        current.set_style(
            ProgressStyle::with_template("  {spinner} [{elapsed:>4}] {wide_msg}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        );
        Self {
            multi,
            overall,
            current,
        }
    }

    fn step(&self, record: &StepRecord) {
        let replica = match &record.pods {
            Some(pods) if !pods.is_empty() => format!("replica {}", pods.join(",")),
            _ => String::new(),
        };
        self.overall.set_length(record.total as u64);
        match record.event {
            JournalEvent::Started => {
                self.overall.set_position(record.index as u64);
                self.overall.set_message(replica);
                self.current.reset_elapsed();
                self.current.set_message(record.description.clone());
                self.current.enable_steady_tick(Duration::from_millis(120));
            }
            JournalEvent::Done => {
                self.overall.set_position(record.index as u64 + 1);
                let _ = self.multi.println(format!("  ✓ {}", plain_line(record)));
            }
        }
    }

    fn finish(&self) {
        self.current.finish_and_clear();
        self.overall.finish_and_clear();
        let _ = self.multi.clear();
    }
}

type Writer = Box<dyn Write + Send>;

enum Sink {
    Bars(Bars),
    Lines(Mutex<Writer>),
    Json(Mutex<Writer>),
}

struct State {
    /// The step running now and when it started (steps run one at a time).
    running: Option<(usize, Instant)>,
}

/// Renders the progress of one command; shared with the runner's callback.
pub struct Progress {
    sink: Sink,
    /// Where the one-line text summary goes (stdout).
    summary_out: Mutex<Writer>,
    operation: Operation,
    plan: Option<Plan>,
    started: Instant,
    state: Mutex<State>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Progress {
    /// Progress for the terminal: `text` → bars on stderr if it is a terminal, plain
    /// lines to stderr otherwise; `json` → the event stream on stdout. `plan` (when
    /// known) names the workload and the batch of each step.
    pub fn for_terminal(
        format: ProgressFormat,
        operation: Operation,
        plan: Option<Plan>,
    ) -> Arc<Self> {
        let sink = match format {
            ProgressFormat::Json => return Self::json(Box::new(io::stdout()), operation, plan),
            ProgressFormat::Text if io::stderr().is_terminal() => {
                let title = match &plan {
                    Some(plan) => format!(
                        "{} {} {}/{}",
                        operation.verb(),
                        plan.kind,
                        plan.namespace,
                        plan.name
                    ),
                    None => operation.verb().to_owned(),
                };
                Sink::Bars(Bars::new(ProgressDrawTarget::stderr(), &title))
            }
            ProgressFormat::Text => Sink::Lines(Mutex::new(Box::new(io::stderr()))),
        };
        Arc::new(Self::with_sink(
            sink,
            Box::new(io::stdout()),
            operation,
            plan,
        ))
    }

    /// Plain lines to `lines`, the text summary to `summary` (tests, and callers that
    /// want lines whatever stderr is).
    pub fn lines(
        lines: Writer,
        summary: Writer,
        operation: Operation,
        plan: Option<Plan>,
    ) -> Arc<Self> {
        Arc::new(Self::with_sink(
            Sink::Lines(Mutex::new(lines)),
            summary,
            operation,
            plan,
        ))
    }

    /// The JSON event stream to `out`.
    pub fn json(out: Writer, operation: Operation, plan: Option<Plan>) -> Arc<Self> {
        Arc::new(Self::with_sink(
            Sink::Json(Mutex::new(out)),
            Box::new(io::sink()),
            operation,
            plan,
        ))
    }

    fn with_sink(sink: Sink, summary: Writer, operation: Operation, plan: Option<Plan>) -> Self {
        Self {
            sink,
            summary_out: Mutex::new(summary),
            operation,
            plan,
            started: Instant::now(),
            state: Mutex::new(State { running: None }),
        }
    }

    /// The plan of a run, read from `work_dir/plan.json` without locking it (only to
    /// name the workload and batches in the progress; None if it cannot be read: the
    /// run itself then reports why).
    pub fn plan_in(work_dir: &Path) -> Option<Plan> {
        let text = std::fs::read_to_string(work_dir.join("plan.json")).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Whether this renders the JSON event stream.
    pub fn is_json(&self) -> bool {
        matches!(self.sink, Sink::Json(_))
    }

    /// A callback for [`csi_migrate_migrate::RunOptions::progress`].
    pub fn callback(self: &Arc<Self>) -> ProgressCallback {
        let progress = Arc::clone(self);
        Arc::new(move |p: &StepProgress<'_>| progress.step(p))
    }

    fn workload(&self) -> Option<Workload> {
        self.plan.as_ref().map(Workload::of)
    }

    /// Shows the plan about to run: the table on stderr for text, a `plan` event for JSON.
    pub fn show_plan(&self, plan: &Plan, table: &str) -> io::Result<()> {
        match &self.sink {
            Sink::Json(out) => {
                let record = PlanRecord {
                    api_version: EVENTS_API_VERSION,
                    type_: "plan",
                    operation: self.operation,
                    workload: Workload::of(plan),
                    plan,
                    time: rfc3339(SystemTime::now()),
                };
                write_json(&mut *locked(out), &record)
            }
            Sink::Lines(_) | Sink::Bars(_) => io::stderr().lock().write_all(table.as_bytes()),
        }
    }

    /// The record for one step callback, timing it. Pure but for the clocks.
    fn record(&self, p: &StepProgress<'_>) -> StepRecord {
        let now = Instant::now();
        let step_seconds = {
            let mut state = locked(&self.state);
            match p.event {
                JournalEvent::Started => {
                    state.running = Some((p.index, now));
                    None
                }
                JournalEvent::Done => match state.running.take() {
                    Some((index, at)) if index == p.index => Some(seconds(now - at)),
                    _ => None,
                },
            }
        };
        let batch = self.plan.as_ref().and_then(|plan| batch_of(plan, p.step));
        StepRecord {
            api_version: EVENTS_API_VERSION,
            type_: "step",
            operation: self.operation,
            workload: self.workload(),
            event: p.event,
            index: p.index,
            total: p.total,
            step: p.step.clone(),
            description: p.description.clone(),
            batch: batch.as_ref().map(|b| b.index),
            pods: batch.map(|b| b.pods),
            elapsed_seconds: seconds(now - self.started),
            step_seconds,
            time: rfc3339(SystemTime::now()),
        }
    }

    /// Renders one step start or end. Output errors are ignored: progress must never
    /// stop a migration (a closed pipe shows at the summary).
    pub fn step(&self, p: &StepProgress<'_>) {
        let record = self.record(p);
        match &self.sink {
            Sink::Bars(bars) => bars.step(&record),
            Sink::Lines(out) => {
                let line = format!("{}\n", plain_line(&record));
                let _ = locked(out).write_all(line.as_bytes());
            }
            Sink::Json(out) => {
                let _ = write_json(&mut *locked(out), &record);
            }
        }
    }

    /// The summary for `work_dir`: how the run ended, executed and total steps if known.
    pub fn summary(
        &self,
        outcome: Outcome,
        steps: Option<(usize, usize)>,
        error: Option<(&dyn std::fmt::Display, Option<usize>)>,
        work_dir: &Path,
    ) -> SummaryRecord {
        SummaryRecord {
            api_version: EVENTS_API_VERSION,
            type_: "summary",
            operation: self.operation,
            workload: self.workload(),
            outcome,
            executed: steps.map(|(executed, _)| executed),
            total: steps.map(|(_, total)| total),
            failed_step: error.and_then(|(_, step)| step),
            error: error.map(|(e, _)| format!("{e:#}")),
            work_dir: work_dir.to_owned(),
            elapsed_seconds: seconds(self.started.elapsed()),
            time: rfc3339(SystemTime::now()),
        }
    }

    /// Ends the progress: clears the bars, then the summary (a line on stdout for a
    /// successful text run; the `summary` event for JSON).
    pub fn finish(&self, summary: &SummaryRecord) -> io::Result<()> {
        match &self.sink {
            Sink::Json(out) => {
                let mut out = locked(out);
                write_json(&mut *out, summary)?;
                return out.flush();
            }
            Sink::Bars(bars) => bars.finish(),
            Sink::Lines(out) => locked(out).flush()?,
        }
        if let Some(line) = plain_summary(summary) {
            let mut out = locked(&self.summary_out);
            writeln!(out, "{line}")?;
            out.flush()?;
        }
        Ok(())
    }
}

/// One object, one line, one write (lines never interleave).
fn write_json(out: &mut dyn Write, record: &impl Serialize) -> io::Result<()> {
    let mut line = serde_json::to_vec(record).map_err(io::Error::other)?;
    line.push(b'\n');
    out.write_all(&line)?;
    out.flush()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use serde_json::{Value, json};

    /// A writer the test can read back.
    #[derive(Clone, Default)]
    struct Shared(Arc<Mutex<Vec<u8>>>);

    impl Write for Shared {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Shared {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A two-replica StatefulSet plan as plan.json holds it (pods, claims, volumes only).
    fn plan() -> Plan {
        let volume = |claim: &str, old: &str, new: &str| {
            json!({"claim": claim, "claimUid": "c", "oldVolume": old, "oldVolumeUid": "o",
                   "originalReclaimPolicy": "Delete", "finalReclaimPolicy": "Delete",
                   "volumeHandle": "vol-1", "newVolume": {"metadata": {"name": new}, "spec": {}},
                   "newClaim": {"metadata": {"name": claim}}})
        };
        let pod = |name: &str| json!({"name": name, "uid": "p", "recreated": {"metadata": {"name": name}}});
        serde_json::from_value(json!({
            "apiVersion": "csi-migrate.plan/v1", "kind": "StatefulSet", "namespace": "default",
            "name": "web", "uid": "s", "targetStorageClass": "gp2-csi", "driver": "ebs.csi.aws.com",
            "batches": [
                {"pods": [pod("web-1")], "volumes": [volume("data-web-1", "pvc-1", "pvc-1-csi")]},
                {"pods": [pod("web-0")], "volumes": [volume("data-web-0", "pvc-0", "pvc-0-csi")]}],
            "steps": [], "warnings": []}))
        .unwrap()
    }

    fn at_step<'a>(index: usize, event: JournalEvent, step: &'a Step) -> StepProgress<'a> {
        StepProgress {
            index,
            total: 3,
            event,
            step,
            description: format!("step {index}"),
        }
    }

    fn steps() -> Vec<Step> {
        vec![
            Step::RetainVolume {
                volume: "pvc-0".into(),
                uid: "o".into(),
            },
            Step::DeletePod {
                pod: "web-1".into(),
                uid: "p".into(),
            },
            Step::AwaitAdoption,
        ]
    }

    #[test]
    fn steps_are_placed_in_the_batch_whose_pod_claim_or_volume_they_name() {
        let plan = plan();
        let of = |step: Step| batch_of(&plan, &step).map(|b| (b.index, b.pods));
        assert_eq!(
            of(Step::DeletePod {
                pod: "web-0".into(),
                uid: "p".into()
            }),
            Some((1, vec!["web-0".to_owned()]))
        );
        assert_eq!(
            of(Step::CreateClaim {
                claim: "data-web-1".into()
            })
            .map(|b| b.0),
            Some(0)
        );
        assert_eq!(
            of(Step::RestoreReclaimPolicy {
                volume: "pvc-0-csi".into(),
                policy: "Delete".into()
            })
            .map(|b| b.0),
            Some(1)
        );
        assert_eq!(of(Step::AwaitAdoption), None);
        assert_eq!(
            of(Step::CreatePod {
                pod: "elsewhere".into()
            }),
            None
        );
    }

    #[test]
    fn json_stream_is_one_object_per_line_with_plan_steps_and_summary() {
        let out = Shared::default();
        let progress = Progress::json(Box::new(out.clone()), Operation::Migrate, Some(plan()));
        progress.show_plan(&plan(), "table").unwrap();
        let steps = steps();
        for (index, step) in steps.iter().enumerate() {
            progress.step(&at_step(index, JournalEvent::Started, step));
            progress.step(&at_step(index, JournalEvent::Done, step));
        }
        let summary = progress.summary(Outcome::Succeeded, Some((3, 3)), None, Path::new("/tmp/w"));
        progress.finish(&summary).unwrap();

        let lines: Vec<Value> = out
            .text()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 1 + 6 + 1);
        assert!(lines.iter().all(|l| l["apiVersion"] == EVENTS_API_VERSION));
        assert_eq!(lines[0]["type"], "plan");
        assert_eq!(lines[0]["plan"]["name"], "web");
        assert_eq!(
            lines[0]["workload"],
            json!({"kind": "StatefulSet", "namespace": "default", "name": "web"})
        );
        let delete_pod_done = &lines[4];
        assert_eq!(delete_pod_done["type"], "step");
        assert_eq!(delete_pod_done["event"], "done");
        assert_eq!(delete_pod_done["index"], 1);
        assert_eq!(delete_pod_done["step"]["action"], "deletePod");
        assert_eq!(delete_pod_done["batch"], 0);
        assert_eq!(delete_pod_done["pods"], json!(["web-1"]));
        assert!(delete_pod_done["stepSeconds"].is_number());
        assert!(lines[3].get("stepSeconds").is_none(), "only done events");
        assert!(lines[5].get("batch").is_none(), "workload steps have none");
        let last = &lines[7];
        assert_eq!(last["type"], "summary");
        assert_eq!(last["outcome"], "succeeded");
        assert_eq!(last["executed"], 3);
        assert_eq!(last["workDir"], "/tmp/w");
    }

    #[test]
    fn failure_summary_names_the_step_and_error() {
        let out = Shared::default();
        let progress = Progress::json(Box::new(out.clone()), Operation::Resume, None);
        let error = RunError::Stopped(4);
        let summary = progress.summary(
            Outcome::Failed,
            None,
            Some((&error, failed_step(&error))),
            Path::new("w"),
        );
        progress.finish(&summary).unwrap();
        let last: Value = serde_json::from_str(out.text().trim()).unwrap();
        assert_eq!(last["operation"], "resume");
        assert_eq!(last["outcome"], "failed");
        assert_eq!(last["failedStep"], 4);
        assert_eq!(last["error"], "stopped on request at step 4");
        assert!(last.get("executed").is_none());
        assert!(last.get("workload").is_none());
    }

    #[test]
    fn plain_lines_have_no_escape_codes_and_the_summary_goes_to_its_own_writer() {
        let (lines, summary_out) = (Shared::default(), Shared::default());
        let progress = Progress::lines(
            Box::new(lines.clone()),
            Box::new(summary_out.clone()),
            Operation::Migrate,
            Some(plan()),
        );
        let steps = steps();
        progress.step(&at_step(1, JournalEvent::Started, &steps[1]));
        progress.step(&at_step(1, JournalEvent::Done, &steps[1]));
        let summary = progress.summary(Outcome::Succeeded, Some((1, 3)), None, Path::new("/w"));
        progress.finish(&summary).unwrap();
        let text = lines.text();
        let shown: Vec<&str> = text.lines().collect();
        assert_eq!(shown.len(), 2);
        assert!(
            shown[0].ends_with("] 2/3 start (web-1) step 1"),
            "{}",
            shown[0]
        );
        assert!(
            shown[1].contains("] 2/3 done  (web-1) step 1 ("),
            "{}",
            shown[1]
        );
        assert!(!text.contains('\u{1b}') && !text.contains('\r'));
        assert_eq!(
            summary_out.text(),
            "migration complete: 1 of 3 steps run now; backups and journal in /w\n"
        );
    }

    #[test]
    fn rollback_and_failed_runs_summarise_as_before() {
        let progress = Progress::lines(
            Box::new(io::sink()),
            Box::new(io::sink()),
            Operation::Rollback,
            None,
        );
        let done = progress.summary(Outcome::Succeeded, Some((2, 9)), None, Path::new("w"));
        assert_eq!(
            plain_summary(&done).unwrap(),
            "rollback complete: 2 of 9 steps run now; the original in-tree objects are back"
        );
        let error = RunError::Stopped(1);
        let failed = progress.summary(Outcome::Failed, None, Some((&error, None)), Path::new("w"));
        assert_eq!(plain_summary(&failed), None, "errors go to stderr via main");
    }

    #[test]
    fn bars_track_position_and_clear_at_the_end() {
        let bars = Bars::new(ProgressDrawTarget::hidden(), "statefulset default/web");
        let progress = Progress::with_sink(
            Sink::Bars(bars),
            Box::new(io::sink()),
            Operation::Migrate,
            Some(plan()),
        );
        let steps = steps();
        progress.step(&at_step(0, JournalEvent::Started, &steps[0]));
        progress.step(&at_step(0, JournalEvent::Done, &steps[0]));
        progress.step(&at_step(1, JournalEvent::Started, &steps[1]));
        let Sink::Bars(bars) = &progress.sink else {
            unreachable!()
        };
        assert_eq!(bars.overall.position(), 1);
        assert_eq!(bars.overall.length(), Some(3));
        assert_eq!(bars.overall.message(), "replica web-1");
        assert_eq!(bars.current.message(), "step 1");
        let summary = progress.summary(Outcome::Succeeded, Some((3, 3)), None, Path::new("w"));
        progress.finish(&summary).unwrap();
        assert!(bars.overall.is_finished() && bars.current.is_finished());
    }
}
