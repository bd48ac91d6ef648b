//! Command-line interface (clap derive). Doc comments are the help text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::scenario::units::{HumanDuration, Rate};
use crate::scenario::Overrides;
use crate::serve::ServeOptions;

/// Open-loop load tester for Open Inference Protocol (KServe V2) services.
#[derive(Debug, Parser)]
#[command(name = "inferload", version, about)]
pub struct Cli {
    /// Diagnostic logging on stderr (-v info, -vv debug); RUST_LOG overrides it.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,

    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run a scenario and write its results.
    Run(RunArgs),
    /// Serve the embedded V2 reference target.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// Scenario file (TOML).
    pub scenario: PathBuf,

    /// Base URL of the V2 API, replacing the scenario's target (e.g. http://127.0.0.1:8080).
    #[arg(long)]
    pub url: Option<String>,

    /// Open-loop arrival rate, e.g. 250/s or 1000/min.
    #[arg(long)]
    pub rate: Option<Rate>,

    /// Closed loop with this many requests in flight, in place of a rate.
    #[arg(long)]
    pub concurrency: Option<u32>,

    /// Measured duration, e.g. 30s.
    #[arg(long)]
    pub duration: Option<HumanDuration>,

    /// Warm-up before the measurement, e.g. 5s.
    #[arg(long)]
    pub warmup: Option<HumanDuration>,

    /// Connections to open to the target.
    #[arg(long)]
    pub connections: Option<u32>,

    /// Cap on requests in flight, counting those waiting for a connection.
    #[arg(long)]
    pub max_in_flight: Option<u32>,

    /// Per-request timeout, e.g. 5s.
    #[arg(long)]
    pub timeout: Option<HumanDuration>,

    /// Extra request header 'NAME: VALUE' (repeatable); replaces a scenario header of that name.
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,

    /// Folder for this run's results, in place of results/<scenario>/<UTC time>/.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Print no progress lines.
    #[arg(short, long)]
    pub quiet: bool,

    /// SLO gate such as 'p99<50ms', 'error_rate<0.1%' or 'achieved>=0.99' (repeatable); added to
    /// the scenario's [gates]. A failed gate makes the exit status 3.
    #[arg(long = "gate", value_name = "GATE")]
    pub gates: Vec<String>,

    /// Also write requests.csv, one row per measured request.
    #[arg(long)]
    pub requests_csv: bool,

    /// After a first Ctrl-C or SIGTERM, how long to wait for requests in flight, e.g. 5s
    /// (default: the request timeout, at most 10s).
    #[arg(long)]
    pub stop_grace: Option<HumanDuration>,
}

impl RunArgs {
    pub fn overrides(&self) -> Overrides {
        Overrides {
            url: self.url.clone(),
            rate: self.rate,
            concurrency: self.concurrency,
            duration: self.duration,
            warmup: self.warmup,
            connections: self.connections,
            max_in_flight: self.max_in_flight,
            timeout: self.timeout,
            headers: self.headers.clone(),
            out: self.out.clone(),
            gates: self.gates.clone(),
            requests_csv: self.requests_csv,
            stop_grace: self.stop_grace,
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port, printed at start.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    #[command(flatten)]
    pub options: ServeOptions,
}
