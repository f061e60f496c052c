//! `[client]`: which client a suite puts under test, checked like every other table.

use super::raw::{RawClient, RawPool, S};
use super::{Cx, R, find_key};
use crate::client::{ClientKind, ClientSpec};
use crate::pool::{PoolSpec, Vocabulary};

impl Cx<'_> {
    pub(super) fn client(
        &self,
        raw: &S<RawClient>,
        raw_pool: Option<&S<RawPool>>,
        pool: Option<&PoolSpec>,
    ) -> R<ClientSpec> {
        let c = raw.get_ref();
        let kind = match (&c.kind, &c.command) {
            (Some(_), Some(cmd)) => {
                return Err(self.err(
                    cmd,
                    "[client] takes `kind` (a built-in adapter) or `command` (your own), not both",
                ));
            }
            (None, None) => {
                return Err(self.err(
                    raw,
                    "[client] needs `kind = \"sqlalchemy\"`, `\"flask-sqlalchemy\"`, `\"go-database-sql\"`, `\"node-mysql\"`, `\"hikaricp\"` or `\"mysql-async\"`, or `command = [\"your-adapter\", …]`",
                ));
            }
            (None, Some(cmd)) => {
                if cmd.get_ref().is_empty() || cmd.get_ref()[0].is_empty() {
                    return Err(self.err(
                        cmd,
                        "[client] command is empty; give the program and its arguments, like [\"python3\", \"my_adapter.py\"]",
                    ));
                }
                ClientKind::Command(cmd.get_ref().clone())
            }
            (Some(k), None) => match k.get_ref().as_str() {
                "sqlalchemy" => ClientKind::Sqlalchemy,
                "flask-sqlalchemy" => ClientKind::FlaskSqlalchemy,
                "mysql-async" => {
                    // In process, configured by [pool] in its own words: nothing else
                    // in [client] would be read.
                    if let Some(d) = &c.driver {
                        return Err(self.err(
                            d,
                            "[client] driver is for the Python adapters; mysql-async is its own driver",
                        ));
                    }
                    if let Some(t) = &c.config {
                        return Err(self.err(
                            t,
                            "[client.config] is not read by mysql-async: its settings go in [pool], in mysql_async's words (pool_min, pool_max, inactive_connection_ttl, …)",
                        ));
                    }
                    return Ok(ClientSpec {
                        kind: ClientKind::MysqlAsync(self.mysql_async_pool(raw_pool)?),
                        driver: None,
                        config: serde_json::Map::new(),
                    });
                }
                "go-database-sql" => ClientKind::GoDatabaseSql,
                "node-mysql" => ClientKind::NodeMysql,
                "hikaricp" => ClientKind::Hikaricp,
                other => {
                    return Err(self.err(
                        k,
                        format!(
                            "[client] kind `{other}`: expected sqlalchemy, flask-sqlalchemy, go-database-sql, node-mysql, hikaricp or mysql-async (or `command` for your own adapter)"
                        ),
                    ));
                }
            },
        };
        if let Some(d) = &c.driver {
            if matches!(kind, ClientKind::Command(_)) || kind.own_words() {
                return Err(self.err(
                    d,
                    "[client] driver is for the built-in Python adapters; this client's driver is fixed and its settings go in [client.config]",
                ));
            }
            if !matches!(d.get_ref().as_str(), "pymysql" | "mysqlclient") {
                return Err(self.err(
                    d,
                    format!(
                        "[client] driver `{}`: expected pymysql or mysqlclient",
                        d.get_ref()
                    ),
                ));
            }
        }
        match (&kind, raw_pool, pool) {
            (ClientKind::Sqlalchemy, Some(rp), Some(p)) if p.vocabulary == Vocabulary::Sqlx => {
                return Err(self.err(
                    rp,
                    "[pool] is handed to SQLAlchemy's create_engine: use its words (pool_size, max_overflow, pool_timeout, pool_recycle, pool_pre_ping)",
                ));
            }
            (k, Some(rp), _) if k.own_words() => {
                return Err(self.err(
                    rp,
                    format!(
                        "a {} client is configured in its library's own words: put them in [client.config] (see the README's adapters table), not in [pool]",
                        k.mode()
                    ),
                ));
            }
            (ClientKind::FlaskSqlalchemy, Some(rp), _) => {
                return Err(self.err(
                    rp,
                    "a flask-sqlalchemy client is configured by its app config: put the keys in [client.config] (SQLALCHEMY_ENGINE_OPTIONS, …), not in [pool]",
                ));
            }
            _ => {}
        }
        let config = match &c.config {
            None => serde_json::Map::new(),
            Some(t) => {
                if kind == ClientKind::Sqlalchemy {
                    self.sqlalchemy_config(t)?;
                }
                if t.get_ref().contains_key("SQLALCHEMY_DATABASE_URI") {
                    return Err(self.err(
                        t,
                        "[client.config] SQLALCHEMY_DATABASE_URI is supplied by goneaway (the server it started)",
                    ));
                }
                match serde_json::to_value(t.get_ref()) {
                    Ok(serde_json::Value::Object(m)) => m,
                    _ => {
                        return Err(self.err(t, "[client.config] must be plain values (no dates)"));
                    }
                }
            }
        };
        if kind == ClientKind::FlaskSqlalchemy && config.is_empty() {
            return Err(self.err(
                raw,
                "a flask-sqlalchemy client needs its app config in [client.config], exactly as the app sets it",
            ));
        }
        Ok(ClientSpec {
            kind,
            driver: c.driver.as_ref().map(|d| d.get_ref().clone()),
            config,
        })
    }

    /// A sqlalchemy client's pool is `[pool]`; `[client.config]` holds only what
    /// create_engine hands the DBAPI driver, `connect_args`. Whether the driver knows
    /// each key is the driver's to say (the adapter asks it at startup).
    fn sqlalchemy_config(&self, t: &S<toml::Table>) -> R<()> {
        let at =
            |key: &str| find_key(self.text, "client.config", key).unwrap_or_else(|| t.span().start);
        for (key, value) in t.get_ref() {
            if key != "connect_args" {
                return Err(self.err_at(
                    Some(at(key)),
                    format!(
                        "[client.config] {key}: a sqlalchemy client takes only `connect_args` here (the DBAPI driver's own keywords, like read_timeout); create_engine's pool words go in [pool]"
                    ),
                ));
            }
            let Some(args) = value.as_table() else {
                return Err(self.err_at(
                    Some(at(key)),
                    "[client.config] connect_args must be a table, like { read_timeout = 5, write_timeout = 5, connect_timeout = 5 }".into(),
                ));
            };
            // The server goneaway started (or proxies) is the one under test.
            const OURS: [&str; 8] = [
                "host",
                "port",
                "user",
                "password",
                "passwd",
                "database",
                "db",
                "unix_socket",
            ];
            if let Some(k) = args.keys().find(|k| OURS.contains(&k.as_str())) {
                return Err(self.err_at(
                    Some(at(key)),
                    format!(
                        "[client.config] connect_args `{k}` is supplied by goneaway (the server it started)"
                    ),
                ));
            }
        }
        Ok(())
    }
}
