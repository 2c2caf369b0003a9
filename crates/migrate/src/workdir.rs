//! The work directory: lock, backups, plan and journal, every file written atomically and fsynced.
//!
//! Layout (all JSON, readable with `jq`, enough to restore by hand with `kubectl`):
//!
//! ```text
//! DIR/lock                          O_EXCL lock, holds the pid of the running process
//! DIR/plan.json                     the plan (schema csi-migrate.plan/v1)
//! DIR/backup/<kind>/<name>.json     every object as read before the first write
//! DIR/journal.jsonl                 {"step":N,"event":"started"|"done","action":…} per line
//! DIR/rollback-plan.json            the way back, computed when `rollback` first runs
//! DIR/rollback-journal.jsonl        its journal
//! ```
//!
//! `docs/work-dir.md` documents every file and how to restore by hand.

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use thiserror::Error;

use crate::plan::{Plan, Step};

/// Why the work directory could not be used.
#[derive(Debug, Error)]
pub enum WorkDirError {
    /// Another run holds the lock (or a crashed one left it behind).
    #[error(
        "{0} exists: another csi-migrate run is using this work dir; if none is running (e.g. after a crash), remove the file and run `csi-migrate resume`"
    )]
    Locked(PathBuf),
    /// A file could not be read, written or synced.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A file is not the JSON we wrote.
    #[error("{path}: not valid: {source}")]
    Corrupt {
        /// The file.
        path: PathBuf,
        /// The parse error.
        source: serde_json::Error,
    },
    /// `migrate` was pointed at a directory that already holds a run.
    #[error("{0} already holds a plan; use `csi-migrate resume --work-dir` or a fresh directory")]
    AlreadyStarted(PathBuf),
}

fn io_error(path: &Path) -> impl FnOnce(io::Error) -> WorkDirError + '_ {
    move |source| WorkDirError::Io {
        path: path.to_owned(),
        source,
    }
}

/// One journal line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JournalEntry {
    /// Index of the step in the plan.
    pub step: usize,
    /// `started` or `done`.
    pub event: JournalEvent,
    /// The step itself, for people reading the journal.
    pub action: Step,
    /// Seconds since the Unix epoch.
    pub at: u64,
}

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum JournalEvent {
    /// About to act.
    Started,
    /// Acted and verified.
    Done,
}

/// Which run of the work dir a plan or journal belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The migration.
    Migration,
    /// The rollback of the migration.
    Rollback,
}

impl Stage {
    fn plan_file(self) -> &'static str {
        match self {
            Self::Migration => "plan.json",
            Self::Rollback => "rollback-plan.json",
        }
    }

    fn journal_file(self) -> &'static str {
        match self {
            Self::Migration => "journal.jsonl",
            Self::Rollback => "rollback-journal.jsonl",
        }
    }
}

/// A locked work directory; the lock is released on drop.
#[derive(Debug)]
pub struct WorkDir {
    root: PathBuf,
    lock: PathBuf,
}

impl WorkDir {
    /// Creates `root` if needed and takes its lock (`O_EXCL`).
    pub fn lock(root: &Path) -> Result<Self, WorkDirError> {
        fs::create_dir_all(root).map_err(io_error(root))?;
        let lock = root.join("lock");
        match OpenOptions::new().write(true).create_new(true).open(&lock) {
            Ok(mut file) => {
                writeln!(file, "{}", std::process::id()).map_err(io_error(&lock))?;
                file.sync_all().map_err(io_error(&lock))?;
                sync_dir(root)?;
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(WorkDirError::Locked(lock));
            }
            Err(e) => return Err(io_error(&lock)(e)),
        }
        Ok(Self {
            root: root.to_owned(),
            lock,
        })
    }

    /// The directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    /// Whether a plan of `stage` was already written here.
    pub fn has_plan(&self, stage: Stage) -> bool {
        self.root.join(stage.plan_file()).exists()
    }

    /// Writes the plan of `stage` atomically.
    pub fn write_plan(&self, stage: Stage, plan: &Plan) -> Result<(), WorkDirError> {
        write_json_atomically(&self.root.join(stage.plan_file()), plan)
    }

    /// Reads the plan of `stage`.
    pub fn read_plan(&self, stage: Stage) -> Result<Plan, WorkDirError> {
        read_json(&self.root.join(stage.plan_file()))
    }

    /// Reads `backup/<kind>/<name>.json`; `None` when there is no such backup.
    pub fn read_backup<T: serde::de::DeserializeOwned>(
        &self,
        kind: &str,
        name: &str,
    ) -> Result<Option<T>, WorkDirError> {
        let path = self
            .root
            .join("backup")
            .join(kind)
            .join(format!("{name}.json"));
        if !path.exists() {
            return Ok(None);
        }
        read_json(&path).map(Some)
    }

