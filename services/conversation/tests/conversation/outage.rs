//! NATS down: calls still succeed, events wait in the outbox and are published
//! exactly once when NATS is back.

use std::collections::HashSet;
use std::time::Duration;

use helpdesk_kit::bus::headers;
use helpdesk_kit::testing::{PrivateNats, TestEnv, eventually};
use helpdesk_proto::conversation::v1::*;

use super::support::{ACCOUNT, authed, spawn_app_in, stream_events};

#[tokio::test]
async fn events_survive_a_nats_outage_and_are_published_once() {
    let mut nats = PrivateNats::start().await;
    let app = spawn_app_in(TestEnv::with_nats(&nats.url()).await).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "first").await;
    let conv = started.conversation.expect("conv").id;
    let pending = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count");
        (n == 0).then_some(())
    };
    eventually(Duration::from_secs(15), pending)
        .await
        .expect("initial events published");

    nats.stop().await;
    let mut client = app.client().await;
    for i in 0..5 {
        client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: conv.clone(),
                    content: format!("while down {i}"),
                    ..Default::default()
                },
                &started.visitor_token,
            ))
            .await
            .expect("send succeeds while NATS is down");
    }
    let waiting: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
        .fetch_one(&app.pool)
        .await
        .expect("count");
    assert_eq!(waiting, 5, "the five events wait in the outbox");

    nats.restart().await;
    eventually(Duration::from_secs(60), pending)
        .await
        .expect("events published after NATS returns");

    let events = stream_events(&app.env, &format!("{ACCOUNT}.message.created"), 6).await;
    let ids: HashSet<String> = events
        .iter()
        .map(|m| {
            m.headers
                .as_ref()
                .and_then(|h| h.get(headers::ID))
                .map(|v| v.as_str().to_string())
                .unwrap_or_default()
        })
        .collect();
    assert_eq!(
        events.len(),
        6,
        "first message + five sent while down, each once"
    );
    assert_eq!(ids.len(), 6);
    let mut contents: Vec<String> = events
        .iter()
        .map(|m| {
            <MessageCreated as prost::Message>::decode(m.payload.clone())
                .expect("decode")
                .message
                .expect("msg")
                .content
        })
        .collect();
    assert_eq!(contents.remove(0), "first");
    assert_eq!(
        contents,
        (0..5)
            .map(|i| format!("while down {i}"))
            .collect::<Vec<_>>(),
        "commit order kept"
    );
    app.stop().await;
}

/// The service's health as a client sees it.
async fn health(port: u16) -> Option<i32> {
    let channel = tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .ok()?
        .connect()
        .await
        .ok()?;
    let mut client = tonic_health::pb::health_client::HealthClient::new(channel);
    let reply = client
        .check(tonic_health::pb::HealthCheckRequest::default())
        .await
        .ok()?;
    Some(reply.into_inner().status)
}

