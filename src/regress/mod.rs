//! Regression benchmarks: saved baselines, statistical comparison of two runs, and verdicts
//! for CI.
//!
//! A run folder contains per-interval histograms and counters ([`record`]). A baseline is a copy
//! of a run folder under `<baselines>/<name>/<scenario>/`. A comparison ([`compare`]) resamples
//! the intervals of both runs ([`bootstrap`]) to estimate each metric's change with a
//! confidence interval and a p-value, then applies a noise threshold per metric
//! ([`settings`]); [`render`] writes the console lines, `compare.md` and `compare.junit.xml`.

pub mod bootstrap;
pub mod compare;
pub mod data;
pub mod record;
pub mod render;
pub mod settings;

use std::path::{Path, PathBuf};

pub use compare::{compare, Comparison, Verdict};
pub use data::RunData;
pub use settings::{CompareOptions, CompareSettings};

/// Default parent folder of saved baselines, relative to the working directory.
pub const DEFAULT_BASELINES_DIR: &str = "results/baselines";

/// File names of the comparison reports.
pub const MARKDOWN_FILE: &str = "compare.md";
pub const JUNIT_FILE: &str = "compare.junit.xml";
pub const JSON_FILE: &str = "compare.json";

/// Errors reading runs and baselines or writing reports.
#[derive(Debug, thiserror::Error)]
pub enum RegressError {
    #[error("cannot read {path}: {source}; is it a run folder written by inferload run?")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Invalid { path: PathBuf, message: String },
    #[error("baseline {name:?} has no run of scenario {scenario:?} (looked in {path}); save one first with --save-baseline {name}")]
    MissingBaseline {
        name: String,
        scenario: String,
        path: PathBuf,
    },
    #[error("cannot write {path}: {source}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Checks a baseline name: it becomes a folder name.
pub fn check_baseline_name(name: &str) -> Result<(), String> {
    if name.is_empty()
        || name.starts_with('.')
        || name.contains(['/', '\\'])
        || name.chars().any(char::is_control)
    {
        return Err(format!(
            "baseline name {name:?} cannot name a folder; use letters, digits, - and _"
        ));
    }
    Ok(())
}

/// Folder of the baseline `name` of `scenario`.
pub fn baseline_dir(root: &Path, name: &str, scenario: &str) -> PathBuf {
    root.join(name).join(scenario)
}

/// Loads the baseline `name` of `scenario`.
pub fn load_baseline(root: &Path, name: &str, scenario: &str) -> Result<RunData, RegressError> {
    let dir = baseline_dir(root, name, scenario);
    if !dir.join("summary.json").is_file() {
        return Err(RegressError::MissingBaseline {
            name: name.to_string(),
            scenario: scenario.to_string(),
            path: dir,
        });
    }
    RunData::load(&dir)
}

/// Copies the result files of `run_dir` into the baseline `name` of `scenario`, replacing an
/// earlier baseline of that name. The copy is made in a sibling folder and renamed into place,
/// so an interrupted save leaves the earlier baseline whole.
pub fn save_baseline(
    run_dir: &Path,
    root: &Path,
    name: &str,
    scenario: &str,
) -> Result<PathBuf, RegressError> {
    let target = baseline_dir(root, name, scenario);
    let parent = target.parent().expect("a baseline folder has a parent");
    let write_error = |path: &Path| {
        let path = path.to_path_buf();
        move |source| RegressError::Write { path, source }
    };
    std::fs::create_dir_all(parent).map_err(write_error(parent))?;
    let staging = parent.join(format!(".{scenario}.saving-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(write_error(&staging))?;
    let entries = std::fs::read_dir(run_dir).map_err(|source| RegressError::Read {
        path: run_dir.to_path_buf(),
        source,
    })?;
    for entry in entries {
        let entry = entry.map_err(|source| RegressError::Read {
            path: run_dir.to_path_buf(),
            source,
        })?;
        let file_name = entry.file_name();
        let text = file_name.to_string_lossy();
        // Temporary files of atomic writes and earlier comparison reports are not results.
        if text.starts_with('.') || text.starts_with("compare.") || !entry.path().is_file() {
            continue;
        }
        let destination = staging.join(&file_name);
        std::fs::copy(entry.path(), &destination).map_err(write_error(&destination))?;
    }
    let retired = parent.join(format!(".{scenario}.replaced-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&retired);
    if target.exists() {
        std::fs::rename(&target, &retired).map_err(write_error(&target))?;
    }
    std::fs::rename(&staging, &target).map_err(write_error(&target))?;
    let _ = std::fs::remove_dir_all(&retired);
    Ok(target)
}

/// Writes `compare.md`, `compare.junit.xml` and `compare.json` into `dir`.
pub fn write_reports(dir: &Path, comparisons: &[Comparison]) -> Result<(), RegressError> {
    let json = serde_json::to_vec_pretty(comparisons).expect("comparisons serialize to JSON");
    for (file, contents) in [
        (MARKDOWN_FILE, render::markdown(comparisons).into_bytes()),
        (JUNIT_FILE, render::junit(comparisons).into_bytes()),
        (JSON_FILE, json),
    ] {
        let path = dir.join(file);
        crate::report::write_atomic(&path, &contents)
            .map_err(|source| RegressError::Write { path, source })?;
    }
    Ok(())
}
