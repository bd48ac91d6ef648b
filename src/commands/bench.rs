//! `inferload bench`: runs scenarios in sequence, each compared with its baseline, for a CI
//! job that gates a deployment or a model release. Also contains the baseline step shared with
//! `inferload run`.

use std::path::{Path, PathBuf};

use super::{CommandError, Outcome};
use crate::cli::BenchArgs;
use crate::regress::settings::BaselineArgs;
use crate::regress::{self, render, CompareSettings, Comparison, RunData};
use crate::report::console;
use crate::scenario::{Overrides, RunPlan, Scenario};

/// Writes `text` to stdout. A closed stdout (e.g. `| head`) loses only the console copy,
/// because every result is also on disk.
pub fn print_text(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// Checks the baseline options before any load, so a bad name or option costs no run.
pub fn check_baseline_args(args: &BaselineArgs) -> Result<CompareSettings, CommandError> {
    for name in args.baseline.iter().chain(&args.save_baseline) {
        regress::check_baseline_name(name).map_err(CommandError::Usage)?;
    }
    CompareSettings::from_options(&args.compare).map_err(CommandError::Usage)
}

/// Checks that the baseline to compare with exists, before the run spends its time.
pub fn check_baseline_exists(args: &BaselineArgs, scenario: &str) -> Result<(), CommandError> {
    let Some(name) = &args.baseline else {
        return Ok(());
    };
    let dir = regress::baseline_dir(&args.baselines_dir, name, scenario);
    if dir.join("summary.json").is_file() {
        return Ok(());
    }
    Err(CommandError::Usage(
        regress::RegressError::MissingBaseline {
            name: name.clone(),
            scenario: scenario.to_string(),
            path: dir,
        }
        .to_string(),
    ))
}

/// After a run: compares it with `--baseline` (writing the reports into the run folder) and
/// saves it as `--save-baseline`. Returns the comparison, when one was asked for.
pub fn baseline_step(
    run_dir: &Path,
    scenario: &str,
    args: &BaselineArgs,
    settings: &CompareSettings,
) -> Result<Option<Comparison>, CommandError> {
    let mut comparison = None;
    if let Some(name) = &args.baseline {
        let old = regress::load_baseline(&args.baselines_dir, name, scenario)
            .map_err(|e| CommandError::Usage(e.to_string()))?;
        let new = RunData::load(run_dir).map_err(anyhow::Error::from)?;
        let found = regress::compare(&old, &new, settings);
        regress::write_reports(run_dir, std::slice::from_ref(&found))
            .map_err(anyhow::Error::from)?;
        comparison = Some(found);
    }
    if let Some(name) = &args.save_baseline {
        let saved = regress::save_baseline(run_dir, &args.baselines_dir, name, scenario)
            .map_err(anyhow::Error::from)?;
        print_text(&format!("baseline {name} saved: {}\n", saved.display()));
    }
    Ok(comparison)
}

/// Scenario files named by `paths`: files as given, folders as their `*.toml` files in name
/// order.
pub fn scenario_files(paths: &[PathBuf]) -> Result<Vec<PathBuf>, CommandError> {
    let mut files = Vec::new();
    for path in paths {
        if path.is_dir() {
            let entries = std::fs::read_dir(path).map_err(|e| {
                CommandError::Usage(format!("cannot read folder {}: {e}", path.display()))
            })?;
            let mut found: Vec<PathBuf> = entries
                .filter_map(|entry| entry.ok().map(|e| e.path()))
                .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "toml"))
                .collect();
            if found.is_empty() {
                return Err(CommandError::Usage(format!(
                    "folder {} contains no *.toml scenario",
                    path.display()
                )));
            }
            found.sort();
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    Ok(files)
}

pub async fn bench(args: BenchArgs) -> Result<Outcome, CommandError> {
    let settings = check_baseline_args(&args.baseline)?;
    let out = args.out.clone().unwrap_or_else(|| {
        PathBuf::from("results")
            .join("bench")
            .join(crate::scenario::plan::utc_timestamp())
    });
    let out = crate::report::create_run_dir(&out)
        .map_err(|e| anyhow::anyhow!("cannot create the results folder {}: {e}", out.display()))?;

    // Plan every scenario first: a usage error in the last one should cost no run.
    let mut plans = Vec::new();
    let mut names = std::collections::BTreeSet::new();
    for file in scenario_files(&args.scenarios)? {
        let scenario = Scenario::from_file(&file)?;
        let mut overrides = Overrides {
            url: args.url.clone(),
            duration: args.duration,
            warmup: args.warmup,
            headers: args.headers.clone(),
            connection: args.connection.clone(),
            ..Overrides::default()
        };
        let probe = RunPlan::build(Scenario::from_file(&file)?, &file, &overrides)?;
        if !names.insert(probe.name.clone()) {
            return Err(CommandError::Usage(format!(
                "two scenarios are named {:?} ({}); baselines are kept per scenario name, so \
                 give each a distinct `name`",
                probe.name,
                file.display()
            )));
        }
        overrides.out = Some(out.join(&probe.name));
        let plan = RunPlan::build(scenario, &file, &overrides)?;
        if let Some(options) = &plan.target.embedded {
            options.validate().map_err(|m| {
                CommandError::Usage(format!(
                    "invalid scenario {}: `target.embedded.{m}",
                    file.display()
                ))
            })?;
        }
        check_baseline_exists(&args.baseline, &plan.name)?;
        plans.push(plan);
    }

    let mut comparisons = Vec::new();
    let mut gates_failed = false;
    for plan in plans {
        let name = plan.name.clone();
        print_text(&format!("bench: running {name}\n"));
        let (summary, run_dir) = super::run::execute(plan, args.quiet).await?;
        print_text(&console::render(&summary));
        gates_failed |= !summary.passed;
        if let Some(comparison) = baseline_step(&run_dir, &name, &args.baseline, &settings)? {
            print_text(&render::console(&comparison));
            comparisons.push(comparison);
        }
    }

    if !comparisons.is_empty() {
        regress::write_reports(&out, &comparisons).map_err(anyhow::Error::from)?;
        print_text("\n");
        for comparison in &comparisons {
            print_text(&format!("{}\n", render::headline(comparison)));
        }
        print_text(&format!(
            "reports: {}\n",
            out.join(regress::MARKDOWN_FILE).display()
        ));
    }
    print_text(&format!("results: {}\n", out.display()));
    let regressed = comparisons.iter().any(|c| !c.passed());
    Ok(if regressed || gates_failed {
        Outcome::GateFailed
    } else {
        Outcome::Passed
    })
}
