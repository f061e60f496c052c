//! Docker backend: a MySQL-compatible server in a container the harness owns.
//!
//! * **Image**: `GONEAWAY_IMAGE` if set, else `spec.image`, else [`DEFAULT_IMAGE`], which
//!   `bash ci/build-image.sh` builds from the host's mariadb-server files (no registry).
//!   Official `mariadb:*` and `mysql:*` images take the same path; the image name picks
//!   the environment variables that create the users ([`Flavor`]).
//! * **Users**: database `goneaway`, app user `goneaway` and admin `root`, with passwords
//!   generated per server.
//! * **Settings** are server arguments: `wait_timeout = "2"` becomes `--wait_timeout=2`.
//! * **Readiness** is a bounded connect-poll (every 10-100 ms) as the app user, then the
//!   admin, with the container's state checked each round so an exit fails at once with
//!   its last log lines. Polling TCP, not a log line, is right for both kinds of image:
//!   the official entrypoints print "ready for connections" twice, first for a temporary
//!   server started with `--skip-networking`, which no TCP connect can reach. After
//!   Start/Reconnect the admin polls and any answer counts (even 1040 from a server whose
//!   slots a reconnecting pool took).
//! * **Address**: every server gets a network of its own (a labelled bridge with a /29
//!   subnet) and an IP on it that Reconnect pins, and its port 3306 is also published on
//!   a pinned `127.0.0.1` port. The pool reaches the container IP directly (no docker-proxy in the
//!   path) on Linux; `GONEAWAY_DOCKER_ADDRESS=published` (or rootless Docker) uses the
//!   published port instead. Either way the address never changes: it is checked again
//!   after every start and reconnect.
//! * **Faults**: Crash = SIGKILL, Shutdown = `docker stop`, Start = `docker start` + wait
//!   ready, Pause/Resume = cgroup freezer, Disconnect/Reconnect = the container's
//!   endpoint on its network removed and re-added with the same IP: packets to the server
//!   go nowhere (no RST; a new connect fails with "no route to host" after ARP gives up,
//!   a query on an open connection hangs), as in a real partition, and TCP connections
//!   that neither side gave up on carry on after Reconnect. On the published route the
//!   cut also stops Docker's port forwarder, so clients see resets and refusals instead.
//!   Crash and Shutdown leave the server down until Start.
//! * **Cleanup**: everything carries `goneaway.*` labels (owner pid, its start time, host,
//!   run, server). Dropping a [`DockerServer`] removes its container and network, inside
//!   or outside a runtime, after success, failure or panic; [`gc`] removes what owners
//!   that no longer exist left behind.
//!
//! Containers are run with testcontainers (a `GenericImage` request; start, stop, pause,
//! unpause and remove through its `ContainerAsync`). What it has no call for (SIGKILL,
//! networks, inspection, logs, gc) goes through bollard, the client under it, with the
//! API version negotiated. Engines older than the API testcontainers speaks are reached
//! through [`bridge`].

mod bridge;

use std::collections::HashMap;
use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::Docker;
use bollard::errors::Error as DockerError;
use bollard::models::{
    ContainerInspectResponse, ContainerStateStatusEnum, EndpointIpamConfig, EndpointSettings,
    HostConfig, Ipam, IpamConfig, NetworkConnectRequest, NetworkCreateRequest,
    NetworkDisconnectRequest,
};
use bollard::query_parameters::{
    CreateImageOptions, KillContainerOptions, ListContainersOptions, ListNetworksOptions,
    LogsOptions, RemoveContainerOptions,
};
use futures::StreamExt;
use rand::Rng;
use testcontainers::core::IntoContainerPort;
use testcontainers::core::client::ClientError;
use testcontainers::runners::AsyncRunner;
use testcontainers::{ContainerAsync, GenericImage, ImageExt, TestcontainersError};

use super::{Action, BackendKind, ConnectInfo, Server, ServerError, ServerSpec};

/// The image the backend runs unless told otherwise; `bash ci/build-image.sh` builds it.
pub const DEFAULT_IMAGE: &str = "goneaway/mariadb:local";
/// The command that builds [`DEFAULT_IMAGE`] (and `goneaway/mariadb:<version>`).
pub const BUILD_COMMAND: &str = "bash ci/build-image.sh";
/// Environment variable that overrides the image of every docker server.
pub const IMAGE_ENV: &str = "GONEAWAY_IMAGE";
/// `container` (default on Linux) or `published`: how the pool reaches the server.
pub const ADDRESS_ENV: &str = "GONEAWAY_DOCKER_ADDRESS";
/// Seconds to wait for a server to become ready (default: 60 local image, 180 official).
pub const READY_TIMEOUT_ENV: &str = "GONEAWAY_DOCKER_READY_TIMEOUT";

