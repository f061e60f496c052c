//! Docker's failures as a user should read them: the daemon's own words where it gave
//! some, one clear line when there is no daemon, image or port.

use std::time::Duration;

use bollard::Docker;
use bollard::errors::Error as BollardError;
use bollard::query_parameters::LogsOptions;
use futures::StreamExt;
use testcontainers::TestcontainersError;
use testcontainers::core::client::ClientError;

use super::bridge;
use crate::server::ServerError;

/// What went wrong with Docker itself. Wrapped in [`ServerError::Docker`].
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DockerError {
    #[error(
        "cannot reach the docker daemon at {host} ({detail}); start it or use --backend process"
    )]
    Unavailable { host: String, detail: String },
    #[error("docker image {image} is not on this machine; {hint}")]
    ImageMissing { image: String, hint: String },
    #[error("cannot publish the server on {addr}: the port is taken by another process ({detail})")]
    PortConflict { addr: String, detail: String },
    #[error("docker {what} failed: {message}")]
    Api { what: String, message: String },
    #[error(
        "the docker engine at `{host}` is older than Docker API {needed}, which testcontainers \
         needs, and goneaway can bridge only unix:// and tcp:// hosts; upgrade the engine"
    )]
    Unbridgeable { host: String, needed: String },
    #[error(
        "the docker engine at {host} speaks API {engine}, older than the {needed} testcontainers \
         sends, and {env}=0 turned the bridge off; unset it or upgrade the engine"
    )]
    BridgeOff {
        host: String,
        engine: String,
        needed: String,
        env: &'static str,
    },
    #[error("container {name}: {message}")]
    Container { name: String, message: String },
}

/// How a failed connect to the daemon reads: the innermost cause ("connection refused").
pub(super) fn connect_detail(e: &BollardError) -> String {
    match e {
        BollardError::SocketNotFoundError(path) => format!("no socket at {path}"),
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

pub(super) fn status_of(e: &BollardError) -> Option<u16> {
    match e {
        BollardError::DockerResponseServerError { status_code, .. } => Some(*status_code),
        _ => None,
    }
}

/// The daemon's own words when it gave some, else the client error.
pub(super) fn server_message(e: &BollardError) -> String {
    match e {
        BollardError::DockerResponseServerError { message, .. } => message.trim().to_string(),
        other => other.to_string(),
    }
}

/// The bollard error under a testcontainers one, when there is one.
fn bollard_cause(e: &TestcontainersError) -> Option<&BollardError> {
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
pub(super) fn message_of(e: &TestcontainersError) -> String {
    bollard_cause(e).map_or_else(|| e.to_string(), server_message)
}

pub(super) fn status_of_container_error(e: &TestcontainersError) -> Option<u16> {
    bollard_cause(e).and_then(status_of)
}

pub(super) fn is_port_conflict(e: &TestcontainersError) -> bool {
    let message = message_of(e).to_ascii_lowercase();
    message.contains("port is already allocated") || message.contains("address already in use")
}

pub(super) fn container_error(what: &str, e: TestcontainersError) -> ServerError {
    match bollard_cause(&e) {
        Some(cause) => docker_error(what, cause),
        None => DockerError::Api {
            what: what.to_string(),
            message: lowercase_first(&e.to_string()),
        }
        .into(),
    }
}

pub(super) fn docker_error(what: &str, e: impl std::borrow::Borrow<BollardError>) -> ServerError {
    let e = e.borrow();
    match e {
        BollardError::SocketNotFoundError(_)
        | BollardError::HyperLegacyError { .. }
        | BollardError::RequestTimeoutError => DockerError::Unavailable {
            host: bridge::engine_host(),
            detail: connect_detail(e),
        }
        .into(),
        e => DockerError::Api {
            what: what.to_string(),
            message: lowercase_first(&server_message(e)),
        }
        .into(),
    }
}

pub(super) fn lowercase_first(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(c) => c.to_lowercase().chain(chars).collect(),
        None => String::new(),
    }
}

pub(super) fn prefixed(tail: &str) -> String {
    if tail.trim().is_empty() {
        String::new()
    } else {
        format!("\n{}", tail.trim_end())
    }
}

pub(super) async fn log_tail(docker: &Docker, container: &str, lines: usize) -> String {
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
