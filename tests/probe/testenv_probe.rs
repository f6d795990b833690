//! Starts a control plane, prints `pids=<etcd>,<apiserver> dir=<path>`, then ends as told by its
//! first argument: `panic` (a panic with the shared control plane never dropped) or `wait-for-kill`
//! (blocks until the test kills it with SIGKILL). Used by the e2e tests of testenv's cleanup.

#[tokio::main]
async fn main() {
    let mode = std::env::args().nth(1).unwrap_or_default();
    let env = match testenv::TestEnv::shared().await {
        Ok(env) => env,
        Err(e) => {
            eprintln!("probe: control plane failed to start: {e}");
            std::process::exit(2);
        }
    };
    let [etcd, apiserver] = env.pids();
    println!("pids={etcd},{apiserver} dir={}", env.dir().display());
    match mode.as_str() {
        "panic" => panic!("probe: panicking on purpose with a live control plane"),
        "wait-for-kill" => std::future::pending::<()>().await,
        other => {
            eprintln!("probe: unknown mode {other:?}; use panic or wait-for-kill");
            std::process::exit(2);
        }
    }
}
