//! `pve-operator preflight`: connects with the given credentials and tells, before anything is
//! provisioned, whether they hold every privilege the given MachineRequests need (every feature
//! when none is given), and what they hold that they should not.
//!
//! Exit status: 0 nothing missing, 1 something missing, 2 could not check.
//!
//! `-o json` prints one object:
//!
//! ```json
//! {
//!   "version": "9.1.5",
//!   "release": "9.1",
//!   "identity": "API token pve-operator@pve!controller",
//!   "privsep": { "privsep": true, "how": "read from GET /access/users/..." },
//!   "missing":  [ { "privilege": "VM.Allocate", "path": "/vms", "neededFor": "creating VMs" } ],
//!   "present":  [ { "privilege": "VM.Audit", "path": "/vms", "neededFor": "finding and reading its VMs" } ],
//!   "warnings": [ { "kind": "dangerousPrivilege", "privilege": "Sys.Modify", "path": "/",
//!                   "alsoOn": ["/nodes"], "message": "..." } ]
//! }
//! ```
//!
//! Warning kinds: `dangerousPrivilege`, `notPropagated` (with `privilege` and `path`),
//! `tokenWithoutPrivsep`, `rootUser`, `passwordLogin`, `insecureSkipVerify` (message only).
//! `privsep` is present for tokens; `privsep.privsep` is `null` when Proxmox would not tell.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;

use anyhow::Context as _;
use clap::{Args, ValueEnum};
use pve_client::{PveClient, PveConfig, PveRelease};
use serde::Serialize;

use super::manifests::read_manifests;
use crate::privileges::{Report, Subject, VmScope, check, needs_with_images};

/// Output formats of `pve-operator preflight`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Output {
    /// A readable report.
    Table,
    /// One JSON object (see the module documentation).
    Json,
}

/// Options of `pve-operator preflight`.
#[derive(Debug, Clone, Args)]
pub struct PreflightArgs {
    /// The Proxmox connection to check, in the source documents' `proxmox:` format (PVE_*
    /// environment variables override its keys).
    #[arg(long, env = "PVE_OPERATOR_CONFIG")]
    pub config: PathBuf,
    /// MachineRequest manifests whose features to check; every feature when none is given
    /// (storage and bridge privileges are then checked on /storage and
    /// /sdn/zones/localnetwork, i.e. for every storage and bridge).
    #[arg(short = 'f', long = "filename")]
    pub files: Vec<PathBuf>,
    /// Output format.
    #[arg(short = 'o', long = "output", value_enum, default_value_t = Output::Table)]
    pub output: Output,
}

/// What preflight found.
#[derive(Debug, Clone, Serialize)]
pub struct Outcome {
    /// The Proxmox VE version that answered.
    pub version: String,
    /// The release whose privilege rows the check applied (from `version`).
    pub release: PveRelease,
    /// The check.
    #[serde(flatten)]
    pub report: Report,
}

impl Outcome {
    /// 0 when nothing is missing, 1 when something is.
    pub fn exit_code(&self) -> i32 {
        if self.report.sufficient() { 0 } else { 1 }
    }
}

/// Connects, reads the effective permissions and evaluates them; prints nothing. An error means
/// the check could not be made (exit status 2).
pub async fn preflight(args: &PreflightArgs) -> anyhow::Result<Outcome> {
    let manifests = read_manifests(&args.files)?;
    let config = PveConfig::load(Some(&args.config)).with_context(|| {
        format!(
            "loading the Proxmox connection from {}",
            args.config.display()
        )
    })?;
    let pve = PveClient::new(&config).context("setting up the Proxmox client")?;
    let version = pve
        .version()
        .await
        .with_context(|| format!("connecting to {}", config.url))?;
    let mut subject = Subject::of(&config);
    subject
        .discover_privsep(&pve)
        .await
        .context("asking Proxmox about the token's privilege separation")?;
    // The rows of the release that answered; one that does not parse (no real Proxmox answers
    // so) is judged by the newest release's rows.
    let release = version.privilege_release();
    let needs = needs_with_images(
        &manifests.requests,
        &manifests.images,
        release,
        &VmScope::AllVms,
    );
    let report = check(&pve, &subject, &needs)
        .await
        .context("reading the effective permissions (GET /access/permissions)")?;
    Ok(Outcome {
        version: version.version,
        release,
        report,
    })
}

