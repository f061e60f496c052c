//! A run tells its observer where it is, in order, from the run itself: what the
//! terminal's progress lines show.

use crate::common;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use goneaway::{Observer, RunOptions, Step, Suite};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_tells_its_observer_each_step_in_order() {
    if !common::mariadb() {
        return;
    }
    let suite = Suite::load("tests/reports/timeline/kill-untolerated.toml").unwrap();
    let steps = Arc::new(Mutex::new(Vec::new()));
    let seen = steps.clone();
    let opts = RunOptions {
        observer: Some(Observer::new(move |s| seen.lock().unwrap().push(s))),
        ..Default::default()
    };
    let report = goneaway::run(&suite, opts).await.unwrap();
    assert!(
        !report.stable.met,
        "the fixture suite fails its errors check"
    );
    let name = || "kill".to_string();
    assert_eq!(
        *steps.lock().unwrap(),
        [
            Step::StartingServer,
            Step::Running {
                expected: Duration::from_secs(3)
            },
            Step::FaultActive { name: name() },
            Step::Healing { name: name() },
            Step::Healed { name: name() },
            Step::Checking,
        ]
    );
}
