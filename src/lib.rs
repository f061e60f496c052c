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

pub mod check;
pub mod cli;
pub mod error;
pub mod explore;
pub mod fault;
pub mod history;
pub mod lint;
pub mod nemesis;
pub mod pool;
pub mod proxy;
pub mod report;
pub mod run;
pub mod schedule;
pub mod server;
pub mod suite;
pub mod workload;

pub use check::{Expected, Verdict};
pub use error::Error;
pub use history::{ErrorClass, History};
pub use pool::{Pool, PoolSpec};
pub use report::Report;
pub use run::{RunOptions, run};
pub use server::{BackendKind, ConnectInfo};
pub use suite::{Suite, SuiteError};
