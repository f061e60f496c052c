//! The battery: which faults, which client configurations, and the cells they make.
//!
//! Both are data under `suites/contract/`, compiled into the binary. A fault is a
//! scenario: a whole suite except `[client]` and `[pool]`. A client configuration is a
//! fragment holding only those. A cell's suite is the scenario's text followed by the
//! fragment's, read by the same parser as any suite file, so a cell is refused for the
//! same reasons a suite is, and a complaint points into whichever file the line came from.

use std::path::Path;

use crate::suite::{Suite, SuiteError};

/// The faults, in the table's column order.
const FAULTS: [(&str, &str); 8] = [
    (
        "unreachable",
        include_str!("../../suites/contract/faults/unreachable.toml"),
    ),
    (
        "idle-expiry",
        include_str!("../../suites/contract/faults/idle-expiry.toml"),
    ),
    (
        "kill-idle",
        include_str!("../../suites/contract/faults/kill-idle.toml"),
    ),
    (
        "kill-active",
        include_str!("../../suites/contract/faults/kill-active.toml"),
    ),
    (
        "restart",
        include_str!("../../suites/contract/faults/restart.toml"),
    ),
    (
        "blackhole",
        include_str!("../../suites/contract/faults/blackhole.toml"),
    ),
    (
        "half-open",
        include_str!("../../suites/contract/faults/half-open.toml"),
    ),
    (
        "failover",
        include_str!("../../suites/contract/faults/failover.toml"),
    ),
];

macro_rules! clients {
    ($($name:literal),*) => {
        [$(
            ($name, "defaults", include_str!(concat!("../../suites/contract/clients/", $name, ".defaults.toml"))),
            ($name, "recommended", include_str!(concat!("../../suites/contract/clients/", $name, ".recommended.toml"))),
        )*]
    };
}

/// The clients, in the table's row order, each with its library defaults and the
/// configuration its own documentation recommends.
const CLIENTS: [(&str, &str, &str); 12] = clients!(
    "sqlx",
    "mysql-async",
    "sqlalchemy",
    "go-database-sql",
    "hikaricp",
    "node-mysql"
);

/// The two configurations every client is measured with.
pub const CONFIGS: [&str; 2] = ["defaults", "recommended"];

/// A piece of suite text and where it came from, for messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fragment {
    /// `builtin:contract/…` or the path the user gave.
    pub origin: String,
    pub text: String,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fault {
    pub name: String,
    pub scenario: Fragment,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    pub client: String,
    /// `defaults` or `recommended`.
    pub config: String,
    pub fragment: Fragment,
}

/// What to run: faults as columns, client configurations as rows.
#[derive(Debug, Clone)]
pub struct Battery {
    pub faults: Vec<Fault>,
    pub configs: Vec<Config>,
}

/// One cell, checked and ready to run.
#[derive(Debug, Clone)]
pub struct CellSpec {
    pub client: String,
    pub config: String,
    pub fault: String,
    pub suite: Suite,
    /// The cell's text and goneaway's version, hashed: a saved result is reused only while
    /// both are unchanged.
    pub key: String,
}

