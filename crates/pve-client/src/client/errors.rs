//! What a failed HTTP call becomes: a timeout, a refused certificate (saying why, in words) or a
//! transport error with its causes chained.

use crate::error::PveError;

/// The error and its causes, joined (reqwest's own message alone hides the TLS or IO cause).
pub(super) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut cur = e.source();
    while let Some(s) = cur {
        let text = s.to_string();
        if !out.contains(&text) {
            out.push_str(": ");
            out.push_str(&text);
        }
        cur = s.source();
    }
    out
}

pub(super) fn map_reqwest(e: reqwest::Error) -> PveError {
    if e.is_timeout() {
        return PveError::Timeout {
            message: error_chain(&e),
        };
    }
    match rustls_cause(&e) {
        Some(rustls::Error::InvalidCertificate(problem)) => {
            let why = match problem {
                // The pinned-fingerprint verifier's own error: its text says it all.
                rustls::CertificateError::Other(other) => other.0.to_string(),
                problem => certificate_problem(problem),
            };
            let server = e
                .url()
                .map(|url| {
                    format!(
                        " by {}:{}",
                        url.host_str().unwrap_or("?"),
                        url.port_or_known_default().unwrap_or(443)
                    )
                })
                .unwrap_or_default();
            PveError::Certificate {
                message: format!("{why} (presented{server})"),
            }
        }
        _ => PveError::Transport {
            message: error_chain(&e),
        },
    }
}

/// Why a certificate failed verification, in words.
fn certificate_problem(problem: &rustls::CertificateError) -> String {
    use rustls::CertificateError as E;
    match problem {
        E::UnknownIssuer => "it is not signed by a trusted CA (the caBundle/caBundleFile, or the \
                             public roots when neither is set)"
            .into(),
        E::NotValidForName | E::NotValidForNameContext { .. } => {
            "it is not issued for the host name of the url".into()
        }
        E::Expired | E::ExpiredContext { .. } => "it has expired".into(),
        E::NotValidYet | E::NotValidYetContext { .. } => "it is not valid yet".into(),
        E::Revoked => "it has been revoked".into(),
        other => format!("{other:?}"),
    }
}

/// The TLS error behind a failed request, if any. An `io::Error` hides the error it wraps from
/// `source()` (it returns that error's own source), and the TLS stack nests them, so a wrapped
/// error is followed directly.
fn rustls_cause<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut current = Some(e);
    while let Some(error) = current {
        if let Some(tls) = error.downcast_ref::<rustls::Error>() {
            return Some(tls);
        }
        current = match error
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
        {
            Some(inner) => Some(inner as &(dyn std::error::Error + 'static)),
            None => error.source(),
        };
    }
    None
}
