//! `goneaway contract`: the whole battery against the six clients, each cell a real run
//! against a real server, and the command line around it.

use crate::common;

use std::process::Command;

use goneaway::contract::{self, Battery, Options, Outcome};

const BIN: &str = env!("CARGO_BIN_EXE_goneaway");

/// Cells whose outcome is a matter of timing rather than of the configuration, with why.
/// Their outcome is still checked to be a pass or a fail, never unknown or an error.
const CHANCE: &[(&str, &str, &str, &str)] = &[(
    "go-database-sql",
    "defaults",
    "failover",
    "database/sql keeps 2 idle connections and closes the rest on return, so connections to the old primary leave by churn alone: every worker recovered in 0.4 s to 8.1 s over eight runs, against the battery's bound of 8 s",
)];

/// Every client's runtime and library is here (with `CI` set, a missing one fails).
fn clients_ready(battery: &Battery) -> bool {
    battery
        .cells()
        .expect("the battery parses")
        .iter()
        .all(|c| common::client_ready(&c.suite))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn six_clients_under_the_battery_give_the_same_table_every_time() {
    if !common::mariadb() {
        return;
    }
    let battery = Battery::builtin();
    if !clients_ready(&battery) {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let opts = Options {
        jobs: 8,
        limit: Some(common::SLOTS.clone()),
        seed: 1,
        dir: Some(dir.path().to_path_buf()),
        resume: false,
        cancel: Default::default(),
    };
    let table = contract::run(&battery, &opts, &mut |_, _, _, _| {})
        .await
        .expect("the battery runs");
    assert_eq!(table.cells.len(), 6 * 2 * 8);
    let unmeasured: Vec<String> = table
        .cells
        .iter()
        .filter(|c| matches!(c.outcome, Outcome::Error | Outcome::Unknown))
        .map(|c| {
            format!(
                "{} {} × {}: {} ({})",
                c.client,
                c.config,
                c.fault,
                c.outcome.word(),
                c.reasons.join("; ")
            )
        })
        .collect();
    assert!(
        unmeasured.is_empty(),
        "every cell must give a verdict:\n{}\n\n{}",
        unmeasured.join("\n"),
        contract::text(&table)
    );
    let mut stable = contract::stable(&table);
    for (client, config, fault, why) in CHANCE {
        let prefix = format!("{client} {config} {fault}: ");
        stable = stable
            .lines()
            .map(|l| match l.starts_with(&prefix) {
                true => format!("{prefix}pass or FAIL by chance: {why}"),
                false => l.to_string(),
            })
            .collect::<Vec<_>>()
            .join("\n");
    }
    insta::assert_snapshot!("contract-stable", stable, &contract::text(&table));

    // Resumed, every cell is the saved one: nothing runs again.
    let resumed = Options {
        resume: true,
        ..opts
    };
    let mut reused = 0;
    let again = contract::run(&battery, &resumed, &mut |_, r, _, _| {
        reused += usize::from(r)
    })
    .await
    .unwrap();
    assert_eq!(reused, table.cells.len());
    assert_eq!(again, table);
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn a_bad_contract_argument_is_one_line_and_exit_2() {
    let out = Command::new(BIN)
        .args(["contract", "--client", "hikari"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(
        stderr.trim(),
        "no client named `hikari` in the contract; there are: sqlx, mysql-async, sqlalchemy, go-database-sql, hikaricp, node-mysql"
    );
    let dir = tempfile::tempdir().unwrap();
    let mine = dir.path().join("mine.toml");
    std::fs::write(
        &mine,
        "[pool]\nmax_connections = 4\nacquire_timout = \"5s\"\n",
    )
    .unwrap();
    let out = Command::new(BIN)
        .args(["contract", "--recommended"])
        .arg(format!("sqlx={}", mine.display()))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = text(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!(
            "{} (in contract cell sqlx recommended × unreachable):3:1: ",
            mine.display()
        )),
        "{stderr}"
    );
}

#[test]
fn one_cell_from_the_command_line_then_resumed() {
    if !common::mariadb() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let md = dir.path().join("contract.md");
    let args = |extra: &[&str]| {
        let mut a = vec![
            "contract",
            "--client",
            "sqlx",
            "--config",
            "recommended",
            "--fault",
            "kill-active",
            "--dir",
            dir.path().to_str().unwrap(),
        ];
        a.extend_from_slice(extra);
        Command::new(BIN)
            .args(&a)
            .env_remove("GITHUB_STEP_SUMMARY")
            .output()
            .unwrap()
    };
    let out = args(&["--markdown", md.to_str().unwrap()]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("[1/1] sqlx recommended × kill-active: pass"),
        "{stderr}"
    );
    assert!(stdout.contains("sqlx    recommended  pass"), "{stdout}");
    assert!(stdout.contains("sqlx 0.9.0, built by goneaway"), "{stdout}");
    let markdown = std::fs::read_to_string(&md).unwrap();
    assert!(
        markdown.starts_with(
            "| client | config | kill-active |\n|---|---|---|\n| sqlx | recommended | ✅ pass<br>"
        ),
        "{markdown}"
    );
    // The saved cell is reused, and the JSON is the same table.
    let out = args(&["--resume", "--json"]);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        text(&out.stderr).contains("pass (saved)"),
        "{}",
        text(&out.stderr)
    );
    let table: contract::Table = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(table.cells[0].outcome, Outcome::Pass);
    assert!(
        table.cells[0]
            .report
            .as_ref()
            .unwrap()
            .join("report.json")
            .exists()
    );
}
