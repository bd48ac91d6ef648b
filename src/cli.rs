//! Command-line interface (clap derive). Doc comments are the help text.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::regress::settings::{BaselineArgs, CompareOptions};
use crate::scenario::connection::ConnectionOverrides;
use crate::scenario::units::{HumanDuration, Rate, ReleaseGap};
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
    /// Find the highest rate (or concurrency) at which the target meets an objective.
    Sweep(SweepArgs),
    /// Compare two saved result folders (old, then new) metric by metric.
    Compare(CompareArgs),
    /// Run several scenarios in sequence, each compared with its saved baseline.
    Bench(BenchArgs),
    /// Print the summary of a saved run, sweep or comparison folder again, without running.
    Report(ReportArgs),
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

    /// Print no progress (by default a bar on stderr when it is a terminal, else a line every
    /// 5 intervals).
    #[arg(short, long)]
    pub quiet: bool,

    /// SLO gate such as 'p99<50ms', 'error_rate<0.1%' or 'achieved>=0.99' (repeatable); added to
    /// the scenario's [gates]. A failed gate makes the exit status 3.
    #[arg(long = "gate", value_name = "GATE")]
    pub gates: Vec<String>,

    /// Also write requests.csv, one row per completed request (times in microseconds).
    #[arg(long)]
    pub requests_csv: bool,

    /// After a first Ctrl-C or SIGTERM, how long to wait for requests in flight, e.g. 5s
    /// (default: the request timeout, at most 10s).
    #[arg(long)]
    pub stop_grace: Option<HumanDuration>,

    /// Shortest time between two releases of requests in open loop: `auto` (100us, widening
    /// above 4,000 req/s to 500us at 20,000 req/s), `0` (each request on its own wake-up) or a
    /// duration up to 1ms. Requests due within the gap go out together.
    #[arg(long, value_name = "GAP")]
    pub release_gap: Option<ReleaseGap>,

    #[command(flatten)]
    pub connection: ConnectionOverrides,

    #[command(flatten)]
    pub baseline: BaselineArgs,
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
            release_gap: self.release_gap,
            connection: self.connection.clone(),
        }
    }
}

#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on; port 0 picks a free port, printed at start.
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub addr: SocketAddr,

    /// Extra address that serves the V2 gRPC service (gRPC is always served on --addr too).
    #[arg(long)]
    pub grpc_addr: Option<SocketAddr>,

    #[command(flatten)]
    pub options: ServeOptions,

    #[command(flatten)]
    pub tls: crate::serve::tls::ServeTlsArgs,
}

/// Options of `inferload sweep`.
#[derive(Debug, Args)]
pub struct SweepArgs {
    /// Scenario file (TOML); its target, payload and connection settings are used, its load is
    /// replaced by the sweep's levels.
    pub scenario: PathBuf,

    /// Objective as a gate, e.g. 'p99<50ms', 'service.p95<=20ms', 'error_rate<0.1%'
    /// (repeatable). Without --slo and --max-error-rate, the scenario's gates are the objective.
    #[arg(long = "slo")]
    pub slos: Vec<crate::gate::Gate>,

    /// Largest error rate a passing step may have, e.g. 0.1% or 0.001.
    #[arg(long)]
    pub max_error_rate: Option<crate::sweep::objective::Fraction>,

    /// Open-loop rates to climb, comma-separated, e.g. 100,200,400 or 100/s,200/s.
    #[arg(long, conflicts_with_all = ["from", "concurrency_levels"])]
    pub rates: Option<String>,

    /// First rate of a progression, e.g. 50/s (with --to and --step).
    #[arg(long, requires_all = ["to", "step"])]
    pub from: Option<Rate>,

    /// Last rate of a progression, e.g. 2000/s.
    #[arg(long, requires = "from")]
    pub to: Option<Rate>,

    /// Progression step: a factor such as x1.5 or an increment such as +100/s.
    #[arg(long, requires = "from")]
    pub step: Option<crate::sweep::levels::Step>,

    /// Closed-loop concurrency levels in place of rates: 1,2,4,8 or 1..64:x2.
    #[arg(long, conflicts_with_all = ["from"])]
    pub concurrency_levels: Option<String>,

