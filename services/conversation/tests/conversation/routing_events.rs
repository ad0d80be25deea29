//! Routing events published on the stream change conversations and their
//! transcripts; customers rate resolved conversations.

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{AckPolicy, DeliverPolicy, pull};
use futures::StreamExt;
use helpdesk_conversation::consumers::queue_text;
use helpdesk_kit::bus::headers;
use helpdesk_kit::grpc::violated_fields;
use helpdesk_kit::testing::{TestEnv, eventually};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::common::v1::{Actor, ActorKind, EventMeta};
use helpdesk_proto::conversation::v1::*;
use helpdesk_proto::routing::v1::{
    AssignReason, ConversationAssigned, ConversationOverflowed, ConversationQueued,
    ConversationUnassigned, OverflowAction, UnassignReason,
};
use prost::Message as _;
use tonic::Code;

use super::support::{ACCOUNT, TestApp, authed, spawn_app, stream_events};

const WAIT: Duration = Duration::from_secs(20);

/// A routing event's meta, as the routing service writes it.
fn meta(event_id: &str) -> EventMeta {
    EventMeta {
        event_id: event_id.to_string(),
        occurred_at: Some(to_timestamp(chrono::Utc::now())),
        account_id: ACCOUNT.into(),
        actor: Some(Actor {
            kind: ActorKind::System as i32,
            id: "system".into(),
        }),
        causation_id: String::new(),
        correlation_id: uuid::Uuid::now_v7().to_string(),
        ..Default::default()
    }
}

fn new_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// Publishes `body` on `<root>.evt.acme.<kind>` with CloudEvents headers.
async fn publish<M: prost::Message + prost::Name>(
    env: &TestEnv,
    kind: &str,
    ce_id: &str,
    nats_msg_id: &str,
    body: &M,
) {
    let js = async_nats::jetstream::new(env.nats().await);
    let mut h = HeaderMap::new();
    h.insert(headers::SPECVERSION, "1.0");
    h.insert(headers::ID, ce_id);
    h.insert(headers::NATS_MSG_ID, nats_msg_id);
    h.insert(headers::TYPE, M::full_name().as_str());
    h.insert(headers::SOURCE, "/helpdesk/routing");
    h.insert(headers::CONTENT_TYPE, "application/protobuf");
    js.publish_with_headers(
        format!("{}.evt.{ACCOUNT}.{kind}", env.subject_root),
        h,
        body.encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("publish ack");
}

/// Publishes an event once, with `Nats-Msg-Id` = `ce-id`.
async fn emit<M: prost::Message + prost::Name>(env: &TestEnv, kind: &str, ce_id: &str, body: &M) {
    publish(env, kind, ce_id, ce_id, body).await;
}

async fn conversation(app: &TestApp, id: &str) -> Conversation {
    app.client()
        .await
        .get_conversation(authed(
            GetConversationRequest { id: id.into() },
            &app.agent(),
        ))
        .await
        .expect("get conversation")
        .into_inner()
}

async fn messages(app: &TestApp, conv: &str, token: &str) -> Vec<Message> {
    app.client()
        .await
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.into(),
                page_size: 100,
                ..Default::default()
            },
            token,
        ))
        .await
        .expect("list messages")
        .into_inner()
        .messages
}

/// Waits until the transcript has a message with `content`, and returns the transcript.
async fn wait_for_message(app: &TestApp, conv: &str, content: &str) -> Vec<Message> {
    let token = app.agent();
    eventually(WAIT, || async {
        let all = messages(app, conv, &token).await;
        all.iter().any(|m| m.content == content).then_some(all)
    })
    .await
    .unwrap_or_else(|| panic!("message {content:?} posted"))
}

async fn wait_for_conversation(
    app: &TestApp,
    conv: &str,
    check: impl Fn(&Conversation) -> bool,
) -> Conversation {
    eventually(WAIT, || async {
        let c = conversation(app, conv).await;
        check(&c).then_some(c)
    })
    .await
    .expect("conversation reaches the expected state")
}

fn assigned(conv: &str, event_id: &str) -> ConversationAssigned {
    ConversationAssigned {
        meta: Some(meta(event_id)),
        conversation_id: conv.into(),
        agent_id: "agent-7".into(),
        agent_name: "Ana".into(),
        team_id: "team-sales".into(),
        previous_agent_id: String::new(),
        reason: AssignReason::Routed as i32,
        waited_seconds: 12,
        sequence: 1,
    }
}

