//! Tickets end to end: born from a chat with its transcript, numbered without gaps,
//! changed with history and etags, and reported back into the customer's chat.

use std::time::Duration;

use helpdesk_kit::auth::Role;
use helpdesk_kit::grpc::violated_fields;
use helpdesk_proto::conversation::v1 as conv;
use helpdesk_proto::ticketing::v1::ticketing_service_client::TicketingServiceClient;
use helpdesk_proto::ticketing::v1::*;
use helpdesk_tests::platform::{Platform, authed, eventually};
use helpdesk_tests::prometheus_text;
use helpdesk_ticketing::TicketingSettings;
use tonic::Code;
use tonic::transport::Channel;

const WAIT: Duration = Duration::from_secs(20);

/// The platform (with the ticketing service).
async fn start() -> Platform {
    Platform::start(1).await
}

async fn client(p: &Platform) -> TicketingServiceClient<Channel> {
    p.tickets().await
}

fn agent(p: &Platform) -> String {
    p.token("ana", Role::Agent)
}

/// Sends a message as `token`.
async fn say(p: &Platform, token: &str, conversation: &str, req: conv::SendMessageRequest) {
    p.conv()
        .await
        .send_message(authed(
            conv::SendMessageRequest {
                conversation_id: conversation.into(),
                ..req
            },
            token,
        ))
        .await
        .expect("message sent");
}

fn text(content: &str) -> conv::SendMessageRequest {
    conv::SendMessageRequest {
        content: content.into(),
        ..Default::default()
    }
}

async fn update(
    p: &Platform,
    token: &str,
    ticket: Ticket,
    paths: &[&str],
    etag: &str,
) -> Result<Ticket, tonic::Status> {
    client(p)
        .await
        .update_ticket(authed(
            UpdateTicketRequest {
                ticket: Some(ticket),
                update_mask: Some(prost_types::FieldMask {
                    paths: paths.iter().map(|p| p.to_string()).collect(),
                }),
                etag: etag.into(),
            },
            token,
        ))
        .await
        .map(|r| r.into_inner())
}

/// Waits until the customer's transcript has a line equal to `line`.
async fn customer_reads(p: &Platform, chat: &str, visitor: &str, line: &str) -> bool {
    eventually(WAIT, || async {
        p.transcript(chat, visitor)
            .await
            .iter()
            .any(|m| m.content == line)
            .then_some(())
    })
    .await
    .is_some()
}

