//! banhammer's entry point: parse, dispatch, map errors to exit codes.

use std::process::ExitCode;

use clap::Parser;

use banhammer::cli::{self, Cli, Command};

// Workers allocate the groups and failures of every matching line and the ordering thread
// frees them: mimalloc serves that pattern with far less work than glibc's malloc.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// fail2ban's tools exit 255 on errors; scripts written for them check for it.
const EXIT_ERROR: u8 = 255;

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Run(args) => cli::run::run(args),
        Command::Regex(args) => cli::regex::run(args),
        Command::Config(cmd) => cli::config::run(cmd),
        Command::Client(cmd) => cli::client::run(cmd),
    };
    // Records still queued for the daemon's log writer are written before the exit.
    banhammer::logging::flush();
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            if is_broken_pipe(&e) {
                // `banhammer regex … | head` is normal use, not an error.
                return ExitCode::SUCCESS;
            }
            eprintln!("ERROR: {e:#}");
            ExitCode::from(EXIT_ERROR)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
