//! Every sample request fits both schemas, every response type decodes what both schemas say it
//! returns, and the checker itself can fail.

use std::collections::HashSet;

use serde_json::json;

use super::check::check_request;
use super::generate::{Mode, generate};
use super::{Schema, method_info};
use crate::api::samples::{self, Sample};
use crate::request::{ApiRequest, Method, Params};

#[test]
fn every_request_the_client_builds_fits_the_pve_8_4_and_9_1_schemas() {
    let mut problems = Vec::new();
    for Sample { req, .. } in samples::all() {
        for schema in Schema::ALL {
            problems.extend(check_request(schema, &req));
        }
    }
    assert!(
        problems.is_empty(),
        "requests that do not fit the schema:\n{}",
        problems.join("\n")
    );
}

#[test]
fn every_response_type_decodes_the_schemas_returns_shape() {
    let mut problems = Vec::new();
    for (schema, sample) in Schema::ALL
        .into_iter()
        .flat_map(|schema| samples::all().into_iter().map(move |s| (schema, s)))
    {
        let what = format!("{}: {}", schema.name(), sample.req.describe());
        let Some(info) = method_info(schema, sample.req.method, sample.req.template) else {
            problems.push(format!("{what}: not in the schema"));
            continue;
        };
        let returns = info
            .get("returns")
            .cloned()
            .unwrap_or(json!({"type": "null"}));
        for mode in [Mode::Full, Mode::Minimal, Mode::Perl] {
            let value = generate(&returns, mode, sample.string_example);
            if let Err(e) = (sample.decode)(value.clone()) {
                problems.push(format!("{what} ({mode:?}): {e}\n  sample: {value}"));
            }
        }
    }
    assert!(
        problems.is_empty(),
        "responses that do not decode:\n{}",
        problems.join("\n")
    );
}

#[test]
fn the_samples_cover_every_endpoint_of_the_issue() {
    let covered: HashSet<(Method, &str)> = samples::all()
        .iter()
        .map(|s| (s.req.method, s.req.template))
        .collect();
    let q = "/nodes/{node}/qemu/{vmid}";
    let expected: Vec<(Method, String)> = vec![
        (Method::Get, "/version".into()),
        (Method::Get, "/nodes".into()),
        (Method::Get, "/nodes/{node}/status".into()),
        (Method::Get, "/nodes/{node}/storage".into()),
        (
            Method::Get,
            "/nodes/{node}/storage/{storage}/content".into(),
        ),
        (Method::Get, "/nodes/{node}/network".into()),
        (Method::Get, "/cluster/resources".into()),
        (Method::Get, "/cluster/nextid".into()),
        (Method::Get, "/nodes/{node}/qemu".into()),
        (Method::Post, "/nodes/{node}/qemu".into()),
        (Method::Get, format!("{q}/config")),
        (Method::Post, format!("{q}/config")),
        (Method::Put, format!("{q}/config")),
        (Method::Get, format!("{q}/pending")),
        (Method::Get, format!("{q}/status/current")),
        (Method::Post, format!("{q}/status/start")),
        (Method::Post, format!("{q}/status/stop")),
        (Method::Post, format!("{q}/status/shutdown")),
        (Method::Post, format!("{q}/status/reboot")),
        (Method::Post, format!("{q}/status/reset")),
        (Method::Put, format!("{q}/resize")),
        (Method::Post, format!("{q}/clone")),
        (Method::Delete, q.into()),
        (Method::Get, format!("{q}/agent/network-get-interfaces")),
        (Method::Get, "/access/permissions".into()),
        (Method::Post, "/access/ticket".into()),
        (Method::Get, "/nodes/{node}/tasks/{upid}/status".into()),
        (Method::Get, "/nodes/{node}/tasks/{upid}/log".into()),
        (Method::Get, "/nodes/{node}/tasks".into()),
    ];
    let missing: Vec<String> = expected
        .iter()
        .filter(|(m, t)| !covered.contains(&(*m, t.as_str())))
        .map(|(m, t)| format!("{m} {t}"))
        .collect();
    assert!(
        missing.is_empty(),
        "endpoints without a sample: {missing:?}"
    );
}

/// A request with the parameters that `fill` sets.
fn request(
    method: Method,
    template: &'static str,
    path: &[(&str, &str)],
    fill: impl FnOnce(&mut Params) -> &mut Params,
) -> ApiRequest {
    let mut p = Params::new();
    fill(&mut p);
    ApiRequest::new(method, template, path, p)
}

/// Adds no parameter (for [`request`]).
fn no_params(p: &mut Params) -> &mut Params {
    p
}

