//! The load generator behind `benches/run`: drives a frontdesk server (or the Node.js
//! peer in `benches/peers/node`) over real WebSockets with the frames of the
//! `widget-protocol` crate and prints one JSON report on stdout.
//!
//! It is open-loop: every send, reload and reconnect has an intended time fixed before
//! the run starts, and latency is measured from that intended time, not from when the
//! load generator got round to it. A server that stalls therefore shows up as latency
//! instead of as a quietly lower offered load (no coordinated omission). Latencies go
//! into HDR histograms (microseconds, three significant digits).
//!
//! Many connections share one process (a small read buffer per socket keeps that cheap);
//! `--procs N` re-runs this program as N child processes, each holding a shard of the
//! connections, when one process's file limit is not enough. The children start their
//! schedules at one agreed wall-clock instant and the parent merges their histograms.
//!
//! ```text
//! loadgen MODE --addr 127.0.0.1:8080 [options]
//!   idle     ramp visitors (hello, welcome with history) and hold them idle
//!   relay    visitors send at an offered rate; send->ack and send->agent latency
//!   history  reloads of a long conversation and of one page, optionally under load
//!   timers   no_reply email prompts: lateness, none lost, none doubled
//!   churn    every visitor drops and reconnects within a window
//!   verify   every message listed in an acked log is still stored (after kill -9)
//!   probe    seed one visitor (`--seed N`), or wait until a visitor's history is served
//!            (`--token T`), for the cold-start measurement
//! ```
//!
//! Errors of the server or the network are counted in the report, never unwrapped; the
//! process exits non-zero only when it could not run at all or `verify` found a loss.
//! It must not be used against anything but loopback or the project's own test hosts.

use std::collections::{BTreeMap, BTreeSet, BinaryHeap, HashMap, HashSet};
use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::{json, Map, Value};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, Semaphore};
use tokio::time::{sleep_until, timeout, Instant};
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_tungstenite::WebSocketStream;
use widget_protocol::{
    decode, encode, AgentClient, AgentServer, AuthorKind, CaptureWhen, Chatflow, EmailCapture,
    Page, SummaryUpdates, VisitorClient, VisitorServer,
};

/// Resolves at `due`, to within a few microseconds. tokio's timers have millisecond
/// granularity and round up, which alone would add about half a millisecond (and up to
/// one) to every latency measured from an intended send time; so this sleeps to a
/// millisecond before and yields (this process has its own core) until the instant.
async fn at(due: Instant) {
    let coarse = due.checked_sub(Duration::from_millis(1));
    if let Some(coarse) = coarse.filter(|c| *c > Instant::now()) {
        sleep_until(coarse).await;
    }
    while Instant::now() < due {
        tokio::task::yield_now().await;
    }
}

type Ws = WebSocketStream<TcpStream>;

const USAGE: &str = "usage: loadgen MODE --addr HOST:PORT [--option value ...]
modes: idle relay history timers churn verify probe (see the module docs in examples/loadgen.rs)
common: --addr HOST:PORT  --inbox KEY (default)  --procs N (1)  --threads N (1)
        --source-ips N (8: loopback source addresses to spread connections over)";

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let code = match run(argv) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("loadgen: {e}");
            2
        }
    };
    std::process::exit(code);
}

fn run(argv: Vec<String>) -> Result<i32, String> {
    let args = Args::parse(argv)?;
    let procs: usize = args.num("procs", 1)?;
    if procs > 1 && args.opt("shard").is_none() {
        let report = run_sharded(&args, procs)?;
        return Ok(print_final(&args, &report));
    }
    let threads: usize = args.num("threads", 1)?;
    let runtime = if threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(threads)
            .enable_all()
            .build()
    }
    .map_err(|e| format!("cannot start the runtime: {e}"))?;
    if !args.flag("no-spin") {
        runtime.spawn(spin());
    }
    let report = runtime.block_on(run_mode(&args))?;
    if args.opt("shard").is_some() {
        println!("{}", report.to_wire());
        return Ok(0);
    }
    Ok(print_final(&args, &report))
}

fn print_final(args: &Args, report: &Report) -> i32 {
    let out = report.finish(&args.mode, args.echo());
    println!("{out}");
    if args.mode == "verify" && report.counter("lost") > 0 {
        return 1;
    }
    0
}

async fn run_mode(args: &Args) -> Result<Report, String> {
    let common = Common::from_args(args)?;
    let report = match args.mode.as_str() {
        "idle" => idle(&common, IdlePlan::from_args(args)?).await?,
        "relay" => relay(&common, RelayPlan::from_args(args, "")?).await?,
        "history" => history(&common, HistoryPlan::from_args(args)?).await?,
        "timers" => timers(&common, TimersPlan::from_args(args)?).await?,
        "churn" => churn(&common, ChurnPlan::from_args(args)?).await?,
        "verify" => verify(&common, VerifyPlan::from_args(args)?).await?,
        "probe" => probe(&common, args).await?,
        other => return Err(format!("unknown mode `{other}`\n{USAGE}")),
    };
    args.check_unused()?;
    Ok(report)
}

// ---------------------------------------------------------------------------------------
// Arguments: `MODE --key value --flag ...`, validated once into typed plans.

struct Args {
    mode: String,
    opts: BTreeMap<String, String>,
    used: Mutex<BTreeSet<String>>,
    raw: Vec<String>,
}

impl Args {
    fn parse(argv: Vec<String>) -> Result<Args, String> {
        let mut it = argv.iter().peekable();
        let mode = match it.next() {
            Some(m) if !m.starts_with("--") => m.clone(),
            _ => return Err(USAGE.to_string()),
        };
        let mut opts = BTreeMap::new();
        while let Some(a) = it.next() {
            let Some(key) = a.strip_prefix("--") else {
                return Err(format!("unexpected argument `{a}`\n{USAGE}"));
            };
            let value = match it.peek() {
                Some(v) if !v.starts_with("--") => it.next().cloned().unwrap_or_default(),
                _ => "true".to_string(),
            };
            opts.insert(key.to_string(), value);
        }
        Ok(Args {
            mode,
            opts,
            used: Mutex::new(BTreeSet::new()),
            raw: argv,
        })
    }

    fn opt(&self, key: &str) -> Option<String> {
        lock(&self.used).insert(key.to_string());
        self.opts.get(key).cloned()
    }

    fn str(&self, key: &str, default: &str) -> String {
        self.opt(key).unwrap_or_else(|| default.to_string())
    }

    fn num<T: FromStr>(&self, key: &str, default: T) -> Result<T, String> {
        match self.opt(key) {
            None => Ok(default),
            Some(v) => v
                .parse()
                .map_err(|_| format!("--{key}: `{v}` is not a valid number")),
        }
    }

    fn flag(&self, key: &str) -> bool {
        matches!(self.opt(key).as_deref(), Some("true" | "1" | "yes"))
    }

    fn secs(&self, key: &str, default: f64) -> Result<Duration, String> {
        let s: f64 = self.num(key, default)?;
        if !(0.0..=86_400.0).contains(&s) {
            return Err(format!("--{key} must be between 0 and 86400 seconds"));
        }
        Ok(Duration::from_secs_f64(s))
    }

    fn check_unused(&self) -> Result<(), String> {
        // The token options are accepted by every mode, so a driver may always pass them.
        const ALWAYS: [&str; 3] = ["agent-token", "agent-token-file", "nonce"];
        let used = lock(&self.used);
        let unknown: Vec<&String> = self
            .opts
            .keys()
            .filter(|k| !used.contains(*k) && !ALWAYS.contains(&k.as_str()))
            .collect();
        if unknown.is_empty() {
            Ok(())
        } else {
            Err(format!("unknown options for {}: {unknown:?}", self.mode))
        }
    }

