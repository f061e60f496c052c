//! Ownership and cleanup: the labels on everything a server creates, removing it when the
//! server drops, and [`gc`] for what harnesses that were killed left behind.

use std::collections::HashMap;
use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::{
    ListContainersOptions, ListNetworksOptions, RemoveContainerOptions,
};
use testcontainers::{ContainerAsync, GenericImage};

use super::error::{container_error, docker_error, status_of, status_of_container_error};
use super::{LABEL_OWNER, LABEL_OWNER_PID, LABEL_RUN, LABEL_SERVER, connect, run_id};
use crate::server::ServerError;
use crate::server::shared::{Owner, block_on_own_thread};

/// What [`gc`] removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GcReport {
    /// Names of the containers removed.
    pub containers: Vec<String>,
    /// Names of the networks removed.
    pub networks: Vec<String>,
    /// goneaway containers and networks left alone because their owner is alive.
    pub kept: usize,
}

/// The labels of everything a server creates: its owner (pid, start time, host), the run
/// and the server.
pub(super) fn labels(server: &str) -> HashMap<String, String> {
    let mut labels = Owner::me().to_map(LABEL_OWNER);
    labels.insert(LABEL_RUN.to_string(), run_id().to_string());
    labels.insert(LABEL_SERVER.to_string(), server.to_string());
    labels
}

/// Whether the process that labelled something still runs; unreadable labels count as
/// alive, so gc removes only what it is sure of.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    Owner::from_map(labels, LABEL_OWNER).is_none_or(|owner| owner.is_alive())
}

/// What a server leaves behind, removed on drop.
#[derive(Debug, Default)]
pub(super) struct Cleanup {
    /// The started container.
    pub(super) container: Option<ContainerAsync<GenericImage>>,
    /// The name of a container created but not (yet) started.
    pub(super) unstarted: Option<String>,
    pub(super) network: Option<String>,
}

impl Cleanup {
    fn is_empty(&self) -> bool {
        self.container.is_none() && self.unstarted.is_none() && self.network.is_none()
    }

    pub(super) async fn run(mut self, docker: &Docker) -> Result<(), ServerError> {
        if let Some(container) = self.container.take() {
            // Forced, so a paused container goes too (Docker unfreezes it first).
            let id = container.id().to_string();
            match container.rm().await {
                Ok(()) => {}
                Err(e) if status_of_container_error(&e) == Some(404) => {}
                Err(e) => return Err(container_error(&format!("remove container {id}"), e)),
            }
        }
        if let Some(name) = self.unstarted.take() {
            remove_container(docker, &name).await?;
        }
        if let Some(network) = self.network.take() {
            match docker.remove_network(&network).await {
                Ok(()) => {}
                Err(e) if status_of(&e) == Some(404) => {}
                Err(e) => return Err(docker_error(&format!("remove network {network}"), e)),
            }
        }
        Ok(())
    }
}

impl Drop for Cleanup {
    fn drop(&mut self) {
        if self.is_empty() {
            return;
        }
        let cleanup = std::mem::take(self);
        // Joining means the container is gone when drop returns.
        let done = block_on_own_thread(async move {
            let docker = connect().await.map_err(|e| e.to_string())?;
            tokio::time::timeout(Duration::from_secs(60), cleanup.run(&docker))
                .await
                .map_err(|_| "no answer from docker within 60s".to_string())?
                .map_err(|e| e.to_string())
        });
        match done {
            Some(Ok(())) => {}
            Some(Err(e)) => {
                tracing::warn!("cleaning up a docker server failed: {e}; `goneaway gc` removes it")
            }
            None => {
                tracing::warn!("cleaning up a docker server panicked; `goneaway gc` removes it")
            }
        }
    }
}

/// Remove the containers and networks of goneaway owners that no longer run (on this
/// host): what a killed harness left behind.
pub async fn gc() -> Result<GcReport, ServerError> {
    let docker = connect().await?;
    gc_with(&docker).await
}

async fn gc_with(docker: &Docker) -> Result<GcReport, ServerError> {
    let mut report = GcReport::default();
    let filters = HashMap::from([("label".to_string(), vec![LABEL_OWNER_PID.to_string()])]);
    let containers = docker
        .list_containers(Some(ListContainersOptions {
            all: true,
            filters: Some(filters.clone()),
            ..Default::default()
        }))
        .await
        .map_err(|e| docker_error("list containers", e))?;
    for container in containers {
        let labels = container.labels.unwrap_or_default();
        if owner_alive(&labels) {
            report.kept += 1;
            continue;
        }
        let Some(id) = container.id else { continue };
        let name = container
            .names
            .and_then(|n| n.first().map(|n| n.trim_start_matches('/').to_string()))
            .unwrap_or_else(|| id.clone());
        match docker.remove_container(&id, Some(force_remove())).await {
            Ok(()) => report.containers.push(name),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_error(&format!("remove container {name}"), e)),
        }
    }
    let networks = docker
        .list_networks(Some(ListNetworksOptions {
            filters: Some(filters),
        }))
        .await
        .map_err(|e| docker_error("list networks", e))?;
    for network in networks {
        let labels = network.labels.unwrap_or_default();
        if owner_alive(&labels) {
            report.kept += 1;
            continue;
        }
        let Some(name) = network.name else { continue };
        match docker.remove_network(&name).await {
            Ok(()) => report.networks.push(name),
            Err(e) if status_of(&e) == Some(404) => {}
            Err(e) => return Err(docker_error(&format!("remove network {name}"), e)),
        }
    }
    Ok(report)
}

/// Remove a container by name or id, by force; one already gone is fine.
pub(super) async fn remove_container(docker: &Docker, container: &str) -> Result<(), ServerError> {
    match docker
        .remove_container(container, Some(force_remove()))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(docker_error(&format!("remove container {container}"), e)),
    }
}

fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    }
}