/// `POST /nodes/pve/qemu` creating VM 100 with the parameters that `fill` adds.
fn create_100(fill: impl FnOnce(&mut Params) -> &mut Params) -> ApiRequest {
    request(
        Method::Post,
        "/nodes/{node}/qemu",
        &[("node", "pve")],
        |p| fill(p.int("vmid", 100)),
    )
}

/// The checker must be able to fail: feed it requests that are wrong in each way it checks.
#[test]
fn the_schema_checker_reports_each_kind_of_mistake() {
    let node = &[("node", "pve")];
    let vm = &[("node", "pve"), ("vmid", "100")];
    let cases: Vec<(ApiRequest, &str)> = vec![
        (
            request(Method::Get, "/nodes/{node}/nope", node, no_params),
            "no such path",
        ),
        (
            request(Method::Put, "/version", &[], no_params),
            "no such path/method",
        ),
        (
            request(Method::Get, "/cluster/resources", &[], |p| {
                p.str("type", "qemu")
            }),
            "enum",
        ),
        (
            request(Method::Get, "/cluster/resources", &[], |p| {
                p.str("typ", "vm")
            }),
            "unknown parameter",
        ),
        (
            request(Method::Delete, "/nodes/{node}/qemu/{vmid}", vm, |p| {
                p.str("purge", "true")
            }),
            "boolean",
        ),
        (
            request(Method::Get, "/cluster/nextid", &[], |p| p.int("vmid", 99)),
            "minimum",
        ),
        (
            request(Method::Post, "/nodes/{node}/qemu", node, no_params),
            "required parameter vmid",
        ),
        (
            create_100(|p| p.str("net0", "virtio,bridge=vmbr0,vlan=5")),
            "unknown property-string key",
        ),
        (
            create_100(|p| p.str("net0", "virtio=01:00:00:00:00:01,bridge=vmbr0")),
            "mac-addr",
        ),
        (
            create_100(|p| p.str("sshkeys", "ssh-ed25519 AAAA/x")),
            "urlencoded",
        ),
        (
            create_100(|p| p.str("scsi0", "local-lvm:32,ssd=yes")),
            "boolean",
        ),
        (
            create_100(|p| p.str("ipconfig0", "ip=10.0.0.1")),
            "pve-ipv4-config",
        ),
        (
            request(Method::Put, "/nodes/{node}/qemu/{vmid}/config", vm, |p| {
                p.str("pool", "x")
            }),
            "unknown parameter",
        ),
        (
            request(
                Method::Get,
                "/nodes/{node}/status",
                &[("node", "pve_1")],
                no_params,
            ),
            "pve-node",
        ),
    ];
    for (req, expect) in cases {
        for schema in Schema::ALL {
            let problems = check_request(schema, &req);
            assert!(
                problems.iter().any(|p| p.contains(expect)),
                "{} {} {:?}: expected a problem mentioning {expect:?}, got {problems:?}",
                schema.name(),
                req.describe(),
                req.params
            );
        }
    }
}

/// Each schema is really consulted: a request that only one of them allows (pve9-changes.md
/// section 4.2) is reported against the other one only.
#[test]
fn each_schema_refuses_what_only_the_other_version_allows() {
    let cases = [
        (
            create_100(|p| p.str("scsi0", "local-lvm:32,cyls=1")),
            Schema::Pve9_1,
            "cyls",
        ),
        (
            create_100(|p| p.bool("allow-ksm", false)),
            Schema::Pve8_4,
            "unknown parameter",
        ),
        (
            create_100(|p| p.str("agent", "1,freeze-fs=0")),
            Schema::Pve8_4,
            "freeze-fs",
        ),
    ];
    for (req, refusing, expect) in cases {
        for schema in Schema::ALL {
            let problems = check_request(schema, &req);
            if schema == refusing {
                assert!(
                    problems.iter().any(|p| p.contains(expect)),
                    "{}: {:?}: expected a problem mentioning {expect:?}, got {problems:?}",
                    schema.name(),
                    req.params
                );
            } else {
                assert!(
                    problems.is_empty(),
                    "{}: {:?}: {problems:?}",
                    schema.name(),
                    req.params
                );
            }
        }
    }
}

#[test]
fn the_response_generator_exercises_lenient_decoding() {
    let schema = json!({"type": "object", "properties": {
        "a": {"type": "integer", "minimum": 100},
        "b": {"type": "boolean", "optional": 1},
        "c": {"type": "number"}
    }});
    assert_eq!(
        generate(&schema, Mode::Full, None),
        json!({"a": 100, "b": true, "c": 0.5})
    );
    assert_eq!(
        generate(&schema, Mode::Minimal, None),
        json!({"a": 100, "c": 0.5})
    );
    assert_eq!(
        generate(&schema, Mode::Perl, None),
        json!({"a": "100", "b": 1, "c": "0.5"})
    );
}