    /// The options as given, for the report (tokens left out).
    fn echo(&self) -> Value {
        let mut m = Map::new();
        for (k, v) in &self.opts {
            if k.contains("token") || k == "shard" || k == "shards" {
                continue;
            }
            let value = if let Ok(i) = v.parse::<i64>() {
                json!(i)
            } else {
                v.parse::<f64>()
                    .ok()
                    .and_then(|f| serde_json::Number::from_f64(f).map(Value::Number))
                    .unwrap_or_else(|| Value::String(v.clone()))
            };
            m.insert(k.clone(), value);
        }
        Value::Object(m)
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

// ---------------------------------------------------------------------------------------
// What every mode shares: where the server is, which shard this process is, and when
// the schedule starts.

#[derive(Clone)]
struct Common {
    addr: String,
    inbox: String,
    shard: usize,
    shards: usize,
    /// Unique per run; message texts carry it so agents ignore other runs' traffic.
    nonce: String,
}

impl Common {
    fn from_args(args: &Args) -> Result<Common, String> {
        let addr = args.opt("addr").ok_or("--addr HOST:PORT is required")?;
        let shards: usize = args.num("shards", 1)?;
        let shard: usize = args.num("shard", 0)?;
        if shards == 0 || shard >= shards {
            return Err("--shard must be below --shards".into());
        }
        args.opt("procs");
        args.opt("threads");
        let sources: usize = args.num("source-ips", 8)?;
        if !(1..=250).contains(&sources) {
            return Err("--source-ips must be between 1 and 250".into());
        }
        SOURCE_IPS.store(sources, std::sync::atomic::Ordering::Relaxed);
        let nonce = args.str("nonce", &format!("{:x}", unix_nanos() % 0xffff_ffff));
        Ok(Common {
            addr,
            inbox: args.str("inbox", "default"),
            shard,
            shards,
            nonce,
        })
    }

    /// Whether global index `i` (a visitor, an agent, a reload) belongs to this shard.
    fn mine(&self, i: usize) -> bool {
        i % self.shards == self.shard
    }

    /// Waits until every shard is ready and returns the schedule's start. A lone process
    /// starts shortly after it is ready; a child tells its parent `ready` on stdout and
    /// reads the agreed start (Unix milliseconds) from stdin.
    async fn start(&self, what: &str) -> Result<Instant, String> {
        if self.shards == 1 {
            return Ok(Instant::now() + Duration::from_millis(100));
        }
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

    fn visitor_path(&self) -> String {
        format!("/ws/visitor?inbox={}", self.inbox)
    }
}

fn unix_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn unix_ms() -> u64 {
    unix_nanos() / 1_000_000
}

fn instant_of_unix_ms(ms: u64) -> Instant {
    let now_ms = unix_ms();
    let now = Instant::now();
    if ms >= now_ms {
        now + Duration::from_millis(ms - now_ms)
    } else {
        now.checked_sub(Duration::from_millis(now_ms - ms))
            .unwrap_or(now)
    }
}

/// The Unix time in nanoseconds of an `Instant`, for stamps that cross processes.
fn unix_nanos_of(at: Instant) -> u64 {
    let now = Instant::now();
    let now_ns = unix_nanos();
    if at >= now {
        now_ns + (at - now).as_nanos() as u64
    } else {
        now_ns.saturating_sub((now - at).as_nanos() as u64)
    }
}

fn micros(d: Duration) -> u64 {
    d.as_micros().min(u64::MAX as u128) as u64
}

// ---------------------------------------------------------------------------------------
// The report: counters, histograms (µs) and facts. Children send theirs to the parent in
// a lossless "wire" form; the parent merges and prints percentiles.

#[derive(Default)]
struct Report {
    counters: BTreeMap<String, u64>,
    hists: BTreeMap<String, Histogram<u64>>,
    info: Map<String, Value>,
}

type Shared = Arc<Mutex<Report>>;

fn new_hist() -> Histogram<u64> {
    // 1 µs to one hour at three significant digits; bounds are constants that are valid.
    Histogram::new_with_bounds(1, 3_600_000_000, 3)
        .unwrap_or_else(|_| Histogram::new(3).unwrap_or_else(|_| unreachable!()))
}

impl Report {
    fn add(&mut self, key: &str, n: u64) {
        *self.counters.entry(key.to_string()).or_insert(0) += n;
    }

    fn counter(&self, key: &str) -> u64 {
        self.counters.get(key).copied().unwrap_or(0)
    }

    fn record(&mut self, key: &str, us: u64) {
        self.hists
            .entry(key.to_string())
            .or_insert_with(new_hist)
            .saturating_record(us.max(1));
    }

    fn set(&mut self, key: &str, v: Value) {
        self.info.insert(key.to_string(), v);
    }

    fn merge(&mut self, other: Report) {
        for (k, v) in other.counters {
            self.add(&k, v);
        }
        for (k, h) in other.hists {
            let mine = self.hists.entry(k).or_insert_with(new_hist);
            for v in h.iter_recorded() {
                mine.saturating_record_n(v.value_iterated_to(), v.count_at_value());
            }
        }
        for (k, v) in other.info {
            let merged = match (self.info.get(&k), &v) {
                (Some(Value::Number(a)), Value::Number(b)) if k.ends_with("_start_unix_ms") => {
                    json!(a.as_u64().unwrap_or(0).min(b.as_u64().unwrap_or(0)))
                }
                (Some(Value::Number(a)), Value::Number(b)) if k.ends_with("_end_unix_ms") => {
                    json!(a.as_u64().unwrap_or(0).max(b.as_u64().unwrap_or(0)))
                }
                _ => v,
            };
            self.info.insert(k, merged);
        }
    }

    fn to_wire(&self) -> Value {
        let hists: Map<String, Value> = self
            .hists
            .iter()
            .map(|(k, h)| {
                let pairs: Vec<[u64; 2]> = h
                    .iter_recorded()
                    .map(|v| [v.value_iterated_to(), v.count_at_value()])
                    .collect();
                (k.clone(), json!(pairs))
            })
            .collect();
        json!({"counters": self.counters, "hists": hists, "info": self.info})
    }

    fn from_wire(v: &Value) -> Result<Report, String> {
        let mut r = Report::default();
        let counters = v["counters"]
            .as_object()
            .ok_or("wire report: no counters")?;
        for (k, n) in counters {
            r.add(k, n.as_u64().unwrap_or(0));
        }
        if let Some(hists) = v["hists"].as_object() {
            for (k, pairs) in hists {
                let h = r.hists.entry(k.clone()).or_insert_with(new_hist);
                for p in pairs.as_array().into_iter().flatten() {
                    let value = p[0].as_u64().unwrap_or(1);
                    let count = p[1].as_u64().unwrap_or(0);
                    h.saturating_record_n(value.max(1), count);
                }
            }
        }
        if let Some(info) = v["info"].as_object() {
            r.info = info.clone();
        }
        Ok(r)
    }

    fn finish(&self, mode: &str, params: Value) -> Value {
        let ms = |us: u64| (us as f64 / 1000.0 * 1000.0).round() / 1000.0;
        let latency: Map<String, Value> = self
            .hists
            .iter()
            .map(|(k, h)| {
                (
                    k.clone(),
                    json!({
                        "count": h.len(),
                        "min_ms": ms(h.min()),
                        "p50_ms": ms(h.value_at_quantile(0.5)),
                        "p90_ms": ms(h.value_at_quantile(0.9)),
                        "p99_ms": ms(h.value_at_quantile(0.99)),
                        "p999_ms": ms(h.value_at_quantile(0.999)),
                        "max_ms": ms(h.max()),
                        "mean_ms": (h.mean() / 1000.0 * 1000.0).round() / 1000.0,
                    }),
                )
            })
            .collect();
        json!({
            "mode": mode,
            "params": params,
            "counters": self.counters,
            "latency": latency,
            "info": self.info,
        })
    }
}

fn shared() -> Shared {
    Arc::new(Mutex::new(Report::default()))
}

fn count(r: &Shared, key: &str) {
    lock(r).add(key, 1);
}

fn take(r: Shared) -> Report {
    match Arc::try_unwrap(r) {
        Ok(m) => m.into_inner().unwrap_or_else(|e| e.into_inner()),
        Err(arc) => std::mem::take(&mut *lock(&arc)),
    }
}

// ---------------------------------------------------------------------------------------
// Sharding across processes.

fn run_sharded(args: &Args, procs: usize) -> Result<Report, String> {
    let exe = std::env::current_exe().map_err(|e| format!("cannot find my own binary: {e}"))?;
    let mut base: Vec<String> = Vec::new();
    let mut skip = false;
    for (i, a) in args.raw.iter().enumerate() {
        if skip {
            skip = false;
            continue;
        }
        if a == "--procs" {
            skip = args.raw.get(i + 1).is_some_and(|v| !v.starts_with("--"));
            continue;
        }
        base.push(a.clone());
    }
    let nonce = format!("{:x}", unix_nanos() % 0xffff_ffff);
    if args.opt("nonce").is_none() {
        base.push("--nonce".into());
        base.push(nonce);
    }
    let mut children = Vec::new();
    for shard in 0..procs {
        let mut cmd = Command::new(&exe);
        cmd.args(&base)
            .arg("--shard")
            .arg(shard.to_string())
            .arg("--shards")
            .arg(procs.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start shard {shard}: {e}"))?;
        let stdout = child.stdout.take().ok_or("no stdout of a shard")?;
        children.push((child, BufReader::new(stdout)));
    }
    // Every schedule phase of a mode ("ready <phase>") is started at one agreed instant.
    let mut lines: Vec<Option<String>> = vec![None; procs];
    let mut report = Report::default();
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
            break;
        }
        if readies != procs {
            return Err("the shards got out of step".into());
        }
        let start = unix_ms() + 300;
        for (child, _) in children.iter_mut() {
            if let Some(stdin) = child.stdin.as_mut() {
                writeln!(stdin, "{start}").map_err(|e| format!("starting a shard: {e}"))?;
                let _ = stdin.flush();
            }
        }
    }
    for (i, (mut child, mut out)) in children.into_iter().enumerate() {
        let mut text = lines[i].take().unwrap_or_default();
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut out, &mut rest)
            .map_err(|e| format!("reading shard {i}: {e}"))?;
        text.push_str(&rest);
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

// ---------------------------------------------------------------------------------------
// Connections and frames.

#[derive(Debug)]
enum LgError {
    Connect(String),
    Ws(String),
    Closed(Option<u16>),
    Timeout(&'static str),
    Protocol(String),
}

impl LgError {
    /// The counter this error is reported under. With `LOADGEN_VERBOSE` set, the first
    /// errors are also printed in full on stderr.
    fn key(&self) -> String {
        static SHOWN: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        if std::env::var_os("LOADGEN_VERBOSE").is_some()
            && SHOWN.fetch_add(1, std::sync::atomic::Ordering::Relaxed) < 20
        {
            eprintln!("loadgen: {self}");
        }
        match self {
            LgError::Connect(_) => "err_connect".into(),
            LgError::Ws(_) => "err_socket".into(),
            LgError::Closed(Some(code)) => format!("err_closed_{code}"),
            LgError::Closed(None) => "err_closed".into(),
            LgError::Timeout(what) => format!("err_timeout_{what}"),
            LgError::Protocol(_) => "err_protocol".into(),
        }
    }
}

impl std::fmt::Display for LgError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LgError::Connect(e) => write!(f, "connect: {e}"),
            LgError::Ws(e) => write!(f, "websocket: {e}"),
            LgError::Closed(c) => write!(f, "closed by the server ({c:?})"),
            LgError::Timeout(w) => write!(f, "timed out waiting for {w}"),
            LgError::Protocol(e) => write!(f, "protocol: {e}"),
        }
    }
}

fn ws_config() -> WebSocketConfig {
    // A small read buffer: many thousands of idle sockets must stay cheap here too.
    WebSocketConfig::default()
        .read_buffer_size(4096)
        .write_buffer_size(0)
}

/// How many loopback source addresses (127.0.0.1, 127.0.0.2, …) connections are spread
/// over. Linux hands `connect()` the even half of the ephemeral port range first and slows
/// down sharply once it is used up (about 14,000 connections to one address with the
/// default range); each extra source address has a port space of its own.
static SOURCE_IPS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(8);
static NEXT_SOURCE: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

async fn connect(addr: &str, path: &str) -> Result<Ws, LgError> {
    let target: std::net::SocketAddr = tokio::net::lookup_host(addr)
        .await
        .map_err(|e| LgError::Connect(e.to_string()))?
        .next()
        .ok_or_else(|| LgError::Connect(format!("{addr} does not resolve")))?;
    let sources = SOURCE_IPS.load(std::sync::atomic::Ordering::Relaxed);
    let tcp = match target.ip() {
        std::net::IpAddr::V4(ip) if ip.is_loopback() && sources > 1 => {
            let n = NEXT_SOURCE.fetch_add(1, std::sync::atomic::Ordering::Relaxed) % sources;
            let socket =
                tokio::net::TcpSocket::new_v4().map_err(|e| LgError::Connect(e.to_string()))?;
            let source = std::net::Ipv4Addr::new(127, 0, 0, 1 + n as u8);
            socket
                .bind((source, 0).into())
                .map_err(|e| LgError::Connect(e.to_string()))?;
            socket.connect(target).await
        }
        _ => TcpStream::connect(target).await,
    }
    .map_err(|e| LgError::Connect(e.to_string()))?;
    let _ = tcp.set_nodelay(true);
    let url = format!("ws://{addr}{path}");
    let (ws, _) = tokio_tungstenite::client_async_with_config(url, tcp, Some(ws_config()))
        .await
        .map_err(|e| LgError::Connect(e.to_string()))?;
    Ok(ws)
}

/// The next text frame; pings are answered by tungstenite while we read.
async fn next_text(ws: &mut Ws) -> Result<String, LgError> {
    loop {
        match ws.next().await {
            Some(Ok(WsMessage::Text(t))) => return Ok(t.as_str().to_owned()),
            Some(Ok(WsMessage::Close(c))) => {
                return Err(LgError::Closed(c.map(|c| u16::from(c.code))))
            }
            Some(Ok(_)) => continue,
            Some(Err(e)) => return Err(LgError::Ws(e.to_string())),
            None => return Err(LgError::Closed(None)),
        }
    }
}

/// Keeps the load generator's thread from ever sleeping: it polls its sockets between
/// tasks instead of waiting in the kernel. It has a core of its own, and on this VM a
/// sleeping core takes 100–400 µs to wake when a packet arrives (a ping-pong between two
/// cores: 160 µs round trip when the receiver sleeps, 48 when it polls), which would be
/// counted against whichever server is measured. `--no-spin` turns it off.
async fn spin() {
    loop {
        tokio::task::yield_now().await;
    }
}

async fn send_frame<T: serde::Serialize>(ws: &mut Ws, frame: &T) -> Result<(), LgError> {
    ws.send(WsMessage::text(encode(frame)))
        .await
        .map_err(|e| LgError::Ws(e.to_string()))
}

/// Queues a frame without flushing; a later `flush` sends everything queued at once.
async fn feed_frame<T: serde::Serialize>(ws: &mut Ws, frame: &T) -> Result<(), LgError> {
    ws.feed(WsMessage::text(encode(frame)))
        .await
        .map_err(|e| LgError::Ws(e.to_string()))
}

async fn next_visitor(ws: &mut Ws) -> Result<VisitorServer, LgError> {
    let text = next_text(ws).await?;
    decode(&text).map_err(|e| LgError::Protocol(e.to_string()))
}

async fn next_agent(ws: &mut Ws) -> Result<AgentServer, LgError> {
    let text = next_text(ws).await?;
    decode(&text).map_err(|e| LgError::Protocol(e.to_string()))
}

const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(30);

/// A visitor connection after hello/welcome.
struct Visitor {
    ws: Ws,
    token: String,
    welcome_messages: Vec<widget_protocol::Message>,
    has_more: bool,
    /// The prompt the welcome says is sent and unanswered (an extension of `welcome`).
    email_prompt: Option<String>,
}

async fn visitor_connect(
    c: &Common,
    token: Option<String>,
    resume_after: Option<u64>,
) -> Result<Visitor, LgError> {
    let fut = async {
        let mut ws = connect(&c.addr, &c.visitor_path()).await?;
        let hello = VisitorClient::Hello {
            visitor_token: token,
            resume_after,
            page: Some(Page {
                url: Some("http://127.0.0.1/loadgen".into()),
                title: Some("loadgen".into()),
            }),
        };
        send_frame(&mut ws, &hello).await?;
        loop {
            match next_visitor(&mut ws).await? {
                VisitorServer::Welcome(w) => {
                    return Ok(Visitor {
                        ws,
                        token: w.visitor_token,
                        welcome_messages: w.messages,
                        has_more: w.has_more,
                        email_prompt: w.email_prompt,
                    })
                }
                VisitorServer::Error(e) => {
                    return Err(LgError::Protocol(format!("hello: {}", e.code.as_str())))
                }
                _ => continue,
            }
        }
    };
    timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .unwrap_or(Err(LgError::Timeout("welcome")))
}

async fn agent_connect(c: &Common, token: &str) -> Result<Ws, LgError> {
    let fut = async {
        let mut ws = connect(&c.addr, "/ws/agent").await?;
        send_frame(
            &mut ws,
            // Like the peer, one frame per agent per message: the agent keeps its list
            // from the `message` frames (the `changes` extension of `auth`).
            &AgentClient::Auth {
                token: token.to_string(),
                summaries: SummaryUpdates::Changes,
            },
        )
        .await?;
        loop {
            match next_agent(&mut ws).await? {
                AgentServer::Ready { .. } => return Ok(ws),
                AgentServer::Error(e) => {
                    return Err(LgError::Protocol(format!("auth: {}", e.code.as_str())))
                }
                _ => continue,
            }
        }
    };
    timeout(HANDSHAKE_TIMEOUT, fut)
        .await
        .unwrap_or(Err(LgError::Timeout("ready")))
}

fn agent_token(args: &Args) -> Result<String, String> {
    if let Some(t) = args.opt("agent-token") {
        return Ok(t);
    }
    if let Some(path) = args.opt("agent-token-file") {
        return std::fs::read_to_string(&path)
            .map(|s| s.trim().to_string())
            .map_err(|e| format!("--agent-token-file {path}: {e}"));
    }
    Err("--agent-token or --agent-token-file is required".into())
}

/// Connects this shard's share of visitors `0..n` as new visitors, 256 handshakes at a
/// time; returns each with its global index (a failed one is counted and left out).
async fn connect_new_visitors(c: &Common, n: usize, report: &Shared) -> Vec<(usize, Visitor)> {
    let sem = Arc::new(Semaphore::new(256));
    let mut conns = Vec::new();
    for g in (0..n).filter(|g| c.mine(*g)) {
        let c = c.clone();
        let sem = sem.clone();
        conns.push((
            g,
            tokio::spawn(async move {
                let _permit = sem.acquire_owned().await;
                visitor_connect(&c, None, None).await
            }),
        ));
    }
    let mut visitors = Vec::new();
    for (g, t) in conns {
        match t.await {
            Ok(Ok(v)) => visitors.push((g, v)),
            Ok(Err(e)) => count(report, &format!("visitor_{}", e.key())),
            Err(_) => count(report, "task_panicked"),
        }
    }
    visitors
}

/// Makes `count` visitors that each have `messages` stored messages, `concurrency` at a
/// time, and returns their tokens (a failed one is counted and left out). Sends are
/// pipelined on one connection; stay within the server's per-connection rate limit.
async fn seed_visitors(
    c: &Common,
    visitors: usize,
    messages: usize,
    concurrency: usize,
    report: &Shared,
) -> Vec<String> {
    let sem = Arc::new(Semaphore::new(concurrency.max(1)));
    let mut tasks = Vec::new();
    for i in 0..visitors {
        let c = c.clone();
        let sem = sem.clone();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await.ok()?;
            match seed_one(&c, None, i, 0, messages).await {
                Ok(token) => Some(token),
                Err(e) => {
                    count(&report, &format!("seed_{}", e.key()));
                    None
                }
            }
        }));
    }
    let mut tokens = Vec::new();
    for t in tasks {
        if let Ok(Some(token)) = t.await {
            tokens.push(token);
        }
    }
    tokens
}