pub const LABEL_OWNER_PID: &str = "goneaway.owner.pid";
pub const LABEL_OWNER_START: &str = "goneaway.owner.start";
pub const LABEL_OWNER_HOST: &str = "goneaway.owner.host";
pub const LABEL_RUN: &str = "goneaway.run";
pub const LABEL_SERVER: &str = "goneaway.server";

const APP_USER: &str = "goneaway";
const APP_DATABASE: &str = "goneaway";
const ADMIN_USER: &str = "root";
const SERVER_PORT: u16 = 3306;
/// Subnets for the per-server networks: /29 blocks of 10.213.0.0/16.
const SUBNET_BASE: u32 = 0x0AD5_0000;
const SUBNET_BLOCKS: u32 = 1 << 13;

/// Which environment variables an image takes to create its users.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flavor {
    /// `goneaway/mariadb:*` from `ci/build-image.sh` (MARIADB_* variables, one start).
    Local,
    /// The official `mariadb` image (MARIADB_* variables, a temporary server first).
    MariaDb,
    /// The official `mysql` image or a look-alike (MYSQL_* variables).
    MySql,
}

impl Flavor {
    /// Chosen from the image name: `goneaway/…` is local, a name containing `mariadb` is
    /// MariaDB, anything else (mysql, percona, …) takes the MYSQL_* variables.
    pub fn of(image: &str) -> Flavor {
        let repo = image.rsplit_once(':').map_or(image, |(r, tag)| {
            // A registry port (`host:5000/x`) is not a tag.
            if tag.contains('/') { image } else { r }
        });
        let repo = repo.to_ascii_lowercase();
        if repo.starts_with("goneaway/") {
            Flavor::Local
        } else if repo.contains("mariadb") {
            Flavor::MariaDb
        } else {
            Flavor::MySql
        }
    }

    fn env(self, root_password: &str, app_password: &str) -> Vec<(String, String)> {
        let prefix = match self {
            Flavor::Local | Flavor::MariaDb => "MARIADB",
            Flavor::MySql => "MYSQL",
        };
        [
            ("ROOT_PASSWORD", root_password),
            ("DATABASE", APP_DATABASE),
            ("USER", APP_USER),
            ("PASSWORD", app_password),
        ]
        .into_iter()
        .map(|(k, v)| (format!("{prefix}_{k}"), v.to_string()))
        .collect()
    }

    fn ready_timeout(self) -> Duration {
        match self {
            Flavor::Local => Duration::from_secs(60),
            // Official images initialize a datadir on first start; MySQL 8 is reported to
            // take 30-120 s on slow disks.
            Flavor::MariaDb | Flavor::MySql => Duration::from_secs(180),
        }
    }
}

/// How the pool reaches the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Route {
    /// The container's pinned IP on its own network, port 3306 (no proxy in the path).
    Container,
    /// The pinned published port on 127.0.0.1 (through Docker's port forwarding).
    Published,
}

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

/// One spawn measured by [`measure_spawn`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SpawnTiming {
    /// `DockerServer::start` as a whole: network, container, start, ready.
    pub total: Duration,
    /// From testcontainers' start (create + start) to the first successful query.
    pub start_to_ready: Duration,
}

/// This process's run id: the value of the `goneaway.run` label on what it creates.
pub fn run_id() -> &'static str {
    static RUN: OnceLock<String> = OnceLock::new();
    RUN.get_or_init(|| {
        let ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis())
            .unwrap_or_default();
        format!("{}-{ms:x}", std::process::id())
    })
}

/// A server in a container. Dropping it removes the container and its network.
pub struct DockerServer {
    docker: Docker,
    image: String,
    flavor: Flavor,
    route: Route,
    name: String,
    container_id: String,
    network: String,
    ip: Ipv4Addr,
    host_port: u16,
    app: ConnectInfo,
    admin: ConnectInfo,
    version: String,
    ready_timeout: Duration,
    /// Actions run one at a time.
    acting: tokio::sync::Mutex<()>,
    /// Whether the container is on its network now (false between Disconnect/Reconnect).
    connected: AtomicBool,
    cleanup: Cleanup,
}

impl std::fmt::Debug for DockerServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DockerServer")
            .field("name", &self.name)
            .field("image", &self.image)
            .field("route", &self.route)
            .field("app", &self.app)
            .field("published", &format_args!("127.0.0.1:{}", self.host_port))
            .finish_non_exhaustive()
    }
}

impl DockerServer {
    /// Start a server from `spec` and return once it answers queries.
    pub async fn start(spec: &ServerSpec) -> Result<DockerServer, ServerError> {
        Self::start_timed(spec).await.map(|(server, _)| server)
    }

    async fn start_timed(spec: &ServerSpec) -> Result<(DockerServer, Duration), ServerError> {
        let docker = connect().await?;
        let image = choose_image(spec);
        let flavor = Flavor::of(&image);
        ensure_image(&docker, &image).await?;
        let route = choose_route(&docker).await;
        let ready_timeout = std::env::var(READY_TIMEOUT_ENV)
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs)
            .unwrap_or_else(|| flavor.ready_timeout());

