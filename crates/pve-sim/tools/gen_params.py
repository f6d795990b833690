#!/usr/bin/env python3
"""Generates the parameter tables of the endpoints pve-sim serves, transcribed from a published
PVE API schema: src/params/generated.rs from the 8.4 schema, src/params/generated_9_1.rs from the
9.1 one. The simulator never reads the schema at run time; the conformance test in
tests/sim/schema.rs compares these tables with both schemas again.

usage (from crates/pve-sim; VERSION, default 8.4, only names the schema in the output's comments):
  python3 tools/gen_params.py ../../../shared/pve-reference/pve-8.4-api-schema.json > src/params/generated.rs
  python3 tools/gen_params.py ../../../shared/pve-reference/pve-9-api-schema.json 9.1 > src/params/generated_9_1.rs
"""
import json
import sys

ENDPOINTS = [
    ("GET", "/version"),
    ("GET", "/nodes"),
    ("GET", "/nodes/{node}"),
    ("GET", "/nodes/{node}/status"),
    ("GET", "/nodes/{node}/network"),
    ("GET", "/nodes/{node}/storage"),
    ("GET", "/nodes/{node}/storage/{storage}/content"),
    ("GET", "/nodes/{node}/storage/{storage}"),
    ("GET", "/nodes/{node}/storage/{storage}/status"),
    ("GET", "/storage"),
    ("GET", "/storage/{storage}"),
    ("GET", "/cluster"),
    ("GET", "/cluster/resources"),
    ("GET", "/cluster/status"),
    ("GET", "/cluster/nextid"),
    ("GET", "/cluster/tasks"),
    ("GET", "/cluster/mapping/pci"),
    ("GET", "/cluster/mapping/usb"),
    ("GET", "/nodes/{node}/qemu"),
    ("POST", "/nodes/{node}/qemu"),
    ("GET", "/nodes/{node}/qemu/{vmid}"),
    ("DELETE", "/nodes/{node}/qemu/{vmid}"),
    ("GET", "/nodes/{node}/qemu/{vmid}/config"),
    ("POST", "/nodes/{node}/qemu/{vmid}/config"),
    ("PUT", "/nodes/{node}/qemu/{vmid}/config"),
    ("GET", "/nodes/{node}/qemu/{vmid}/pending"),
    ("GET", "/nodes/{node}/qemu/{vmid}/status"),
    ("GET", "/nodes/{node}/qemu/{vmid}/status/current"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/start"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/stop"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/shutdown"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/reboot"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/reset"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/suspend"),
    ("POST", "/nodes/{node}/qemu/{vmid}/status/resume"),
    ("PUT", "/nodes/{node}/qemu/{vmid}/resize"),
    ("POST", "/nodes/{node}/qemu/{vmid}/clone"),
    ("GET", "/nodes/{node}/qemu/{vmid}/agent/network-get-interfaces"),
    ("GET", "/nodes/{node}/qemu/{vmid}/cloudinit"),
    ("PUT", "/nodes/{node}/qemu/{vmid}/cloudinit"),
    ("GET", "/nodes/{node}/qemu/{vmid}/cloudinit/dump"),
    ("GET", "/nodes/{node}/tasks"),
    ("GET", "/nodes/{node}/tasks/{upid}"),
    ("GET", "/nodes/{node}/tasks/{upid}/status"),
    ("GET", "/nodes/{node}/tasks/{upid}/log"),
    ("DELETE", "/nodes/{node}/tasks/{upid}"),
    ("POST", "/access/ticket"),
    ("GET", "/access/ticket"),
    ("POST", "/nodes/{node}/storage/{storage}/download-url"),
    ("DELETE", "/nodes/{node}/storage/{storage}/content/{volume}"),
]

# How many instances a `name[n]` parameter has (from the descriptions and qemu-server's constants).
INDEX_COUNT = {
    "hostpci": 16, "ide": 4, "ipconfig": 32, "net": 32, "numa": 8, "parallel": 3, "sata": 6,
    "scsi": 31, "serial": 4, "unused": 256, "usb": 14, "virtio": 16, "virtiofs": 10,
}


FORMATS = {}


def rs_str(s):
    return json.dumps(s, ensure_ascii=False)


def rs_opt_num(v):
    if v is None:
        return "None"
    return "Some(%s)" % repr(float(v))


