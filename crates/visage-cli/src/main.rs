//! `visage`: the command-line face toolkit. Parses arguments, calls the library crates, prints
//! text or JSON; nothing else lives here.

mod args;
mod commands;
mod images;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = args::Cli::parse();
    match commands::run(cli) {
        Ok(code) => code,
        Err(err) => {
            // One line per cause keeps the message readable and greppable.
            eprintln!("visage: error: {err:#}");
            ExitCode::FAILURE
        }
    }
}
