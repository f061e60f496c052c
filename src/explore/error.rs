//! Why an exploration could not be done (as opposed to finding a failure, which is its
//! job).

use std::path::PathBuf;

use crate::error::Error;
use crate::suite::SuiteError;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ExploreError {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("cannot explore `{base}`: {why}")]
    Base { base: String, why: String },
    #[error(
        "no fault kinds left to explore on the {backend} backend (--faults {asked}); generated kinds are: {known}"
    )]
    EmptyAlphabet {
        backend: String,
        asked: String,
        known: String,
    },
    #[error("unknown fault kind `{0}` in --faults; generated kinds are: {1}")]
    UnknownKind(String, String),
    #[error("failed to write {path}: {source}")]
    Write {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("failed to read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("case {case}: {source}")]
    Run { case: String, source: Error },
}
