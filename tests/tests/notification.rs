//! Webhooks across the platform: what the services do reaches an integrator's
//! endpoint signed the Standard Webhooks way, with each event's data in protobuf's own
//! JSON mapping, checked by implementations this platform did not write (the
//! `standardwebhooks` library, and the reference `protobuf` package's json_format).

use std::collections::BTreeSet;
use std::time::Duration;

use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::http::{Received, Receiver};
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_proto::routing::v1::Presence;
use helpdesk_proto::ticketing::v1::CreateTicketFromConversationRequest;
use helpdesk_tests::platform::{Platform, authed};

/// Checks every body's `data` against protobuf's own JSON mapping.
fn check_with_protobuf(received: &[Received]) {
    let names: std::collections::HashMap<&str, String> = helpdesk_proto::catalog()
        .into_iter()
        .map(|e| (e.kind, e.full_name))
        .collect();
    let cases: Vec<(String, serde_json::Value)> = received
        .iter()
        .map(|r| {
            let body = r.json();
            let kind = body["type"].as_str().expect("a type");
            let name = names
                .get(kind)
                .unwrap_or_else(|| panic!("unknown kind {kind}"));
            (name.clone(), body["data"].clone())
        })
        .collect();
    helpdesk_tests::protobuf_json::check(&cases);
}

#[tokio::test]
async fn a_chat_and_its_ticket_reach_a_webhook_signed_and_in_protobufs_own_json_mapping() {
    let p = Platform::start(1).await;
    let hooks = Receiver::start().await;
    let endpoint = p
        .notifications()
        .await
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: hooks.url.clone(),
                    event_types: vec!["*".into()],
                    description: "CRM sync".into(),
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("endpoint")
        .into_inner();

    let team = p.team("Support").await;
    p.agent("ana", 2, &[&team], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, _visitor) = p
        .chat(&inbox, "Hello, my order #1234 is late", &[("plan", "gold")])
        .await;
    p.wait_assigned(&chat, Duration::from_secs(10))
        .await
        .expect("assigned");
    let ticket = p
        .tickets()
        .await
        .create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: chat.clone(),
                request_id: "from-chat-1".into(),
                ..Default::default()
            },
            &p.token("ana", Role::Agent),
        ))
        .await
        .expect("ticket")
        .into_inner();

    // Everything the account did, as the endpoint saw it.
    let wanted = [
        "conversation.created",
        "message.created",
        "routing.assigned",
        "agent.presence_changed",
        "ticket.created",
    ];
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    let received = loop {
        let got = hooks.received();
        let kinds: BTreeSet<String> = got
            .iter()
            .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
            .collect();
        if wanted.iter().all(|k| kinds.contains(*k)) || tokio::time::Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let kinds: BTreeSet<String> = received
        .iter()
        .map(|r| r.json()["type"].as_str().unwrap_or_default().to_string())
        .collect();
    for k in wanted {
        assert!(kinds.contains(k), "{k} not received; got {kinds:?}");
    }

    // Each request verifies with the Standard Webhooks library, and its id is the
    // event's; no event came twice.
    let webhook = standardwebhooks::Webhook::new(&endpoint.secret).expect("secret");
    let mut ids = BTreeSet::new();
    for r in &received {
        webhook
            .verify(&r.body, &r.headers)
            .unwrap_or_else(|e| panic!("{} does not verify: {e:?}", r.json()["type"]));
        let body = r.json();
        assert_eq!(r.header("webhook-id"), body["data"]["meta"]["eventId"]);
        assert_eq!(body["data"]["meta"]["accountId"], "acme");
        assert!(ids.insert(r.header("webhook-id").to_string()), "sent twice");
    }
    let first_message = received
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "message.created")
        .expect("a message");
    assert_eq!(
        first_message["data"]["message"]["content"],
        "Hello, my order #1234 is late"
    );
    assert_eq!(first_message["data"]["conversation"]["id"], chat.as_str());
    let created = received
        .iter()
        .map(Received::json)
        .find(|b| b["type"] == "ticket.created")
        .expect("a ticket");
    assert_eq!(created["data"]["ticket"]["id"], ticket.id.as_str());
    assert_eq!(
        created["data"]["ticket"]["number"],
        ticket.number.to_string()
    );

    check_with_protobuf(&received);
    p.stop().await;
}

