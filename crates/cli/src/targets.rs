//! Several workloads in one command: named or selected by label, one work dir each.

use std::future::Future;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::anyhow;
use csi_migrate_migrate::{Client, WorkloadKind, WorkloadRef, select_workloads};
use tokio::sync::Semaphore;
use tokio::task::JoinSet;

use crate::Failure;

/// The workloads of `kind` in `namespace` the command names, or its `-l` selector picks.
pub async fn workloads(
    client: &Client,
    kind: WorkloadKind,
    namespace: &str,
    names: &[String],
    selector: Option<&str>,
) -> Result<Vec<WorkloadRef>, Failure> {
    let names = match selector {
        Some(selector) => {
            let found = select_workloads(client, kind, namespace, selector)
                .await
                .map_err(Failure::failed)?;
            if found.is_empty() {
                return Err(Failure::bad_input(anyhow!(
                    "no {kind} in namespace {namespace} matches -l {selector:?}"
                )));
            }
            found
        }
        None => {
            let mut unique = names.to_vec();
            unique.sort();
            unique.dedup();
            unique
        }
    };
    Ok(names
        .into_iter()
        .map(|name| WorkloadRef {
            kind,
            namespace: namespace.to_owned(),
            name,
        })
        .collect())
}

/// One failure for the failures of several workloads: each on its own line, the exit
/// code the worst of theirs (bad input before failed).
pub fn combine(failures: Vec<(WorkloadRef, Failure)>, of: usize, outcome: &str) -> Failure {
    let code = failures
        .iter()
        .map(|(_, f)| f.code)
        .max()
        .unwrap_or(crate::EXIT_FAILED);
    let mut message = format!("{} of {of} workloads {outcome}:", failures.len());
    for (workload, failure) in &failures {
        message.push_str(&format!(
            "\n  {} {}/{}: {:#}",
            workload.kind, workload.namespace, workload.name, failure.error
        ));
    }
    Failure {
        code,
        error: anyhow!(message),
    }
}

/// The work dir of one of several runs under `root`.
pub fn run_dir(root: &Path, workload: &WorkloadRef) -> PathBuf {
    root.join(format!("{}-{}", workload.kind, workload.name))
}

/// The runs in `root`: `root` itself when it holds a plan, else each subdirectory that
/// does, sorted.
pub fn run_dirs(root: &Path) -> Result<Vec<PathBuf>, Failure> {
    if root.join("plan.json").exists() {
        return Ok(vec![root.to_owned()]);
    }
    let entries = std::fs::read_dir(root)
        .map_err(|e| Failure::bad_input(anyhow!("--work-dir {}: {e}", root.display())))?;
    let mut dirs: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.join("plan.json").exists())
        .collect();
    dirs.sort();
    if dirs.is_empty() {
        return Err(Failure::bad_input(anyhow!(
            "--work-dir {} holds no plan.json, and no subdirectory does: nothing to continue",
            root.display()
        )));
    }
    Ok(dirs)
}

/// Runs `job` on every item, at most `concurrency` at once; the results in item order.
pub async fn for_each_concurrently<T, R, Fut>(
    items: Vec<T>,
    concurrency: u16,
    job: impl Fn(T) -> Fut,
) -> Vec<R>
where
    Fut: Future<Output = R> + Send + 'static,
    R: Send + 'static,
{
    let permits = Arc::new(Semaphore::new(usize::from(concurrency.max(1))));
    let mut running = JoinSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let job = job(item);
        let permits = Arc::clone(&permits);
        running.spawn(async move {
            // Never closed, so acquiring only waits for a free slot.
            let _permit = permits.acquire_owned().await.ok();
            (index, job.await)
        });
    }
    let mut results = Vec::new();
    while let Some(joined) = running.join_next().await {
        match joined {
            Ok(result) => results.push(result),
            // A panicking job is a bug: surface it as one.
            Err(e) => std::panic::resume_unwind(e.into_panic()),
        }
    }
    results.sort_by_key(|(index, _)| *index);
    results.into_iter().map(|(_, result)| result).collect()
}

/// A writer that starts every line with `prefix`, so the progress lines of runs going
/// on at once say whose they are.
pub struct Prefixed<W> {
    inner: W,
    prefix: String,
    at_line_start: bool,
}

impl<W> Prefixed<W> {
    /// Lines written to `inner`, each starting with `prefix`.
    pub fn new(inner: W, prefix: String) -> Self {
        Self {
            inner,
            prefix,
            at_line_start: true,
        }
    }
}

impl<W: Write> Write for Prefixed<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // One write per line keeps lines of different runs whole on a shared stderr.
        let mut out = Vec::with_capacity(buf.len() + self.prefix.len());
        for line in buf.split_inclusive(|b| *b == b'\n') {
            if self.at_line_start {
                out.extend_from_slice(self.prefix.as_bytes());
            }
            out.extend_from_slice(line);
            self.at_line_start = line.ends_with(b"\n");
        }
        self.inner.write_all(&out)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn prefixed_lines_say_whose_they_are_even_when_split_across_writes() {
        let mut out = Prefixed::new(Vec::new(), "[web] ".into());
        out.write_all(b"one\ntw").unwrap();
        out.write_all(b"o\nthree\n").unwrap();
        assert_eq!(
            String::from_utf8(out.inner).unwrap(),
            "[web] one\n[web] two\n[web] three\n"
        );
    }

    #[test]
    fn run_dirs_are_the_root_or_its_planned_subdirectories() {
        let root = tempfile::tempdir().unwrap();
        assert!(run_dirs(root.path()).is_err(), "nothing to continue");
        for name in ["statefulset-db", "statefulset-web", "notes"] {
            std::fs::create_dir(root.path().join(name)).unwrap();
        }
        for name in ["statefulset-web", "statefulset-db"] {
            std::fs::write(root.path().join(name).join("plan.json"), "{}").unwrap();
        }
        assert_eq!(
            run_dirs(root.path()).unwrap(),
            vec![
                root.path().join("statefulset-db"),
                root.path().join("statefulset-web")
            ]
        );
        std::fs::write(root.path().join("plan.json"), "{}").unwrap();
        assert_eq!(run_dirs(root.path()).unwrap(), vec![root.path().to_owned()]);
    }

    #[tokio::test]
    async fn at_most_concurrency_jobs_run_at_once_and_results_keep_their_order() {
        let running = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let most = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let results = for_each_concurrently((0..10u64).collect(), 3, |i| {
            let (running, most) = (Arc::clone(&running), Arc::clone(&most));
            async move {
                use std::sync::atomic::Ordering::SeqCst;
                let now = running.fetch_add(1, SeqCst) + 1;
                most.fetch_max(now, SeqCst);
                tokio::time::sleep(std::time::Duration::from_millis(10 * (10 - i))).await;
                running.fetch_sub(1, SeqCst);
                i * 2
            }
        })
        .await;
        assert_eq!(results, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(most.load(std::sync::atomic::Ordering::SeqCst), 3);
    }

    #[test]
    fn each_workload_gets_its_own_directory() {
        let workload = WorkloadRef {
            kind: WorkloadKind::Deployment,
            namespace: "shop".into(),
            name: "reports".into(),
        };
        assert_eq!(
            run_dir(Path::new("/w"), &workload),
            PathBuf::from("/w/deployment-reports")
        );
    }
}
