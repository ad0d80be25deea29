//! Automation rules end to end, with real NATS and PostgreSQL: rules that act through
//! the conversation, routing and ticketing services however a state was reached,
//! delayed rules bound to their episode, and loops stopped and logged.

use std::time::Duration;

use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::smtp::SmtpServer;
use helpdesk_notification::NotificationSettings;
use helpdesk_proto::automation::v1::*;
use helpdesk_proto::conversation::v1 as conv;
use helpdesk_proto::routing::v1::{self as routing, Presence};
use helpdesk_proto::ticketing::v1 as tick;
use helpdesk_tests::platform::{Platform, authed, eventually};
use helpdesk_tests::rules::{labels, pred};
use mail_parser::MessageParser;

const WAIT: Duration = Duration::from_secs(20);

fn all(conditions: Vec<Condition>) -> Option<ConditionGroup> {
    Some(ConditionGroup {
        any: false,
        conditions,
    })
}

fn say(content: &str) -> Action {
    Action {
        kind: Some(action::Kind::SendMessage(MessageAction {
            content: content.into(),
        })),
    }
}

/// Creates an active rule as an admin.
async fn rule(
    p: &Platform,
    name: &str,
    event: &str,
    conditions: Vec<Condition>,
    actions: Vec<Action>,
) -> Rule {
    rule_with(
        p,
        Rule {
            name: name.into(),
            active: true,
            event: event.into(),
            conditions: all(conditions),
            actions,
            ..Default::default()
        },
    )
    .await
}

async fn rule_with(p: &Platform, rule: Rule) -> Rule {
    p.automation()
        .await
        .create_rule(authed(CreateRuleRequest { rule: Some(rule) }, &p.admin()))
        .await
        .expect("create rule")
        .into_inner()
}

/// The rule's runs (newest first).
async fn runs(p: &Platform, rule_id: &str) -> Vec<RuleRun> {
    p.automation()
        .await
        .list_rule_runs(authed(
            ListRuleRunsRequest {
                rule_id: rule_id.into(),
                page_size: 100,
                ..Default::default()
            },
            &p.admin(),
        ))
        .await
        .expect("runs")
        .into_inner()
        .runs
}

/// Waits until the rule has `n` runs of `outcome`; the runs then.
async fn wait_runs(p: &Platform, rule_id: &str, outcome: RunOutcome, n: usize) -> Vec<RuleRun> {
    eventually(WAIT, || async {
        let all = runs(p, rule_id).await;
        (all.iter().filter(|r| r.outcome == outcome as i32).count() >= n).then_some(all)
    })
    .await
    .unwrap_or_else(|| panic!("{n} {outcome:?} runs of rule {rule_id} within {WAIT:?}"))
}

fn count(runs: &[RuleRun], outcome: RunOutcome) -> usize {
    runs.iter().filter(|r| r.outcome == outcome as i32).count()
}

/// The customer writes.
async fn customer_says(p: &Platform, chat: &str, visitor: &str, text: &str) {
    p.conv()
        .await
        .send_message(authed(
            conv::SendMessageRequest {
                conversation_id: chat.into(),
                content: text.into(),
                ..Default::default()
            },
            visitor,
        ))
        .await
        .expect("customer message");
}

/// An agent writes to the customer.
async fn agent_says(p: &Platform, agent: &str, chat: &str, text: &str) {
    p.conv()
        .await
        .send_message(authed(
            conv::SendMessageRequest {
                conversation_id: chat.into(),
                content: text.into(),
                ..Default::default()
            },
            &p.token(agent, Role::Agent),
        ))
        .await
        .expect("agent message");
}

/// How many messages of the conversation the customer reads with exactly `text`.
async fn customer_reads(p: &Platform, chat: &str, visitor: &str, text: &str) -> usize {
    p.transcript(chat, visitor)
        .await
        .iter()
        .filter(|m| m.content == text)
        .count()
}

