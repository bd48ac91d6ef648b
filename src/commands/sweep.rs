//! `inferload sweep`: plan the sweep from the scenario and flags, run it, write its files.
//!
//! Exit status: 0 when a capacity was found or every level met the objective, 3 when no level
//! met it or the generator became the limit first (no capacity to report), 2 for invalid usage.

use anyhow::Context;

use super::{CommandError, Outcome};
use crate::cli::SweepArgs;
use crate::scenario::units::Rate;
use crate::scenario::{Overrides, RunPlan, Scenario};
use crate::sweep::levels::{self, progression};
use crate::sweep::monitor::WindowPolicy;
use crate::sweep::objective::Objective;
use crate::sweep::{self, GeneratorLimits, Levels, SweepOutcome, SweepPlan};

/// Fewest connections of an open-loop sweep unless `--connections` sets them: enough that
/// requests do not queue for a connection before a target with up to this many concurrent
/// requests saturates, because a full connection pool would make the generator the limit.
const SWEEP_CONNECTIONS: u32 = 128;

/// Reads the scenario and flags into a checked sweep plan.
pub fn plan(args: &SweepArgs) -> Result<SweepPlan, CommandError> {
    let usage = |message: String| CommandError::Usage(message);
    let levels = if let Some(list) = &args.rates {
        Levels::Rates(
            levels::parse_list(list, |part| part.parse::<Rate>().map(|r| r.per_second()))
                .map_err(|m| usage(format!("--rates: {m}")))?,
        )
    } else if let (Some(from), Some(to), Some(step)) = (args.from, args.to, args.step) {
        Levels::Rates(
            progression(from.per_second(), to.per_second(), step)
                .map_err(|m| usage(format!("--from/--to/--step: {m}")))?,
        )
    } else if let Some(text) = &args.concurrency_levels {
        Levels::Concurrency(
            levels::parse_concurrency_levels(text)
                .map_err(|m| usage(format!("--concurrency-levels: {m}")))?,
        )
    } else {
        return Err(usage(
            "no levels to sweep; give --rates 100,200,400, --from 50/s --to 2000/s --step x1.5, \
             or --concurrency-levels 1..64:x2"
                .into(),
        ));
    };
    if args.max_windows < 2 {
        return Err(usage(format!(
            "--max-windows {} cannot show agreement between windows; use 2 or more",
            args.max_windows
        )));
    }
    if args.precision.0 <= 0.0 {
        return Err(usage(
            "--precision 0 would bisect forever; use e.g. 5%".into(),
        ));
    }
    if args.knee_factor.is_nan() || args.knee_factor <= 1.0 {
        return Err(usage(format!(
            "--knee-factor {} must be above 1, e.g. 2",
            args.knee_factor
        )));
    }
    let interval = sweep::interval_for(args.step_warmup.0, args.window.0).map_err(usage)?;

    let scenario = Scenario::from_file(&args.scenario)?;
    let scenario_connections = scenario.load.connections;
    // The levels replace the scenario's load; a placeholder rate keeps the plan valid when
    // the scenario has none.
    let overrides = Overrides {
        url: args.url.clone(),
        rate: Some(Rate(1.0)),
        concurrency: None,
        duration: None,
        warmup: None,
        connections: Some(
            args.connections
                .unwrap_or(scenario_connections.unwrap_or(0).max(SWEEP_CONNECTIONS)),
        ),
        max_in_flight: args.max_in_flight,
        timeout: args.timeout,
        headers: args.headers.clone(),
        out: args.out.clone(),
        connection: args.connection.clone(),
        ..Overrides::default()
    };
    let base = RunPlan::build(scenario, &args.scenario, &overrides)?;
    if let Some(options) = &base.target.embedded {
        options.validate().map_err(|m| {
            CommandError::Usage(format!(
                "invalid scenario {}: `target.embedded.{m}",
                args.scenario.display()
            ))
        })?;
    }
    let sweep_dir = match &args.out {
        Some(dir) => dir.clone(),
        None => {
            let run_dir = &base.output.run_dir;
            let stamp = run_dir
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            run_dir.with_file_name(format!("sweep-{stamp}"))
        }
    };

    let objective = if args.slos.is_empty() && args.max_error_rate.is_none() {
        Objective {
            gates: base.gates.clone(),
        }
    } else {
        Objective::new(args.slos.clone(), args.max_error_rate)
    };
    if matches!(levels, Levels::Concurrency(_)) {
        for gate in &objective.gates {
            gate.check_plan(false)
                .map_err(|e| usage(format!("--concurrency-levels: {e}")))?;
        }
    }
    Ok(SweepPlan {
        base,
        levels,
        objective,
        rate_tolerance: args.rate_tolerance.0,
        precision: args.precision.0,
        warmup: args.step_warmup.0,
        windows: WindowPolicy {
            length: args.window.0,
            max_count: args.max_windows,
            tolerance: args.stability.0,
        },
        interval,
        generator: GeneratorLimits {
            max_lag_ms: args.max_schedule_lag.0.as_secs_f64() * 1000.0,
            max_cpu: args.max_generator_cpu.0,
        },
        knee_factor: args.knee_factor,
        sweep_dir,
        quiet: args.quiet,
    })
}

pub async fn sweep(args: SweepArgs) -> Result<Outcome, CommandError> {
    let mut plan = plan(&args)?;
    let requested = plan.sweep_dir.clone();
    plan.sweep_dir = crate::report::create_run_dir(&plan.sweep_dir).with_context(|| {
        format!(
            "cannot create the sweep folder {}",
            plan.sweep_dir.display()
        )
    })?;
    if plan.sweep_dir != requested {
        eprintln!(
            "warning: {} is not an empty folder, so this sweep writes to {}",
            requested.display(),
            plan.sweep_dir.display()
        );
    }
    let result = sweep::run(&plan).await?;
    let summary = sweep::report::summarize(&plan, &result);
    sweep::report::write_files(&plan.sweep_dir, &plan, &summary)?;
    print!("{}", sweep::report::render(&summary));
    println!("\nresults: {}", plan.sweep_dir.display());
    Ok(match result.outcome {
        SweepOutcome::Found | SweepOutcome::NotReached => Outcome::Passed,
        SweepOutcome::BelowLowest | SweepOutcome::GeneratorLimited | SweepOutcome::Interrupted => {
            Outcome::GateFailed
        }
    })
}
