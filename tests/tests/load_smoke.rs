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