#[tokio::test]
async fn unassign_on_resolve_sends_the_reopened_chat_to_whoever_is_free() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    p.agent("ana", 3, &[], &[]).await;
    p.agent("bo", 3, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let (first, visitor) = p.chat(&inbox, "my order is late", &[]).await;
    assert_eq!(p.wait_assigned(&first, WAIT).await.as_deref(), Some("ana"));
    let (second, _) = p.chat(&inbox, "another question", &[]).await;
    assert_eq!(p.wait_assigned(&second, WAIT).await.as_deref(), Some("ana"));
    p.presence("bo", Presence::Online).await;
    let unassign = rule(
        &p,
        "Unassign on resolve",
        "conversation.status_changed",
        vec![pred(
            "conversation.status",
            Operator::EqualTo,
            &["resolved"],
        )],
        vec![Action {
            kind: Some(action::Kind::AssignAgent("none".into())),
        }],
    )
    .await;

    p.set_status(&first, conv::ConversationStatus::Resolved)
        .await;
    let done = wait_runs(&p, &unassign.id, RunOutcome::Fired, 1).await;
    assert!(
        done[0].actions.iter().all(|a| a.ok),
        "{:?}",
        done[0].actions
    );
    assert_eq!(done[0].conversation_id, first);
    // The customer writes again: the chat reopens and goes to the free agent, not
    // back to ana (who is online, with room, and would otherwise get it back).
    customer_says(&p, &first, &visitor, "it still has not arrived").await;
    let again = eventually(WAIT, || async {
        p.assignee(&first).await.filter(|a| a == "bo")
    })
    .await;
    assert_eq!(again.as_deref(), Some("bo"));
    // Reopening is a status change too, but not to resolved: the rule stays quiet.
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(count(&runs(&p, &unassign.id).await, RunOutcome::Fired), 1);
    p.stop().await;
}