        static SEQ: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "goneaway-{}-{}",
            run_id(),
            SEQ.fetch_add(1, Ordering::Relaxed)
        );
        let labels = labels(&name);
        let mut cleanup = Cleanup::default();

        let (network, ip) = create_network(&docker, &name, &labels).await?;
        cleanup.network = Some(network.clone());

        let root_password = password();
        let app_password = password();
        let cmd: Vec<String> = spec
            .settings
            .iter()
            .map(|(k, v)| format!("--{k}={v}"))
            .collect();

        let (repo, tag) = split_image(&image);
        bridge::ensure(&docker).await?;

        // The published port is picked here and bound by Docker at start; another process
        // may take it in between, so try a few.
        let mut attempt = 0;
        let (container, host_port, started) = loop {
            attempt += 1;
            let host_port = free_port()?;
            // No wait strategy: readiness is our connect-poll below (see the module doc).
            let mut request = GenericImage::new(repo, tag)
                .with_container_name(&name)
                .with_network(&network)
                .with_labels(labels.clone())
                .with_mapped_port(host_port, SERVER_PORT.tcp())
                .with_host_config_modifier(publish_on_loopback)
                .with_cmd(cmd.clone());
            for (key, value) in flavor.env(&root_password, &app_password) {
                request = request.with_env_var(key, value);
            }
            // testcontainers leaves a container that was created but failed to start.
            cleanup.unstarted = Some(name.clone());
            let started = Instant::now();
            match request.start().await {
                Ok(container) => {
                    cleanup.unstarted = None;
                    break (container, host_port, started);
                }
                Err(e) if is_port_conflict(&e) && attempt < 5 => {
                    tracing::debug!("port {host_port} taken at start, trying another: {e}");
                    remove_container(&docker, &name).await?;
                    cleanup.unstarted = None;
                }
                Err(e) if is_port_conflict(&e) => {
                    return Err(ServerError::PortConflict {
                        addr: format!("127.0.0.1:{host_port}"),
                        detail: message_of(&e),
                    });
                }
                Err(e) => return Err(container_error(&format!("start container {name}"), e)),
            }
        };
        let container_id = container.id().to_string();
        cleanup.container = Some(container);
        // Docker gives the first container on a fresh /29 the address after the gateway;
        // read it rather than assume it. Reconnect pins it.
        let inspect = docker
            .inspect_container(&container_id, None)
            .await
            .map_err(|e| docker_error(&format!("inspect container {name}"), e))?;
        let ip = ip_on(&inspect, &network).parse().unwrap_or(ip);

        let host = match route {
            Route::Container => ip.to_string(),
            Route::Published => "127.0.0.1".to_string(),
        };
        let port = match route {
            Route::Container => SERVER_PORT,
            Route::Published => host_port,
        };
        let app = ConnectInfo {
            host: host.clone(),
            port,
            user: APP_USER.into(),
            password: app_password,
            database: APP_DATABASE.into(),
        };
        let admin = ConnectInfo {
            host,
            port,
            user: ADMIN_USER.into(),
            password: root_password,
            database: String::new(),
        };
        let mut server = DockerServer {
            docker,
            image,
            flavor,
            route,
            name,
            container_id,
            network,
            ip,
            host_port,
            app,
            admin,
            version: String::new(),
            ready_timeout,
            acting: tokio::sync::Mutex::new(()),
            connected: AtomicBool::new(true),
            cleanup,
        };
        // From here on an error drops `server`, which removes the container and network.
        server.verify_address().await?;
        server.version = server.wait_ready(true).await?;
        let start_to_ready = started.elapsed();
        tracing::debug!(
            "docker server {} ({}) ready in {start_to_ready:?} at {:?}",
            server.name,
            server.image,
            server.app
        );
        Ok((server, start_to_ready))
    }

    /// The container's name (also the value of its `goneaway.server` label).
    pub fn name(&self) -> &str {
        &self.name
    }
    pub fn container_id(&self) -> &str {
        &self.container_id
    }
    /// The network the container is on, created for it.
    pub fn network(&self) -> &str {
        &self.network
    }
    pub fn image(&self) -> &str {
        &self.image
    }
    pub fn flavor(&self) -> Flavor {
        self.flavor
    }
    pub fn route(&self) -> Route {
        self.route
    }
    /// The container's pinned IP on its network.
    pub fn container_ip(&self) -> Ipv4Addr {
        self.ip
    }
    /// The pinned published address, `127.0.0.1:<port>`.
    pub fn published(&self) -> (String, u16) {
        ("127.0.0.1".to_string(), self.host_port)
    }

    /// The container's last `lines` log lines (the server's stderr).
    pub async fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.docker, &self.container_id, lines).await
    }

    /// Remove the container and network now and report errors (dropping does the same
    /// silently).
    pub async fn close(mut self) -> Result<(), ServerError> {
        let cleanup = std::mem::take(&mut self.cleanup);
        cleanup.run(&self.docker).await
    }

    /// The running container, as testcontainers knows it.
    fn container(&self) -> Result<&ContainerAsync<GenericImage>, ServerError> {
        self.cleanup
            .container
            .as_ref()
            .ok_or_else(|| ServerError::Other(format!("container {} is gone", self.name)))
    }

    async fn inspect(&self) -> Result<ContainerInspectResponse, ServerError> {
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
    async fn wait_ready(&self, first: bool) -> Result<String, ServerError> {
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
                    let conn = super::admin_connect(&self.admin).await?;
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
    async fn verify_address(&self) -> Result<(), ServerError> {
        let inspect = self.inspect().await?;
        // A stopped container has no endpoint and no port mapping to check; Start
        // checks again once it runs.
        let running = inspect.state.as_ref().and_then(|s| s.running);
        if running != Some(true) || !self.connected.load(Ordering::SeqCst) {
            return Ok(());
        }
        let ip = ip_on(&inspect, &self.network);
        if ip != self.ip.to_string() {
            return Err(ServerError::Other(format!(
                "container {} is at `{ip}` on network {}, not at its pinned {}",
                self.name, self.network, self.ip
            )));
        }
        let port = self
            .container()?
            .get_host_port_ipv4(SERVER_PORT)
            .await
            .map_err(|e| container_error(&format!("read the ports of {}", self.name), e))?;
        if port != self.host_port {
            return Err(ServerError::Other(format!(
                "container {} is published on port `{port}`, not on its pinned {}",
                self.name, self.host_port
            )));
        }
        Ok(())
    }

    async fn is_paused(&self) -> Result<bool, ServerError> {
        Ok(self
            .inspect()
            .await?
            .state
            .and_then(|s| s.paused)
            .unwrap_or(false))
    }

    async fn crash(&self) -> Result<(), ServerError> {
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
                return Err(ServerError::Other(format!(
                    "container {} still runs 10s after SIGKILL",
                    self.name
                )));
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        Ok(())
    }

    async fn shutdown(&self) -> Result<(), ServerError> {
        if self.is_paused().await? {
            self.resume().await?;
        }
        self.container()?
            .stop_with_timeout(Some(30))
            .await
            .map_err(|e| container_error(&format!("stop container {}", self.name), e))
    }

    async fn start_again(&self) -> Result<(), ServerError> {
        let running = self.inspect().await?.state.and_then(|s| s.running) == Some(true);
        if !running {
            // testcontainers' start does not wait for readiness again; wait_ready does.
            match self.container()?.start().await {
                Ok(()) => {}
                Err(e) if is_port_conflict(&e) => {
                    return Err(ServerError::PortConflict {
                        addr: format!("127.0.0.1:{}", self.host_port),
                        detail: message_of(&e),
                    });
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

    async fn resume(&self) -> Result<(), ServerError> {
        self.container()?
            .unpause()
            .await
            .map_err(|e| container_error(&format!("unpause container {}", self.name), e))
    }

    async fn disconnect(&self) -> Result<(), ServerError> {
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

    async fn reconnect(&self) -> Result<(), ServerError> {
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

#[async_trait]
impl Server for DockerServer {
    fn backend(&self) -> BackendKind {
        BackendKind::Docker
    }
    fn version(&self) -> String {
        self.version.clone()
    }
    fn app(&self) -> ConnectInfo {
        self.app.clone()
    }
    fn admin(&self) -> ConnectInfo {
        self.admin.clone()
    }
    fn supports(&self, _action: Action) -> bool {
        true
    }
    async fn act(&self, action: Action) -> Result<(), ServerError> {
        let _one_at_a_time = self.acting.lock().await;
        tracing::debug!("docker server {}: {}", self.name, action.name());
        match action {
            Action::Crash => self.crash().await,
            Action::Shutdown => self.shutdown().await,
            Action::Start => self.start_again().await,
            Action::Pause => self
                .container()?
                .pause()
                .await
                .map_err(|e| container_error(&format!("pause container {}", self.name), e)),
            Action::Resume => self.resume().await,
            Action::Disconnect => self.disconnect().await,
            Action::Reconnect => self.reconnect().await,
        }
    }
}

/// What a server leaves behind, removed on drop.
#[derive(Debug, Default)]
struct Cleanup {
    /// The started container.
    container: Option<ContainerAsync<GenericImage>>,
    /// The name of a container created but not (yet) started.
    unstarted: Option<String>,
    network: Option<String>,
}

impl Cleanup {
    fn is_empty(&self) -> bool {
        self.container.is_none() && self.unstarted.is_none() && self.network.is_none()
    }

    async fn run(mut self, docker: &Docker) -> Result<(), ServerError> {
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
        let done = super::block_on_own_thread(async move {
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

/// Start `trials` servers from the default image one after another, each closed before
/// the next, and time each from the call to the first successful query.
pub async fn measure_spawn(trials: usize) -> Result<Vec<SpawnTiming>, ServerError> {
    let spec = ServerSpec {
        backend: BackendKind::Docker,
        ..Default::default()
    };
    let mut timings = Vec::with_capacity(trials);
    for _ in 0..trials {
        let started = Instant::now();
        let (server, start_to_ready) = DockerServer::start_timed(&spec).await?;
        timings.push(SpawnTiming {
            total: started.elapsed(),
            start_to_ready,
        });
        server.close().await?;
    }
    Ok(timings)
}

/// Whether the Docker daemon answers and `image` (default: the one a spec without an
/// image would run) is present; `Err` holds the message a user would get.
pub async fn check_available(image: Option<&str>) -> Result<(), ServerError> {
    let docker = connect().await?;
    let image = image
        .map(str::to_string)
        .unwrap_or_else(|| choose_image(&ServerSpec::default()));
    match docker.inspect_image(&image).await {
        Ok(_) => Ok(()),
        Err(e) if status_of(&e) == Some(404) => Err(missing_image(&image, None)),
        Err(e) => Err(docker_error(&format!("inspect image {image}"), e)),
    }
}

/// For tests that need the docker backend: `true` to go on. Locally, a missing daemon or
/// image (when `need_image`) prints one line on stderr and gives `false`, so the test can
/// return; when the environment variable `CI` is set it panics instead, so CI cannot pass
/// by skipping.
pub async fn ready_or_skip(test: &str, need_image: bool) -> bool {
    let check = match check_available(None).await {
        Err(ServerError::ImageMissing { .. }) if !need_image => Ok(()),
        other => other,
    };
    match check {
        Ok(()) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("{test}: the docker backend must run in CI: {e}")
        }
        Err(e) => {
            eprintln!("skipping {test}: {e}");
            false
        }
    }
}

// ---- the daemon ----

fn docker_host() -> String {
    bridge::engine_host()
}

/// A client at the version the daemon speaks.
async fn connect() -> Result<Docker, ServerError> {
    let unavailable = |detail: String| ServerError::DockerUnavailable {
        host: docker_host(),
        detail,
    };
    // The engine itself, also once DOCKER_HOST points testcontainers at the bridge.
    let host = bridge::engine_host();
    let docker = if host.starts_with("unix://") {
        Docker::connect_with_unix(&host, 120, bollard::API_DEFAULT_VERSION)
    } else {
        Docker::connect_with_defaults()
    }
    .map_err(|e| unavailable(connect_detail(&e)))?;
    match tokio::time::timeout(Duration::from_secs(10), docker.negotiate_version()).await {
        Ok(Ok(docker)) => Ok(docker),
        Ok(Err(e)) => Err(unavailable(connect_detail(&e))),
        Err(_) => Err(unavailable("no answer within 10s".into())),
    }
}

fn connect_detail(e: &DockerError) -> String {
    match e {
        DockerError::SocketNotFoundError(path) => format!("no socket at {path}"),
        other => {
            // hyper wraps the io error ("connection refused") a few levels down.
            let mut innermost: &dyn std::error::Error = other;
            while let Some(source) = innermost.source() {
                innermost = source;
            }
            lowercase_first(&innermost.to_string())
        }
    }
}

fn choose_image(spec: &ServerSpec) -> String {
    std::env::var(IMAGE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| spec.image.clone())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

async fn ensure_image(docker: &Docker, image: &str) -> Result<(), ServerError> {
    match docker.inspect_image(image).await {
        Ok(_) => return Ok(()),
        Err(e) if status_of(&e) == Some(404) => {}
        Err(e) => return Err(docker_error(&format!("inspect image {image}"), e)),
    }
    if Flavor::of(image) == Flavor::Local {
        return Err(missing_image(image, None));
    }
    // An official image: pull it, as testcontainers would, bounded in time.
    let options = CreateImageOptions {
        from_image: Some(image.to_string()),
        ..Default::default()
    };
    let pull = async {
        let mut progress = docker.create_image(Some(options), None, None);
        while let Some(step) = progress.next().await {
            step.map_err(|e| server_message(&e))?;
        }
        Ok::<_, String>(())
    };
    match tokio::time::timeout(Duration::from_secs(600), pull).await {
        Ok(Ok(())) => Ok(()),
        Ok(Err(e)) => Err(missing_image(image, Some(e))),
        Err(_) => Err(missing_image(image, Some("no progress within 600s".into()))),
    }
}

fn missing_image(image: &str, pull_error: Option<String>) -> ServerError {
    let hint = match pull_error {
        None if Flavor::of(image) == Flavor::Local => {
            format!("build it with `{BUILD_COMMAND}`")
        }
        None => format!("pull it with `docker pull {image}`"),
        Some(e) => format!(
            "pulling it failed ({}); pull it by hand or build the local one with `{BUILD_COMMAND}`",
            lowercase_first(&e)
        ),
    };
    ServerError::ImageMissing {
        image: image.to_string(),
        hint,
    }
}

async fn choose_route(docker: &Docker) -> Route {
    match std::env::var(ADDRESS_ENV).ok().as_deref().map(str::trim) {
        Some("published") => return Route::Published,
        Some("container") => return Route::Container,
        _ => {}
    }
    if !cfg!(target_os = "linux") {
        return Route::Published;
    }
    // Rootless Docker keeps container IPs in a namespace the host cannot route to.
    let rootless = docker
        .info()
        .await
        .ok()
        .and_then(|info| info.security_options)
        .is_some_and(|opts| opts.iter().any(|o| o.contains("rootless")));
    if rootless {
        Route::Published
    } else {
        Route::Container
    }
}

/// A labelled bridge network of its own with a free /29 and the container's pinned IP.
async fn create_network(
    docker: &Docker,
    name: &str,
    labels: &HashMap<String, String>,
) -> Result<(String, Ipv4Addr), ServerError> {
    static NEXT: AtomicU32 = AtomicU32::new(0);
    let routes = host_routes();
    // Spread concurrent harnesses over the range; Docker refuses overlapping subnets, so a
    // collision costs one retry.
    let offset = std::process::id().wrapping_mul(2_654_435_761) % SUBNET_BLOCKS;
    let mut last_error = String::new();
    for _ in 0..64 {
        let block = (offset + NEXT.fetch_add(1, Ordering::Relaxed)) % SUBNET_BLOCKS;
        let base = SUBNET_BASE + block * 8;
        // Two prefixes overlap iff they agree on the shorter one; the default route
        // (mask 0) overlaps everything and is not a conflict.
        let overlaps = |&(dest, mask): &(u32, u32)| {
            let shorter = mask & 0xFFFF_FFF8;
            mask != 0 && (base & shorter) == (dest & shorter)
        };
        if routes.iter().any(overlaps) {
            continue;
        }
        let subnet = format!("{}/29", Ipv4Addr::from(base));
        let request = NetworkCreateRequest {
            name: name.to_string(),
            driver: Some("bridge".into()),
            ipam: Some(Ipam {
                config: Some(vec![IpamConfig {
                    subnet: Some(subnet.clone()),
                    gateway: Some(Ipv4Addr::from(base + 1).to_string()),
                    ..Default::default()
                }]),
                ..Default::default()
            }),
            labels: Some(labels.clone()),
            ..Default::default()
        };
        match docker.create_network(request).await {
            Ok(_) => return Ok((name.to_string(), Ipv4Addr::from(base + 2))),
            Err(e) if server_message(&e).contains("overlap") => {
                last_error = server_message(&e);
            }
            Err(e) => return Err(docker_error(&format!("create network {name}"), e)),
        }
    }
    Err(ServerError::Other(format!(
        "found no free /29 subnet in 10.213.0.0/16 for network {name} (last: {last_error})"
    )))
}

/// `repo[:tag]` split for testcontainers (`latest` when untagged; a registry port is not
/// a tag).
fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
}

/// testcontainers publishes on every interface; goneaway's servers listen on loopback only.
fn publish_on_loopback(host_config: &mut HostConfig) {
    for binding in host_config
        .port_bindings
        .iter_mut()
        .flat_map(|ports| ports.values_mut())
        .flatten()
        .flatten()
    {
        binding.host_ip = Some("127.0.0.1".into());
    }
}

/// The container's address on `network` as Docker reports it; empty when it is not on it.
fn ip_on(inspect: &ContainerInspectResponse, network: &str) -> String {
    inspect
        .network_settings
        .as_ref()
        .and_then(|s| s.networks.as_ref())
        .and_then(|n| n.get(network))
        .and_then(|e| e.ip_address.clone())
        .unwrap_or_default()
}

/// Remove a container by name or id, by force; one already gone is fine.
async fn remove_container(docker: &Docker, container: &str) -> Result<(), ServerError> {
    match docker
        .remove_container(container, Some(force_remove()))
        .await
    {
        Ok(()) => Ok(()),
        Err(e) if status_of(&e) == Some(404) => Ok(()),
        Err(e) => Err(docker_error(&format!("remove container {container}"), e)),
    }
}

fn endpoint(ip: Ipv4Addr) -> EndpointSettings {
    EndpointSettings {
        ipam_config: Some(EndpointIpamConfig {
            ipv4_address: Some(ip.to_string()),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// `(destination, mask)` of the host's IPv4 routes, host byte order (Linux only).
fn host_routes() -> Vec<(u32, u32)> {
    let Ok(table) = std::fs::read_to_string("/proc/net/route") else {
        return Vec::new();
    };
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            // The kernel prints the network-order word as a native integer.
            let ip = |v: u32| u32::from_be_bytes(v.to_ne_bytes());
            Some((ip(dest), ip(mask)))
        })
        .collect()
}

fn free_port() -> Result<u16, ServerError> {
    std::net::TcpListener::bind(("127.0.0.1", 0))
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| ServerError::io("pick a free port on 127.0.0.1", e))
}

fn force_remove() -> RemoveContainerOptions {
    RemoveContainerOptions {
        force: true,
        v: true,
        ..Default::default()
    }
}

fn password() -> String {
    const CHARS: &[u8] = b"abcdefghijkmnopqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::rng();
    (0..24)
        .map(|_| CHARS[rng.random_range(0..CHARS.len())] as char)
        .collect()
}

// ---- ownership labels ----

fn labels(server: &str) -> HashMap<String, String> {
    let pid = std::process::id();
    let mut labels = HashMap::from([
        (LABEL_OWNER_PID.to_string(), pid.to_string()),
        (LABEL_OWNER_HOST.to_string(), hostname()),
        (LABEL_RUN.to_string(), run_id().to_string()),
        (LABEL_SERVER.to_string(), server.to_string()),
    ]);
    if let Some(start) = process_start(pid) {
        labels.insert(LABEL_OWNER_START.to_string(), start.to_string());
    }
    labels
}

/// Whether the process that labelled something still runs. Things from another host, or
/// with labels we cannot read, count as alive: gc removes only what it is sure of.
fn owner_alive(labels: &HashMap<String, String>) -> bool {
    if labels
        .get(LABEL_OWNER_HOST)
        .is_some_and(|h| *h != hostname())
    {
        return true;
    }
    let Some(pid) = labels
        .get(LABEL_OWNER_PID)
        .and_then(|p| p.parse::<u32>().ok())
    else {
        return true;
    };
    if !pid_alive(pid) {
        return false;
    }
    // The pid may have been reused by another process since.
    match (
        labels
            .get(LABEL_OWNER_START)
            .and_then(|s| s.parse::<u64>().ok()),
        process_start(pid),
    ) {
        (Some(labelled), Some(now)) => labelled == now,
        _ => true,
    }
}

fn pid_alive(pid: u32) -> bool {
    let Ok(pid) = libc::pid_t::try_from(pid) else {
        return false;
    };
    if pid <= 0 {
        return false;
    }
    // SAFETY: kill with signal 0 sends nothing; it only checks that the process exists.
    let rc = unsafe { libc::kill(pid, 0) };
    rc == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A process's start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
fn process_start(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; fields after it follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

fn hostname() -> String {
    static HOST: OnceLock<String> = OnceLock::new();
    HOST.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/hostname")
            .map(|h| h.trim().to_string())
            .unwrap_or_default()
    })
    .clone()
}

// ---- errors ----

fn status_of(e: &DockerError) -> Option<u16> {
    match e {
        DockerError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The daemon's own words when it gave some, else the client error.
fn server_message(e: &DockerError) -> String {
    match e {
        DockerError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

/// The bollard error under a testcontainers one, when there is one.
fn bollard_cause(e: &TestcontainersError) -> Option<&DockerError> {
    match e {
        TestcontainersError::Client(
            ClientError::Init(e)
            | ClientError::CreateContainer(e)
            | ClientError::StartContainer(e)
            | ClientError::StopContainer(e)
            | ClientError::PauseContainer(e)
            | ClientError::UnpauseContainer(e)
            | ClientError::InspectContainer(e)
            | ClientError::RemoveContainer(e)
            | ClientError::ListContainers(e)
            | ClientError::CreateNetwork(e)
            | ClientError::InspectNetwork(e)
            | ClientError::ListNetworks(e)
            | ClientError::RemoveNetwork(e)
            | ClientError::PullImage { err: e, .. },
        ) => Some(e),
        _ => None,
    }
}

/// The daemon's own words when it gave some, else testcontainers'.
fn message_of(e: &TestcontainersError) -> String {
    bollard_cause(e).map_or_else(|| e.to_string(), server_message)
}

fn status_of_container_error(e: &TestcontainersError) -> Option<u16> {
    bollard_cause(e).and_then(status_of)
}

fn is_port_conflict(e: &TestcontainersError) -> bool {
    let message = message_of(e).to_ascii_lowercase();
    message.contains("port is already allocated") || message.contains("address already in use")
}

fn container_error(what: &str, e: TestcontainersError) -> ServerError {
    match bollard_cause(&e) {
        Some(cause) => docker_error(what, cause),
        None => ServerError::Docker {
            what: what.to_string(),
            message: lowercase_first(&e.to_string()),
        },
    }
}

fn docker_error(what: &str, e: impl std::borrow::Borrow<DockerError>) -> ServerError {
    let e = e.borrow();
    match e {
        DockerError::SocketNotFoundError(_)
        | DockerError::HyperLegacyError { .. }
        | DockerError::RequestTimeoutError => ServerError::DockerUnavailable {
            host: docker_host(),
            detail: connect_detail(e),
        },
        e => ServerError::Docker {
            what: what.to_string(),
            message: lowercase_first(&server_message(e)),
        },
    }
}

fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

fn prefixed(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n{}", tail.trim_end())
    }
}

async fn log_tail(docker: &Docker, container: &str, lines: usize) -> String {
    let options = LogsOptions {
        stdout: true,
        stderr: true,
        tail: lines.to_string(),
        ..Default::default()
    };
    let mut out = String::new();
    let mut stream = docker.logs(container, Some(options));
    let read = async {
        while let Some(Ok(chunk)) = stream.next().await {
            out.push_str(&chunk.to_string());
        }
    };
    let _ = tokio::time::timeout(Duration::from_secs(5), read).await;
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flavor_follows_the_image_name() {
        assert_eq!(Flavor::of("goneaway/mariadb:local"), Flavor::Local);
        assert_eq!(Flavor::of("goneaway/mariadb:10.11.19"), Flavor::Local);
        assert_eq!(Flavor::of("mariadb:11"), Flavor::MariaDb);
        assert_eq!(
            Flavor::of("docker.io/library/mariadb:11.4"),
            Flavor::MariaDb
        );
        assert_eq!(Flavor::of("mysql:8.4"), Flavor::MySql);
        assert_eq!(Flavor::of("registry:5000/mysql"), Flavor::MySql);
        assert_eq!(Flavor::of("percona/percona-server:8.0"), Flavor::MySql);
    }

    #[test]
    fn env_creates_the_app_user_and_database() {
        let has = |env: &[(String, String)], k: &str, v: &str| {
            env.iter().any(|(key, value)| key == k && value == v)
        };
        let env = Flavor::MySql.env("r", "a");
        assert!(has(&env, "MYSQL_ROOT_PASSWORD", "r"));
        assert!(has(&env, "MYSQL_USER", "goneaway"));
        assert!(has(&env, "MYSQL_DATABASE", "goneaway"));
        let env = Flavor::MariaDb.env("r", "a");
        assert!(has(&env, "MARIADB_PASSWORD", "a"));
    }

    #[test]
    fn own_process_is_alive_and_a_dead_pid_is_not() {
        let me = labels("x");
        assert!(owner_alive(&me));
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let pid = child.id();
        child.wait().unwrap();
        let dead = HashMap::from([
            (LABEL_OWNER_PID.to_string(), pid.to_string()),
            (LABEL_OWNER_HOST.to_string(), hostname()),
        ]);
        assert!(!owner_alive(&dead));
        let elsewhere = HashMap::from([
            (LABEL_OWNER_PID.to_string(), pid.to_string()),
            (LABEL_OWNER_HOST.to_string(), "another-host".to_string()),
        ]);
        assert!(owner_alive(&elsewhere));
        let reused = HashMap::from([
            (LABEL_OWNER_PID.to_string(), std::process::id().to_string()),
            (LABEL_OWNER_START.to_string(), "1".to_string()),
        ]);
        assert!(!owner_alive(&reused));
    }

    #[test]
    fn images_split_into_repo_and_tag() {
        assert_eq!(
            split_image("goneaway/mariadb:local"),
            ("goneaway/mariadb", "local")
        );
        assert_eq!(split_image("mysql"), ("mysql", "latest"));
        assert_eq!(
            split_image("registry:5000/mysql"),
            ("registry:5000/mysql", "latest")
        );
        assert_eq!(
            split_image("registry:5000/mysql:8.4"),
            ("registry:5000/mysql", "8.4")
        );
    }

    #[test]
    fn published_ports_bind_loopback_only() {
        use bollard::models::PortBinding;
        let mut config = HostConfig {
            port_bindings: Some(HashMap::from([(
                "3306/tcp".to_string(),
                Some(vec![PortBinding {
                    host_ip: None,
                    host_port: Some("4000".into()),
                }]),
            )])),
            ..Default::default()
        };
        publish_on_loopback(&mut config);
        let binding = &config.port_bindings.unwrap()["3306/tcp"].clone().unwrap()[0];
        assert_eq!(binding.host_ip.as_deref(), Some("127.0.0.1"));
        assert_eq!(binding.host_port.as_deref(), Some("4000"));
    }

    #[test]
    fn passwords_are_long_and_differ() {
        let (a, b) = (password(), password());
        assert_eq!(a.len(), 24);
        assert_ne!(a, b);
        assert!(a.chars().all(|c| c.is_ascii_alphanumeric()));
    }

    #[test]
    fn routes_parse() {
        // Whatever the machine has, parsing must not panic and loopback is not listed
        // as 10.213/16.
        for (dest, mask) in host_routes() {
            assert_eq!(dest & mask, dest);
        }
    }
}