/// Sends messages `first..first+n` as visitor `token` (a new visitor when None) on one
/// connection and waits for every ack. Returns the visitor's token.
async fn seed_one(
    c: &Common,
    token: Option<String>,
    who: usize,
    first: usize,
    n: usize,
) -> Result<String, LgError> {
    let mut v = visitor_connect(c, token, None).await?;
    for k in first..first + n {
        let send = VisitorClient::Send {
            client_msg_id: format!("seed-{}-{who}-{k}", c.nonce),
            text: format!("seed message {k} of visitor {who}"),
        };
        feed_frame(&mut v.ws, &send).await?;
    }
    v.ws.flush().await.map_err(|e| LgError::Ws(e.to_string()))?;
    let mut acked = 0;
    let fut = async {
        while acked < n {
            match next_visitor(&mut v.ws).await? {
                VisitorServer::Ack { .. } => acked += 1,
                VisitorServer::Error(e) => {
                    return Err(LgError::Protocol(format!("seed send: {}", e.code.as_str())))
                }
                _ => {}
            }
        }
        Ok(())
    };
    timeout(Duration::from_secs(60), fut)
        .await
        .unwrap_or(Err(LgError::Timeout("seed acks")))?;
    let _ = v.ws.close(None).await;
    Ok(v.token)
}

fn padded_text(head: String, bytes: usize) -> String {
    let mut t = head;
    if t.len() < bytes {
        t.push(' ');
        while t.len() < bytes {
            t.push('x');
        }
    }
    t
}

/// Reads `lg <nonce> <intended unix ns> ...` back out of a message text.
fn parse_stamp(text: &str, nonce: &str) -> Option<u64> {
    let mut parts = text.split(' ');
    if parts.next()? != "lg" || parts.next()? != nonce {
        return None;
    }
    parts.next()?.parse().ok()
}

// ---------------------------------------------------------------------------------------
// idle: ramp N visitor connections (hello, welcome with history) and hold them.

