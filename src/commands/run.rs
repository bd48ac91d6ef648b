//! `inferload run`: plan, preflight, load, report.

use std::io::Write;

use anyhow::Context;

use super::{CommandError, Outcome};
use crate::cli::RunArgs;
use crate::engine::{self, IntervalSink, StopSignal};
use crate::metrics::{self, MetricsPlan, ModelWindow};
use crate::protocol::preflight;
use crate::report::{self, console, Summary};
use crate::scenario::{RunPlan, Scenario, Transport};
use crate::transport::connect::Connector;
use crate::transport::grpc::{self, GrpcTransport};
use crate::transport::http1_raw::RawHttp1Transport;
use crate::transport::{self, http1::Http1Transport, http2::Http2Transport};

/// Reads the scenario and applies the flags: every usage error surfaces here, before any work.
pub fn plan(args: &RunArgs) -> Result<RunPlan, CommandError> {
    let scenario = Scenario::from_file(&args.scenario)?;
    let plan = RunPlan::build(scenario, &args.scenario, &args.overrides())?;
    if let Some(options) = &plan.target.embedded {
        options.validate().map_err(|m| {
            CommandError::Usage(format!(
                "invalid scenario {}: `target.embedded.{m}",
                args.scenario.display()
            ))
        })?;
        if crate::serve::FaultPlan::new(&options.faults).ends_process() {
            return Err(CommandError::Usage(format!(
                "invalid scenario {}: `target.embedded.faults` has `crash`, which would end \
                 this run's own process; use `down:at=N,for=D` in-process, or run `inferload \
                 serve --fault crash:at=N` separately",
                args.scenario.display()
            )));
        }
    }
    Ok(plan)
}

pub async fn run(args: RunArgs) -> Result<Outcome, CommandError> {
    let plan = plan(&args)?;
    tracing::debug!(?plan, "run plan");
    let compare_settings = super::bench::check_baseline_args(&args.baseline)?;
    let scenario = plan.name.clone();
    super::bench::check_baseline_exists(&args.baseline, &scenario)?;
    let (summary, run_dir) = execute(plan, args.quiet).await?;
    // A closed stdout (e.g. `| head`) loses only the console copy: the results are on disk.
    let _ = write!(std::io::stdout().lock(), "{}", console::render(&summary));
    let comparison =
        super::bench::baseline_step(&run_dir, &scenario, &args.baseline, &compare_settings)?;
    let mut stdout = std::io::stdout().lock();
    if let Some(comparison) = &comparison {
        let _ = write!(stdout, "{}", crate::regress::render::console(comparison));
    }
    let _ = writeln!(stdout, "\nresults: {}", run_dir.display());
    let regressed = comparison.as_ref().is_some_and(|c| !c.passed());
    Ok(if summary.passed && !regressed {
        Outcome::Passed
    } else {
        Outcome::GateFailed
    })
}

/// Runs a plan end to end and writes its result files; returns the summary and the run folder.
pub async fn execute(
    plan: RunPlan,
    quiet: bool,
) -> Result<(Summary, std::path::PathBuf), CommandError> {
    let mut sinks: Vec<Box<dyn IntervalSink>> = Vec::new();
    sinks.extend(report::progress::sink(&plan, quiet));
    let executed = execute_with(plan, sinks, StopSignal::new()).await?;
    Ok((executed.summary, executed.run_dir))
}

/// What [`execute_with`] returns: the summary, the run folder and the engine's raw outcome.
pub struct Executed {
    pub summary: Summary,
    pub run_dir: std::path::PathBuf,
    pub outcome: engine::RunOutcome,
}

