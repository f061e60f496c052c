//! Which image a server runs, whether it is here, and pulling an official one.

use std::time::Duration;

use bollard::Docker;
use bollard::query_parameters::CreateImageOptions;
use futures::StreamExt;

use super::error::{DockerError, docker_error, lowercase_first, server_message, status_of};
use super::{APP_DATABASE, APP_USER, BUILD_COMMAND, DEFAULT_IMAGE, IMAGE_ENV, connect};
use crate::server::{ServerError, ServerSpec};

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

    pub(super) fn env(self, root_password: &str, app_password: &str) -> Vec<(String, String)> {
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

    pub(super) fn ready_timeout(self) -> Duration {
        match self {
            Flavor::Local => Duration::from_secs(60),
            // Official images initialize a datadir on first start; MySQL 8 is reported to
            // take 30-120 s on slow disks.
            Flavor::MariaDb | Flavor::MySql => Duration::from_secs(180),
        }
    }
}

pub(super) fn choose_image(spec: &ServerSpec) -> String {
    std::env::var(IMAGE_ENV)
        .ok()
        .filter(|v| !v.trim().is_empty())
        .or_else(|| spec.image.clone())
        .unwrap_or_else(|| DEFAULT_IMAGE.to_string())
}

pub(super) async fn ensure_image(docker: &Docker, image: &str) -> Result<(), ServerError> {
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

pub(super) fn missing_image(image: &str, pull_error: Option<String>) -> ServerError {
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
    DockerError::ImageMissing {
        image: image.to_string(),
        hint,
    }
    .into()
}

/// a tag).
pub(super) fn split_image(image: &str) -> (&str, &str) {
    match image.rsplit_once(':') {
        Some((repo, tag)) if !tag.contains('/') => (repo, tag),
        _ => (image, "latest"),
    }
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
}