struct IdlePlan {
    connections: usize,
    ramp: Duration,
    hold: Duration,
    history_visitors: usize,
    history_messages: usize,
}

impl IdlePlan {
    fn from_args(a: &Args) -> Result<IdlePlan, String> {
        let connections = a.num("connections", 1000)?;
        Ok(IdlePlan {
            connections,
            ramp: a.secs("ramp-secs", 10.0)?,
            hold: a.secs("hold-secs", 10.0)?,
            history_visitors: a.num("history-visitors", connections.min(1000))?,
            history_messages: a.num("history-messages", 5)?,
        })
    }
}

async fn idle(c: &Common, p: IdlePlan) -> Result<Report, String> {
    let report = shared();
    let seeded_here = (0..p.history_visitors).filter(|i| c.mine(*i)).count();
    let tokens = Arc::new(seed_visitors(c, seeded_here, p.history_messages, 64, &report).await);
    lock(&report).add("seeded_visitors", tokens.len() as u64);
    let start = c.start("ramp").await?;
    let ramp_end = start + p.ramp;
    let hold_end = ramp_end + p.hold;
    lock(&report).set(
        "ramp_start_unix_ms",
        json!(unix_nanos_of(start) / 1_000_000),
    );
    lock(&report).set(
        "hold_start_unix_ms",
        json!(unix_nanos_of(ramp_end) / 1_000_000),
    );
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let progress = {
        let connected = connected.clone();
        let shard = c.shard;
        tokio::spawn(async move {
            loop {
                tokio::time::sleep(Duration::from_secs(1)).await;
                let n = connected.load(std::sync::atomic::Ordering::Relaxed);
                eprintln!(
                    "{{\"progress\":\"idle\",\"shard\":{shard},\"unix_ms\":{},\"connected\":{n}}}",
                    unix_ms()
                );
            }
        })
    };
    let mut tasks = Vec::new();
    let mut local = 0usize;
    for i in 0..p.connections {
        if !c.mine(i) {
            continue;
        }
        let due = start + p.ramp.mul_f64(i as f64 / p.connections.max(1) as f64);
        let token = if tokens.is_empty() {
            None
        } else {
            Some(tokens[local % tokens.len()].clone())
        };
        local += 1;
        let c = c.clone();
        let report = report.clone();
        let connected = connected.clone();
        tasks.push(tokio::spawn(async move {
            at(due).await;
            let v = match visitor_connect(&c, token, None).await {
                Ok(v) => v,
                Err(e) => {
                    count(&report, &e.key());
                    return;
                }
            };
            {
                let mut r = lock(&report);
                r.record("hello_welcome", micros(due.elapsed()));
                r.add("connected", 1);
                r.add("welcome_messages", v.welcome_messages.len() as u64);
            }
            connected.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let mut ws = v.ws;
            // Hold: keep reading so pings are answered; count what arrives.
            let mut pings = 0u64;
            let end = loop {
                tokio::select! {
                    m = ws.next() => match m {
                        Some(Ok(WsMessage::Ping(_))) => pings += 1,
                        Some(Ok(WsMessage::Close(cf))) => break Some(LgError::Closed(cf.map(|c| u16::from(c.code)))),
                        Some(Ok(_)) => {}
                        Some(Err(e)) => break Some(LgError::Ws(e.to_string())),
                        None => break Some(LgError::Closed(None)),
                    },
                    _ = sleep_until(hold_end) => break None,
                }
            };
            connected.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
            {
                let mut r = lock(&report);
                r.add("pings", pings);
                match end {
                    Some(e) => r.add(&format!("dropped_{}", e.key()), 1),
                    None => r.add("held_to_end", 1),
                }
            }
            let _ = ws.close(None).await;
        }));
    }
    for t in tasks {
        if t.await.is_err() {
            count(&report, "task_panicked");
        }
    }
    progress.abort();
    let mut r = take(report);
    r.set("hold_end_unix_ms", json!(unix_ms()));
    Ok(r)
}

// ---------------------------------------------------------------------------------------
// relay: V visitors send at an offered rate R; A agents receive everything.

struct RelayPlan {
    visitors: usize,
    agents: usize,
    rate: f64,
    warmup: Duration,
    duration: Duration,
    drain: Duration,
    text_bytes: usize,
    measure_agents: usize,
    slow_agents: usize,
    agent_token: String,
    acked_log: Option<String>,
}

impl RelayPlan {
    /// `prefix` lets the history mode reuse the plan for its background load (`bg-`).
    fn from_args(a: &Args, prefix: &str) -> Result<RelayPlan, String> {
        let k = |s: &str| format!("{prefix}{s}");
        let agents: usize = a.num(&k("agents"), 50)?;
        let rate: f64 = a.num(&k("rate"), 1000.0)?;
        if rate <= 0.0 {
            return Err("--rate must be positive".into());
        }
        Ok(RelayPlan {
            visitors: a.num(&k("visitors"), 1000)?.max(1),
            agents,
            rate,
            warmup: a.secs(&k("warmup-secs"), 2.0)?,
            duration: a.secs(&k("duration-secs"), 10.0)?,
            drain: a.secs(&k("drain-secs"), 3.0)?,
            text_bytes: a.num(&k("text-bytes"), 64)?,
            measure_agents: a.num(&k("measure-agents"), agents.min(5))?,
            slow_agents: a.num(&k("slow-agents"), 0)?,
            agent_token: if agents + a.num(&k("slow-agents"), 0usize)? > 0 {
                agent_token(a)?
            } else {
                String::new()
            },
            acked_log: a.opt(&k("acked-log")),
        })
    }
}

/// One acked message, as the kill -9 checker needs it.
struct AckedRecord {
    token: String,
    conversation_id: String,
    seq: u64,
    id: String,
}

async fn relay(c: &Common, p: RelayPlan) -> Result<Report, String> {
    let report = shared();
    let p = Arc::new(p);
    // Agents first, so they see every message.
    let mut agents = Vec::new();
    for a in 0..p.agents {
        if !c.mine(a) {
            continue;
        }
        match agent_connect(c, &p.agent_token).await {
            Ok(ws) => agents.push((a, ws)),
            Err(e) => count(&report, &format!("agent_{}", e.key())),
        }
    }
    let mut slow = Vec::new();
    for a in 0..p.slow_agents {
        if !c.mine(a) {
            continue;
        }
        match agent_connect(c, &p.agent_token).await {
            Ok(ws) => slow.push(ws),
            Err(e) => count(&report, &format!("slow_agent_{}", e.key())),
        }
    }
    // Then the visitors.
    let visitors = connect_new_visitors(c, p.visitors, &report).await;
    {
        let mut r = lock(&report);
        r.add("visitors_connected", visitors.len() as u64);
        r.add("agents_connected", agents.len() as u64);
        r.add("slow_agents_connected", slow.len() as u64);
    }

    let start = c.start("relay").await?;
    let measure_from = start + p.warmup;
    let sched_end = measure_from + p.duration;
    let stop = sched_end + p.drain;
    {
        let mut r = lock(&report);
        r.set(
            "measure_start_unix_ms",
            json!(unix_nanos_of(measure_from) / 1_000_000),
        );
        r.set(
            "measure_end_unix_ms",
            json!(unix_nanos_of(sched_end) / 1_000_000),
        );
        r.set("offered_rate", json!(p.rate));
    }
    let start_unix_ns = unix_nanos_of(start);
    let measure_from_unix_ns = start_unix_ns + p.warmup.as_nanos() as u64;
    let mut tasks = Vec::new();
    for (a, ws) in agents {
        let c = c.clone();
        let report = report.clone();
        let measure = a < p.measure_agents;
        tasks.push(tokio::spawn(async move {
            if measure {
                agent_reader(c, ws, measure_from_unix_ns, stop, report).await;
            } else {
                agent_drain(ws, stop, report).await;
            }
            Vec::new()
        }));
    }
    for (g, v) in visitors {
        let c = c.clone();
        let report = report.clone();
        let p = p.clone();
        tasks.push(tokio::spawn(async move {
            relay_visitor(c, p, g, v, start, start_unix_ns, stop, report).await
        }));
    }
    let mut acked: Vec<AckedRecord> = Vec::new();
    for t in tasks {
        match t.await {
            Ok(mut recs) => acked.append(&mut recs),
            Err(_) => count(&report, "task_panicked"),
        }
    }
    // Slow agents never read during the run; see whether the server dropped them.
    if !slow.is_empty() {
        let results = futures::future::join_all(slow.into_iter().map(drain_slow)).await;
        let mut r = lock(&report);
        for res in results {
            r.add(&format!("slow_agent_{res}"), 1);
        }
    }
    if let Some(path) = &p.acked_log {
        let path = if c.shards > 1 {
            format!("{path}.{}", c.shard)
        } else {
            path.clone()
        };
        write_acked_log(&path, &acked).map_err(|e| format!("writing {path}: {e}"))?;
    }
    Ok(take(report))
}

/// Reads what a non-reading agent was sent, for at most a few seconds, and says how its
/// connection ended: `dropped_CODE` (the server closed it), `open` or `error`.
async fn drain_slow(mut ws: Ws) -> String {
    let fut = async {
        loop {
            match ws.next().await {
                Some(Ok(WsMessage::Close(cf))) => {
                    return format!(
                        "dropped_{}",
                        cf.map(|c| u16::from(c.code).to_string())
                            .unwrap_or_else(|| "none".into())
                    )
                }
                Some(Ok(_)) => {}
                Some(Err(_)) => return "reset".to_string(),
                None => return "dropped_eof".to_string(),
            }
        }
    };
    timeout(Duration::from_secs(5), fut)
        .await
        .unwrap_or_else(|_| "open".to_string())
}

fn write_acked_log(path: &str, acked: &[AckedRecord]) -> std::io::Result<()> {
    let mut f = std::io::BufWriter::new(std::fs::File::create(path)?);
    for a in acked {
        writeln!(f, "{}\t{}\t{}\t{}", a.token, a.conversation_id, a.seq, a.id)?;
    }
    f.flush()
}

