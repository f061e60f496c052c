//! `[client]`: which client a suite puts under test, checked like every other table.

use super::raw::{RawClient, RawPool, S};
use super::{Cx, R};
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
                    "[client] needs `kind = \"sqlalchemy\"`, `\"flask-sqlalchemy\"`, `\"go-database-sql\"`, `\"node-mysql\"` or `\"hikaricp\"`, or `command = [\"your-adapter\", …]`",
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
                "go-database-sql" => ClientKind::GoDatabaseSql,
                "node-mysql" => ClientKind::NodeMysql,
                "hikaricp" => ClientKind::Hikaricp,
                other => {
                    return Err(self.err(
                        k,
                        format!(
                            "[client] kind `{other}`: expected sqlalchemy, flask-sqlalchemy, go-database-sql, node-mysql or hikaricp (or `command` for your own adapter)"
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
                    return Err(self.err(
                        t,
                        "[client.config] is for flask-sqlalchemy and your own adapters; a sqlalchemy client takes create_engine's words in [pool]",
                    ));
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
}
