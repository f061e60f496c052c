//! The harness's admin SQL, shared by every backend and by faults: connect (bounded),
//! run one statement, read a global, check the server took the suite's settings, quote a
//! value.

use std::collections::BTreeMap;
use std::time::Duration;

use super::{ConnectInfo, Server, ServerError};

/// How long an admin connect may take: an unreachable or frozen server must not hang us.
const CONNECT_BOUND: Duration = Duration::from_secs(10);

/// A value as an SQL literal: numbers as they are, anything else quoted.
pub fn sql_literal(value: &str) -> String {
    if value.parse::<f64>().is_ok() {
        value.to_string()
    } else {
        format!("'{}'", value.replace('\'', "''"))
    }
}

/// Run one admin statement on a fresh connection. A fresh connection per statement keeps
/// faults independent of each other: a crash cannot poison an admin pool.
pub async fn admin_exec(admin: &ConnectInfo, sql: &str) -> Result<(), ServerError> {
    use sqlx::Connection;
    let mut conn = admin_connect(admin).await?;
    exec_on(&mut conn, admin, sql).await?;
    let _ = conn.close().await;
    Ok(())
}

/// One statement on a connection the caller holds.
pub(crate) async fn exec_on(
    conn: &mut sqlx::mysql::MySqlConnection,
    admin: &ConnectInfo,
    sql: &str,
) -> Result<(), ServerError> {
    sqlx::raw_sql(sqlx::AssertSqlSafe(sql.to_string()))
        .execute(conn)
        .await
        .map_err(|e| ServerError::Sql {
            sql: sql.to_string(),
            target: format!("{admin:?}"),
            message: e.to_string(),
        })?;
    Ok(())
}

/// A server variable's global value as text (`CAST` keeps every type readable).
pub async fn global(admin: &ConnectInfo, variable: &str) -> Result<String, ServerError> {
    let mut conn = admin_connect(admin).await?;
    global_on(&mut conn, admin, variable).await
}

/// [`global`] on a connection the caller holds.
pub(crate) async fn global_on(
    conn: &mut sqlx::mysql::MySqlConnection,
    admin: &ConnectInfo,
    variable: &str,
) -> Result<String, ServerError> {
    let sql = format!("SELECT CAST(@@GLOBAL.{variable} AS CHAR)");
    let value: Option<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql.clone()))
        .fetch_one(conn)
        .await
        .map_err(|e| ServerError::Sql {
            sql,
            target: format!("{admin:?}"),
            message: e.to_string(),
        })?;
    Ok(value.unwrap_or_default())
}

/// Connect as admin, bounded in time so an unreachable or frozen server cannot hang us.
pub async fn admin_connect(
    admin: &ConnectInfo,
) -> Result<sqlx::mysql::MySqlConnection, ServerError> {
    use sqlx::ConnectOptions;
    let options = admin.options();
    match tokio::time::timeout(CONNECT_BOUND, options.connect()).await {
        Ok(Ok(conn)) => Ok(conn),
        Ok(Err(e)) => Err(ServerError::Connect {
            target: format!("{admin:?}"),
            message: e.to_string(),
        }),
        Err(_) => Err(ServerError::Connect {
            target: format!("{admin:?}"),
            message: format!("no answer within {CONNECT_BOUND:?}"),
        }),
    }
}

/// Read every setting back from the running server. Servers clamp out-of-range values
/// without a word (MariaDB raises `max_connections = 4` to 10); a suite run against a
/// server configured otherwise than it says would test the wrong thing.
pub async fn verify_settings(
    server: &dyn Server,
    settings: &BTreeMap<String, String>,
) -> Result<(), ServerError> {
    if settings.is_empty() {
        return Ok(());
    }
    let admin = server.admin();
    let mut conn = admin_connect(&admin).await?;
    for (key, want) in settings {
        // Options that are not global variables (startup-only flags) cannot be read back.
        let Ok(got) = global_on(&mut conn, &admin, key).await else {
            continue;
        };
        if !same_setting(want, &got) {
            return Err(ServerError::Setting {
                key: key.clone(),
                wanted: want.clone(),
                got,
            });
        }
    }
    Ok(())
}

/// Compare a setting as written with the server's value: numbers (with K/M/G suffixes)
/// numerically, ON/OFF as booleans, the rest without regard to case.
fn same_setting(want: &str, got: &str) -> bool {
    fn number(s: &str) -> Option<f64> {
        let s = s.trim();
        let (digits, mult) = match s.chars().last()?.to_ascii_uppercase() {
            'K' => (&s[..s.len() - 1], 1024.0),
            'M' => (&s[..s.len() - 1], 1024.0 * 1024.0),
            'G' => (&s[..s.len() - 1], 1024.0 * 1024.0 * 1024.0),
            _ => (s, 1.0),
        };
        digits.parse::<f64>().ok().map(|n| n * mult)
    }
    fn boolean(s: &str) -> Option<bool> {
        match s.to_ascii_uppercase().as_str() {
            "ON" | "TRUE" | "1" => Some(true),
            "OFF" | "FALSE" | "0" => Some(false),
            _ => None,
        }
    }
    match (number(want), number(got), boolean(want), boolean(got)) {
        (Some(a), Some(b), _, _) => (a - b).abs() < 1e-9,
        (_, _, Some(a), Some(b)) => a == b,
        _ => want.eq_ignore_ascii_case(got),
    }
}

#[cfg(test)]
mod tests {
    use super::same_setting;

    #[test]
    fn literals_are_quoted_unless_numbers() {
        assert_eq!(super::sql_literal("28800"), "28800");
        assert_eq!(super::sql_literal("0.5"), "0.5");
        assert_eq!(super::sql_literal("utf8mb4"), "'utf8mb4'");
        assert_eq!(super::sql_literal("it's"), "'it''s'");
    }

    #[test]
    fn settings_compare_as_the_server_prints_them() {
        assert!(same_setting("2", "2"));
        assert!(same_setting("16M", "16777216"));
        assert!(same_setting("ON", "1"));
        assert!(same_setting("utf8mb4", "UTF8MB4"));
        assert!(
            !same_setting("4", "10"),
            "a clamped value is not the value asked for"
        );
    }
}
