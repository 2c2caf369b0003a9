//! Starts our build of VMware's vCenter simulator (`scripts/build-vcsim`) on loopback, for tests and `csi-migrate demo`.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::time::{Duration, Instant};

/// How long the simulator may take to announce that it is ready.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// Why the simulator could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SimulatorError {
    /// The binary could not be executed (missing, not executable).
    #[error("cannot start the vCenter simulator {binary}: {source}")]
    Spawn {
        /// The binary.
        binary: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// It exited, or did not announce its URL and `VCSIM_READY` within a minute.
    #[error("the vCenter simulator {binary} did not get ready ({status})")]
    NotReady {
        /// The binary.
        binary: PathBuf,
        /// Its exit status, if it exited.
        status: String,
    },
}

/// A running simulator; killed when dropped (and, as it watches its stdin, when this
/// process goes away).
#[derive(Debug)]
pub struct Vcsim {
    /// `http://127.0.0.1:PORT/sdk`.
    pub url: String,
    /// Datastore name → the local directory holding its files.
    pub datastore_dirs: HashMap<String, PathBuf>,
    child: Child,
    /// Closing it asks vcsim to exit cleanly (removing its datastore directories).
    stdin: Option<ChildStdin>,
}

impl Vcsim {
    /// Starts `binary` on a free loopback port accepting only `user`/`password`, with
    /// `extra` arguments (`-datastore NAME`, `-api-version 7.0.0.0`), and waits until ready.
    pub fn start(
        binary: &Path,
        user: &str,
        password: &str,
        extra: &[&str],
    ) -> Result<Self, SimulatorError> {
        let spawn_error = |source| SimulatorError::Spawn {
            binary: binary.to_owned(),
            source,
        };
        let mut child = Command::new(binary)
            .args([
                "-listen",
                "127.0.0.1:0",
                "-username",
                user,
                "-password",
                password,
            ])
            .arg("-exit-on-stdin-eof")
            .args(extra)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(spawn_error)?;
        let (Some(stdin), Some(stdout)) = (child.stdin.take(), child.stdout.take()) else {
            let _ = child.kill();
            return Err(spawn_error(std::io::Error::other("no stdio pipes")));
        };
        // Read on a thread so a simulator that hangs before it is ready cannot hang us.
        let (lines_tx, lines_rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if lines_tx.send(line).is_err() {
                    break;
                }
            }
        });
        let deadline = Instant::now() + READY_TIMEOUT;
        let mut url = None;
        let mut datastore_dirs = HashMap::new();
        let mut ready = false;
        while let Ok(line) =
            lines_rx.recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            if let Some(u) = line.strip_prefix("VCSIM_URL=") {
                url = Some(u.to_owned());
            } else if let Some((name, dir)) = line
                .strip_prefix("VCSIM_DATASTORE=")
                .and_then(|ds| ds.split_once('\t'))
            {
                datastore_dirs.insert(name.to_owned(), PathBuf::from(dir));
            } else if line == "VCSIM_READY" {
                ready = true;
                break;
            }
        }
        match url {
            Some(url) if ready => Ok(Self {
                url,
                datastore_dirs,
                child,
                stdin: Some(stdin),
            }),
            _ => {
                let _ = child.kill();
                let status = child
                    .wait()
                    .map_or_else(|e| e.to_string(), |s| s.to_string());
                Err(SimulatorError::NotReady {
                    binary: binary.to_owned(),
                    status,
                })
            }
        }
    }
}

impl Drop for Vcsim {
    fn drop(&mut self) {
        drop(self.stdin.take());
        // A clean exit removes the datastore directories; kill only a simulator that hangs.
        let deadline = Instant::now() + Duration::from_secs(3);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn a_missing_binary_is_a_spawn_error_naming_it() {
        let err = Vcsim::start(Path::new("/nonexistent/vcsim"), "u", "p", &[]).unwrap_err();
        assert!(matches!(err, SimulatorError::Spawn { .. }));
        assert!(err.to_string().contains("/nonexistent/vcsim"));
    }

    #[test]
    fn a_binary_that_never_gets_ready_is_not_ready() {
        let err = Vcsim::start(Path::new("true"), "u", "p", &[]).unwrap_err();
        assert!(matches!(err, SimulatorError::NotReady { .. }), "{err:?}");
    }
}