fn queued(conv: &str, event_id: &str, position: i32, wait: i32, ooo: &str) -> ConversationQueued {
    ConversationQueued {
        meta: Some(meta(event_id)),
        conversation_id: conv.into(),
        team_id: "team-sales".into(),
        position,
        estimated_wait_seconds: wait,
        out_of_office_message: ooo.into(),
        ..Default::default()
    }
}

const LEAVE_TEXT: &str = "All agents are busy. Leave a message and we will get back to you.";
const CLOSED_TEXT: &str = "We are closed; we open at 9:00.";

#[tokio::test]
async fn routing_events_update_the_conversation_and_its_transcript() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "hello, anyone?").await;
    let conv = started.conversation.expect("conv").id;

    // routing.assigned: assignee, team and an activity line.
    let assigned_id = new_id();
    let event = assigned(&conv, &assigned_id);
    emit(&app.env, "routing.assigned", &assigned_id, &event).await;
    let c = wait_for_conversation(&app, &conv, |c| c.assignee_id == "agent-7").await;
    assert_eq!(c.team_id, "team-sales");
    let all = wait_for_message(&app, &conv, "Ana joined the conversation").await;
    let joined = all
        .iter()
        .find(|m| m.content == "Ana joined the conversation")
        .expect("joined");
    assert_eq!(joined.kind, MessageKind::Activity as i32);
    assert_eq!(
        joined.sender.as_ref().map(|s| s.kind),
        Some(ActorKind::System as i32)
    );
    let updated = stream_events(&app.env, &format!("{ACCOUNT}.conversation.updated"), 1).await;
    let updated: Vec<ConversationUpdated> = updated
        .iter()
        .map(|m| ConversationUpdated::decode(m.payload.clone()).expect("decode"))
        .collect();
    assert_eq!(updated.len(), 1);
    assert_eq!(updated[0].changed_fields, vec!["assignee_id", "team_id"]);
    let m = updated[0].meta.clone().expect("meta");
    assert_eq!(m.causation_id, assigned_id);
    assert_eq!(
        m.correlation_id,
        event.meta.as_ref().expect("meta").correlation_id
    );
    assert_eq!(m.actor.map(|a| a.kind), Some(ActorKind::System as i32));

    // The same event again (same ce-id, a new Nats-Msg-Id so JetStream keeps it)
    // changes nothing. The queued event behind it shows the duplicate was handled.
    publish(
        &app.env,
        "routing.assigned",
        &assigned_id,
        &new_id(),
        &event,
    )
    .await;
    let queued_text = "You are number 3 in the queue. Estimated wait: about 3 minutes.";
    let q1 = new_id();
    emit(
        &app.env,
        "routing.queued",
        &q1,
        &queued(&conv, &q1, 3, 150, ""),
    )
    .await;
    let all = wait_for_message(&app, &conv, queued_text).await;
    let joined = all
        .iter()
        .filter(|m| m.content == "Ana joined the conversation")
        .count();
    assert_eq!(joined, 1, "a redelivered assignment posts nothing");
    let position = all
        .iter()
        .find(|m| m.content == queued_text)
        .expect("position");
    assert_eq!(position.kind, MessageKind::Activity as i32);

    // Closed hours: the out-of-office text from the routing bot, then the position.
    let q2 = new_id();
    emit(
        &app.env,
        "routing.queued",
        &q2,
        &queued(&conv, &q2, 2, 0, CLOSED_TEXT),
    )
    .await;
    let all = wait_for_message(&app, &conv, "You are number 2 in the queue.").await;
    let ooo = all
        .iter()
        .position(|m| m.content == CLOSED_TEXT)
        .expect("out-of-office text");
    assert_eq!(all[ooo].kind, MessageKind::Outgoing as i32);
    let sender = all[ooo].sender.clone().expect("sender");
    assert_eq!(
        (sender.kind, sender.id.as_str()),
        (ActorKind::Bot as i32, "routing")
    );
    assert_eq!(all[ooo + 1].content, "You are number 2 in the queue.");

    // Overflow with leave-a-message: the text, and the conversation waits as pending.
    let overflow_id = new_id();
    emit(
        &app.env,
        "routing.overflowed",
        &overflow_id,
        &ConversationOverflowed {
            meta: Some(meta(&overflow_id)),
            conversation_id: conv.clone(),
            action: OverflowAction::LeaveMessage as i32,
            from_team_id: "team-sales".into(),
            reason: "queue_full".into(),
            message: LEAVE_TEXT.into(),
            ..Default::default()
        },
    )
    .await;
    let c = wait_for_conversation(&app, &conv, |c| {
        c.status == ConversationStatus::Pending as i32
    })
    .await;
    assert_eq!(
        c.status_actor.map(|a| a.kind),
        Some(ActorKind::System as i32)
    );
    let all = wait_for_message(&app, &conv, LEAVE_TEXT).await;
    let leave = all.iter().find(|m| m.content == LEAVE_TEXT).expect("leave");
    assert_eq!(leave.kind, MessageKind::Outgoing as i32);
    assert_eq!(
        leave.sender.as_ref().map(|s| s.id.as_str()),
        Some("routing")
    );
    let status_events = stream_events(
        &app.env,
        &format!("{ACCOUNT}.conversation.status_changed"),
        1,
    )
    .await;
    let pending = status_events
        .iter()
        .map(|m| ConversationStatusChanged::decode(m.payload.clone()).expect("decode"))
        .find(|e| e.to == ConversationStatus::Pending as i32)
        .expect("status_changed to pending");
    assert_eq!(pending.meta.expect("meta").causation_id, overflow_id);

    // routing.unassigned with requeue: the assignee goes, the customer is told.
    let unassigned_id = new_id();
    emit(
        &app.env,
        "routing.unassigned",
        &unassigned_id,
        &ConversationUnassigned {
            meta: Some(meta(&unassigned_id)),
            conversation_id: conv.clone(),
            agent_id: "agent-7".into(),
            reason: UnassignReason::AgentOffline as i32,
            requeued: true,
            sequence: 2,
        },
    )
    .await;
    let c = wait_for_conversation(&app, &conv, |c| c.assignee_id.is_empty()).await;
    assert_eq!(c.team_id, "team-sales");
    let all = wait_for_message(
        &app,
        &conv,
        "You are back in the queue; the next available agent will join shortly.",
    )
    .await;

    // The visitor sees the same transcript; none of it counts as a reply.
    let seen = messages(&app, &conv, &started.visitor_token).await;
    assert_eq!(seen.len(), all.len());
    assert!(c.waiting_since.is_some(), "the customer is still waiting");
    assert!(c.first_reply_time.is_none());
    let updated = stream_events(&app.env, &format!("{ACCOUNT}.conversation.updated"), 2).await;
    let last = updated
        .iter()
        .map(|m| ConversationUpdated::decode(m.payload.clone()).expect("decode"))
        .next_back()
        .expect("updated");
    assert_eq!(last.changed_fields, vec!["assignee_id"]);
    app.stop().await;
}

