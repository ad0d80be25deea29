//! A visitor and an agent chat; the visitor's stream and the bus both see it.

use std::time::Duration;

use futures::StreamExt;
use helpdesk_kit::bus::headers;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use prost::Message as _;

use super::support::{ACCOUNT, authed, spawn_app, stream_events};

#[tokio::test]
async fn visitor_and_agent_chat_end_to_end() {
    let app = spawn_app().await;
    let inbox = app
        .inbox("Hi! How can we help?", ReopenPolicy::Reopen)
        .await;
    let started = app.visitor_starts(&inbox, "My order never arrived").await;
    let conv = started.conversation.expect("conversation");
    assert!(!started.visitor_token.is_empty(), "visitor gets a token");
    assert_eq!(conv.status, ConversationStatus::Open as i32);
    assert!(
        conv.waiting_since.is_some(),
        "customer is waiting for a reply"
    );
    let visitor = started.visitor_token.clone();

    // The visitor subscribes to its conversation.
    let mut client = app.client().await;
    let mut visitor_stream = client
        .subscribe(authed(
            SubscribeRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect("visitor subscribes")
        .into_inner();

    // The agent finds the conversation and replies; also leaves a private note.
    let agent = app.agent();
    let listed = client
        .list_conversations(authed(
            ListConversationsRequest {
                status: ConversationStatus::Open as i32,
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("agent lists")
        .into_inner();
    assert_eq!(listed.conversations.len(), 1);
    assert_eq!(listed.conversations[0].id, conv.id);
    let messages = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("agent reads")
        .into_inner()
        .messages;
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert_eq!(texts, ["Hi! How can we help?", "My order never arrived"]);

    client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv.id.clone(),
                kind: MessageKind::Note as i32,
                content: "VIP customer, be nice".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("note");
    // The agent's client sends W3C trace context; the event must continue that trace.
    let trace_id = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut reply_req = authed(
        SendMessageRequest {
            conversation_id: conv.id.clone(),
            content: "Sorry! Let me check.".into(),
            ..Default::default()
        },
        &agent,
    );
    reply_req.metadata_mut().insert(
        "traceparent",
        format!("00-{trace_id}-00f067aa0ba902b7-01")
            .parse()
            .expect("traceparent"),
    );
    let reply = client
        .send_message(reply_req)
        .await
        .expect("agent replies")
        .into_inner();
    assert_eq!(reply.kind, MessageKind::Outgoing as i32);
    assert_eq!(
        reply.sender.as_ref().map(|s| s.kind),
        Some(ActorKind::Agent as i32)
    );

    // The visitor's stream gets the reply, and never the private note. Messages stored
    // before the stream opened may still be in flight from the outbox; skip those.
    let received = tokio::time::timeout(Duration::from_secs(10), async {
        while let Some(item) = visitor_stream.next().await {
            if let Some(Update::MessageCreated(e)) = item.expect("stream item").update {
                let message = e.message.expect("message");
                if messages.iter().any(|m| m.id == message.id) {
                    continue;
                }
                return message;
            }
        }
        panic!("stream ended");
    })
    .await
    .expect("reply reaches the visitor");
    assert_eq!(received.content, "Sorry! Let me check.");

    // The conversation shows the reply times.
    let after = client
        .get_conversation(authed(
            GetConversationRequest {
                id: conv.id.clone(),
            },
            &agent,
        ))
        .await
        .expect("get")
        .into_inner();
    assert!(after.first_reply_time.is_some());
    assert!(after.waiting_since.is_none(), "replied: no longer waiting");

    // Visitors never list private notes.
    let visitor_view = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect("visitor reads")
        .into_inner()
        .messages;
    assert!(
        visitor_view
            .iter()
            .all(|m| m.kind != MessageKind::Note as i32)
    );
    assert_eq!(visitor_view.len(), 3);

    // The bus carries message.created as protobuf with CloudEvents headers.
    let events = stream_events(&app.env, &format!("{ACCOUNT}.message.created"), 4).await;
    assert_eq!(events.len(), 4, "greeting, first message, note, reply");
    let last = events.last().expect("an event");
    let h = last.headers.as_ref().expect("headers");
    let get = |k: &str| h.get(k).map(|v| v.as_str().to_string()).unwrap_or_default();
    assert_eq!(get(headers::SPECVERSION), "1.0");
    assert_eq!(
        get(headers::TYPE),
        "helpdesk.conversation.v1.MessageCreated"
    );
    assert_eq!(get(headers::SOURCE), "/helpdesk/conversation");
    assert_eq!(get(headers::SUBJECT), conv.id);
    assert_eq!(get(headers::CONTENT_TYPE), "application/protobuf");
    assert!(!get(headers::TIME).is_empty());
    assert_eq!(get(headers::NATS_MSG_ID), get(headers::ID));
    let traceparent = get(headers::TRACEPARENT);
    assert_eq!(
        traceparent.split('-').count(),
        4,
        "W3C traceparent: {traceparent}"
    );
    assert!(
        traceparent.starts_with(&format!("00-{trace_id}-")),
        "event continues the caller's trace: {traceparent}"
    );
    let untraced = events[1]
        .headers
        .as_ref()
        .and_then(|h| h.get(headers::TRACEPARENT))
        .map(|v| v.as_str().to_string());
    assert!(
        untraced.is_some_and(|t| !t.contains(trace_id)),
        "an untraced call starts its own trace"
    );
    let decoded =
        MessageCreated::decode(last.payload.clone()).expect("decodes with the published .proto");
    let meta = decoded.meta.expect("meta");
    assert_eq!(meta.event_id, get(headers::ID));
    assert_eq!(meta.account_id, ACCOUNT);
    assert_eq!(meta.actor.map(|a| a.id), Some("agent-1".to_string()));
    assert_eq!(
        decoded.message.expect("message").content,
        "Sorry! Let me check."
    );

    // conversation.created and contact.created were published too.
    let created = stream_events(&app.env, &format!("{ACCOUNT}.conversation.created"), 1).await;
    assert_eq!(created.len(), 1);
    let created = ConversationCreated::decode(created[0].payload.clone()).expect("decode");
    assert_eq!(
        created.contact.and_then(|c| c.device).map(|d| d.os),
        Some("Android 15".to_string())
    );
    assert_eq!(
        stream_events(&app.env, &format!("{ACCOUNT}.contact.created"), 1)
            .await
            .len(),
        1
    );
    app.stop().await;
}

#[tokio::test]
async fn customer_message_reopens_or_starts_new_per_inbox_policy() {
    let app = spawn_app().await;
    let agent = app.agent();
    let mut client = app.client().await;
    for (policy, expect_new) in [
        (ReopenPolicy::Reopen, false),
        (ReopenPolicy::NewConversation, true),
    ] {
        let inbox = app.inbox("", policy).await;
        let started = app.visitor_starts(&inbox, "hello").await;
        let conv = started.conversation.expect("conversation");
        client
            .set_status(authed(
                SetStatusRequest {
                    conversation_id: conv.id.clone(),
                    status: ConversationStatus::Resolved as i32,
                    ..Default::default()
                },
                &agent,
            ))
            .await
            .expect("resolve");
        let msg = client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: conv.id.clone(),
                    content: "one more thing".into(),
                    ..Default::default()
                },
                &started.visitor_token,
            ))
            .await
            .expect("customer writes again")
            .into_inner();
        let old = client
            .get_conversation(authed(
                GetConversationRequest {
                    id: conv.id.clone(),
                },
                &agent,
            ))
            .await
            .expect("get")
            .into_inner();
        if expect_new {
            assert_ne!(
                msg.conversation_id, conv.id,
                "a new conversation is started"
            );
            assert_eq!(old.status, ConversationStatus::Resolved as i32);
            let fresh = client
                .get_conversation(authed(
                    GetConversationRequest {
                        id: msg.conversation_id.clone(),
                    },
                    &agent,
                ))
                .await
                .expect("new one")
                .into_inner();
            assert_eq!(fresh.status, ConversationStatus::Open as i32);
            assert_eq!(fresh.contact_id, conv.contact_id);
        } else {
            assert_eq!(msg.conversation_id, conv.id);
            assert_eq!(old.status, ConversationStatus::Open as i32, "reopened");
            assert_eq!(
                old.status_actor.map(|a| a.kind),
                Some(ActorKind::Contact as i32)
            );
        }
    }
    app.stop().await;
}

#[tokio::test]
async fn list_filters_and_pages_newest_activity_first() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let agent = app.agent();
    let mut client = app.client().await;
    let mut ids = Vec::new();
    for i in 0..5 {
        ids.push(
            app.visitor_starts(&inbox, &format!("chat {i}"))
                .await
                .conversation
                .expect("conv")
                .id,
        );
    }
    // Label one conversation.
    client
        .update_conversation(authed(
            UpdateConversationRequest {
                conversation: Some(Conversation {
                    id: ids[1].clone(),
                    labels: vec!["Billing".into()],
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["labels".into()],
                }),
            },
            &agent,
        ))
        .await
        .expect("label");
    let mut seen = Vec::new();
    let mut token = String::new();
    loop {
        let page = client
            .list_conversations(authed(
                ListConversationsRequest {
                    page_size: 2,
                    page_token: token.clone(),
                    ..Default::default()
                },
                &agent,
            ))
            .await
            .expect("page")
            .into_inner();
        assert!(page.conversations.len() <= 2);
        seen.extend(page.conversations.into_iter().map(|c| c.id));
        if page.next_page_token.is_empty() {
            break;
        }
        token = page.next_page_token;
    }
    let mut newest_first = ids.clone();
    newest_first.reverse();
    assert_eq!(seen, newest_first);
    let labelled = client
        .list_conversations(authed(
            ListConversationsRequest {
                label: "billing".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("by label")
        .into_inner();
    assert_eq!(
        labelled
            .conversations
            .iter()
            .map(|c| c.id.clone())
            .collect::<Vec<_>>(),
        vec![ids[1].clone()]
    );
    let updated = stream_events(&app.env, &format!("{ACCOUNT}.conversation.updated"), 1).await;
    let e = ConversationUpdated::decode(updated[0].payload.clone()).expect("decode");
    assert_eq!(e.changed_fields, vec!["labels"]);
    app.stop().await;
}

#[tokio::test]
async fn a_long_chat_is_read_backwards_from_its_latest_messages() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "line 1").await;
    let conv = started.conversation.expect("conversation");
    let (visitor, agent) = (started.visitor_token.clone(), app.agent());
    let mut client = app.client().await;
    for n in 2..=25 {
        // Every fifth line is a private note, which the visitor never reads.
        let note = n % 5 == 0;
        client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: conv.id.clone(),
                    content: format!("line {n}"),
                    kind: if note { MessageKind::Note as i32 } else { 0 },
                    ..Default::default()
                },
                if note { &agent } else { &visitor },
            ))
            .await
            .expect("sent");
    }
    let read = |before: i64, token: String| {
        let mut client = client.clone();
        let id = conv.id.clone();
        async move {
            client
                .list_messages(authed(
                    ListMessagesRequest {
                        conversation_id: id,
                        page_size: 10,
                        before_sequence: Some(before),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .map(|r| r.into_inner())
        }
    };
    let lines = |page: &ListMessagesResponse| {
        page.messages
            .iter()
            .map(|m| {
                m.content
                    .trim_start_matches("line ")
                    .parse::<i32>()
                    .expect("n")
            })
            .collect::<Vec<_>>()
    };
    // Staff: the newest ten, oldest first, then the ten before, then the rest.
    let newest = read(1 << 53, agent.clone()).await.expect("newest");
    assert_eq!(lines(&newest), (16..=25).collect::<Vec<_>>());
    assert!(newest.has_earlier);
    let before = read(newest.messages[0].sequence, agent.clone())
        .await
        .expect("older");
    assert_eq!(lines(&before), (6..=15).collect::<Vec<_>>());
    let first = read(before.messages[0].sequence, agent.clone())
        .await
        .expect("oldest");
    assert_eq!(lines(&first), (1..=5).collect::<Vec<_>>());
    assert!(!first.has_earlier);
    // The visitor's newest ten skip the notes.
    let theirs = read(1 << 53, visitor.clone()).await.expect("visitor");
    assert_eq!(lines(&theirs), [13, 14, 16, 17, 18, 19, 21, 22, 23, 24]);
    assert!(theirs.has_earlier);

    let bad = read(0, agent.clone()).await.expect_err("no sequence 0");
    assert_eq!(bad.code(), tonic::Code::InvalidArgument);
    assert!(bad.message().contains("before_sequence"));
}
