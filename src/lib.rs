//! goneaway: a chaos harness for MySQL client connection pools.
//!
//! A run reads top to bottom: a [`Suite`] is loaded and checked, a server is started, a
//! workload drives the pool while a schedule injects faults, every operation and fault
//! lands in one [`History`], pure checkers turn it into verdicts, and a [`Report`] says
//! whether the suite's expectations were met.
//!
//! ```no_run
//! # async fn demo() -> Result<(), goneaway::Error> {
//! // Test your own pool factory against a built-in scenario.
//! let suite = goneaway::Suite::builtin("idle-expiry-stale-pool")?;
//! let report = suite
//!     .run_with_pool(|db: goneaway::ConnectInfo| async move {
//!         sqlx::mysql::MySqlPoolOptions::new().max_connections(5).connect(&db.url()).await
//!     })
//!     .await?;
//! println!("{}", report.human());
//! # Ok(()) }
//! ```

// The pipeline's stages are private: what a user needs from them is re-exported below,
// so the public API is this list, not the crate's layout (turmoil's shape). `server`,
// `pool`, `proxy` and `report` stay modules: users start servers, implement the pool
// traits, drive the proxy from their own tests and read or compare saved reports.
/// `print!`/`println!` for the CLI's output that ignore a closed stdout
/// (`goneaway list | head -1`): the command still ends as it should, servers cleaned up
/// and exit code kept, instead of panicking half-way.
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

mod check;
mod cli;
mod client;
pub mod contract;
mod error;
pub mod explore;
mod fault;
mod history;
mod lint;
mod nemesis;
pub mod pool;
mod progress;
pub mod proxy;
pub mod report;
mod run;
mod schedule;
pub mod server;
mod suite;
mod workload;

// Everything a user implements (Pool, Conn and OpError), configures (a Suite and the
// specs it holds) or reads back (a Report, a History and their records).
pub use check::{CheckResult, Expect, Expected, Finding, Judgement, LATE, LostInFailover, Verdict};
pub use error::Error;
pub use fault::{Fault, KillTarget};
pub use history::{
    ErrorClass, FaultKind, FaultRecord, FinalRead, History, Lasts, Observed, OpError, OpKind,
    OpRecord, Phase, PoolSample, Session, SessionSample, StatusSample, ToxicCounts,
};
pub use lint::{Lint, Prediction, Where};
pub use pool::{Conn, Pool, PoolSpec};
pub use report::Report;
pub use run::{Observer, RunOptions, Step, run};
pub use schedule::{FaultSpec, Repeat};
pub use server::{BackendKind, ConnectInfo};
pub use suite::{BUILTIN, ProxySpec, Suite, SuiteError, SuiteWarning, builtin_names};
pub use workload::WorkloadSpec;

/// The `goneaway` binary's entry point: parses the process's arguments, runs the
/// command and returns its exit code. Not an API: `src/main.rs` is its only caller.
#[doc(hidden)]
pub fn cli_main() -> i32 {
    cli::main()
}

/// Internals the crate's own integration tests drive directly: an echo upstream, fault
/// guards, the workload's gate, the proxy benchmark, an adapter's pool statement by
/// statement. Only with the `testkit` feature,
/// which nothing but goneaway's own dev-dependency on itself turns on; not a stable API.
#[cfg(feature = "testkit")]
#[doc(hidden)]
pub mod testkit {
    pub use crate::client::{AdapterPool, command as adapter_command, python};
    pub use crate::fault::{FaultCx, NetPath};
    pub use crate::proxy::bench::{BenchOptions, BenchReport, bench_passthrough};
    pub use crate::proxy::testkit::{EchoServer, raw_http};
    pub use crate::workload::Gate;
}
