//! Two minutes of the soak in the suite: every service in two processes of its own,
//! mixed load, a SIGKILL of a routing process, a NATS restart and a PostgreSQL restart;
//! nothing acknowledged lost, nothing delivered twice.

use std::time::Duration;

use helpdesk_tests::soak::{self, SoakSpec};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_minutes_of_mixed_load_through_a_crash_and_restarts_lose_and_repeat_nothing() {
    let spec = SoakSpec {
        duration: Duration::from_secs(120),
        ..SoakSpec::default()
    };
    let report = soak::run(&spec).await.expect("the soak ran");
    println!("{report}");
    assert_eq!(report.faults.len(), 3, "every fault happened: {report}");
    assert!(report.chats_started >= 150, "the load ran: {report}");
    assert!(
        report.transfers_requested > 0 && report.tickets > 0,
        "{report}"
    );
    let problems = report.problems();
    assert!(problems.is_empty(), "{}\n{report}", problems.join("; "));
}
