//! The `frontdesk` binary: parse the command line, run it, and turn any error into one
//! plain line on stderr and a non-zero exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = frontdesk::cli::Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal, not in log files and journals.
        .with_ansi(std::io::stderr().is_terminal())
        .init();
    match frontdesk::cli::run(cli).map_err(anyhow::Error::from) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("frontdesk: {e}");
            ExitCode::FAILURE
        }
    }
}
