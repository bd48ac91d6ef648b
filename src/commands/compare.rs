//! `inferload compare OLD NEW`: compares two saved result folders.

use super::{CommandError, Outcome};
use crate::cli::CompareArgs;
use crate::regress::{self, render, CompareSettings, RunData};

pub fn compare(args: CompareArgs) -> Result<Outcome, CommandError> {
    let settings = CompareSettings::from_options(&args.compare).map_err(CommandError::Usage)?;
    let old = RunData::load(&args.old).map_err(usage)?;
    let new = RunData::load(&args.new).map_err(usage)?;
    let comparison = regress::compare(&old, &new, &settings);
    super::bench::print_text(&render::console(&comparison));
    let out = args.out.unwrap_or(args.new);
    let comparisons = [comparison];
    regress::write_reports(&out, &comparisons).map_err(anyhow::Error::from)?;
    super::bench::print_text(&format!(
        "reports: {}\n",
        out.join(regress::MARKDOWN_FILE).display()
    ));
    Ok(if comparisons[0].passed() {
        Outcome::Passed
    } else {
        Outcome::GateFailed
    })
}

/// A folder that is not a readable run is the user's to fix.
fn usage(error: regress::RegressError) -> CommandError {
    CommandError::Usage(error.to_string())
}
