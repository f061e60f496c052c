//! What an adapter's client raised, mapped onto the error taxonomy.
//!
//! The adapter sends the error as the client raised it: the MySQL number where the
//! driver has one, the exception type and its message. Numbers decide first (they are
//! what drivers agree on); pool-level errors have no number, so their type and message
//! decide. An adapter may also name the class itself (`class`), for a client whose
//! errors have neither.

use serde::Deserialize;

use crate::history::{ErrorClass, OpError};
use crate::pool::sqlx::classify_server;

/// An error as it crossed the pipe.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct WireError {
    #[serde(default)]
    pub code: Option<i64>,
    #[serde(default, rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub message: String,
    /// The adapter's own classification, one of the taxonomy's names.
    #[serde(default)]
    pub class: Option<String>,
}

pub fn classify(e: &WireError) -> ErrorClass {
    if let Some(named) = e.class.as_deref()
        && let Some(c) = ErrorClass::ALL.into_iter().find(|c| c.name() == named)
    {
        return c;
    }
    if let Some(code) = e.code.and_then(|c| u16::try_from(c).ok()) {
        // "Can't connect" (2003; mysqlclient's 2002) covers every failed connect. One
        // reset by the peer mid-handshake found a listener that dropped it: the same
        // io error sqlx's classifier calls gone_away, not "nothing listening".
        if matches!(code, 2002 | 2003) {
            return if e.message.contains("Connection reset by peer") {
                ErrorClass::GoneAway
            } else {
                ErrorClass::ConnectRefused
            };
        }
        if let Some(c) = classify_server(code, &e.message) {
            return c;
        }
    }
    // SQLAlchemy's QueuePool gave up waiting: sqlalchemy.exc.TimeoutError.
    if e.kind.ends_with("TimeoutError") && e.message.starts_with("QueuePool limit of size") {
        return ErrorClass::CheckoutTimeout;
    }
    ErrorClass::Other
}

/// The error for the history: its class and the client's words, first line only (the
/// rest is SQLAlchemy's link to its docs and the SQL, kept out of reports).
pub fn op_error(e: &WireError) -> OpError {
    let first = e.message.lines().next().unwrap_or_default();
    OpError::new(classify(e), first.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn wire(json: &str) -> WireError {
        serde_json::from_str(json).expect("a captured error")
    }

    // Every error below was captured from the real clients (SQLAlchemy 2.1.9 on PyMySQL
    // 1.2.4 and mysqlclient 2.3.2, MariaDB 10.11) by goneaway's adapter, in the scenario
    // named, and pasted as the adapter sent it.
    #[test]
    fn pymysql_errors_captured_from_mariadb() {
        // Idle past wait_timeout (2 s, idle 3.5 s), no pre-ping: the next query.
        let e = wire(
            r#"{"code": 2006, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (2006, \"MySQL server has gone away (ConnectionResetError(104, 'Connection reset by peer'))\")"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        // KILL CONNECTION while SELECT SLEEP(5) ran, and of a held idle connection.
        let e = wire(
            r#"{"code": 2013, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query')"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
        // Nothing listening on the port.
        let e = wire(
            r#"{"code": 2003, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)\")\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::ConnectRefused);
        assert_eq!(
            op_error(&e).message,
            "(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 111] Connection refused)\")"
        );
    }

    #[test]
    fn a_connect_reset_by_the_proxy_is_not_connect_refused() {
        // PyMySQL through goneaway's proxy with a reset_peer toxic: a new connection is
        // reset during the handshake.
        let e = wire(
            r#"{"code": 2003, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (2003, \"Can't connect to MySQL server on '127.0.0.1' ([Errno 104] Connection reset by peer)\")"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        // The reset of an open connection mid-query stays lost_connection.
        let e = wire(
            r#"{"code": 2013, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query ([Errno 104] Connection reset by peer)')"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
    }

    #[test]
    fn mysqlclient_errors_captured_from_mariadb() {
        let e = wire(
            r#"{"code": 2006, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (2006, 'Server has gone away')"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        let e = wire(
            r#"{"code": 2013, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (2013, 'Lost connection to server during query')"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
        // mysqlclient says 2002 (EINPROGRESS, 115) where PyMySQL says 2003.
        let e = wire(
            r#"{"code": 2002, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (2002, \"Can't connect to server on '127.0.0.1' (115)\")\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::ConnectRefused);
    }

    #[test]
    fn server_limits_and_shutdown_captured_from_mariadb() {
        // max_connections 10 (MariaDB's floor), the 11th connection of one pool.
        for e in [
            r#"{"code": 1040, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (1040, 'Too many connections')\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"}"#,
            r#"{"code": 1040, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (1040, 'Too many connections')\n(Background on this error at: https://sqlalche.me/e/21/e3q8)"}"#,
        ] {
            assert_eq!(classify(&wire(e)), ErrorClass::TooManyConnections);
        }
        // `mariadb-admin shutdown` while SELECT SLEEP(10) ran: both drivers see 2013,
        // not 1053 (which MariaDB 10.11 did not send to a running query).
        let e = wire(
            r#"{"code": 2013, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (2013, 'Lost connection to server during query')"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
    }

    #[test]
    fn read_only_refusals_captured_from_mariadb() {
        // SET GLOBAL read_only = ON, then an INSERT by the app user (no SUPER), through
        // SQLAlchemy 2.1.9 on each driver.
        for e in [
            r#"{"code": 1290, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (1290, 'The MariaDB server is running with the --read-only option so it cannot execute this statement')"}"#,
            r#"{"code": 1290, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (1290, 'The MariaDB server is running with the --read-only option so it cannot execute this statement')"}"#,
        ] {
            assert_eq!(classify(&wire(e)), ErrorClass::ReadOnly);
        }
        // The same number for another option is not a read-only server.
        let e = wire(
            r#"{"code": 1290, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (1290, 'The MariaDB server is running with the --secure-file-priv option so it cannot execute this statement')"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::Other);
    }

    #[test]
    fn queue_pool_timeout_is_a_checkout_timeout() {
        // pool_size 2, max_overflow 0, pool_timeout 1, two held: the third checkout.
        let e = wire(
            r#"{"code": null, "type": "sqlalchemy.exc.TimeoutError", "message": "QueuePool limit of size 2 overflow 0 reached, connection timed out, timeout 1.00 (Background on this error at: https://sqlalche.me/e/21/3o7r)"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
        assert_eq!(op_error(&e).message, e.message, "kept verbatim");
    }

    #[test]
    fn an_adapter_may_name_the_class_and_unknowns_are_other() {
        let e = wire(r#"{"type": "X", "message": "m", "class": "checkout_timeout"}"#);
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
        let e = wire(r#"{"code": 1064, "type": "ProgrammingError", "message": "syntax"}"#);
        assert_eq!(classify(&e), ErrorClass::Other);
        let e = wire(r#"{"type": "TimeoutError", "message": "something else"}"#);
        assert_eq!(classify(&e), ErrorClass::Other);
    }
}
