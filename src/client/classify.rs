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
    if let Some(c) = by_library(e) {
        return c;
    }
    // SQLAlchemy's QueuePool gave up waiting: sqlalchemy.exc.TimeoutError.
    if e.kind.ends_with("TimeoutError") && e.message.starts_with("QueuePool limit of size") {
        return ErrorClass::CheckoutTimeout;
    }
    ErrorClass::Other
}

/// The Go, Java and Node libraries' errors that carry no MySQL number: their own
/// sentinel texts, Node's error codes, HikariCP's and Connector/J's messages.
fn by_library(e: &WireError) -> Option<ErrorClass> {
    let m = e.message.as_str();
    // Go: the adapter names the call (`db.Conn: *net.OpError`).
    if e.kind.starts_with("db.Conn:") && m == "context deadline exceeded" {
        // database/sql gave up waiting for a connection: the checkout's context ran out.
        return Some(ErrorClass::CheckoutTimeout);
    }
    // database/sql's driver.ErrBadConn: go-sql-driver found the connection dead before
    // sending anything (its liveness check on a connection the server had closed).
    if m == "driver: bad connection" {
        return Some(ErrorClass::GoneAway);
    }
    // go-sql-driver's ErrInvalidConn: a read or write failed mid-command (it logs the
    // cause, `unexpected EOF` or `i/o timeout`, on stderr).
    if m == "invalid connection" || m.ends_with("unexpected EOF") {
        return Some(ErrorClass::LostConnection);
    }
    if m.starts_with("dial tcp ") && m.ends_with("connect: connection refused") {
        return Some(ErrorClass::ConnectRefused);
    }
    // The DSN's `timeout` ended a dial inside a checkout (`db.Conn`): the pool could not
    // hand out a connection within its own bound, as a checkout timeout is.
    if m.starts_with("dial tcp ") && m.ends_with(": i/o timeout") {
        return Some(ErrorClass::CheckoutTimeout);
    }
    // Node's mysql: the error's `code` is the type.
    match e.kind.as_str() {
        // The socket closed under a running command.
        "PROTOCOL_CONNECTION_LOST" => return Some(ErrorClass::LostConnection),
        // The connection had already died (the library saw the close while it sat idle
        // in the app's hands): the statement was never sent.
        "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR" | "PROTOCOL_ENQUEUE_AFTER_QUIT" => {
            return Some(ErrorClass::GoneAway);
        }
        "ECONNREFUSED" => return Some(ErrorClass::ConnectRefused),
        // A sequence's own timer ran out (it restarts on every packet) and the library
        // destroyed the connection. The pool gives a connect only acquireTimeout to finish
        // its handshake, so that one is the checkout's bound; a statement's is its own
        // `timeout` option (the adapter's queryTimeout) going off mid-reply, as Go's
        // readTimeout and Connector/J's socketTimeout do.
        "PROTOCOL_SEQUENCE_TIMEOUT" => match m {
            "Handshake inactivity timeout" => return Some(ErrorClass::CheckoutTimeout),
            "Query inactivity timeout" => return Some(ErrorClass::LostConnection),
            // A failed ping the pool retries itself; any other is kept as `other`.
            _ => {}
        },
        // waitForConnections false, or queueLimit reached: the pool refused the checkout.
        "POOL_CONNLIMIT" | "POOL_ENQUEUELIMIT" => return Some(ErrorClass::CheckoutTimeout),
        _ => {}
    }
    // HikariCP: getConnection() waited connectionTimeout (whatever the cause it carries:
    // a drained pool, a server refusing connections or saying 1040).
    if m.contains("Connection is not available, request timed out after") {
        return Some(ErrorClass::CheckoutTimeout);
    }
    // HikariCP's proxy of a connection it already knows is broken: nothing was sent.
    if e.kind == "java.sql.SQLException" && m == "Connection is closed" {
        return Some(ErrorClass::GoneAway);
    }
    // MariaDB Connector/J: the socket closed while a reply was awaited, or the reply did
    // not come within socketTimeout.
    if e.kind
        .starts_with("java.sql.SQLNonTransientConnectionException")
        && (m.contains("unexpected end of stream") || m.ends_with("Connection timed out"))
    {
        return Some(ErrorClass::LostConnection);
    }
    // MariaDB Connector/J: a statement written to a socket the server had already closed
    // (wait_timeout inside a request) met a reset, as sqlx's `ConnectionReset` does.
    if e.kind
        .starts_with("java.sql.SQLNonTransientConnectionException")
        && (m.contains("Connection reset by peer") || m.contains("Broken pipe"))
    {
        return Some(ErrorClass::GoneAway);
    }
    if e.kind.starts_with("java.sql.")
        && m.contains("Could not connect to")
        && m.contains("Connection refused")
    {
        return Some(ErrorClass::ConnectRefused);
    }
    None
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
        // connect_args read_timeout 1 s and a reply that does not come within it
        // (SELECT SLEEP(3); the same text under sqlalchemy-blackhole-read-timeout).
        let e = wire(
            r#"{"code": 2013, "type": "sqlalchemy.exc.OperationalError (pymysql.err.OperationalError)", "message": "(pymysql.err.OperationalError) (2013, 'Lost connection to MySQL server during query (timed out)')"}"#,
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
        // connect_args connect_timeout 1 s and a new connection under a black hole
        // (sqlalchemy-blackhole-read-timeout on mysqlclient; the message as the report
        // showed it): a timed-out handshake is 2013 too.
        let e = wire(
            r#"{"code": 2013, "type": "sqlalchemy.exc.OperationalError (MySQLdb.OperationalError)", "message": "(MySQLdb.OperationalError) (2013, \"Lost connection to server at 'handshake: reading initial communication packet', system error: 110\")"}"#,
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

    // Captured by the Go adapter (database/sql of Go 1.19.8, go-sql-driver/mysql 1.5.0
    // from Debian) against MariaDB 10.11, in the scenario named.
    #[test]
    fn go_sql_driver_errors_captured_from_mariadb() {
        // Idle past wait_timeout, or the idle session killed: the driver's liveness check
        // finds the socket closed before writing (it logs "closing bad idle connection:
        // EOF") and database/sql answers ErrBadConn on the checked-out *sql.Conn.
        let e = wire(
            r#"{"code": null, "type": "QueryContext: *errors.errorString", "message": "driver: bad connection"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        // KILL CONNECTION while SELECT SLEEP(3) ran (the driver logs "unexpected EOF").
        let e = wire(
            r#"{"code": null, "type": "QueryContext: *errors.errorString", "message": "invalid connection"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
        // A restart: nothing listening while the server is down.
        let e = wire(
            r#"{"code": null, "type": "db.Conn: *net.OpError", "message": "dial tcp 127.0.0.1:45011: connect: connection refused"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::ConnectRefused);
        // A black hole on new connections with DSN timeout=5s (`goneaway contract`,
        // unreachable): the dial inside db.Conn gave up.
        let e = wire(
            r#"{"code": null, "type": "db.Conn: *net.OpError", "message": "dial tcp 127.0.0.1:33083: i/o timeout"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
        // max_open_conns 1 held, checkout_context_timeout 500ms: db.Conn's context ran out.
        let e = wire(
            r#"{"code": null, "type": "db.Conn: context.deadlineExceededError", "message": "context deadline exceeded"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
        // The same text from a statement is no checkout.
        let e = wire(
            r#"{"code": null, "type": "QueryContext: context.deadlineExceededError", "message": "context deadline exceeded"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::Other);
        // max_connections 10, the 11th db.Conn of a user without SUPER.
        let e = wire(
            r#"{"code": 1040, "type": "db.Conn: *mysql.MySQLError", "message": "Error 1040: Too many connections"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::TooManyConnections);
    }

    // Captured by the Node adapter (mysql 2.18.1 from Debian's node-mysql, node 20.20.2)
    // against MariaDB 10.11, in the scenario named.
    #[test]
    fn node_mysql_errors_captured_from_mariadb() {
        // KILL CONNECTION while SELECT SLEEP(3) ran.
        let e = wire(
            r#"{"code": null, "type": "PROTOCOL_CONNECTION_LOST", "message": "Connection lost: The server closed the connection."}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
        // The next statement on that connection, and on a held idle one that was killed.
        let e = wire(
            r#"{"code": null, "type": "PROTOCOL_ENQUEUE_AFTER_FATAL_ERROR", "message": "Cannot enqueue Query after fatal error."}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        // A restart: nothing listening while the server is down.
        let e = wire(
            r#"{"code": null, "type": "ECONNREFUSED", "message": "connect ECONNREFUSED 127.0.0.1:43087"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::ConnectRefused);
        // max_connections 10, the 11th connection of a user without SUPER.
        let e = wire(
            r#"{"code": 1040, "type": "ER_CON_COUNT_ERROR", "message": "ER_CON_COUNT_ERROR: Too many connections"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::TooManyConnections);
        // connectionLimit 1 held, waitForConnections false.
        let e = wire(
            r#"{"code": null, "type": "POOL_CONNLIMIT", "message": "No connections available."}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
    }

    // Captured by the Node adapter as above, through goneaway's proxy: connectionLimit 8,
    // acquireTimeout 1000, connectTimeout 1000, four workers of SELECT SLEEP(0.8) and a
    // 3 s black hole on every connection.
    #[test]
    fn node_mysql_sequence_timeouts_captured_under_a_black_hole() {
        // A checkout's new connection: the greeting never came within acquireTimeout.
        let e = wire(
            r#"{"code":null,"type":"PROTOCOL_SEQUENCE_TIMEOUT","message":"Handshake inactivity timeout"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
        // queryTimeout = 1000: the statement's reply was swallowed.
        let e = wire(
            r#"{"code":null,"type":"PROTOCOL_SEQUENCE_TIMEOUT","message":"Query inactivity timeout"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
    }

    // Captured by the Java adapter (HikariCP 2.7.9 and MariaDB Connector/J 2.7.6 from
    // Debian, Java 17) against MariaDB 10.11, in the scenario named. MariaDB Connector/J
    // never said MySQL Connector/J's "Communications link failure" or "No operations
    // allowed after connection closed": these are its own words.
    #[test]
    fn hikaricp_and_connector_j_errors_captured_from_mariadb() {
        // KILL CONNECTION while SELECT SLEEP(3) ran, a held idle connection killed, and a
        // graceful restart under load.
        let e = wire(
            r#"{"code": null, "type": "java.sql.SQLNonTransientConnectionException (SQLState 08000)", "message": "(conn=58) unexpected end of stream, read 0 bytes from 4 (socket was closed by server)\ncause: org.mariadb.jdbc.internal.util.exceptions.MariaDbSqlException: unexpected end of stream, read 0 bytes from 4 (socket was closed by server)"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
        assert_eq!(
            op_error(&e).message,
            "(conn=58) unexpected end of stream, read 0 bytes from 4 (socket was closed by server)"
        );
        // socketTimeout=500 in the URL, SELECT SLEEP(2).
        let e = wire(
            r#"{"code": null, "type": "java.sql.SQLNonTransientConnectionException (SQLState 08000)", "message": "(conn=121) Connection timed out\ncause: org.mariadb.jdbc.internal.util.exceptions.MariaDbSqlException: Connection timed out"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::LostConnection);
        // wait_timeout 2s, a `wait 3s` step inside a transaction, then the next statement.
        let e = wire(
            r#"{"code": null, "type": "java.sql.SQLNonTransientConnectionException (SQLState 08000)", "message": "(conn=8) Connection reset by peer\ncause: org.mariadb.jdbc.internal.util.exceptions.MariaDbSqlException: Connection reset by peer"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        // The next statement on that connection: HikariCP's proxy knows it is broken.
        let e = wire(
            r#"{"code": null, "type": "java.sql.SQLException", "message": "Connection is closed"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::GoneAway);
        // maximumPoolSize 1 held, connectionTimeout 1000.
        let e = wire(
            r#"{"code": null, "type": "java.sql.SQLTransientConnectionException", "message": "HikariPool-1 - Connection is not available, request timed out after 1001ms."}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
        // max_connections 10: the 11th connection's 1040 reaches the app only as the cause
        // of HikariCP's timeout.
        let e = wire(
            r#"{"code": null, "type": "java.sql.SQLTransientConnectionException (SQLState 08004)", "message": "HikariPool-1 - Connection is not available, request timed out after 1001ms.\ncause: java.sql.SQLNonTransientConnectionException: Could not connect to address=(host=127.0.0.1)(port=33991)(type=master) : (conn=154) Too many connections"}"#,
        );
        assert_eq!(classify(&e), ErrorClass::CheckoutTimeout);
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
