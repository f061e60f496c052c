//! A corpus of malformed suites: each must be refused with one message naming the file,
//! line and field, and that message is snapshotted so it cannot get worse unnoticed.

use goneaway::Suite;

#[test]
fn malformed_suites_get_one_clear_message() {
    insta::glob!("bad-suites/*.toml", |path| {
        let text = std::fs::read_to_string(path).unwrap();
        let name = path.file_name().unwrap().to_str().unwrap();
        let stem = name.trim_end_matches(".toml");
        let err = Suite::from_toml(&text, &format!("bad-suites/{name}"), stem)
            .expect_err("a malformed suite must be refused");
        let msg = err.to_string();
        assert!(
            msg.starts_with(&format!("bad-suites/{name}:")),
            "names the file: {msg}"
        );
        assert!(!msg.contains('\n'), "one line: {msg}");
        insta::assert_snapshot!(msg);
    });
}