/// Runs a plan end to end with the given interval sinks and stop signal (Ctrl-C and SIGTERM
/// also reach it), and writes its result files.
pub async fn execute_with(
    mut plan: RunPlan,
    mut sinks: Vec<Box<dyn IntervalSink>>,
    stop: StopSignal,
) -> Result<Executed, CommandError> {
    ensure_descriptors(engine::connection_count(&plan)).map_err(CommandError::Usage)?;
    let embedded = match &plan.target.embedded {
        Some(options) => {
            let handle = crate::serve::start(
                "127.0.0.1:0".parse().expect("valid address"),
                options.clone(),
            )
            .await
            .context("cannot start the embedded target on 127.0.0.1")?;
            plan.target.base = Some(
                format!("http://{}", handle.addr)
                    .parse()
                    .expect("a socket address is a valid authority"),
            );
            Some(handle)
        }
        None => None,
    };
    let base = plan
        .target
        .base
        .clone()
        .expect("the base URL is set for every target by now");
    let addr = transport::resolve(&base)
        .await
        .map_err(|e| anyhow::anyhow!("target.url {base}: {e}"))?;
    let connector = Connector::for_target(&plan.target, addr).map_err(CommandError::Usage)?;
    if plan
        .target
        .tls
        .as_ref()
        .is_some_and(|tls| tls.options.insecure)
    {
        transport::tls::warn_insecure_once();
    }
    prepare_target(&mut plan, &connector).await?;

    let run_dir = report::create_run_dir(&plan.output.run_dir).with_context(|| {
        format!(
            "cannot create the results folder {}",
            plan.output.run_dir.display()
        )
    })?;
    if run_dir != plan.output.run_dir {
        eprintln!(
            "warning: {} is not an empty folder, so this run writes to {}",
            plan.output.run_dir.display(),
            run_dir.display()
        );
    }
    let signals = tokio::spawn(forward_signals(stop.clone()));
    let file_error = |name: &str, e: std::io::Error| {
        anyhow::anyhow!("cannot create {name} in {}: {e}", run_dir.display())
    };
    sinks.push(Box::new(
        report::intervals::IntervalCsv::create(&run_dir)
            .map_err(|e| file_error("intervals.csv", e))?,
    ));
    sinks.push(Box::new(
        report::hlog::HistogramLog::create(&run_dir)
            .map_err(|e| file_error("histograms.hlog", e))?,
    ));
    sinks.push(Box::new(
        crate::regress::record::IntervalRecorder::create(
            &run_dir,
            plan.load.warmup,
            plan.load.duration,
        )
        .map_err(|e| file_error("the interval files", e))?,
    ));
    let request_csv = if plan.output.requests_csv {
        let file = report::requests::RequestCsv::create(&run_dir, plan.route_header.clone())
            .map_err(|e| file_error(report::requests::FILE, e))?;
        Some(file)
    } else {
        None
    };
    let request_log = request_csv.as_ref().map(|file| file.log());

    let model_scrape = ModelScrape::start(&plan).await;
    let lanes = engine::lane_count(&plan);
    let outcome = match plan.target.transport {
        // Plain-text HTTP/1.1 uses the lanes that own their socket; over TLS, hyper's lanes.
        Transport::Http1 if !connector.is_tls() => {
            let addr = connector.addr;
            let prepared = Http1Transport::new(&plan, connector).map_err(CommandError::Usage)?;
            let transport = std::sync::Arc::new(RawHttp1Transport::new(&plan, &prepared, addr));
            engine::run(&plan, transport, lanes, &mut sinks, stop, request_log).await
        }
        Transport::Http1 => {
            let transport = std::sync::Arc::new(
                Http1Transport::new(&plan, connector).map_err(CommandError::Usage)?,
            );
            engine::run(&plan, transport, lanes, &mut sinks, stop, request_log).await
        }
        Transport::Http2 => {
            let transport = std::sync::Arc::new(
                Http2Transport::new(&plan, connector).map_err(CommandError::Usage)?,
            );
            engine::run(&plan, transport, lanes, &mut sinks, stop, request_log).await
        }
        Transport::Grpc => {
            let transport = std::sync::Arc::new(
                GrpcTransport::new(&plan, connector).map_err(CommandError::Usage)?,
            );
            engine::run(&plan, transport, lanes, &mut sinks, stop, request_log).await
        }
    };
    signals.abort();
    if let Some(handle) = embedded {
        handle.stop();
    }

    let target_url = if plan.target.embedded.is_some() {
        format!("embedded ({base})")
    } else {
        base.to_string()
    };
    let mut summary = Summary::build(&plan, &outcome, &target_url);
    if let Some(warning) = generator_lateness(&outcome.totals.pacer) {
        eprintln!("warning: {warning}");
    }
    if let Some(file) = request_csv {
        let rows = file
            .finish()
            .map_err(|e| file_error(report::requests::FILE, e))?;
        summary.requests_csv = Some(rows);
    }
    if let Some(window) = model_scrape.finish().await {
        report::breakdown::attach(&mut summary, &plan, &outcome.totals.counts, Some(window));
    }
    crate::gate::apply(&plan.gates, &mut summary).context("cannot evaluate the gates")?;
    report::write_results(&run_dir, &summary, &outcome.totals)
        .map_err(|(path, e)| anyhow::anyhow!("cannot write {}: {e}", path.display()))?;

    // Streamed files are renamed to their final names even when one of them failed.
    let mut first_error = None;
    for sink in &mut sinks {
        if let Err(error) = sink.finish(outcome.interrupted) {
            eprintln!(
                "error: cannot complete a result file in {}: {error}",
                run_dir.display()
            );
            first_error.get_or_insert(error);
        }
    }
    if let Some(error) = first_error {
        return Err(anyhow::anyhow!(
            "cannot write the result files in {}: {error}",
            run_dir.display()
        )
        .into());
    }
    Ok(Executed {
        summary,
        run_dir,
        outcome,
    })
}