#[tokio::test]
async fn a_closing_reply_goes_out_once_however_the_chat_was_resolved() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    p.agent("ana", 5, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    const BYE: &str = "Thanks for chatting with us. Reply here any time.";
    let reply = rule(
        &p,
        "Reply on close",
        "conversation.resolved",
        vec![],
        vec![say(BYE)],
    )
    .await;
    // Another rule resolves chats whose customer says goodbye.
    rule(
        &p,
        "Resolve on goodbye",
        "message.incoming",
        vec![pred(
            "message.content",
            Operator::Matches,
            &[r"^\s*(bye|goodbye)\b"],
        )],
        vec![Action {
            kind: Some(action::Kind::ChangeStatus(StatusAction {
                status: "resolved".into(),
                snooze_seconds: 0,
            })),
        }],
    )
    .await;

    // By the agent, after a last reply ("send and resolve").
    let (by_agent, v1) = p.chat(&inbox, "where is my parcel?", &[]).await;
    p.wait_assigned(&by_agent, WAIT).await.expect("assigned");
    agent_says(&p, "ana", &by_agent, "It arrives tomorrow.").await;
    p.set_status(&by_agent, conv::ConversationStatus::Resolved)
        .await;
    // By the customer, from the widget.
    let (by_customer, v2) = p.chat(&inbox, "quick question", &[]).await;
    p.conv()
        .await
        .set_status(authed(
            conv::SetStatusRequest {
                conversation_id: by_customer.clone(),
                status: conv::ConversationStatus::Resolved as i32,
                ..Default::default()
            },
            &v2,
        ))
        .await
        .expect("visitor resolves");
    // By another rule.
    let (by_rule, v3) = p.chat(&inbox, "hello", &[]).await;
    customer_says(&p, &by_rule, &v3, "bye then").await;
    // By the inactivity timer of an inbox that closes quiet chats.
    let quiet_inbox = p
        .conv()
        .await
        .create_inbox(authed(
            conv::CreateInboxRequest {
                inbox: Some(conv::Inbox {
                    name: "Quiet".into(),
                    channel_kind: conv::ChannelKind::WebWidget as i32,
                    lifecycle: Some(conv::InboxLifecycle {
                        inactivity_warning_seconds: 1,
                        inactivity_close_seconds: 1,
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("inbox")
        .into_inner();
    let (by_timer, v4) = p.chat(&quiet_inbox, "is my refund through?", &[]).await;
    p.wait_assigned(&by_timer, WAIT).await.expect("assigned");
    agent_says(&p, "ana", &by_timer, "Yes, it went out this morning.").await;

    let chats = [
        (&by_agent, &v1),
        (&by_customer, &v2),
        (&by_rule, &v3),
        (&by_timer, &v4),
    ];
    for (chat, visitor) in chats {
        let told = eventually(WAIT, || async {
            (customer_reads(&p, chat, visitor, BYE).await >= 1).then_some(())
        })
        .await;
        assert!(
            told.is_some(),
            "the closing reply reaches the customer of {chat}"
        );
    }
    assert_eq!(
        customer_reads(&p, &by_agent, &v1, "It arrives tomorrow.").await,
        1
    );
    assert_eq!(
        customer_reads(&p, &by_timer, &v4, "Yes, it went out this morning.").await,
        1
    );
    tokio::time::sleep(Duration::from_secs(1)).await;
    for (chat, visitor) in chats {
        assert_eq!(
            customer_reads(&p, chat, visitor, BYE).await,
            1,
            "once in {chat}"
        );
        assert_eq!(
            p.conversation(chat).await.status,
            conv::ConversationStatus::Resolved as i32,
            "the reply does not reopen {chat}"
        );
    }
    let log = runs(&p, &reply.id).await;
    assert_eq!(count(&log, RunOutcome::Fired), 4, "{log:#?}");
    // The rule's message was written by the rule, continuing the chain of the
    // resolution that triggered it.
    let line = p
        .transcript(&by_rule, &p.supervisor())
        .await
        .into_iter()
        .find(|m| m.content == BYE)
        .expect("closing line");
    let sender = line.sender.unwrap_or_default();
    assert_eq!(
        sender.kind,
        helpdesk_proto::common::v1::ActorKind::Automation as i32
    );
    assert_eq!(sender.id, reply.id);
    p.stop().await;
}

/// The same on the email channel: the agent's last reply and the closing reply
/// reach the customer's mailbox once each, in one thread, and the automatic one is
/// marked as such (RFC 3834), read back with a MIME parser.
#[tokio::test]
async fn on_an_email_inbox_the_last_reply_and_the_closing_reply_are_mailed_once() {
    let mut p = Platform::start(1).await;
    let smtp = SmtpServer::start().await;
    p.restart_notification(NotificationSettings {
        smtp_host: "127.0.0.1".into(),
        smtp_port: smtp.port,
        smtp_tls: "none".into(),
        smtp_timeout_ms: 5_000,
        email_from: "Acme Support <support@acme.test>".into(),
        ..Default::default()
    })
    .await;
    let inbox = p
        .conv()
        .await
        .create_inbox(authed(
            conv::CreateInboxRequest {
                inbox: Some(conv::Inbox {
                    name: "Mail".into(),
                    channel_kind: conv::ChannelKind::Email as i32,
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("inbox")
        .into_inner();
    p.agent("ana", 5, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    const BYE: &str = "Thanks for writing to us. Reply to this email any time.";
    rule(
        &p,
        "Reply on close",
        "conversation.resolved",
        vec![],
        vec![say(BYE)],
    )
    .await;
    let customer = conv::Contact {
        name: "Zoe".into(),
        email: "zoe@example.test".into(),
        ..Default::default()
    };
    let (chat, visitor) = p
        .chat_as(&inbox, "Where is my parcel?", customer.clone(), true)
        .await;
    p.wait_assigned(&chat, WAIT).await.expect("assigned");
    agent_says(&p, "ana", &chat, "It arrives tomorrow.").await;
    p.set_status(&chat, conv::ConversationStatus::Resolved)
        .await;
    // A visitor who merely typed an address in gets no mail: it is not proven.
    let (unproven, _) = p
        .chat_as(
            &inbox,
            "Hello",
            conv::Contact {
                email: "someone-else@example.test".into(),
                ..customer
            },
            false,
        )
        .await;
    p.wait_assigned(&unproven, WAIT).await.expect("assigned");
    agent_says(&p, "ana", &unproven, "Hi there").await;

    let mails = smtp.wait_for(2, WAIT).await;
    assert_eq!(mails.len(), 2, "the reply and the closing reply");
    tokio::time::sleep(Duration::from_secs(2)).await;
    let mails = smtp.mails();
    assert_eq!(mails.len(), 2, "each once, none to the unproven address");
    let parsed: Vec<_> = mails
        .iter()
        .map(|m| MessageParser::default().parse(&m.data).expect("MIME"))
        .collect();
    let body = |m: &mail_parser::Message<'_>| m.body_text(0).unwrap_or_default().to_string();
    let reply = parsed
        .iter()
        .find(|m| body(m).contains("It arrives tomorrow."))
        .expect("the agent's reply");
    let closing = parsed
        .iter()
        .find(|m| body(m).contains(BYE))
        .expect("the closing reply");
    for (m, raw) in parsed.iter().zip(&mails) {
        assert_eq!(raw.to, vec!["zoe@example.test"]);
        assert_eq!(
            m.from().and_then(|a| a.first()).and_then(|a| a.address()),
            Some("support@acme.test")
        );
    }
    let thread = format!("conversation-{chat}@acme.test");
    for m in [reply, closing] {
        assert_eq!(m.in_reply_to().as_text(), Some(thread.as_str()));
    }
    assert_eq!(
        closing.header_raw("Auto-Submitted").map(str::trim),
        Some("auto-replied")
    );
    assert_eq!(reply.header_raw("Auto-Submitted"), None);
    // The chat itself shows both lines as well.
    assert_eq!(customer_reads(&p, &chat, &visitor, BYE).await, 1);
    p.stop().await;
}

#[tokio::test]
async fn a_keyword_makes_one_ticket_per_conversation_with_its_tag_and_category() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    let keyword = rule_with(
        &p,
        Rule {
            name: "Refunds become tickets".into(),
            active: true,
            event: "message.incoming".into(),
            conditions: all(vec![pred(
                "message.content",
                Operator::Matches,
                &["refund|complaint|退款"],
            )]),
            actions: vec![Action {
                kind: Some(action::Kind::CreateTicket(CreateTicketAction {
                    tags: vec!["refund".into()],
                    category: "billing".into(),
                    priority: "high".into(),
                    ..Default::default()
                })),
            }],
            ..Default::default()
        },
    )
    .await;
    let (chinese, v1) = p.chat(&inbox, "你好", &[]).await;
    customer_says(&p, &chinese, &v1, "我要退款").await;
    customer_says(&p, &chinese, &v1, "退款, please, it is a REFUND").await;
    let (english, _) = p
        .chat(&inbox, "I have a complaint about my order", &[])
        .await;
    let (quiet, v3) = p.chat(&inbox, "hello", &[]).await;
    customer_says(&p, &quiet, &v3, "thanks, all good").await;

    let log = wait_runs(&p, &keyword.id, RunOutcome::Fired, 3).await;
    assert!(
        log.iter().all(|r| r.actions.iter().all(|a| a.ok)),
        "{log:#?}"
    );
    let tickets = p
        .tickets()
        .await
        .list_tickets(authed(
            tick::ListTicketsRequest {
                tags: vec!["refund".into()],
                page_size: 50,
                ..Default::default()
            },
            &p.admin(),
        ))
        .await
        .expect("tickets")
        .into_inner()
        .tickets;
    assert_eq!(
        tickets.len(),
        2,
        "one ticket per conversation: {tickets:#?}"
    );
    for chat in [&chinese, &english] {
        let t = tickets
            .iter()
            .find(|t| t.conversation_ids.contains(chat))
            .expect("the conversation's ticket");
        assert_eq!(t.category, "billing");
        assert_eq!(t.priority, tick::TicketPriority::High as i32);
    }
    assert!(tickets.iter().all(|t| !t.conversation_ids.contains(&quiet)));
    // The run log names the condition that held and the ticket made.
    let run = log
        .iter()
        .find(|r| r.conversation_id == english)
        .expect("run");
    assert!(run.conditions[0].matched);
    assert_eq!(run.conditions[0].attribute, "message.content");
    assert!(
        run.actions[0].detail.starts_with("ticket #"),
        "{:?}",
        run.actions
    );
    p.stop().await;
}

#[tokio::test]
async fn unanswered_for_a_while_becomes_a_ticket_unless_someone_writes_first() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    p.agent("ana", 5, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    const TOLD: &str = "We are still on it: your request is now ticket #";
    let waiting = rule_with(
        &p,
        Rule {
            name: "Unanswered for a while".into(),
            active: true,
            event: "message.incoming".into(),
            conditions: all(vec![pred(
                "conversation.status",
                Operator::NotEqualTo,
                &["resolved"],
            )]),
            actions: vec![
                Action {
                    kind: Some(action::Kind::CreateTicket(CreateTicketAction {
                        tags: vec!["unanswered".into()],
                        ..Default::default()
                    })),
                },
                say(&format!("{TOLD}{{{{ticket.number}}}}.")),
            ],
            delay: Some(Delay {
                seconds: 3,
                episode: Episode::LastMessage as i32,
            }),
            ..Default::default()
        },
    )
    .await;
    let (ignored, v1) = p.chat(&inbox, "is anyone there?", &[]).await;
    let (answered, v2) = p.chat(&inbox, "can I change my address?", &[]).await;
    p.wait_assigned(&answered, WAIT).await.expect("assigned");
    agent_says(&p, "ana", &answered, "Yes, which one?").await;

    let fired = wait_runs(&p, &waiting.id, RunOutcome::Fired, 1).await;
    assert_eq!(
        fired
            .iter()
            .find(|r| r.outcome == RunOutcome::Fired as i32)
            .map(|r| r.conversation_id.clone()),
        Some(ignored.clone())
    );
    let told = eventually(WAIT, || async {
        p.transcript(&ignored, &v1)
            .await
            .into_iter()
            .find(|m| m.content.starts_with(TOLD))
    })
    .await
    .expect("the customer is told");
    let dropped = wait_runs(&p, &waiting.id, RunOutcome::Dropped, 1).await;
    let drop = dropped
        .iter()
        .find(|r| r.outcome == RunOutcome::Dropped as i32)
        .expect("dropped run");
    assert_eq!(drop.conversation_id, answered);
    assert!(drop.reason.contains("episode"), "{}", drop.reason);
    assert_eq!(
        p.transcript(&answered, &v2)
            .await
            .iter()
            .filter(|m| m.content.starts_with(TOLD))
            .count(),
        0
    );
    // The ticket exists, carries the chat, and its number is the one the customer read.
    let tickets = p
        .tickets()
        .await
        .list_tickets(authed(
            tick::ListTicketsRequest {
                tags: vec!["unanswered".into()],
                ..Default::default()
            },
            &p.admin(),
        ))
        .await
        .expect("tickets")
        .into_inner()
        .tickets;
    assert_eq!(tickets.len(), 1);
    assert_eq!(told.content, format!("{TOLD}{}.", tickets[0].number));
    assert_eq!(tickets[0].conversation_ids, vec![ignored.clone()]);
    p.stop().await;
}

#[tokio::test]
async fn a_rule_never_retriggers_itself_and_a_ping_pong_stops_at_the_depth_limit() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    let (chat, _) = p.chat(&inbox, "hello", &[]).await;
    let (other, _) = p.chat(&inbox, "hello again", &[]).await;
    // Reacts to every change of a conversation with a change of its own.
    let touch = rule(
        &p,
        "Mark touched",
        "conversation.updated",
        vec![pred("conversation.labels", Operator::Contains, &["vip"])],
        vec![labels(true, &["touched"])],
    )
    .await;
    let ping = rule(
        &p,
        "Ping",
        "conversation.updated",
        vec![pred("conversation.labels", Operator::Contains, &["ping"])],
        vec![labels(false, &["ping"]), labels(true, &["pong"])],
    )
    .await;
    let pong = rule(
        &p,
        "Pong",
        "conversation.updated",
        vec![pred("conversation.labels", Operator::Contains, &["pong"])],
        vec![labels(false, &["pong"]), labels(true, &["ping"])],
    )
    .await;
    let staff_labels = |id: String, names: &'static [&'static str]| {
        let p = &p;
        async move {
            p.conv()
                .await
                .update_conversation(authed(
                    conv::UpdateConversationRequest {
                        conversation: Some(conv::Conversation {
                            id,
                            labels: names.iter().map(|n| n.to_string()).collect(),
                            ..Default::default()
                        }),
                        update_mask: Some(prost_types::FieldMask {
                            paths: vec!["labels".into()],
                        }),
                    },
                    &p.supervisor(),
                ))
                .await
                .expect("labels");
        }
    };
    staff_labels(chat.clone(), &["vip"]).await;
    let log = wait_runs(&p, &touch.id, RunOutcome::Stopped, 1).await;
    assert_eq!(count(&log, RunOutcome::Fired), 1, "{log:#?}");
    let stopped = log
        .iter()
        .find(|r| r.outcome == RunOutcome::Stopped as i32)
        .expect("stopped run");
    assert!(stopped.reason.contains("own action"), "{}", stopped.reason);
    assert_eq!(p.conversation(&chat).await.labels, vec!["touched", "vip"]);

    staff_labels(other.clone(), &["ping"]).await;
    let stopped = eventually(WAIT, || async {
        let mut all = runs(&p, &ping.id).await;
        all.extend(runs(&p, &pong.id).await);
        all.iter()
            .find(|r| r.outcome == RunOutcome::Stopped as i32 && r.conversation_id == other)
            .cloned()
    })
    .await
    .expect("the ping-pong is stopped");
    assert!(
        stopped.reason.contains("depth limit (5)"),
        "{}",
        stopped.reason
    );
    assert_eq!(stopped.depth, 5);
    tokio::time::sleep(Duration::from_secs(1)).await;
    let mut all = runs(&p, &ping.id).await;
    all.extend(runs(&p, &pong.id).await);
    let fired = all
        .iter()
        .filter(|r| r.outcome == RunOutcome::Fired as i32)
        .count();
    assert_eq!(fired, 5, "ping, pong, ping, pong, ping: {all:#?}");
    assert_eq!(count(&all, RunOutcome::Stopped), 1);
    // The last rule to act left its label; nothing changes any more.
    let settled = p.conversation(&other).await;
    assert_eq!(settled.labels, vec!["pong"]);
    p.stop().await;
}

#[tokio::test]
async fn a_macro_applied_by_an_agent_acts_once_per_request_as_that_agent() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    let (chat, visitor) = p
        .chat(&inbox, "where is my refund?", &[("plan", "pro")])
        .await;
    let admin = p.admin();
    let agent = p.token("ana", Role::Agent);
    let refund = Macro {
        name: "Refund sent".into(),
        actions: vec![
            labels(true, &["refund"]),
            say("Hi {{contact.name}}, your refund is on its way."),
            Action {
                kind: Some(action::Kind::ChangeStatus(StatusAction {
                    status: "resolved".into(),
                    snooze_seconds: 0,
                })),
            },
        ],
        ..Default::default()
    };
    let created = p
        .automation()
        .await
        .create_macro(authed(
            CreateMacroRequest {
                r#macro: Some(refund.clone()),
            },
            &admin,
        ))
        .await
        .expect("macro")
        .into_inner();
    // Names are unique per account; a ticket update needs the macro's own ticket;
    // agents apply macros but do not write them.
    let mut client = p.automation().await;
    let taken = client
        .create_macro(authed(
            CreateMacroRequest {
                r#macro: Some(refund.clone()),
            },
            &admin,
        ))
        .await
        .expect_err("taken");
    assert_eq!(
        helpdesk_kit::grpc::violated_fields(&taken),
        vec!["macro.name"]
    );
    let orphan = client
        .create_macro(authed(
            CreateMacroRequest {
                r#macro: Some(Macro {
                    name: "Close ticket".into(),
                    actions: vec![Action {
                        kind: Some(action::Kind::UpdateTicket(UpdateTicketAction {
                            status: "solved".into(),
                            ..Default::default()
                        })),
                    }],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("no ticket");
    assert_eq!(
        helpdesk_kit::grpc::violated_fields(&orphan),
        vec!["macro.actions[0]"]
    );
    let denied = client
        .create_macro(authed(
            CreateMacroRequest {
                r#macro: Some(refund.clone()),
            },
            &agent,
        ))
        .await
        .expect_err("agents do not write macros");
    assert_eq!(denied.code(), tonic::Code::PermissionDenied);
    let listed = client
        .list_macros(authed(ListMacrosRequest::default(), &agent))
        .await
        .expect("agents list macros")
        .into_inner()
        .macros;
    assert_eq!(listed.len(), 1);

    let apply = |token: String| {
        let (p, id, chat) = (&p, created.id.clone(), chat.clone());
        async move {
            p.automation()
                .await
                .apply_macro(authed(
                    ApplyMacroRequest {
                        macro_id: id,
                        conversation_id: chat,
                        request_id: "click-1".into(),
                    },
                    &token,
                ))
                .await
        }
    };
    let visitor_try = apply(visitor.clone()).await.expect_err("not for visitors");
    assert_eq!(visitor_try.code(), tonic::Code::PermissionDenied);
    let done = apply(agent.clone()).await.expect("applied").into_inner();
    assert!(done.results.iter().all(|r| r.ok), "{:?}", done.results);
    // A retry of the same click does nothing twice.
    apply(agent.clone()).await.expect("applied again");
    let conversation = p.conversation(&chat).await;
    assert_eq!(conversation.labels, vec!["refund"]);
    assert_eq!(
        conversation.status,
        conv::ConversationStatus::Resolved as i32
    );
    assert_eq!(
        customer_reads(
            &p,
            &chat,
            &visitor,
            "Hi Visitor, your refund is on its way."
        )
        .await,
        1
    );
    // The change is the agent's: the message is theirs, the resolution too.
    let line = p
        .transcript(&chat, &visitor)
        .await
        .into_iter()
        .find(|m| m.content.starts_with("Hi Visitor"))
        .expect("line");
    let sender = line.sender.unwrap_or_default();
    assert_eq!(
        (sender.kind, sender.id.as_str()),
        (helpdesk_proto::common::v1::ActorKind::Agent as i32, "ana")
    );
    assert_eq!(
        conversation.status_actor.map(|a| a.id).as_deref(),
        Some("ana")
    );
    p.stop().await;
}

/// A dry run as an admin; `None` when refused (e.g. the conversation is not known
/// to the automation service yet).
async fn dry_run(p: &Platform, req: DryRunRuleRequest) -> Option<DryRunRuleResponse> {
    let r = p
        .automation()
        .await
        .dry_run_rule(authed(req, &p.admin()))
        .await;
    r.ok().map(|r| r.into_inner())
}

/// Sets the inbox's business hours: `open` all week, or closed all week.
async fn inbox_hours(p: &Platform, inbox: &str, open: bool) {
    let weekly = if open {
        (1..=7)
            .map(|weekday| routing::DaySchedule {
                weekday,
                ranges: vec![routing::TimeRange {
                    start: "00:00".into(),
                    end: "24:00".into(),
                }],
            })
            .collect()
    } else {
        Vec::new()
    };
    p.routing(0)
        .await
        .set_business_hours(authed(
            routing::SetBusinessHoursRequest {
                hours: Some(routing::BusinessHours {
                    inbox_id: inbox.into(),
                    time_zone: "Europe/Berlin".into(),
                    weekly,
                    outside_hours_policy: routing::OutsideHoursPolicy::LeaveMessage as i32,
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("business hours");
}

#[tokio::test]
async fn a_rule_can_tell_whether_the_business_hours_are_open() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    const CLOSED: &str = "We are closed now; we answer first thing tomorrow.";
    let closed = rule(
        &p,
        "Closed notice",
        "message.incoming",
        vec![pred(
            "conversation.within_business_hours",
            Operator::EqualTo,
            &["false"],
        )],
        vec![say(CLOSED)],
    )
    .await;
    // A later rule marks every chat it saw: the notice rule was looked at by then.
    rule(
        &p,
        "Seen",
        "message.incoming",
        vec![],
        vec![labels(true, &["seen"])],
    )
    .await;
    // The automation service learns the hours from routing's event; a dry run shows
    // when it has.
    let knows = |open: bool| {
        let (p, inbox, rule_id) = (&p, inbox.id.clone(), closed.id.clone());
        async move {
            eventually(WAIT, || async {
                let r = dry_run(
                    p,
                    DryRunRuleRequest {
                        rule_id: rule_id.clone(),
                        sample: Some(SampleEvent {
                            event: "message.incoming".into(),
                            conversation: Some(conv::Conversation {
                                inbox_id: inbox.clone(),
                                ..Default::default()
                            }),
                            ..Default::default()
                        }),
                        ..Default::default()
                    },
                )
                .await?;
                (r.matched != open).then_some(())
            })
            .await
        }
    };
    inbox_hours(&p, &inbox.id, false).await;
    knows(false)
        .await
        .expect("the closed hours reach automation");
    let (after_hours, v1) = p.chat(&inbox, "hello?", &[]).await;
    let told = eventually(WAIT, || async {
        (customer_reads(&p, &after_hours, &v1, CLOSED).await == 1).then_some(())
    })
    .await;
    assert!(told.is_some(), "out of hours, the customer is told");

    inbox_hours(&p, &inbox.id, true).await;
    knows(true).await.expect("the open hours reach automation");
    let (open, v2) = p.chat(&inbox, "hello!", &[]).await;
    let seen = eventually(WAIT, || async {
        p.conversation(&open)
            .await
            .labels
            .contains(&"seen".to_string())
            .then_some(())
    })
    .await;
    assert!(seen.is_some(), "the rules ran on the chat");
    assert_eq!(
        customer_reads(&p, &open, &v2, CLOSED).await,
        0,
        "open: no notice"
    );
    assert_eq!(customer_reads(&p, &after_hours, &v1, CLOSED).await, 1);
    p.stop().await;
}

/// Sets the conversation's priority as a supervisor.
async fn prioritize(p: &Platform, chat: &str, priority: conv::Priority) {
    p.conv()
        .await
        .update_conversation(authed(
            conv::UpdateConversationRequest {
                conversation: Some(conv::Conversation {
                    id: chat.into(),
                    priority: priority as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["priority".into()],
                }),
            },
            &p.supervisor(),
        ))
        .await
        .expect("priority");
}

#[tokio::test]
async fn a_changed_condition_fires_on_the_change_it_names_only() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    let escalated = rule_with(
        &p,
        Rule {
            name: "Escalated".into(),
            active: true,
            event: "conversation.updated".into(),
            conditions: all(vec![Condition {
                kind: Some(condition::Kind::Predicate(Predicate {
                    attribute: "conversation.priority".into(),
                    operator: Operator::Changed as i32,
                    to_value: "urgent".into(),
                    ..Default::default()
                })),
            }]),
            actions: vec![labels(true, &["escalated"])],
            ..Default::default()
        },
    )
    .await;
    let (chat, _) = p.chat(&inbox, "it is broken", &[]).await;
    // Wait until automation has seen the conversation (its first state).
    let known = eventually(WAIT, || {
        dry_run(
            &p,
            DryRunRuleRequest {
                rule_id: escalated.id.clone(),
                conversation_id: chat.clone(),
                ..Default::default()
            },
        )
    })
    .await;
    assert!(known.is_some());
    prioritize(&p, &chat, conv::Priority::High).await;
    prioritize(&p, &chat, conv::Priority::Urgent).await;
    let fired = wait_runs(&p, &escalated.id, RunOutcome::Fired, 1).await;
    assert!(
        p.conversation(&chat)
            .await
            .labels
            .contains(&"escalated".to_string())
    );
    // Urgent again, and the rule's own label: neither is a change to urgent.
    prioritize(&p, &chat, conv::Priority::Urgent).await;
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(
        count(&runs(&p, &escalated.id).await, RunOutcome::Fired),
        count(&fired, RunOutcome::Fired),
        "no change to urgent, no run"
    );
    p.stop().await;
}

#[tokio::test]
async fn a_rule_applies_a_macro_as_its_own_actions_once() {
    let p = Platform::start(1).await;
    let inbox = p.inbox().await;
    let admin = p.admin();
    const HANDOVER: &str = "Hi {{contact.name}}, a specialist will take over.";
    let vip = p
        .automation()
        .await
        .create_macro(authed(
            CreateMacroRequest {
                r#macro: Some(Macro {
                    name: "VIP care".into(),
                    actions: vec![labels(true, &["vip-care"]), say(HANDOVER)],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("macro")
        .into_inner();
    let apply = |id: &str| Action {
        kind: Some(action::Kind::ApplyMacro(id.into())),
    };
    // A macro cannot apply a macro; a rule names a macro by its id.
    let nested = p
        .automation()
        .await
        .create_macro(authed(
            CreateMacroRequest {
                r#macro: Some(Macro {
                    name: "Nested".into(),
                    actions: vec![apply(&vip.id)],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("nested macro");
    assert_eq!(
        helpdesk_kit::grpc::violated_fields(&nested),
        ["macro.actions[0]"]
    );
    let bad = p
        .automation()
        .await
        .create_rule(authed(
            CreateRuleRequest {
                rule: Some(Rule {
                    name: "Bad".into(),
                    event: "message.incoming".into(),
                    actions: vec![apply("not-an-id")],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect_err("not an id");
    assert_eq!(
        helpdesk_kit::grpc::violated_fields(&bad),
        ["rule.actions[0].apply_macro"]
    );
    let rule = rule(
        &p,
        "VIPs get VIP care",
        "message.incoming",
        vec![pred("contact.vip_level", Operator::EqualTo, &["gold"])],
        vec![apply(&vip.id)],
    )
    .await;
    let (chat, visitor) = p.chat(&inbox, "hello", &[("vip_level", "gold")]).await;
    let fired = wait_runs(&p, &rule.id, RunOutcome::Fired, 1).await;
    let run = fired
        .iter()
        .find(|r| r.outcome == RunOutcome::Fired as i32)
        .expect("fired");
    let names: Vec<&str> = run.actions.iter().map(|a| a.action.as_str()).collect();
    assert_eq!(
        names,
        [
            "apply_macro VIP care: add_labels",
            "apply_macro VIP care: send_message"
        ]
    );
    assert!(run.actions.iter().all(|a| a.ok), "{run:?}");
    assert!(
        p.conversation(&chat)
            .await
            .labels
            .contains(&"vip-care".to_string())
    );
    let text = "Hi Visitor, a specialist will take over.";
    assert_eq!(customer_reads(&p, &chat, &visitor, text).await, 1);
    // The customer writes again: a new event, a new run, the macro's message again.
    customer_says(&p, &chat, &visitor, "still there?").await;
    wait_runs(&p, &rule.id, RunOutcome::Fired, 2).await;
    assert_eq!(customer_reads(&p, &chat, &visitor, text).await, 2);
    p.stop().await;
}

#[tokio::test]
async fn a_rule_moves_a_chat_to_a_team_whose_member_takes_it() {
    let p = Platform::start(1).await;
    let billing = p.team("billing").await;
    p.agent("ana", 3, &[], &[]).await;
    p.agent("bo", 3, &[&billing], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, visitor) = p.chat(&inbox, "hello", &[]).await;
    assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("ana"));
    p.presence("bo", Presence::Online).await;
    let to_billing = rule(
        &p,
        "Invoices go to billing",
        "message.incoming",
        vec![pred("message.content", Operator::Contains, &["invoice"])],
        vec![Action {
            kind: Some(action::Kind::AssignTeam(billing.id.clone())),
        }],
    )
    .await;
    customer_says(&p, &chat, &visitor, "A question about my invoice").await;
    let runs = wait_runs(&p, &to_billing.id, RunOutcome::Fired, 1).await;
    assert!(runs[0].actions.iter().all(|a| a.ok), "{runs:?}");
    let moved = eventually(WAIT, || async {
        let c = p.conversation(&chat).await;
        (c.team_id == billing.id && c.assignee_id == "bo").then_some(())
    })
    .await;
    assert!(moved.is_some(), "billing's member has it now");
    assert_eq!(p.assignee(&chat).await.as_deref(), Some("bo"));
    p.stop().await;
}
