//! Bad input is INVALID_ARGUMENT naming the field, and stores nothing.

use helpdesk_kit::grpc::violated_fields;
use helpdesk_proto::conversation::v1::*;
use tonic::{Code, Request};

use super::support::{authed, spawn_app};

#[tokio::test]
async fn bad_input_names_the_field_and_stores_nothing() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "hi").await;
    let conv = started.conversation.expect("conv").id;
    let visitor = started.visitor_token.clone();
    let agent = app.agent();
    let mut client = app.client().await;
    let (messages_before, conversations_before) = (
        app.count("messages").await,
        app.count("conversations").await,
    );

    let send = |content: String| {
        authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content,
                ..Default::default()
            },
            &visitor,
        )
    };
    let e = client
        .send_message(send(String::new()))
        .await
        .expect_err("empty");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["content"]);
    assert!(e.message().contains("content"));

    let e = client
        .send_message(send("x".repeat(10_001)))
        .await
        .expect_err("oversize");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["content"]);

    let e = client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: "nope".into(),
                content: "hi".into(),
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect_err("bad id");
    assert_eq!(violated_fields(&e), vec!["conversation_id"]);

    let e = client
        .start_conversation(Request::new(StartConversationRequest {
            inbox_public_key: "pk_does_not_exist".into(),
            initial_message: "hello".into(),
            ..Default::default()
        }))
        .await
        .expect_err("unknown key");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["inbox_public_key"]);

    let e = client
        .list_conversations(authed(
            ListConversationsRequest {
                page_token: "%%%garbage".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["page_token"]);
    let e = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.clone(),
                page_token: "bm9wZQ".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect_err("bad token");
    assert_eq!(violated_fields(&e), vec!["page_token"]);

    let e = client
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conv.clone(),
                status: ConversationStatus::Snoozed as i32,
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect_err("snooze without time");
    assert_eq!(violated_fields(&e), vec!["snoozed_until"]);

    let e = client
        .create_inbox(authed(
            CreateInboxRequest {
                inbox: Some(Inbox::default()),
            },
            &app.admin(),
        ))
        .await
        .expect_err("empty inbox");
    let mut fields = violated_fields(&e);
    fields.sort();
    assert_eq!(fields, vec!["inbox.channel_kind", "inbox.name"]);

    let e = client
        .update_conversation(authed(
            UpdateConversationRequest {
                conversation: Some(Conversation {
                    id: conv.clone(),
                    labels: vec!["no spaces allowed".into()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["labels".into(), "status".into()],
                }),
            },
            &agent,
        ))
        .await
        .expect_err("bad label and path");
    let mut fields = violated_fields(&e);
    fields.sort();
    assert_eq!(fields, vec!["conversation.labels", "update_mask"]);

    assert_eq!(app.count("messages").await, messages_before);
    assert_eq!(app.count("conversations").await, conversations_before);
    assert_eq!(app.count("inboxes").await, 1);
    app.stop().await;
}
