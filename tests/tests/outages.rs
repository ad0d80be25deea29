//! Every service through its dependencies' outages: while PostgreSQL is down each one
//! answers UNAVAILABLE within 2 s and reports NOT_SERVING, and recovers by itself;
//! across a NATS restart each one reports NOT_SERVING, keeps what it accepted, and its
//! consumers resume, so a chat started during the outage is routed and delivered.

use std::time::{Duration, Instant};

use helpdesk_kit::testing::http::Receiver;
use helpdesk_kit::testing::{PrivateNats, PrivatePostgres, TestEnv};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{StartConversationRequest, SubscribeRequest};
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_proto::routing::v1::Presence;
use helpdesk_tests::platform::{Platform, authed, channel, eventually};
use tonic_health::pb::health_check_response::ServingStatus;

async fn health(port: u16) -> Option<i32> {
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel(port));
    let reply = tokio::time::timeout(
        Duration::from_secs(2),
        client.check(tonic_health::pb::HealthCheckRequest::default()),
    )
    .await
    .ok()?
    .ok()?;
    Some(reply.into_inner().status)
}

/// Waits until every service reports `status`; the services that never did.
async fn all_report(p: &Platform, status: ServingStatus, limit: Duration) -> Vec<&'static str> {
    let deadline = Instant::now() + limit;
    loop {
        let mut behind = Vec::new();
        for (name, port) in p.ports() {
            if health(port).await != Some(status as i32) {
                behind.push(name);
            }
        }
        if behind.is_empty() || Instant::now() > deadline {
            return behind;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn while_postgres_is_down_every_service_answers_unavailable_at_once_and_recovers() {
    let mut pg = PrivatePostgres::start().await;
    let url = pg.url();
    let p = Platform::start_in(TestEnv::new().await, 1, |c| c.database_url = url.clone()).await;
    for (name, code, _) in p.one_call_each().await {
        assert_eq!(code, tonic::Code::Ok, "{name} before the outage");
    }

    // Down for 10 s: every call answers UNAVAILABLE, each within 2 s.
    pg.stop().await;
    let down = Instant::now();
    let mut rounds = 0;
    while down.elapsed() < Duration::from_secs(10) {
        for (name, code, took) in p.one_call_each().await {
            assert_eq!(
                code,
                tonic::Code::Unavailable,
                "{name} while PostgreSQL is down"
            );
            assert!(
                took < Duration::from_secs(2),
                "{name} answered after {took:?}"
            );
        }
        rounds += 1;
    }
    assert!(rounds >= 3, "{rounds} rounds");
    let behind = all_report(&p, ServingStatus::NotServing, Duration::from_secs(5)).await;
    assert!(
        behind.is_empty(),
        "still SERVING while PostgreSQL is down: {behind:?}"
    );
    // Known to be down: the answer comes at once, without waiting on the pool.
    for (name, code, took) in p.one_call_each().await {
        assert_eq!(code, tonic::Code::Unavailable, "{name}");
        assert!(
            took < Duration::from_millis(250),
            "{name} answered after {took:?}"
        );
    }

    // Back: each recovers by itself.
    pg.start_again().await;
    let behind = all_report(&p, ServingStatus::Serving, Duration::from_secs(20)).await;
    assert!(behind.is_empty(), "not SERVING again: {behind:?}");
    let recovered = eventually(Duration::from_secs(20), || async {
        let answers = p.one_call_each().await;
        answers
            .iter()
            .all(|(_, code, _)| *code == tonic::Code::Ok)
            .then_some(answers)
    })
    .await;
    assert!(recovered.is_some(), "every service answers again");
    p.stop().await;
    drop(pg);
}

#[tokio::test]
async fn across_a_nats_restart_every_service_keeps_what_it_accepted_and_resumes() {
    let mut nats = PrivateNats::start().await;
    let p = Platform::start_in(TestEnv::with_nats(&nats.url()).await, 1, |_| {}).await;
    let inbox = p.inbox().await;
    p.agent("ana", 5, &[], &[]).await;
    p.presence("ana", Presence::Online).await;
    let receiver = Receiver::start().await;
    NotificationServiceClient::new(channel(p.notification.port))
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: receiver.url.clone(),
                    event_types: vec!["conversation.created".into()],
                    ..Default::default()
                }),
            },
            &p.admin(),
        ))
        .await
        .expect("webhook");

    // A supervisor watches the inbox live across the outage.
    let mut live = ConversationServiceClient::new(channel(p.conversation.port))
        .subscribe(authed(
            SubscribeRequest {
                inbox_id: inbox.id.clone(),
                ..Default::default()
            },
            &p.supervisor(),
        ))
        .await
        .expect("subscribe")
        .into_inner();

    nats.stop().await;
    let behind = all_report(&p, ServingStatus::NotServing, Duration::from_secs(10)).await;
    assert!(
        behind.is_empty(),
        "still SERVING while NATS is down: {behind:?}"
    );
    // A visitor starts a chat meanwhile: accepted (its event waits in the outbox).
    let t = Instant::now();
    let started = ConversationServiceClient::new(channel(p.conversation.port))
        .start_conversation(StartConversationRequest {
            inbox_public_key: inbox.public_key.clone(),
            ..Default::default()
        })
        .await
        .expect("a chat starts while NATS is down")
        .into_inner();
    assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
    let conversation = started.conversation.expect("conversation").id;
    tokio::time::sleep(Duration::from_secs(3)).await;

    nats.restart().await;
    let back = Instant::now();
    let behind = all_report(&p, ServingStatus::Serving, Duration::from_secs(20)).await;
    assert!(behind.is_empty(), "not SERVING again: {behind:?}");
    // Routing's consumer resumed: the chat goes to Ana.
    let assigned = p
        .wait_assigned(&conversation, Duration::from_secs(30))
        .await;
    assert_eq!(
        assigned.as_deref(),
        Some("ana"),
        "routed after NATS returned"
    );
    // Notification's consumer resumed: the webhook for the chat arrives, once.
    let got = receiver.wait_for(1, Duration::from_secs(30)).await;
    assert_eq!(got.len(), 1, "one delivery");
    assert_eq!(
        got[0].json()["data"]["conversation"]["id"],
        conversation.as_str()
    );
    let took = back.elapsed();
    eprintln!("routed and delivered {took:?} after NATS returned");
    // The live stream either kept flowing (it shows the chat) or ended with
    // UNAVAILABLE so that the client reconnects; it never stalls in silence.
    let outcome = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            match live.message().await {
                Ok(Some(update)) if format!("{update:?}").contains(&conversation) => {
                    return "flowing".to_string();
                }
                Ok(Some(_)) => continue,
                Ok(None) => return "ended without a status".to_string(),
                Err(s) if s.code() == tonic::Code::Unavailable => return "unavailable".into(),
                Err(s) => return format!("ended with {s:?}"),
            }
        }
    })
    .await
    .unwrap_or_else(|_| "stalled".into());
    assert!(
        outcome == "flowing" || outcome == "unavailable",
        "the live stream {outcome}"
    );
    eprintln!("the live stream across the outage: {outcome}");
    // The platform goes on as before.
    let (again, _) = p.chat(&inbox, "after the outage", &[]).await;
    assert_eq!(
        p.wait_assigned(&again, Duration::from_secs(20))
            .await
            .as_deref(),
        Some("ana")
    );
    p.stop().await;
    drop(nats);
}
