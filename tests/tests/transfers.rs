//! Transfers with a handshake, across the routing and conversation services, against
//! real NATS and PostgreSQL.

use std::time::Duration;

use helpdesk_kit::auth::Role;
use helpdesk_kit::grpc::violated_fields;
use helpdesk_kit::testing::stream_events;
use helpdesk_proto::conversation::v1::{ActivityType, MessageKind};
use helpdesk_proto::routing::v1::*;
use helpdesk_tests::platform::{Platform, authed, eventually};
use prost::Message as _;
use tonic::Code;

const WAIT: Duration = Duration::from_secs(20);

/// A transfer call as `agent` (an agent's token).
async fn as_agent(
    p: &Platform,
    agent: &str,
) -> (
    routing_service_client::RoutingServiceClient<tonic::transport::Channel>,
    String,
) {
    (p.routing(0).await, p.token(agent, Role::Agent))
}

async fn request(
    p: &Platform,
    by: &str,
    conversation: &str,
    to: &str,
    note: &str,
) -> Result<Transfer, tonic::Status> {
    let req = RequestTransferRequest {
        conversation_id: conversation.into(),
        to_agent_id: to.into(),
        note: note.into(),
        ..Default::default()
    };
    send_request(p, by, req).await
}

/// `RequestTransfer` as `by`.
async fn send_request(
    p: &Platform,
    by: &str,
    req: RequestTransferRequest,
) -> Result<Transfer, tonic::Status> {
    let (mut r, token) = as_agent(p, by).await;
    r.request_transfer(authed(req, &token))
        .await
        .map(|r| r.into_inner())
}

async fn accept(p: &Platform, by: &str, transfer: &str) -> Result<Transfer, tonic::Status> {
    let (mut r, token) = as_agent(p, by).await;
    r.accept_transfer(authed(
        AcceptTransferRequest {
            transfer_id: transfer.into(),
        },
        &token,
    ))
    .await
    .map(|r| r.into_inner())
}

async fn reject(
    p: &Platform,
    by: &str,
    transfer: &str,
    reason: &str,
) -> Result<Transfer, tonic::Status> {
    let (mut r, token) = as_agent(p, by).await;
    r.reject_transfer(authed(
        RejectTransferRequest {
            transfer_id: transfer.into(),
            reason: reason.into(),
        },
        &token,
    ))
    .await
    .map(|r| r.into_inner())
}

async fn cancel(p: &Platform, by: &str, transfer: &str) -> Result<Transfer, tonic::Status> {
    let (mut r, token) = as_agent(p, by).await;
    r.cancel_transfer(authed(
        CancelTransferRequest {
            transfer_id: transfer.into(),
        },
        &token,
    ))
    .await
    .map(|r| r.into_inner())
}

async fn transfers_of(p: &Platform, conversation: &str) -> Vec<Transfer> {
    p.routing(0)
        .await
        .list_transfers(authed(
            ListTransfersRequest {
                conversation_id: conversation.into(),
            },
            &p.supervisor(),
        ))
        .await
        .expect("list transfers")
        .into_inner()
        .transfers
}

/// Open assignments per agent, from routing's own table.
async fn seats(p: &Platform, agent: &str) -> i64 {
    sqlx::query_scalar("SELECT count(*) FROM assignments WHERE agent_id = $1")
        .bind(agent)
        .fetch_one(&p.routers[0].pool)
        .await
        .expect("seats")
}

