//! The `ranklet` command: embedding, benchmarks and the static server (training and
//! distillation join as their issues land).

mod cli;

use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::run(args) {
        Ok(()) => ExitCode::SUCCESS,
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
