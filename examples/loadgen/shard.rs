//! Sharding across processes (`--procs N`): the parent re-runs this program N times with
//! the same arguments plus `--shard I --shards N` (and one `--nonce` for all), so each
//! child holds a shard of the connections. Every schedule phase starts at one agreed
//! wall-clock instant: a child prints `ready PHASE` on stdout and reads the start (Unix
//! milliseconds) from stdin; when all are ready the parent sends it. At the end each child
//! prints its report in wire form and the parent merges them.

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Child, ChildStdout, Command, Stdio};

use serde_json::{json, Value};
use tokio::time::Instant;

use crate::clock::{instant_of_unix_ms, unix_ms};
use crate::common::new_nonce;
use crate::report::Report;

/// How long after the last shard is ready a phase starts, so each has heard the start.
const START_DELAY_MS: u64 = 300;

/// Runs `procs` shards of this invocation and returns their merged report.
pub fn run_sharded(procs: usize, has_nonce: bool) -> Result<Report, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let mut base: Vec<std::ffi::OsString> = std::env::args_os().skip(1).collect();
    if !has_nonce {
        base.push("--nonce".into());
        base.push(new_nonce().into());
    }
    let mut children = Vec::new();
    for shard in 0..procs {
        let mut child = Command::new(&exe)
            .args(&base)
            .arg("--shard")
            .arg(shard.to_string())
            .arg("--shards")
            .arg(procs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|e| format!("cannot start shard {shard}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout of a shard")?;
        children.push((child, BufReader::new(stdout)));
    }
    let mut lines = start_phases(&mut children)?;
    let mut report = Report::default();
    for (i, (mut child, mut out)) in children.into_iter().enumerate() {
        let mut text = lines[i].take().unwrap_or_default();
        out.read_to_string(&mut text)
            .map_err(|e| format!("reading shard {i}: {e}"))?;
        let status = child
            .wait()
            .map_err(|e| format!("waiting for shard {i}: {e}"))?;
        if !status.success() {
            return Err(format!("shard {i} failed ({status})"));
        }
        let v: Value =
            serde_json::from_str(text.trim()).map_err(|e| format!("shard {i}'s report: {e}"))?;
        report.merge(Report::from_wire(&v)?);
    }
    report.set("procs", json!(procs));
    Ok(report)
}

/// Starts every phase the shards announce, until each prints something other than
/// `ready`: the first line of its report, which is returned.
fn start_phases(
    children: &mut [(Child, BufReader<ChildStdout>)],
) -> Result<Vec<Option<String>>, String> {
    let procs = children.len();
    let mut lines: Vec<Option<String>> = vec![None; procs];
    loop {
        let mut readies = 0;
        for (i, (_, out)) in children.iter_mut().enumerate() {
            let mut line = String::new();
            let n = out
                .read_line(&mut line)
                .map_err(|e| format!("reading shard {i}: {e}"))?;
            if n == 0 {
                return Err(format!("shard {i} ended without a report"));
            }
            if line.starts_with("ready") {
                readies += 1;
            } else {
                lines[i] = Some(line);
            }
        }
        if readies == 0 {
            return Ok(lines);
        }
        if readies != procs {
            return Err("the shards got out of step".into());
        }
        let start = unix_ms() + START_DELAY_MS;
        for (child, _) in children.iter_mut() {
            if let Some(stdin) = child.stdin.as_mut() {
                writeln!(stdin, "{start}").map_err(|e| format!("starting a shard: {e}"))?;
                let _ = stdin.flush();
            }
        }
    }
}

/// A shard's side: says it is ready for `what` and waits for the parent's start.
pub async fn agreed_start(what: &str) -> Result<Instant, String> {
    println!("ready {what}");
    let _ = std::io::stdout().flush();
    let line = tokio::task::spawn_blocking(|| {
        let mut line = String::new();
        std::io::stdin().read_line(&mut line).map(|_| line)
    })
    .await
    .map_err(|e| format!("waiting for the start: {e}"))?
    .map_err(|e| format!("reading the start from the parent: {e}"))?;
    let start_ms: u64 = line
        .trim()
        .parse()
        .map_err(|_| format!("bad start time from the parent: {line:?}"))?;
    Ok(instant_of_unix_ms(start_ms))
}
