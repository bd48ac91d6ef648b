//! `inferload report DIR`: prints the summary of a saved run, sweep or comparison again, from
//! its files, as the command that wrote them printed it.
//!
//! Exit status: 0 when the folder was read, 2 when it is not a complete result folder. The
//! verdict of the saved run does not change it.

use std::path::Path;

use super::{CommandError, Outcome};
use crate::cli::ReportArgs;
use crate::regress;
use crate::report::console;
use crate::report::saved::{self, SavedFolder};

pub fn report(args: ReportArgs) -> Result<Outcome, CommandError> {
    let folder = saved::load(&args.dir).map_err(|e| CommandError::Usage(e.to_string()))?;
    super::bench::print_text(&render(&folder, &args.dir));
    Ok(Outcome::Passed)
}

/// Renders a saved folder with the same lines its command printed at the end.
pub fn render(folder: &SavedFolder, dir: &Path) -> String {
    let mut text = String::new();
    match folder {
        SavedFolder::Run {
            summary,
            comparisons,
        } => {
            text.push_str(&console::render(summary));
            for comparison in comparisons {
                text.push_str(&regress::render::console(comparison));
            }
            text.push_str(&format!("\nresults: {}\n", dir.display()));
        }
        SavedFolder::Sweep(summary) => {
            text.push_str(&crate::sweep::report::render(summary));
            text.push_str(&format!("\nresults: {}\n", dir.display()));
        }
        SavedFolder::Compare(comparisons) => {
            for comparison in comparisons {
                text.push_str(&regress::render::console(comparison));
            }
            text.push_str(&format!(
                "reports: {}\n",
                dir.join(regress::MARKDOWN_FILE).display()
            ));
        }
    }
    text
}
