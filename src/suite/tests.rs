use super::*;

const MINIMAL: &str = r#"
description = "a quiet spell longer than wait_timeout"
[workload]
duration = "5s"
[expect]
verdict = "valid"
"#;

fn parse(text: &str) -> Result<Suite, SuiteError> {
    Suite::from_toml(text, "t.toml", "t")
}

fn err(text: &str) -> String {
    parse(text).expect_err("should be refused").to_string()
}

#[test]
fn a_minimal_suite_gets_defaults() {
    let s = parse(MINIMAL).unwrap();
    assert_eq!(s.name, "t");
    assert_eq!(s.server.backend, BackendKind::Process);
    assert!(s.pool.is_none());
    assert_eq!(s.workload.workers, 4);
    assert_eq!(s.workload.duration, Duration::from_secs(5));
    assert_eq!(s.expect.verdict, Expected::Valid);
    assert_eq!(s.expect.grace, Expect::DEFAULT_GRACE);
}

#[test]
fn every_builtin_suite_parses_and_the_list_matches_the_directory() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("suites");
    let mut on_disk: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".toml")
                .map(String::from)
        })
        .collect();
    on_disk.sort();
    let mut listed: Vec<String> = builtin_names().into_iter().map(String::from).collect();
    listed.sort();
    assert_eq!(
        listed, on_disk,
        "src/suite/builtin.rs must list exactly the files in suites/"
    );
    for name in builtin_names() {
        let s = Suite::builtin(name).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(s.name, name);
        assert_eq!(
            Suite::load(dir.join(format!("{name}.toml"))).unwrap().name,
            name
        );
    }
}

#[test]
fn server_settings_render_for_mysqld() {
    let s = parse(&format!("{MINIMAL}\n[server]\nwait_timeout = \"8h\"\nmax_connections = 20\nskip-name-resolve = true\ncharacter_set_server = \"utf8mb4\"\n")).unwrap();
    let got: Vec<(&str, &str)> = s
        .server
        .settings
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    assert_eq!(
        got,
        [
            ("character_set_server", "utf8mb4"),
            ("max_connections", "20"),
            ("skip_name_resolve", "ON"),
            ("wait_timeout", "28800")
        ]
    );
    assert_eq!(s.server.wait_timeout(), Duration::from_secs(28800));
}

#[test]
fn sqlalchemy_words_map_onto_sqlx() {
    let s = parse(&format!("{MINIMAL}\n[pool]\npool_size = 5\nmax_overflow = 10\npool_recycle = 7200\npool_pre_ping = true\n")).unwrap();
    let p = s.pool.unwrap();
    assert_eq!(p.vocabulary, Vocabulary::Sqlalchemy);
    assert_eq!((p.max_connections, p.min_connections), (15, 5));
    assert_eq!(p.max_lifetime, Some(Duration::from_secs(7200)));
    assert!(p.test_before_acquire);
    let s = parse(&format!("{MINIMAL}\n[pool]\npool_recycle = -1\n")).unwrap();
    assert_eq!(s.pool.unwrap().max_lifetime, None);
}

#[test]
fn mysql_async_words_go_to_its_client_not_to_sqlx() {
    let s = parse(&format!(
        "{MINIMAL}\n[client]\nkind = \"mysql-async\"\n[pool]\npool_min = 2\npool_max = 4\nabs_conn_ttl = \"30s\"\nconn_ttl = \"0s\"\nreset_connection = false\n"
    ))
    .unwrap();
    assert!(s.pool.is_none(), "no sqlx pool is described");
    let Some(crate::client::ClientKind::MysqlAsync(words)) = s.client.map(|c| c.kind) else {
        panic!("a mysql-async client")
    };
    assert_eq!(
        words.to_string(),
        "pool_min=2 pool_max=4 abs_conn_ttl=30s conn_ttl=0s reset_connection=false"
    );
    // No [pool] at all: the library's defaults.
    let s = parse(&format!("{MINIMAL}\n[client]\nkind = \"mysql-async\"\n")).unwrap();
    assert_eq!(
        s.client.map(|c| c.kind),
        Some(crate::client::ClientKind::MysqlAsync(Default::default()))
    );
    // Another vocabulary's word is named with mysql_async's nearest one.
    let e = err(&format!(
        "{MINIMAL}\n[client]\nkind = \"mysql-async\"\n[pool]\nmax_lifetime = \"1h\"\n"
    ));
    assert!(e.contains("abs_conn_ttl"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[client]\nkind = \"mysql-async\"\ndriver = \"pymysql\"\n"
    ));
    assert!(e.contains("driver"), "{e}");
}

