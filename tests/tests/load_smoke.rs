//! The load generator's own check: under concurrent load, closed or open loop, every
//! message reaches every subscribed agent exactly once.

use std::time::Duration;

use helpdesk_conversation::Conversation;
use helpdesk_kit::testing::{TestEnv, spawn};
use helpdesk_tests::load::{self, LoadSpec, OpenLoop};

#[tokio::test]
async fn every_message_reaches_every_subscribed_agent() {
    let env = TestEnv::new().await;
    let app = spawn::<Conversation>(env.service_config()).await;
    let spec = LoadSpec {
        conversation_addr: app.url(),
        jwt_secret: env.jwt_secret.clone(),
        account: "load".into(),
        visitors: 8,
        agents: 3,
        messages_per_visitor: 5,
        drain_timeout: Duration::from_secs(30),
        ..LoadSpec::default()
    };
    let report = load::run(&spec).await.expect("load run");
    assert_eq!(report.sent, 40);
    assert_eq!(
        report.delivery_latency_us.len(),
        120,
        "40 messages x 3 agents"
    );
    assert_eq!(report.duplicates, 0, "each delivery exactly once");
    app.stop().await;
}

#[tokio::test]
async fn open_loop_schedules_every_message_and_delivers_it_once() {
    let env = TestEnv::new().await;
    let app = spawn::<Conversation>(env.service_config()).await;
    let spec = LoadSpec {
        conversation_addr: app.url(),
        jwt_secret: env.jwt_secret.clone(),
        visitors: 6,
        agents: 2,
        drain_timeout: Duration::from_secs(30),
        open_loop: Some(OpenLoop {
            rate: 100.0,
            total: 60,
        }),
        ..LoadSpec::default()
    };
    let report = load::run(&spec).await.expect("load run");
    assert_eq!((report.sent, report.failed), (60, 0));
    assert_eq!(report.send_latency_us.len(), 60);
    assert_eq!(
        report.delivery_latency_us.len(),
        120,
        "60 messages x 2 agents"
    );
    assert_eq!(report.duplicates, 0, "each delivery exactly once");
    assert!(
        report.send_duration >= Duration::from_millis(590),
        "60 messages at 100/s take at least 0.59 s, took {:?}",
        report.send_duration
    );
    app.stop().await;
}

/// Whether process `pid` is gone (a zombie waiting for a parent that never reaps
/// counts as gone: it runs nothing and holds no port).
fn gone(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| rest.starts_with('Z') || rest.starts_with('X')),
    }
}

/// Run by hand without a target, the load generator starts NATS and PostgreSQL of its
/// own and leaves neither running: not when it finishes, nor when it is killed.
#[tokio::test]
async fn loadgen_run_by_hand_leaves_no_server_running() {
    use tokio::io::AsyncBufReadExt;
    for killed in [false, true] {
        let messages = if killed { "100000" } else { "3" };
        let mut run = tokio::process::Command::new(env!("CARGO_BIN_EXE_loadgen"))
            .args(["--visitors", "2", "--agents", "1", "--messages", messages])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .expect("loadgen starts");
        let mut lines = tokio::io::BufReader::new(run.stderr.take().expect("stderr")).lines();
        let pids = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Some(rest) =
                    line.strip_prefix("started private servers for this run (nats-server pid ")
                {
                    let (nats, rest) = rest.split_once(", postgres pid ")?;
                    let pg = rest.trim_end_matches(')');
                    return Some((nats.parse::<u32>().ok()?, pg.parse::<u32>().ok()?));
                }
            }
            None
        })
        .await
        .expect("servers started in time")
        .expect("loadgen names its servers");
        assert!(!gone(pids.0) && !gone(pids.1), "running during the load");
        if killed {
            run.kill().await.expect("SIGKILL");
        } else {
            // Its output is drained so that it never blocks on a full pipe.
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            let status = tokio::time::timeout(Duration::from_secs(120), run.wait())
                .await
                .expect("finishes")
                .expect("wait");
            assert!(status.success(), "the load run passed");
        }
        let stopped = helpdesk_kit::testing::eventually(Duration::from_secs(30), || async {
            (gone(pids.0) && gone(pids.1)).then_some(())
        })
        .await;
        assert!(
            stopped.is_some(),
            "killed: {killed}; servers {pids:?} still running"
        );
    }
}