#[tokio::test]
async fn overflow_to_another_team_moves_the_conversation_silently() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let conv = app
        .visitor_starts(&inbox, "help")
        .await
        .conversation
        .expect("conv")
        .id;
    let id = new_id();
    emit(
        &app.env,
        "routing.overflowed",
        &id,
        &ConversationOverflowed {
            meta: Some(meta(&id)),
            conversation_id: conv.clone(),
            action: OverflowAction::OverflowTeam as i32,
            from_team_id: "team-sales".into(),
            to_team_id: "team-overflow".into(),
            reason: "wait_exceeded".into(),
            ..Default::default()
        },
    )
    .await;
    let c = wait_for_conversation(&app, &conv, |c| c.team_id == "team-overflow").await;
    assert_eq!(c.status, ConversationStatus::Open as i32);
    let updated = stream_events(&app.env, &format!("{ACCOUNT}.conversation.updated"), 1).await;
    assert_eq!(updated.len(), 1);
    let e = ConversationUpdated::decode(updated[0].payload.clone()).expect("decode");
    assert_eq!(e.changed_fields, vec!["team_id"]);
    assert_eq!(messages(&app, &conv, &app.agent()).await.len(), 1);
    app.stop().await;
}

#[tokio::test]
async fn an_event_for_an_unknown_conversation_is_dead_lettered() {
    let app = spawn_app().await;
    let id = new_id();
    let missing = uuid::Uuid::now_v7().to_string();
    emit(&app.env, "routing.assigned", &id, &assigned(&missing, &id)).await;

    let js = async_nats::jetstream::new(app.env.nats().await);
    let stream = js
        .get_stream(format!("{}_DLQ", app.env.stream_name))
        .await
        .expect("dead-letter stream");
    let consumer = stream
        .create_consumer(pull::Config {
            filter_subject: format!("{}.dlq.conversation", app.env.subject_root),
            deliver_policy: DeliverPolicy::All,
            ack_policy: AckPolicy::None,
            ..Default::default()
        })
        .await
        .expect("consumer");
    let parked = eventually(WAIT, || async {
        let mut batch = consumer
            .fetch()
            .max_messages(10)
            .expires(Duration::from_millis(300))
            .messages()
            .await
            .ok()?;
        batch.next().await?.ok()
    })
    .await
    .expect("parked on the dead-letter subject");
    let h = parked.headers.clone().expect("headers");
    assert_eq!(h.get(headers::ID).map(|v| v.as_str()), Some(id.as_str()));
    let reason = h
        .get(headers::DLQ_REASON)
        .map(|v| v.as_str().to_string())
        .unwrap_or_default();
    assert!(reason.contains("not found"), "reason: {reason}");
    assert!(reason.contains(&missing), "reason: {reason}");
    app.stop().await;
}

