//! `logtide-files`: the node agent that tails container logs.
//!
//! This binary only parses arguments and hands over to the library code; see `--help`.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod parse;

/// Ships Kubernetes container logs.
#[derive(Debug, Parser)]
#[command(name = "logtide-files", version, about, propagate_version = true)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    Parse(parse::ParseArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Parse(args) => parse::run(&args),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("logtide-files: {e:#}");
            ExitCode::FAILURE
        }
    }
}
