//! Authentication: the API token header or a ticket, with a single-flight login, renewal before
//! expiry (pausing after a transient renewal failure) and the `POST /access/ticket` request.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use reqwest::header::HeaderValue;
use tokio::sync::RwLock;

use super::transport::finish;
use super::{PveClient, TICKET_LIFETIME};
use crate::error::{ErrorKind, PveError, Result};
use crate::request::{ApiRequest, Method, ParamValue, Params};
use crate::secret::Secret;

pub(super) enum Auth {
    Token(HeaderValue),
    Ticket(TicketAuth),
}

pub(super) struct TicketAuth {
    pub(super) userid: String,
    pub(super) password: Secret,
    pub(super) state: RwLock<Option<Arc<Ticket>>>,
}

pub(super) struct Ticket {
    pub(super) ticket: Secret,
    pub(super) csrf: Secret,
    pub(super) obtained: Instant,
    /// After a transient renewal failure, the next renewal attempt waits until then.
    pub(super) renew_not_before: Option<Instant>,
}

/// How long to wait before renewing again after a transient renewal failure.
const RENEW_RETRY_DELAY: Duration = Duration::from_secs(30);

impl Ticket {
    /// Whether the ticket can be used as is (fresh, or renewal paused while still valid).
    fn usable_without_renewal(&self, renew_after: Duration) -> bool {
        let age = self.obtained.elapsed();
        age < renew_after
            || (self.renew_not_before.is_some_and(|t| Instant::now() < t)
                && age + Duration::from_secs(60) < TICKET_LIFETIME)
    }
}

impl PveClient {
    /// The current ticket; logs in or renews under the write lock, so concurrent callers wait for
    /// one login instead of each starting their own.
    pub(super) async fn ticket(&self, t: &TicketAuth) -> Result<Arc<Ticket>> {
        let renew_after = self.inner.options.ticket_renew_after;
        if let Some(cur) = t.state.read().await.as_ref()
            && cur.usable_without_renewal(renew_after)
        {
            return Ok(cur.clone());
        }
        let mut state = t.state.write().await;
        if let Some(cur) = state.as_ref() {
            if cur.usable_without_renewal(renew_after) {
                return Ok(cur.clone());
            }
            if cur.obtained.elapsed() + Duration::from_secs(60) < TICKET_LIFETIME {
                match self.login(&t.userid, &cur.ticket).await {
                    Ok(new) => {
                        *state = Some(new.clone());
                        return Ok(new);
                    }
                    Err(e) if e.kind() == ErrorKind::Unauthorized => {
                        tracing::debug!("ticket renewal refused; logging in with the password");
                    }
                    Err(e) => {
                        tracing::warn!(
                            error = %e,
                            retry_in_s = RENEW_RETRY_DELAY.as_secs(),
                            "ticket renewal failed; using the current ticket until it expires"
                        );
                        let kept = Arc::new(Ticket {
                            ticket: cur.ticket.clone(),
                            csrf: cur.csrf.clone(),
                            obtained: cur.obtained,
                            renew_not_before: Some(Instant::now() + RENEW_RETRY_DELAY),
                        });
                        *state = Some(kept.clone());
                        return Ok(kept);
                    }
                }
            }
        }
        let new = self.login(&t.userid, &t.password).await?;
        *state = Some(new.clone());
        Ok(new)
    }

    /// `POST /access/ticket` with a password or (renewal) the current ticket.
    async fn login(&self, userid: &str, password: &Secret) -> Result<Arc<Ticket>> {
        self.login_once(userid, password)
            .await
            .map_err(|e| e.redacted(&[password.expose()]))
    }

    async fn login_once(&self, userid: &str, password: &Secret) -> Result<Arc<Ticket>> {
        self.inner.logins.fetch_add(1, Ordering::Relaxed);
        let req = ticket_request(userid, password);
        let raw = self.send_raw(&req, None).await?;
        let resp = finish(&req, raw)?;
        // The body holds a ticket: never quote it in an error.
        let data: TicketData =
            crate::de::decode(resp.data, &req.describe(), b"<redacted: contains a ticket>")?;
        if data.need_tfa == Some(true) {
            return Err(PveError::Unauthorized {
                reason: format!(
                    "{userid} requires a second factor (TFA), which this client does not support; use an API token"
                ),
            });
        }
        match (data.ticket, data.csrf) {
            (Some(ticket), Some(csrf)) if !ticket.is_empty() && !csrf.is_empty() => {
                Ok(Arc::new(Ticket {
                    ticket: Secret::new(ticket),
                    csrf: Secret::new(csrf),
                    obtained: Instant::now(),
                    renew_not_before: None,
                }))
            }
            _ => Err(PveError::decode(
                req.describe(),
                "the response has no ticket or no CSRFPreventionToken",
                b"<redacted: contains a ticket>",
            )),
        }
    }
}

impl TicketAuth {
    /// Forgets `used` if it is still the current ticket (a concurrent caller may already have
    /// replaced it, in which case the new one is kept).
    pub(super) async fn invalidate(&self, used: &Arc<Ticket>) {
        let mut state = self.state.write().await;
        if state.as_ref().is_some_and(|cur| cur.ticket == used.ticket) {
            *state = None;
        }
    }
}

/// `POST /access/ticket` with `username` and `password` (a password or, to renew, a ticket).
pub(crate) fn ticket_request(userid: &str, password: &Secret) -> ApiRequest {
    let mut params = Params::new();
    params
        .str("username", userid)
        .set("password", ParamValue::Secret(password.clone()));
    ApiRequest::new(Method::Post, "/access/ticket", &[], params)
}

/// The `data` of `POST /access/ticket`.
#[derive(serde::Deserialize)]
pub(crate) struct TicketData {
    ticket: Option<String>,
    #[serde(rename = "CSRFPreventionToken")]
    csrf: Option<String>,
    #[serde(rename = "NeedTFA", default, deserialize_with = "crate::de::opt_bool")]
    need_tfa: Option<bool>,
}