#[test]
fn sqlalchemy_connect_args_reach_the_adapter_as_written() {
    let s = parse(&format!(
        "{MINIMAL}\n[client]\nkind = \"sqlalchemy\"\n[client.config]\nconnect_args = {{ read_timeout = 5, write_timeout = 5, connect_timeout = 2.5 }}\n"
    ))
    .unwrap();
    let config = serde_json::Value::Object(s.client.unwrap().config);
    assert_eq!(
        config,
        serde_json::json!({"connect_args": {"read_timeout": 5, "write_timeout": 5, "connect_timeout": 2.5}})
    );
    // Inline under [client], the complaint points at the table.
    let e = err(&format!(
        "{MINIMAL}\n[client]\nkind = \"sqlalchemy\"\nconfig = {{ pool_recycle = 30 }}\n"
    ));
    assert!(e.starts_with("t.toml:10:10:"), "{e}");
    assert!(e.contains("only `connect_args`"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[client]\nkind = \"sqlalchemy\"\n[client.config]\nconnect_args = 5\n"
    ));
    assert!(e.contains("connect_args must be a table"), "{e}");
}

#[test]
fn sqlx_words_keep_sqlx_defaults() {
    let s = parse(&format!(
        "{MINIMAL}\n[pool]\nmax_connections = 3\nidle_timeout = \"never\"\n"
    ))
    .unwrap();
    let p = s.pool.unwrap();
    assert_eq!(p.vocabulary, Vocabulary::Sqlx);
    assert_eq!(
        (p.max_connections, p.idle_timeout, p.test_before_acquire),
        (3, None, true)
    );
    assert_eq!(p.max_lifetime, Some(Duration::from_secs(1800)));
}

#[test]
fn faults_check_their_parameters() {
    let base = MINIMAL.replace("duration = \"5s\"", "duration = \"20s\"");
    let s = parse(&format!(
        "{base}\n[[fault]]\nkind = \"kill\"\ntarget = \"active\"\nat = \"1s\"\nrepeat = {{ every = \"2s\", times = 3 }}\njitter = \"100ms\"\n[[fault]]\nkind = \"wait_timeout\"\nat = \"2s\"\nvalue = \"2s\"\n[[fault]]\nkind = \"max_connections\"\nat = \"3s\"\nduration = \"1s\"\nvalue = 12\n"
    ))
    .unwrap();
    assert_eq!(
        s.faults[0].fault,
        Fault::Kill {
            target: KillTarget::Active
        }
    );
    assert_eq!(
        s.faults[1].fault,
        Fault::WaitTimeout {
            value: Duration::from_secs(2)
        }
    );
    assert_eq!(s.faults[1].lasts, crate::history::Lasts::UntilEnd);
    assert_eq!(s.faults[2].fault, Fault::MaxConnections { value: 12 });
    assert_eq!(
        s.faults[2].lasts,
        crate::history::Lasts::For(Duration::from_secs(1))
    );
    assert_eq!(s.faults[0].lasts, crate::history::Lasts::Instant);
    assert_eq!(s.faults[0].latest_heal(), Duration::from_millis(7100));
}

#[test]
fn read_only_is_a_fault_of_its_own_however_it_is_spelled() {
    let base = MINIMAL.replace("duration = \"5s\"", "duration = \"20s\"");
    let s = parse(&format!(
        "{base}\n[[fault]]\nkind = \"read_only\"\nat = \"1s\"\nduration = \"2s\"\n[[fault]]\nkind = \"set_global\"\nvariable = \"read_only\"\nvalue = true\nat = \"4s\"\n[[fault]]\nkind = \"set_global\"\nvariable = \"read_only\"\nvalue = \"OFF\"\nname = \"back\"\nat = \"5s\"\n"
    ))
    .unwrap();
    assert_eq!(s.faults[0].fault, Fault::ReadOnly);
    assert_eq!(
        s.faults[0].lasts,
        crate::history::Lasts::For(Duration::from_secs(2))
    );
    assert_eq!(s.faults[1].fault, Fault::ReadOnly);
    assert_eq!(s.faults[1].lasts, crate::history::Lasts::UntilEnd);
    assert!(matches!(s.faults[2].fault, Fault::SetGlobal { .. }));
    let e = err(&format!(
        "{base}\n[[fault]]\nkind = \"read_only\"\nat = \"1s\"\nvalue = 1\n"
    ));
    assert!(
        e.contains("`value` is not a parameter of fault kind `read_only`"),
        "{e}"
    );
}

