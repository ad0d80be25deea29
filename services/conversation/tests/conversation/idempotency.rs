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

/// A client id is not a key to other people's messages: a visitor replaying an
/// agent's private note's client id gets ALREADY_EXISTS, not the note.
#[tokio::test]
async fn a_replayed_client_id_never_returns_someone_elses_message() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "hi").await;
    let conv = started.conversation.expect("conv").id;
    let mut client = app.client().await;
    client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content: "customer owes us 500 EUR, be careful".into(),
                kind: MessageKind::Note as i32,
                client_message_id: "note-1".into(),
                ..Default::default()
            },
            &app.agent(),
        ))
        .await
        .expect("private note");
    let e = client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content: "anything".into(),
                client_message_id: "note-1".into(),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect_err("not the visitor's message");
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
    assert!(!e.message().contains("500 EUR"));
}

/// An anonymous visitor whose StartConversation answer was lost retries with the same
/// client id: it gets the same chat back, with a token, instead of an error and an
/// orphaned chat.
#[tokio::test]
async fn an_anonymous_retried_start_returns_the_same_chat_with_a_token() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let mut client = app.client().await;
    let req = StartConversationRequest {
        inbox_public_key: inbox.public_key.clone(),
        initial_message: "my order never arrived".into(),
        client_message_id: "7f3c2a9e-start".into(),
        ..Default::default()
    };
    let first = client
        .start_conversation(tonic::Request::new(req.clone()))
        .await
        .expect("start")
        .into_inner();
    let retried = client
        .start_conversation(tonic::Request::new(req.clone()))
        .await
        .expect("retry answers")
        .into_inner();
    let id = first.conversation.expect("conversation").id;
    assert_eq!(retried.conversation.expect("conversation").id, id);
    assert!(!retried.visitor_token.is_empty());
    let messages = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: id.clone(),
                ..Default::default()
            },
            &retried.visitor_token,
        ))
        .await
        .expect("the fresh token reads the chat")
        .into_inner()
        .messages;
    assert_eq!(
        messages
            .iter()
            .filter(|m| m.content == "my order never arrived")
            .count(),
        1,
        "one opening message"
    );
    assert_eq!(app.count("conversations").await, 1, "no orphan");

    // The same client id with another text is someone else's start.
    let mut other = req;
    other.initial_message = "something else".into();
    let e = client
        .start_conversation(tonic::Request::new(other))
        .await
        .expect_err("different start");
    assert_eq!(e.code(), tonic::Code::AlreadyExists);
}