mod agents {
    use std::time::Duration;

    use futures::StreamExt;
    use helpdesk_kit::auth::Role;
    use helpdesk_proto::conversation::v1::{MessageKind, SendMessageRequest};
    use helpdesk_proto::notification::v1::*;
    use helpdesk_proto::routing::v1::{Presence, RequestTransferRequest};
    use helpdesk_proto::ticketing::v1::{CreateTicketRequest, Ticket};
    use helpdesk_tests::platform::{Platform, authed, eventually};

    async fn list(p: &Platform, agent: &str) -> ListNotificationsResponse {
        p.notifications()
            .await
            .list_notifications(authed(
                ListNotificationsRequest::default(),
                &p.token(agent, Role::Agent),
            ))
            .await
            .expect("list")
            .into_inner()
    }

    /// The agent's notifications once one of `kind` is there.
    async fn wait_kind(p: &Platform, agent: &str, kind: NotificationKind) -> AgentNotification {
        eventually(Duration::from_secs(15), || async {
            list(p, agent)
                .await
                .notifications
                .into_iter()
                .find(|n| n.kind == kind as i32)
        })
        .await
        .unwrap_or_else(|| panic!("{agent} was not told of {kind:?}"))
    }

    async fn say(p: &Platform, token: &str, chat: &str, text: &str, kind: MessageKind) {
        p.conv()
            .await
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: chat.into(),
                    content: text.into(),
                    kind: kind as i32,
                    ..Default::default()
                },
                token,
            ))
            .await
            .expect("send");
    }

    #[tokio::test]
    async fn agents_are_told_of_assignments_offers_mentions_and_messages_while_away_live() {
        let p = Platform::start(1).await;
        let team = p.team("Support").await;
        p.agent("ana", 3, &[&team], &[]).await;
        p.agent("li", 3, &[&team], &[]).await;
        let ana = p.token("ana", Role::Agent);

        // Ana's workbench watches her notifications: the unread count first.
        let mut live = p
            .notifications()
            .await
            .watch_notifications(authed(WatchNotificationsRequest {}, &ana))
            .await
            .expect("watch")
            .into_inner();
        let first = live.next().await.expect("an update").expect("ok");
        assert_eq!((first.notification, first.unread_count), (None, 0));

        p.presence("ana", Presence::Online).await;
        let inbox = p.inbox().await;
        let (chat, visitor) = p.chat(&inbox, "My parcel is lost", &[]).await;
        p.wait_assigned(&chat, Duration::from_secs(10))
            .await
            .expect("assigned");
        let update = tokio::time::timeout(Duration::from_secs(10), live.next())
            .await
            .expect("pushed in time")
            .expect("an update")
            .expect("ok");
        let assigned = update.notification.expect("a notification");
        assert_eq!(assigned.kind, NotificationKind::Assignment as i32);
        assert_eq!(assigned.conversation_id, chat);
        assert!(
            assigned.sound && assigned.desktop,
            "defaults for an assignment"
        );
        assert_eq!(update.unread_count, 1);

        // Ana offers the chat to Li: Li is told, with the offer's deadline.
        p.presence("li", Presence::Online).await;
        p.routing(0)
            .await
            .request_transfer(authed(
                RequestTransferRequest {
                    conversation_id: chat.clone(),
                    to_agent_id: "li".into(),
                    note: "VIP, please take over".into(),
                    ..Default::default()
                },
                &ana,
            ))
            .await
            .expect("transfer");
        let offer = wait_kind(&p, "li", NotificationKind::TransferOffer).await;
        assert_eq!(offer.title, "Agent ana offers you a conversation");
        assert_eq!(offer.body, "VIP, please take over");
        assert!(offer.deadline.is_some() && !offer.transfer_id.is_empty());

        // A note mentioning Li by name; Ana's own mention of herself tells nobody.
        say(
            &p,
            &ana,
            &chat,
            "@AgentLi can you check the courier? thanks @ana",
            MessageKind::Note,
        )
        .await;
        let mention = wait_kind(&p, "li", NotificationKind::Mention).await;
        assert_eq!(mention.title, "Agent ana mentioned you");
        assert!(mention.body.contains("can you check the courier"));

        // Ana steps away; the customer writes twice: one notification, counted twice.
        p.presence("ana", Presence::Away).await;
        say(&p, &visitor, &chat, "hello?", MessageKind::Incoming).await;
        say(&p, &visitor, &chat, "anyone there?", MessageKind::Incoming).await;
        let away = eventually(Duration::from_secs(15), || async {
            list(&p, "ana")
                .await
                .notifications
                .into_iter()
                .find(|n| n.kind == NotificationKind::MessageWhileAway as i32 && n.count == 2)
        })
        .await
        .expect("collapsed into one");
        assert_eq!(away.body, "anyone there?");
        let listed = list(&p, "ana").await;
        assert_eq!(listed.unread_count, 2, "the assignment and the messages");
        assert!(
            listed
                .notifications
                .iter()
                .all(|n| n.kind != NotificationKind::Mention as i32),
            "nobody is told of mentioning themselves"
        );

        // Read everywhere at once: the live stream hears the count drop.
        let read = p
            .notifications()
            .await
            .mark_all_read(authed(MarkAllReadRequest {}, &ana))
            .await
            .expect("mark read")
            .into_inner();
        assert_eq!(read.unread_count, 0);
        let heard = tokio::time::timeout(Duration::from_secs(10), async {
            while let Some(Ok(u)) = live.next().await {
                if u.notification.is_none() && u.unread_count == 0 {
                    return true;
                }
            }
            false
        })
        .await;
        assert_eq!(heard, Ok(true), "the stream heard the count drop");

        // Li turns mentions off: the next one is not recorded.
        let prefs = p
            .notifications()
            .await
            .update_notification_preferences(authed(
                UpdateNotificationPreferencesRequest {
                    preferences: vec![NotificationPreference {
                        kind: NotificationKind::Mention as i32,
                        in_app: false,
                        ..Default::default()
                    }],
                },
                &p.token("li", Role::Agent),
            ))
            .await
            .expect("preferences")
            .into_inner();
        assert_eq!(
            prefs.preferences.len(),
            8,
            "every kind, defaults for the rest"
        );
        say(
            &p,
            &ana,
            &chat,
            "@agentli one more thing",
            MessageKind::Note,
        )
        .await;
        // A ticket assigned to Li by an admin still reaches her.
        p.tickets()
            .await
            .create_ticket(authed(
                CreateTicketRequest {
                    ticket: Some(Ticket {
                        subject: "Courier claim".into(),
                        assignee_id: "li".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                },
                &p.admin(),
            ))
            .await
            .expect("ticket");
        let ticket = wait_kind(&p, "li", NotificationKind::TicketAssigned).await;
        assert_eq!(ticket.title, "Ticket #1 was assigned to you");
        let mentions = list(&p, "li")
            .await
            .notifications
            .into_iter()
            .filter(|n| n.kind == NotificationKind::Mention as i32)
            .count();
        assert_eq!(mentions, 1, "mentions are off for Li now");

        // Li takes the chat: her offer no longer waits among her unread ones.
        p.presence("ana", Presence::Online).await;
        p.routing(0)
            .await
            .accept_transfer(authed(
                helpdesk_proto::routing::v1::AcceptTransferRequest {
                    transfer_id: offer.transfer_id.clone(),
                },
                &p.token("li", Role::Agent),
            ))
            .await
            .expect("accept");
        let settled = eventually(Duration::from_secs(10), || async {
            list(&p, "li")
                .await
                .notifications
                .into_iter()
                .find(|n| n.id == offer.id && n.read)
        })
        .await;
        assert!(settled.is_some(), "the answered offer is read");

        // Nobody else's notifications: another agent lists none of these.
        let others = list(&p, "bo").await;
        assert!(others.notifications.is_empty() && others.unread_count == 0);
        p.stop().await;
    }
}
