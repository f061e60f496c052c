//! What is done to a running container: readiness, address checks, and the actions
//! faults use (kill, stop, start, pause, network cut).

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, NetworkConnectRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::KillContainerOptions;
use testcontainers::{ContainerAsync, GenericImage};

use super::error::{
    DockerError, container_error, docker_error, is_port_conflict, message_of, prefixed,
};
use super::network::{endpoint, ip_on};
use super::{DockerServer, SERVER_PORT};
use crate::server::{ServerError, admin_connect};

impl DockerServer {
    fn error(&self, message: String) -> ServerError {
        DockerError::Container {
            name: self.name.clone(),
            message,
        }
        .into()
    }

    /// The running container, as testcontainers knows it.
    pub(super) fn container(&self) -> Result<&ContainerAsync<GenericImage>, ServerError> {
        self.cleanup
            .container
            .as_ref()
            .ok_or_else(|| self.error("it is gone".into()))
    }

    pub(super) async fn inspect(&self) -> Result<ContainerInspectResponse, ServerError> {
        self.docker
            .inspect_container(&self.container_id, None)
            .await
            .map_err(|e| docker_error(&format!("inspect container {}", self.name), e))
    }

    /// Wait until the server answers, bounded by the ready timeout; the server version.
    ///
    /// On the first start the app user must log in and query (its user and database
    /// exist) and then the admin. Later (Start, Reconnect) only the admin polls, and an
    /// error packet also counts as an answer: a pool that reconnected first may hold every
    /// connection slot (1040), which must not make a healthy server look unready.
    pub(super) async fn wait_ready(&self, first: bool) -> Result<String, ServerError> {
        use sqlx::{ConnectOptions, Connection};
        let started = Instant::now();
        let deadline = started + self.ready_timeout;
        // A refused connect costs microseconds; poll often at first, then back off.
        let mut pause = Duration::from_millis(10);
        let mut last_error: String;
        let who = if first { &self.app } else { &self.admin };
        loop {
            let state = self.inspect().await?.state.unwrap_or_default();
            if !state.running.unwrap_or(false) {
                let status = state.status.unwrap_or(ContainerStateStatusEnum::EMPTY);
                if matches!(
                    status,
                    ContainerStateStatusEnum::EXITED | ContainerStateStatusEnum::DEAD
                ) {
                    return Err(ServerError::Exited {
                        status: format!(
                            "container {} exited with code {}",
                            self.name,
                            state.exit_code.unwrap_or(-1)
                        ),
                        log_tail: prefixed(&self.log_tail(20).await),
                    });
                }
            }
            let attempt = async {
                let mut conn = who.options().connect().await?;
                let version: String = sqlx::query_scalar("SELECT VERSION()")
                    .fetch_one(&mut conn)
                    .await?;
                let _ = conn.close().await;
                Ok::<_, sqlx::Error>(version)
            };
            match tokio::time::timeout(Duration::from_secs(3), attempt).await {
                Ok(Ok(version)) if first => {
                    // The admin too: the harness needs it for KILL and SET GLOBAL.
                    let conn = admin_connect(&self.admin).await?;
                    let _ = conn.close().await;
                    return Ok(version);
                }
                Ok(Ok(version)) => return Ok(version),
                Ok(Err(sqlx::Error::Database(_))) if !first => return Ok(self.version.clone()),
                Ok(Err(e)) => last_error = e.to_string(),
                Err(_) => last_error = "a connect attempt got no answer within 3s".into(),
            }
            if Instant::now() >= deadline {
                return Err(ServerError::NotReady {
                    addr: format!(
                        "{}:{} (container {})",
                        self.app.host, self.app.port, self.name
                    ),
                    waited: started.elapsed(),
                    detail: last_error,
                    log_tail: prefixed(&self.log_tail(20).await),
                });
            }
            tokio::time::sleep(pause).await;
            pause = (pause + Duration::from_millis(5)).min(Duration::from_millis(100));
        }
    }

