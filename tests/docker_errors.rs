//! What a user sees when the Docker daemon is not there. One test in its own binary: it
//! points DOCKER_HOST at a socket that does not exist before anything else runs.
#![cfg(feature = "docker")]

use goneaway::server::docker::DockerServer;
use goneaway::server::{BackendKind, ServerSpec};

#[test]
fn no_daemon_says_so_in_one_line() {
    // SAFETY: the only test in this binary, before any runtime or other thread starts.
    unsafe { std::env::set_var("DOCKER_HOST", "unix:///nonexistent/docker.sock") };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let spec = ServerSpec {
        backend: BackendKind::Docker,
        ..Default::default()
    };
    let err = runtime
        .block_on(DockerServer::start(&spec))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        "cannot reach the docker daemon at unix:///nonexistent/docker.sock \
         (no socket at /nonexistent/docker.sock); start it or use --backend process"
    );
    let err = runtime
        .block_on(goneaway::server::docker::gc())
        .unwrap_err()
        .to_string();
    assert!(err.starts_with("cannot reach the docker daemon"), "{err}");

    // A socket file nobody listens on (a daemon that died).
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("docker.sock");
    drop(std::os::unix::net::UnixListener::bind(&path).unwrap());
    let host = format!("unix://{}", path.display());
    // SAFETY: as above; the runtime is current-thread and idle.
    unsafe { std::env::set_var("DOCKER_HOST", &host) };
    let err = runtime
        .block_on(DockerServer::start(&spec))
        .unwrap_err()
        .to_string();
    assert_eq!(
        err,
        format!(
            "cannot reach the docker daemon at {host} (connection refused \
             (os error 111)); start it or use --backend process"
        )
    );
}
