//! Response formatting: the `{"data": ...}` envelope, PVE's headers, error reason phrases and
//! both error body styles.

use axum::body::Body;
use axum::http::{HeaderValue, Response, StatusCode};
use serde_json::{Map, Value, json};

use crate::error::ApiError;
use crate::router::Reply;

/// Marker extension: the server drops the connection instead of answering.
#[derive(Debug, Clone, Copy)]
pub struct DropConnection;

fn base(status: u16, reason: Option<&str>, body: Body) -> Response<Body> {
    let mut resp = Response::new(body);
    *resp.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    if let Some(reason) = reason {
        let clean: String = reason
            .chars()
            .map(|c| {
                if c.is_ascii_graphic() || c == ' ' || c == '\t' {
                    c
                } else {
                    '?'
                }
            })
            .collect();
        if let Ok(phrase) = hyper::ext::ReasonPhrase::try_from(clean) {
            resp.extensions_mut().insert(phrase);
        }
    }
    let h = resp.headers_mut();
    h.insert("server", HeaderValue::from_static("pve-api-daemon/3.0"));
    h.insert("cache-control", HeaderValue::from_static("max-age=0"));
    h.insert("pragma", HeaderValue::from_static("no-cache"));
    if let Ok(v) = HeaderValue::from_str(&crate::clock::http_date(crate::clock::now_ms(0) / 1000)) {
        h.insert("expires", v.clone());
        h.insert("date", v);
    }
    if status >= 400 {
        h.insert("connection", HeaderValue::from_static("close"));
    }
    resp
}

fn json_body(resp: &mut Response<Body>) {
    resp.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("application/json;charset=UTF-8"),
    );
}

/// A successful API answer.
pub fn ok(reply: Reply) -> Response<Body> {
    if let Some(raw) = reply.raw {
        let total = reply
            .total
            .map(|t| format!(",\"total\":{t}"))
            .unwrap_or_default();
        let mut resp = base(200, None, Body::from(format!("{{\"data\":{raw}{total}}}")));
        json_body(&mut resp);
        return resp;
    }
    let mut obj = Map::new();
    obj.insert("data".to_string(), reply.data);
    if let Some(total) = reply.total {
        obj.insert("total".to_string(), json!(total));
    }
    let mut resp = base(200, None, Body::from(Value::Object(obj).to_string()));
    json_body(&mut resp);
    resp
}

/// An API error: reason phrase = first line, body `{"data":null}` plus `errors` and (when
/// `json_message`) `message`.
pub fn error(err: &ApiError, json_message: bool) -> Response<Body> {
    let mut obj = Map::new();
    obj.insert("data".to_string(), Value::Null);
    if !err.errors.is_empty() {
        obj.insert("errors".to_string(), json!(err.errors));
    }
    if json_message {
        obj.insert("message".to_string(), json!(err.message));
    }
    let mut resp = base(
        err.code,
        Some(err.reason()),
        Body::from(Value::Object(obj).to_string()),
    );
    json_body(&mut resp);
    resp
}

/// An error without a body (authentication failures, request-level 501s, proxy errors).
pub fn bare(status: u16, reason: &str) -> Response<Body> {
    base(status, Some(reason), Body::empty())
}

/// A JSON answer outside the API (`/_sim/*`).
pub fn plain_json(status: u16, value: &Value) -> Response<Body> {
    let mut resp = base(status, None, Body::from(value.to_string()));
    resp.headers_mut().remove("connection");
    json_body(&mut resp);
    resp
}

/// Compresses a JSON answer over 1 KiB with gzip or deflate when the client accepts it, as
/// pve-http-server does.
pub async fn compress(resp: Response<Body>, accept_encoding: &str) -> Response<Body> {
    use std::io::Write;
    let wants = |enc: &str| {
        accept_encoding.split(',').any(|e| {
            e.split(';')
                .next()
                .is_some_and(|n| n.trim().eq_ignore_ascii_case(enc))
        })
    };
    let encoding = if wants("gzip") {
        "gzip"
    } else if wants("deflate") {
        "deflate"
    } else {
        return resp;
    };
    let is_json = resp
        .headers()
        .get("content-type")
        .is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_json || resp.extensions().get::<DropConnection>().is_some() {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
        return Response::from_parts(parts, Body::empty());
    };
    if bytes.len() <= 1024 {
        return Response::from_parts(parts, Body::from(bytes));
    }
    let level = flate2::Compression::fast();
    let compressed = if encoding == "gzip" {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), level);
        enc.write_all(&bytes).and_then(|()| enc.finish())
    } else {
        let mut enc = flate2::write::ZlibEncoder::new(Vec::new(), level);
        enc.write_all(&bytes).and_then(|()| enc.finish())
    };
    match compressed {
        Ok(data) => {
            parts
                .headers
                .insert("content-encoding", HeaderValue::from_static(encoding));
            parts.headers.remove("content-length");
            Response::from_parts(parts, Body::from(data))
        }
        Err(_) => Response::from_parts(parts, Body::from(bytes)),
    }
}

/// A response that makes the server drop the connection.
pub fn dropped() -> Response<Body> {
    let mut resp = Response::new(Body::empty());
    resp.extensions_mut().insert(DropConnection);
    resp
}
