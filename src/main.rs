//! The `inferload` binary: parse the command line, run the command, map its outcome to the exit
//! status (0 passed, 3 a gate failed, 2 invalid usage or scenario, 1 any other failure).

use clap::Parser;

use inferload::cli::{Cli, Command};
use inferload::commands::{self, CommandError};

fn main() {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            std::process::exit(if error.use_stderr() { 2 } else { 0 });
        }
    };
    init_logging(cli.verbose);

    let runtime = match build_runtime() {
        Ok(runtime) => runtime,
        Err(error) => {
            eprintln!("error: cannot start the async runtime: {error}");
            std::process::exit(1);
        }
    };
    let result = runtime.block_on(async move {
        match cli.command {
            Command::Run(args) => commands::run::run(args).await,
            Command::Serve(args) => commands::serve::serve(args).await,
            Command::Sweep(args) => commands::sweep::sweep(args).await,
            Command::Compare(args) => commands::compare::compare(args),
            Command::Bench(args) => commands::bench::bench(args).await,
            Command::Report(args) => commands::report::report(args),
        }
    });
    // Lanes may still hold connections to a stalled target; do not wait for them.
    runtime.shutdown_background();
    match result {
        Ok(outcome) => std::process::exit(outcome.exit_code()),
        Err(error) => {
            match &error {
                CommandError::Usage(message) => eprintln!("error: {message}"),
                CommandError::Other(inner) => eprintln!("error: {inner:#}"),
            }
            std::process::exit(error.exit_code());
        }
    }
}

/// Sizes the worker pool to the CPUs this process may run on (its affinity mask, which
/// `available_parallelism` reads on Linux), not to the machine's core count.
fn build_runtime() -> std::io::Result<tokio::runtime::Runtime> {
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
}

fn init_logging(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        _ => "debug",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}