#[tokio::test]
async fn while_postgres_is_down_calls_answer_unavailable_at_once_and_the_service_recovers() {
    use tonic_health::pb::health_check_response::ServingStatus;
    let mut pg = helpdesk_kit::testing::PrivatePostgres::start().await;
    let url = pg.url();
    let app = super::support::spawn_app_with(TestEnv::new().await, |c| {
        c.database_url = url.clone();
    })
    .await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "before the outage").await;
    let conv = started.conversation.expect("conv").id;
    let mut client = app.client().await;
    let send = |content: &str| {
        authed(
            SendMessageRequest {
                conversation_id: conv.clone(),
                content: content.into(),
                ..Default::default()
            },
            &started.visitor_token,
        )
    };
    client.send_message(send("still up")).await.expect("sent");

    // Down for 10 s: every call answers UNAVAILABLE within 2 s.
    pg.stop().await;
    let down = std::time::Instant::now();
    let mut calls = 0;
    while down.elapsed() < Duration::from_secs(10) {
        let t = std::time::Instant::now();
        let e = tokio::time::timeout(Duration::from_secs(5), client.send_message(send("down")))
            .await
            .expect("answered, not hung")
            .expect_err("the database is down");
        let took = t.elapsed();
        assert_eq!(e.code(), tonic::Code::Unavailable, "{e:?}");
        assert!(took < Duration::from_secs(2), "answered after {took:?}");
        calls += 1;
    }
    assert!(calls >= 5, "{calls} calls");
    assert_eq!(
        health(app.port).await,
        Some(ServingStatus::NotServing as i32),
        "health says so"
    );

    // Back: the service recovers by itself, and nothing acknowledged was lost.
    pg.start_again().await;
    let mut client = app.client().await;
    let sent = eventually(Duration::from_secs(20), || {
        let mut client = client.clone();
        let req = send("after the outage");
        async move { client.send_message(req).await.ok() }
    })
    .await;
    assert!(sent.is_some(), "accepted again");
    let serving = eventually(Duration::from_secs(10), || async {
        (health(app.port).await == Some(ServingStatus::Serving as i32)).then_some(())
    })
    .await;
    assert!(serving.is_some(), "SERVING again");
    let messages = client
        .list_messages(authed(
            ListMessagesRequest {
                conversation_id: conv.clone(),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect("messages")
        .into_inner()
        .messages;
    let texts: Vec<&str> = messages.iter().map(|m| m.content.as_str()).collect();
    assert!(
        texts.contains(&"still up") && texts.contains(&"after the outage"),
        "{texts:?}"
    );
    assert!(!texts.contains(&"down"), "nothing refused was stored");
    drop(client);
    drop(pg);
}

#[tokio::test]
async fn a_backlog_of_5000_events_goes_out_within_5_s_of_nats_returning() {
    use futures::StreamExt;
    let mut nats = PrivateNats::start().await;
    let app = spawn_app_in(TestEnv::with_nats(&nats.url()).await).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let mut chats = Vec::new();
    for i in 0..50 {
        let s = app.visitor_starts(&inbox, &format!("chat {i}")).await;
        chats.push((s.conversation.expect("conv").id, s.visitor_token));
    }
    let pending = || async {
        let n: i64 = sqlx::query_scalar("SELECT count(*) FROM outbox WHERE published_at IS NULL")
            .fetch_one(&app.pool)
            .await
            .expect("count");
        n
    };
    eventually(Duration::from_secs(15), || async {
        (pending().await == 0).then_some(())
    })
    .await
    .expect("the chats' events published");

    // NATS goes away; 5,000 messages are accepted meanwhile, their events kept.
    nats.stop().await;
    let client = app.client().await;
    let sends = chats.iter().flat_map(|(conv, token)| {
        let client = client.clone();
        (0..100).map(move |i| {
            let mut client = client.clone();
            let req = authed(
                SendMessageRequest {
                    conversation_id: conv.clone(),
                    content: format!("while down {i}"),
                    ..Default::default()
                },
                token,
            );
            async move { client.send_message(req).await.is_ok() }
        })
    });
    let accepted = futures::stream::iter(sends)
        .buffer_unordered(16)
        .filter(|ok| std::future::ready(*ok))
        .count()
        .await;
    assert_eq!(accepted, 5_000);
    assert_eq!(pending().await, 5_000, "the events wait in the outbox");

    // Back: the backlog is published within 5 s, each event once.
    nats.restart().await;
    let back = std::time::Instant::now();
    let drained = eventually(Duration::from_secs(30), || async {
        (pending().await == 0).then_some(back.elapsed())
    })
    .await
    .expect("the backlog published");
    eprintln!("the backlog of 5,000 went out {drained:?} after NATS returned");
    assert!(
        drained <= Duration::from_secs(5),
        "published {drained:?} after NATS returned"
    );
    let js = async_nats::jetstream::new(app.env.nats().await);
    let mut stream = js.get_stream(&app.env.stream_name).await.expect("stream");
    let stored = stream.info().await.expect("info").state.messages;
    // 50 chats' creations, contacts and first messages before, then the 5,000.
    assert!(stored >= 5_000 + 50, "{stored} events in the stream");
}

#[tokio::test]
async fn a_postgres_restart_under_load_answers_only_ok_or_unavailable_and_loses_nothing() {
    let mut pg = helpdesk_kit::testing::PrivatePostgres::start().await;
    let url = pg.url();
    let app = super::support::spawn_app_with(TestEnv::new().await, |c| {
        c.database_url = url.clone();
    })
    .await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let mut chats = Vec::new();
    for i in 0..10 {
        let s = app.visitor_starts(&inbox, &format!("chat {i}")).await;
        chats.push((s.conversation.expect("conv").id, s.visitor_token));
    }
    // Ten visitors keep writing while PostgreSQL restarts under them.
    let stop = helpdesk_kit::CancellationToken::new();
    let mut writers = Vec::new();
    for (conv, token) in chats.clone() {
        let (mut client, stop) = (app.client().await, stop.clone());
        writers.push(tokio::spawn(async move {
            let (mut acked, mut codes, mut last_ok) = (Vec::new(), Vec::new(), false);
            let mut i = 0;
            while !stop.is_cancelled() {
                let content = format!("{conv} #{i}");
                let req = authed(
                    SendMessageRequest {
                        conversation_id: conv.clone(),
                        content: content.clone(),
                        ..Default::default()
                    },
                    &token,
                );
                match tokio::time::timeout(Duration::from_secs(5), client.send_message(req)).await {
                    Ok(Ok(_)) => acked.push(content),
                    Ok(Err(e)) => codes.push(e.code()),
                    Err(_) => codes.push(tonic::Code::DeadlineExceeded),
                }
                last_ok = acked.last().is_some_and(|a| a.ends_with(&format!("#{i}")));
                i += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            (conv, token, acked, codes, last_ok)
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    pg.start_again().await; // stops it, then starts it on the same data
    tokio::time::sleep(Duration::from_secs(4)).await;
    stop.cancel();
    let mut client = app.client().await;
    let mut refused = 0;
    for w in writers {
        let (conv, token, acked, codes, last_ok) = w.await.expect("writer");
        assert!(last_ok, "writing again by itself after the restart");
        assert!(
            codes.iter().all(|c| *c == tonic::Code::Unavailable),
            "only UNAVAILABLE, never INTERNAL, UNKNOWN or a hang: {codes:?}"
        );
        refused += codes.len();
        assert!(!acked.is_empty());
        // Every acknowledged message is there, after the restart too.
        let mut stored = Vec::new();
        let mut page_token = String::new();
        loop {
            let page = client
                .list_messages(authed(
                    ListMessagesRequest {
                        conversation_id: conv.clone(),
                        page_size: 100,
                        page_token: page_token.clone(),
                        ..Default::default()
                    },
                    &token,
                ))
                .await
                .expect("messages")
                .into_inner();
            stored.extend(page.messages.into_iter().map(|m| m.content));
            if page.next_page_token.is_empty() {
                break;
            }
            page_token = page.next_page_token;
        }
        for content in &acked {
            assert!(
                stored.contains(content),
                "{content} was acknowledged and lost"
            );
        }
    }
    eprintln!("calls refused with UNAVAILABLE during the restart: {refused}");
}
