//! Shared by the integration tests.
#![allow(dead_code)]

/// Whether a MySQL-compatible server binary is here to test against. With `CI` set a
/// missing server is a failure, never a skip: a green CI must mean the suites ran.
pub fn mariadb() -> bool {
    match goneaway::server::process::find_binary() {
        Ok(_) => true,
        Err(e) if std::env::var_os("CI").is_some() => {
            panic!("CI is set, so this test may not skip: {e}")
        }
        Err(e) => {
            eprintln!("skipped (no server binary; CI would fail here): {e}");
            false
        }
    }
}
