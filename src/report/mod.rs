//! What the user reads: the console summary and the result files of a run.
//!
//! Every file is written atomically (a temporary file in the same folder, then a rename), so a
//! crash or a second Ctrl-C never leaves a half-written file.

pub mod breakdown;
pub mod console;
pub mod hgrm;
pub mod hlog;
pub mod intervals;
pub mod junit;
pub mod markdown;
pub mod progress;
pub mod requests;
pub mod saved;
pub mod stream;
pub mod summary;

use std::io::Write;
use std::path::{Path, PathBuf};

pub use summary::Summary;

/// Writes `contents` to `path` through a temporary file and a rename.
pub fn write_atomic(path: &Path, contents: &[u8]) -> std::io::Result<()> {
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)?;
    let file_name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let temporary = dir.join(format!(".{file_name}.tmp-{}", std::process::id()));
    {
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(contents)?;
        file.sync_all()?;
    }
    std::fs::rename(&temporary, path)
}

/// Writes the end-of-run files of `run_dir`, each atomically: `summary.json` first, then
/// `latency.hgrm`, `service_time.hgrm`, `junit.xml` and `summary.md`. Stops at the first error.
pub fn write_results(
    run_dir: &Path,
    summary: &Summary,
    totals: &crate::stats::Totals,
) -> Result<(), (PathBuf, std::io::Error)> {
    let write = |name: &str, contents: &[u8]| {
        let path = run_dir.join(name);
        write_atomic(&path, contents).map_err(|e| (path, e))
    };
    let json = serde_json::to_vec_pretty(summary).expect("a summary always serializes to JSON");
    write("summary.json", &json)?;
    let timings = &totals.counts.timings;
    write(
        "latency.hgrm",
        hgrm::render(&timings.latency, summary.partial).as_bytes(),
    )?;
    write(
        "service_time.hgrm",
        hgrm::render(&timings.service, summary.partial).as_bytes(),
    )?;
    write("junit.xml", junit::render(summary).as_bytes())?;
    write("summary.md", markdown::render(summary).as_bytes())?;
    Ok(())
}

/// Creates the run's folder. When `dir` already holds files, a numbered sibling (`dir-2`,
/// `dir-3`, ...) is used so that an earlier run is never overwritten.
pub fn create_run_dir(dir: &Path) -> std::io::Result<PathBuf> {
    let is_free = |candidate: &Path| match std::fs::read_dir(candidate) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(_) => false,
    };
    let mut candidate = dir.to_path_buf();
    let mut suffix = 2;
    while !is_free(&candidate) {
        let name = format!(
            "{}-{suffix}",
            dir.file_name()
                .map(|n| n.to_string_lossy())
                .unwrap_or_default()
        );
        candidate = dir.with_file_name(name);
        suffix += 1;
    }
    std::fs::create_dir_all(&candidate)?;
    Ok(candidate)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_dir_never_reuses_nonempty() {
        let temp = tempfile::tempdir().unwrap();
        let first = create_run_dir(&temp.path().join("run")).unwrap();
        write_atomic(&first.join("summary.json"), b"{}").unwrap();
        let second = create_run_dir(&temp.path().join("run")).unwrap();
        assert_ne!(first, second);
        assert!(second.ends_with("run-2"));
        assert_eq!(std::fs::read(first.join("summary.json")).unwrap(), b"{}");
    }
}
