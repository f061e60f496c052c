//! `goneaway bench`'s hook: server start times from the cached template and from a fresh
//! install.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use super::binary::{find_binary, probe};
use super::launch::Launch;
use super::reaper::Scratch;
use super::template::{copy_template, ensure_template, init_datadir};
use crate::server::ServerError;
use crate::server::shared::blocking;

/// One server start, split in its two parts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnTrial {
    /// Making the datadir: copying the cached template, or running install-db.
    pub prepare: Duration,
    /// Spawn until root logs in over the socket.
    pub ready: Duration,
}

impl SpawnTrial {
    pub fn total(&self) -> Duration {
        self.prepare + self.ready
    }
}

/// Server start times with the cached template datadir vs a fresh `install-db` one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpawnTimes {
    pub version: String,
    pub cached: Vec<SpawnTrial>,
    pub fresh: Vec<SpawnTrial>,
}

/// Start `trials` servers each way (the template itself is built before timing starts).
pub async fn measure_spawn(trials: usize) -> Result<SpawnTimes, ServerError> {
    let bin = probe(find_binary()?).await?;
    let template = {
        let bin = bin.clone();
        blocking(move || ensure_template(&bin)).await?
    };
    let mut times = SpawnTimes {
        version: bin.version.clone(),
        cached: Vec::with_capacity(trials),
        fresh: Vec::with_capacity(trials),
    };
    for _ in 0..trials {
        for cached in [true, false] {
            let scratch = blocking(Scratch::new).await?;
            let mut launch = Launch::new(&bin, &scratch.path, &BTreeMap::new())?;
            let began = Instant::now();
            if cached {
                copy_template(template.clone(), launch.datadir()).await?;
            } else {
                let (bin, datadir, tmp) = (bin.clone(), launch.datadir(), scratch.path.join("tmp"));
                blocking(move || init_datadir(&bin, &datadir, &tmp)).await?;
            }
            let prepared = Instant::now();
            let run = launch.start_retrying(None, true).await?;
            let trial = SpawnTrial {
                prepare: prepared - began,
                ready: prepared.elapsed(),
            };
            drop(run);
            drop(scratch);
            if cached {
                times.cached.push(trial);
            } else {
                times.fresh.push(trial);
            }
        }
    }
    Ok(times)
}
