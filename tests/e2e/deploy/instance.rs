//! What the tests that run the controller use: a simulator with the config file of the
//! controller's default connection, a controller instance (`pve-operator run`, in this process)
//! with its endpoints on a loopback port, its `/metrics` checked against the OpenMetrics text
//! format (and by the Prometheus project's reference parser), and the holder of its Lease.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use pve_client::PveClient;
use pve_operator::cli::run::{OpsArgs, RunArgs, RunCommand, run_operator};
use pve_sim::{RunningSim, SimOptions, SimServer};

use super::{IDENTITY_LABEL, repo};
use crate::support::{root_config_in, within};

/// A simulator and the config file of the controller's default connection.
pub(super) struct Proxmox {
    pub(super) sim: RunningSim,
    pve: PveClient,
    pub(super) config: PathBuf,
    _dir: tempfile::TempDir,
}

impl Proxmox {
    pub(super) async fn start() -> Proxmox {
        let sim = SimServer::start(SimOptions::new("deploy-root-password"))
            .await
            .expect("simulator");
        let dir = tempfile::tempdir().expect("temp dir");
        let (config, pve) = root_config_in(&sim, dir.path());
        Proxmox {
            sim,
            pve,
            config,
            _dir: dir,
        }
    }

    /// The controller's VMs (tagged `pve-operator`; the simulator's template is not): (vmid,
    /// name, tags).
    pub(super) async fn vms(&self) -> Vec<(u32, String, String)> {
        self.pve
            .cluster_resources(None)
            .await
            .expect("resources")
            .iter()
            .filter_map(|r| {
                Some((
                    r.vmid?,
                    r.name.clone().unwrap_or_default(),
                    r.tags.clone().unwrap_or_default(),
                ))
            })
            .filter(|(_, _, tags)| tags.split(';').any(|t| t == "pve-operator"))
            .collect()
    }

    pub(super) async fn vm_count(&self) -> usize {
        self.vms().await.len()
    }
}

/// One controller instance (`pve-operator run`, in this process) with its endpoints on a
/// loopback port.
pub(super) struct Instance {
    addr: std::net::SocketAddr,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    pub(super) task: Option<tokio::task::JoinHandle<anyhow::Result<()>>>,
}

pub(super) struct InstanceOptions<'a> {
    pub(super) ns: &'a str,
    pub(super) config: &'a Path,
    pub(super) leader_elect: bool,
    pub(super) identity: &'a str,
    pub(super) lease_duration: u64,
}

impl Instance {
    pub(super) async fn start(client: Client, options: InstanceOptions<'_>) -> Instance {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("loopback port");
        let addr = listener.local_addr().expect("address");
        let command = RunCommand {
            controller: RunArgs {
                config: Some(options.config.to_path_buf()),
                namespace: Some(options.ns.to_string()),
                // The identities' Secrets in the test's namespace (as the chart's
                // $(POD_NAMESPACE) would be), and only the identities this test labels: they are
                // cluster-scoped, and other tests' controllers serve theirs.
                identity_namespace: Some(options.ns.to_string()),
                identity_selector: vec![format!("{IDENTITY_LABEL}={}", options.ns)],
                inventory_interval: 1,
                task_poll_interval: 100,
                resync_interval: 0,
                shutdown_grace: 5,
                ..RunArgs::default()
            },
            ops: OpsArgs {
                metrics_addr: addr,
                leader_elect: options.leader_elect,
                lease_name: "pve-operator-leader".into(),
                lease_namespace: Some(options.ns.to_string()),
                lease_duration: options.lease_duration,
                lease_renew_interval: 1,
                leader_identity: Some(options.identity.to_string()),
            },
        };
        Instance::launch(client, command, listener)
    }

