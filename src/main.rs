//! The `ranklet` command: a thin adapter over the library (`src/cli/`).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
        // The reader closed stdout (`… | head -1`): it has what it wanted.
        Err(err) if cli::is_closed_stdout(&err) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("error: {err}");
            if err.is_user_error() {
                ExitCode::from(cli::EXIT_BAD_INPUT)
            } else {
                ExitCode::from(cli::EXIT_INTERNAL)
            }
        }
    }
}
