//! Tenants and visitors never see each other's conversations.

use helpdesk_kit::auth::Role;
use helpdesk_proto::conversation::v1::*;
use tonic::{Code, Request};

use super::support::{authed, spawn_app};

#[tokio::test]
async fn other_tenants_and_visitors_cannot_read_or_write() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let alice = app.visitor_starts(&inbox, "alice here").await;
    let bob = app.visitor_starts(&inbox, "bob here").await;
    let conv = alice.conversation.expect("conv").id;
    let mut client = app.client().await;

    let other_tenant = app.token("globex", "agent-9", Role::Admin);
    let get = |token: &str| authed(GetConversationRequest { id: conv.clone() }, token);
    let send = |token: &str| {
        authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content: "intrusion".into(),
                ..Default::default()
            },
            token,
        )
    };
    let list_msgs = |token: &str| {
        authed(
            ListMessagesRequest {
                conversation_id: conv.clone(),
                ..Default::default()
            },
            token,
        )
    };

    for token in [other_tenant.as_str(), bob.visitor_token.as_str()] {
        let e = client
            .get_conversation(get(token))
            .await
            .expect_err("read denied");
        assert!(
            matches!(e.code(), Code::NotFound | Code::PermissionDenied),
            "{e:?}"
        );
        let e = client
            .send_message(send(token))
            .await
            .expect_err("write denied");
        assert!(
            matches!(e.code(), Code::NotFound | Code::PermissionDenied),
            "{e:?}"
        );
        let e = client
            .list_messages(list_msgs(token))
            .await
            .expect_err("history denied");
        assert!(
            matches!(e.code(), Code::NotFound | Code::PermissionDenied),
            "{e:?}"
        );
        let e = client
            .subscribe(authed(
                SubscribeRequest {
                    conversation_id: conv.clone(),
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect_err("stream denied");
        assert!(
            matches!(e.code(), Code::NotFound | Code::PermissionDenied),
            "{e:?}"
        );
    }
    // The other tenant's listing is empty; Bob's listing holds only Bob's chat.
    let listed = client
        .list_conversations(authed(ListConversationsRequest::default(), &other_tenant))
        .await
        .expect("list");
    assert!(listed.into_inner().conversations.is_empty());
    let bobs = client
        .list_conversations(authed(
            ListConversationsRequest::default(),
            &bob.visitor_token,
        ))
        .await
        .expect("list");
    let bobs = bobs.into_inner().conversations;
    assert_eq!(bobs.len(), 1);
    assert_eq!(Some(bobs[0].id.clone()), bob.conversation.map(|c| c.id));

    // A visitor cannot act as staff.
    let e = client
        .create_inbox(authed(
            CreateInboxRequest {
                inbox: Some(Inbox {
                    name: "x".into(),
                    channel_kind: 1,
                    ..Default::default()
                }),
            },
            &alice.visitor_token,
        ))
        .await
        .expect_err("visitor is not admin");
    assert_eq!(e.code(), Code::PermissionDenied);

    // Missing, malformed, forged and expired tokens are UNAUTHENTICATED.
    let e = client
        .get_conversation(Request::new(GetConversationRequest { id: conv.clone() }))
        .await
        .expect_err("no token");
    assert_eq!(e.code(), Code::Unauthenticated);
    let e = client
        .get_conversation(get("not-a-jwt"))
        .await
        .expect_err("garbage");
    assert_eq!(e.code(), Code::Unauthenticated);
    let forged = helpdesk_kit::auth::JwtKeys::new(b"some-other-secret-some-other-secret").mint(
        &helpdesk_kit::auth::Claims::new(
            "acme",
            "agent-1",
            Role::Admin,
            chrono::Duration::hours(1),
        ),
    );
    let e = client
        .get_conversation(get(&forged))
        .await
        .expect_err("forged");
    assert_eq!(e.code(), Code::Unauthenticated);
    let expired = app.env.keys().mint(&helpdesk_kit::auth::Claims::new(
        "acme",
        "agent-1",
        Role::Admin,
        chrono::Duration::seconds(-10),
    ));
    let e = client
        .get_conversation(get(&expired))
        .await
        .expect_err("expired");
    assert_eq!(e.code(), Code::Unauthenticated);

    // Nothing was written by the intruders.
    assert_eq!(app.count("messages").await, 2);
    app.stop().await;
}