    /// Runs `command` with its endpoints on `listener` (whatever its --metrics-addr says).
    pub(super) fn launch(
        client: Client,
        command: RunCommand,
        listener: tokio::net::TcpListener,
    ) -> Instance {
        let addr = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(run_operator(command, client, listener, async {
            let _ = stopped.await;
        }));
        Instance {
            addr,
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// GET `path`; the status code and the body.
    pub(super) async fn get(&self, path: &str) -> (u16, String) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let mut stream = tokio::net::TcpStream::connect(self.addr)
            .await
            .expect("the endpoints accept connections");
        stream
            .write_all(
                format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .await
            .expect("request sent");
        let mut raw = String::new();
        stream.read_to_string(&mut raw).await.expect("response");
        let (head, body) = raw.split_once("\r\n\r\n").expect("HTTP response");
        let code = head
            .split_whitespace()
            .nth(1)
            .and_then(|c| c.parse().ok())
            .expect("status code");
        (code, body.to_string())
    }

    pub(super) async fn metrics(&self) -> Metrics {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        Metrics::parse(&body)
    }

    /// `/metrics` as the Prometheus project's reference OpenMetrics parser reads it (it fails
    /// the test on anything the format does not allow): family name to (type, sample count).
    pub(super) async fn metrics_by_reference_parser(&self) -> BTreeMap<String, (String, usize)> {
        let (code, body) = self.get("/metrics").await;
        assert_eq!(code, 200, "{body}");
        // (hack/pyenv.sh may build the venv: not on this runtime's only thread, which also
        // renews the instance's Lease.)
        let python = tokio::task::spawn_blocking(crate::third_party::python_env)
            .await
            .expect("python_env")
            .join("bin/python");
        let script = repo("thirdparty/openmetrics_check.py");
        let mut child = tokio::process::Command::new(python)
            .arg(script)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("python runs");
        {
            use tokio::io::AsyncWriteExt;
            let mut stdin = child.stdin.take().expect("stdin");
            stdin.write_all(body.as_bytes()).await.expect("scrape sent");
        }
        let output = within("the OpenMetrics parser", child.wait_with_output())
            .await
            .expect("parser output");
        assert!(
            output.status.success(),
            "the reference parser refuses /metrics: {}\n{body}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout)
            .lines()
            .map(|line| {
                let mut parts = line.split(' ');
                let name = parts.next().unwrap_or_default().to_string();
                let kind = parts.next().unwrap_or_default().to_string();
                let count = parts.next().and_then(|c| c.parse().ok()).unwrap_or(0);
                (name, (kind, count))
            })
            .collect()
    }

    /// Stops gracefully (SIGTERM) and returns what the run returned.
    pub(super) async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let task = self.task.take().expect("running");
        within("the instance to stop", task)
            .await
            .expect("no panic")
    }

    /// Stops abruptly, as a crash would: no release of the Lease, nothing finishes.
    pub(super) async fn crash(mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Instance {
    fn drop(&mut self) {
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// A scrape, checked against the OpenMetrics text format: `# TYPE`/`# HELP`/`# UNIT` lines,
/// samples of declared families with well-formed labels and float values, `# EOF` at the end.
#[derive(Debug)]
pub(super) struct Metrics {
    samples: Vec<(String, BTreeMap<String, String>, f64)>,
}

impl Metrics {
    fn parse(text: &str) -> Metrics {
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.last(), Some(&"# EOF"), "OpenMetrics ends with # EOF");
        let mut families: BTreeMap<String, String> = BTreeMap::new();
        let mut samples = Vec::new();
        for line in &lines[..lines.len() - 1] {
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let keyword = parts.next().unwrap_or_default();
                let name = parts.next().expect("metric name").to_string();
                let value = parts.next().unwrap_or_default();
                match keyword {
                    "TYPE" => {
                        assert!(
                            [
                                "counter",
                                "gauge",
                                "histogram",
                                "summary",
                                "info",
                                "stateset",
                                "unknown",
                                "gaugehistogram"
                            ]
                            .contains(&value),
                            "unknown type in {line}"
                        );
                        assert!(
                            families.insert(name, value.to_string()).is_none(),
                            "family declared twice: {line}"
                        );
                    }
                    "HELP" | "UNIT" => {}
                    other => panic!("unknown descriptor {other}: {line}"),
                }
                continue;
            }
            let (series, value) = line
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("sample: {line}"));
            let value: f64 = value.parse().unwrap_or_else(|_| panic!("value of {line}"));
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => (
                    name,
                    parse_labels(rest.strip_suffix('}').expect("closing brace")),
                ),
                None => (series, BTreeMap::new()),
            };
            assert!(
                name.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':'),
                "metric name {name}"
            );
            let family = families
                .iter()
                .filter(|(f, _)| name.starts_with(f.as_str()))
                .max_by_key(|(f, _)| f.len())
                .unwrap_or_else(|| panic!("sample of an undeclared family: {line}"));
            let suffix = &name[family.0.len()..];
            let allowed: &[&str] = match family.1.as_str() {
                "counter" => &["_total", "_created"],
                "histogram" => &["_bucket", "_sum", "_count", "_created"],
                _ => &[""],
            };
            assert!(
                allowed.contains(&suffix),
                "{name} is not a sample of {} {}",
                family.1,
                family.0
            );
            samples.push((name.to_string(), labels, value));
        }
        Metrics { samples }
    }

    /// The sum of the samples named `name` whose labels include `labels`.
    pub(super) fn sum(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.samples
            .iter()
            .filter(|(n, l, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, v)| v)
            .sum()
    }

    pub(super) fn has(&self, name: &str) -> bool {
        self.samples.iter().any(|(n, _, _)| n == name)
    }
}

fn parse_labels(text: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    let mut rest = text;
    while !rest.is_empty() {
        let (key, after) = rest
            .split_once("=\"")
            .unwrap_or_else(|| panic!("label in {text}"));
        assert!(
            key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'),
            "label name {key}"
        );
        let mut value = String::new();
        let mut chars = after.char_indices();
        let end = loop {
            match chars.next() {
                Some((_, '\\')) => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, c)) => value.push(c),
                    None => panic!("escape at the end of {text}"),
                },
                Some((i, '"')) => break i,
                Some((_, c)) => value.push(c),
                None => panic!("unterminated label value in {text}"),
            }
        };
        labels.insert(key.to_string(), value);
        rest = after[end + 1..]
            .strip_prefix(',')
            .unwrap_or(&after[end + 1..]);
    }
    labels
}

pub(super) async fn lease_holder(leases: &Api<Lease>) -> Option<String> {
    leases
        .get_opt("pve-operator-leader")
        .await
        .expect("lease readable")
        .and_then(|l| l.spec)
        .and_then(|s| s.holder_identity)
        .filter(|h| !h.is_empty())
}
