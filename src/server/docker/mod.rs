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
mod container;
mod error;
mod gc;
mod image;
mod network;

pub use bridge::BRIDGE_ENV;
pub use error::DockerError;
pub use gc::{GcReport, gc};
pub use image::{Flavor, check_available};
pub use network::Route;

use std::net::Ipv4Addr;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use bollard::Docker;
use testcontainers::core::IntoContainerPort;
use testcontainers::runners::AsyncRunner;
use testcontainers::{GenericImage, ImageExt};

use self::error::{connect_detail, container_error, docker_error, is_port_conflict, message_of};
use self::gc::{Cleanup, labels, remove_container};
use self::image::{choose_image, ensure_image, split_image};
use self::network::{choose_route, create_network, ip_on, publish_on_loopback};
use super::shared::{free_port, password};
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

/// The prefix of the owner labels: `goneaway.owner.pid`, `.start`, `.host`.
pub const LABEL_OWNER: &str = "goneaway.owner.";
pub const LABEL_OWNER_PID: &str = "goneaway.owner.pid";
pub const LABEL_RUN: &str = "goneaway.run";
pub const LABEL_SERVER: &str = "goneaway.server";

const APP_USER: &str = "goneaway";
const APP_DATABASE: &str = "goneaway";
const ADMIN_USER: &str = "root";
const SERVER_PORT: u16 = 3306;

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
                    return Err(DockerError::PortConflict {
                        addr: format!("127.0.0.1:{host_port}"),
                        detail: message_of(&e),
                    }
                    .into());
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
        error::log_tail(&self.docker, &self.container_id, lines).await
    }

    /// Remove the container and network now and report errors (dropping does the same
    /// silently).
    pub async fn close(mut self) -> Result<(), ServerError> {
        let cleanup = std::mem::take(&mut self.cleanup);
        cleanup.run(&self.docker).await
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

/// A client at the version the daemon speaks.
pub(super) async fn connect() -> Result<Docker, ServerError> {
    let unavailable = |detail: String| -> ServerError {
        DockerError::Unavailable {
            host: bridge::engine_host(),
            detail,
        }
        .into()
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
