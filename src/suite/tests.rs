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
