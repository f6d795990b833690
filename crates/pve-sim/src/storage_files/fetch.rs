//! The worker of a `download` task, as PVE's `download_file_from_url` (pve-common `Tools.pm`)
//! runs it: refuse to override an existing file (unless its checksum is the one asked for), fetch
//! the URL into a temporary file (`wget` there; reqwest here, loopback hosts only), verify the
//! checksum, decompress, and only then rename the file to its name. Every failure is the task's
//! exit status with PVE's text; `wget`'s failures end as `download failed: <its last stderr line>`
//! or `download failed: exit code N` (`run_command` with `errmsg`).
//!
//! Hosts other than loopback fail as a node without a network route does (no DNS, no packet
//! leaves the machine): a name does not resolve, an address is unreachable.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;

use super::digest::Digests;
use super::{Destination, DownloadJob, file_key};
use crate::pipeline::Shared;
use crate::state::Volume;

/// What a finished fetch left in the temporary file.
struct Fetched {
    /// Bytes of the final file (after decompression).
    size: u64,
    /// Its checksums.
    checksums: std::collections::BTreeMap<String, String>,
}

/// How the worker ended without an error.
enum Done {
    /// A new file.
    Saved(Fetched),
    /// The file was there already with the checksum asked for.
    AlreadyThere,
}

/// Runs the job to its end and ends its task.
pub async fn run(shared: Arc<Shared>, job: DownloadJob) {
    let result = work(&shared, &job).await;
    finish(&shared, &job, result);
}

/// Appends a line to the task log while the task runs.
fn log(shared: &Shared, job: &DownloadJob, line: impl Into<String>) {
    let mut sim = shared.lock();
    if let Some(t) = sim.state.task_mut(&job.upid).filter(|t| t.running()) {
        t.log.push(line.into());
    }
}

async fn work(shared: &Shared, job: &DownloadJob) -> Result<Done, String> {
    let dest = &job.dest;
    if let Some(c) = &job.compression {
        if dest.content != "iso" {
            return Err(format!("decompression not supported for {}", dest.content));
        }
        if !matches!(c.as_str(), "gz" | "lzo" | "zst" | "bz2") {
            return Err("no decompression method found".to_string());
        }
        if c != "gz" {
            return Err(format!(
                "pve-sim: decompressing '{c}' is not supported (only gz)"
            ));
        }
    }
    log(
        shared,
        job,
        format!("downloading {} to {}", job.url, dest.path),
    );
    let existing = {
        let sim = shared.lock();
        sim.state
            .volumes
            .iter()
            .any(|v| v.volid == dest.volid && v.node == dest.node)
            .then(|| super::file_checksums(&sim.state, &dest.volid, dest.node.as_deref()))
    };
    if let Some(checksums) = existing {
        let Some((algorithm, expected)) = &job.checksum else {
            return Err(format!(
                "refusing to override existing file '{}'",
                dest.path
            ));
        };
        // A file the simulator did not download has no content: the checksum of nothing.
        let got = checksums.get(algorithm).cloned().unwrap_or_else(|| {
            let sums = Digests::of(&super::ALGORITHMS).finish();
            sums.get(algorithm).cloned().unwrap_or_default()
        });
        if got.eq_ignore_ascii_case(expected) {
            log(
                shared,
                job,
                "calculating checksum of existing file...OK, got correct file already, no need to download",
            );
            return Ok(Done::AlreadyThere);
        }
        log(shared, job, "calculating checksum of existing file...");
        return Err(format!(
            "checksum mismatch: got '{got}' != expect '{expected}', aborting"
        ));
    }
    let tmp = format!("{}.tmp_dwnl.{}", dest.path, std::process::id());
    let (raw, fetched) = http_get(shared, job, &tmp).await?;
    if let Some((algorithm, expected)) = &job.checksum {
        let got = raw.get(algorithm).cloned().unwrap_or_default();
        if got.eq_ignore_ascii_case(expected) {
            log(shared, job, "calculating checksum...OK, checksum verified");
        } else {
            log(shared, job, "calculating checksum...");
            return Err(format!(
                "checksum mismatch: got '{got}' != expect '{expected}'"
            ));
        }
    }
    if job.compression.is_some() {
        let decompressed = format!("{}.tmp_dcom.{}", dest.path, std::process::id());
        log(
            shared,
            job,
            format!("decompressing {tmp} to {decompressed}"),
        );
    }
    Ok(Done::Saved(fetched))
}