#[tokio::test]
async fn visitor_rates_a_resolved_conversation() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "my order is late").await;
    let conv = started.conversation.expect("conv").id;
    let visitor = started.visitor_token.clone();
    let id = new_id();
    emit(&app.env, "routing.assigned", &id, &assigned(&conv, &id)).await;
    wait_for_conversation(&app, &conv, |c| c.assignee_id == "agent-7").await;
    let mut client = app.client().await;
    let rate = |rating: i32, comment: &str, token: &str| {
        authed(
            RateConversationRequest {
                conversation_id: conv.clone(),
                rating,
                comment: comment.into(),
            },
            token,
        )
    };

    let e = client
        .rate_conversation(rate(5, "", &visitor))
        .await
        .expect_err("open conversation");
    assert_eq!(e.code(), Code::FailedPrecondition);

    client
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conv.clone(),
                status: ConversationStatus::Resolved as i32,
                snoozed_until: None,
                ..Default::default()
            },
            &visitor,
        ))
        .await
        .expect("visitor resolves");

    for bad in [0, 6] {
        let e = client
            .rate_conversation(rate(bad, "", &visitor))
            .await
            .expect_err("out of range");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&e), vec!["rating"]);
        assert!(e.message().contains("rating"));
    }
    let e = client
        .rate_conversation(rate(5, &"x".repeat(2001), &visitor))
        .await
        .expect_err("long comment");
    assert_eq!(violated_fields(&e), vec!["comment"]);

    let other = app.visitor_starts(&inbox, "me too").await;
    let e = client
        .rate_conversation(rate(1, "", &other.visitor_token))
        .await
        .expect_err("someone else's conversation");
    assert_eq!(e.code(), Code::NotFound);
    let e = client
        .rate_conversation(rate(1, "", &app.agent()))
        .await
        .expect_err("staff");
    assert_eq!(e.code(), Code::PermissionDenied);

    let rated = client
        .rate_conversation(rate(5, "Quick and friendly", &visitor))
        .await
        .expect("rate")
        .into_inner();
    assert_eq!(rated.csat_rating, 5);
    let events = stream_events(&app.env, &format!("{ACCOUNT}.csat.submitted"), 1).await;
    assert_eq!(events.len(), 1);
    let e = CsatSubmitted::decode(events[0].payload.clone()).expect("decode");
    assert_eq!(e.rating, 5);
    assert_eq!(e.comment, "Quick and friendly");
    assert_eq!(e.previous_rating, 0);
    let snapshot = e.conversation.expect("conversation");
    assert_eq!(snapshot.assignee_id, "agent-7");
    assert_eq!(snapshot.csat_rating, 5);
    let actor = e.meta.and_then(|m| m.actor).expect("actor");
    assert_eq!(actor.kind, ActorKind::Contact as i32);
    assert_eq!(actor.id, snapshot.contact_id);
    assert_eq!(
        events[0]
            .headers
            .as_ref()
            .and_then(|h| h.get(headers::TYPE))
            .map(|v| v.as_str()),
        Some("helpdesk.conversation.v1.CsatSubmitted")
    );

    // The same rating again changes nothing; a new one replaces it.
    let same = client
        .rate_conversation(rate(5, "Quick and friendly", &visitor))
        .await
        .expect("same rating")
        .into_inner();
    assert_eq!(same.version, rated.version);
    let again = client
        .rate_conversation(rate(3, "", &visitor))
        .await
        .expect("re-rate")
        .into_inner();
    assert_eq!(again.csat_rating, 3);
    assert_eq!(conversation(&app, &conv).await.csat_rating, 3);
    let events = stream_events(&app.env, &format!("{ACCOUNT}.csat.submitted"), 2).await;
    assert_eq!(events.len(), 2);
    let last = CsatSubmitted::decode(events[1].payload.clone()).expect("decode");
    assert_eq!((last.rating, last.comment.as_str()), (3, ""));
    assert_eq!(
        last.previous_rating, 5,
        "the rating it replaces in every average"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_late_assignment_event_never_overrides_a_newer_one() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let conv = app
        .visitor_starts(&inbox, "hello")
        .await
        .conversation
        .expect("conversation")
        .id;
    // Routing assigned (sequence 7) and then took the agent off (sequence 8), but a
    // replica handles the unassignment first.
    let unassigned_id = new_id();
    let unassigned = ConversationUnassigned {
        meta: Some(meta(&unassigned_id)),
        conversation_id: conv.clone(),
        agent_id: "agent-7".into(),
        reason: UnassignReason::Manual as i32,
        requeued: false,
        sequence: 8,
    };
    emit(&app.env, "routing.unassigned", &unassigned_id, &unassigned).await;
    let late_id = new_id();
    let mut late = assigned(&conv, &late_id);
    late.sequence = 7;
    emit(&app.env, "routing.assigned", &late_id, &late).await;
    // A newer assignment (sequence 9) still applies.
    let newer_id = new_id();
    let mut newer = assigned(&conv, &newer_id);
    newer.agent_id = "agent-9".into();
    newer.agent_name = "Bea".into();
    newer.sequence = 9;
    emit(&app.env, "routing.assigned", &newer_id, &newer).await;
    let c = wait_for_conversation(&app, &conv, |c| c.assignee_id == "agent-9").await;
    assert_eq!(c.assignee_id, "agent-9");
    let transcript = wait_for_message(&app, &conv, "Bea joined the conversation").await;
    assert!(
        !transcript
            .iter()
            .any(|m| m.content == "Ana joined the conversation"),
        "the stale assignment left no trace: {transcript:?}"
    );
    app.stop().await;
}

