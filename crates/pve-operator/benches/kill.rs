//! The kill tests of issue 12, many times: the controller is killed at random points of
//! create, clone, drift and delete, restarted, and every run is checked for duplicate VMs,
//! orphaned VMs, an unreleased finalizer and a request that never became Ready.
//!
//! `cargo bench -p pve-operator --bench kill -- [--runs N] [--seed S] [--mode sigkill|abort|both]
//! [--no-doc]`, or one run again: `... -- --replay SCENARIO:SEED [--mode sigkill|abort]`.
//! `hack/kill-test.sh` runs it with the local control plane.
//!
//! The runs are those of the e2e kill tests (`tests/e2e/kill.rs`, included below: one engine
//! for CI and for this series). Run `i` of a series is scenario `i mod 5` (create, clone, drift,
//! delete, delete-while-creating), its windows taken in turn (each window of a scenario is hit
//! once its scenario has had as many runs), with a seed drawn from the series' seed and `i`
//! that draws that window: the delay inside the window and the downtime stay random, and a run
//! replays from its seed alone. `--mode both` (the default) makes the series once with the real
//! `pve-operator` binary killed by SIGKILL, once with the controller aborted inside this
//! process. The table goes to stdout and, between its markers, into docs/kill-tests.md (unless
//! `--no-doc`). Exits 1 when any run found anything.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

// The engine of the e2e kill tests; its CI tests (compiled only by `cargo test`) use parts of
// it that this runner does not.
#[path = "../../../tests/e2e/kill.rs"]
#[allow(dead_code)]
mod kill;

use kill::{KillMode, Outcome, SEED_VAR, Scenario};

/// What `tests/e2e/support.rs` is to the e2e tests, as far as `kill.rs` uses it.
mod support {
    /// Sends the logs (of the controller, when it runs inside this process) to stderr when
    /// `RUST_LOG` is set.
    pub fn init_logging() {
        if let Ok(filter) = std::env::var("RUST_LOG") {
            let _ = tracing_subscriber::fmt()
                .with_env_filter(tracing_subscriber::EnvFilter::new(filter))
                .with_writer(std::io::stderr)
                .try_init();
        }
    }
}

/// What to run.
struct Options {
    runs: u64,
    seed: u64,
    modes: Vec<KillMode>,
    write_doc: bool,
    replay: Option<(Scenario, u64)>,
}

fn binary() -> KillMode {
    KillMode::SigKill(PathBuf::from(env!("CARGO_BIN_EXE_pve-operator")))
}

fn parse_options() -> anyhow::Result<Options> {
    let mut options = Options {
        runs: 50,
        seed: kill::base_seed(),
        modes: vec![binary(), KillMode::Abort],
        write_doc: true,
        replay: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        let mut value = || args.next().with_context(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--runs" => options.runs = value()?.parse().context("--runs needs a number")?,
            "--seed" => {
                let text = value()?;
                options.seed = kill::parse_seed(&text)
                    .with_context(|| format!("--seed {text:?}: decimal or 0x hex"))?;
            }
            "--mode" => {
                options.modes = match value()?.as_str() {
                    "sigkill" => vec![binary()],
                    "abort" => vec![KillMode::Abort],
                    "both" => vec![binary(), KillMode::Abort],
                    other => bail!("--mode {other:?}: sigkill, abort or both"),
                }
            }
            "--replay" => {
                let text = value()?;
                let (name, seed) = text
                    .split_once(':')
                    .with_context(|| format!("--replay {text:?}: SCENARIO:SEED"))?;
                let scenario = Scenario::ALL
                    .into_iter()
                    .find(|s| s.name() == name)
                    .with_context(|| format!("--replay: no scenario {name:?} (create, clone, drift, delete, delete-while-creating)"))?;
                let seed = kill::parse_seed(seed)
                    .with_context(|| format!("--replay: seed {seed:?}: decimal or 0x hex"))?;
                options.replay = Some((scenario, seed));
            }
            "--no-doc" => options.write_doc = false,
            // What cargo bench passes to every bench binary.
            "--bench" => {}
            other => {
                bail!("unknown argument {other}; use --runs, --seed, --mode, --replay, --no-doc")
            }
        }
    }
    Ok(options)
}

