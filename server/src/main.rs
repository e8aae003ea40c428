//! `amanat`: the command-line tool of Amanat (demo now; relay server and HQ operations later).

use clap::{Parser, Subcommand};
use std::path::PathBuf;
use std::process::ExitCode;

mod demo;

/// Amanat: encrypted, offline-first interview records for anti-trafficking field work.
#[derive(Parser)]
#[command(name = "amanat", version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Walk through the vault on the embedded default (no external service) and print a summary.
    Demo {
        /// Keep the demo's files here (a previous demo vault in it is wiped first). Default: a
        /// temporary directory removed at the end.
        #[arg(long)]
        data_dir: Option<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo { data_dir } => demo::run(data_dir),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("amanat: {e}");
            ExitCode::FAILURE
        }
    }
}