    /// Check that the container is where the pool expects it: pinned IP on its network
    /// (when connected) and the pinned published port.
    pub(super) async fn verify_address(&self) -> Result<(), ServerError> {
        let inspect = self.inspect().await?;
        // A stopped container has no endpoint and no port mapping to check; Start
        // checks again once it runs.
        let running = inspect.state.as_ref().and_then(|s| s.running);
        if running != Some(true) || !self.connected.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ip = ip_on(&inspect, &self.network);
        if ip != self.ip.to_string() {
            return Err(self.error(format!(
                "it is at `{ip}` on network {}, not at its pinned {}",
                self.network, self.ip
            )));
        }
        let port = self
            .container()?
            .get_host_port_ipv4(SERVER_PORT)
            .await
            .map_err(|e| container_error(&format!("read the ports of {}", self.name), e))?;
        if port != self.host_port {
            return Err(self.error(format!(
                "it is published on port `{port}`, not on its pinned {}",
                self.host_port
            )));
        }
        Ok(())
    }

    pub(super) async fn is_paused(&self) -> Result<bool, ServerError> {
        Ok(self
            .inspect()
            .await?
            .state
            .and_then(|s| s.paused)
            .unwrap_or(false))
    }

    pub(super) async fn crash(&self) -> Result<(), ServerError> {
        if self.is_paused().await? {
            self.resume().await?;
        }
        let options = KillContainerOptions {
            signal: "SIGKILL".into(),
        };
        self.docker
            .kill_container(&self.container_id, Some(options))
            .await
            .map_err(|e| docker_error(&format!("kill container {}", self.name), e))?;
        // `docker kill` returns once the signal is sent; wait until the container is down
        // so a following Start does not race it.
        let deadline = Instant::now() + Duration::from_secs(10);
        while self.inspect().await?.state.and_then(|s| s.running) == Some(true) {
            if Instant::now() >= deadline {
                return Err(self.error("it still runs 10s after SIGKILL".into()));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    pub(super) async fn shutdown(&self) -> Result<(), ServerError> {
        if self.is_paused().await? {
            self.resume().await?;
        }
        self.container()?
            .stop_with_timeout(Some(30))
            .await
            .map_err(|e| container_error(&format!("stop container {}", self.name), e))
    }

    pub(super) async fn start_again(&self) -> Result<(), ServerError> {
        let running = self.inspect().await?.state.and_then(|s| s.running) == Some(true);
        if !running {
            // testcontainers' start does not wait for readiness again; wait_ready does.
            match self.container()?.start().await {
                Ok(()) => {}
                Err(e) if is_port_conflict(&e) => {
                    return Err(DockerError::PortConflict {
                        addr: format!("127.0.0.1:{}", self.host_port),
                        detail: message_of(&e),
                    }
                    .into());
                }
                Err(e) => {
                    return Err(container_error(
                        &format!("start container {}", self.name),
                        e,
                    ));
                }
            }
        }
        self.verify_address().await?;
        // Disconnected, it cannot be reached; Reconnect waits instead.
        if self.connected.load(Ordering::SeqCst) {
            self.wait_ready(false).await?;
        }
        Ok(())
    }

    pub(super) async fn resume(&self) -> Result<(), ServerError> {
        self.container()?
            .unpause()
            .await
            .map_err(|e| container_error(&format!("unpause container {}", self.name), e))
    }

    pub(super) async fn disconnect(&self) -> Result<(), ServerError> {
        let request = NetworkDisconnectRequest {
            container: self.container_id.clone(),
            force: Some(false),
        };
        self.docker
            .disconnect_network(&self.network, request)
            .await
            .map_err(|e| {
                docker_error(
                    &format!("disconnect {} from {}", self.name, self.network),
                    e,
                )
            })?;
        self.connected.store(false, Ordering::SeqCst);
        Ok(())
    }

    pub(super) async fn reconnect(&self) -> Result<(), ServerError> {
        let request = NetworkConnectRequest {
            container: self.container_id.clone(),
            endpoint_config: Some(endpoint(self.ip)),
        };
        self.docker
            .connect_network(&self.network, request)
            .await
            .map_err(|e| docker_error(&format!("connect {} to {}", self.name, self.network), e))?;
        self.connected.store(true, Ordering::SeqCst);
        self.verify_address().await?;
        // A server started while cut off (or any running one) answers before we return;
        // a paused one cannot, and a stopped one waits for Start.
        let state = self.inspect().await?.state.unwrap_or_default();
        if state.running == Some(true) && state.paused != Some(true) {
            self.wait_ready(false).await?;
        }
        Ok(())
    }
}
