//! Helpers shared by the fuzz targets in `fuzz_targets/` (see docs/fuzzing.md).

use std::collections::BTreeMap;

use k8s_openapi::ByteString;
use k8s_openapi::api::core::v1::Secret as KubeSecret;
use pve_client::config::RawProxmoxConfig;

/// Where [`resolve_texts`] points `caBundleFile`: a fuzz input must not make the harness read
/// `/dev/zero` or the machine's files; a missing file still exercises the error path.
pub const MISSING_CA_FILE: &str = "/nonexistent/pve-operator-fuzz/ca.pem";

/// Replaces every ASCII letter and digit by the next one of its class (`a`→`b`, `z`→`a`, `9`→`0`),
/// keeping everything else. The result has the same length, the same YAML type for plain
/// scalars made of digits, and the same separators; it differs from `s` wherever `s` has a
/// letter or digit.
pub fn shift(s: &str) -> String {
    s.chars()
        .map(|c| match c {
            'a'..='y' | 'A'..='Y' | '0'..='8' => char::from(c as u8 + 1),
            'z' => 'a',
            'Z' => 'A',
            '9' => '0',
            other => other,
        })
        .collect()
}

/// Everything a user or a log could see from loading one configuration: the error texts
/// (`Display` and `Debug`) of each step, or the `Debug` form of what was loaded.
pub fn resolve_texts<E: std::fmt::Display + std::fmt::Debug>(
    raw: Result<RawProxmoxConfig, E>,
) -> Vec<String> {
    let mut raw = match raw {
        Ok(raw) => raw,
        Err(e) => return vec![e.to_string(), format!("{e:?}")],
    };
    let mut out = vec![format!("{raw:?}")];
    if raw.ca_bundle_file.is_some() {
        raw.ca_bundle_file = Some(MISSING_CA_FILE.to_owned());
    }
    match raw.clone().resolve() {
        Ok(config) => {
            out.push(format!("{config:?}"));
            check_resolved_url(&raw, &config.url);
        }
        Err(e) => {
            out.push(e.to_string());
            out.push(format!("{e:?}"));
        }
    }
    out
}

/// The URL a configuration resolves to is normalised: `http(s)://host[:port]/api2/json`, and
/// resolving it again gives the same URL.
fn check_resolved_url(raw: &RawProxmoxConfig, url: &str) {
    assert!(
        (url.starts_with("https://") || url.starts_with("http://")) && url.ends_with("/api2/json"),
        "resolved URL {url:?} is not normalised"
    );
    let mut again = raw.clone();
    again.url = Some(url.to_owned());
    match again.resolve() {
        Ok(config) => assert_eq!(config.url, url, "normalising {url:?} again changed it"),
        Err(e) => panic!("the normalised URL {url:?} is refused: {e}"),
    }
}

/// A Kubernetes Secret with these data keys, as the API server would hand it to the controller.
pub fn kube_secret(data: &BTreeMap<String, Vec<u8>>) -> KubeSecret {
    KubeSecret {
        data: Some(
            data.iter()
                .map(|(k, v)| (k.clone(), ByteString(v.clone())))
                .collect(),
        ),
        ..KubeSecret::default()
    }
}

/// Panics if a text seen by users echoes a planted secret. `texts` come from the input with the
/// secret `secret`, `shifted_texts` from the same input with the secret replaced by
/// `shift(secret)` at the same place. A text counts as a leak only if it shows the secret in
/// both runs (as is, or escaped as Rust's `{:?}` writes it): a text that merely happens to
/// contain the same characters (a key name, a line number) does not change with the secret.
/// Not checked: secrets shorter than 4 characters (too likely to occur by chance), and inputs
/// that hold the secret more than once or its shifted form anywhere (then another, visible,
/// field carries the same text).
pub fn assert_no_leak(secret: &str, texts: &[String], shifted_texts: &[String], input: &str) {
    let shifted = shift(secret);
    if shifted == secret
        || secret.chars().count() < 4
        || input.matches(secret).count() > 1
        || input.contains(&shifted)
    {
        return;
    }
    let forms = |s: &str| {
        let escaped = format!("{s:?}");
        [s.to_owned(), escaped[1..escaped.len() - 1].to_owned()]
    };
    for (plain, changed) in forms(secret).iter().zip(forms(&shifted).iter()) {
        for (a, b) in texts.iter().zip(shifted_texts) {
            assert!(
                !(a.contains(plain.as_str()) && b.contains(changed.as_str())),
                "the secret value {secret:?} is echoed in {a:?}\n(input: {input:?})"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shift_changes_every_letter_and_digit_only() {
        assert_eq!(shift("az-AZ:09 é"), "ba-BA:10 é");
    }

    #[test]
    fn a_secret_echoed_in_both_runs_is_a_leak_and_a_coincidence_is_not() {
        let echoed = |s: &str| vec![format!("bad value {s:?}")];
        let leak = std::panic::catch_unwind(|| {
            assert_no_leak("hunter2", &echoed("hunter2"), &echoed("ivoufs3"), "")
        });
        assert!(leak.is_err());
        let fixed = vec!["line 12: password".to_owned()];
        assert_no_leak("password", &fixed, &fixed, "");
    }
}