/// A loopback address of `host` (`localhost` too, without asking a resolver).
fn loopback(host: &url::Host<&str>) -> Option<IpAddr> {
    match host {
        url::Host::Ipv4(ip) if ip.is_loopback() => Some(IpAddr::V4(*ip)),
        url::Host::Ipv6(ip) if ip.is_loopback() => Some(IpAddr::V6(*ip)),
        url::Host::Domain(d) if d.eq_ignore_ascii_case("localhost") => {
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        }
        _ => None,
    }
}

/// `wget`'s timestamp (`2025-05-01 10:00:00`, UTC here).
fn wget_time(now_ms: u64) -> String {
    let secs = now_ms / 1000;
    let days = (secs / 86_400) as i64;
    let (h, m, s) = (secs % 86_400 / 3600, secs % 3600 / 60, secs % 60);
    // Civil date from days since 1970-01-01 (H. Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02} {h:02}:{m:02}:{s:02}")
}

/// Fetches the URL: the checksums of the bytes received, and the final file's size and
/// checksums (after decompression).
async fn http_get(
    shared: &Shared,
    job: &DownloadJob,
    tmp: &str,
) -> Result<(std::collections::BTreeMap<String, String>, Fetched), String> {
    let now = shared.lock().now_ms();
    log(shared, job, format!("--{}--  {}", wget_time(now), job.url));
    let url = reqwest::Url::parse(&job.url).map_err(|_| {
        log(shared, job, format!("{}: Invalid URL.", job.url));
        "download failed: exit code 1".to_string()
    })?;
    let host = url
        .host()
        .ok_or_else(|| "download failed: exit code 1".to_string())?;
    let host_text = url.host_str().unwrap_or_default().to_string();
    let port = url.port_or_known_default().unwrap_or(80);
    let Some(ip) = loopback(&host) else {
        return Err(unreachable(shared, job, &host, port));
    };
    let connecting = format!("Connecting to {host_text}:{port}... ");
    let client = reqwest::Client::builder()
        .no_proxy()
        .danger_accept_invalid_certs(!job.verify_certificates)
        .resolve(&host_text, SocketAddr::new(ip, port))
        .redirect(reqwest::redirect::Policy::custom(|attempt| {
            let ok = attempt.previous().len() < 20
                && attempt.url().host().as_ref().and_then(loopback).is_some();
            if ok { attempt.follow() } else { attempt.stop() }
        }))
        .build()
        .map_err(|e| format!("pve-sim: no HTTP client: {e}"))?;
    let mut resp = match client.get(url.clone()).send().await {
        Ok(r) => r,
        Err(e) => return Err(send_failure(shared, job, &connecting, &host_text, &e)),
    };
    log(shared, job, format!("{connecting}connected."));
    let status = resp.status();
    let reason = status.canonical_reason().unwrap_or("");
    log(
        shared,
        job,
        format!(
            "HTTP request sent, awaiting response... {} {reason}",
            status.as_u16()
        ),
    );
    if status.is_redirection()
        && let Some(next) = resp
            .headers()
            .get("location")
            .and_then(|l| l.to_str().ok())
            .and_then(|l| url.join(l).ok())
    {
        // A redirect away from loopback: the next host is out of reach.
        log(shared, job, format!("Location: {next} [following]"));
        let next_host = next.host().map(|h| h.to_owned());
        let next_port = next.port_or_known_default().unwrap_or(80);
        return Err(match next_host {
            Some(h) => unreachable(shared, job, &borrow_host(&h), next_port),
            None => "download failed: exit code 1".to_string(),
        });
    }
    if !status.is_success() {
        let now = shared.lock().now_ms();
        log(
            shared,
            job,
            format!("{} ERROR {}: {reason}.", wget_time(now), status.as_u16()),
        );
        // wget ends its report with an empty line, so `run_command` has no last stderr line.
        return Err("download failed: exit code 8".to_string());
    }
    let ctype = resp
        .headers()
        .get("content-type")
        .and_then(|c| c.to_str().ok())
        .unwrap_or("application/octet-stream")
        .to_string();
    match resp.content_length() {
        Some(n) => log(shared, job, format!("Length: {n} [{ctype}]")),
        None => log(shared, job, format!("Length: unspecified [{ctype}]")),
    }
    log(shared, job, format!("Saving to: '{tmp}'"));
    let mut received = Digests::all();
    let mut gunzip = job
        .compression
        .as_ref()
        .map(|_| flate2::write::GzDecoder::new(Digests::all()));
    loop {
        match resp.chunk().await {
            Ok(Some(bytes)) => {
                received.update(&bytes);
                if let Some(gz) = gunzip.as_mut() {
                    gz.write_all(&bytes)
                        .map_err(|e| format!("pve-sim: decompression failed: {e}"))?;
                }
            }
            Ok(None) => break,
            Err(e) => {
                log(
                    shared,
                    job,
                    format!("Read error at byte {} ({e}). Giving up.", received.bytes()),
                );
                return Err("download failed: exit code 4".to_string());
            }
        }
    }
    let n = received.bytes();
    let now = shared.lock().now_ms();
    log(
        shared,
        job,
        format!("{} - '{tmp}' saved [{n}/{n}]", wget_time(now)),
    );
    let raw = received.finish();
    let fetched = match gunzip {
        Some(gz) => {
            let out = gz
                .finish()
                .map_err(|e| format!("pve-sim: decompression failed: {e}"))?;
            Fetched {
                size: out.bytes(),
                checksums: out.finish(),
            }
        }
        None => Fetched {
            size: n,
            checksums: raw.clone(),
        },
    };
    Ok((raw, fetched))
}