/// An agent that only has to keep up: it reads the socket's bytes and throws them away
/// without parsing WebSocket frames, so that reading every agent's copy of every message
/// costs the load generator (on the same machine) as little as possible. It sends no pongs;
/// runs are shorter than two heartbeats.
async fn agent_drain(ws: Ws, stop: Instant, report: Shared) {
    use tokio::io::AsyncReadExt;
    let mut tcp = ws.into_inner();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bytes = 0u64;
    let end = loop {
        tokio::select! {
            n = tcp.read(&mut buf) => match n {
                Ok(0) => break Some("agent_drain_eof"),
                Ok(n) => bytes += n as u64,
                Err(_) => break Some("agent_drain_error"),
            },
            _ = sleep_until(stop) => break None,
        }
    };
    let mut r = lock(&report);
    r.add("agent_drain_bytes", bytes);
    if let Some(e) = end {
        r.add(e, 1);
    }
}

/// An agent that decodes every frame and measures send→agent latency.
async fn agent_reader(
    c: Common,
    mut ws: Ws,
    measure_from_unix_ns: u64,
    stop: Instant,
    report: Shared,
) {
    let mut received = 0u64;
    let mut frames = 0u64;
    let end = loop {
        tokio::select! {
            m = ws.next() => match m {
                Some(Ok(WsMessage::Text(t))) => {
                    frames += 1;
                    let now_ns = unix_nanos();
                    match decode::<AgentServer>(t.as_str()) {
                        Ok(AgentServer::Message { message }) if message.author.kind == AuthorKind::Visitor => {
                            if let Some(intended) = parse_stamp(&message.text, &c.nonce) {
                                if intended >= measure_from_unix_ns {
                                    received += 1;
                                    lock(&report).record("send_agent", now_ns.saturating_sub(intended) / 1000);
                                }
                            }
                        }
                        Ok(_) => {}
                        Err(_) => count(&report, "agent_undecodable"),
                    }
                }
                Some(Ok(WsMessage::Close(cf))) => break Some(LgError::Closed(cf.map(|c| u16::from(c.code)))),
                Some(Ok(_)) => {}
                Some(Err(e)) => break Some(LgError::Ws(e.to_string())),
                None => break Some(LgError::Closed(None)),
            },
            _ = sleep_until(stop) => break None,
        }
    };
    {
        let mut r = lock(&report);
        r.add("agent_frames", frames);
        r.add("agent_measured_received", received);
        r.add("agents_measuring", 1);
        if let Some(e) = end {
            r.add(&format!("agent_{}", e.key()), 1);
        }
    }
    let _ = ws.close(None).await;
}

#[allow(clippy::too_many_arguments)]
async fn relay_visitor(
    c: Common,
    p: Arc<RelayPlan>,
    g: usize,
    v: Visitor,
    start: Instant,
    start_unix_ns: u64,
    stop: Instant,
    report: Shared,
) -> Vec<AckedRecord> {
    let Visitor { mut ws, token, .. } = v;
    let per_visitor_gap = p.visitors as f64 / p.rate; // seconds between this visitor's sends
    let phase = g as f64 / p.rate;
    let offset = |k: u64| Duration::from_secs_f64(phase + k as f64 * per_visitor_gap);
    let total_span = p.warmup + p.duration;
    let warm_k = {
        let mut k = 0u64;
        while offset(k) < p.warmup {
            k += 1;
        }
        k
    };
    let mut total_k = warm_k;
    while offset(total_k) < total_span {
        total_k += 1;
    }
    let mut next_k = 0u64;
    let mut pending: HashMap<u64, Instant> = HashMap::new();
    let mut acked_recs = Vec::new();
    let mut last_seq = 0u64;
    let mut local = Report::default();
    let end_err = loop {
        if next_k >= total_k && pending.is_empty() {
            break None;
        }
        let due = if next_k < total_k {
            start + offset(next_k)
        } else {
            stop
        };
        tokio::select! {
            _ = at(due), if next_k < total_k => {
                // Send everything that is due (more than one when we fell behind).
                let now = Instant::now();
                let mut err = None;
                while next_k < total_k && start + offset(next_k) <= now {
                    let intended = start + offset(next_k);
                    let intended_ns = start_unix_ns + offset(next_k).as_nanos() as u64;
                    let frame = VisitorClient::Send {
                        client_msg_id: format!("{}-{g}-{next_k}", c.nonce),
                        text: padded_text(format!("lg {} {intended_ns} {g}", c.nonce), p.text_bytes),
                    };
                    if let Err(e) = feed_frame(&mut ws, &frame).await {
                        err = Some(e);
                        break;
                    }
                    pending.insert(next_k, intended);
                    local.add(if next_k < warm_k { "warmup_sent" } else { "sent" }, 1);
                    next_k += 1;
                }
                if err.is_none() {
                    if let Err(e) = ws.flush().await {
                        err = Some(LgError::Ws(e.to_string()));
                    }
                }
                if let Some(e) = err {
                    break Some(e);
                }
            }
            m = ws.next() => {
                let now = Instant::now();
                let text = match m {
                    Some(Ok(WsMessage::Text(t))) => t,
                    Some(Ok(WsMessage::Close(cf))) => break Some(LgError::Closed(cf.map(|c| u16::from(c.code)))),
                    Some(Ok(_)) => continue,
                    Some(Err(e)) => break Some(LgError::Ws(e.to_string())),
                    None => break Some(LgError::Closed(None)),
                };
                match decode::<VisitorServer>(text.as_str()) {
                    Ok(VisitorServer::Ack { client_msg_id, message }) => {
                        let Some(k) = client_msg_id.rsplit('-').next().and_then(|k| k.parse::<u64>().ok()) else {
                            local.add("ack_unknown", 1);
                            continue;
                        };
                        let Some(intended) = pending.remove(&k) else {
                            local.add("ack_duplicate", 1);
                            continue;
                        };
                        if message.seq != last_seq + 1 && last_seq != 0 {
                            local.add("ack_seq_gap", 1);
                        }
                        last_seq = message.seq;
                        if k < warm_k {
                            local.add("warmup_acked", 1);
                        } else {
                            local.add("acked", 1);
                            local.record("send_ack", micros(now.saturating_duration_since(intended)));
                        }
                        if p.acked_log.is_some() {
                            acked_recs.push(AckedRecord {
                                token: token.clone(),
                                conversation_id: message.conversation_id,
                                seq: message.seq,
                                id: message.id,
                            });
                        }
                    }
                    Ok(VisitorServer::Error(e)) => {
                        local.add(&format!("error_{}", e.code.as_str()), 1);
                        if let Some(k) = e.reference.as_deref().and_then(|r| r.rsplit('-').next()).and_then(|k| k.parse::<u64>().ok()) {
                            if pending.remove(&k).is_some() {
                                local.add("rejected", 1);
                            }
                        }
                    }
                    Ok(VisitorServer::EmailPrompt { .. }) => local.add("email_prompts", 1),
                    Ok(_) => local.add("visitor_other_frames", 1),
                    Err(_) => local.add("visitor_undecodable", 1),
                }
            }
            _ = sleep_until(stop) => break None,
        }
    };
    if let Some(e) = end_err {
        local.add(&format!("visitor_{}", e.key()), 1);
    }
    // Whatever is still pending was sent and never acked (or the connection died).
    for k in pending.keys() {
        local.add(
            if *k < warm_k {
                "warmup_unacked"
            } else {
                "unacked"
            },
            1,
        );
    }
    lock(&report).merge(local);
    let _ = ws.close(None).await;
    acked_recs
}

// ---------------------------------------------------------------------------------------
// history: reloads of a long conversation (new connection, all messages) and of one page
// (on open connections), open-loop, optionally with relay traffic in the background.

struct HistoryPlan {
    messages: usize,
    page: u32,
    per_conn_limit: usize,
    full_rate: f64,
    page_rate: f64,
    page_conns: usize,
    warmup: Duration,
    duration: Duration,
    background: Option<RelayPlan>,
}

impl HistoryPlan {
    fn from_args(a: &Args) -> Result<HistoryPlan, String> {
        let background = if a.num::<f64>("bg-rate", 0.0)? > 0.0 {
            Some(RelayPlan::from_args(a, "bg-")?)
        } else {
            None
        };
        Ok(HistoryPlan {
            messages: a.num("messages", 1000)?,
            page: a.num("page", 50)?,
            per_conn_limit: a.num("per-conn-limit", 18)?,
            full_rate: a.num("full-rate", 20.0)?,
            page_rate: a.num("page-rate", 200.0)?,
            page_conns: a.num("page-conns", 20)?,
            warmup: a.secs("warmup-secs", 1.0)?,
            duration: a.secs("duration-secs", 5.0)?,
            background,
        })
    }
}

