//! The load generator's own check: under concurrent load every message reaches every
//! subscribed agent exactly once.

use std::time::Duration;

use helpdesk_conversation::Conversation;
use helpdesk_kit::testing::{TestEnv, spawn};
use helpdesk_tests::load::{self, LoadSpec};

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