def param(name, p, indent):
    pad = " " * indent
    ty = {"string": "Ty::String", "integer": "Ty::Integer", "number": "Ty::Number",
          "boolean": "Ty::Boolean"}.get(p.get("type", "string"), "Ty::String")
    fmt = p.get("format")
    if isinstance(fmt, dict):
        key = json.dumps(fmt, sort_keys=True)
        if key not in FORMATS:
            FORMATS[key] = ("F%d" % len(FORMATS), "".join(param(k, v, 4) for k, v in sorted(fmt.items())))
        fmt_rs = "Format::Props(%s)" % FORMATS[key][0]
    elif isinstance(fmt, str):
        fmt_rs = "Format::Named(%s)" % rs_str(fmt)
    else:
        fmt_rs = "Format::None"
    base = name[:-3] if name.endswith("[n]") else None
    enum = p.get("enum") or []
    out = pad + "Param {"
    fields = [
        ("name", rs_str(name)),
        ("ty", ty),
        ("optional", "true" if p.get("optional") else "false"),
        ("minimum", rs_opt_num(p.get("minimum"))),
        ("maximum", rs_opt_num(p.get("maximum"))),
        ("max_length", "Some(%d)" % p["maxLength"] if "maxLength" in p else "None"),
        ("pattern", "Some(%s)" % rs_str(p["pattern"]) if "pattern" in p else "None"),
        ("enumeration", "&[%s]" % ", ".join(rs_str(str(e)) for e in enum)),
        ("format", fmt_rs),
        ("default_key", "true" if p.get("default_key") else "false"),
        ("alias", "Some(%s)" % rs_str(p["alias"]) if "alias" in p else "None"),
        ("key_alias", "Some(%s)" % rs_str(p["keyAlias"]) if "keyAlias" in p else "None"),
        ("requires", "Some(%s)" % rs_str(p["requires"]) if "requires" in p else "None"),
        ("indexed", "Some(%d)" % INDEX_COUNT[base] if base else "None"),
    ]
    out += ", ".join("%s: %s" % (k, v) for k, v in fields)
    return out + " },\n"


def schema_version():
    """The version named in the output's comments: the second argument, 8.4 by default."""
    return sys.argv[2] if len(sys.argv) > 2 else "8.4"


def method_info(idx, m, p):
    """The schema's `info` of `m p`; fails loudly if the schema lacks an endpoint the sim serves."""
    info = idx.get(p, {}).get("info", {}).get(m)
    if info is None:
        sys.exit("%s %s is not in the PVE %s schema: drop it from ENDPOINTS or serve it without a table"
                 % (m, p, schema_version()))
    return info


def main():
    schema = json.load(open(sys.argv[1]))
    version = schema_version()
    idx = {}

    def walk(n):
        idx[n["path"]] = n
        for c in n.get("children") or []:
            walk(c)

    for n in schema["tree"]:
        walk(n)
    print("// @generated by tools/gen_params.py from the PVE %s API schema. Do not edit by hand." % version)
    print("//! Parameter tables of the endpoints the simulator serves, transcribed from the PVE %s schema." % version)
    print()
    print("use super::{Format, Param, Ty};")
    print()
    print("/// The parameter table of `method path` (a schema path template), if the simulator serves it.")
    print("pub fn table(method: &str, path: &str) -> Option<&'static [Param]> {")
    print("    match (method, path) {")
    for i, (m, p) in enumerate(ENDPOINTS):
        print("        (%s, %s) => Some(T%d)," % (rs_str(m), rs_str(p), i))
    print("        _ => None,")
    print("    }")
    print("}")
    print()
    print("/// Every (method, path template) that has a table.")
    print("pub const ENDPOINTS: &[(&str, &str)] = &[")
    for m, p in ENDPOINTS:
        print("    (%s, %s)," % (rs_str(m), rs_str(p)))
    print("];")
    for i, (m, p) in enumerate(ENDPOINTS):
        info = method_info(idx, m, p)
        props = info.get("parameters", {}).get("properties", {})
        print()
        print("static T%d: &[Param] = &[" % i)
        for k, v in sorted(props.items()):
            sys.stdout.write(param(k, v, 4))
        print("];")
    for name, body in sorted(FORMATS.values()):
        print()
        print("static %s: &[Param] = &[" % name)
        sys.stdout.write(body)
        print("];")


main()
