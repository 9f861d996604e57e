//! The command line: `serve`, and the tools that work on a stopped server's data
//! directory (`inbox`, `agent`, `outbox`). Raw arguments are validated once into a
//! `Config` or a command; every failure is a `CliError` that `main` prints as one line.

use std::io::IsTerminal;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};
use widget_protocol::Role;

use crate::agents::AgentChange;
use crate::app::{Offline, OpenError};
use crate::clock::{Clock, SystemClock};
use crate::ids::AgentId;
use crate::inboxes::{normalize_origin, InboxChange};
use crate::server::{ServeError, Server};
use crate::text::one_line;
use crate::{agents, shutdown, team};

mod serve;

use serve::raise_fd_limit;
pub use serve::{ServeArgs, ThrottleArgs};

#[derive(Debug, Parser)]
#[command(
    name = "frontdesk",
    version,
    about = "Backend for an embeddable website live chat"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Args, Clone)]
pub struct DataArg {
    /// The data directory (created on first start).
    #[arg(long, default_value = "./frontdesk-data")]
    pub data: PathBuf,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server.
    Serve(Box<ServeArgs>),
    /// Manage inboxes (server stopped).
    #[command(subcommand)]
    Inbox(InboxCommand),
    /// Manage agents (server stopped).
    #[command(subcommand)]
    Agent(AgentCommand),
    /// Follow-up emails waiting, sent or failed (server stopped).
    #[command(subcommand)]
    Outbox(OutboxCommand),
}