/// File descriptors a run needs besides its connections: the result files, the embedded
/// target's listeners and sockets, the runtime's own descriptors, with room to spare.
const SPARE_DESCRIPTORS: u64 = 256;

/// Raises the soft limit on open files up to the hard limit when `connections` need more than
/// it allows, and explains how to raise the hard limit when even that is too low.
fn ensure_descriptors(connections: u64) -> Result<(), String> {
    let needed = connections + SPARE_DESCRIPTORS;
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit writes one `struct rlimit`, which `limit` is.
    if unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } != 0 {
        return Ok(());
    }
    if limit.rlim_cur == libc::RLIM_INFINITY || limit.rlim_cur >= needed {
        return Ok(());
    }
    if limit.rlim_max != libc::RLIM_INFINITY && limit.rlim_max < needed {
        return Err(format!(
            "{connections} connections need about {needed} open files, but this process may \
             open at most {} (ulimit -n); raise the limit, for example `ulimit -n {needed}` \
             as root, or use fewer connections",
            limit.rlim_max
        ));
    }
    let raised = libc::rlimit {
        rlim_cur: needed,
        rlim_max: limit.rlim_max,
    };
    // SAFETY: setrlimit reads one valid `struct rlimit`.
    if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } != 0 {
        return Err(format!(
            "{connections} connections need about {needed} open files, but raising the limit \
             from {} failed: {}; raise it with `ulimit -n {needed}` or use fewer connections",
            limit.rlim_cur,
            std::io::Error::last_os_error()
        ));
    }
    Ok(())
}

/// Describes how far the generator fell behind its own schedule. It warns when more than 1% of
/// the measured requests went out late without waiting at the in-flight cap. The target did not
/// hold those back, so this process did (a busy CPU), and the latencies include that delay.
fn generator_lateness(pacer: &crate::stats::PacerCounts) -> Option<String> {
    let own_late = pacer.late.saturating_sub(pacer.waited_at_cap);
    if pacer.sent == 0 || own_late * 100 <= pacer.sent {
        return None;
    }
    let lag_p99 = pacer
        .lag
        .as_ref()
        .map_or(0.0, |h| h.value_at_quantile(0.99) as f64 / 1000.0);
    Some(format!(
        "the generator fell behind its schedule: {} of {} requests ({:.1}%) went out more than \
         1 ms after they were due without waiting at the in-flight cap (schedule lag p99 \
         {lag_p99:.3} ms), so the latencies include that delay; check the CPU load on this \
         machine, or lower the rate or the connections",
        own_late,
        pacer.sent,
        own_late as f64 * 100.0 / pacer.sent as f64
    ))
}

/// Scrapes of the model servers' metrics: before the first request, at the end of the
/// warm-up, and after the last request.
struct ModelScrape {
    plan: Option<MetricsPlan>,
    before: Option<metrics::Scrape>,
    window_start: Option<tokio::task::JoinHandle<Result<metrics::Scrape, metrics::MetricsError>>>,
}

impl ModelScrape {
    /// Takes the first scrape now and schedules the one at the end of the warm-up. Call just
    /// before the engine starts. A failed first scrape is reported and turns scraping off.
    async fn start(plan: &RunPlan) -> ModelScrape {
        let off = ModelScrape {
            plan: None,
            before: None,
            window_start: None,
        };
        let Some(metrics_plan) = plan.model_metrics.clone() else {
            return off;
        };
        let before = match metrics::scrape(&metrics_plan).await {
            Ok(scrape) => scrape,
            Err(error) => {
                warn_no_model(&error);
                return off;
            }
        };
        let window_start = if plan.load.warmup.is_zero() {
            None
        } else {
            let task_plan = metrics_plan.clone();
            // NOTE: a scrape under load is served between requests, so inferences that ran
            // while it was in flight may fall on either side of the window start. The window
            // means are approximate at that boundary; `run_success` has no such boundary.
            let at = tokio::time::Instant::now() + engine::START_LEAD + plan.load.warmup;
            Some(tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                metrics::scrape(&task_plan).await
            }))
        };
        ModelScrape {
            plan: Some(metrics_plan),
            before: Some(before),
            window_start,
        }
    }

    /// Takes the last scrape and returns the window's differences. A failed scrape is
    /// reported on stderr and leaves the model component out.
    async fn finish(self) -> Option<ModelWindow> {
        let (plan, before) = (self.plan?, self.before?);
        let window_start = match self.window_start {
            None => Ok(before.clone()),
            Some(task) => task.await.ok()?,
        };
        let last = metrics::scrape(&plan).await;
        match (window_start, last) {
            (Ok(first), Ok(last)) => {
                let mut window = ModelWindow::between(&plan, &first, &last);
                window.run_success = ModelWindow::success_between(&before, &last);
                Some(window)
            }
            (Err(error), _) | (_, Err(error)) => {
                warn_no_model(&error);
                None
            }
        }
    }
}

