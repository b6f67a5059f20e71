//! The `authgate` binary: parse the command line, start tracing, run, and
//! map the outcome to an exit code (0 ok, 1 invalid input, 2 runtime failure).

mod cli;

use std::process::ExitCode;

/// mimalloc (v3): fewer instructions per allocation than glibc's malloc and
/// no arena trimming on the request path; see README "Performance" for the
/// numbers that put it here and what it costs in memory.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> ExitCode {
    let level = std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into());
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    match cli::main() {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            eprintln!("authgate: {}", failure.message);
            ExitCode::from(failure.code)
        }
    }
}