#[tokio::test]
async fn a_transfer_waits_for_the_receiver_then_moves_the_chat_and_both_seats() {
    let p = Platform::start(1).await;
    let sales = p.team("sales").await;
    p.routing(0)
        .await
        .create_routing_rule(authed(
            CreateRoutingRuleRequest {
                rule: Some(RoutingRule {
                    name: "sales".into(),
                    condition: Some(RuleCondition {
                        keywords: vec!["buy".into()],
                        ..Default::default()
                    }),
                    target_team_id: sales.id.clone(),
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("rule");
    p.agent("ana", 1, &[&sales], &[]).await;
    p.agent("bob", 1, &[], &[]).await;
    p.agent("carol", 1, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, visitor) = p.chat(&inbox, "my order is late", &[]).await;
    assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("ana"));
    // A sales chat waits for Ana's seat; Bob (not in sales) comes online.
    let (sale, _) = p.chat(&inbox, "I want to buy", &[]).await;
    eventually(WAIT, || async { p.is_queued(&sale).await.then_some(()) })
        .await
        .expect("the sales chat waits");
    p.presence("bob", Presence::Online).await;

    // Offers to an offline agent, by someone else's agent, or of a chat without an
    // agent are refused.
    let e = request(&p, "ana", &chat, "carol", "")
        .await
        .expect_err("carol is offline");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = request(&p, "bob", &chat, "bob", "")
        .await
        .expect_err("not bob's chat");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = request(&p, "ana", &sale, "bob", "")
        .await
        .expect_err("queued, no agent");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = request(&p, "ana", &chat, "", "")
        .await
        .expect_err("no receiver");
    assert_eq!(violated_fields(&e), vec!["to_agent_id"], "{e:?}");
    let e = request(&p, "ana", &chat, "bob", &"x".repeat(2_001))
        .await
        .expect_err("a note too long");
    assert_eq!(violated_fields(&e), vec!["note"], "{e:?}");
    let e = request(&p, "ana", "not-a-uuid", "bob", "")
        .await
        .expect_err("a malformed id");
    assert_eq!(violated_fields(&e), vec!["conversation_id"], "{e:?}");
    let e = accept(&p, "bob", "not-a-uuid")
        .await
        .expect_err("a malformed id");
    assert_eq!(violated_fields(&e), vec!["transfer_id"], "{e:?}");

    // Who could take it: Bob only (Ana has it, Carol is offline).
    let targets = recommend(&p, &chat).await;
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert_eq!(targets[0].agent_id, "bob");
    assert!(
        targets[0].reasons.contains(&"0 of 1 chats".to_string()),
        "{targets:?}"
    );
    assert!(!targets[0].declined_recently);
    let note = "Order #1042 is late; refund approved by finance, please follow up.";
    let t = request(&p, "ana", &chat, "bob", note)
        .await
        .expect("requested");
    assert_eq!(t.state, TransferState::Pending as i32);
    assert_eq!(
        (t.from_agent_id.as_str(), t.to_agent_id.as_str()),
        ("ana", "bob")
    );
    let wait = t.deadline.as_ref().map(|d| d.seconds).unwrap_or_default()
        - t.request_time
            .as_ref()
            .map(|d| d.seconds)
            .unwrap_or_default();
    assert_eq!(wait, 30, "the default deadline is 30 s");
    // Until Bob accepts, Ana keeps the chat and her seat.
    assert_eq!(p.assignee(&chat).await.as_deref(), Some("ana"));
    assert_eq!((seats(&p, "ana").await, seats(&p, "bob").await), (1, 0));
    let e = request(&p, "ana", &chat, "bob", "again")
        .await
        .expect_err("one at a time");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = accept(&p, "carol", &t.id)
        .await
        .expect_err("not carol's offer");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let e = cancel(&p, "bob", &t.id)
        .await
        .expect_err("only the sender cancels");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");

    // The customer keeps writing meanwhile; Bob reads all of it before accepting.
    let mid: Vec<String> = (1..=3).map(|i| format!("still there? ({i})")).collect();
    for line in &mid {
        say(&p, &visitor, text(&chat, line))
            .await
            .expect("the customer writes mid-transfer");
    }
    let before = p.transcript(&chat, &p.token("bob", Role::Agent)).await;
    for line in &mid {
        assert!(
            before.iter().any(|m| &m.content == line),
            "{line} reaches the receiver"
        );
    }

    let done = accept(&p, "bob", &t.id).await.expect("accepted");
    assert_eq!(done.state, TransferState::Accepted as i32);
    assert!(done.decide_time.is_some());
    assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("bob"));
    // Ana's freed seat goes to the waiting sales chat.
    assert_eq!(p.wait_assigned(&sale, WAIT).await.as_deref(), Some("ana"));
    assert_eq!((seats(&p, "ana").await, seats(&p, "bob").await), (1, 1));
    let e = accept(&p, "bob", &t.id).await.expect_err("once");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // The customer is told of the transfer and sees Bob join, never the note.
    let joined = eventually(WAIT, || async {
        let messages = p.transcript(&chat, &visitor).await;
        messages
            .iter()
            .any(|m| m.content == "Agent bob joined the conversation")
            .then_some(messages)
    })
    .await
    .expect("the customer sees the new agent join");
    let told: Vec<&str> = joined.iter().map(|m| m.content.as_str()).collect();
    let transferring = told
        .iter()
        .position(|c| *c == "Transferring you to another agent…");
    let bob_joined = told
        .iter()
        .position(|c| *c == "Agent bob joined the conversation");
    assert!(
        transferring.is_some() && transferring < bob_joined,
        "{told:?}"
    );
    assert!(
        joined
            .iter()
            .all(|m| !m.content.contains("refund approved"))
    );
    assert!(joined.iter().all(|m| m.kind != MessageKind::Note as i32));
    // Staff read each step as a note, the sender's note included.
    let staff = eventually(WAIT, || async {
        let messages = p.transcript(&chat, &p.supervisor()).await;
        messages
            .iter()
            .any(|m| m.activity == ActivityType::TransferAccept as i32)
            .then_some(messages)
    })
    .await
    .expect("staff read the acceptance");
    let request_note = staff
        .iter()
        .find(|m| m.kind == MessageKind::Note as i32 && m.activity == ActivityType::Transfer as i32)
        .expect("the request as a note");
    assert_eq!(
        request_note.content,
        format!("ana asked bob to take this conversation: {note}")
    );

    // The history and the events.
    let history = transfers_of(&p, &chat).await;
    assert_eq!(history.len(), 1);
    assert_eq!(history[0].state, TransferState::Accepted as i32);
    let events = stream_events(&p.env, "*.transfer.>", 2).await;
    let requested = events
        .iter()
        .find(|m| m.subject.ends_with(".transfer.requested"))
        .map(|m| TransferRequested::decode(m.payload.clone()).expect("decodes"))
        .expect("transfer.requested published");
    assert_eq!(requested.transfer.expect("transfer").note, note);
    assert!(
        events
            .iter()
            .any(|m| m.subject.ends_with(".transfer.accepted")),
        "transfer.accepted published"
    );
    p.stop().await;
}

/// A platform where Ana (online) serves a visitor's chat and Bob is online with a free
/// seat: (platform, conversation, visitor token).
async fn ana_serving_bob_free(seats: i32) -> (Platform, String, String) {
    let p = Platform::start(1).await;
    p.agent("ana", seats, &[], &[]).await;
    p.agent("bob", seats, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, visitor) = p.chat(&inbox, "hello", &[]).await;
    assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("ana"));
    p.presence("bob", Presence::Online).await;
    (p, chat, visitor)
}

#[tokio::test]
async fn rejected_cancelled_and_abandoned_offers_leave_the_chat_with_its_agent() {
    let (p, chat, visitor) = ana_serving_bob_free(2).await;

    // Rejected with a reason.
    let t = request(&p, "ana", &chat, "bob", "")
        .await
        .expect("requested");
    let e = reject(&p, "bob", &t.id, &"x".repeat(501))
        .await
        .expect_err("a reason too long");
    assert_eq!(violated_fields(&e), vec!["reason"], "{e:?}");
    let done = reject(&p, "bob", &t.id, "I do not speak German")
        .await
        .expect("rejected");
    assert_eq!(done.state, TransferState::Rejected as i32);
    assert_eq!(done.reason, "I do not speak German");
    // Bob now ranks as having declined it.
    let targets = recommend(&p, &chat).await;
    assert_eq!(targets.len(), 1, "{targets:?}");
    assert!(targets[0].declined_recently, "{targets:?}");
    // The customer is told they stay; staff read why.
    let staying = eventually(WAIT, || async {
        let messages = p.transcript(&chat, &visitor).await;
        messages
            .iter()
            .any(|m| m.content == "You are staying with your current agent.")
            .then_some(messages)
    })
    .await
    .expect("the customer learns the agent stays");
    assert!(staying.iter().all(|m| !m.content.contains("German")));
    let declined = eventually(WAIT, || async {
        p.transcript(&chat, &p.supervisor())
            .await
            .into_iter()
            .find(|m| {
                m.activity == ActivityType::TransferReject as i32
                    && m.kind == MessageKind::Note as i32
            })
    })
    .await
    .expect("staff read the decline");
    assert_eq!(
        declined.content,
        "bob declined the transfer: I do not speak German"
    );
    // Cancelled by the sender.
    let t = request(&p, "ana", &chat, "bob", "")
        .await
        .expect("requested again");
    let done = cancel(&p, "ana", &t.id).await.expect("cancelled");
    assert_eq!(done.state, TransferState::Cancelled as i32);
    // The receiver going away rejects the offer: an offer is only ever open to an
    // agent who can take it.
    let t = request(&p, "ana", &chat, "bob", "")
        .await
        .expect("requested a third time");
    p.presence("bob", Presence::Away).await;
    let states: Vec<i32> = transfers_of(&p, &chat)
        .await
        .iter()
        .map(|t| t.state)
        .collect();
    assert_eq!(
        states,
        vec![
            TransferState::Rejected as i32,
            TransferState::Cancelled as i32,
            TransferState::Rejected as i32
        ]
    );
    let e = accept(&p, "bob", &t.id).await.expect_err("no longer open");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    // A pending offer ends when the chat is resolved.
    p.presence("bob", Presence::Online).await;
    request(&p, "ana", &chat, "bob", "")
        .await
        .expect("requested a fourth time");
    p.set_status(
        &chat,
        helpdesk_proto::conversation::v1::ConversationStatus::Resolved,
    )
    .await;
    let cancelled = eventually(WAIT, || async {
        let last = transfers_of(&p, &chat).await.pop()?;
        (last.state == TransferState::Cancelled as i32).then_some(())
    })
    .await;
    assert!(cancelled.is_some(), "resolving the chat cancels the offer");
    assert_eq!((seats(&p, "ana").await, seats(&p, "bob").await), (0, 0));

    // The period's figures for Bob: four offers, none taken, and why.
    let start = chrono::Utc::now() - chrono::Duration::hours(1);
    let stats = p
        .routing(0)
        .await
        .get_transfer_stats(authed(
            GetTransferStatsRequest {
                start_time: Some(helpdesk_kit::time::to_timestamp(start)),
                ..Default::default()
            },
            &p.supervisor(),
        ))
        .await
        .expect("stats")
        .into_inner()
        .rows;
    assert_eq!(stats.len(), 1, "{stats:?}");
    let bob = &stats[0];
    assert_eq!(
        (
            bob.key.as_str(),
            bob.offers,
            bob.accepted,
            bob.rejected,
            bob.cancelled
        ),
        ("bob", 4, 0, 2, 2)
    );
    assert_eq!(bob.success_rate, 0.0);
    let reasons: Vec<(&str, i64)> = bob
        .reject_reasons
        .iter()
        .map(|r| (r.reason.as_str(), r.count))
        .collect();
    assert_eq!(
        reasons,
        vec![
            ("I do not speak German", 1),
            ("the receiver went offline", 1)
        ]
    );
    let (mut r, agent) = as_agent(&p, "bob").await;
    let e = r
        .get_transfer_stats(authed(GetTransferStatsRequest::default(), &agent))
        .await
        .expect_err("supervisors only");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    p.stop().await;
}

#[tokio::test]
async fn an_unanswered_offer_times_out_once_even_across_a_restart() {
    let (mut p, chat, _) = ana_serving_bob_free(1).await;
    p.settings(RoutingSettings {
        transfer_timeout_seconds: 2,
        ..Default::default()
    })
    .await;
    let t = request(&p, "ana", &chat, "bob", "")
        .await
        .expect("requested");
    // Routing restarts before the deadline; the new process fires the timer.
    p.restart_router(0).await;
    let timed_out = eventually(WAIT, || async {
        let last = transfers_of(&p, &chat).await.pop()?;
        (last.state == TransferState::TimedOut as i32).then_some(last)
    })
    .await
    .expect("the offer times out");
    assert_eq!(timed_out.id, t.id);
    assert_eq!(
        p.assignee(&chat).await.as_deref(),
        Some("ana"),
        "Ana keeps it"
    );
    let e = accept(&p, "bob", &t.id).await.expect_err("too late");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    tokio::time::sleep(Duration::from_secs(1)).await;
    let events = stream_events(&p.env, "*.transfer.timed_out", 1).await;
    assert_eq!(events.len(), 1, "timed out once");
    p.stop().await;
}

/// The next transfer on a watch, within [`WAIT`].
async fn next_on(watch: &mut tonic::Streaming<Transfer>) -> Transfer {
    tokio::time::timeout(WAIT, watch.message())
        .await
        .expect("a transfer within the wait")
        .expect("the stream stays up")
        .expect("the stream stays open")
}

async fn watch_as(
    p: &Platform,
    agent: &str,
    of: &str,
) -> Result<tonic::Streaming<Transfer>, tonic::Status> {
    let (mut r, token) = as_agent(p, agent).await;
    r.watch_transfers(authed(
        WatchTransfersRequest {
            agent_id: of.into(),
        },
        &token,
    ))
    .await
    .map(|r| r.into_inner())
}

#[tokio::test]
async fn the_receiver_sees_offers_live_with_their_deadline_and_their_end() {
    let (p, chat, _) = ana_serving_bob_free(1).await;
    let mut bob = watch_as(&p, "bob", "").await.expect("bob watches");
    let mut ana = watch_as(&p, "ana", "").await.expect("ana watches");

    let t = request(&p, "ana", &chat, "bob", "VIP customer")
        .await
        .expect("requested");
    let offer = next_on(&mut bob).await;
    assert_eq!(
        (offer.id.as_str(), offer.state),
        (t.id.as_str(), TransferState::Pending as i32)
    );
    assert_eq!(offer.note, "VIP customer");
    assert_eq!(offer.deadline, t.deadline, "the receiver sees the deadline");
    assert_eq!(
        next_on(&mut ana).await.id,
        t.id,
        "the sender sees its request"
    );
    // A workbench opened later shows the open offer at once.
    let mut late = watch_as(&p, "bob", "").await.expect("bob again");
    assert_eq!(next_on(&mut late).await.id, t.id);
    // Agents watch only their own; supervisors anyone's.
    let e = watch_as(&p, "ana", "bob").await.expect_err("not ana's");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let (mut r, sup) = (p.routing(0).await, p.supervisor());
    let mut watching = r
        .watch_transfers(authed(
            WatchTransfersRequest {
                agent_id: "bob".into(),
            },
            &sup,
        ))
        .await
        .expect("a supervisor watches bob")
        .into_inner();
    assert_eq!(next_on(&mut watching).await.id, t.id);

    reject(&p, "bob", &t.id, "busy").await.expect("rejected");
    let ended = next_on(&mut bob).await;
    assert_eq!(
        (ended.id.as_str(), ended.state),
        (t.id.as_str(), TransferState::Rejected as i32)
    );
    let told = next_on(&mut ana).await;
    assert_eq!(
        told.state,
        TransferState::Rejected as i32,
        "the sender learns at once"
    );
    assert_eq!(told.reason, "busy");
    p.stop().await;
}

async fn request_team(
    p: &Platform,
    by: &str,
    conversation: &str,
    team: &str,
) -> Result<Transfer, tonic::Status> {
    let req = RequestTransferRequest {
        conversation_id: conversation.into(),
        to_team_id: team.into(),
        note: "needs a specialist".into(),
        ..Default::default()
    };
    send_request(p, by, req).await
}

#[tokio::test]
async fn a_team_transfer_goes_agent_after_agent_never_back_to_one_who_declined() {
    let (p, chat, visitor) = ana_serving_bob_free(1).await;
    p.settings(RoutingSettings {
        transfer_timeout_seconds: 2,
        ..Default::default()
    })
    .await;
    let support = p.team("support").await;
    for (agent, online) in [("carol", true), ("dan", true), ("erin", false)] {
        p.agent(agent, 1, &[&support], &[]).await;
        if online {
            p.presence(agent, Presence::Online).await;
        }
    }
    // Bad targets name their field.
    let unknown = uuid::Uuid::new_v4().to_string();
    let e = request_team(&p, "ana", &chat, &unknown)
        .await
        .expect_err("unknown team");
    assert_eq!(violated_fields(&e), vec!["to_team_id"], "{e:?}");
    let both = RequestTransferRequest {
        conversation_id: chat.clone(),
        to_agent_id: "bob".into(),
        to_team_id: support.id.clone(),
        ..Default::default()
    };
    let e = send_request(&p, "ana", both).await.expect_err("both");
    assert_eq!(violated_fields(&e), vec!["to_team_id"], "{e:?}");

    // Offered to one of the team's online agents (never Erin, offline; never Bob, not in
    // the team); the first declines, the second does not answer.
    let first = request_team(&p, "ana", &chat, &support.id)
        .await
        .expect("requested");
    assert!(
        ["carol", "dan"].contains(&first.to_agent_id.as_str()),
        "{first:?}"
    );
    assert_eq!(first.to_team_id, support.id);
    let second_agent = if first.to_agent_id == "carol" {
        "dan"
    } else {
        "carol"
    };
    reject(&p, &first.to_agent_id, &first.id, "not my area")
        .await
        .expect("declined");
    let chain = transfers_of(&p, &chat).await;
    assert_eq!(chain.len(), 2, "{chain:?}");
    assert_eq!(chain[0].state, TransferState::Rejected as i32);
    assert_eq!(chain[0].next_transfer_id, chain[1].id);
    assert_eq!(chain[1].state, TransferState::Pending as i32);
    assert_eq!(
        chain[1].to_agent_id, second_agent,
        "the next agent of the team"
    );
    assert_eq!(chain[1].previous_transfer_id, first.id);
    assert_eq!(chain[1].declined_by, vec![first.to_agent_id.clone()]);
    assert_eq!(chain[1].note, "needs a specialist");
    let exhausted = eventually(WAIT, || async {
        let last = transfers_of(&p, &chat).await.pop()?;
        (last.state == TransferState::TimedOut as i32).then_some(last)
    })
    .await
    .expect("the second offer times out");
    assert!(
        exhausted.exhausted,
        "nobody else in the team: {exhausted:?}"
    );
    assert_eq!(
        transfers_of(&p, &chat).await.len(),
        2,
        "never back to the first"
    );
    assert_eq!(
        p.assignee(&chat).await.as_deref(),
        Some("ana"),
        "Ana keeps it"
    );

    // The customer was told once that a transfer was under way, and once that Ana stays.
    let told = eventually(WAIT, || async {
        let messages = p.transcript(&chat, &visitor).await;
        let staying = messages
            .iter()
            .filter(|m| m.content == "You are staying with your current agent.")
            .count();
        (staying > 0).then_some(messages)
    })
    .await
    .expect("the customer learns Ana stays");
    let count = |text: &str| told.iter().filter(|m| m.content == text).count();
    assert_eq!(count("Transferring you to another agent…"), 1);
    assert_eq!(count("You are staying with your current agent."), 1);
    let notes = p.transcript(&chat, &p.supervisor()).await;
    assert!(
        notes
            .iter()
            .any(|m| m.content.ends_with("nobody else in the team could take it")),
        "{notes:?}"
    );

    // With nobody of the team free, a team transfer is refused at once.
    for agent in ["carol", "dan"] {
        p.presence(agent, Presence::Away).await;
    }
    let e = request_team(&p, "ana", &chat, &support.id)
        .await
        .expect_err("nobody free");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Ana chooses to leave the chat in the team's queue instead of keeping it: only
    // after the last offer, only she (or a supervisor).
    let e = leave_in_queue(&p, "ana", &first.id)
        .await
        .expect_err("not the last offer");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = leave_in_queue(&p, "bob", &exhausted.id)
        .await
        .expect_err("not bob's");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    leave_in_queue(&p, "ana", &exhausted.id)
        .await
        .expect("left in the queue");
    assert!(p.assignee(&chat).await.is_none());
    assert_eq!(seats(&p, "ana").await, 0, "Ana's seat is free");
    let entry = p
        .routing(0)
        .await
        .list_queue(authed(ListQueueRequest::default(), &p.supervisor()))
        .await
        .expect("queue")
        .into_inner()
        .entries
        .into_iter()
        .find(|e| e.conversation_id == chat)
        .expect("queued");
    assert_eq!(entry.team_id, support.id, "in the team's queue");
    let since = entry.enqueue_time.map(|t| (t.seconds, t.nanos));
    let asked = first.request_time.map(|t| (t.seconds, t.nanos));
    assert!(
        since < asked,
        "it waits from when the customer first did, not from now"
    );
    // The first of the team to come back takes it.
    p.presence("dan", Presence::Online).await;
    assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("dan"));
    p.stop().await;
}

async fn leave_in_queue(p: &Platform, by: &str, transfer: &str) -> Result<(), tonic::Status> {
    let (mut r, token) = as_agent(p, by).await;
    r.leave_in_team_queue(authed(
        LeaveInTeamQueueRequest {
            transfer_id: transfer.into(),
        },
        &token,
    ))
    .await
    .map(|_| ())
}

async fn recommend(p: &Platform, conversation: &str) -> Vec<TransferTarget> {
    let (mut r, token) = as_agent(p, "ana").await;
    r.recommend_transfer_targets(authed(
        RecommendTransferTargetsRequest {
            conversation_id: conversation.into(),
            ..Default::default()
        },
        &token,
    ))
    .await
    .expect("recommendations")
    .into_inner()
    .targets
}

#[tokio::test]
async fn a_note_template_is_filled_in_for_the_receiver() {
    let (p, chat, _) = ana_serving_bob_free(1).await;
    let mut r = p.routing(0).await;
    let listed = r
        .list_transfer_templates(authed(
            ListTransferTemplatesRequest::default(),
            &p.token("ana", Role::Agent),
        ))
        .await
        .expect("templates")
        .into_inner()
        .templates;
    let ids: Vec<&str> = listed.iter().map(|t| t.id.as_str()).collect();
    assert_eq!(ids, vec!["technical", "complaint", "vip", "after_sales"]);
    assert_eq!(
        listed[2].fields,
        vec![
            "customer_problem",
            "what_was_tried",
            "customer_situation",
            "urgency"
        ]
    );
    // Admins add their own; nobody else, and not twice; built-ins stay.
    let refund = TransferTemplate {
        id: "refund".into(),
        name: "Refund".into(),
        fields: vec!["order_number".into(), "amount".into()],
        ..Default::default()
    };
    let create = |t: TransferTemplate, token: String| {
        let mut r = r.clone();
        async move {
            r.create_transfer_template(authed(
                CreateTransferTemplateRequest { template: Some(t) },
                &token,
            ))
            .await
        }
    };
    create(refund.clone(), p.admin()).await.expect("created");
    let e = create(refund.clone(), p.admin()).await.expect_err("twice");
    assert_eq!(e.code(), Code::AlreadyExists, "{e:?}");
    let e = create(refund.clone(), p.token("ana", Role::Agent))
        .await
        .expect_err("agents do not");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    let bad = TransferTemplate {
        id: "Bad Id".into(),
        ..refund.clone()
    };
    let e = create(bad, p.admin()).await.expect_err("bad id");
    assert_eq!(violated_fields(&e), vec!["template.id"], "{e:?}");
    let e = r
        .delete_transfer_template(authed(
            DeleteTransferTemplateRequest { id: "vip".into() },
            &p.admin(),
        ))
        .await
        .expect_err("built-in");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // Only the template's fields, and only with a template.
    let with = |template: &str, fields: &[(&str, &str)]| RequestTransferRequest {
        conversation_id: chat.clone(),
        to_agent_id: "bob".into(),
        template_id: template.into(),
        fields: fields
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
        ..Default::default()
    };
    let e = send_request(&p, "ana", with("nope", &[]))
        .await
        .expect_err("unknown");
    assert_eq!(violated_fields(&e), vec!["template_id"], "{e:?}");
    let e = send_request(&p, "ana", with("refund", &[("mood", "angry")]))
        .await
        .expect_err("not a field");
    assert_eq!(violated_fields(&e), vec!["fields[mood]"], "{e:?}");
    let e = send_request(&p, "ana", with("", &[("amount", "12")]))
        .await
        .expect_err("no template");
    assert_eq!(violated_fields(&e), vec!["fields"], "{e:?}");

    let mut offers = watch_as(&p, "bob", "").await.expect("bob watches");
    let t = send_request(
        &p,
        "ana",
        with(
            "refund",
            &[("order_number", "1042"), ("amount", "49.90 EUR")],
        ),
    )
    .await
    .expect("requested");
    let offer = next_on(&mut offers).await;
    assert_eq!(
        (offer.id.as_str(), offer.template_id.as_str()),
        (t.id.as_str(), "refund")
    );
    assert_eq!(
        offer.fields.get("order_number").map(String::as_str),
        Some("1042")
    );
    // Staff read the fields in the conversation.
    let note = eventually(WAIT, || async {
        p.transcript(&chat, &p.supervisor())
            .await
            .into_iter()
            .find(|m| {
                m.kind == MessageKind::Note as i32 && m.activity == ActivityType::Transfer as i32
            })
    })
    .await
    .expect("the request as a note");
    assert_eq!(
        note.content,
        "ana asked bob to take this conversation\nAmount: 49.90 EUR\nOrder number: 1042"
    );
    p.stop().await;
}

#[tokio::test]
async fn a_skill_transfer_goes_to_the_best_level_first_and_only_to_agents_with_the_skill() {
    let (p, chat, _) = ana_serving_bob_free(1).await;
    p.agent("carol", 1, &[], &[("german", 2)]).await;
    p.agent("dan", 1, &[], &[("german", 1)]).await;
    for agent in ["carol", "dan"] {
        p.presence(agent, Presence::Online).await;
    }
    let req = |skill: &str| RequestTransferRequest {
        conversation_id: chat.clone(),
        to_skill: skill.into(),
        ..Default::default()
    };
    let e = send_request(&p, "ana", req("Not a skill!"))
        .await
        .expect_err("bad skill");
    assert_eq!(violated_fields(&e), vec!["to_skill"], "{e:?}");
    let e = send_request(&p, "ana", req("klingon"))
        .await
        .expect_err("nobody has it");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let first = send_request(&p, "ana", req("german"))
        .await
        .expect("requested");
    assert_eq!(
        (first.to_agent_id.as_str(), first.to_skill.as_str()),
        ("dan", "german")
    );
    reject(&p, "dan", &first.id, "").await.expect("declined");
    let second = transfers_of(&p, &chat).await.pop().expect("the next offer");
    assert_eq!(
        second.to_agent_id, "carol",
        "the secondary level next; never Bob"
    );
    let last = reject(&p, "carol", &second.id, "").await.expect("declined");
    assert!(last.exhausted, "{last:?}");
    let note = eventually(WAIT, || async {
        p.transcript(&chat, &p.supervisor())
            .await
            .into_iter()
            .find(|m| {
                m.content
                    .ends_with("nobody else with the skill could take it")
            })
    })
    .await;
    assert!(note.is_some(), "staff read that nobody else could take it");
    p.stop().await;
}

/// `RequestTransfer` with `token`.
async fn request_with(
    p: &Platform,
    token: &str,
    req: RequestTransferRequest,
) -> Result<Transfer, tonic::Status> {
    p.routing(0)
        .await
        .request_transfer(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

/// Makes `agent` a supervisor in the directory.
async fn make_supervisor(p: &Platform, agent: &str) {
    p.routing(0)
        .await
        .update_agent(authed(
            UpdateAgentRequest {
                agent: Some(Agent {
                    id: agent.into(),
                    role: StaffRole::Supervisor as i32,
                    ..Default::default()
                }),
                update_mask: Some(prost_types::FieldMask {
                    paths: vec!["role".into()],
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("made a supervisor");
}

#[tokio::test]
async fn the_account_decides_who_transfers_which_chats_to_whom() {
    let p = Platform::start(1).await;
    let sales = p.team("sales").await;
    let support = p.team("support").await;
    p.agent("ana", 2, &[&sales], &[]).await;
    p.presence("ana", Presence::Online).await;
    let inbox = p.inbox().await;
    let (chat, _) = p.chat(&inbox, "hello", &[]).await;
    assert_eq!(p.wait_assigned(&chat, WAIT).await.as_deref(), Some("ana"));
    // Sam supervises sales, Sue supervises support; Bob is an agent in support.
    for (id, team) in [("sam", &sales), ("sue", &support), ("bob", &support)] {
        p.agent(id, 2, &[team], &[]).await;
        if id != "bob" {
            make_supervisor(&p, id).await;
        }
        p.presence(id, Presence::Online).await;
    }
    let to = |agent: &str| RequestTransferRequest {
        conversation_id: chat.clone(),
        to_agent_id: agent.into(),
        ..Default::default()
    };
    let denied = |r: Result<Transfer, tonic::Status>, what: &str| {
        let e = r.expect_err(what);
        assert_eq!(e.code(), Code::PermissionDenied, "{what}: {e:?}");
    };

    // By default an agent may not hand a chat to a supervisor, but may cross teams.
    denied(
        send_request(&p, "ana", to("sam")).await,
        "agent to supervisor",
    );
    let t = send_request(&p, "ana", to("bob"))
        .await
        .expect("to another team");
    // Sue supervises support, not this sales chat: she may neither withdraw Ana's
    // offer nor transfer the chat; Sam, who supervises sales, may do both.
    let sue = p.token("sue", Role::Supervisor);
    let sam = p.token("sam", Role::Supervisor);
    let mut r = p.routing(0).await;
    let withdraw = |id: &str| {
        authed(
            CancelTransferRequest {
                transfer_id: id.into(),
            },
            &sue,
        )
    };
    let e = r
        .cancel_transfer(withdraw(&t.id))
        .await
        .expect_err("not hers");
    assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    cancel(&p, "ana", &t.id)
        .await
        .expect("the sender withdraws");
    denied(
        request_with(&p, &sue, to("bob")).await,
        "another team's chat",
    );
    let t = request_with(&p, &sam, to("sue"))
        .await
        .expect("a supervisor of the chat's team, to a supervisor");
    assert_eq!(
        (t.from_agent_id.as_str(), t.requested_by.as_str()),
        ("ana", "sam")
    );
    let withdrawn = r
        .cancel_transfer(authed(
            CancelTransferRequest {
                transfer_id: t.id.clone(),
            },
            &sam,
        ))
        .await
        .expect("the requester withdraws");
    assert_eq!(
        withdrawn.into_inner().state,
        TransferState::Cancelled as i32
    );

    // A team transfer is never offered to someone the requester may not reach: Sue,
    // a supervisor, is skipped; Bob declines and nobody is left.
    let t = request_team(&p, "ana", &chat, &support.id)
        .await
        .expect("to support");
    assert_eq!(t.to_agent_id, "bob");
    let last = reject(&p, "bob", &t.id, "").await.expect("declined");
    assert!(last.exhausted, "Sue is never offered it: {last:?}");

    // Within their own teams only, supervisors allowed: Ana may reach Sam, not Bob
    // nor support; recommendations show only whom she may reach.
    let policy = TransferPolicy {
        transfer_roles: vec![StaffRole::Agent as i32, StaffRole::Supervisor as i32],
        agents_across_teams: false,
        receiver_roles: vec![StaffRole::Agent as i32, StaffRole::Supervisor as i32],
        agents_to_supervisors: true,
    };
    p.settings(RoutingSettings {
        transfer_policy: Some(policy.clone()),
        ..Default::default()
    })
    .await;
    denied(
        send_request(&p, "ana", to("bob")).await,
        "outside her teams",
    );
    denied(
        request_team(&p, "ana", &chat, &support.id).await,
        "a team she is not in",
    );
    let names: Vec<String> = recommend(&p, &chat)
        .await
        .into_iter()
        .map(|t| t.agent_id)
        .collect();
    assert_eq!(names, vec!["sam".to_string()], "only Sam is within reach");
    let t = send_request(&p, "ana", to("sam"))
        .await
        .expect("a supervisor of her team");
    cancel(&p, "ana", &t.id).await.expect("withdrawn");

    // Only supervisors transfer; only agents receive.
    p.settings(RoutingSettings {
        transfer_policy: Some(TransferPolicy {
            transfer_roles: vec![StaffRole::Supervisor as i32],
            receiver_roles: vec![StaffRole::Agent as i32],
            ..policy
        }),
        ..Default::default()
    })
    .await;
    denied(
        send_request(&p, "ana", to("bob")).await,
        "agents may not transfer",
    );
    denied(
        request_with(&p, &sam, to("sue")).await,
        "supervisors do not receive",
    );
    let t = request_with(&p, &sam, to("bob"))
        .await
        .expect("to an agent");
    accept(&p, "bob", &t.id).await.expect("accepted");
    assert_eq!(p.assignee(&chat).await.as_deref(), Some("bob"));

    // A policy naming a role that does not exist is refused, field named.
    let e = p
        .routing(0)
        .await
        .update_settings(authed(
            UpdateSettingsRequest {
                settings: Some(RoutingSettings {
                    transfer_policy: Some(TransferPolicy {
                        receiver_roles: vec![StaffRole::Agent as i32, 42],
                        ..Default::default()
                    }),
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect_err("unknown role");
    assert_eq!(
        violated_fields(&e),
        vec!["settings.transfer_policy.receiver_roles[1]"],
        "{e:?}"
    );
    p.stop().await;
}

// ---- Bot handoff ----

use helpdesk_proto::conversation::v1 as conv;

/// A bot inbox answered by the integration `faq-bot`, handing over on the menu choice
/// `human` or the default phrases.
async fn bot_inbox(p: &Platform) -> conv::Inbox {
    let inbox = conv::Inbox {
        name: "Help centre".into(),
        channel_kind: conv::ChannelKind::WebWidget as i32,
        bot: Some(conv::InboxBot {
            enabled: true,
            integration_id: "faq-bot".into(),
            handoff_choices: vec!["human".into()],
            ..Default::default()
        }),
        ..Default::default()
    };
    p.conv()
        .await
        .create_inbox(authed(
            conv::CreateInboxRequest { inbox: Some(inbox) },
            &p.admin(),
        ))
        .await
        .expect("bot inbox")
        .into_inner()
}

/// Sends `req` with `token`.
async fn say(
    p: &Platform,
    token: &str,
    req: conv::SendMessageRequest,
) -> Result<conv::Message, tonic::Status> {
    p.conv()
        .await
        .send_message(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

fn text(conversation: &str, content: &str) -> conv::SendMessageRequest {
    conv::SendMessageRequest {
        conversation_id: conversation.into(),
        content: content.into(),
        ..Default::default()
    }
}

async fn hand_off(
    p: &Platform,
    token: &str,
    req: conv::HandoffToHumanRequest,
) -> Result<conv::Conversation, tonic::Status> {
    p.conv()
        .await
        .handoff_to_human(authed(req, token))
        .await
        .map(|r| r.into_inner())
}

/// Routing's projection of the conversation has this status.
async fn routing_sees(p: &Platform, conversation: &str, status: &str) -> bool {
    eventually(WAIT, || async {
        let s: Option<String> =
            sqlx::query_scalar("SELECT status FROM conversations WHERE id = $1::uuid")
                .bind(conversation)
                .fetch_optional(&p.routers[0].pool)
                .await
                .expect("projection");
        (s.as_deref() == Some(status)).then_some(())
    })
    .await
    .is_some()
}

/// The next update on a bot's stream within `limit`.
async fn next_update(
    s: &mut tonic::Streaming<conv::SubscribeResponse>,
    limit: Duration,
) -> Option<conv::subscribe_response::Update> {
    tokio::time::timeout(limit, s.message())
        .await
        .ok()
        .and_then(|m| m.ok().flatten())
        .and_then(|m| m.update)
}

/// The first update on a stream `pick` takes, within [`WAIT`].
async fn first_update<T>(
    s: &mut tonic::Streaming<conv::SubscribeResponse>,
    pick: impl Fn(conv::subscribe_response::Update) -> Option<T>,
) -> Option<T> {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if let Some(found) = next_update(s, Duration::from_millis(500))
            .await
            .and_then(&pick)
        {
            return Some(found);
        }
    }
    None
}

#[tokio::test]
async fn a_bot_answers_first_and_hands_over_with_its_transcript_and_summary() {
    let p = Platform::start(1).await;
    let billing = p.team("billing").await;
    p.agent("ana", 2, &[], &[]).await;
    p.agent("li", 2, &[&billing], &[]).await;
    for a in ["ana", "li"] {
        p.presence(a, Presence::Online).await;
    }
    let inbox = bot_inbox(&p).await;
    assert_eq!(
        inbox.bot.as_ref().map(|b| b.handoff_phrases.clone()),
        Some(vec!["agent".into(), "human".into(), "real person".into()]),
        "a new bot gets the default phrases"
    );
    let bot = p.token("faq-bot", Role::Integration);
    let mut watch = p
        .conv()
        .await
        .subscribe(authed(
            conv::SubscribeRequest {
                inbox_id: inbox.id.clone(),
                as_bot: true,
                ..Default::default()
            },
            &bot,
        ))
        .await
        .expect("the bot watches its conversations")
        .into_inner();

    // The chat starts with the bot: not routed, not queued.
    let (chat, visitor) = p.chat(&inbox, "where is my order?", &[]).await;
    assert_eq!(
        p.conversation(&chat).await.status,
        conv::ConversationStatus::Bot as i32
    );
    assert!(
        routing_sees(&p, &chat, "bot").await,
        "routing knows the chat"
    );
    assert!(!p.is_queued(&chat).await && p.assignee(&chat).await.is_none());

    // The bot hears the customer and answers with a menu.
    say(&p, &visitor, text(&chat, "order 1042"))
        .await
        .expect("the customer writes");
    let heard = first_update(&mut watch, |u| match u {
        conv::subscribe_response::Update::MessageCreated(m) => {
            m.message.filter(|m| m.content == "order 1042").map(|_| ())
        }
        _ => None,
    })
    .await;
    assert!(heard.is_some(), "the bot receives the customer's messages");
    let menu = vec![
        conv::MenuOption {
            id: "track".into(),
            label: "Track my order".into(),
        },
        conv::MenuOption {
            id: "human".into(),
            label: "Talk to a person".into(),
        },
    ];
    let reply = say(
        &p,
        &bot,
        conv::SendMessageRequest {
            menu: menu.clone(),
            ..text(&chat, "It left our warehouse yesterday. Anything else?")
        },
    )
    .await
    .expect("the bot answers");
    assert_eq!(reply.menu, menu);
    assert_eq!(
        reply.sender.as_ref().map(|s| (s.kind, s.id.as_str())),
        Some((helpdesk_proto::common::v1::ActorKind::Bot as i32, "faq-bot"))
    );
    let e = say(
        &p,
        &visitor,
        conv::SendMessageRequest {
            menu: menu.clone(),
            ..text(&chat, "x")
        },
    )
    .await
    .expect_err("visitors offer no menus");
    assert_eq!(violated_fields(&e), vec!["menu"], "{e:?}");

    // Only the inbox's bot or staff hand over; bad input names its fields.
    let over = |summary: &str| conv::HandoffToHumanRequest {
        conversation_id: chat.clone(),
        summary: summary.into(),
        team_id: billing.id.clone(),
        required_skills: Vec::new(),
    };
    for token in [p.token("crm", Role::Integration), visitor.clone()] {
        let e = hand_off(&p, &token, over(""))
            .await
            .expect_err("not the bot");
        assert_eq!(e.code(), Code::PermissionDenied, "{e:?}");
    }
    let e = hand_off(
        &p,
        &bot,
        conv::HandoffToHumanRequest {
            required_skills: vec!["Not a skill".into()],
            ..over(&"x".repeat(4_001))
        },
    )
    .await
    .expect_err("bad input");
    assert_eq!(
        violated_fields(&e),
        vec!["summary", "required_skills[0]"],
        "{e:?}"
    );

    // The handoff: routed to the team the bot named, with the summary for the agent.
    let summary = "Order 1042 is late; the customer wants a refund.";
    let handed = hand_off(&p, &bot, over(summary))
        .await
        .expect("handed over");
    assert_eq!(handed.status, conv::ConversationStatus::Open as i32);
    assert_eq!(
        p.wait_assigned(&chat, WAIT).await.as_deref(),
        Some("li"),
        "billing's agent, not Ana"
    );
    let staff = p.transcript(&chat, &p.supervisor()).await;
    let said: Vec<(i32, &str)> = staff.iter().map(|m| (m.kind, m.content.as_str())).collect();
    for line in [
        (conv::MessageKind::Incoming as i32, "where is my order?"),
        (conv::MessageKind::Incoming as i32, "order 1042"),
        (
            conv::MessageKind::Outgoing as i32,
            "It left our warehouse yesterday. Anything else?",
        ),
        (conv::MessageKind::Note as i32, summary),
        (
            conv::MessageKind::Activity as i32,
            "Connecting you with an agent…",
        ),
    ] {
        assert!(said.contains(&line), "{line:?} in {said:?}");
    }
    let customer = p.transcript(&chat, &visitor).await;
    assert!(
        customer.iter().all(|m| m.content != summary),
        "the customer never reads the summary"
    );

    // The bot is out: it hears nothing more of the chat and may not write in it.
    let handed_over = first_update(&mut watch, |u| match u {
        conv::subscribe_response::Update::ConversationStatusChanged(e)
            if e.from == conv::ConversationStatus::Bot as i32 =>
        {
            e.handoff
        }
        _ => None,
    })
    .await
    .expect("the bot sees its handoff");
    assert_eq!(handed_over.trigger, conv::HandoffTrigger::Bot as i32);
    assert_eq!(handed_over.team_id, billing.id);
    say(&p, &visitor, text(&chat, "hello, anyone?"))
        .await
        .expect("the customer writes on");
    while let Some(u) = next_update(&mut watch, Duration::from_secs(2)).await {
        if let conv::subscribe_response::Update::MessageCreated(m) = &u {
            assert_ne!(
                m.message.as_ref().map(|m| m.conversation_id.as_str()),
                Some(chat.as_str()),
                "the bot stops receiving the chat: {u:?}"
            );
        }
    }
    let e = say(&p, &bot, text(&chat, "still me"))
        .await
        .expect_err("the bot is out");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let e = hand_off(&p, &bot, over(""))
        .await
        .expect_err("handed over once");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");

    // The customer asks for a human in words, or with the menu.
    let (asked, _) = p.chat(&inbox, "Can I talk to a REAL person?", &[]).await;
    let (picked, picker) = p.chat(&inbox, "hi", &[]).await;
    say(
        &p,
        &picker,
        conv::SendMessageRequest {
            menu_choice: "human".into(),
            ..text(&picked, "Talk to a person")
        },
    )
    .await
    .expect("picked from the menu");
    for (c, said) in [
        (&asked, "asked for a person"),
        (&picked, "picked \"human\""),
    ] {
        assert!(
            p.wait_assigned(c, WAIT).await.is_some(),
            "routed after the customer asked"
        );
        let notes = p.transcript(c, &p.supervisor()).await;
        assert!(
            notes
                .iter()
                .any(|m| m.kind == conv::MessageKind::Note as i32 && m.content.contains(said)),
            "{said} in {notes:?}"
        );
    }
    p.stop().await;
}

#[tokio::test]
async fn accepts_racing_for_one_team_transfer_give_it_to_one_agent_once() {
    let (p, chat, _) = ana_serving_bob_free(1).await;
    let support = p.team("support").await;
    for agent in ["carol", "dan"] {
        p.agent(agent, 1, &[&support], &[]).await;
        p.presence(agent, Presence::Online).await;
    }
    let first = request_team(&p, "ana", &chat, &support.id)
        .await
        .expect("requested");
    let declined_by = first.to_agent_id.clone();
    reject(&p, &declined_by, &first.id, "busy")
        .await
        .expect("declined");
    let second = transfers_of(&p, &chat).await.pop().expect("the next offer");
    assert_ne!(second.to_agent_id, declined_by);
    // The agent who declined changes their mind while the next one accepts from two
    // workbench tabs at once.
    let (stale, tab1, tab2) = tokio::join!(
        accept(&p, &declined_by, &first.id),
        accept(&p, &second.to_agent_id, &second.id),
        accept(&p, &second.to_agent_id, &second.id),
    );
    let e = stale.expect_err("the declined offer is over");
    assert_eq!(e.code(), Code::FailedPrecondition, "{e:?}");
    let (won, lost) = match (tab1, tab2) {
        (Ok(t), Err(e)) | (Err(e), Ok(t)) => (t, e),
        other => panic!("exactly one accept wins: {other:?}"),
    };
    assert_eq!(won.state, TransferState::Accepted as i32);
    assert_eq!(lost.code(), Code::FailedPrecondition, "{lost:?}");
    assert_eq!(
        p.assignee(&chat).await.as_deref(),
        Some(second.to_agent_id.as_str())
    );
    let held = [
        seats(&p, "ana").await,
        seats(&p, &declined_by).await,
        seats(&p, &second.to_agent_id).await,
    ];
    assert_eq!(held, [0, 0, 1], "one seat, the winner's");
    p.stop().await;
}
