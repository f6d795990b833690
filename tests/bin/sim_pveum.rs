//! `sim-pveum WORDS...`: `pve-sim pveum` as a binary of the test package, so that e2e tests can
//! run generated `pveum` command lines verbatim through a shell (with `pveum` defined as this
//! program) and read their output. The simulator comes from `PVE_SIM_URL` and
//! `PVE_SIM_ROOT_PASSWORD`, as for `pve-sim pveum`.

use std::process::ExitCode;

fn main() -> ExitCode {
    let (Ok(url), Ok(password)) = (
        std::env::var("PVE_SIM_URL"),
        std::env::var("PVE_SIM_ROOT_PASSWORD"),
    ) else {
        eprintln!("sim-pveum: set PVE_SIM_URL and PVE_SIM_ROOT_PASSWORD to the running simulator");
        return ExitCode::from(2);
    };
    let words: Vec<String> = std::env::args().skip(1).collect();
    let words: Vec<&str> = words.iter().map(String::as_str).collect();
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("sim-pveum: cannot start a runtime: {e}");
            return ExitCode::from(2);
        }
    };
    let args = pve_sim::pveum::PveumArgs::new(&url, &password, &words);
    match runtime.block_on(pve_sim::pveum::run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("{e:#}");
            ExitCode::from(255)
        }
    }
}
