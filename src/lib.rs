//! goneaway: a chaos harness for MySQL client connection pools.
//!
//! A run reads top to bottom: a [`Suite`] is loaded and checked, a server (and optionally
//! a proxy) is started, a workload drives the pool while a schedule injects faults, every
//! operation and fault lands in one [`History`], pure checkers turn it into verdicts, and
//! a [`Report`] says whether the suite's expectations were met.

pub mod history;
pub mod proxy;
pub mod server;

pub use history::{ErrorClass, History};
