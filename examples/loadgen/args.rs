//! The command line: `loadgen MODE --addr HOST:PORT [--option value ...]`, one clap
//! subcommand per workload with its own options, the common ones flattened into each.
//! benches/run passes every option by name, so a name or a default changes only
//! together with it. This module parses; it does not connect or measure.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use clap::parser::ValueSource;
use clap::{ArgMatches, Args, CommandFactory, FromArgMatches, Parser, Subcommand};
use serde_json::{json, Map, Value};

use crate::modes::relay::RelayPlan;

#[derive(Debug, Parser)]
#[command(
    name = "loadgen",
    about = "Open-loop load against a frontdesk server (or the peer); one JSON report on stdout"
)]
pub struct Cli {
    #[command(subcommand)]
    pub mode: Mode,
}

#[derive(Debug, Subcommand)]
pub enum Mode {
    /// Ramp visitors (hello, welcome with history) and hold them idle.
    Idle(IdleArgs),
    /// Visitors send at an offered rate; send->ack and send->agent latency.
    Relay(RelayArgs),
    /// Reloads of a long conversation and of one page, optionally under load.
    History(HistoryArgs),
    /// no_reply email prompts: lateness, none lost, none doubled.
    Timers(TimersArgs),
    /// Every visitor drops and reconnects within a window.
    Churn(ChurnArgs),
    /// Every message listed in an acked log is still stored (after kill -9).
    Verify(VerifyArgs),
    /// Seed one visitor (--seed N), or wait until a visitor's history is served (--token T).
    Probe(ProbeArgs),
}

impl Mode {
    /// The mode's name, as the report's `mode`.
    pub fn name(&self) -> &'static str {
        match self {
            Mode::Idle(_) => "idle",
            Mode::Relay(_) => "relay",
            Mode::History(_) => "history",
            Mode::Timers(_) => "timers",
            Mode::Churn(_) => "churn",
            Mode::Verify(_) => "verify",
            Mode::Probe(_) => "probe",
        }
    }

    pub fn common(&self) -> &CommonArgs {
        match self {
            Mode::Idle(a) => &a.common,
            Mode::Relay(a) => &a.common,
            Mode::History(a) => &a.common,
            Mode::Timers(a) => &a.common,
            Mode::Churn(a) => &a.common,
            Mode::Verify(a) => &a.common,
            Mode::Probe(a) => &a.common,
        }
    }
}

/// What every mode accepts. The token options are accepted by every mode, so a driver
/// may always pass them.
#[derive(Debug, Args, Clone)]
pub struct CommonArgs {
    /// The server, HOST:PORT.
    #[arg(long)]
    pub addr: String,
    /// The inbox visitors open.
    #[arg(long, default_value = "default")]
    pub inbox: String,
    /// Re-run as this many child processes, each holding a shard of the connections.
    #[arg(long, default_value_t = 1)]
    pub procs: usize,
    /// Worker threads of each process's runtime.
    #[arg(long, default_value_t = 1)]
    pub threads: usize,
    /// Loopback source addresses to spread connections over (1 to 250).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub source_ips: u8,
    /// Let the runtime sleep in the kernel between tasks instead of polling.
    #[arg(long)]
    pub no_spin: bool,
    /// An agent token.
    #[arg(long)]
    pub agent_token: Option<String>,
    /// A file holding an agent token.
    #[arg(long)]
    pub agent_token_file: Option<PathBuf>,
    /// Tag of this run, carried in message texts (default: random).
    #[arg(long)]
    pub nonce: Option<String>,
    /// This process's shard (set by the parent of `--procs`).
    #[arg(long, hide = true)]
    pub shard: Option<usize>,
    /// How many shards there are (set by the parent of `--procs`).
    #[arg(long, hide = true, default_value_t = 1)]
    pub shards: usize,
}

impl CommonArgs {
    /// The agent token, from `--agent-token` or `--agent-token-file`.
    pub fn agent_token(&self) -> Result<String, String> {
        if let Some(t) = &self.agent_token {
            return Ok(t.clone());
        }
        if let Some(path) = &self.agent_token_file {
            return std::fs::read_to_string(path)
                .map(|s| s.trim().to_string())
                .map_err(|e| format!("--agent-token-file {}: {e}", path.display()));
        }
        Err("--agent-token or --agent-token-file is required".into())
    }
}

/// Seconds, as a `Duration` between 0 and a day.
fn secs(s: &str) -> Result<Duration, String> {
    let v: f64 = s
        .parse()
        .map_err(|_| format!("`{s}` is not a valid number"))?;
    if !(0.0..=86_400.0).contains(&v) {
        return Err("must be between 0 and 86400 seconds".into());
    }
    Ok(Duration::from_secs_f64(v))
}

