//! A request as data: method, path template, concrete path and typed parameters. Every endpoint
//! of [`crate::api`] builds one of these (validating its inputs) before anything is sent, which
//! also lets the schema-conformance test check every request the client can build.

use std::fmt;

use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::secret::Secret;

/// The HTTP methods Proxmox VE knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GET: parameters in the query string.
    Get,
    /// POST: parameters form-urlencoded in the body.
    Post,
    /// PUT: parameters form-urlencoded in the body.
    Put,
    /// DELETE: parameters in the query string.
    Delete,
}

impl Method {
    /// The method name as in the schema (`GET`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }

    /// Whether parameters go in the body (POST/PUT) rather than the query string.
    pub fn has_body(self) -> bool {
        matches!(self, Method::Post | Method::Put)
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A typed parameter value. Booleans go on the wire as `1`/`0`, as Proxmox requires.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// A string (including property strings).
    Str(String),
    /// An integer.
    Int(i64),
    /// A boolean, sent as `1`/`0`.
    Bool(bool),
    /// A number.
    Num(f64),
    /// A secret string (a password): sent as is, printed as `***`.
    Secret(Secret),
}

impl ParamValue {
    /// The value as sent on the wire.
    pub fn wire(&self) -> String {
        match self {
            ParamValue::Str(s) => s.clone(),
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Bool(b) => if *b { "1" } else { "0" }.to_owned(),
            ParamValue::Num(n) => n.to_string(),
            ParamValue::Secret(s) => s.expose().to_owned(),
        }
    }
}

/// Parameters in insertion order; setting a name again replaces its value.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Params(Vec<(String, ParamValue)>);

impl Params {
    /// No parameters.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `name` to `value`.
    pub fn set(&mut self, name: impl Into<String>, value: ParamValue) -> &mut Self {
        let name = name.into();
        if let Some(slot) = self.0.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = value;
        } else {
            self.0.push((name, value));
        }
        self
    }

    /// Sets a string.
    pub fn str(&mut self, name: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.set(name, ParamValue::Str(value.into()))
    }

    /// Sets an integer.
    pub fn int(&mut self, name: impl Into<String>, value: i64) -> &mut Self {
        self.set(name, ParamValue::Int(value))
    }

    /// Sets a boolean (`1`/`0`).
    pub fn bool(&mut self, name: impl Into<String>, value: bool) -> &mut Self {
        self.set(name, ParamValue::Bool(value))
    }

    /// Sets a string if `Some`.
    pub fn opt_str(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value {
            self.str(name, v);
        }
        self
    }

    /// Sets an integer if `Some`.
    pub fn opt_int(&mut self, name: &str, value: Option<i64>) -> &mut Self {
        if let Some(v) = value {
            self.int(name, v);
        }
        self
    }

    /// Sets a boolean if `Some`.
    pub fn opt_bool(&mut self, name: &str, value: Option<bool>) -> &mut Self {
        if let Some(v) = value {
            self.bool(name, v);
        }
        self
    }

    /// Appends all of `other`, replacing values of the same names.
    pub fn extend(&mut self, other: Params) -> &mut Self {
        for (n, v) in other.0 {
            self.set(n, v);
        }
        self
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&ParamValue> {
        self.0.iter().find(|(n, _)| n == name).map(|(_, v)| v)
    }

    /// All parameters in order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &ParamValue)> {
        self.0.iter().map(|(n, v)| (n.as_str(), v))
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// `application/x-www-form-urlencoded` encoding (also used for the query string).
    pub fn form_encode(&self) -> String {
        let mut s = form_urlencoded::Serializer::new(String::new());
        for (n, v) in &self.0 {
            s.append_pair(n, &v.wire());
        }
        s.finish()
    }
}

/// Characters escaped in a path segment: everything but alphanumerics and a few safe marks
/// (`:` `@` `!` stay readable in UPIDs and user ids).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b':')
    .remove(b'@')
    .remove(b'!');

/// One API request, ready to send.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiRequest {
    /// The method.
    pub method: Method,
    /// The path template as in the schema, e.g. `/nodes/{node}/qemu/{vmid}/config`.
    pub template: &'static str,
    /// The concrete path below `/api2/json`, path parameters percent-encoded.
    pub path: String,
    /// The parameters (query string for GET/DELETE, form body for POST/PUT).
    pub params: Params,
}