fn warn_no_model(error: &metrics::MetricsError) {
    tracing::warn!(%error, "model metrics scrape failed");
    eprintln!("warning: {error}; the breakdown has no model component");
}

/// Chooses the HTTP version by ALPN when the plan leaves it to the server, runs the readiness
/// checks and builds payloads that need the model metadata, so every failure here comes
/// before any load.
async fn prepare_target(plan: &mut RunPlan, connector: &Connector) -> Result<(), CommandError> {
    if plan.target.negotiate_http {
        match transport::negotiate_http(connector).await {
            Ok(chosen) => plan.target.transport = chosen,
            Err(failure) if plan.target.preflight => {
                return Err(anyhow::Error::from(preflight::PreflightError::connect(
                    connector.addr,
                    failure,
                ))
                .into())
            }
            Err(failure) => {
                // Without the readiness checks the load goes ahead and counts the failures.
                let reason = failure.body.map_or(failure.kind.name().into(), |body| {
                    String::from_utf8_lossy(&body).into_owned()
                });
                eprintln!(
                    "warning: cannot choose the HTTP version by ALPN ({reason}); using HTTP/1.1"
                );
            }
        }
    }
    let grpc_origin = match plan.target.transport {
        Transport::Grpc => Some(grpc::origin(plan, connector).map_err(CommandError::Usage)?),
        Transport::Http1 | Transport::Http2 => None,
    };
    if plan.target.preflight {
        match &grpc_origin {
            Some(origin) => preflight::check_grpc(&plan.target, connector, origin).await,
            None => preflight::check(&plan.target, connector).await,
        }
        .map_err(anyhow::Error::from)?;
    }
    if plan.payload.pending.is_some() {
        let metadata = match &grpc_origin {
            Some(origin) => preflight::metadata_grpc(&plan.target, connector, origin).await,
            None => preflight::metadata_rest(&plan.target, connector).await,
        }
        .map_err(anyhow::Error::from)?;
        plan.payload.resolve(&metadata).map_err(|e| {
            CommandError::Usage(format!(
                "invalid payload for model {} ({}): {e}",
                plan.target.model, plan.payload.source
            ))
        })?;
    }
    Ok(())
}

/// Turns Ctrl-C and SIGTERM into stop requests: the first stops scheduling, the second forces.
async fn forward_signals(stop: StopSignal) {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let (Ok(mut interrupt), Ok(mut terminate)) = (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) else {
            tracing::warn!(
                "cannot install signal handlers; Ctrl-C will end the run without a summary"
            );
            return;
        };
        loop {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            eprintln!(
                "\nstopping: waiting for requests in flight (press Ctrl-C again to stop at once)"
            );
            stop.escalate();
        }
    }
    #[cfg(not(unix))]
    loop {
        if tokio::signal::ctrl_c().await.is_err() {
            return;
        }
        stop.escalate();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::PacerCounts;

    fn pacer(sent: u64, late: u64, waited_at_cap: u64) -> PacerCounts {
        PacerCounts {
            sent,
            late,
            waited_at_cap,
            ..PacerCounts::default()
        }
    }

    #[test]
    fn lateness_warning_threshold() {
        let warning = generator_lateness(&pacer(1000, 20, 0)).expect("2% late warns");
        assert!(warning.contains("20 of 1000 requests (2.0%)"), "{warning}");
        assert!(warning.contains("lower the rate"), "{warning}");
        assert_eq!(generator_lateness(&pacer(1000, 10, 0)), None);
        // Late because the target held requests at the cap: not the generator's delay.
        assert_eq!(generator_lateness(&pacer(1000, 20, 15)), None);
        assert_eq!(generator_lateness(&pacer(0, 0, 0)), None);
    }
}
