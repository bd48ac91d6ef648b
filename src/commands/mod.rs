//! One module per subcommand. Each returns an [`Outcome`] or a [`CommandError`], which `main`
//! maps to the exit status.

pub mod bench;
pub mod compare;
pub mod report;
pub mod run;
pub mod serve;
pub mod sweep;

/// How a command that did its work ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// Finished, and every gate passed: exit status 0.
    Passed,
    /// Finished, and a gate failed: exit status 3.
    GateFailed,
}

/// Why a command could not do its work.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// Invalid usage, scenario or payload: exit status 2.
    #[error("{0}")]
    Usage(String),
    /// Anything else (unreachable target, I/O): exit status 1.
    #[error(transparent)]
    Other(#[from] anyhow::Error),
}

impl From<crate::scenario::ScenarioError> for CommandError {
    fn from(error: crate::scenario::ScenarioError) -> Self {
        CommandError::Usage(error.to_string())
    }
}

impl CommandError {
    pub fn exit_code(&self) -> i32 {
        match self {
            CommandError::Usage(_) => 2,
            CommandError::Other(_) => 1,
        }
    }
}

impl Outcome {
    pub fn exit_code(self) -> i32 {
        match self {
            Outcome::Passed => 0,
            Outcome::GateFailed => 3,
        }
    }
}
