//! mysql_async's errors mapped onto the taxonomy.
//!
//! mysql_async wraps what happened in a few shapes: `Server` (an error packet: MySQL's
//! number decides), `Io` (the socket failed: its io error kind decides, with the same
//! rule as sqlx's), and `Driver`/`Other`/`Url` (the library's own complaints: `other`).
//! Each rule is backed by errors captured live from MariaDB 10.11 by
//! `tests/integration/mysql_async_errors.rs`, which snapshots their text; the unit tests
//! below rebuild those errors.

use mysql_async::{Error, IoError};

use crate::history::{ErrorClass, OpError};
use crate::pool::sqlx::{classify_io, classify_server};

/// A mysql_async error as an [`OpError`]: its class and the library's own words.
pub fn error(e: &Error) -> OpError {
    OpError::new(classify(e), e.to_string())
}

/// mysql_async reads a closed socket as `UnexpectedEof` "connection closed" (a kill, a
/// shutdown or a cut while a reply was awaited: lost), and a write or read on a socket
/// the peer had reset as `ConnectionReset` (idle past `wait_timeout`, a network reset:
/// gone away); a refused connect is `ConnectionRefused`.
pub fn classify(e: &Error) -> ErrorClass {
    match e {
        // 1290 needs the message too: only its `--read-only` form is read_only.
        Error::Server(s) => classify_server(s.code, &s.message).unwrap_or(ErrorClass::Other),
        Error::Io(IoError::Io(io)) => classify_io(io.kind()),
        _ => ErrorClass::Other,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_async::{DriverError, ServerError};
    use std::io::ErrorKind;

    fn io(kind: ErrorKind, msg: &str) -> Error {
        Error::Io(IoError::Io(std::io::Error::new(kind, msg)))
    }

    // Each error as mysql_async 0.37.1 returned it from MariaDB 10.11 in the scenario
    // named (the snapshots of tests/integration/mysql_async_errors.rs hold the text).
    #[test]
    fn errors_captured_from_mariadb() {
        // A bare connection idle past wait_timeout (1 s, idle 2.5 s), then a query; and a
        // reset_peer toxic on the proxy.
        let reset = io(
            ErrorKind::ConnectionReset,
            "Connection reset by peer (os error 104)",
        );
        assert_eq!(
            reset.to_string(),
            "Input/output error: Input/output error: Connection reset by peer (os error 104)"
        );
        assert_eq!(classify(&reset), ErrorClass::GoneAway);
        // KILL CONNECTION of an idle or an active session, a shutdown under SELECT
        // SLEEP(10), the proxy disabled under a query: MariaDB's 1927 packet is not read,
        // the closed socket is.
        let closed = io(ErrorKind::UnexpectedEof, "connection closed");
        assert_eq!(
            closed.to_string(),
            "Input/output error: Input/output error: connection closed"
        );
        assert_eq!(classify(&closed), ErrorClass::LostConnection);
        // The server down (SIGKILL), a new connection; also every checkout that must
        // connect during a restart (mysql_async does not retry).
        let refused = io(
            ErrorKind::ConnectionRefused,
            "Connection refused (os error 111)",
        );
        assert_eq!(classify(&refused), ErrorClass::ConnectRefused);
        // max_connections = 10 (MariaDB's floor), the 11th connection.
        let too_many = Error::Server(ServerError {
            code: 1040,
            state: "08004".into(),
            message: "Too many connections".into(),
        });
        assert_eq!(
            too_many.to_string(),
            "Server error: `ERROR 1040 (08004): Too many connections'"
        );
        assert_eq!(classify(&too_many), ErrorClass::TooManyConnections);
        // An insert on the old primary after a failover (`goneaway contract`, failover).
        let read_only = Error::Server(ServerError {
            code: 1290,
            state: "HY000".into(),
            message: "The MariaDB server is running with the --read-only option so it cannot execute this statement".into(),
        });
        assert_eq!(
            read_only.to_string(),
            "Server error: `ERROR 1290 (HY000): The MariaDB server is running with the --read-only option so it cannot execute this statement'"
        );
        assert_eq!(classify(&read_only), ErrorClass::ReadOnly);
    }

    #[test]
    fn the_librarys_own_complaints_are_other() {
        assert_eq!(
            classify(&Error::Driver(DriverError::PoolDisconnected)),
            ErrorClass::Other
        );
        let syntax = Error::Server(ServerError {
            code: 1064,
            state: "42000".into(),
            message: "You have an error in your SQL syntax".into(),
        });
        assert_eq!(classify(&syntax), ErrorClass::Other);
    }
}