#[tokio::test]
async fn a_chat_becomes_a_ticket_with_everything_and_the_customer_follows_it_in_the_chat() {
    let p = start().await;
    let admin = p.admin();
    client(&p)
        .await
        .create_field_definition(authed(
            CreateFieldDefinitionRequest {
                field: Some(FieldDefinition {
                    key: "order_number".into(),
                    label: "Order number".into(),
                    r#type: FieldType::Number as i32,
                    options: vec![],
                }),
            },
            &admin,
        ))
        .await
        .expect("a custom field");
    let inbox = p.inbox().await;
    let (chat, visitor) = p.chat(&inbox, "My parcel never arrived", &[]).await;
    p.conv()
        .await
        .update_device_info(authed(
            conv::UpdateDeviceInfoRequest {
                contact_id: String::new(),
                device: Some(conv::DeviceInfo {
                    app_version: "5.2.1".into(),
                    os: "Android 15".into(),
                    network_type: "wifi".into(),
                    current_page: "/orders/1042".into(),
                    ..Default::default()
                }),
            },
            &visitor,
        ))
        .await
        .expect("device info");
    // Fifty messages both ways, attachments, and a private note.
    for i in 0..24 {
        let mut m = text(&format!("customer line {i}"));
        if i == 3 {
            m.attachments = vec![conv::Attachment {
                name: "receipt.pdf".into(),
                content_type: "application/pdf".into(),
                size_bytes: 48_213,
                url: "https://files.example/receipt.pdf".into(),
            }];
        }
        say(&p, &visitor, &chat, m).await;
        say(&p, &agent(&p), &chat, text(&format!("agent line {i}"))).await;
    }
    say(
        &p,
        &agent(&p),
        &chat,
        conv::SendMessageRequest {
            kind: conv::MessageKind::Note as i32,
            ..text("customer is a frequent buyer")
        },
    )
    .await;
    let sent = p.transcript(&chat, &p.supervisor()).await;
    assert!(sent.len() >= 50, "{} messages", sent.len());

    let from_chat = |request_id: &str| CreateTicketFromConversationRequest {
        conversation_id: chat.clone(),
        subject: String::new(),
        ticket: Some(Ticket {
            priority: TicketPriority::High as i32,
            tags: vec!["Delivery".into()],
            ..Default::default()
        }),
        request_id: request_id.into(),
    };
    let ticket = client(&p)
        .await
        .create_ticket_from_conversation(authed(from_chat("convert-1"), &agent(&p)))
        .await
        .expect("a ticket from the chat")
        .into_inner();
    assert_eq!(ticket.number, 1);
    assert_eq!(ticket.subject, "My parcel never arrived");
    assert_eq!(ticket.source, TicketSource::Chat as i32);
    assert_eq!(ticket.priority, TicketPriority::High as i32);
    assert_eq!(ticket.tags, vec!["delivery".to_string()]);
    assert_eq!(ticket.conversation_ids, vec![chat.clone()]);
    let device = ticket.device.clone().expect("the device came along");
    assert_eq!(
        (
            device.app_version.as_str(),
            device.os.as_str(),
            device.network_type.as_str(),
            device.current_page.as_str()
        ),
        ("5.2.1", "Android 15", "wifi", "/orders/1042")
    );
    let requester = ticket.requester.clone().expect("requester");
    assert_eq!(requester.contact_id, p.conversation(&chat).await.contact_id);
    // The same request again is the same ticket.
    let again = client(&p)
        .await
        .create_ticket_from_conversation(authed(from_chat("convert-1"), &agent(&p)))
        .await
        .expect("retried")
        .into_inner();
    assert_eq!(again.id, ticket.id);

    // The transcript: every message in order, the note marked internal.
    let transcript = client(&p)
        .await
        .get_transcript(authed(
            GetTranscriptRequest {
                ticket_id: ticket.id.clone(),
            },
            &agent(&p),
        ))
        .await
        .expect("transcript")
        .into_inner();
    let lines: Vec<(String, bool)> = transcript
        .lines
        .iter()
        .map(|l| (l.content.clone(), l.internal))
        .collect();
    let expected: Vec<(String, bool)> = sent
        .iter()
        .map(|m| (m.content.clone(), m.kind == conv::MessageKind::Note as i32))
        .collect();
    assert_eq!(
        lines[..expected.len()],
        expected[..],
        "in order, all of them"
    );
    assert!(lines.contains(&("customer is a frequent buyer".into(), true)));
    let receipt = transcript
        .lines
        .iter()
        .find(|l| l.content == "customer line 3")
        .expect("the line with the receipt");
    assert_eq!(receipt.attachments[0].name, "receipt.pdf");
    assert_eq!(receipt.attachments[0].size_bytes, 48_213);

    // The customer reads it in the chat, and every change of what they are told.
    assert!(customer_reads(&p, &chat, &visitor, "Ticket #1 created").await);
    let mut solved = ticket.clone();
    solved.status = "solved".into();
    let stale = ticket.etag.clone();
    let done = update(&p, &agent(&p), solved.clone(), &["status"], &stale)
        .await
        .expect("solved");
    assert_eq!(done.status_category, StatusCategory::Solved as i32);
    assert!(done.solve_time.is_some());
    assert!(customer_reads(&p, &chat, &visitor, "Your ticket #1 is now: Solved").await);
    let e = update(&p, &agent(&p), solved.clone(), &["subject"], &stale)
        .await
        .expect_err("a stale etag");
    assert_eq!(e.code(), Code::Aborted, "{e:?}");

    // A public reply reaches the chat; an internal note does not.
    for (body, public) in [
        ("We refunded your order.", true),
        ("refund ref R-77", false),
    ] {
        client(&p)
            .await
            .add_comment(authed(
                AddCommentRequest {
                    ticket_id: ticket.id.clone(),
                    body: body.into(),
                    public,
                    ..Default::default()
                },
                &agent(&p),
            ))
            .await
            .expect("comment");
    }
    assert!(customer_reads(&p, &chat, &visitor, "We refunded your order.").await);
    let customer = p.transcript(&chat, &visitor).await;
    assert!(customer.iter().all(|m| m.content != "refund ref R-77"));

    // Closed is final; the history tells who did what.
    let mut closed = done.clone();
    closed.status = "closed".into();
    let closed = update(&p, &agent(&p), closed, &["status"], "")
        .await
        .expect("closed");
    let mut reopen = closed.clone();
    reopen.status = "open".into();
    let e = update(&p, &agent(&p), reopen, &["status"], "")
        .await
        .expect_err("closed is final");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let history = client(&p)
        .await
        .list_ticket_events(authed(
            ListTicketEventsRequest {
                ticket_id: ticket.id.clone(),
                ..Default::default()
            },
            &agent(&p),
        ))
        .await
        .expect("history")
        .into_inner()
        .events;
    let moves: Vec<(String, String)> = history
        .iter()
        .flat_map(|e| e.changes.iter())
        .filter(|c| c.field == "status")
        .map(|c| (c.from.clone(), c.to.clone()))
        .collect();
    assert_eq!(
        moves,
        vec![
            (String::new(), "new".into()),
            ("new".into(), "solved".into()),
            ("solved".into(), "closed".into())
        ]
    );
    assert_eq!(
        history[1].actor.as_ref().map(|a| a.id.as_str()),
        Some("ana")
    );
    p.stop().await;
}

#[tokio::test]
async fn fifty_tickets_created_at_once_are_numbered_one_to_fifty() {
    let p = start().await;
    let token = agent(&p);
    let creations = (0..50).map(|i| {
        let token = token.clone();
        let p = &p;
        async move {
            client(p)
                .await
                .create_ticket(authed(
                    CreateTicketRequest {
                        ticket: Some(Ticket {
                            subject: format!("ticket {i}"),
                            ..Default::default()
                        }),
                        request_id: String::new(),
                    },
                    &token,
                ))
                .await
                .expect("created")
                .into_inner()
                .number
        }
    });
    let mut numbers = futures::future::join_all(creations).await;
    numbers.sort();
    assert_eq!(numbers, (1..=50).collect::<Vec<i64>>());
    // Another account counts from 1.
    let other = p.env.token("globex", "bob", Role::Agent);
    let first = client(&p)
        .await
        .create_ticket(authed(
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: "elsewhere".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &other,
        ))
        .await
        .expect("created")
        .into_inner();
    assert_eq!(first.number, 1);
    p.stop().await;
}