/// Queueing and overflow are ordered with assignments: a "leave a message" overflow
/// that routing decided before the assignment, delivered after it, changes nothing.
#[tokio::test]
async fn a_late_overflow_or_queue_event_never_undoes_a_newer_assignment() {
    let app = spawn_app().await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let conv = app
        .visitor_starts(&inbox, "hello")
        .await
        .conversation
        .expect("conversation")
        .id;
    let assigned_id = new_id();
    let mut newer = assigned(&conv, &assigned_id);
    newer.sequence = 12;
    emit(&app.env, "routing.assigned", &assigned_id, &newer).await;
    wait_for_conversation(&app, &conv, |c| c.assignee_id == "agent-7").await;

    let late_queue_id = new_id();
    let mut late_queue = queued(&conv, &late_queue_id, 4, 240, "");
    late_queue.sequence = 10;
    emit(&app.env, "routing.queued", &late_queue_id, &late_queue).await;
    let late_overflow_id = new_id();
    let late_overflow = ConversationOverflowed {
        meta: Some(meta(&late_overflow_id)),
        conversation_id: conv.clone(),
        action: OverflowAction::LeaveMessage as i32,
        reason: "queue_full".into(),
        message: LEAVE_TEXT.into(),
        sequence: 11,
        ..Default::default()
    };
    emit(
        &app.env,
        "routing.overflowed",
        &late_overflow_id,
        &late_overflow,
    )
    .await;
    // A later, current event still applies (and proves the stale ones were handled).
    let current_id = new_id();
    let mut current = queued(&conv, &current_id, 2, 60, "");
    current.sequence = 13;
    emit(&app.env, "routing.queued", &current_id, &current).await;
    let transcript = wait_for_message(&app, &conv, &queue_text(2, 60)).await;
    assert!(
        !transcript
            .iter()
            .any(|m| m.content == LEAVE_TEXT || m.content == queue_text(4, 240)),
        "stale events left no trace: {transcript:?}"
    );
    let c = conversation(&app, &conv).await;
    assert_eq!(c.status, ConversationStatus::Open as i32, "still open");
    assert_eq!(c.assignee_id, "agent-7");
    app.stop().await;
}