async fn history(c: &Common, p: HistoryPlan) -> Result<Report, String> {
    let report = shared();
    // One visitor whose conversation holds `messages` messages, written through the
    // normal path: several connections (tabs) of the same visitor, each within the
    // per-connection rate limit, all at once.
    let first = visitor_connect(c, None, None)
        .await
        .map_err(|e| format!("history: first visitor: {e}"))?;
    let token = first.token.clone();
    drop(first);
    // One tab at a time: tabs open together would each receive every other tab's
    // messages, a burst that is not what this workload measures.
    let per = p.per_conn_limit.max(1);
    for (i, from) in (0..p.messages).step_by(per).enumerate() {
        let n = per.min(p.messages - from);
        match seed_one(c, Some(token.clone()), i, from, n).await {
            Ok(_) => count(&report, "seed_connections"),
            Err(e) => count(&report, &format!("seed_{}", e.key())),
        }
    }
    let check = visitor_connect(c, Some(token.clone()), None)
        .await
        .map_err(|e| format!("history: checking the seed: {e}"))?;
    let stored = check
        .welcome_messages
        .iter()
        .map(|m| m.seq)
        .max()
        .unwrap_or(0);
    lock(&report).set("stored_messages", json!(stored));
    drop(check);

    let mut page_conns = Vec::new();
    for _ in 0..p.page_conns.max(1) {
        match visitor_connect(c, Some(token.clone()), None).await {
            Ok(v) => page_conns.push(v.ws),
            Err(e) => count(&report, &format!("page_{}", e.key())),
        }
    }

    let start = c.start("history").await?;
    let measure_from = start + p.warmup;
    let end = measure_from + p.duration;
    let bg = match p.background {
        Some(bgp) => {
            let c = c.clone();
            Some(tokio::spawn(async move { relay(&c, bgp).await }))
        }
        None => None,
    };
    let mut tasks = Vec::new();
    // Full reloads: a new connection each, hello with resume_after 0, then history pages
    // until every message is there.
    let n_full = ((p.warmup + p.duration).as_secs_f64() * p.full_rate) as usize;
    for i in 0..n_full {
        if !c.mine(i) {
            continue;
        }
        let due = start + Duration::from_secs_f64(i as f64 / p.full_rate);
        let c = c.clone();
        let token = token.clone();
        let report = report.clone();
        let want = stored;
        tasks.push(tokio::spawn(async move {
            at(due).await;
            let res = full_reload(&c, token, want).await;
            let mut r = lock(&report);
            let measured = due >= measure_from;
            match res {
                Ok((got, welcomed)) if got >= want => {
                    if measured {
                        r.record("full_reload_welcome", micros(welcomed - due));
                        r.record("full_reload", micros(due.elapsed()));
                        r.add("full_reloads", 1);
                    }
                }
                Ok(_) => r.add("full_reload_incomplete", 1),
                Err(e) => r.add(&format!("full_reload_{}", e.key()), 1),
            }
        }));
    }
    // Page reloads: `history` with the newest page, pipelined on open connections.
    let n_page = ((p.warmup + p.duration).as_secs_f64() * p.page_rate) as usize;
    let conns = page_conns.len().max(1);
    for (j, ws) in page_conns.into_iter().enumerate() {
        let dues: Vec<Instant> = (0..n_page)
            .filter(|i| i % conns == j && c.mine(*i))
            .map(|i| start + Duration::from_secs_f64(i as f64 / p.page_rate))
            .collect();
        let report = report.clone();
        let limit = p.page;
        tasks.push(tokio::spawn(async move {
            page_reloader(
                ws,
                dues,
                limit,
                measure_from,
                end + Duration::from_secs(5),
                report,
            )
            .await;
        }));
    }
    for t in tasks {
        if t.await.is_err() {
            count(&report, "task_panicked");
        }
    }
    let mut r = take(report);
    if let Some(bg) = bg {
        match bg.await {
            Ok(Ok(bgr)) => {
                let mut prefixed = Report::default();
                for (k, v) in bgr.counters {
                    prefixed.add(&format!("bg_{k}"), v);
                }
                for (k, h) in bgr.hists {
                    prefixed.hists.insert(format!("bg_{k}"), h);
                }
                r.merge(prefixed);
            }
            Ok(Err(e)) => return Err(format!("background load: {e}")),
            Err(_) => r.add("task_panicked", 1),
        }
    }
    Ok(r)
}