/// The readable report.
pub fn render_table(outcome: &Outcome) -> String {
    let report = &outcome.report;
    let mut out = String::new();
    let support = if outcome.release.is_supported() {
        ""
    } else {
        ", not a release pve-operator supports (8.4, 9.x)"
    };
    let _ = writeln!(
        out,
        "Proxmox VE {} (judged by the privileges of {}{support})",
        outcome.version, outcome.release
    );
    let _ = writeln!(out, "Credentials: {}", report.identity);
    if let Some(privsep) = &report.privsep {
        let value = match privsep.privsep {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "unknown",
        };
        let _ = writeln!(out, "Privilege separation: {value} ({})", privsep.how);
    }
    let _ = writeln!(out);
    let rows: Vec<[&str; 4]> = report
        .missing
        .iter()
        .map(|n| ("MISSING", n))
        .chain(report.present.iter().map(|n| ("have", n)))
        .map(|(state, n)| [state, n.privilege, n.path.as_str(), n.needed_for.as_str()])
        .collect();
    let headers = ["", "PRIVILEGE", "PATH", "NEEDED FOR"];
    let width = |i: usize| {
        rows.iter()
            .map(|r| r[i].len())
            .chain([headers[i].len()])
            .max()
            .unwrap_or(0)
    };
    let widths = [width(0), width(1), width(2)];
    for row in std::iter::once(&headers).chain(rows.iter()) {
        let _ = writeln!(
            out,
            "{:w0$}  {:w1$}  {:w2$}  {}",
            row[0],
            row[1],
            row[2],
            row[3],
            w0 = widths[0],
            w1 = widths[1],
            w2 = widths[2]
        );
    }
    let _ = writeln!(out);
    if report.warnings.is_empty() {
        let _ = writeln!(out, "No warnings.");
    } else {
        let _ = writeln!(out, "Warnings:");
        for warning in &report.warnings {
            let _ = writeln!(out, "  - {}", warning.message);
        }
    }
    let _ = writeln!(out);
    if report.sufficient() {
        let _ = writeln!(
            out,
            "OK: all {} needed privileges are held.",
            report.present.len()
        );
    } else {
        let _ = writeln!(
            out,
            "FAIL: {} of {} needed privileges are missing; `pve-operator privileges` prints the pveum commands that grant them.",
            report.missing.len(),
            report.missing.len() + report.present.len()
        );
    }
    out
}

/// Runs preflight, prints the report, and returns the exit status (0, 1, or 2 when it could
/// not check, with the reason on standard error).
pub async fn run(args: PreflightArgs) -> i32 {
    match preflight(&args).await {
        Ok(outcome) => {
            let text = match args.output {
                Output::Table => render_table(&outcome),
                Output::Json => match serde_json::to_string_pretty(&outcome) {
                    Ok(json) => format!("{json}\n"),
                    Err(e) => {
                        eprintln!("error: cannot render the report as JSON: {e}");
                        return 2;
                    }
                },
            };
            // A closed pipe (`| head`) is not a reason to fail the check.
            let _ = std::io::stdout().lock().write_all(text.as_bytes());
            outcome.exit_code()
        }
        Err(error) => {
            eprintln!("error: preflight could not check the privileges: {error:#}");
            2
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::privileges::{Need, Warning, WarningKind};

    fn outcome(missing: usize) -> Outcome {
        let need = |privilege: &'static str| Need {
            privilege,
            path: "/vms".into(),
            needed_for: "creating VMs".into(),
        };
        Outcome {
            version: "8.4.1".into(),
            release: PveRelease::PVE_8_4,
            report: Report {
                identity: "API token op@pve!ctl".into(),
                privsep: None,
                missing: (0..missing).map(|_| need("VM.Allocate")).collect(),
                present: vec![need("VM.Audit")],
                warnings: vec![Warning {
                    kind: WarningKind::InsecureSkipVerify,
                    privilege: None,
                    path: None,
                    also_on: Vec::new(),
                    message: "insecureSkipVerify is set".into(),
                }],
            },
        }
    }

    #[test]
    fn the_exit_code_says_whether_something_is_missing() {
        assert_eq!(outcome(0).exit_code(), 0);
        assert_eq!(outcome(1).exit_code(), 1);
    }

    #[test]
    fn json_lists_missing_present_and_warnings_with_privilege_path_and_needed_for() {
        let json = serde_json::to_value(outcome(1)).unwrap_or_default();
        assert_eq!(json["version"], "8.4.1");
        assert_eq!(json["missing"][0]["privilege"], "VM.Allocate");
        assert_eq!(json["missing"][0]["path"], "/vms");
        assert_eq!(json["missing"][0]["neededFor"], "creating VMs");
        assert_eq!(json["present"][0]["privilege"], "VM.Audit");
        assert_eq!(json["warnings"][0]["kind"], "insecureSkipVerify");
        assert!(json["warnings"][0].get("privilege").is_none());
    }

    #[test]
    fn the_table_marks_missing_privileges_and_ends_with_the_verdict() {
        let text = render_table(&outcome(1));
        assert!(text.contains("MISSING  VM.Allocate"), "{text}");
        assert!(text.contains("have     VM.Audit"), "{text}");
        assert!(text.contains("insecureSkipVerify is set"), "{text}");
        assert!(text.contains("FAIL: 1 of 2"), "{text}");
        assert!(render_table(&outcome(0)).contains("OK: all 1 needed privileges are held."));
    }
}