#[derive(Debug, Args)]
pub struct IdleArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Visitor connections to ramp up and hold.
    #[arg(long, default_value_t = 1000)]
    pub connections: usize,
    /// Seconds over which the connections open.
    #[arg(long = "ramp-secs", default_value = "10", value_parser = secs)]
    pub ramp: Duration,
    /// Seconds the connections are held once all are open.
    #[arg(long = "hold-secs", default_value = "10", value_parser = secs)]
    pub hold: Duration,
    /// Visitors seeded with history, whose tokens the connections reuse
    /// (default: min(connections, 1000)).
    #[arg(long)]
    pub history_visitors: Option<usize>,
    /// Messages each seeded visitor has.
    #[arg(long, default_value_t = 5)]
    pub history_messages: usize,
}

/// The relay load's options, once for `relay` and once with `bg-` in front of every name
/// for the background load of `history`; clap has no prefix for a flattened group.
macro_rules! relay_options {
    ($(#[$meta:meta])* $name:ident, $prefix:literal, rate = $rate:literal) => {
        $(#[$meta])*
        #[derive(Debug, Args)]
        pub struct $name {
            /// Visitors that send.
            #[arg(id = concat!($prefix, "visitors"), long = concat!($prefix, "visitors"))]
            #[arg(value_name = "N", default_value_t = 1000)]
            pub visitors: usize,
            /// Agents that receive every message.
            #[arg(id = concat!($prefix, "agents"), long = concat!($prefix, "agents"))]
            #[arg(value_name = "N", default_value_t = 50)]
            pub agents: usize,
            /// Messages per second offered, in total.
            #[arg(id = concat!($prefix, "rate"), long = concat!($prefix, "rate"))]
            #[arg(value_name = "MSGS_PER_S", default_value_t = $rate)]
            pub rate: f64,
            /// Seconds of sending before measuring.
            #[arg(id = concat!($prefix, "warmup-secs"), long = concat!($prefix, "warmup-secs"))]
            #[arg(value_name = "SECS", default_value = "2", value_parser = secs)]
            pub warmup: Duration,
            /// Seconds of measured sending.
            #[arg(id = concat!($prefix, "duration-secs"), long = concat!($prefix, "duration-secs"))]
            #[arg(value_name = "SECS", default_value = "10", value_parser = secs)]
            pub duration: Duration,
            /// Seconds to wait for the last acks and deliveries.
            #[arg(id = concat!($prefix, "drain-secs"), long = concat!($prefix, "drain-secs"))]
            #[arg(value_name = "SECS", default_value = "3", value_parser = secs)]
            pub drain: Duration,
            /// Bytes of each message text (padded).
            #[arg(id = concat!($prefix, "text-bytes"), long = concat!($prefix, "text-bytes"))]
            #[arg(value_name = "BYTES", default_value_t = 64)]
            pub text_bytes: usize,
            /// Agents that decode every frame and measure (default: min(agents, 5)).
            #[arg(id = concat!($prefix, "measure-agents"), long = concat!($prefix, "measure-agents"))]
            #[arg(value_name = "N")]
            pub measure_agents: Option<usize>,
            /// Agents that never read.
            #[arg(id = concat!($prefix, "slow-agents"), long = concat!($prefix, "slow-agents"))]
            #[arg(value_name = "N", default_value_t = 0)]
            pub slow_agents: usize,
            /// Write every ack here (`.N` per shard), for `verify`.
            #[arg(id = concat!($prefix, "acked-log"), long = concat!($prefix, "acked-log"))]
            #[arg(value_name = "FILE")]
            pub acked_log: Option<String>,
        }

        impl $name {
            /// The validated plan; the agent token comes from the common options.
            pub fn plan(&self, common: &CommonArgs) -> Result<RelayPlan, String> {
                if self.rate <= 0.0 {
                    return Err(concat!("--", $prefix, "rate must be positive").into());
                }
                let agents = self.agents;
                Ok(RelayPlan {
                    visitors: self.visitors.max(1),
                    agents,
                    rate: self.rate,
                    warmup: self.warmup,
                    duration: self.duration,
                    drain: self.drain,
                    text_bytes: self.text_bytes,
                    measure_agents: self.measure_agents.unwrap_or(agents.min(5)),
                    slow_agents: self.slow_agents,
                    agent_token: if agents + self.slow_agents > 0 {
                        common.agent_token()?
                    } else {
                        String::new()
                    },
                    acked_log: self.acked_log.clone(),
                })
            }
        }
    };
}

relay_options!(
    /// `relay`'s own options.
    RelayOptions, "", rate = 1000.0
);
relay_options!(
    /// The background relay load of `history`; none unless `--bg-rate` is positive.
    BgRelayOptions, "bg-", rate = 0.0
);

#[derive(Debug, Args)]
pub struct RelayArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    #[command(flatten)]
    pub relay: RelayOptions,
}

#[derive(Debug, Args)]
pub struct HistoryArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Messages in the long conversation.
    #[arg(long, default_value_t = 1000)]
    pub messages: usize,
    /// Messages per page reload.
    #[arg(long, default_value_t = 50)]
    pub page: u32,
    /// Messages seeded per connection (within the server's per-connection rate limit).
    #[arg(long, default_value_t = 18)]
    pub per_conn_limit: usize,
    /// Full reloads per second.
    #[arg(long, default_value_t = 20.0)]
    pub full_rate: f64,
    /// Page reloads per second.
    #[arg(long, default_value_t = 200.0)]
    pub page_rate: f64,
    /// Open connections the page reloads are spread over.
    #[arg(long, default_value_t = 20)]
    pub page_conns: usize,
    /// Seconds of reloads before measuring.
    #[arg(long = "warmup-secs", default_value = "1", value_parser = secs)]
    pub warmup: Duration,
    /// Seconds of measured reloads.
    #[arg(long = "duration-secs", default_value = "5", value_parser = secs)]
    pub duration: Duration,
    #[command(flatten)]
    pub background: BgRelayOptions,
}