/// A full reload; returns the messages it got and when the welcome arrived.
async fn full_reload(c: &Common, token: String, want: u64) -> Result<(u64, Instant), LgError> {
    let mut v = visitor_connect(c, Some(token), Some(0)).await?;
    let welcomed = Instant::now();
    let mut seqs: HashSet<u64> = v.welcome_messages.iter().map(|m| m.seq).collect();
    let mut lowest = v.welcome_messages.iter().map(|m| m.seq).min();
    let more = v.has_more || (seqs.len() as u64) < want;
    let fut = async {
        // Seqs are dense within a conversation, so every older page's `before` is known
        // from the welcome: ask for them all at once (one round trip, as a client that
        // wants the whole conversation would), then page on for any gap one at a time.
        let mut befores = Vec::new();
        let mut b = lowest.filter(|_| more).unwrap_or(0);
        while b > 1 {
            befores.push(b);
            b = b.saturating_sub(HISTORY_PAGE as u64);
        }
        for before in &befores {
            feed_frame(&mut v.ws, &history_frame(*before)).await?;
        }
        if !befores.is_empty() {
            v.ws.flush().await.map_err(|e| LgError::Ws(e.to_string()))?;
        }
        let mut has_more = more;
        for _ in &befores {
            let (page, more) = next_history(&mut v.ws).await?;
            // (not Option::min: None would win)
            lowest = match (lowest, page.iter().copied().min()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            seqs.extend(page);
            has_more = more;
        }
        while has_more && (seqs.len() as u64) < want {
            let Some(before) = lowest.filter(|l| *l > 1) else {
                break;
            };
            send_frame(&mut v.ws, &history_frame(before)).await?;
            let (page, more) = next_history(&mut v.ws).await?;
            match page.iter().copied().min() {
                Some(l) => lowest = Some(l),
                None => has_more = false,
            }
            seqs.extend(page);
            has_more = has_more && more;
        }
        Ok(())
    };
    timeout(Duration::from_secs(30), fut)
        .await
        .unwrap_or(Err(LgError::Timeout("history")))?;
    let _ = v.ws.close(None).await;
    Ok((seqs.len() as u64, welcomed))
}

/// The largest `history` page the protocol allows.
const HISTORY_PAGE: u32 = 200;

fn history_frame(before: u64) -> VisitorClient {
    VisitorClient::History {
        before: Some(before),
        limit: Some(HISTORY_PAGE),
    }
}

/// A `history` answer as a full reload reads it: the seqs only. The load generator
/// checks that every message arrived; decoding each whole message would be its own
/// cost (serde buffers an internally tagged frame before decoding it), not the server's.
#[derive(serde::Deserialize)]
struct SeqPage {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    messages: Vec<SeqOf>,
    #[serde(default)]
    has_more: bool,
    #[serde(default)]
    code: Option<String>,
}

#[derive(serde::Deserialize)]
struct SeqOf {
    seq: u64,
}

/// The seqs of the next `history` answer on a visitor socket (other frames are skipped).
async fn next_history(ws: &mut Ws) -> Result<(Vec<u64>, bool), LgError> {
    loop {
        let text = next_text(ws).await?;
        let page: SeqPage =
            serde_json::from_str(&text).map_err(|e| LgError::Protocol(e.to_string()))?;
        match page.kind.as_str() {
            "history" => return Ok((page.messages.iter().map(|m| m.seq).collect(), page.has_more)),
            "error" => {
                let code = page.code.unwrap_or_default();
                return Err(LgError::Protocol(format!("history: {code}")));
            }
            _ => {}
        }
    }
}

async fn page_reloader(
    mut ws: Ws,
    dues: Vec<Instant>,
    limit: u32,
    measure_from: Instant,
    stop: Instant,
    report: Shared,
) {
    let mut next = 0usize;
    let mut inflight: std::collections::VecDeque<Instant> = Default::default();
    let mut local = Report::default();
    let err = loop {
        if next >= dues.len() && inflight.is_empty() {
            break None;
        }
        let due = dues.get(next).copied().unwrap_or(stop);
        tokio::select! {
            _ = at(due), if next < dues.len() => {
                let frame = VisitorClient::History { before: None, limit: Some(limit) };
                if let Err(e) = send_frame(&mut ws, &frame).await {
                    break Some(e);
                }
                inflight.push_back(dues[next]);
                next += 1;
            }
            m = next_visitor(&mut ws) => match m {
                Ok(VisitorServer::History { messages, .. }) => {
                    if let Some(intended) = inflight.pop_front() {
                        if intended >= measure_from {
                            local.record("page_reload", micros(intended.elapsed()));
                            local.add("page_reloads", 1);
                        }
                        if messages.len() < limit as usize {
                            local.add("page_short", 1);
                        }
                    }
                }
                Ok(VisitorServer::Error(e)) => local.add(&format!("page_error_{}", e.code.as_str()), 1),
                Ok(_) => {}
                Err(e) => break Some(e),
            },
            _ = sleep_until(stop) => break Some(LgError::Timeout("page")),
        }
    };
    if let Some(e) = err {
        local.add(&format!("page_{}", e.key()), 1);
    }
    local.add("page_unanswered", inflight.len() as u64);
    lock(&report).merge(local);
    let _ = ws.close(None).await;
}

// ---------------------------------------------------------------------------------------
// timers: N visitors each send a first message, spread over a window; the no_reply
// prompt is due `delay` after it. A fraction of the conversations get an agent reply
// half-way, which must cancel their prompt.

struct TimersPlan {
    prompts: usize,
    spread: Duration,
    delay_secs: u64,
    cancel_fraction: f64,
    agents: usize,
    grace: Duration,
    agent_token: String,
    set_chatflow: bool,
    reconnect: bool,
}

impl TimersPlan {
    fn from_args(a: &Args) -> Result<TimersPlan, String> {
        Ok(TimersPlan {
            prompts: a.num("prompts", 1000)?,
            spread: a.secs("spread-secs", 10.0)?,
            delay_secs: a.num("delay-secs", 2)?,
            cancel_fraction: a.num("cancel-fraction", 0.3)?,
            agents: a.num("agents", 50)?,
            grace: a.secs("grace-secs", 5.0)?,
            agent_token: agent_token(a)?,
            set_chatflow: !a.flag("keep-chatflow"),
            reconnect: a.flag("reconnect"),
        })
    }
}

/// A reply an agent must send at `due`, to cancel a prompt.
struct ReplyJob {
    due: Instant,
    conversation_id: String,
    client_msg_id: String,
}

impl PartialEq for ReplyJob {
    fn eq(&self, o: &Self) -> bool {
        self.due == o.due
    }
}
impl Eq for ReplyJob {}
impl PartialOrd for ReplyJob {
    fn partial_cmp(&self, o: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for ReplyJob {
    fn cmp(&self, o: &Self) -> std::cmp::Ordering {
        o.due.cmp(&self.due) // earliest first in a max-heap
    }
}

async fn timers(c: &Common, p: TimersPlan) -> Result<Report, String> {
    let report = shared();
    if p.set_chatflow && c.shard == 0 {
        set_no_reply_chatflow(c, &p.agent_token, p.delay_secs).await?;
    }
    // Reply agents.
    let mut agent_txs = Vec::new();
    let mut agent_tasks = Vec::new();
    let end = Arc::new(Mutex::new(None::<Instant>));
    for a in 0..p.agents.max(1) {
        let ws = agent_connect(c, &p.agent_token)
            .await
            .map_err(|e| format!("timers: agent {a}: {e}"))?;
        let (tx, rx) = mpsc::unbounded_channel::<ReplyJob>();
        agent_txs.push(tx);
        let report = report.clone();
        let end = end.clone();
        agent_tasks.push(tokio::spawn(reply_agent(ws, rx, end, report)));
    }
    let agent_txs = Arc::new(agent_txs);
    // Visitors connect before the schedule starts.
    let visitors = connect_new_visitors(c, p.prompts, &report).await;
    lock(&report).add("visitors_connected", visitors.len() as u64);
    let start = c.start("timers").await?;
    let stop = start + p.spread + Duration::from_secs(p.delay_secs) + p.grace;
    *lock(&end) = Some(stop);
    let p = Arc::new(p);
    let mut tasks = Vec::new();
    for (g, v) in visitors {
        let due = start + p.spread.mul_f64(g as f64 / p.prompts.max(1) as f64);
        // Deterministic, evenly spread choice of the conversations to cancel.
        let cancel = ((g as u64 * 2_654_435_761) % 1000) < (p.cancel_fraction * 1000.0) as u64;
        let c = c.clone();
        let p = p.clone();
        let report = report.clone();
        let agent = agent_txs[g % agent_txs.len()].clone();
        tasks.push(tokio::spawn(async move {
            timer_visitor(c, p, g, v, due, cancel, stop, agent, report).await
        }));
    }
    for t in tasks {
        if t.await.is_err() {
            count(&report, "task_panicked");
        }
    }
    drop(agent_txs);
    for t in agent_tasks {
        if t.await.is_err() {
            count(&report, "task_panicked");
        }
    }
    Ok(take(report))
}

async fn set_no_reply_chatflow(c: &Common, token: &str, delay_secs: u64) -> Result<(), String> {
    let mut ws = agent_connect(c, token)
        .await
        .map_err(|e| format!("admin agent: {e}"))?;
    let chatflow = Chatflow {
        email_capture: EmailCapture {
            when: CaptureWhen::NoReply,
            delay_secs,
            message: Some("Leave your email and we will get back to you.".into()),
        },
        ..Chatflow::default()
    };
    send_frame(
        &mut ws,
        &AgentClient::UpdateChatflow {
            inbox: c.inbox.clone(),
            chatflow,
        },
    )
    .await
    .map_err(|e| format!("update_chatflow: {e}"))?;
    let fut = async {
        loop {
            match next_agent(&mut ws).await {
                Ok(AgentServer::Chatflow { .. }) => return Ok(()),
                Ok(AgentServer::Error(e)) => {
                    return Err(format!("update_chatflow: {}", e.code.as_str()))
                }
                Ok(_) => {}
                Err(e) => return Err(format!("update_chatflow: {e}")),
            }
        }
    };
    let res = timeout(Duration::from_secs(10), fut)
        .await
        .unwrap_or_else(|_| Err("update_chatflow: no answer".into()));
    let _ = ws.close(None).await;
    res
}

async fn reply_agent(
    mut ws: Ws,
    mut rx: mpsc::UnboundedReceiver<ReplyJob>,
    end: Arc<Mutex<Option<Instant>>>,
    report: Shared,
) {
    let mut heap: BinaryHeap<ReplyJob> = BinaryHeap::new();
    let mut open = true;
    let far = Instant::now() + Duration::from_secs(86_400);
    loop {
        let stop = lock(&end).unwrap_or(far);
        if !open && heap.is_empty() {
            break;
        }
        let next_due = heap.peek().map(|j| j.due).unwrap_or(far);
        tokio::select! {
            job = rx.recv(), if open => match job {
                Some(j) => heap.push(j),
                None => open = false,
            },
            _ = at(next_due), if !heap.is_empty() => {
                while heap.peek().is_some_and(|j| j.due <= Instant::now()) {
                    let Some(j) = heap.pop() else { break };
                    let frame = AgentClient::Reply {
                        conversation_id: j.conversation_id,
                        client_msg_id: j.client_msg_id,
                        text: "Hello! An agent is here.".into(),
                    };
                    match send_frame(&mut ws, &frame).await {
                        Ok(()) => count(&report, "replies_sent"),
                        Err(e) => count(&report, &format!("reply_{}", e.key())),
                    }
                }
            }
            m = next_agent(&mut ws) => match m {
                Ok(AgentServer::Ack { .. }) => count(&report, "replies_acked"),
                Ok(AgentServer::Error(e)) => count(&report, &format!("reply_error_{}", e.code.as_str())),
                Ok(_) => {}
                Err(e) => { count(&report, &format!("agent_{}", e.key())); break; }
            },
            _ = sleep_until(stop) => break,
        }
    }
    let _ = ws.close(None).await;
}

#[allow(clippy::too_many_arguments)]
async fn timer_visitor(
    c: Common,
    p: Arc<TimersPlan>,
    g: usize,
    v: Visitor,
    due: Instant,
    cancel: bool,
    stop: Instant,
    agent: mpsc::UnboundedSender<ReplyJob>,
    report: Shared,
) {
    let client_msg_id = format!("{}-t{g}", c.nonce);
    let token = v.token.clone();
    let mut ws = Some(v.ws);
    let mut acked_at: Option<i64> = None; // server ms of the first message
    let mut reply_at: Option<i64> = None; // server ms of the agent's reply, once seen
    let mut prompts = 0u32;
    // A welcome after a reconnect said the prompt was sent and is unanswered: the
    // visitor sees it even if its push never reached us (the server was killed between
    // recording it and writing it).
    let mut prompt_in_welcome = false;
    let mut local = Report::default();
    // Until the first message is due, keep reading so that heartbeats are answered.
    if let Some(conn) = ws.as_mut() {
        loop {
            tokio::select! {
                m = conn.next() => match m {
                    Some(Ok(_)) => {}
                    Some(Err(_)) | None => {
                        local.add("visitor_lost_before_send", 1);
                        ws = None;
                        break;
                    }
                },
                _ = at(due) => break,
            }
        }
    }
    let mut sent = false;
    while Instant::now() < stop {
        let Some(conn) = ws.as_mut() else {
            if !p.reconnect {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
            match visitor_connect(&c, Some(token.clone()), None).await {
                Ok(v) => {
                    local.add("reconnected", 1);
                    // A reply stored while we were away shows in the welcome's history.
                    if let Some(m) = v
                        .welcome_messages
                        .iter()
                        .find(|m| m.author.kind == AuthorKind::Agent)
                    {
                        reply_at = reply_at.or(Some(m.at));
                    }
                    prompt_in_welcome |= v.email_prompt.is_some();
                    ws = Some(v.ws);
                    sent = false;
                }
                Err(_) => local.add("reconnect_failed", 1),
            }
            continue;
        };
        if !sent && acked_at.is_none() {
            let frame = VisitorClient::Send {
                client_msg_id: client_msg_id.clone(),
                text: format!("timer visitor {g} needs help"),
            };
            if let Err(e) = send_frame(conn, &frame).await {
                local.add(&format!("visitor_{}", e.key()), 1);
                ws = None;
                continue;
            }
            sent = true;
        }
        let frame = tokio::select! {
            f = next_visitor(conn) => f,
            _ = sleep_until(stop) => break,
        };
        match frame {
            Ok(VisitorServer::Ack { message, .. }) => {
                if acked_at.is_none() {
                    acked_at = Some(message.at);
                    local.add("first_messages_acked", 1);
                    if cancel {
                        // Half-way to the deadline, as measured from the server's stamp.
                        let deadline_ms = message.at + (p.delay_secs * 1000) as i64;
                        let half_ms = (deadline_ms - unix_ms() as i64) / 2;
                        let _ = agent.send(ReplyJob {
                            due: Instant::now() + Duration::from_millis(half_ms.max(0) as u64),
                            conversation_id: message.conversation_id.clone(),
                            client_msg_id: format!("{}-r{g}", c.nonce),
                        });
                    }
                }
            }
            Ok(VisitorServer::Message { message }) if message.author.kind == AuthorKind::Agent => {
                reply_at = reply_at.or(Some(message.at));
            }
            Ok(VisitorServer::EmailPrompt { .. }) => {
                prompts += 1;
                if let Some(at) = acked_at {
                    let deadline_us = (at + (p.delay_secs * 1000) as i64) * 1000;
                    let late = unix_nanos() as i64 / 1000 - deadline_us;
                    if late < -1000 {
                        local.add("prompts_early", 1);
                    }
                    if reply_at.is_none() && prompts == 1 {
                        local.record("prompt_lateness", late.max(0) as u64);
                    }
                }
            }
            Ok(VisitorServer::Error(e)) => local.add(&format!("error_{}", e.code.as_str()), 1),
            Ok(_) => {}
            Err(e) => {
                local.add(&format!("visitor_{}", e.key()), 1);
                ws = None;
            }
        }
    }
    match acked_at {
        Some(at) => {
            // A reply stored before the deadline must cancel the prompt; a reply that
            // never happened (its agent's connection died) or came late must not.
            let deadline = at + (p.delay_secs * 1000) as i64;
            if reply_at.is_some_and(|r| r < deadline) {
                local.add("cancelled", 1);
                if prompts > 0 {
                    local.add("prompts_after_reply", 1);
                }
            } else {
                if cancel {
                    local.add("cancel_not_in_time", 1);
                }
                local.add("prompts_expected", 1);
                match (prompts, prompt_in_welcome) {
                    (0, false) => local.add("prompts_lost", 1),
                    (0, true) => {
                        local.add("prompts_ok", 1);
                        local.add("prompts_shown_by_welcome_only", 1);
                    }
                    (1, _) => local.add("prompts_ok", 1),
                    _ => local.add("prompts_doubled", 1),
                }
            }
        }
        None => local.add("first_message_unacked", 1),
    }
    lock(&report).merge(local);
    if let Some(mut conn) = ws {
        let _ = conn.close(None).await;
    }
}

// ---------------------------------------------------------------------------------------
// churn: N visitors connect and hold; then all drop at once and reconnect (with their
// tokens) on a uniform schedule over a window.

struct ChurnPlan {
    visitors: usize,
    ramp: Duration,
    hold: Duration,
    window: Duration,
    messages: usize,
}

impl ChurnPlan {
    fn from_args(a: &Args) -> Result<ChurnPlan, String> {
        Ok(ChurnPlan {
            visitors: a.num("visitors", 1000)?,
            ramp: a.secs("ramp-secs", 5.0)?,
            hold: a.secs("hold-secs", 2.0)?,
            window: a.secs("window-secs", 10.0)?,
            messages: a.num("messages", 1)?,
        })
    }
}

async fn churn(c: &Common, p: ChurnPlan) -> Result<Report, String> {
    let report = shared();
    // Visitors with a little history, so each welcome carries messages.
    let mine: Vec<usize> = (0..p.visitors).filter(|i| c.mine(*i)).collect();
    let tokens = seed_visitors(c, mine.len(), p.messages, 64, &report).await;
    lock(&report).add("seeded_visitors", tokens.len() as u64);
    let n = p.visitors.max(1) as f64;
    let connect_phase = |start: Instant, span: Duration, phase: &'static str| {
        let mut tasks = Vec::new();
        for (local, token) in tokens.iter().enumerate() {
            let g = mine.get(local).copied().unwrap_or(local);
            let due = start + span.mul_f64(g as f64 / n);
            let c = c.clone();
            let token = token.clone();
            let report = report.clone();
            tasks.push(tokio::spawn(async move {
                sleep_until(due).await;
                match visitor_connect(&c, Some(token.clone()), None).await {
                    Ok(v) => {
                        let mut r = lock(&report);
                        r.record(phase, micros(due.elapsed()));
                        r.add(&format!("{phase}_ok"), 1);
                        if v.token != token {
                            r.add(&format!("{phase}_new_identity"), 1);
                        }
                        if v.welcome_messages.is_empty() {
                            r.add(&format!("{phase}_no_history"), 1);
                        }
                        Some(v.ws)
                    }
                    Err(e) => {
                        count(&report, &format!("{phase}_{}", e.key()));
                        None
                    }
                }
            }));
        }
        tasks
    };
    let start = c.start("connect").await?;
    let mut held = Vec::new();
    for t in connect_phase(start, p.ramp, "connect") {
        if let Ok(Some(ws)) = t.await {
            held.push(ws);
        }
    }
    // Hold, reading so heartbeats are answered.
    let hold_end = Instant::now() + p.hold;
    let readers: Vec<_> = held
        .into_iter()
        .map(|mut ws| {
            tokio::spawn(async move {
                while let Ok(Some(_)) = timeout(
                    hold_end.saturating_duration_since(Instant::now()),
                    ws.next(),
                )
                .await
                {}
                ws
            })
        })
        .collect();
    let mut held = Vec::new();
    for r in readers {
        if let Ok(ws) = r.await {
            held.push(ws);
        }
    }
    // Everyone drops at once (no close handshake: a network blip, a server-side deploy).
    let dropped = held.len();
    drop(held);
    lock(&report).add("dropped", dropped as u64);
    let start = c.start("reconnect").await?;
    lock(&report).set(
        "reconnect_start_unix_ms",
        json!(unix_nanos_of(start) / 1_000_000),
    );
    let mut back = Vec::new();
    for t in connect_phase(start, p.window, "reconnect") {
        if let Ok(Some(ws)) = t.await {
            back.push(ws);
        }
    }
    lock(&report).set("reconnect_end_unix_ms", json!(unix_ms()));
    for mut ws in back {
        let _ = ws.close(None).await;
    }
    Ok(take(report))
}

// ---------------------------------------------------------------------------------------
// verify: every message an acked log lists is still stored, with its id and seq.

struct VerifyPlan {
    logs: Vec<String>,
    concurrency: usize,
}

impl VerifyPlan {
    fn from_args(a: &Args) -> Result<VerifyPlan, String> {
        let base = a.opt("acked-log").ok_or("--acked-log FILE is required")?;
        let mut logs = Vec::new();
        if std::path::Path::new(&base).exists() {
            logs.push(base.clone());
        }
        for i in 0..1024 {
            let shard = format!("{base}.{i}");
            if std::path::Path::new(&shard).exists() {
                logs.push(shard);
            }
        }
        if logs.is_empty() {
            return Err(format!("no acked log at {base} or {base}.N"));
        }
        Ok(VerifyPlan {
            logs,
            concurrency: a.num("concurrency", 64)?,
        })
    }
}

async fn verify(c: &Common, p: VerifyPlan) -> Result<Report, String> {
    let report = shared();
    // token -> (id -> seq)
    let mut by_token: HashMap<String, HashMap<String, u64>> = HashMap::new();
    for path in &p.logs {
        let text = std::fs::read_to_string(path).map_err(|e| format!("reading {path}: {e}"))?;
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                continue;
            }
            let seq = f[2].parse().unwrap_or(0);
            by_token
                .entry(f[0].to_string())
                .or_default()
                .insert(f[3].to_string(), seq);
        }
    }
    let acked: usize = by_token.values().map(|m| m.len()).sum();
    lock(&report).add("acked", acked as u64);
    lock(&report).add("visitors", by_token.len() as u64);
    let sem = Arc::new(Semaphore::new(p.concurrency.max(1)));
    let mut tasks = Vec::new();
    for (token, ids) in by_token {
        let c = c.clone();
        let sem = sem.clone();
        let report = report.clone();
        tasks.push(tokio::spawn(async move {
            let _permit = sem.acquire_owned().await;
            let min_seq = ids.values().copied().min().unwrap_or(1);
            match stored_messages(&c, token, min_seq).await {
                Ok(stored) => {
                    let mut r = lock(&report);
                    for (id, seq) in &ids {
                        match stored.get(id) {
                            Some(s) if s == seq => r.add("found", 1),
                            Some(_) => r.add("seq_changed", 1),
                            None => r.add("lost", 1),
                        }
                    }
                }
                Err(e) => {
                    let mut r = lock(&report);
                    r.add(&format!("verify_{}", e.key()), 1);
                    // Unverifiable counts as lost: the checker must not pass on errors.
                    r.add("lost", ids.len() as u64);
                }
            }
        }));
    }
    for t in tasks {
        if t.await.is_err() {
            count(&report, "task_panicked");
        }
    }
    Ok(take(report))
}

/// Every message of the visitor's conversation with seq ≥ `min_seq`: id -> seq.
async fn stored_messages(
    c: &Common,
    token: String,
    min_seq: u64,
) -> Result<HashMap<String, u64>, LgError> {
    let mut v = visitor_connect(c, Some(token), Some(min_seq.saturating_sub(1))).await?;
    let mut out: HashMap<String, u64> = v
        .welcome_messages
        .iter()
        .map(|m| (m.id.clone(), m.seq))
        .collect();
    let mut lowest = v.welcome_messages.iter().map(|m| m.seq).min();
    let mut more = v.has_more;
    // A server that caps the welcome: page back until min_seq is covered.
    while more && lowest.is_some_and(|l| l > min_seq) {
        send_frame(
            &mut v.ws,
            &VisitorClient::History {
                before: lowest,
                limit: Some(200),
            },
        )
        .await?;
        let fut = async {
            loop {
                if let VisitorServer::History { messages, has_more } =
                    next_visitor(&mut v.ws).await?
                {
                    return Ok::<_, LgError>((messages, has_more));
                }
            }
        };
        let (messages, has_more) = timeout(Duration::from_secs(30), fut)
            .await
            .unwrap_or(Err(LgError::Timeout("history")))?;
        more = has_more && !messages.is_empty();
        lowest = messages.iter().map(|m| m.seq).min().or(lowest);
        out.extend(messages.into_iter().map(|m| (m.id, m.seq)));
    }
    let _ = v.ws.close(None).await;
    Ok(out)
}

// ---------------------------------------------------------------------------------------
// probe: `--seed N` makes a visitor with N messages and reports its token; `--token T`
// retries hello until the visitor's history is served (the server may still be starting)
// and reports when, in Unix milliseconds.

async fn probe(c: &Common, a: &Args) -> Result<Report, String> {
    let mut r = Report::default();
    if let Some(n) = a.opt("seed") {
        let n: usize = n.parse().map_err(|_| "--seed must be a number")?;
        let per = a.num("per-conn-limit", 18usize)?.max(1);
        let mut token = None;
        let mut from = 0;
        while from < n {
            let k = per.min(n - from);
            let t = seed_one(c, token.clone(), 0, from, k)
                .await
                .map_err(|e| format!("probe: seeding: {e}"))?;
            token = Some(t);
            from += k;
        }
        r.set("token", json!(token));
        r.add("seeded_messages", n as u64);
        return Ok(r);
    }
    let token = a.opt("token").ok_or("probe needs --seed N or --token T")?;
    let until = Instant::now() + a.secs("until-secs", 30.0)?;
    let began = Instant::now();
    loop {
        r.add("attempts", 1);
        match visitor_connect(c, Some(token.clone()), None).await {
            Ok(v) if !v.welcome_messages.is_empty() => {
                r.set("served_unix_ms", json!(unix_ms()));
                r.set("messages", json!(v.welcome_messages.len()));
                r.record("probe", micros(began.elapsed()));
                let mut ws = v.ws;
                let _ = ws.close(None).await;
                return Ok(r);
            }
            Ok(_) => r.add("served_empty", 1),
            Err(e) => r.add(&e.key(), 1),
        }
        if Instant::now() >= until {
            return Err("probe: the history was not served in time".into());
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
}
