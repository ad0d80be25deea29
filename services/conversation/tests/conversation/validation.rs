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

/// Custom attributes merge into a contact on every upsert: the merged whole is
/// bounded, or a CRM sync could grow a contact until its events no longer fit in NATS.
#[tokio::test]
async fn merged_contact_attributes_stay_bounded() {
    let app = spawn_app().await;
    let admin = app.admin();
    let mut client = app.client().await;
    let upsert = |prefix: &str, n: usize, value_len: usize| {
        let attrs = (0..n)
            .map(|i| (format!("{prefix}{i}"), "v".repeat(value_len)))
            .collect();
        authed(
            UpsertContactRequest {
                contact: Some(Contact {
                    external_id: "crm-42".into(),
                    custom_attributes: attrs,
                    ..Default::default()
                }),
            },
            &admin,
        )
    };
    let first = client
        .upsert_contact(upsert("a", 40, 500))
        .await
        .expect("40 attributes of 500 bytes are fine")
        .into_inner()
        .contact
        .expect("contact");

    // 40 more keys: 80 after the merge.
    let e = client
        .upsert_contact(upsert("b", 40, 10))
        .await
        .expect_err("too many attributes once merged");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["contact.custom_attributes"]);

    // Few keys, but large values: over the byte limit once merged.
    let e = client
        .upsert_contact(upsert("a", 10, 1000))
        .await
        .expect("same keys, bigger values still fit")
        .into_inner();
    assert!(!e.created);
    let e = client
        .upsert_contact(upsert("c", 9, 1024))
        .await
        .expect_err("too many bytes once merged");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["contact.custom_attributes"]);

    let stored = client
        .get_contact(authed(GetContactRequest { id: first.id }, &admin))
        .await
        .expect("get")
        .into_inner();
    assert_eq!(
        stored.custom_attributes.len(),
        40,
        "nothing refused was merged"
    );
    assert_eq!(
        stored.custom_attributes["a0"].len(),
        1000,
        "the accepted update was"
    );
    assert!(!stored.custom_attributes.contains_key("c0"));
}

/// What no validator of ours sees still comes back as the caller's fault: text with
/// a NUL character (refused by PostgreSQL), a string that is not UTF-8 (refused by
/// the protobuf decoder), an oversized bearer token (which used to break the
/// connection for every call on it).
#[tokio::test]
async fn malformed_requests_are_invalid_argument_or_unauthenticated() {
    let app = spawn_app().await;
    let agent = app.agent();
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{}", app.port))
        .expect("url")
        .connect()
        .await
        .expect("connect");
    let mut client =
        helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient::new(
            channel.clone(),
        );

    for filter in [
        ListConversationsRequest {
            label: "vip\0".into(),
            ..Default::default()
        },
        ListConversationsRequest {
            assignee_id: "ana\0".into(),
            ..Default::default()
        },
        ListConversationsRequest {
            team_id: "\0".into(),
            ..Default::default()
        },
    ] {
        let e = client
            .list_conversations(authed(filter, &agent))
            .await
            .expect_err("NUL");
        assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    }

    // GetConversationRequest.id (field 1) carrying bytes that are not UTF-8.
    #[derive(Clone, PartialEq, prost::Message)]
    struct RawGet {
        #[prost(bytes = "vec", tag = "1")]
        id: Vec<u8>,
    }
    let mut grpc = tonic::client::Grpc::new(channel.clone());
    grpc.ready().await.expect("ready");
    let path = tonic::codegen::http::uri::PathAndQuery::from_static(
        "/helpdesk.conversation.v1.ConversationService/GetConversation",
    );
    let e = grpc
        .unary::<RawGet, Conversation, _>(
            authed(
                RawGet {
                    id: vec![0xff, 0xfe, 0x00],
                },
                &agent,
            ),
            path,
            tonic_prost::ProstCodec::default(),
        )
        .await
        .expect_err("not UTF-8");
    assert_eq!(e.code(), Code::InvalidArgument, "{e:?}");
    assert!(e.message().contains("id"), "names the field: {e:?}");

    let huge = "x".repeat(20 * 1024);
    let e = client
        .list_conversations(authed(ListConversationsRequest::default(), &huge))
        .await
        .expect_err("oversized token");
    assert_eq!(e.code(), Code::Unauthenticated, "{e:?}");
    // The connection survived: the next call on it works.
    client
        .list_conversations(authed(ListConversationsRequest::default(), &agent))
        .await
        .expect("same connection still serves");
}

/// An enum value the schema does not define is refused naming the field, never
/// taken as the default.
#[tokio::test]
async fn unknown_enum_values_are_refused_naming_the_field() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "hi").await;
    let conv = started.conversation.expect("conv").id;
    let mut client = app.client().await;
    let messages = app.count("messages").await;
    let e = client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content: "hello".into(),
                kind: 999,
                ..Default::default()
            },
            &app.agent(),
        ))
        .await
        .expect_err("unknown kind");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert_eq!(violated_fields(&e), vec!["kind"]);
    let e = client
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conv.clone(),
                status: 42,
                ..Default::default()
            },
            &app.agent(),
        ))
        .await
        .expect_err("unknown status");
    assert_eq!(e.code(), Code::InvalidArgument);
    assert!(violated_fields(&e).contains(&"status".to_string()), "{e:?}");
    // A timestamp no calendar has is named as such.
    let e = client
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conv,
                status: ConversationStatus::Snoozed as i32,
                snoozed_until: Some(prost_types::Timestamp {
                    seconds: i64::MAX,
                    nanos: 0,
                }),
                ..Default::default()
            },
            &app.agent(),
        ))
        .await
        .expect_err("extreme timestamp");
    assert_eq!(violated_fields(&e), vec!["snoozed_until"]);
    assert!(e.message().contains("not a valid timestamp"), "{e:?}");
    assert_eq!(app.count("messages").await, messages, "nothing stored");
}