#[derive(Debug, Args)]
pub struct TimersArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Visitors, each sending one first message.
    #[arg(long, default_value_t = 1000)]
    pub prompts: usize,
    /// Seconds over which the first messages are spread.
    #[arg(long = "spread-secs", default_value = "10", value_parser = secs)]
    pub spread: Duration,
    /// The no_reply delay set in the chatflow, in seconds.
    #[arg(long, default_value_t = 2)]
    pub delay_secs: u64,
    /// Share of the conversations an agent answers half-way, which cancels the prompt.
    #[arg(long, default_value_t = 0.3)]
    pub cancel_fraction: f64,
    /// Agents that send the replies.
    #[arg(long, default_value_t = 50)]
    pub agents: usize,
    /// Seconds to wait after the last deadline.
    #[arg(long = "grace-secs", default_value = "5", value_parser = secs)]
    pub grace: Duration,
    /// Leave the inbox's chatflow as it is.
    #[arg(long)]
    pub keep_chatflow: bool,
    /// Reconnect a visitor whose connection dropped (for the kill -9 run).
    #[arg(long)]
    pub reconnect: bool,
}

#[derive(Debug, Args)]
pub struct ChurnArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Visitors that connect, drop and reconnect.
    #[arg(long, default_value_t = 1000)]
    pub visitors: usize,
    /// Seconds over which they first connect.
    #[arg(long = "ramp-secs", default_value = "5", value_parser = secs)]
    pub ramp: Duration,
    /// Seconds they are held before all drop.
    #[arg(long = "hold-secs", default_value = "2", value_parser = secs)]
    pub hold: Duration,
    /// Seconds over which they reconnect.
    #[arg(long = "window-secs", default_value = "10", value_parser = secs)]
    pub window: Duration,
    /// Messages each visitor has, so each welcome carries history.
    #[arg(long, default_value_t = 1)]
    pub messages: usize,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// The acked log of a relay run (and its shards' FILE.N).
    #[arg(long = "acked-log", value_name = "FILE")]
    pub acked_log: String,
    /// Visitors checked at once.
    #[arg(long, default_value_t = 64)]
    pub concurrency: usize,
}

#[derive(Debug, Args)]
pub struct ProbeArgs {
    #[command(flatten)]
    pub common: CommonArgs,
    /// Make a visitor with N messages and report its token.
    #[arg(long, value_name = "N")]
    pub seed: Option<usize>,
    /// Messages seeded per connection.
    #[arg(long, default_value_t = 18)]
    pub per_conn_limit: usize,
    /// Retry hello as this visitor until its history is served; report when.
    #[arg(long, value_name = "T")]
    pub token: Option<String>,
    /// Seconds to keep retrying.
    #[arg(long = "until-secs", default_value = "30", value_parser = secs)]
    pub until: Duration,
}

/// The command line, and the options as given for the report's `params`. A usage error
/// or `--help` ends the process here, as clap does.
pub fn parse() -> (Cli, Value) {
    // An option given twice takes its last value.
    let matches = Cli::command()
        .mut_subcommands(|mode| mode.args_override_self(true))
        .get_matches();
    let cli = Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit());
    let params = echo(&given(&matches));
    (cli, params)
}

/// Each option given on the command line, by its long name, with its last value (a flag's
/// is `true`).
fn given(matches: &ArgMatches) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let Some((name, sub)) = matches.subcommand() else {
        return out;
    };
    let cli = Cli::command();
    let Some(cmd) = cli.find_subcommand(name) else {
        return out;
    };
    for arg in cmd.get_arguments() {
        let id = arg.get_id().as_str();
        if sub.value_source(id) != Some(ValueSource::CommandLine) {
            continue;
        }
        let (Some(long), Some(raw)) = (
            arg.get_long(),
            sub.get_raw(id).and_then(|mut v| v.next_back()),
        ) else {
            continue;
        };
        out.insert(long.to_string(), raw.to_string_lossy().into_owned());
    }
    out
}

/// The options as given, for the report: numbers as numbers, tokens and the shard
/// options left out.
fn echo(given: &BTreeMap<String, String>) -> Value {
    let mut m = Map::new();
    for (k, v) in given {
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