#[test]
fn a_replica_is_asked_for_in_server_and_refused_where_it_cannot_be() {
    let with =
        |server: &str| MINIMAL.replace("[workload]", &format!("[server]\n{server}\n[workload]"));
    let s = parse(&with("replica = true\nreplica_delay = \"2s\"")).unwrap();
    assert_eq!(
        s.server.replica,
        Some(ReplicaSpec {
            delay: Duration::from_secs(2)
        })
    );
    assert_eq!(
        parse(&with("replica = false")).unwrap().server.replica,
        None
    );
    let e = err(&with("replica_delay = \"2s\""));
    assert!(e.contains("replica_delay needs `replica = true`"), "{e}");
    let e = err(&with("replica = true\nreplica_delay = \"1500ms\""));
    assert!(e.contains("whole seconds"), "{e}");
    let e = err(&with("backend = \"docker\"\nreplica = true"));
    assert!(
        e.contains("only the process backend can start a replica"),
        "{e}"
    );
    let e = err(&with("replica = true\nserver_id = 7"));
    assert!(
        e.contains("[server] server_id is set by the harness"),
        "{e}"
    );
    assert!(e.contains(":5:"), "points at the key's line: {e}");
    let e = parse(&with("replica = true"))
        .unwrap()
        .with_backend(BackendKind::Docker)
        .unwrap_err()
        .to_string();
    assert!(e.contains("only the process backend"), "{e}");
}

#[test]
fn a_failover_needs_a_replica_and_takes_only_its_own_parameters() {
    let base = MINIMAL.replace("duration = \"5s\"", "duration = \"20s\"");
    let with = |server: &str, fault: &str| {
        base.replace("[workload]", &format!("[server]\n{server}\n[[fault]]\nkind = \"failover\"\nat = \"2s\"\n{fault}\n[workload]"))
    };
    let s = parse(&with(
        "replica = true",
        "old_primary = \"stopped\"\nreset = true",
    ))
    .unwrap();
    assert_eq!(
        s.faults[0].fault,
        Fault::Failover {
            stop: true,
            reset: true
        }
    );
    assert_eq!(s.faults[0].lasts, crate::history::Lasts::Instant);
    assert!(s.proxy.is_some(), "the moved address is the proxy");
    let s = parse(&with("replica = true", "")).unwrap();
    assert_eq!(
        s.faults[0].fault,
        Fault::Failover {
            stop: false,
            reset: false
        }
    );
    let e = err(&with("", ""));
    assert!(
        e.contains("needs a replica to promote: add `replica = true`"),
        "{e}"
    );
    let e = err(&with("replica = true", "duration = \"1s\""));
    assert!(e.contains("a failover is permanent"), "{e}");
    let e = err(&with("replica = true", "old_primary = \"gone\""));
    assert!(e.contains("expected read_only"), "{e}");
    let e = err(&base.replace(
        "[workload]",
        "[[fault]]\nkind = \"kill\"\nat = \"1s\"\nreset = true\n[workload]",
    ));
    assert!(
        e.contains("`reset` is not a parameter of fault kind `kill`"),
        "{e}"
    );
    let e = err(&format!(
        "{}\n[proxy]\nurl = \"http://127.0.0.1:8474\"\n",
        with("replica = true", "")
    ));
    assert!(e.contains("needs goneaway's own proxy"), "{e}");
    let e = err(&format!("{base}lost_in_failover = \"sometimes\"\n"));
    assert!(
        e.contains("expected forbidden (the default), allowed or expected"),
        "{e}"
    );
}

#[test]
fn errors_name_the_line_and_what_is_allowed() {
    let e = err(&format!("{MINIMAL}\n[pool]\npool_sise = 5\n"));
    assert!(
        e.starts_with("t.toml:9:1: unknown field `pool_sise`"),
        "{e}"
    );
    assert!(e.contains("pool_size"), "lists what is allowed: {e}");

    let e = err(&MINIMAL.replace("\"5s\"", "\"5 parsecs\""));
    assert!(e.starts_with("t.toml:4:12: invalid duration"), "{e}");

    let e = err(&MINIMAL.replace("\"5s\"", "5"));
    assert!(e.contains("write it with a unit"), "{e}");

    let e = err(&format!(
        "{MINIMAL}\n[pool]\npool_size = 5\nmax_connections = 9\n"
    ));
    assert!(
        e.starts_with(
            "t.toml:10:19: [pool] mixes SQLAlchemy (`pool_size`) and sqlx (`max_connections`)"
        ),
        "{e}"
    );

    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"crash\"\nat = \"1s\"\nduration = \"1s\"\ntarget = \"idle\"\n"
    ));
    assert!(
        e.starts_with("t.toml:12:10: `target` is not a parameter of fault kind `crash`"),
        "{e}"
    );

    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"explode\"\nat = \"1s\"\n"
    ));
    assert!(
        e.contains("unknown fault kind `explode`; expected one of idle,"),
        "{e}"
    );

    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"pause\"\nat = \"4s\"\nduration = \"2s\"\n"
    ));
    assert!(
        e.contains("may last until 6s but the workload ends at 5s"),
        "{e}"
    );

    let e = err(&MINIMAL.replace("verdict = \"valid\"", "verdict = \"invalid\""));
    assert!(e.contains("must say what it catches"), "{e}");

    let e = err(&MINIMAL.replace(
        "verdict = \"valid\"",
        "verdict = \"valid\"\nerrors = [\"gone_away\"]",
    ));
    assert!(e.contains("contradicts verdict = \"valid\""), "{e}");

    let e = err(&MINIMAL.replace(
        "verdict = \"valid\"",
        "verdict = \"valid\"\ntolerate = [\"gone away\"]",
    ));
    assert!(e.contains("unknown error class `gone away`"), "{e}");
}