    /// Writes `backup/<kind>/<name>.json` atomically.
    pub fn write_backup(
        &self,
        kind: &str,
        name: &str,
        object: &impl Serialize,
    ) -> Result<(), WorkDirError> {
        let dir = self.root.join("backup").join(kind);
        fs::create_dir_all(&dir).map_err(io_error(&dir))?;
        sync_dir(&self.root.join("backup"))?;
        write_json_atomically(&dir.join(format!("{name}.json")), object)
    }

    /// Appends one line to the journal of `stage` and fsyncs it.
    pub fn append_journal(&self, stage: Stage, entry: &JournalEntry) -> Result<(), WorkDirError> {
        let path = self.root.join(stage.journal_file());
        let existed = path.exists();
        let mut file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&path)
            .map_err(io_error(&path))?;
        let mut line = serde_json::to_vec(entry).map_err(|source| WorkDirError::Corrupt {
            path: path.clone(),
            source,
        })?;
        line.push(b'\n');
        file.write_all(&line).map_err(io_error(&path))?;
        file.sync_all().map_err(io_error(&path))?;
        if !existed {
            sync_dir(&self.root)?;
        }
        Ok(())
    }

    /// Indices of the steps the journal records as done. A torn last line (crash
    /// mid-write) is ignored: that step is simply not known done.
    pub fn done_steps(&self, stage: Stage) -> Result<BTreeSet<usize>, WorkDirError> {
        let path = self.root.join(stage.journal_file());
        let text = match fs::read_to_string(&path) {
            Ok(t) => t,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
            Err(e) => return Err(io_error(&path)(e)),
        };
        Ok(text
            .lines()
            .filter_map(|l| serde_json::from_str::<JournalEntry>(l).ok())
            .filter(|e| e.event == JournalEvent::Done)
            .map(|e| e.step)
            .collect())
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = fs::remove_file(&self.lock);
        let _ = sync_dir(&self.root);
    }
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub fn now_seconds() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, WorkDirError> {
    let text = fs::read(path).map_err(io_error(path))?;
    serde_json::from_slice(&text).map_err(|source| WorkDirError::Corrupt {
        path: path.to_owned(),
        source,
    })
}

fn sync_dir(dir: &Path) -> Result<(), WorkDirError> {
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(io_error(dir))
}

/// Writes pretty JSON to `path.tmp`, fsyncs, renames over `path`, fsyncs the directory.
fn write_json_atomically(path: &Path, value: &impl Serialize) -> Result<(), WorkDirError> {
    let mut text = serde_json::to_vec_pretty(value).map_err(|source| WorkDirError::Corrupt {
        path: path.to_owned(),
        source,
    })?;
    text.push(b'\n');
    let tmp = path.with_extension("json.tmp");
    {
        let mut file = File::create(&tmp).map_err(io_error(&tmp))?;
        file.write_all(&text).map_err(io_error(&tmp))?;
        file.sync_all().map_err(io_error(&tmp))?;
    }
    fs::rename(&tmp, path).map_err(io_error(path))?;
    let parent = path.parent().unwrap_or(Path::new("."));
    sync_dir(parent)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn lock_is_exclusive_and_released_on_drop() {
        let dir = tempfile::tempdir().unwrap();
        let first = WorkDir::lock(dir.path()).unwrap();
        assert!(matches!(
            WorkDir::lock(dir.path()),
            Err(WorkDirError::Locked(_))
        ));
        drop(first);
        assert!(WorkDir::lock(dir.path()).is_ok());
    }

    #[test]
    fn journal_records_done_steps_and_ignores_a_torn_line() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::lock(dir.path()).unwrap();
        for (step, event) in [
            (0, JournalEvent::Started),
            (0, JournalEvent::Done),
            (1, JournalEvent::Started),
        ] {
            work.append_journal(
                Stage::Migration,
                &JournalEntry {
                    step,
                    event,
                    action: Step::RecreateStatefulSet,
                    at: now_seconds(),
                },
            )
            .unwrap();
        }
        let mut file = OpenOptions::new()
            .append(true)
            .open(dir.path().join("journal.jsonl"))
            .unwrap();
        file.write_all(br#"{"step":1,"event":"do"#).unwrap();
        assert_eq!(
            work.done_steps(Stage::Migration).unwrap(),
            BTreeSet::from([0])
        );
        assert!(work.done_steps(Stage::Rollback).unwrap().is_empty());
    }

    #[test]
    fn backups_are_written_whole() {
        let dir = tempfile::tempdir().unwrap();
        let work = WorkDir::lock(dir.path()).unwrap();
        work.write_backup("pods", "web-0", &serde_json::json!({"a": 1}))
            .unwrap();
        let text = fs::read_to_string(dir.path().join("backup/pods/web-0.json")).unwrap();
        assert_eq!(text, "{\n  \"a\": 1\n}\n");
        assert!(!dir.path().join("backup/pods/web-0.json.tmp").exists());
    }
}
