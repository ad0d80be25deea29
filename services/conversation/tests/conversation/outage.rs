//! NATS down: calls still succeed, events wait in the outbox and are published
//! exactly once when NATS is back.

use std::collections::HashSet;
use std::time::Duration;

use helpdesk_kit::bus::headers;
use helpdesk_kit::testing::{PrivateNats, TestEnv, eventually};
use helpdesk_proto::conversation::v1::*;

use super::support::{ACCOUNT, authed, spawn_app_in, stream_events};

#[tokio::test]
async fn events_survive_a_nats_outage_and_are_published_once() {
    let mut nats = PrivateNats::start().await;
    let app = spawn_app_in(TestEnv::with_nats(&nats.url()).await).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "first").await;
    let conv = started.conversation.expect("conv").id;
    let pending = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count");
        (n == 0).then_some(())
    };
    eventually(Duration::from_secs(15), pending)
        .await
        .expect("initial events published");

    nats.stop().await;
    let mut client = app.client().await;
    for i in 0..5 {
        client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: conv.clone(),
                    content: format!("while down {i}"),
                    ..Default::default()
                },
                &started.visitor_token,
            ))
            .await
            .expect("send succeeds while NATS is down");
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(waiting, 5, "the five events wait in the outbox");

    nats.restart().await;
    eventually(Duration::from_secs(60), pending)
        .await
        .expect("events published after NATS returns");

    let events = stream_events(&app.env, &format!("{ACCOUNT}.message.created"), 6).await;
    let ids: HashSet<String> = events
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(headers::ID))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        events.len(),
        6,
        "first message + five sent while down, each once"
    );
    assert_eq!(ids.len(), 6);
    let mut contents: Vec<String> = events
        .iter()
        .map(|m| {
            <MessageCreated as prost::Message>::decode(m.payload.clone())
                .expect("decode")
                .message
                .expect("msg")
                .content
        })
        .collect();
    assert_eq!(contents.remove(0), "first");
    assert_eq!(
        contents,
        (0..5)
            .map(|i| format!("while down {i}"))
            .collect::<Vec<_>>(),
        "commit order kept"
    );
    app.stop().await;
}