    /// Bisection stops when the bracket's width is at most this share of its low end.
    #[arg(long, default_value = "5%")]
    pub precision: crate::sweep::objective::Fraction,

    /// A step falls short when it achieves less than the target rate minus this share.
    #[arg(long, default_value = "5%")]
    pub rate_tolerance: crate::sweep::objective::Fraction,

    /// Warm-up of each step, before its measurement windows.
    #[arg(long, default_value = "2s")]
    pub step_warmup: HumanDuration,

    /// Length of one measurement window.
    #[arg(long, default_value = "5s")]
    pub window: HumanDuration,

    /// Most windows per step; a step whose windows never agree is marked unstable.
    #[arg(long, default_value_t = 4)]
    pub max_windows: u32,

    /// Consecutive windows agree when their p99 and throughput differ by at most this share.
    #[arg(long, default_value = "10%")]
    pub stability: crate::sweep::objective::Fraction,

    /// The generator is the limit when its p99 schedule lag exceeds this (and no request
    /// waited at the in-flight cap). The default sits well above the 2-7 ms p99 lag measured
    /// on a 2-core machine running other builds, and well below the growing lag of a pacer
    /// that cannot keep up.
    #[arg(long, default_value = "20ms")]
    pub max_schedule_lag: HumanDuration,

    /// The generator is the limit when its process uses more than this share of the CPUs it
    /// may run on, over a step.
    #[arg(long, default_value = "90%")]
    pub max_generator_cpu: crate::sweep::objective::Fraction,

    /// The knee is the first step whose p99 exceeds this many times the lowest level's p99.
    #[arg(long, default_value_t = 2.0)]
    pub knee_factor: f64,

    /// Base URL of the V2 API, replacing the scenario's target.
    #[arg(long)]
    pub url: Option<String>,

    /// Connections to open to the target (open loop); default: the scenario's, at least 128.
    #[arg(long)]
    pub connections: Option<u32>,

    /// Cap on requests in flight, counting those waiting for a connection.
    #[arg(long)]
    pub max_in_flight: Option<u32>,

    /// Per-request timeout, e.g. 5s.
    #[arg(long)]
    pub timeout: Option<HumanDuration>,

    /// Extra request header 'NAME: VALUE' (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,

    /// Folder of the sweep, in place of results/<scenario>/sweep-<UTC time>/.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Print no progress lines.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub connection: ConnectionOverrides,
}

#[derive(Debug, Args)]
pub struct CompareArgs {
    /// The older result folder (or saved baseline), e.g. results/baselines/main/quickstart.
    pub old: PathBuf,

    /// The newer result folder.
    pub new: PathBuf,

    /// Folder for compare.md, compare.junit.xml and compare.json (default: NEW).
    #[arg(long)]
    pub out: Option<PathBuf>,

    #[command(flatten)]
    pub compare: CompareOptions,
}

/// Options of `inferload report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Result folder of a run, a sweep or a comparison, e.g. results/quickstart/20260101T120000Z.
    pub dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Scenario files, or folders whose *.toml files are run in name order.
    #[arg(required = true)]
    pub scenarios: Vec<PathBuf>,

    /// Base URL of the V2 API, replacing every scenario's target.
    #[arg(long)]
    pub url: Option<String>,

    /// Measured duration of every scenario, e.g. 20s.
    #[arg(long)]
    pub duration: Option<HumanDuration>,

    /// Warm-up of every scenario, e.g. 2s.
    #[arg(long)]
    pub warmup: Option<HumanDuration>,

    /// Extra request header 'NAME: VALUE' for every scenario (repeatable).
    #[arg(short = 'H', long = "header")]
    pub headers: Vec<String>,

    /// Folder for the runs (one subfolder per scenario) and the comparison reports, in place
    /// of results/bench/<UTC time>/.
    #[arg(long)]
    pub out: Option<PathBuf>,

    /// Print no progress lines.
    #[arg(short, long)]
    pub quiet: bool,

    #[command(flatten)]
    pub connection: ConnectionOverrides,

    #[command(flatten)]
    pub baseline: BaselineArgs,
}
