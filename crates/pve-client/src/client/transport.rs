//! One request on the wire: the auth header or cookie and CSRF token, the concurrency bound, the
//! request span, the bounded body read, one re-login after a 401 on an expired ticket, and
//! unwrapping `data` and `total` from a successful answer.

use std::time::Instant;

use reqwest::header::{AUTHORIZATION, CONTENT_TYPE, COOKIE, HeaderValue};
use serde_json::Value;
use tracing::Instrument;

use super::auth::{Auth, Ticket};
use super::errors::map_reqwest;
use super::{ApiResponse, PveClient};
use crate::error::{PveError, Result};
use crate::request::{ApiRequest, Method};

pub(super) struct RawResponse {
    status: u16,
    reason: Option<String>,
    body: Vec<u8>,
}

impl PveClient {
    pub(super) async fn send_once(&self, req: &ApiRequest) -> Result<ApiResponse> {
        let ticket = match &self.inner.auth {
            Auth::Ticket(t) => Some(self.ticket(t).await?),
            Auth::Token(_) => None,
        };
        // A server may quote the cookie or CSRF token back: neither goes into an error.
        let without_ticket = |e: PveError, t: Option<&Ticket>| match t {
            Some(t) => e.redacted(&[t.ticket.expose(), t.csrf.expose()]),
            None => e,
        };
        let raw = self
            .send_raw(req, ticket.as_deref())
            .await
            .map_err(|e| without_ticket(e, ticket.as_deref()))?;
        if raw.status == 401
            && let (Auth::Ticket(t), Some(used)) = (&self.inner.auth, &ticket)
        {
            tracing::debug!(path = %req.path, "ticket refused; logging in again");
            t.invalidate(used).await;
            let fresh = self.ticket(t).await?;
            return self
                .send_raw(req, Some(&fresh))
                .await
                .and_then(|raw| finish(req, raw))
                .map_err(|e| without_ticket(without_ticket(e, Some(used)), Some(&fresh)));
        }
        finish(req, raw).map_err(|e| without_ticket(e, ticket.as_deref()))
    }

    pub(super) async fn send_raw(
        &self,
        req: &ApiRequest,
        ticket: Option<&Ticket>,
    ) -> Result<RawResponse> {
        let span = tracing::debug_span!(
            "pve_request",
            method = req.method.as_str(),
            path = %req.path,
            status = tracing::field::Empty,
            duration_ms = tracing::field::Empty,
        );
        async move {
            let _permit = self
                .inner
                .limiter
                .acquire()
                .await
                .map_err(|_| PveError::Transport {
                    message: "the client's request limiter is closed".into(),
                })?;
            let started = Instant::now();
            let result = self.send_http(req, ticket).await;
            let span = tracing::Span::current();
            let ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
            span.record("duration_ms", ms);
            match &result {
                Ok(raw) => {
                    span.record("status", raw.status);
                    tracing::debug!(
                        status = raw.status,
                        duration_ms = ms,
                        "Proxmox VE request done"
                    );
                }
                Err(e) => {
                    tracing::debug!(error = %e, duration_ms = ms, "Proxmox VE request failed")
                }
            }
            result
        }
        .instrument(span)
        .await
    }

    async fn send_http(&self, req: &ApiRequest, ticket: Option<&Ticket>) -> Result<RawResponse> {
        let method = match req.method {
            Method::Get => reqwest::Method::GET,
            Method::Post => reqwest::Method::POST,
            Method::Put => reqwest::Method::PUT,
            Method::Delete => reqwest::Method::DELETE,
        };
        let mut url = format!("{}{}", self.inner.base, req.path);
        let mut rb = if req.method.has_body() {
            self.inner
                .http
                .request(method, url)
                .header(CONTENT_TYPE, "application/x-www-form-urlencoded")
                .body(req.params.form_encode())
        } else {
            if !req.params.is_empty() {
                url.push('?');
                url.push_str(&req.params.form_encode());
            }
            self.inner.http.request(method, url)
        };
        let is_login = req.template == "/access/ticket";
        if !is_login {
            match (&self.inner.auth, ticket) {
                (Auth::Token(v), _) => rb = rb.header(AUTHORIZATION, v.clone()),
                (Auth::Ticket(_), Some(t)) => {
                    let cookie = format!(
                        "PVEAuthCookie={}",
                        percent_encoding::utf8_percent_encode(
                            t.ticket.expose(),
                            percent_encoding::NON_ALPHANUMERIC
                        )
                    );
                    rb = rb.header(COOKIE, sensitive(&cookie)?);
                    if req.method != Method::Get {
                        rb = rb.header("CSRFPreventionToken", sensitive(t.csrf.expose())?);
                    }
                }
                (Auth::Ticket(_), None) => {}
            }
        }
        let resp = rb.send().await.map_err(map_reqwest)?;
        let status = resp.status().as_u16();
        let reason = resp
            .extensions()
            .get::<hyper::ext::ReasonPhrase>()
            .map(|r| String::from_utf8_lossy(r.as_bytes()).into_owned());
        let limit = if (200..300).contains(&status) {
            self.inner.options.max_response_bytes
        } else {
            self.inner.options.max_error_body_bytes
        };
        let body = read_body(resp, limit, req, status).await?;
        Ok(RawResponse {
            status,
            reason,
            body,
        })
    }
}

/// Reads at most `limit` bytes of the body: refused at once when the announced length is larger,
/// otherwise chunk by chunk until the limit is passed, when the response is dropped unread (the
/// connection with it).
async fn read_body(
    mut resp: reqwest::Response,
    limit: usize,
    req: &ApiRequest,
    status: u16,
) -> Result<Vec<u8>> {
    let too_large = || PveError::ResponseTooLarge {
        endpoint: req.describe(),
        status,
        limit,
    };
    if resp
        .content_length()
        .is_some_and(|n| n > u64::try_from(limit).unwrap_or(u64::MAX))
    {
        return Err(too_large());
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(map_reqwest)? {
        if body.len() + chunk.len() > limit {
            return Err(too_large());
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

fn sensitive(value: &str) -> Result<HeaderValue> {
    let mut v = HeaderValue::from_str(value).map_err(|_| PveError::Transport {
        message: "the ticket or CSRF token from Proxmox contains characters not allowed in an HTTP header".into(),
    })?;
    v.set_sensitive(true);
    Ok(v)
}

pub(super) fn finish(req: &ApiRequest, raw: RawResponse) -> Result<ApiResponse> {
    if !(200..300).contains(&raw.status) {
        return Err(PveError::from_response(
            raw.status,
            raw.reason.as_deref(),
            &raw.body,
        ));
    }
    let value: Value = serde_json::from_slice(&raw.body).map_err(|e| {
        PveError::decode(
            req.describe(),
            format!("the body is not JSON ({e})"),
            &raw.body,
        )
    })?;
    let Value::Object(mut map) = value else {
        return Err(PveError::decode(
            req.describe(),
            "expected a JSON object with a `data` member",
            &raw.body,
        ));
    };
    let data = map.remove("data").unwrap_or(Value::Null);
    let total = map.get("total").and_then(|t| match t {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    });
    Ok(ApiResponse {
        data,
        total,
        body: raw.body,
    })
}
