//! Removing secrets from an error: every text an error carries, with each secret replaced by
//! `***`.

use super::PveError;

impl PveError {
    /// This error with every occurrence of each of `secrets` (at least 4 bytes long) replaced
    /// by `***` in every text it carries: a server may quote back a parameter or a header it
    /// received (a password, a token), and the error goes into logs and statuses.
    pub fn redacted(mut self, secrets: &[&str]) -> PveError {
        let secrets: Vec<&str> = secrets.iter().copied().filter(|s| s.len() >= 4).collect();
        if secrets.is_empty() {
            return self;
        }
        let scrub = |text: &mut String| {
            for s in &secrets {
                if text.contains(s) {
                    *text = text.replace(s, "***");
                }
            }
        };
        match &mut self {
            PveError::Unauthorized { reason } => scrub(reason),
            PveError::PermissionDenied {
                path,
                privileges,
                detail,
                message,
            } => {
                path.iter_mut().chain(detail.iter_mut()).for_each(scrub);
                privileges.iter_mut().for_each(scrub);
                scrub(message);
            }
            PveError::InvalidParameters { message, errors }
            | PveError::NotFound { message, errors }
            | PveError::AlreadyExists { message, errors }
            | PveError::Api {
                message, errors, ..
            } => {
                scrub(message);
                let scrubbed = std::mem::take(errors)
                    .into_iter()
                    .map(|(mut k, mut v)| {
                        scrub(&mut k);
                        scrub(&mut v);
                        (k, v)
                    })
                    .collect();
                *errors = scrubbed;
            }
            PveError::Locked { lock, message } => {
                lock.iter_mut().for_each(scrub);
                scrub(message);
            }
            PveError::LockTimeout { message }
            | PveError::DigestMismatch { message }
            | PveError::Conflict { message }
            | PveError::NotImplemented { message }
            | PveError::Server { message, .. }
            | PveError::Transport { message }
            | PveError::Certificate { message }
            | PveError::Timeout { message }
            | PveError::InvalidInput { message, .. }
            | PveError::Config { message, .. } => scrub(message),
            PveError::TaskFailed {
                upid,
                exit_status,
                log_tail,
                ..
            } => {
                scrub(upid);
                scrub(exit_status);
                log_tail.iter_mut().for_each(scrub);
            }
            PveError::Decode {
                context,
                reason,
                excerpt,
            } => {
                scrub(context);
                scrub(reason);
                scrub(excerpt);
            }
            PveError::ResponseTooLarge { endpoint, .. } => scrub(endpoint),
        }
        self
    }
}