impl CellSpec {
    /// A name usable as a file name: `hikaricp.recommended.blackhole`.
    pub fn id(&self) -> String {
        format!("{}.{}.{}", self.client, self.config, self.fault)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ContractError {
    #[error(transparent)]
    Suite(#[from] SuiteError),
    #[error("no {what} named `{name}` in the contract; there are: {known}")]
    Unknown {
        what: &'static str,
        name: String,
        known: String,
    },
    #[error("--recommended {0}: expected CLIENT=PATH, e.g. hikaricp=my-hikari.toml")]
    OverrideSyntax(String),
    #[error("a contract cell's run panicked: {0}")]
    Panicked(String),
}

impl Battery {
    /// The battery goneaway ships.
    pub fn builtin() -> Battery {
        Battery {
            faults: FAULTS
                .iter()
                .map(|(name, text)| Fault {
                    name: name.to_string(),
                    scenario: Fragment {
                        origin: format!("builtin:contract/faults/{name}.toml"),
                        text: text.to_string(),
                    },
                })
                .collect(),
            configs: CLIENTS
                .iter()
                .map(|(client, config, text)| Config {
                    client: client.to_string(),
                    config: config.to_string(),
                    fragment: Fragment {
                        origin: format!("builtin:contract/clients/{client}.{config}.toml"),
                        text: text.to_string(),
                    },
                })
                .collect(),
        }
    }

    pub fn client_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for c in &self.configs {
            if !names.contains(&c.client) {
                names.push(c.client.clone());
            }
        }
        names
    }

    /// Keep only the named clients, configurations and faults (empty: all of them).
    pub fn select(
        mut self,
        clients: &[String],
        configs: &[String],
        faults: &[String],
    ) -> Result<Battery, ContractError> {
        let known_clients = self.client_names();
        check_names("client", clients, &known_clients)?;
        let known_configs: Vec<String> = CONFIGS.iter().map(|c| c.to_string()).collect();
        check_names("configuration", configs, &known_configs)?;
        let known_faults: Vec<String> = self.faults.iter().map(|f| f.name.clone()).collect();
        check_names("fault", faults, &known_faults)?;
        self.configs.retain(|c| {
            (clients.is_empty() || clients.contains(&c.client))
                && (configs.is_empty() || configs.contains(&c.config))
        });
        self.faults
            .retain(|f| faults.is_empty() || faults.contains(&f.name));
        Ok(self)
    }

    /// Replace a client's recommended configuration with the user's file
    /// (`CLIENT=PATH`).
    pub fn recommend(&mut self, arg: &str) -> Result<(), ContractError> {
        let (client, path) = arg
            .split_once('=')
            .filter(|(c, p)| !c.is_empty() && !p.is_empty())
            .ok_or_else(|| ContractError::OverrideSyntax(arg.to_string()))?;
        let known = self.client_names();
        check_names("client", &[client.to_string()], &known)?;
        let path = Path::new(path);
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| SuiteError {
            origin: origin.clone(),
            position: None,
            message: format!("cannot read the configuration file: {e}"),
        })?;
        let fragment = Fragment { origin, text };
        check_fragment(&fragment)?;
        for c in &mut self.configs {
            if c.client == client && c.config == "recommended" {
                c.fragment = fragment.clone();
            }
        }
        Ok(())
    }

    /// Every cell, each checked as a suite. The first cell that is refused stops it:
    /// nothing should start when one cell cannot run.
    pub fn cells(&self) -> Result<Vec<CellSpec>, ContractError> {
        let mut cells = Vec::new();
        for c in &self.configs {
            check_fragment(&c.fragment)?;
            for f in &self.faults {
                cells.push(cell(c, f)?);
            }
        }
        Ok(cells)
    }
}

fn check_names(
    what: &'static str,
    asked: &[String],
    known: &[String],
) -> Result<(), ContractError> {
    match asked.iter().find(|a| !known.contains(a)) {
        Some(name) => Err(ContractError::Unknown {
            what,
            name: name.clone(),
            known: known.join(", "),
        }),
        None => Ok(()),
    }
}

/// A configuration holds `[client]` (with `[client.config]`) and `[pool]` only: a bare
/// key at its top would land in the scenario's last table, and any other table would
/// change the scenario every client is measured against.
fn check_fragment(f: &Fragment) -> Result<(), SuiteError> {
    let mut in_table = false;
    for (i, line) in f.text.lines().enumerate() {
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let col = line.len() - line.trim_start().len() + 1;
        let err = |message: String| SuiteError {
            origin: f.origin.clone(),
            position: Some((i + 1, col)),
            message,
        };
        if trimmed.starts_with('[') {
            let header = trimmed
                .trim_start_matches('[')
                .split(']')
                .next()
                .unwrap_or_default()
                .trim();
            if !matches!(header, "client" | "client.config" | "pool") {
                return Err(err(format!(
                    "a contract configuration holds only [client], [client.config] and [pool], not [{header}]: the scenario is the battery's, the same for every client"
                )));
            }
            in_table = true;
        } else if !in_table {
            let key = trimmed.split('=').next().unwrap_or_default().trim();
            return Err(err(format!(
                "`{key}` outside a table: a contract configuration holds only [client], [client.config] and [pool]"
            )));
        }
    }
    Ok(())
}

/// The scenario's text, then the configuration's, parsed as one suite.
fn cell(c: &Config, f: &Fault) -> Result<CellSpec, SuiteError> {
    let mut text = f.scenario.text.clone();
    if !text.ends_with('\n') {
        text.push('\n');
    }
    let offset = text.lines().count();
    text.push_str(&c.fragment.text);
    let origin = format!("contract cell {} {} × {}", c.client, c.config, f.name);
    let name = format!("contract-{}-{}-{}", c.client, c.config, f.name);
    let suite = Suite::from_toml(&text, &origin, &name).map_err(|mut e| {
        // Point into the file the line came from.
        match e.position {
            Some((line, col)) if line > offset => {
                e.origin = format!("{} (in {origin})", c.fragment.origin);
                e.position = Some((line - offset, col));
            }
            _ => e.origin = format!("{} (in {origin})", f.scenario.origin),
        }
        e
    })?;
    let key = crate::client::fnv(&[&text, env!("CARGO_PKG_VERSION")]);
    Ok(CellSpec {
        client: c.client.clone(),
        config: c.config.clone(),
        fault: f.name.clone(),
        suite,
        key,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_builtin_cell_is_a_valid_suite() {
        let cells = Battery::builtin().cells().unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(cells.len(), 6 * 2 * 8);
        // Row-major: a client's defaults, then its recommended configuration.
        assert_eq!(cells[0].id(), "sqlx.defaults.unreachable");
        assert_eq!(cells[8].id(), "sqlx.recommended.unreachable");
        assert_eq!(cells[95].id(), "node-mysql.recommended.failover");
        let failover = &cells[7];
        assert_eq!(failover.suite.name, "contract-sqlx-defaults-failover");
        assert!(failover.suite.server.replica.is_some());
    }

    #[test]
    fn the_directory_holds_exactly_the_battery() {
        let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites/contract");
        let mut on_disk: Vec<String> = ["faults", "clients"]
            .iter()
            .flat_map(|sub| std::fs::read_dir(dir.join(sub)).unwrap())
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        on_disk.sort();
        let mut listed: Vec<String> = FAULTS
            .iter()
            .map(|(n, _)| format!("{n}.toml"))
            .chain(CLIENTS.iter().map(|(c, k, _)| format!("{c}.{k}.toml")))
            .collect();
        listed.sort();
        assert_eq!(
            listed, on_disk,
            "src/contract/battery.rs must list suites/contract/"
        );
    }

    #[test]
    fn selecting_keeps_the_order_and_refuses_unknown_names() {
        let b = Battery::builtin()
            .select(
                &["hikaricp".into(), "sqlx".into()],
                &["recommended".into()],
                &["restart".into()],
            )
            .unwrap();
        let ids: Vec<String> = b.cells().unwrap().iter().map(CellSpec::id).collect();
        assert_eq!(
            ids,
            ["sqlx.recommended.restart", "hikaricp.recommended.restart"]
        );
        let e = Battery::builtin()
            .select(&["hikari".into()], &[], &[])
            .unwrap_err();
        assert!(
            e.to_string().starts_with(
                "no client named `hikari` in the contract; there are: sqlx, mysql-async,"
            ),
            "{e}"
        );
        let e = Battery::builtin()
            .select(&[], &[], &["crash".into()])
            .unwrap_err();
        assert!(e.to_string().contains("no fault named `crash`"), "{e}");
    }

    fn write(text: &str) -> (tempfile::TempDir, String) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("mine.toml");
        std::fs::write(&path, text).unwrap();
        let p = path.display().to_string();
        (dir, p)
    }

    #[test]
    fn a_users_recommended_configuration_replaces_the_builtin_one() {
        let (_dir, path) =
            write("[client]\nkind = \"hikaricp\"\n\n[client.config]\nmaximumPoolSize = 3\n");
        let mut b = Battery::builtin()
            .select(&["hikaricp".into()], &[], &["restart".into()])
            .unwrap();
        b.recommend(&format!("hikaricp={path}")).unwrap();
        let cells = b.cells().unwrap();
        assert_eq!(cells.len(), 2);
        assert!(cells[1].suite.client.is_some());
        assert_ne!(cells[0].key, cells[1].key);
    }

    #[test]
    fn a_bad_configuration_is_named_by_its_own_file_line_and_column() {
        // A typo in the configuration: the position is in the user's file, not the cell.
        let (_dir, path) = write("# mine\n[pool]\nmax_connections = 4\nacquire_timeot = \"5s\"\n");
        let mut b = Battery::builtin()
            .select(&["sqlx".into()], &[], &[])
            .unwrap();
        b.recommend(&format!("sqlx={path}")).unwrap();
        let e = b.cells().unwrap_err().to_string();
        assert!(
            e.starts_with(&format!(
                "{path} (in contract cell sqlx recommended × unreachable):4:1: "
            )),
            "{e}"
        );
        assert!(e.contains("acquire_timeot"), "{e}");
        // A scenario's table in a configuration is refused before any cell is made.
        let (_dir2, path) = write("[pool]\nmax_connections = 4\n\n[workload]\nworkers = 1\n");
        let e = Battery::builtin()
            .recommend(&format!("sqlx={path}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{path}:4:1: a contract configuration holds only")),
            "{e}"
        );
        let (_dir3, path) = write("seed = 3\n[pool]\n");
        let e = Battery::builtin()
            .recommend(&format!("sqlx={path}"))
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with(&format!("{path}:1:1: `seed` outside a table")),
            "{e}"
        );
        let e = Battery::builtin()
            .recommend("sqlx")
            .unwrap_err()
            .to_string();
        assert!(e.contains("expected CLIENT=PATH"), "{e}");
        let e = Battery::builtin()
            .recommend("sqlx=/nonexistent/x.toml")
            .unwrap_err()
            .to_string();
        assert!(
            e.starts_with("/nonexistent/x.toml: cannot read the configuration file"),
            "{e}"
        );
    }
}
