//! Retried calls with the same client id store one message.

use helpdesk_proto::conversation::v1::*;

use super::support::{ACCOUNT, authed, spawn_app, stream_events};

#[tokio::test]
async fn retried_send_with_same_client_message_id_stores_one_message() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "").await;
    let conv = started.conversation.expect("conv").id;
    let mut client = app.client().await;
    let req = SendMessageRequest {
        conversation_id: conv.clone(),
        content: "are you there?".into(),
        client_message_id: "c-123".into(),
        ..Default::default()
    };
    let first = client
        .send_message(authed(req.clone(), &started.visitor_token))
        .await
        .expect("send")
        .into_inner();
    // Concurrent and sequential retries.
    let mut retries = Vec::new();
    for _ in 0..5 {
        let mut c = app.client().await;
        let r = authed(req.clone(), &started.visitor_token);
        retries.push(tokio::spawn(async move {
            c.send_message(r).await.map(|m| m.into_inner())
        }));
    }
    for r in retries {
        let again = r.await.expect("join").expect("retry succeeds");
        assert_eq!(again.id, first.id);
        assert_eq!(again.sequence, first.sequence);
    }
    let stored: i64 =
        sqlx::query_scalar("SELECT count(*) FROM messages WHERE client_message_id = 'c-123'")
            .fetch_one(&app.pool)
            .await
            .expect("count");
    assert_eq!(stored, 1);
    let listed = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv,
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect("list")
        .into_inner();
    assert_eq!(listed.messages.len(), 1);
    // One event too.
    let events = stream_events(&app.env, &format!("{ACCOUNT}.message.created"), 1).await;
    assert_eq!(events.len(), 1);
    app.stop().await;
}
