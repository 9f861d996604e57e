//! The load generator behind `benches/run`: drives a frontdesk server (or the Node.js
//! peer in `benches/peers/node`) over real WebSockets with the frames of the
//! `widget-protocol` crate and prints one JSON report on stdout.
//!
//! It is open-loop: every send, reload and reconnect has an intended time fixed before
//! the run starts, and latency is measured from that intended time, not from when the
//! load generator got round to it. A server that stalls therefore shows up as latency
//! instead of as a quietly lower offered load (no coordinated omission). A sender that
//! falls behind sends everything that is due at once. Sends happen at the intended
//! instant to within microseconds (`clock::at`), and the runtime polls instead of
//! sleeping (`clock::spin`), so neither a timer's rounding nor a core's wake-up is
//! counted against the server. Latencies go into HDR histograms (microseconds, three
//! significant digits).
//!
//! Many connections share one process (a small read buffer per socket keeps that cheap);
//! `--procs N` re-runs this program as N child processes, each holding a shard of the
//! connections, when one process's file limit is not enough. The children start their
//! schedules at one agreed wall-clock instant and the parent merges their histograms
//! (`shard`).
//!
//! ```text
//! loadgen MODE --addr 127.0.0.1:8080 [options]      (loadgen MODE --help for its options)
//!   idle     ramp visitors (hello, welcome with history) and hold them idle
//!   relay    visitors send at an offered rate; send->ack and send->agent latency
//!   history  reloads of a long conversation and of one page, optionally under load
//!   timers   no_reply email prompts: lateness, none lost, none doubled
//!   churn    every visitor drops and reconnects within a window
//!   verify   every message listed in an acked log is still stored (after kill -9)
//!   probe    seed one visitor (`--seed N`), or wait until a visitor's history is served
//!            (`--token T`), for the cold-start measurement
//! common: --addr HOST:PORT  --inbox KEY (default)  --procs N (1)  --threads N (1)
//!         --source-ips N (8: loopback source addresses to spread connections over)
//!         --no-spin  --agent-token T | --agent-token-file F  --nonce TAG
//! ```
//!
//! The parts: `args` (the command line), `common` (what every mode shares), `modes/*`
//! (one workload each), `client` (one connection and its frames), `seed` (the visitors a
//! workload starts from), `report` (counters, histograms, the JSON), `shard` (`--procs`),
//! `clock` (the precise sleep and the Unix-time stamps).
//!
//! Errors of the server or the network are counted in the report, never unwrapped; the
//! process exits non-zero only when it could not run at all or `verify` found a loss.
//! It must not be used against anything but loopback or the project's own test hosts.

mod args;
mod client;
mod clock;
mod common;
mod modes;
mod report;
mod seed;
mod shard;

use serde_json::Value;

use crate::args::Mode;
use crate::report::Report;

fn main() {
    let (cli, params) = args::parse();
    let code = match run(&cli.mode, params) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn run(mode: &Mode, params: Value) -> Result<i32, String> {
    let common = mode.common();
    if common.procs > 1 && common.shard.is_none() {
        let report = shard::run_sharded(common.procs, common.nonce.is_some())?;
        return Ok(print_final(mode, &report, params));
    }
    let runtime = if common.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(common.threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    if !common.no_spin {
        runtime.spawn(clock::spin());
    }
    let report = runtime.block_on(modes::run(mode))?;
    if common.shard.is_some() {
        println!("{}", report.to_wire());
        return Ok(0);
    }
    Ok(print_final(mode, &report, params))
}

/// Prints the final report; the exit status is 1 when `verify` found a loss.
fn print_final(mode: &Mode, report: &Report, params: Value) -> i32 {
    println!("{}", report.finish(mode.name(), params));
    if matches!(mode, Mode::Verify(_)) && report.counter("lost") > 0 {
        return 1;
    }
    0
}