#[tokio::test]
async fn bad_fields_are_named_and_tenants_and_visitors_see_only_their_own() {
    let p = start().await;
    let admin = p.admin();
    let mut c = client(&p).await;
    c.create_field_definition(authed(
        CreateFieldDefinitionRequest {
            field: Some(FieldDefinition {
                key: "member_level".into(),
                label: "Member level".into(),
                r#type: FieldType::Option as i32,
                options: vec!["gold".into(), "silver".into()],
            }),
        },
        &admin,
    ))
    .await
    .expect("field");
    let e = c
        .create_ticket(authed(
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: String::new(),
                    status: "nope".into(),
                    custom_fields: [("member_level".to_string(), "bronze".to_string())].into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &agent(&p),
        ))
        .await
        .expect_err("bad fields");
    assert_eq!(
        violated_fields(&e),
        vec![
            "ticket.subject",
            "ticket.status",
            "ticket.custom_fields.member_level"
        ],
        "{e:?}"
    );

    // A visitor's own ticket, from its chat.
    let inbox = p.inbox().await;
    let (chat, visitor) = p.chat(&inbox, "where is my refund", &[]).await;
    let (_, stranger) = p.chat(&inbox, "hello", &[]).await;
    let ticket = c
        .create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: chat.clone(),
                ticket: Some(Ticket {
                    custom_fields: [("member_level".to_string(), "gold".to_string())].into(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            &agent(&p),
        ))
        .await
        .expect("ticket")
        .into_inner();
    assert_eq!(ticket.custom_fields["member_level"], "gold");
    let get = |token: &str| {
        authed(
            GetTicketRequest {
                id: ticket.id.clone(),
                number: 0,
            },
            token,
        )
    };
    let mine = c
        .get_ticket(get(&visitor))
        .await
        .expect("own ticket")
        .into_inner();
    assert_eq!(
        mine.status_label, "Received",
        "the customer reads the external label"
    );
    assert!(mine.custom_fields.is_empty() && mine.assignee_id.is_empty());
    for (token, what) in [
        (stranger.clone(), "another visitor"),
        (p.env.token("globex", "ana", Role::Admin), "another account"),
    ] {
        let e = c.get_ticket(get(&token)).await.expect_err(what);
        assert_eq!(e.code(), Code::NotFound, "{what}: {e:?}");
    }
    let listed = c
        .list_tickets(authed(ListTicketsRequest::default(), &stranger))
        .await
        .expect("list")
        .into_inner()
        .tickets;
    assert!(listed.is_empty(), "a visitor lists only its own");
    let e = c
        .add_comment(authed(
            AddCommentRequest {
                ticket_id: ticket.id.clone(),
                body: "psst".into(),
                public: false,
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect_err("customers write public replies only");
    assert_eq!(violated_fields(&e), vec!["public"]);
    let e = c
        .update_ticket(authed(
            UpdateTicketRequest {
                ticket: Some(Ticket {
                    id: ticket.id.clone(),
                    subject: "mine now".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["subject".into()],
                }),
                etag: String::new(),
            },
            &visitor,
        ))
        .await
        .expect_err("visitors do not edit tickets");
    assert_eq!(e.code(), Code::PermissionDenied);
    // A conversation of another account cannot be turned into a ticket here.
    let e = client(&p)
        .await
        .create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: chat.clone(),
                ..Default::default()
            },
            &p.env.token("globex", "ana", Role::Agent),
        ))
        .await
        .expect_err("not that account's chat");
    assert_eq!(e.code(), Code::NotFound, "{e:?}");
    p.stop().await;
}

#[tokio::test]
async fn search_finds_words_in_subjects_descriptions_and_comments() {
    let p = start().await;
    let mut c = client(&p).await;
    let token = agent(&p);
    let mut ids = Vec::new();
    for (subject, description) in [
        ("Parcel lost", "the courier left it nowhere"),
        ("Refund please", "order 1042 arrived broken"),
        ("Password reset", "cannot sign in"),
    ] {
        let ticket = c
            .create_ticket(authed(
                CreateTicketRequest {
                    ticket: Some(Ticket {
                        subject: subject.into(),
                        description: description.into(),
                        ..Default::default()
                    }),
                    request_id: String::new(),
                },
                &token,
            ))
            .await
            .expect("created")
            .into_inner();
        ids.push(ticket.id);
    }
    c.add_comment(authed(
        AddCommentRequest {
            ticket_id: ids[2].clone(),
            body: "the courier confirmed".into(),
            public: false,
            ..Default::default()
        },
        &token,
    ))
    .await
    .expect("comment");
    let search = |q: &str, order: &str| ListTicketsRequest {
        query: q.into(),
        order_by: order.into(),
        ..Default::default()
    };
    let numbers = |r: ListTicketsResponse| r.tickets.iter().map(|t| t.number).collect::<Vec<_>>();
    let found = c
        .list_tickets(authed(search("courier", "-number"), &token))
        .await
        .expect("search")
        .into_inner();
    assert_eq!(
        numbers(found),
        vec![3, 1],
        "subject/description and comments"
    );
    let found = c
        .list_tickets(authed(search("\"order 1042\"", ""), &token))
        .await
        .expect("phrase")
        .into_inner();
    assert_eq!(numbers(found), vec![2]);
    // Pages follow one another without repeats.
    let first = c
        .list_tickets(authed(
            ListTicketsRequest {
                page_size: 2,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("page 1")
        .into_inner();
    let second = c
        .list_tickets(authed(
            ListTicketsRequest {
                page_size: 2,
                page_token: first.next_page_token.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("page 2")
        .into_inner();
    assert_eq!(numbers(first), vec![1, 2]);
    assert_eq!(numbers(second), vec![3]);
    let e = c
        .list_tickets(authed(search("", "sideways"), &token))
        .await
        .expect_err("bad order");
    assert_eq!(violated_fields(&e), vec!["order_by"]);
    p.stop().await;
}

#[tokio::test]
async fn a_solved_ticket_closes_by_itself_once_even_across_a_restart() {
    let settings = TicketingSettings {
        close_solved_after_seconds: 2,
        ..Default::default()
    };
    let mut p = start().await;
    p.restart_ticketing(settings.clone(), Duration::ZERO).await;
    let token = agent(&p);
    let ticket = client(&p)
        .await
        .create_ticket(authed(
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: "to be solved".into(),
                    status: "solved".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("created solved")
        .into_inner();
    // Down while it falls due; it closes once the service is back.
    p.restart_ticketing(settings, Duration::from_secs(3)).await;
    let closed = eventually(WAIT, || async {
        let got = client(&p)
            .await
            .get_ticket(authed(
                GetTicketRequest {
                    id: ticket.id.clone(),
                    number: 0,
                },
                &token,
            ))
            .await
            .ok()?
            .into_inner();
        (got.status == "closed").then_some(got)
    })
    .await
    .expect("closed after the restart");
    assert_eq!(closed.status_category, StatusCategory::Closed as i32);
    let events = helpdesk_kit::testing::stream_events(&p.env, "*.ticket.status_changed", 1).await;
    assert_eq!(events.len(), 1, "closed once");
    p.stop().await;
}

/// Creates a ticket with `subject` and `tags` as `token`.
async fn new_ticket(p: &Platform, token: &str, subject: &str, tags: &[&str]) -> Ticket {
    client(p)
        .await
        .create_ticket(authed(
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: subject.into(),
                    tags: tags.iter().map(|t| t.to_string()).collect(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            token,
        ))
        .await
        .expect("created")
        .into_inner()
}

#[tokio::test]
async fn bulk_updates_change_each_ticket_or_say_why_not_and_merges_close_the_sources() {
    let p = start().await;
    let token = agent(&p);
    let mut c = client(&p).await;
    let a = new_ticket(&p, &token, "printer on fire", &["hardware"]).await;
    let b = new_ticket(&p, &token, "printer still on fire", &["urgent"]).await;
    let d = new_ticket(&p, &token, "printer fire, third report", &[]).await;
    let closed = new_ticket(&p, &token, "old one", &[]).await;
    for status in ["solved", "closed"] {
        let mut t = closed.clone();
        t.status = status.into();
        update(&p, &token, t, &["status"], "").await.expect(status);
    }

    // Put three on hold at once: the closed one stays closed, with the reason.
    let ids = vec![a.id.clone(), b.id.clone(), closed.id.clone()];
    let held = c
        .bulk_update_tickets(authed(
            BulkUpdateTicketsRequest {
                ticket_ids: ids.clone(),
                ticket: Some(Ticket {
                    status: "on_hold".into(),
                    assignee_id: "li".into(),
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into(), "assignee_id".into()],
                }),
            },
            &token,
        ))
        .await
        .expect("bulk")
        .into_inner()
        .results;
    assert_eq!(held.len(), 3);
    for r in &held {
        if r.ticket_id == closed.id {
            assert!(r.ticket.is_none() && r.error.contains("closed"), "{r:?}");
        } else {
            let t = r.ticket.as_ref().expect("changed");
            assert_eq!(
                (t.status.as_str(), t.assignee_id.as_str()),
                ("on_hold", "li")
            );
        }
    }
    let e = c
        .bulk_update_tickets(authed(
            BulkUpdateTicketsRequest {
                ticket_ids: (0..101).map(|_| a.id.clone()).collect(),
                ticket: Some(Ticket::default()),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["status".into()],
                }),
            },
            &token,
        ))
        .await
        .expect_err("too many");
    assert_eq!(violated_fields(&e), vec!["ticket_ids"]);

    // Merge B and D into A; a closed ticket cannot take part.
    let e = c
        .merge_tickets(authed(
            MergeTicketsRequest {
                target_id: a.id.clone(),
                source_ids: vec![closed.id.clone()],
            },
            &token,
        ))
        .await
        .expect_err("closed");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let merged = c
        .merge_tickets(authed(
            MergeTicketsRequest {
                target_id: a.id.clone(),
                source_ids: vec![b.id.clone(), d.id.clone()],
            },
            &token,
        ))
        .await
        .expect("merged")
        .into_inner();
    assert_eq!(
        merged.tags,
        vec!["hardware".to_string(), "urgent".to_string()]
    );
    let notes = c
        .list_comments(authed(
            ListCommentsRequest {
                ticket_id: a.id.clone(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("comments")
        .into_inner()
        .comments;
    let expected = format!("Merged #{}, #{} into this ticket.", b.number, d.number);
    assert!(
        notes.iter().any(|n| n.body == expected && !n.public),
        "{notes:?}"
    );
    for source in [&b, &d] {
        let got = c
            .get_ticket(authed(
                GetTicketRequest {
                    id: source.id.clone(),
                    number: 0,
                },
                &token,
            ))
            .await
            .expect("source")
            .into_inner();
        assert_eq!(got.status, "closed");
        assert_eq!(got.merged_into_id, a.id);
    }
    let events = helpdesk_kit::testing::stream_events(&p.env, "*.ticket.merged", 1).await;
    assert_eq!(events.len(), 1);
    p.stop().await;
}

#[tokio::test]
async fn a_leave_a_message_chat_becomes_a_ticket_when_its_inbox_says_so() {
    let p = start().await;
    p.settings(helpdesk_proto::routing::v1::RoutingSettings {
        max_queue_length: 1,
        overflow_action: helpdesk_proto::routing::v1::OverflowAction::LeaveMessage as i32,
        ..Default::default()
    })
    .await;
    let plain = p.inbox().await;
    let mut c = p.conv().await;
    let ticketed = c
        .create_inbox(authed(
            conv::CreateInboxRequest {
                inbox: Some(conv::Inbox {
                    name: "Support".into(),
                    channel_kind: conv::ChannelKind::WebWidget as i32,
                    ticket_on_leave_message: true,
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("inbox")
        .into_inner();
    assert!(ticketed.ticket_on_leave_message);
    // Nobody online: the first chat waits, the next ones overflow.
    let (waiting, _) = p.chat(&plain, "first in line", &[]).await;
    eventually(WAIT, || async { p.is_queued(&waiting).await.then_some(()) })
        .await
        .expect("queued");
    // The plain inbox's overflowed chat stays a chat; it overflows first, so by the
    // time the next one's ticket exists, ticketing has seen it.
    let (untouched, _) = p.chat(&plain, "no ticket for me", &[]).await;
    eventually(WAIT, || async {
        (p.conversation(&untouched).await.status == conv::ConversationStatus::Pending as i32)
            .then_some(())
    })
    .await
    .expect("overflowed");
    let (left, visitor) = p
        .chat(&ticketed, "My invoice shows the wrong address", &[])
        .await;
    assert!(customer_reads(&p, &left, &visitor, "Ticket #1 created").await);
    let found = client(&p)
        .await
        .list_tickets(authed(
            ListTicketsRequest {
                conversation_id: left.clone(),
                ..Default::default()
            },
            &agent(&p),
        ))
        .await
        .expect("list")
        .into_inner()
        .tickets;
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].subject, "My invoice shows the wrong address");
    assert_eq!(found[0].source, TicketSource::Chat as i32);
    let all = client(&p)
        .await
        .list_tickets(authed(ListTicketsRequest::default(), &agent(&p)))
        .await
        .expect("list")
        .into_inner()
        .tickets;
    assert_eq!(all.len(), 1, "{all:?}");
    p.stop().await;
}

/// The ticket's target for `metric`.
fn target(t: &Ticket, metric: SlaMetric) -> SlaTarget {
    t.sla
        .iter()
        .find(|s| s.metric == metric as i32)
        .cloned()
        .unwrap_or_else(|| panic!("no {metric:?} target in {:?}", t.sla))
}

async fn get(p: &Platform, id: &str) -> Ticket {
    client(p)
        .await
        .get_ticket(authed(
            GetTicketRequest {
                id: id.into(),
                number: 0,
            },
            &agent(p),
        ))
        .await
        .expect("ticket")
        .into_inner()
}

fn secs(t: &Option<prost_types::Timestamp>) -> i64 {
    t.as_ref().map_or(0, |t| t.seconds)
}

#[tokio::test]
async fn sla_clocks_pause_while_pending_and_breach_once_across_a_restart() {
    let mut p = start().await;
    let policy = |targets: Vec<SlaPolicyTarget>| SlaPolicy {
        name: "Standard".into(),
        targets,
        warning_seconds: 1,
        ..Default::default()
    };
    let target_of = |metric: SlaMetric, seconds: i64| SlaPolicyTarget {
        metric: metric as i32,
        seconds,
        ..Default::default()
    };
    let e = client(&p)
        .await
        .create_sla_policy(authed(
            CreateSlaPolicyRequest {
                policy: Some(policy(vec![SlaPolicyTarget {
                    business_hours: true,
                    ..target_of(SlaMetric::Resolution, 0)
                }])),
            },
            &p.admin(),
        ))
        .await
        .expect_err("bad targets");
    assert_eq!(
        violated_fields(&e),
        vec![
            "policy.targets[0].seconds",
            "policy.targets[0].business_hours"
        ]
    );
    client(&p)
        .await
        .create_sla_policy(authed(
            CreateSlaPolicyRequest {
                policy: Some(policy(vec![
                    target_of(SlaMetric::FirstReply, 2),
                    target_of(SlaMetric::AgentWork, 3_600),
                ])),
            },
            &p.admin(),
        ))
        .await
        .expect("policy");
    let token = agent(&p);
    let ticket = new_ticket(&p, &token, "the clock is ticking", &[]).await;
    let first = target(&ticket, SlaMetric::FirstReply);
    assert_eq!(first.state, SlaState::Active as i32);
    assert!((secs(&first.due_time) - secs(&ticket.create_time) - 2).abs() <= 1);
    let work_due = secs(&target(&ticket, SlaMetric::AgentWork).due_time);

    // Waiting on the customer: agent work pauses.
    let mut pending = ticket.clone();
    pending.status = "pending".into();
    let paused = update(&p, &token, pending, &["status"], "")
        .await
        .expect("pending");
    let work = target(&paused, SlaMetric::AgentWork);
    assert_eq!(work.state, SlaState::Paused as i32);
    assert!(work.due_time.is_none());

    // Down while the first reply falls due; the breach comes once it is back.
    p.restart_ticketing(TicketingSettings::default(), Duration::from_secs(3))
        .await;
    let breached = eventually(WAIT, || async {
        let t = get(&p, &ticket.id).await;
        (target(&t, SlaMetric::FirstReply).state == SlaState::Breached as i32).then_some(t)
    })
    .await;
    assert!(breached.is_some(), "the first reply target breached");
    let events = helpdesk_kit::testing::stream_events(&p.env, "*.sla.breached", 1).await;
    assert_eq!(events.len(), 1, "breached once");
    let e = <SlaBreached as prost::Message>::decode(events[0].payload.clone()).expect("decodes");
    assert_eq!(
        (e.ticket_number, e.metric),
        (ticket.number, SlaMetric::FirstReply as i32)
    );
    let warnings = helpdesk_kit::testing::stream_events(&p.env, "*.sla.warning", 1).await;
    assert_eq!(warnings.len(), 1, "warned once, a second before");
    // Operators count it too.
    let breaches = prometheus_text::until(WAIT, |samples| {
        prometheus_text::find(
            samples,
            "helpdesk_sla_breaches_total",
            &[("metric", "SLA_METRIC_FIRST_REPLY")],
        )
        .map(|s| s.number())
    })
    .await;
    assert_eq!(breaches, Some(1.0), "one breach in the metrics");

    // Back to work: the agent-work deadline moved by the time it was paused.
    let mut open = get(&p, &ticket.id).await;
    open.status = "open".into();
    let resumed = update(&p, &token, open, &["status"], "")
        .await
        .expect("open");
    let work = target(&resumed, SlaMetric::AgentWork);
    assert_eq!(work.state, SlaState::Active as i32);
    assert!(
        secs(&work.due_time) - work_due >= 3,
        "paused for the restart: {} vs {work_due}",
        secs(&work.due_time)
    );
    // The late first reply stays breached.
    client(&p)
        .await
        .add_comment(authed(
            AddCommentRequest {
                ticket_id: ticket.id.clone(),
                body: "On it.".into(),
                public: true,
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("reply");
    let replied = get(&p, &ticket.id).await;
    assert_eq!(
        target(&replied, SlaMetric::FirstReply).state,
        SlaState::Breached as i32
    );
    p.stop().await;
}

/// When `seconds` of business time (Monday to Friday 09:00-18:00 in Tokyo, minus
/// `holiday`) have passed after `from`, counted minute by minute.
fn tokyo_due(from: i64, seconds: i64, holiday: chrono::NaiveDate) -> i64 {
    use chrono::{Datelike, TimeZone, Timelike};
    let tz: chrono_tz::Tz = "Asia/Tokyo".parse().expect("zone");
    let mut t = from;
    let mut left = seconds;
    // To the next whole minute first, counting the part if open.
    while left > 0 {
        let local = tz.timestamp_opt(t, 0).single().expect("time");
        let open = local.weekday().num_days_from_monday() < 5
            && (9..18).contains(&local.hour())
            && local.date_naive() != holiday;
        let step = 60 - i64::from(local.second());
        let step = step.min(left.max(1));
        if open {
            left -= step;
        }
        t += step;
    }
    t
}

#[tokio::test]
async fn business_hours_targets_skip_nights_weekends_and_holidays() {
    let p = start().await;
    let tokyo_today = chrono::Utc::now()
        .with_timezone(&"Asia/Tokyo".parse::<chrono_tz::Tz>().expect("zone"))
        .date_naive();
    let holiday = tokyo_today + chrono::Duration::days(2);
    let calendar = client(&p)
        .await
        .create_calendar(authed(
            CreateCalendarRequest {
                calendar: Some(Calendar {
                    name: "Tokyo office".into(),
                    time_zone: "Asia/Tokyo".into(),
                    weekly: (1..=5)
                        .map(|d| CalendarRange {
                            weekday: d,
                            start: "09:00".into(),
                            end: "18:00".into(),
                        })
                        .collect(),
                    holidays: vec![holiday.to_string()],
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("calendar")
        .into_inner();
    // Five business days: always across a weekend, here across the holiday too.
    let five_days = 5 * 9 * 3600;
    client(&p)
        .await
        .create_sla_policy(authed(
            CreateSlaPolicyRequest {
                policy: Some(SlaPolicy {
                    name: "Office hours".into(),
                    calendar_id: calendar.id.clone(),
                    targets: vec![SlaPolicyTarget {
                        metric: SlaMetric::Resolution as i32,
                        seconds: five_days,
                        business_hours: true,
                        ..Default::default()
                    }],
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("policy");
    let ticket = new_ticket(&p, &agent(&p), "invoice question", &[]).await;
    let resolution = target(&ticket, SlaMetric::Resolution);
    assert!(resolution.business_hours);
    let created = secs(&ticket.create_time);
    let expected = tokyo_due(created, five_days, holiday);
    let due = secs(&resolution.due_time);
    assert!(
        (due - expected).abs() <= 60,
        "due {due}, counted minute by minute {expected}"
    );
    assert!(
        due - created >= 7 * 86_400 - 86_400,
        "nights and a weekend are skipped"
    );
    // The office drops the holiday: the open ticket's deadline is derived again.
    let mut changed = calendar.clone();
    changed.holidays = Vec::new();
    client(&p)
        .await
        .update_calendar(authed(
            UpdateCalendarRequest {
                calendar: Some(changed),
            },
            &p.admin(),
        ))
        .await
        .expect("calendar updated");
    let never = chrono::NaiveDate::from_ymd_opt(1970, 1, 1).expect("date");
    let expected = tokyo_due(created, five_days, never);
    let due = secs(&target(&get(&p, &ticket.id).await, SlaMetric::Resolution).due_time);
    assert!(
        (due - expected).abs() <= 60,
        "due {due} after the change, counted {expected}"
    );
    p.stop().await;
}

#[tokio::test]
async fn every_rpc_keeps_other_accounts_and_other_visitors_out() {
    let p = start().await;
    let inbox = p.inbox().await;
    let (chat, owner) = p.chat(&inbox, "my own problem", &[]).await;
    let (_, stranger) = p.chat(&inbox, "someone else", &[]).await;
    let mut c = client(&p).await;
    let ticket = c
        .create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: chat.clone(),
                ..Default::default()
            },
            &agent(&p),
        ))
        .await
        .expect("ticket")
        .into_inner();
    let id = ticket.id.clone();
    let outsider = p.env.token("globex", "eve", Role::Admin);
    let denied = |r: Result<(), tonic::Status>, who: &str, rpc: &str| {
        let e = r.expect_err(&format!("{who} may not {rpc}"));
        assert!(
            matches!(e.code(), Code::NotFound | Code::PermissionDenied),
            "{who} {rpc}: {e:?}"
        );
    };
    macro_rules! call {
        ($method:ident, $req:expr, $token:expr) => {
            c.$method(authed($req, $token)).await.map(|_| ())
        };
    }
    for (who, token) in [
        ("another account", &outsider),
        ("another visitor", &stranger),
    ] {
        let by_id = GetTicketRequest {
            id: id.clone(),
            number: 0,
        };
        denied(call!(get_ticket, by_id.clone(), token), who, "get");
        denied(
            call!(
                get_ticket,
                GetTicketRequest {
                    id: String::new(),
                    number: ticket.number,
                },
                token
            ),
            who,
            "get by number",
        );
        denied(
            call!(
                get_ticket_status,
                GetTicketStatusRequest {
                    id: id.clone(),
                    number: 0
                },
                token
            ),
            who,
            "read the status",
        );
        let mine = Ticket {
            id: id.clone(),
            subject: "taken".into(),
            ..Default::default()
        };
        denied(
            call!(
                update_ticket,
                UpdateTicketRequest {
                    ticket: Some(mine),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["subject".into()]
                    }),
                    etag: String::new(),
                },
                token
            ),
            who,
            "update",
        );
        denied(
            call!(
                add_comment,
                AddCommentRequest {
                    ticket_id: id.clone(),
                    body: "hi".into(),
                    public: true,
                    ..Default::default()
                },
                token
            ),
            who,
            "comment",
        );
        denied(
            call!(
                list_comments,
                ListCommentsRequest {
                    ticket_id: id.clone(),
                    ..Default::default()
                },
                token
            ),
            who,
            "list comments",
        );
        denied(
            call!(
                get_transcript,
                GetTranscriptRequest {
                    ticket_id: id.clone()
                },
                token
            ),
            who,
            "read the transcript",
        );
        denied(
            call!(
                list_ticket_events,
                ListTicketEventsRequest {
                    ticket_id: id.clone(),
                    ..Default::default()
                },
                token
            ),
            who,
            "read the history",
        );
        denied(
            call!(
                bulk_update_tickets,
                BulkUpdateTicketsRequest {
                    ticket_ids: vec![id.clone()],
                    ticket: Some(Ticket {
                        priority: TicketPriority::Low as i32,
                        ..Default::default()
                    }),
                    update_mask: Some(prost_types::FieldMask {
                        paths: vec!["priority".into()]
                    }),
                },
                token
            ),
            who,
            "bulk update",
        );
        let other = new_ticket(&p, &agent(&p), "another", &[]).await;
        denied(
            call!(
                merge_tickets,
                MergeTicketsRequest {
                    target_id: id.clone(),
                    source_ids: vec![other.id.clone()],
                },
                token
            ),
            who,
            "merge",
        );
        denied(
            call!(
                create_ticket_from_conversation,
                CreateTicketFromConversationRequest {
                    conversation_id: chat.clone(),
                    ..Default::default()
                },
                token
            ),
            who,
            "ticket someone's chat",
        );
        let listed = c
            .list_tickets(authed(ListTicketsRequest::default(), token))
            .await
            .expect("list")
            .into_inner()
            .tickets;
        assert!(listed.iter().all(|t| t.id != id), "{who} lists it");
    }
    // A customer neither searches (comments include internal notes) nor filters on
    // internal fields, and reads no internal figures.
    let e = c
        .list_tickets(authed(
            ListTicketsRequest {
                query: "refund".into(),
                tags: vec!["vip".into()],
                ..Default::default()
            },
            &owner,
        ))
        .await
        .expect_err("internal filters");
    assert_eq!(violated_fields(&e), vec!["tags", "query"]);
    let seen = c
        .get_ticket(authed(
            GetTicketRequest {
                id: id.clone(),
                number: 0,
            },
            &owner,
        ))
        .await
        .expect("own ticket")
        .into_inner();
    assert!(seen.sla.is_empty() && seen.priority == 0 && seen.status.is_empty());
    // Another customer's ticket is never merged into this one.
    let (elsewhere, _) = p.chat(&inbox, "not the same person", &[]).await;
    let theirs = c
        .create_ticket_from_conversation(authed(
            CreateTicketFromConversationRequest {
                conversation_id: elsewhere,
                ..Default::default()
            },
            &agent(&p),
        ))
        .await
        .expect("ticket")
        .into_inner();
    let e = c
        .merge_tickets(authed(
            MergeTicketsRequest {
                target_id: id.clone(),
                source_ids: vec![theirs.id.clone()],
            },
            &agent(&p),
        ))
        .await
        .expect_err("other requester");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // Visitors run none of the staff and admin RPCs, even on their own ticket.
    for r in [
        call!(
            get_transcript,
            GetTranscriptRequest {
                ticket_id: id.clone()
            },
            &owner
        ),
        call!(
            list_ticket_events,
            ListTicketEventsRequest {
                ticket_id: id.clone(),
                ..Default::default()
            },
            &owner
        ),
        call!(list_statuses, ListStatusesRequest {}, &owner),
        call!(list_sla_policies, ListSlaPoliciesRequest {}, &owner),
        call!(list_calendars, ListCalendarsRequest {}, &owner),
        call!(
            list_field_definitions,
            ListFieldDefinitionsRequest {},
            &owner
        ),
        call!(
            create_ticket,
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: "me".into(),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &owner
        ),
    ] {
        let e = r.expect_err("staff only");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    // The owner reads its ticket and its public comments, and replies.
    c.get_ticket_status(authed(
        GetTicketStatusRequest {
            id: id.clone(),
            number: 0,
        },
        &owner,
    ))
    .await
    .expect("own status");
    c.add_comment(authed(
        AddCommentRequest {
            ticket_id: id.clone(),
            body: "any news?".into(),
            public: true,
            ..Default::default()
        },
        &owner,
    ))
    .await
    .expect("own reply");
    p.stop().await;
}

#[tokio::test]
async fn a_resolved_chat_reopens_for_its_ticket_only_when_the_inbox_says_so() {
    let p = start().await;
    let plain = p.inbox().await;
    let reopening = p
        .conv()
        .await
        .create_inbox(authed(
            conv::CreateInboxRequest {
                inbox: Some(conv::Inbox {
                    name: "Orders".into(),
                    channel_kind: conv::ChannelKind::WebWidget as i32,
                    reopen_on_ticket_update: true,
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("inbox")
        .into_inner();
    let mut c = client(&p).await;
    for (inbox, reopens) in [(&plain, false), (&reopening, true)] {
        let (chat, visitor) = p.chat(inbox, "where is my order", &[]).await;
        let ticket = c
            .create_ticket_from_conversation(authed(
                CreateTicketFromConversationRequest {
                    conversation_id: chat.clone(),
                    ..Default::default()
                },
                &agent(&p),
            ))
            .await
            .expect("ticket")
            .into_inner();
        p.set_status(&chat, conv::ConversationStatus::Resolved)
            .await;
        c.add_comment(authed(
            AddCommentRequest {
                ticket_id: ticket.id.clone(),
                body: format!("Your order ships today ({reopens})."),
                public: true,
                ..Default::default()
            },
            &agent(&p),
        ))
        .await
        .expect("reply");
        let line = format!("Your order ships today ({reopens}).");
        assert!(customer_reads(&p, &chat, &visitor, &line).await);
        let status = p.conversation(&chat).await.status;
        let expected = if reopens {
            conv::ConversationStatus::Open
        } else {
            conv::ConversationStatus::Resolved
        };
        assert_eq!(status, expected as i32, "reopens: {reopens}");
    }
    p.stop().await;
}

#[tokio::test]
async fn a_change_anywhere_in_a_field_is_saved_and_recorded() {
    let p = start().await;
    let token = agent(&p);
    let mut c = client(&p).await;
    let long = "x".repeat(300);
    let created = c
        .create_ticket(authed(
            CreateTicketRequest {
                ticket: Some(Ticket {
                    subject: "long story".into(),
                    description: format!("{long} end"),
                    requester: Some(Requester {
                        name: "Vera".into(),
                        email: "vera@example.com".into(),
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
                request_id: String::new(),
            },
            &token,
        ))
        .await
        .expect("created")
        .into_inner();
    let mut next = created.clone();
    next.description = format!("{long} the end");
    next.requester = Some(Requester {
        name: "Vera".into(),
        email: "vera@example.org".into(),
        ..Default::default()
    });
    let saved = update(
        &p,
        &token,
        next,
        &["description", "requester"],
        &created.etag,
    )
    .await
    .expect("updated");
    assert!(saved.description.ends_with("the end"));
    assert_eq!(
        saved.requester.expect("requester").email,
        "vera@example.org"
    );
    assert_ne!(saved.etag, created.etag);
    p.stop().await;
}

#[tokio::test]
async fn staff_watch_tickets_change_live_and_visitors_cannot() {
    let p = start().await;
    let token = agent(&p);
    let mut c = client(&p).await;
    let mut all = c
        .watch_tickets(authed(WatchTicketsRequest::default(), &token))
        .await
        .expect("watch the account")
        .into_inner();
    let first = new_ticket(&p, &token, "Broken zipper", &[]).await;
    let other = new_ticket(&p, &token, "Late parcel", &[]).await;
    let created = next(&mut all).await;
    assert_eq!(
        (created.event.as_str(), created.ticket_id.as_str()),
        ("ticket.created", first.id.as_str())
    );
    assert_eq!(created.ticket.expect("ticket").subject, "Broken zipper");
    assert_eq!(next(&mut all).await.ticket_id, other.id);
    // Opened once both creations are out, so that what it sees next is the comment.
    let mut one = c
        .watch_tickets(authed(
            WatchTicketsRequest {
                ticket_id: first.id.clone(),
            },
            &token,
        ))
        .await
        .expect("watch one ticket")
        .into_inner();

    // A comment on the other ticket reaches only the account-wide watch.
    for (id, body) in [
        (&other.id, "Checking the courier"),
        (&first.id, "New zipper sent"),
    ] {
        c.add_comment(authed(
            AddCommentRequest {
                ticket_id: id.to_string(),
                body: body.into(),
                ..Default::default()
            },
            &token,
        ))
        .await
        .expect("comment");
    }
    let mine = next(&mut one).await;
    assert_eq!(mine.event, "ticket.comment_added");
    assert_eq!(mine.ticket_id, first.id);
    assert_eq!(mine.comment.expect("comment").body, "New zipper sent");
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let n = next(&mut all).await;
        if n.event == "ticket.comment_added" {
            seen.push(n.comment.expect("comment").body);
        }
    }
    assert_eq!(seen, ["Checking the courier", "New zipper sent"]);
    drop((all, one));

    let visitor = p.token("0190a6c4-1f7e-7c3a-9d2e-5b8f4a1c2d3e", Role::Visitor);
    let refused = c
        .watch_tickets(authed(WatchTicketsRequest::default(), &visitor))
        .await
        .expect_err("visitors follow tickets in their chat");
    assert_eq!(refused.code(), Code::PermissionDenied);
    let bad = c
        .watch_tickets(authed(
            WatchTicketsRequest {
                ticket_id: "nope".into(),
            },
            &token,
        ))
        .await
        .expect_err("not an id");
    assert_eq!(bad.code(), Code::InvalidArgument);
}

/// The next notice of a ticket watch.
async fn next(s: &mut tonic::Streaming<TicketChangeNotice>) -> TicketChangeNotice {
    tokio::time::timeout(WAIT, s.message())
        .await
        .expect("a notice in time")
        .expect("stream")
        .expect("open")
}