#[test]
fn external_servers_refuse_process_faults() {
    let text = format!(
        "{}\n[server]\nbackend = \"external\"\nurl = \"mysql://u:p@db:3306/x\"\n[[fault]]\nkind = \"crash\"\nat = \"1s\"\nduration = \"1s\"\n",
        MINIMAL
    );
    let e = err(&text);
    assert!(
        e.contains("fault `crash` cannot run on the external backend"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}\n[server]\nbackend = \"external\"\n"));
    assert!(e.contains("needs `url"), "{e}");
    let crash = parse(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"crash\"\nat = \"1s\"\nduration = \"1s\"\n"
    ))
    .unwrap();
    let e = crash
        .with_backend(BackendKind::External)
        .unwrap_err()
        .to_string();
    assert!(e.contains("needs `url`"), "{e}");
}

#[test]
fn a_server_setting_value_error_points_at_its_line() {
    let e = err(&format!("{MINIMAL}\n[server]\nwait_timeout = \"1.5s\"\n"));
    assert!(
        e.starts_with(
            "t.toml:9:1: [server] wait_timeout: \"1.5s\" is not a whole number of seconds"
        ),
        "{e}"
    );
}

#[test]
fn a_missing_required_field_names_its_table_and_the_line_to_write() {
    let e = err("[workload]\nduration = \"5s\"\n[expect]\nverdict = \"valid\"\n");
    assert!(
        e.starts_with("t.toml:1:1: missing `description` at the top of the file"),
        "{e}"
    );
    assert!(e.contains("add `description = "), "{e}");

    let e = err(&MINIMAL.replace("verdict = \"valid\"", "grace = \"1s\""));
    assert!(
        e.starts_with("t.toml:5:1: missing `verdict` in [expect]; add `verdict = \"valid\"`"),
        "points at the [expect] header: {e}"
    );

    let e = err(&MINIMAL.replace("duration = \"5s\"", "workers = 2"));
    assert!(
        e.starts_with("t.toml:3:1: missing `duration` in [workload]; add `duration = "),
        "{e}"
    );

    let e = err("description = \"x\"\n[expect]\nverdict = \"valid\"\n");
    assert!(
        e.starts_with("t.toml:1:1: missing the [workload] table"),
        "{e}"
    );
    let e = err("description = \"x\"\n[workload]\nduration = \"5s\"\n");
    assert!(
        e.starts_with("t.toml:1:1: missing the [expect] table"),
        "{e}"
    );

    let e = err(&format!("{MINIMAL}\n[[fault]]\nkind = \"kill\"\n"));
    assert!(
        e.starts_with("t.toml:8:1: missing `at` in [[fault]]; add `at = "),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}\n[[fault]]\nat = \"1s\"\n"));
    assert!(e.contains("missing `kind` in [[fault]]"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"kill\"\nat = \"1s\"\nrepeat = {{ every = \"1s\" }}\n"
    ));
    assert!(e.contains("`repeat` needs both `every` and `times`"), "{e}");
}

#[test]
fn min_throughput_must_be_a_finite_number() {
    for bad in ["nan", "inf", "-inf", "-1.0"] {
        let e = err(&format!("{MINIMAL}min_throughput = {bad}\n"));
        assert!(
            e.starts_with("t.toml:7:18: [expect] min_throughput must be a finite number >= 0"),
            "{bad}: {e}"
        );
    }
    let s = parse(&format!("{MINIMAL}min_throughput = 0.0\n")).unwrap();
    assert_eq!(s.expect.min_throughput, Some(0.0));
}

