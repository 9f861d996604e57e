//! The `frontdesk` binary: parse the command line, run it, and turn any error into one
//! plain line on stderr and a non-zero exit.

use std::io::IsTerminal;
use std::process::ExitCode;

use clap::Parser;

/// mimalloc instead of glibc's allocator: sled allocates and frees on every insert and
/// read (node copies, fragments), which glibc's `malloc`/`free` serve slowly. Built
/// without transparent huge pages, which would back every arena with 2 MiB pages and
/// grow the idle server's memory for nothing.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    // Everything this process creates (the store's files, the log, the secrets, also
    // those the storage engine makes itself) is its owner's alone, whatever umask the
    // service manager or shell gave it.
    #[cfg(unix)]
    rustix::process::umask(rustix::fs::Mode::from_raw_mode(0o077));
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