fn main() -> anyhow::Result<()> {
    let options = parse_options()?;
    support::init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let clean = runtime.block_on(async {
        if let Some((scenario, seed)) = options.replay {
            let mut clean = true;
            for mode in &options.modes {
                let outcome = kill::kill_run(scenario, seed, mode).await;
                println!("{outcome}");
                clean &= outcome.is_clean();
            }
            return Ok::<bool, anyhow::Error>(clean);
        }
        let mut sections = Vec::new();
        let mut clean = true;
        for mode in &options.modes {
            let series = run_series(&options, mode).await;
            clean &= series.unclean.is_empty();
            let section = series.markdown(&options, mode);
            println!("\n{section}");
            sections.push(section);
        }
        if options.write_doc {
            let doc = doc_path();
            write_doc(&doc, &options, &sections)?;
            eprintln!("wrote {}", doc.display());
        }
        Ok(clean)
    })?;
    if !clean {
        std::process::exit(1);
    }
    Ok(())
}

/// What one series found.
struct Series {
    by_scenario: BTreeMap<Scenario, Counts>,
    unclean: Vec<String>,
    wall: Duration,
}

/// What the runs of one scenario found.
#[derive(Default)]
struct Counts {
    runs: u32,
    duplicates: u32,
    orphans: u32,
    finalizers_released: u32,
    ready: u32,
    problems: u32,
    windows: BTreeMap<&'static str, u32>,
    longest: Duration,
    total: Duration,
}

impl Counts {
    fn add(&mut self, outcome: &Outcome) {
        self.runs += 1;
        self.duplicates += outcome.duplicates.len() as u32;
        self.orphans += outcome.orphans.len() as u32;
        self.finalizers_released += u32::from(outcome.finalizer_released);
        self.ready += u32::from(outcome.ready != Some(false) && outcome.finalizer_released);
        self.problems += u32::from(!outcome.problems.is_empty());
        *self.windows.entry(outcome.plan.window.name).or_default() += 1;
        self.longest = self.longest.max(outcome.elapsed);
        self.total += outcome.elapsed;
    }

    fn merge(&mut self, other: &Counts) {
        self.runs += other.runs;
        self.duplicates += other.duplicates;
        self.orphans += other.orphans;
        self.finalizers_released += other.finalizers_released;
        self.ready += other.ready;
        self.problems += other.problems;
        self.longest = self.longest.max(other.longest);
        self.total += other.total;
    }
}

async fn run_series(options: &Options, mode: &KillMode) -> Series {
    let began = Instant::now();
    let mut series = Series {
        by_scenario: BTreeMap::new(),
        unclean: Vec::new(),
        wall: Duration::ZERO,
    };
    for index in 0..options.runs {
        let scenario = Scenario::ALL[(index % Scenario::ALL.len() as u64) as usize];
        let seed = seed_in_turn(options.seed, index, scenario);
        let outcome = kill::kill_run(scenario, seed, mode).await;
        println!("run {}/{} {outcome}", index + 1, options.runs);
        series
            .by_scenario
            .entry(scenario)
            .or_default()
            .add(&outcome);
        if !outcome.is_clean() {
            series.unclean.push(format!(
                "run {} (replay: `hack/kill-test.sh --replay {scenario}:{seed:#x} --mode {}`):\n\n```\n{outcome}```",
                index + 1,
                mode.name()
            ));
        }
    }
    series.wall = began.elapsed();
    series
}