#[test]
fn sqlalchemy_no_limit_values_are_refused_with_their_meaning() {
    let e = err(&format!("{MINIMAL}\n[pool]\npool_size = 0\n"));
    assert!(
        e.starts_with("t.toml:9:13: [pool] pool_size = 0 means \"no limit\" in SQLAlchemy"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}\n[pool]\nmax_overflow = -1\n"));
    assert!(e.contains("max_overflow = -1 means \"no limit\""), "{e}");
    let e = err(&format!("{MINIMAL}\n[pool]\nmax_overflow = -2\n"));
    assert!(
        e.contains("max_overflow must be a whole number from 0"),
        "{e}"
    );
    // The largest values saturate instead of overflowing.
    let s = parse(&format!(
        "{MINIMAL}\n[pool]\npool_size = 4294967295\nmax_overflow = 4294967295\n"
    ))
    .unwrap();
    assert_eq!(s.pool.unwrap().max_connections, u32::MAX);
}

#[test]
fn a_sleep_must_fit_the_workload_and_be_used() {
    let with = |workload: &str| MINIMAL.replace("duration = \"5s\"", workload);
    // Longer than op_timeout is fine: a sleep statement is bounded by op_timeout + sleep.
    let s = parse(&with(
        "duration = \"5s\"\nop_timeout = \"1s\"\nsleep = \"2s\"\nmix = { sleep = 1 }",
    ))
    .unwrap();
    assert_eq!(s.workload.sleep, Duration::from_secs(2));

    let e = err(&with(
        "duration = \"5s\"\nsleep = \"5s\"\nmix = { sleep = 1 }",
    ));
    assert!(
        e.starts_with(
            "t.toml:5:9: [workload] a `sleep` operation sleeps 5s but the workload lasts 5s"
        ),
        "{e}"
    );
    // The default sleep (1s) against a shorter workload: pointed at the mix.
    let e = err(&with("duration = \"500ms\"\nmix = { sleep = 1 }"));
    assert!(e.starts_with("t.toml:5:7: [workload] a `sleep`"), "{e}");
    let e = err(&with("duration = \"5s\"\nsleep = \"2s\""));
    assert!(e.contains("`mix` gives `sleep` no weight"), "{e}");
    let e = err(&with(
        "duration = \"5s\"\nsleep = \"0s\"\nmix = { sleep = 1 }",
    ));
    assert!(
        e.contains("sleep = 0 makes every `sleep` operation return at once"),
        "{e}"
    );
    // Absurd values are refused wherever a duration is written.
    let e = err(&with(
        "duration = \"5s\"\nsleep = \"100000000000s\"\nmix = { sleep = 1 }",
    ));
    assert!(
        e.starts_with("t.toml:5:9: duration \"100000000000s\" is longer than a year"),
        "{e}"
    );
    let e = err(&format!("{MINIMAL}\n[pool]\npool_recycle = 1e30\n"));
    assert!(e.contains("is longer than a year"), "{e}");
}

#[test]
fn a_rate_capped_workload_must_reach_its_faults() {
    let faulty = |workload: &str, fault: &str| {
        format!(
            "description = \"d\"\n[workload]\nduration = \"10s\"\nworkers = 4\n{workload}\n[[fault]]\n{fault}\n[expect]\nverdict = \"valid\"\n"
        )
    };
    let kill = "kind = \"kill\"\nat = \"3s\"";
    // 4 workers at 10/s: one request each per 400ms; 20 requests are 5 rounds, the last
    // issued at 1.6s, before the kill at 3s.
    let e = err(&faulty("requests = 20\nrate = 10", kill));
    assert!(
        e.starts_with("t.toml:5:12: [workload] requests = 20 at rate = 10/s may be used up after about 1.6s, before fault `kill` starts at 3.0s: it would never run; raise `requests` to at least 33"),
        "{e}"
    );
    // The suggested cap is the smallest that passes.
    assert!(parse(&faulty("requests = 32\nrate = 10", kill)).is_err());
    let s = parse(&faulty("requests = 33\nrate = 10", kill)).unwrap();
    assert!(s.warnings().is_empty());

    // Used up after the start but before the heal: the fault may stretch the timetable
    // (a cut makes checkouts wait), so only a warning.
    let cut = "kind = \"cut\"\nat = \"1s\"\nduration = \"3s\"";
    let s = parse(&faulty("requests = 20\nrate = 10", cut)).unwrap();
    let w = s.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert!(
        w[0].message.contains("before fault `cut` heals at 4.0s: nothing would show recovery; the fault may slow requests"),
        "{}",
        w[0].message
    );

    // A closed loop's pace is the server's: a warning, not a refusal.
    let s = parse(&faulty("requests = 20", kill)).unwrap();
    let w = s.warnings();
    assert_eq!(w.len(), 1, "{w:?}");
    assert_eq!(w[0].rule, "requests-cap");
    assert!(
        w[0].message.contains("requests = 20 with no `rate`"),
        "{}",
        w[0].message
    );
    assert!(
        w[0].message.contains("before fault `kill` starts at 3.0s"),
        "{}",
        w[0].message
    );
    assert!(
        parse(&faulty("requests = 100000", kill))
            .unwrap()
            .warnings()
            .is_empty()
    );
    assert!(parse(MINIMAL).unwrap().warnings().is_empty());
}

#[test]
fn idle_faults_delay_a_rate_capped_workload() {
    let text = |requests: u64| {
        format!(
            "description = \"d\"\n[workload]\nduration = \"20s\"\nworkers = 1\nrate = 1\nrequests = {requests}\n[[fault]]\nkind = \"idle\"\nat = \"1s\"\nduration = \"5s\"\n[[fault]]\nkind = \"kill\"\nat = \"8s\"\n[expect]\nverdict = \"valid\"\n"
        )
    };
    // Without the idle window, 8 requests at 1/s would end at 7s, before the kill at 8s;
    // the 5s of idling carry them past it.
    assert!(parse(&text(8)).is_ok());
    let e = err(&text(3));
    assert!(e.contains("raise `requests` to at least 5"), "{e}");
}

#[test]
fn a_toxic_that_can_never_fire_is_refused() {
    let base = MINIMAL.replace("duration = \"5s\"", "duration = \"10s\"");
    let toxic = |toxicity: &str| {
        format!(
            "{base}\n[[fault]]\nkind = \"latency\"\nat = \"1s\"\nduration = \"1s\"\nattributes = {{ latency = 100 }}\ntoxicity = {toxicity}\n"
        )
    };
    for zero in ["0.0", "0", "1e-50"] {
        let e = err(&toxic(zero));
        assert!(
            e.starts_with("t.toml:13:12: `toxicity = 0` affects no connection"),
            "{zero}: {e}"
        );
    }
    assert!(parse(&toxic("0.5")).is_ok());
}

#[test]
fn a_repeat_is_bounded() {
    let e = err(&format!(
        "{}\n[[fault]]\nkind = \"kill\"\nat = \"1s\"\nrepeat = {{ every = \"1ms\", times = 4000000000 }}\n",
        MINIMAL.replace("\"5s\"", "\"300d\"")
    ));
    assert!(e.contains("`repeat.times` is at most 1000"), "{e}");
}

/// Mutated suite texts (random byte edits, lines deleted or duplicated, values swapped
/// between the built-in suites) never panic the parser or the checks `goneaway check`
/// and a run's planning do, and every refusal points at a line and column.
mod mutations {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::FileFailurePersistence;

    #[derive(Debug, Clone)]
    enum Edit {
        /// Overwrite, insert or delete one byte (the text is then read lossily, so
        /// multi-byte characters and U+FFFD appear too).
        Byte {
            at: usize,
            byte: u8,
            op: u8,
        },
        DeleteLine(usize),
        DuplicateLine(usize),
        /// Give line `at` the value of line `line` of built-in suite `suite`.
        SwapValue {
            at: usize,
            suite: usize,
            line: usize,
        },
        /// Give line `at` one of [`ODD`]'s values.
        OddValue {
            at: usize,
            value: usize,
        },
    }

    /// Values at the edges of what the checks accept.
    const ODD: &[&str] = &[
        "nan",
        "inf",
        "-inf",
        "-1",
        "0",
        "0.0",
        "1e-50",
        "1e300",
        "4294967296",
        "9223372036854775807",
        "\"0s\"",
        "\"100000000000s\"",
        "\"300000000000y\"",
        "\"never\"",
        "\"\"",
        "[]",
        "{}",
        "true",
        "\"\\n\"",
    ];

    /// Bytes that matter to TOML and to the checks, plus anything at all.
    fn byte() -> impl Strategy<Value = u8> {
        prop_oneof![
            3 => prop::sample::select(b"\"'=[]{},.#\n-+0123456789sm_ aeinx".to_vec()),
            1 => any::<u8>(),
        ]
    }

    fn edit() -> impl Strategy<Value = Edit> {
        prop_oneof![
            3 => (any::<usize>(), byte(), 0u8..3).prop_map(|(at, byte, op)| Edit::Byte { at, byte, op }),
            1 => any::<usize>().prop_map(Edit::DeleteLine),
            1 => any::<usize>().prop_map(Edit::DuplicateLine),
            3 => (any::<usize>(), any::<usize>(), any::<usize>())
                .prop_map(|(at, suite, line)| Edit::SwapValue { at, suite, line }),
            2 => (any::<usize>(), any::<usize>()).prop_map(|(at, value)| Edit::OddValue { at, value }),
        ]
    }

    fn value_of(line: &str) -> Option<&str> {
        line.split_once('=').map(|(_, v)| v)
    }

    fn apply(text: &str, edit: &Edit) -> String {
        let mut lines: Vec<String> = text.lines().map(String::from).collect();
        match *edit {
            Edit::Byte { at, byte, op } => {
                let mut bytes = text.as_bytes().to_vec();
                let at = at % (bytes.len() + 1);
                match op {
                    0 if at < bytes.len() => bytes[at] = byte,
                    1 if at < bytes.len() => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, byte),
                }
                return String::from_utf8_lossy(&bytes).into_owned();
            }
            Edit::DeleteLine(i) if !lines.is_empty() => {
                lines.remove(i % lines.len());
            }
            Edit::DuplicateLine(i) if !lines.is_empty() => {
                let i = i % lines.len();
                lines.insert(i, lines[i].clone());
            }
            Edit::SwapValue { at, suite, line } => {
                let donor: Vec<&str> = BUILTIN[suite % BUILTIN.len()]
                    .1
                    .lines()
                    .filter_map(value_of)
                    .collect();
                if !donor.is_empty() {
                    set_value(&mut lines, at, donor[line % donor.len()]);
                }
            }
            Edit::OddValue { at, value } => set_value(&mut lines, at, ODD[value % ODD.len()]),
            _ => {}
        }
        lines.join("\n") + "\n"
    }

    /// Replace the value of the `at`-th `key = value` line.
    fn set_value(lines: &mut [String], at: usize, value: &str) {
        let targets: Vec<usize> = (0..lines.len())
            .filter(|i| value_of(&lines[*i]).is_some())
            .collect();
        if targets.is_empty() {
            return;
        }
        let i = targets[at % targets.len()];
        if let Some((key, _)) = lines[i].split_once('=') {
            lines[i] = format!("{key}= {}", value.trim());
        }
    }

    fn has_position(e: &SuiteError, text: &str) -> bool {
        let lines = text.split('\n').count();
        matches!(e.position, Some((line, col)) if line >= 1 && col >= 1 && line <= lines)
            && e.to_string().starts_with(&format!(
                "m.toml:{}:{}: ",
                e.position.unwrap().0,
                e.position.unwrap().1
            ))
    }

    proptest! {
        // About 0.2 ms a case: well under a few seconds, shrinking included.
        #![proptest_config(ProptestConfig {
            cases: 2000,
            // Regression seeds live beside this file (the repo keeps its top level to the
            // project's own folders).
            failure_persistence: Some(Box::new(FileFailurePersistence::WithSource("proptest-regressions"))),
            ..ProptestConfig::default()
        })]
        #[test]
        fn mutated_suites_never_panic_and_errors_have_a_place(
            suite in 0..BUILTIN.len(),
            edits in prop::collection::vec(edit(), 1..5),
        ) {
            let mut text = BUILTIN[suite].1.to_string();
            for e in &edits {
                text = apply(&text, e);
            }
            match Suite::from_toml(&text, "m.toml", "m") {
                Err(e) => {
                    prop_assert!(has_position(&e, &text), "no place in: {e}\n---\n{text}");
                    prop_assert!(!e.to_string().contains('\n'), "more than one line: {e}");
                }
                Ok(s) => {
                    // What `goneaway check` and a run's planning do with a checked suite.
                    let pool = s.pool.clone().unwrap_or_else(|| PoolSpec::sqlx(None, None, None, None, None, None));
                    let _ = crate::lint::lint(&pool, &s.server, &s.workload, &s.faults);
                    let _ = s.warnings();
                    let _ = crate::schedule::plan(&s.faults, 1);
                    for backend in [BackendKind::Process, BackendKind::Docker, BackendKind::External] {
                        let _ = s.clone().with_backend(backend);
                    }
                }
            }
        }
    }
}

