//! Graceful shutdown: live streams end, the service stops promptly, and events
//! committed just before are still published.

use std::time::Duration;

use futures::StreamExt;
use helpdesk_proto::conversation::v1::*;

use super::support::{ACCOUNT, authed, spawn_app, stream_events};

#[tokio::test]
async fn shutdown_ends_streams_and_flushes_pending_events() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "").await;
    let conv = started.conversation.expect("conv").id;
    let mut client = app.client().await;
    let mut stream = client
        .subscribe(authed(SubscribeRequest::default(), &app.agent()))
        .await
        .expect("subscribe")
        .into_inner();
    client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv,
                content: "last words".into(),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect("send");
    let env = tokio::time::timeout(Duration::from_secs(20), app.stop())
        .await
        .expect("service stops promptly");
    let ended = tokio::time::timeout(Duration::from_secs(5), async {
        while let Some(item) = stream.next().await {
            if item.is_err() {
                break;
            }
        }
    })
    .await;
    assert!(ended.is_ok(), "the live stream ends on shutdown");
    let events = stream_events(&env, &format!("{ACCOUNT}.message.created"), 1).await;
    assert_eq!(
        events.len(),
        1,
        "the event committed before shutdown was published"
    );
}