fn borrow_host(h: &url::Host<String>) -> url::Host<&str> {
    match h {
        url::Host::Domain(d) => url::Host::Domain(d.as_str()),
        url::Host::Ipv4(ip) => url::Host::Ipv4(*ip),
        url::Host::Ipv6(ip) => url::Host::Ipv6(*ip),
    }
}

/// A host off loopback: a name that does not resolve, an address without a route.
fn unreachable(shared: &Shared, job: &DownloadJob, host: &url::Host<&str>, port: u16) -> String {
    match host {
        url::Host::Domain(d) => {
            log(
                shared,
                job,
                format!("Resolving {d} ({d})... failed: Temporary failure in name resolution."),
            );
            let last = format!("wget: unable to resolve host address '{d}'");
            log(shared, job, last.clone());
            format!("download failed: {last}")
        }
        ip => {
            let last = format!("Connecting to {ip}:{port}... failed: Network is unreachable.");
            log(shared, job, last.clone());
            format!("download failed: {last}")
        }
    }
}

/// A request that got no answer: refused, TLS, or anything else.
fn send_failure(
    shared: &Shared,
    job: &DownloadJob,
    connecting: &str,
    host: &str,
    e: &reqwest::Error,
) -> String {
    let mut chain = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        chain.push_str(&format!(": {s}"));
        source = s.source();
    }
    let lower = chain.to_ascii_lowercase();
    if lower.contains("certificate") || lower.contains("tls") || lower.contains("handshake") {
        log(shared, job, format!("{connecting}connected."));
        log(
            shared,
            job,
            format!("ERROR: cannot verify {host}'s certificate: {chain}"),
        );
        let last = format!("To connect to {host} insecurely, use `--no-check-certificate'.");
        log(shared, job, last.clone());
        return format!("download failed: {last}");
    }
    if e.is_connect() {
        let last = format!("{connecting}failed: Connection refused.");
        log(shared, job, last.clone());
        return format!("download failed: {last}");
    }
    log(shared, job, format!("{connecting}connected."));
    log(shared, job, format!("Read error ({chain}). Giving up."));
    "download failed: exit code 4".to_string()
}

