//! A snooze set before a restart wakes the conversation after it, once, with two
//! service replicas running.

use std::time::Duration;

use helpdesk_kit::testing::{TestEnv, eventually};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::*;
use prost::Message as _;

use super::support::{ACCOUNT, authed, spawn_app_in, stream_events};

#[tokio::test]
async fn snooze_timer_fires_once_after_restart_with_two_replicas() {
    let env = TestEnv::new().await;
    let app = spawn_app_in(env).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let conv = app
        .visitor_starts(&inbox, "ping me later")
        .await
        .conversation
        .expect("conv")
        .id;
    let agent = app.agent();
    let until = chrono::Utc::now() + chrono::Duration::seconds(3);
    let snoozed = app
        .client()
        .await
        .set_status(authed(
            SetStatusRequest {
                conversation_id: conv.clone(),
                status: ConversationStatus::Snoozed as i32,
                snoozed_until: Some(to_timestamp(until)),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("snooze")
        .into_inner();
    assert_eq!(snoozed.status, ConversationStatus::Snoozed as i32);
    let env = app.stop().await;

    // Two replicas come up on the same database.
    let one = spawn_app_in(env.clone()).await;
    let two = spawn_app_in(env.clone()).await;
    let mut client = one.client().await;
    let woke = eventually(Duration::from_secs(30), || {
        let mut client = client.clone();
        let req = authed(GetConversationRequest { id: conv.clone() }, &agent);
        async move {
            let c = client.get_conversation(req).await.ok()?.into_inner();
            (c.status == ConversationStatus::Open as i32).then_some(c)
        }
    })
    .await
    .expect("snoozed conversation reopens");
    assert_eq!(
        woke.status_actor.map(|a| a.kind),
        Some(ActorKind::System as i32)
    );
    assert!(woke.snoozed_until.is_none());

    // Give the second replica every chance to fire it again.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let events = stream_events(&env, &format!("{ACCOUNT}.conversation.status_changed"), 2).await;
    let wakes = events
        .iter()
        .map(|m| ConversationStatusChanged::decode(m.payload.clone()).expect("decode"))
        .filter(|e| {
            e.from == ConversationStatus::Snoozed as i32 && e.to == ConversationStatus::Open as i32
        })
        .count();
    assert_eq!(wakes, 1, "fired exactly once");
    assert_eq!(one.count("timers").await, 0);
    let _ = client
        .get_conversation(authed(GetConversationRequest { id: conv }, &agent))
        .await;
    one.stop().await;
    two.stop().await;
}
