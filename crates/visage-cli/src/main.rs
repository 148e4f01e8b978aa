//! `visage`: the command-line face toolkit. Parses arguments, calls the library crates, prints
//! text or JSON; nothing else lives here.

mod args;
mod commands;
mod images;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    restore_default_sigpipe();
    visage_nn::reuse_freed_buffers();
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

/// `visage encode ... | head` should end quietly when `head` closes the pipe, as Unix tools do,
/// instead of panicking in the middle of a print: Rust ignores SIGPIPE by default.
fn restore_default_sigpipe() {
    #[cfg(unix)]
    // SAFETY: setting a signal disposition to its default before any thread starts.
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_DFL);
    }
}
