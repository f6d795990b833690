//! The controllers running as a task of this process, with an existing Kubernetes client and
//! no operations endpoints or leader election: how the demo, the benchmark and the tests run
//! them (`pve-operator run` is the same controllers in a process of their own).

use kube::Client;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use super::{RunArgs, run_with_client};

/// The controllers started by [`InProcessController::start`], until [`stop`] (graceful) or
/// [`abort`] (as a crash would end them).
///
/// [`stop`]: InProcessController::stop
/// [`abort`]: InProcessController::abort
pub struct InProcessController {
    stop: oneshot::Sender<()>,
    handle: JoinHandle<anyhow::Result<()>>,
}

impl InProcessController {
    /// Starts the controllers of `args` on a task of the current runtime.
    pub fn start(args: RunArgs, kube: Client) -> Self {
        let (stop, stopped) = oneshot::channel::<()>();
        let handle = tokio::spawn(run_with_client(args, kube, async {
            let _ = stopped.await;
        }));
        Self { stop, handle }
    }

    /// Shuts the controllers down gracefully and waits for them; their error, if they failed.
    pub async fn stop(self) -> anyhow::Result<()> {
        let _ = self.stop.send(());
        match self.handle.await {
            Ok(result) => result,
            Err(error) => Err(anyhow::anyhow!("the controller task failed: {error}")),
        }
    }

    /// Ends the controllers abruptly, as a crash would: no graceful shutdown, nothing flushed.
    pub async fn abort(self) {
        self.handle.abort();
        let _ = self.handle.await;
        // Only now: a stop signal before the abort took effect would be a graceful one.
        drop(self.stop);
    }

    /// Whether the controllers have ended (by themselves: an error, or a stop).
    pub fn is_finished(&self) -> bool {
        self.handle.is_finished()
    }
}