impl ApiRequest {
    /// Builds a request, substituting each `{name}` of `template` from `path_params`.
    pub fn new(
        method: Method,
        template: &'static str,
        path_params: &[(&str, &str)],
        params: Params,
    ) -> Self {
        let mut path = template.to_owned();
        for (name, value) in path_params {
            let encoded = utf8_percent_encode(value, SEGMENT).to_string();
            path = path.replace(&format!("{{{name}}}"), &encoded);
        }
        Self {
            method,
            template,
            path,
            params,
        }
    }

    /// Refuses a path parameter that is empty, `.` or `..`: percent-encoding leaves those
    /// as they are, and a URL parser resolves them (`/nodes/../version` is `/version`, and so is
    /// `%2E%2E`), so they would address another endpoint than the template says.
    pub fn check_path(&self) -> crate::error::Result<()> {
        let template = self.template.split('/');
        for (pattern, segment) in template.zip(self.path.split('/')).skip(1) {
            if matches!(segment, "" | "." | "..") {
                let field = pattern
                    .strip_prefix('{')
                    .and_then(|p| p.strip_suffix('}'))
                    .unwrap_or(pattern);
                return Err(crate::error::PveError::invalid_input(
                    field,
                    format!(
                        "{segment:?} would change the path of {}: a path segment must not be \
                         empty, '.' or '..'",
                        self.describe()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// `METHOD /template`, for messages.
    pub fn describe(&self) -> String {
        format!("{} {}", self.method, self.template)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans_are_sent_as_one_and_zero_and_values_are_form_encoded() {
        let mut p = Params::new();
        p.bool("onboot", true)
            .bool("purge", false)
            .int("vmid", 100)
            .str("sshkeys", "ssh-ed25519%20AAAA")
            .str("name", "a b&c");
        assert_eq!(
            p.form_encode(),
            "onboot=1&purge=0&vmid=100&sshkeys=ssh-ed25519%2520AAAA&name=a+b%26c"
        );
    }

    #[test]
    fn setting_a_name_twice_replaces_it() {
        let mut p = Params::new();
        p.int("a", 1).int("a", 2);
        assert_eq!(p.form_encode(), "a=2");
    }

    #[test]
    fn secrets_are_sent_but_never_printed() {
        let mut p = Params::new();
        p.set("password", ParamValue::Secret(Secret::new("hunter2")));
        assert_eq!(p.form_encode(), "password=hunter2");
        assert!(!format!("{p:?}").contains("hunter2"));
    }

    #[test]
    fn path_parameters_are_substituted_and_escaped() {
        let r = ApiRequest::new(
            Method::Get,
            "/nodes/{node}/tasks/{upid}/status",
            &[
                ("node", "pve"),
                (
                    "upid",
                    "UPID:pve:00061CB3:010BA69C:64EFECB0:qmclone:112:capmox@pve!capi:",
                ),
            ],
            Params::new(),
        );
        assert_eq!(
            r.path,
            "/nodes/pve/tasks/UPID:pve:00061CB3:010BA69C:64EFECB0:qmclone:112:capmox@pve!capi:/status"
        );
        let evil = ApiRequest::new(
            Method::Get,
            "/nodes/{node}/status",
            &[("node", "../x?y#z")],
            Params::new(),
        );
        assert_eq!(evil.path, "/nodes/..%2Fx%3Fy%23z/status");
        assert_eq!(evil.describe(), "GET /nodes/{node}/status");
        assert!(evil.check_path().is_ok(), "one encoded segment");
        assert!(r.check_path().is_ok());
    }

    #[test]
    fn dot_and_empty_path_segments_are_refused_naming_the_parameter() {
        for value in ["..", ".", ""] {
            let r = ApiRequest::new(
                Method::Get,
                "/nodes/{node}/storage/{storage}/content",
                &[("node", "pve"), ("storage", value)],
                Params::new(),
            );
            match r.check_path() {
                Err(crate::error::PveError::InvalidInput { field, message }) => {
                    assert_eq!(field, "storage", "{value:?}");
                    assert!(
                        message.contains("must not be empty, '.' or '..'"),
                        "{message}"
                    );
                }
                other => panic!("{value:?}: {other:?}"),
            }
        }
        let ok = ApiRequest::new(
            Method::Get,
            "/nodes/{node}/storage/{storage}/content",
            &[("node", "pve"), ("storage", "...")],
            Params::new(),
        );
        assert!(ok.check_path().is_ok(), "'...' is an ordinary name");
    }
}