/// `[workload] steps`: one request of several statements and waits on one checkout.
#[test]
fn steps_are_checked_step_by_step() {
    let with = |workload: &str| MINIMAL.replace("duration = \"5s\"", workload);
    let s = parse(&with(
        "duration = \"5s\"\nsteps = [\"select\", \"wait 3s\", \"insert\"]\ntransaction = true",
    ))
    .unwrap();
    let r = s.workload.request.unwrap();
    assert!(r.transaction);
    assert_eq!(
        r.steps,
        vec![
            Step::Select,
            Step::Wait(Duration::from_secs(3)),
            Step::Insert
        ]
    );

    let e = err(&with("duration = \"5s\"\nsteps = [\"select\", \"nap 3s\"]"));
    assert!(
        e.starts_with("t.toml:5:20: [workload] steps: unknown step `nap 3s`"),
        "{e}"
    );
    let e = err(&with("duration = \"5s\"\nsteps = [\"wait 3 parsecs\"]"));
    assert!(e.contains("invalid duration"), "{e}");
    let e = err(&with("duration = \"5s\"\nsteps = [\"wait 3s\"]"));
    assert!(e.contains("only wait"), "{e}");
    let e = err(&with(
        "duration = \"5s\"\nsteps = [\"select\", \"wait 5s\"]",
    ));
    assert!(e.contains("whole run in one request"), "{e}");
    let e = err(&with("duration = \"5s\"\nsteps = []"));
    assert!(e.contains("1 to 16 steps"), "{e}");
    let e = err(&with(
        "duration = \"5s\"\nsteps = [\"select\"]\nmix = { ping = 1 }",
    ));
    assert!(e.contains("`mix` and `steps` both"), "{e}");
    let e = err(&with("duration = \"5s\"\ntransaction = true"));
    assert!(
        e.starts_with("t.toml:5:15: [workload] transaction applies to `steps`"),
        "{e}"
    );
}

