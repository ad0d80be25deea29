//! The load generator's own check: under concurrent load every message reaches every
//! subscribed agent exactly once.

use std::time::Duration;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::testing::TestEnv;
use helpdesk_tests::load::{self, LoadSpec};

#[tokio::test]
async fn every_message_reaches_every_subscribed_agent() {
    let env = TestEnv::new().await;
    let app = helpdesk_conversation::Application::build(env.service_config())
        .await
        .expect("build");
    let spec = LoadSpec {
        conversation_addr: format!("http://127.0.0.1:{}", app.port()),
        jwt_secret: env.jwt_secret.clone(),
        account: "load".into(),
        visitors: 8,
        agents: 3,
        messages_per_visitor: 5,
        drain_timeout: Duration::from_secs(30),
    };
    let stop = CancellationToken::new();
    let handle = tokio::spawn(app.run(stop.clone()));
    let report = load::run(&spec).await.expect("load run");
    assert_eq!(report.sent, 40);
    assert_eq!(
        report.delivery_latency_us.len(),
        120,
        "40 messages x 3 agents"
    );
    assert_eq!(report.duplicates, 0, "each delivery exactly once");
    stop.cancel();
    handle.await.expect("join").expect("service");
}
