//! The harness's own failures (as opposed to a suite's expectations failing), and the
//! exit codes the CLI maps them to.

use crate::server::ServerError;
use crate::suite::SuiteError;

/// Exit code: every expectation met.
pub const EXIT_OK: i32 = 0;
/// Exit code: a run finished and an expectation was not met (the report says why).
pub const EXIT_UNMET: i32 = 1;
/// Exit code: usage or harness error (one clear line on stderr).
pub const EXIT_HARNESS: i32 = 2;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("server: {0}")]
    Server(#[from] ServerError),
    #[error("pool: {0}")]
    Pool(String),
    #[error("client: {0}")]
    Client(#[from] crate::client::ClientError),
    #[error("client: {0}")]
    MysqlAsync(#[from] crate::pool::mysql_async::MysqlAsyncError),
    #[error("{0}")]
    Harness(String),
}