/// Ends the task: on success the volume appears under its name (replacing one a concurrent
/// download made meanwhile); a task stopped meanwhile (`DELETE …/tasks/{upid}`) keeps its status.
fn finish(shared: &Shared, job: &DownloadJob, result: Result<Done, String>) {
    {
        let mut guard = shared.lock();
        let sim = &mut *guard;
        if !sim.state.task(&job.upid).is_some_and(|t| t.running()) {
            return;
        }
        let now = sim.now_ms();
        let mut lines = Vec::new();
        let result = result.and_then(|done| match done {
            Done::AlreadyThere => Ok(()),
            Done::Saved(fetched) => {
                store(&mut sim.state, &job.dest, fetched)?;
                lines.push(format!(
                    "download of '{}' to '{}' finished",
                    job.url, job.dest.path
                ));
                Ok(())
            }
        });
        sim.state.running.retain(|r| r.upid != job.upid);
        if let Some(t) = sim.state.task_mut(&job.upid) {
            t.log.extend(lines);
            match result {
                Ok(()) => t.finish("OK", now / 1000),
                Err(e) => t.finish(&e, now / 1000),
            }
        }
        sim.dirty = true;
    }
    shared.persist_notify.notify_one();
}

/// The rename: the file appears with its size, or the storage is full (`wget` could not write).
fn store(
    state: &mut crate::state::SimState,
    dest: &Destination,
    fetched: Fetched,
) -> Result<(), String> {
    let node_name = dest.node.clone().unwrap_or_default();
    let capacity = state
        .config
        .storage(&dest.storage)
        .map(|s| s.capacity.0)
        .unwrap_or(0);
    let replaced: u64 = state
        .volumes
        .iter()
        .filter(|v| v.volid == dest.volid && v.node == dest.node)
        .map(|v| v.size)
        .sum();
    let used = state.storage_used(&dest.storage, &node_name) - replaced;
    if used.saturating_add(fetched.size) > capacity {
        return Err("download failed: exit code 3".to_string());
    }
    state
        .volumes
        .retain(|v| !(v.volid == dest.volid && v.node == dest.node));
    state.volumes.push(Volume {
        volid: dest.volid.clone(),
        storage: dest.storage.clone(),
        node: dest.node.clone(),
        size: fetched.size,
        vmid: None,
        content: dest.content.clone(),
        format: dest.format.clone(),
    });
    state.file_checksums.insert(
        file_key(&dest.volid, dest.node.as_deref()),
        fetched.checksums,
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wget_timestamps_are_civil_dates() {
        assert_eq!(wget_time(0), "1970-01-01 00:00:00");
        assert_eq!(wget_time(1_714_557_600_000), "2024-05-01 10:00:00");
        assert_eq!(wget_time(951_782_400_000), "2000-02-29 00:00:00");
    }

    #[test]
    fn only_loopback_hosts_are_reached() {
        let host = |u: &str| {
            reqwest::Url::parse(u)
                .ok()
                .and_then(|u| u.host().map(|h| h.to_owned()))
        };
        for (u, ok) in [
            ("http://127.0.0.1:80/a", true),
            ("http://127.8.9.1/a", true),
            ("http://[::1]:8080/a", true),
            ("http://LOCALHOST/a", true),
            ("http://10.0.0.1/a", false),
            ("http://example.com/a", false),
            ("http://localhost.example.com/a", false),
        ] {
            let h = host(u).expect("host");
            assert_eq!(loopback(&borrow_host(&h)).is_some(), ok, "{u}");
        }
    }
}