#[derive(Debug, Subcommand)]
pub enum InboxCommand {
    /// Create an inbox.
    Add {
        #[arg(long)]
        key: String,
        #[arg(long)]
        name: String,
        /// An origin allowed to embed the widget, e.g. https://shop.example.com (repeatable; none means any).
        #[arg(long = "origin")]
        origins: Vec<String>,
        #[command(flatten)]
        data: DataArg,
    },
    /// List inboxes.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Rename an inbox or replace its allowed origins (a running server does it with
    /// the inbox page's settings).
    Set {
        key: String,
        #[arg(long)]
        name: Option<String>,
        /// The origins allowed from now on (repeatable; replaces the list).
        #[arg(long = "origin")]
        origins: Vec<String>,
        /// Allow any origin (clears the list).
        #[arg(long, conflicts_with = "origins")]
        any_origin: bool,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum AgentCommand {
    /// Create an agent and print its token (shown once).
    Add {
        #[arg(long)]
        name: String,
        /// An inbox the agent works in (repeatable).
        #[arg(long = "inbox", required = true)]
        inboxes: Vec<String>,
        /// May change chatflow settings.
        #[arg(long)]
        admin: bool,
        #[command(flatten)]
        data: DataArg,
    },
    /// List agents.
    List {
        #[command(flatten)]
        data: DataArg,
    },
    /// Rename an agent, set the name visitors see, their inboxes or their role.
    Set {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// The name visitors see on replies; an empty one means the name.
        #[arg(long)]
        display_name: Option<String>,
        /// The inboxes the agent works in from now on (repeatable; replaces the list).
        #[arg(long = "inbox")]
        inboxes: Vec<String>,
        /// `admin` or `agent`.
        #[arg(long, value_parser = parse_role)]
        role: Option<Role>,
        #[command(flatten)]
        data: DataArg,
    },
    /// Revoke an agent's token.
    Revoke {
        id: String,
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// One line per email: id, state, attempts, recipient, subject, created (UTC), last error.
    List {
        #[command(flatten)]
        data: DataArg,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum CliError {
    #[error(transparent)]
    Serve(#[from] ServeError),
    #[error(transparent)]
    Open(#[from] OpenError),
    #[error("{0}")]
    Invalid(String),
    #[error(transparent)]
    Domain(#[from] crate::error::Error),
    #[error("cannot start the runtime: {0}")]
    Runtime(String),
}

/// How many task polls a worker makes before it looks at the runtime's shared queue.
/// An acknowledgement's task is woken by the writer thread, which is not a worker, so
/// it waits in that queue while a worker runs fan-out tasks from its own; tokio's
/// self-tuned default lets it wait longer (BENCHMARKS.md has the comparison).
const SHARED_QUEUE_EVERY: u32 = 4;

fn runtime() -> Result<tokio::runtime::Runtime, CliError> {
    tokio::runtime::Builder::new_multi_thread()
        .global_queue_interval(SHARED_QUEUE_EVERY)
        .enable_all()
        .build()
        .map_err(|e| CliError::Runtime(e.to_string()))
}

/// Opens a stopped server's data directory, saying so plainly when it runs.
fn offline(data: &DataArg) -> Result<Offline, CliError> {
    match Offline::open(&data.data) {
        Err(OpenError::Locked(dir)) => Err(CliError::Invalid(format!(
            "the data directory {dir} is in use by a running frontdesk server; stop it first"
        ))),
        other => Ok(other?),
    }
}

pub fn run(cli: Cli) -> Result<(), CliError> {
    let rt = runtime()?;
    match cli.command {
        Command::Serve(args) => {
            let config = args.into_config()?;
            rt.block_on(async {
                let server = Server::bind(config).await?;
                // After binding, so a start that fails says only why.
                raise_fd_limit();
                if let Some(token) = server.admin_token() {
                    let file = server.app().config.data_dir.join(crate::app::ADMIN_TOKEN_FILE);
                    // A terminal is a person reading; anything else (a service manager,
                    // a pipe) may be kept in logs, so the token stays in its file.
                    if std::io::stdout().is_terminal() {
                        println!("created the first admin agent; its token (shown once, also in {}):", file.display());
                        println!("{token}");
                    } else {
                        println!("created the first admin agent; its token is in {} (readable by this user only)", file.display());
                    }
                }
                let stop = shutdown::signal();
                println!("frontdesk listening on http://{}", server.local_addr());
                Ok::<_, CliError>(server.run(stop).await?)
            })
            .map(|closing| {
                // Dropping the runtime drops the last tasks holding the app; then the
                // store closes (engine flushed, log emptied) before the process exits.
                rt.shutdown_timeout(std::time::Duration::from_secs(2));
                if !closing.wait(std::time::Duration::from_secs(10)) {
                    tracing::warn!("the store did not close in time; the next start replays its log");
                }
            })
        }
        Command::Inbox(InboxCommand::Add {
            key,
            name,
            origins,
            data,
        }) => {
            let mut normalized = Vec::new();
            for o in &origins {
                normalized.push(normalize_origin(o).ok_or_else(|| {
                    CliError::Invalid(format!(
                        "--origin {o:?} is not an origin like https://shop.example.com"
                    ))
                })?);
            }
            if name.trim().is_empty() {
                return Err(CliError::Invalid("--name must not be empty".into()));
            }
            let off = offline(&data)?;
            let created = rt.block_on(off.inboxes.create(
                &key,
                name.trim(),
                normalized,
                SystemClock.now_ms(),
            ));
            off.close();
            match created? {
                true => {
                    println!("created inbox {key}");
                    Ok(())
                }
                false => Err(CliError::Invalid(format!(
                    "an inbox with key {key:?} exists already"
                ))),
            }
        }
        Command::Inbox(InboxCommand::List { data }) => {
            let off = offline(&data)?;
            for i in off.inboxes.all() {
                let origins = if i.origins.is_empty() {
                    "any origin".to_string()
                } else {
                    i.origins.join(" ")
                };
                println!("{}\t{}\t{}", i.key, i.name, origins);
            }
            off.close();
            Ok(())
        }
        Command::Agent(AgentCommand::Add {
            name,
            inboxes,
            admin,
            data,
        }) => {
            if name.trim().is_empty() || name.chars().count() > 100 {
                return Err(CliError::Invalid(
                    "--name must be 1 to 100 characters".into(),
                ));
            }
            let off = offline(&data)?;
            if let Some(missing) = inboxes.iter().find(|k| off.inboxes.get(k).is_none()) {
                off.close();
                return Err(CliError::Invalid(format!(
                    "no inbox has the key {missing:?} (create it with `frontdesk inbox add`)"
                )));
            }
            let role = if admin { Role::Admin } else { Role::Agent };
            let made = rt.block_on(agents::create(
                off.admin.as_ref(),
                name.trim(),
                role,
                inboxes,
                SystemClock.now_ms(),
            ));
            off.close();
            let (agent, token) = made?;
            println!(
                "created agent {} ({}) with id {}; its token (shown once):",
                agent.name,
                role_name(role),
                agent.id
            );
            println!("{token}");
            Ok(())
        }
        Command::Agent(AgentCommand::List { data }) => {
            let off = offline(&data)?;
            let list = agents::list(off.admin.as_ref());
            off.close();
            for a in list? {
                let state = if a.revoked { "revoked" } else { "active" };
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    a.id,
                    a.name,
                    role_name(a.role),
                    a.inboxes.join(","),
                    state
                );
            }
            Ok(())
        }
        Command::Outbox(OutboxCommand::List { data }) => outbox_list(&data),
        Command::Inbox(InboxCommand::Set {
            key,
            name,
            origins,
            any_origin,
            data,
        }) => {
            let limits = crate::config::Limits::default();
            let change = InboxChange {
                name: name
                    .map(|n| team::name(&n, "--name", &limits))
                    .transpose()?,
                origins: match (any_origin, origins.is_empty()) {
                    (true, _) => Some(Vec::new()),
                    (false, true) => None,
                    (false, false) => Some(team::origins(&origins)?),
                },
                widget: None,
            };
            let off = offline(&data)?;
            let done = rt.block_on(off.inboxes.update(&key, change));
            off.close();
            match done? {
                Some(_) => {
                    println!("updated inbox {key}");
                    Ok(())
                }
                None => Err(CliError::Invalid(format!("no inbox has the key {key:?}"))),
            }
        }
        Command::Agent(AgentCommand::Set {
            id,
            name,
            display_name,
            inboxes,
            role,
            data,
        }) => {
            let agent = parse_agent_id(&id)?;
            let limits = crate::config::Limits::default();
            let off = offline(&data)?;
            let checked = (|| {
                Ok::<_, crate::error::Error>(AgentChange {
                    name: name
                        .map(|n| team::name(&n, "--name", &limits))
                        .transpose()?,
                    display_name: display_name
                        .map(|d| team::display_name(Some(&d), &limits))
                        .transpose()?,
                    role,
                    inboxes: (!inboxes.is_empty())
                        .then(|| team::memberships(&inboxes, &off.inboxes))
                        .transpose()?,
                })
            })();
            let done = match checked {
                Ok(change) => rt.block_on(agents::update(off.admin.as_ref(), agent, change)),
                Err(e) => Err(e),
            };
            off.close();
            match done? {
                Some(_) => {
                    println!("updated agent {id}");
                    Ok(())
                }
                None => Err(CliError::Invalid(format!(
                    "no agent has the id {id}, or it is revoked"
                ))),
            }
        }
        Command::Agent(AgentCommand::Revoke { id, data }) => {
            let agent = parse_agent_id(&id)?;
            let off = offline(&data)?;
            let done = rt.block_on(agents::revoke(off.admin.as_ref(), agent));
            off.close();
            match done? {
                true => {
                    println!("revoked agent {id}");
                    Ok(())
                }
                false => Err(CliError::Invalid(format!("no agent has the id {id}"))),
            }
        }
    }
}

/// `frontdesk outbox list`: tab-separated, oldest first.
fn outbox_list(data: &DataArg) -> Result<(), CliError> {
    let off = offline(data)?;
    let list = off.outbox.outbox();
    off.close();
    for r in list.map_err(|e| CliError::Open(e.into()))? {
        println!(
            "{}\t{}\t{}\t{}\t{}\t{}\t{}",
            r.id,
            crate::mail::state_name(r.state),
            r.attempts,
            one_line(&r.to),
            one_line(&r.subject),
            crate::text::utc_rfc3339(r.created_at),
            r.last_error.as_deref().map_or_else(String::new, one_line),
        );
    }
    Ok(())
}

fn parse_agent_id(id: &str) -> Result<AgentId, CliError> {
    AgentId::parse(id).ok_or_else(|| {
        CliError::Invalid(format!(
            "{id:?} is not an agent id (see `frontdesk agent list`)"
        ))
    })
}

fn parse_role(s: &str) -> Result<Role, String> {
    match s {
        "admin" => Ok(Role::Admin),
        "agent" => Ok(Role::Agent),
        _ => Err("a role is admin or agent".into()),
    }
}

fn role_name(r: Role) -> &'static str {
    match r {
        Role::Admin => "admin",
        Role::Agent => "agent",
    }
}
