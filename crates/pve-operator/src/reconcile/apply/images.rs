//! Phase 0b: the ProxmoxImages the request uses. Their volumes go into the desired VM; before
//! a create, the nodes that have every one of them bound placement, and a request whose images
//! are not there yet waits (Pending, no VMID taken).

use std::time::Duration;

use kube::ResourceExt;
use kube::runtime::controller::Action;
use pve_operator_api::Phase;

use super::super::error::ReconcileError;
use super::super::images::{ImageWait, ResolvedImages, resolve};
use super::super::status::types;
use super::Pass;

/// How soon a request waiting for an image looks again, should the image's own change not
/// wake it first.
const IMAGE_WAIT: Duration = Duration::from_secs(30);

impl Pass<'_> {
    /// The request's images, resolved (with `need_presence`: and where they are), checked
    /// against the allow-lists; `Err(Ok(action))` ends the pass waiting for them.
    pub(super) async fn images(
        &mut self,
        need_presence: bool,
    ) -> Result<ResolvedImages, Result<Action, ReconcileError>> {
        let spec = &self.request.spec;
        let namespace = self.request.namespace().unwrap_or_default();
        let cluster = spec.cluster_ref.as_ref().map(|c| c.name.as_str());
        let store = &self.ctx.clusters.directory().images;
        match resolve(spec, &namespace, cluster, store, need_presence) {
            Ok(resolved) => {
                for (field, storage) in &resolved.storages {
                    self.scope
                        .policy
                        .check_storage(&format!("{field} (its storage)"), storage)
                        .map_err(|refusals| Err(refusals.into()))?;
                }
                Ok(resolved)
            }
            Err(ImageWait::Unusable(message)) => Err(Err(ReconcileError::Image(message))),
            Err(ImageWait::Pending(message)) => {
                Err(Ok(self.wait_for_image("ImagePending", message)))
            }
            Err(ImageWait::Failed(message)) => Err(Ok(self.wait_for_image("ImageFailed", message))),
        }
    }

    /// Ready=False with `reason`, phase Pending unless a VM exists; the image's change (or the
    /// timer) wakes the request.
    pub(super) fn wait_for_image(&mut self, reason: &str, message: String) -> Action {
        if self.status.vmid.is_none() {
            self.status.phase = Some(Phase::Pending);
        }
        self.condition(types::READY, false, reason, message);
        Action::requeue(IMAGE_WAIT)
    }
}