/// The seed of run `index` of a series from `base`: the first of the run's seeds that draws
/// the scenario's next window in turn, so that a series reaches every window of a scenario as
/// soon as it has as many runs of it, and each run still replays from its seed alone.
fn seed_in_turn(base: u64, index: u64, scenario: Scenario) -> u64 {
    let windows = scenario.windows();
    let turn = index / Scenario::ALL.len() as u64;
    let wanted = windows[(turn % windows.len() as u64) as usize].name;
    (0..)
        .map(|attempt| kill::run_seed(base, index.wrapping_mul(1_000_003).wrapping_add(attempt)))
        .find(|&seed| kill::Plan::draw(scenario, seed).window.name == wanted)
        .unwrap_or(base)
}

impl Series {
    fn markdown(&self, options: &Options, mode: &KillMode) -> String {
        let mut out = String::new();
        let how = match mode {
            KillMode::SigKill(_) => "the `pve-operator` binary, killed with SIGKILL",
            KillMode::Abort => "the controller inside the test process, its task aborted",
        };
        let _ = writeln!(
            out,
            "### {} runs, {how}\n\nSeed {:#x}; {:.0} s in all.\n",
            options.runs,
            options.seed,
            self.wall.as_secs_f64()
        );
        let _ = writeln!(
            out,
            "| scenario | runs | duplicate VMs | orphaned VMs | finalizers released | Ready (or gone) | other problems | mean / longest run | kills per window |"
        );
        let _ = writeln!(out, "|---|---:|---:|---:|---:|---:|---:|---:|---|");
        let mut total = Counts::default();
        for (scenario, counts) in &self.by_scenario {
            total.merge(counts);
            let windows: Vec<String> = counts
                .windows
                .iter()
                .map(|(name, n)| format!("{name} {n}"))
                .collect();
            let _ = writeln!(
                out,
                "| {scenario} | {} | {} | {} | {}/{} | {}/{} | {} | {:.1} / {:.1} s | {} |",
                counts.runs,
                counts.duplicates,
                counts.orphans,
                counts.finalizers_released,
                counts.runs,
                counts.ready,
                counts.runs,
                counts.problems,
                counts.total.as_secs_f64() / f64::from(counts.runs.max(1)),
                counts.longest.as_secs_f64(),
                windows.join(", ")
            );
        }
        let _ = writeln!(
            out,
            "| **all** | **{}** | **{}** | **{}** | **{}/{}** | **{}/{}** | **{}** | {:.1} / {:.1} s | |",
            total.runs,
            total.duplicates,
            total.orphans,
            total.finalizers_released,
            total.runs,
            total.ready,
            total.runs,
            total.problems,
            total.total.as_secs_f64() / f64::from(total.runs.max(1)),
            total.longest.as_secs_f64()
        );
        if !self.unclean.is_empty() {
            let _ = writeln!(out, "\nRuns that found something:\n");
            for run in &self.unclean {
                let _ = writeln!(out, "{run}\n");
            }
        }
        out
    }
}

const BEGIN: &str =
    "<!-- kill-bench:begin (written by `cargo bench -p pve-operator --bench kill`) -->";
const END: &str = "<!-- kill-bench:end -->";

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/kill-tests.md")
}

/// Puts the sections between the markers of `path` (the text around them is kept).
fn write_doc(path: &Path, options: &Options, sections: &[String]) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(path).with_context(|| {
        format!(
            "reading {} (its markers say where the numbers go)",
            path.display()
        )
    })?;
    let (Some(begin), Some(end)) = (text.find(BEGIN), text.find(END)) else {
        bail!("{} has no {BEGIN} ... {END} markers", path.display());
    };
    let command = format!(
        "{SEED_VAR}={:#x} hack/kill-test.sh --runs {}",
        options.seed, options.runs
    );
    let body = format!(
        "{BEGIN}\n\nReproduce: `{command}` (the seed repeats the same kill points; timing inside a window may differ by a few milliseconds).\n\n{}\n",
        sections.join("\n")
    );
    let updated = format!("{}{body}{}", &text[..begin], &text[end..]);
    std::fs::write(path, updated).with_context(|| format!("writing {}", path.display()))
}
