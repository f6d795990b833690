//! Parsing a command's arguments like PVE's `Getopt::Long`: positional arguments, `--name value`
//! or `-name value`, a unique prefix of a parameter name, and booleans with or without a value.

use std::collections::BTreeMap;

use anyhow::bail;

use super::commands::CommandSpec;

/// The parameter names (and whether each is boolean) of an endpoint, from its schema table.
fn known_params(method: &str, path: &str) -> Vec<(&'static str, bool)> {
    crate::access::param_table(method, path)
        .map(|t| {
            t.iter()
                .map(|p| (p.name, p.ty == crate::params::Ty::Boolean))
                .collect()
        })
        .unwrap_or_default()
}

/// Resolves an option name to a parameter name: exact, or a unique prefix (`Getopt::Long`).
fn resolve_option(
    name: &str,
    known: &[(&'static str, bool)],
) -> anyhow::Result<(&'static str, bool)> {
    if let Some(k) = known.iter().find(|(n, _)| *n == name) {
        return Ok(*k);
    }
    let candidates: Vec<&(&str, bool)> =
        known.iter().filter(|(n, _)| n.starts_with(name)).collect();
    match candidates.as_slice() {
        [one] => Ok(**one),
        [] => bail!("Unknown option: {name}"),
        many => bail!(
            "Option {name} is ambiguous ({})",
            many.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
        ),
    }
}

/// A parsed command line: positional and named parameters.
#[derive(Debug, Default, PartialEq, Eq)]
pub(super) struct Parsed {
    /// Parameter name -> value (path parameters included).
    pub(super) params: BTreeMap<String, String>,
    /// Options given without a value where one was needed (`--password` alone: prompt).
    pub(super) prompt: Vec<String>,
}

/// Parses pveum-style arguments against the command's positional names and parameter table.
pub(super) fn parse_args(spec: &CommandSpec, args: &[String]) -> anyhow::Result<Parsed> {
    let known = known_params(spec.method, spec.path);
    let mut out = Parsed::default();
    let mut positional = spec.positional.iter();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        let option = arg
            .strip_prefix("--")
            .or_else(|| arg.strip_prefix('-'))
            .filter(|o| !o.is_empty() && !arg.starts_with("-/"));
        if let Some(option) = option {
            let (name, inline) = match option.split_once('=') {
                Some((n, v)) => (n, Some(v.to_string())),
                None => (option, None),
            };
            let (param, boolean) = resolve_option(name, &known)?;
            let next = args.get(i + 1);
            let value = if let Some(v) = inline {
                v
            } else if boolean {
                match next.map(String::as_str) {
                    Some(v @ ("0" | "1" | "true" | "false" | "yes" | "no" | "on" | "off")) => {
                        i += 1;
                        match v {
                            "1" | "true" | "yes" | "on" => "1".to_string(),
                            _ => "0".to_string(),
                        }
                    }
                    _ => "1".to_string(),
                }
            } else if let Some(v) =
                next.filter(|n| !(n.starts_with('-') && n.len() > 1 && !n.starts_with("-/")))
            {
                i += 1;
                v.clone()
            } else {
                out.prompt.push(param.to_string());
                i += 1;
                continue;
            };
            out.params.insert(param.to_string(), value);
        } else if let Some(name) = positional.next() {
            out.params.insert((*name).to_string(), arg.clone());
        } else {
            bail!("too many arguments: '{arg}'");
        }
        i += 1;
    }
    for (k, v) in spec.fixed {
        out.params.insert((*k).to_string(), (*v).to_string());
    }
    if let Some(missing) = positional.next()
        && !(spec.path == "/access/permissions" && *missing == "userid")
    {
        bail!("not enough arguments: missing <{missing}>");
    }
    Ok(out)
}
