//! A control-plane process that cannot outlive the test process.
//!
//! Every server is started through `sh`, which first forks a watchdog and then `exec`s the server
//! in its own place (so the server is our direct child, with the pid we know). The watchdog blocks
//! reading the write end of a pipe that only this process holds. When this process ends — normally,
//! by a panic, or by SIGKILL — the kernel closes that pipe, the watchdog reads EOF, kills the
//! server and removes the directory it was told to clean up. `Drop` does the same on purpose.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};

use crate::Error;

/// The shell prelude: `$1` is the directory to remove after the server is gone (may be empty),
/// the rest is the server's command line. The lifeline pipe is moved to fd 3 because a background
/// list in a non-interactive shell gets /dev/null as its standard input.
const WATCHDOG: &str = r#"
cleanup_dir=$1; shift
server=$$
exec 3<&0
( cat <&3 >/dev/null
  kill -KILL "$server" 2>/dev/null
  if [ -n "$cleanup_dir" ]; then
    while kill -0 "$server" 2>/dev/null; do sleep 0.05; done
    rm -rf "$cleanup_dir"
  fi ) </dev/null &
exec "$@" </dev/null 3<&-
"#;

/// A running server process, killed when dropped.
pub struct ServerProcess {
    name: &'static str,
    child: Child,
    lifeline: Option<ChildStdin>,
    log: PathBuf,
}

impl ServerProcess {
    /// Starts `program args...` with stdout and stderr appended to `log`. When this process dies
    /// without dropping the value, the watchdog kills the server and removes `cleanup_dir`.
    pub fn spawn(
        name: &'static str,
        program: &Path,
        args: &[String],
        log: PathBuf,
        cleanup_dir: Option<&Path>,
    ) -> Result<Self, Error> {
        let spawn_err = |e: std::io::Error| Error::Spawn {
            name,
            reason: e.to_string(),
        };
        let out = File::create(&log).map_err(spawn_err)?;
        let err = out.try_clone().map_err(spawn_err)?;
        let mut child = Command::new("sh")
            .arg("-c")
            .arg(WATCHDOG)
            .arg("testenv-watchdog")
            .arg(cleanup_dir.map(|d| d.as_os_str()).unwrap_or_default())
            .arg(program)
            .args(args)
            .stdin(Stdio::piped())
            .stdout(out)
            .stderr(err)
            .spawn()
            .map_err(spawn_err)?;
        let lifeline = child.stdin.take();
        Ok(Self {
            name,
            child,
            lifeline,
            log,
        })
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Fails with the log's tail when the process has already exited.
    pub fn ensure_running(&mut self) -> Result<(), Error> {
        match self.child.try_wait() {
            Ok(None) => Ok(()),
            Ok(Some(status)) => Err(Error::Exited {
                name: self.name,
                status: status.to_string(),
                log_tail: self.log_tail(40),
            }),
            Err(e) => Err(Error::Spawn {
                name: self.name,
                reason: e.to_string(),
            }),
        }
    }

    /// The last `lines` lines of the server's output, for error messages.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = File::open(&self.log) {
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Kills the server and waits until it is gone.
    pub fn stop(&mut self) {
        // Closing the lifeline makes the watchdog kill the server too; killing it ourselves as
        // well makes the stop immediate and independent of the watchdog.
        self.lifeline.take();
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        self.stop();
    }
}