#[test]
fn new_expectations_and_fault_options_are_checked() {
    let expect = |extra: &str| MINIMAL.replace("verdict = \"valid\"", extra);
    let s = parse(&expect(
        "verdict = \"valid\"\nmax_server_connections = 8\nfail_within = \"1500ms\"",
    ))
    .unwrap();
    assert_eq!(s.expect.max_server_connections, Some(8));
    assert_eq!(s.expect.fail_within, Some(Duration::from_millis(1500)));
    let e = err(&expect("verdict = \"valid\"\nmax_server_connections = 0"));
    assert!(e.contains("at least 1"), "{e}");
    let e = err(&expect(
        "verdict = \"invalid\"\nfailing = [\"fail-within\"]",
    ));
    assert!(e.contains("runs only with `fail_within"), "{e}");
    let e = err(&expect(
        "verdict = \"invalid\"\nfailing = [\"server-connections\"]",
    ));
    assert!(e.contains("runs only with `max_server_connections"), "{e}");

    // A fault before the pool is built: no `at`, one occurrence, something to act on.
    let s = parse(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"cut\"\nbefore_pool = true\nduration = \"2s\"\n"
    ))
    .unwrap();
    assert!(s.faults[0].before_pool && s.faults[0].at.is_zero());
    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"cut\"\nbefore_pool = true\nat = \"1s\"\nduration = \"2s\"\n"
    ));
    assert!(e.contains("remove `at`"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"kill\"\nbefore_pool = true\n"
    ));
    assert!(e.contains("nothing to act on"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"cut\"\nbefore_pool = true\n"
    ));
    assert!(e.contains("needs `duration`"), "{e}");

    // The black hole in the handshake: only the embedded proxy can tell connections apart.
    let hole =
        "[[fault]]\nkind = \"blackhole\"\nat = \"1s\"\nduration = \"2s\"\nconnections = \"new\"\n";
    let s = parse(&format!("{MINIMAL}\n{hole}")).unwrap();
    assert!(matches!(
        s.faults[0].fault,
        Fault::Toxic {
            connections: crate::proxy::toxic::Scope::New,
            ..
        }
    ));
    let e = err(&format!(
        "{MINIMAL}\n{}",
        hole.replace("\"new\"", "\"fresh\"")
    ));
    assert!(e.contains("expected all, new"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[proxy]\nurl = \"http://127.0.0.1:8474\"\n{hole}"
    ));
    assert!(e.contains("goneaway's extension"), "{e}");
    let e = err(&format!(
        "{MINIMAL}\n[[fault]]\nkind = \"cut\"\nat = \"1s\"\nduration = \"2s\"\nconnections = \"new\"\n"
    ));
    assert!(
        e.contains("`connections` is not a parameter of fault kind `cut`"),
        "{e}"
    );
}

#[test]
fn the_socket_transport_is_for_the_process_backend_and_our_own_pool() {
    let pool = |t: &str| format!("{MINIMAL}\n[pool]\ntransport = \"{t}\"\n");
    assert_eq!(parse(&pool("socket")).unwrap().transport, Transport::Socket);
    assert_eq!(parse(MINIMAL).unwrap().transport, Transport::Tcp);
    let e = err(&pool("pipe"));
    assert!(e.starts_with("t.toml:9:13: [pool] transport `pipe`"), "{e}");
    let e = err(&format!(
        "{}[[fault]]\nkind = \"cut\"\nat = \"1s\"\nduration = \"1s\"\n",
        pool("socket")
    ));
    assert!(e.contains("network faults need the proxy"), "{e}");
    let e = err(&pool("socket").replace(
        "[workload]",
        "[server]\nbackend = \"external\"\nurl = \"mysql://u:p@127.0.0.1:3306/d\"\n[workload]",
    ));
    assert!(e.contains("the external backend has no socket"), "{e}");
    let s = parse(&pool("socket")).unwrap();
    let e = s.with_backend(BackendKind::Docker).unwrap_err().to_string();
    assert!(e.contains("needs the process backend"), "{e}");
}
