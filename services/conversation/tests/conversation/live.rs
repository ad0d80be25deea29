//! Live streams: a client that stops reading is cut off instead of growing the
//! process, a caller holds a limited number of streams, and a visitor's stream
//! carries only its own conversation.

use std::time::Duration;

use futures::StreamExt;
use helpdesk_kit::auth::Role;
use helpdesk_kit::testing::TestEnv;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use tonic::Code;
use tonic::transport::Channel;

use super::support::{ACCOUNT, authed, spawn_app_with};

/// Stalled streams, each on its own connection.
const STALLED: usize = 40;
/// Messages sent while they stall.
const MESSAGES: usize = 2_000;
/// Characters per message (the largest a message may have is 10,000).
const CONTENT_CHARS: usize = 9_000;
/// Buffer per stream in this test.
const BUFFER_BYTES: usize = 1024 * 1024;

/// Resident and peak memory of this process (the service runs in it), in bytes.
fn memory() -> (u64, u64) {
    let status = std::fs::read_to_string("/proc/self/status").expect("proc status");
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            .expect("memory field")
            * 1024
    };
    (field("VmRSS:"), field("VmHWM:"))
}

/// A client on its own connection, with HTTP/2's smallest windows so that a client
/// that does not read holds little (the client runs in this process too).
async fn connect(port: u16) -> ConversationServiceClient<Channel> {
    let channel = Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("url")
        .initial_stream_window_size(65_535)
        .initial_connection_window_size(65_535)
        .connect()
        .await
        .expect("connect");
    ConversationServiceClient::new(channel)
}

#[tokio::test]
async fn streams_that_stop_reading_are_cut_off_and_memory_stays_bounded() {
    let app = spawn_app_with(TestEnv::new().await, |c| {
        c.live.buffer_bytes = BUFFER_BYTES;
        c.live.max_streams_per_caller = 4;
    })
    .await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "Hello").await;
    let conv = started.conversation.expect("conversation");

    // Streams whose clients never read: half follow the conversation, half the account.
    let mut stalled = Vec::new();
    for i in 0..STALLED {
        let token = app.token(ACCOUNT, &format!("watcher-{i}"), Role::Agent);
        let request = if i % 2 == 0 {
            SubscribeRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            }
        } else {
            SubscribeRequest::default()
        };
        let stream = connect(app.port)
            .await
            .subscribe(authed(request, &token))
            .await
            .expect("subscribe")
            .into_inner();
        stalled.push(stream);
    }
    // A visitor who keeps reading receives every message.
    let mut reader = connect(app.port)
        .await
        .subscribe(authed(
            SubscribeRequest {
                conversation_id: conv.id.clone(),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect("visitor subscribes")
        .into_inner();
    let read = tokio::spawn(async move {
        let mut seen = 0usize;
        while seen < MESSAGES {
            match tokio::time::timeout(Duration::from_secs(60), reader.next()).await {
                Ok(Some(Ok(r))) => {
                    if let Some(Update::MessageCreated(e)) = r.update
                        && e.message.is_some_and(|m| m.content.len() == CONTENT_CHARS)
                    {
                        seen += 1;
                    }
                }
                other => panic!("reader stream ended early after {seen}: {other:?}"),
            }
        }
        seen
    });

    let (baseline, _) = memory();
    let agent = app.agent();
    let content = "x".repeat(CONTENT_CHARS);
    let clients: Vec<_> = futures::future::join_all((0..4).map(|_| connect(app.port))).await;
    futures::stream::iter(0..MESSAGES)
        .for_each_concurrent(8, |i| {
            let mut client = clients[i % clients.len()].clone();
            let request = SendMessageRequest {
                conversation_id: conv.id.clone(),
                content: content.clone(),
                ..Default::default()
            };
            let agent = agent.clone();
            async move {
                client
                    .send_message(authed(request, &agent))
                    .await
                    .expect("send");
            }
        })
        .await;
    let seen = read.await.expect("reader");
    assert_eq!(seen, MESSAGES, "a reading stream misses nothing");
    let (_, peak) = memory();
    let grown = peak.saturating_sub(baseline);
    // With a copy per stream and no bound, every stalled stream would hold every
    // message: 40 x 2,000 x ~9 KB, more than 700 MB. Here each holds at most its
    // buffer (1 MiB, bodies shared between streams) plus what HTTP/2 has in flight.
    println!(
        "memory: baseline {} MiB, peak {} MiB, grown {} MiB",
        baseline >> 20,
        peak >> 20,
        grown >> 20
    );
    assert!(
        grown < 100 * 1024 * 1024,
        "memory grew by {} MiB with {STALLED} stalled streams",
        grown >> 20
    );

    // A stalled client that reads at last gets what was buffered, then
    // RESOURCE_EXHAUSTED: it fell behind and must resubscribe.
    let mut first = stalled.swap_remove(0);
    let mut delivered = 0;
    let ended = loop {
        match tokio::time::timeout(Duration::from_secs(30), first.next()).await {
            Ok(Some(Ok(_))) => delivered += 1,
            Ok(Some(Err(status))) => break status,
            other => panic!("stalled stream did not end with an error: {other:?}"),
        }
    };
    assert_eq!(ended.code(), Code::ResourceExhausted);
    assert!(
        delivered < MESSAGES / 2,
        "only what fitted was delivered ({delivered})"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_caller_holds_a_limited_number_of_streams() {
    let app = spawn_app_with(TestEnv::new().await, |c| {
        c.live.max_streams_per_caller = 3;
    })
    .await;
    let agent = app.agent();
    let mut open = Vec::new();
    for _ in 0..3 {
        open.push(
            app.client()
                .await
                .subscribe(authed(SubscribeRequest::default(), &agent))
                .await
                .expect("within the limit")
                .into_inner(),
        );
    }
    let refused = app
        .client()
        .await
        .subscribe(authed(SubscribeRequest::default(), &agent))
        .await
        .expect_err("over the limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    // Another caller is not affected; a closed stream frees its place.
    app.client()
        .await
        .subscribe(authed(SubscribeRequest::default(), &app.admin()))
        .await
        .expect("another caller");
    drop(open.pop());
    let reopened = helpdesk_kit::testing::eventually(Duration::from_secs(5), || async {
        let mut client = app.client().await;
        client
            .subscribe(authed(SubscribeRequest::default(), &agent))
            .await
            .ok()
    })
    .await;
    assert!(reopened.is_some(), "a closed stream frees its place");
    app.stop().await;
}

#[tokio::test]
async fn a_visitor_stream_carries_only_its_own_conversation() {
    let app = spawn_app_with(TestEnv::new().await, |_| {}).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let mine = app.visitor_starts(&inbox, "mine").await;
    let other = app.visitor_starts(&inbox, "other").await;
    let mine_id = mine.conversation.expect("conversation").id;
    let other_id = other.conversation.expect("conversation").id;
    let mut stream = app
        .client()
        .await
        .subscribe(authed(
            SubscribeRequest {
                conversation_id: mine_id.clone(),
                ..Default::default()
            },
            &mine.visitor_token,
        ))
        .await
        .expect("subscribe")
        .into_inner();
    let agent = app.agent();
    let mut client = app.client().await;
    for (id, text) in [(&other_id, "to the other"), (&mine_id, "to you")] {
        client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: id.clone(),
                    content: text.into(),
                    ..Default::default()
                },
                &agent,
            ))
            .await
            .expect("send");
    }
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next())
        .await
        .expect("an update")
        .expect("open")
        .expect("ok");
    match first.update {
        Some(Update::MessageCreated(e)) => {
            let m = e.message.expect("message");
            assert_eq!(m.conversation_id, mine_id);
            assert_eq!(m.content, "to you");
        }
        other => panic!("unexpected update {other:?}"),
    }
    app.stop().await;
}

#[tokio::test]
async fn a_connection_holds_a_limited_number_of_streams() {
    use tonic_types::StatusExt;
    let app = spawn_app_with(TestEnv::new().await, |c| {
        c.live.max_streams_per_connection = 3;
    })
    .await;
    let mut client = app.client().await;
    let mut open = Vec::new();
    for who in ["ana", "bob", "cid"] {
        let token = app.token(ACCOUNT, who, Role::Agent);
        open.push(
            client
                .subscribe(authed(SubscribeRequest::default(), &token))
                .await
                .expect("within the limit")
                .into_inner(),
        );
    }
    let refused = client
        .subscribe(authed(SubscribeRequest::default(), &app.agent()))
        .await
        .expect_err("over the connection's limit");
    assert_eq!(refused.code(), Code::ResourceExhausted);
    assert!(refused.message().contains("retry in"), "{refused:?}");
    let retry = refused.get_details_retry_info().expect("a retry delay");
    assert!(
        retry
            .retry_delay
            .is_some_and(|d| d >= Duration::from_secs(1))
    );
    // Ordinary calls still go through on that connection; another connection streams.
    client
        .list_inboxes(authed(ListInboxesRequest::default(), &app.admin()))
        .await
        .expect("a unary call beside the streams");
    app.client()
        .await
        .subscribe(authed(SubscribeRequest::default(), &app.agent()))
        .await
        .expect("another connection");
    app.stop().await;
}

/// Hundreds of widgets open at once on a few connections: each visitor's stream
/// carries exactly its own conversation's messages, whatever the others receive.
#[tokio::test]
async fn five_hundred_open_widgets_each_receive_only_their_own_messages() {
    const WIDGETS: usize = 500;
    const CONNECTIONS: usize = 5;
    const SPOKEN_TO: usize = 50;
    let app = spawn_app_with(TestEnv::new().await, |_| {}).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let mut clients = Vec::new();
    for _ in 0..CONNECTIONS {
        clients.push(app.client().await);
    }
    let starts = futures::stream::iter(0..WIDGETS)
        .map(|_| app.visitor_starts(&inbox, "hello"))
        .buffer_unordered(25)
        .collect::<Vec<_>>()
        .await;
    let mut widgets = Vec::new();
    for (i, started) in starts.into_iter().enumerate() {
        let id = started.conversation.expect("conversation").id;
        let stream = clients[i % CONNECTIONS]
            .subscribe(authed(
                SubscribeRequest {
                    conversation_id: id.clone(),
                    ..Default::default()
                },
                &started.visitor_token,
            ))
            .await
            .expect("subscribe")
            .into_inner();
        widgets.push((id, stream));
    }
    let agent = app.agent();
    let mut client = app.client().await;
    for (id, _) in widgets.iter().take(SPOKEN_TO) {
        client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: id.clone(),
                    content: format!("for {id}"),
                    ..Default::default()
                },
                &agent,
            ))
            .await
            .expect("send");
    }
    // One more message to the first conversation marks the end: once it has arrived,
    // everything sent before it has been dispatched to every stream.
    client
        .send_message(authed(
            SendMessageRequest {
                conversation_id: widgets[0].0.clone(),
                content: "last".into(),
                ..Default::default()
            },
            &agent,
        ))
        .await
        .expect("send");
    let received = |update: Option<Update>| match update {
        Some(Update::MessageCreated(e)) => e.message.map(|m| (m.conversation_id, m.content)),
        _ => None,
    };
    let (first_id, first) = &mut widgets[0];
    let mut got = Vec::new();
    while got.last().map(|(_, c): &(String, String)| c.as_str()) != Some("last") {
        let next = tokio::time::timeout(Duration::from_secs(10), first.next())
            .await
            .expect("the first widget's messages")
            .expect("open")
            .expect("ok");
        got.extend(received(next.update));
    }
    assert_eq!(
        got,
        [
            (first_id.clone(), format!("for {first_id}")),
            (first_id.clone(), "last".to_string())
        ]
    );
    for (i, (id, stream)) in widgets.iter_mut().enumerate().skip(1) {
        if i == SPOKEN_TO {
            // Every message has reached its widget, so all were dispatched: give a
            // wrongly routed one time to travel before looking at the silent widgets.
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
        let wait = Duration::from_millis(if i < SPOKEN_TO { 5_000 } else { 1 });
        let mut seen = Vec::new();
        while let Ok(Some(Ok(next))) = tokio::time::timeout(wait, stream.next()).await {
            seen.extend(received(next.update));
            if i < SPOKEN_TO {
                break;
            }
        }
        let expected = if i < SPOKEN_TO {
            vec![(id.clone(), format!("for {id}"))]
        } else {
            Vec::new()
        };
        assert_eq!(seen, expected, "widget {i} received only its own");
    }
    app.stop().await;
}

/// The service restarts while widgets are open: each reconnects after a jittered
/// pause, resumes after the last message it had, and ends up with every message of
/// its conversation exactly once and in order, including those sent while it was
/// away.
#[tokio::test]
async fn widgets_resume_after_a_restart_and_miss_nothing() {
    use std::sync::{Arc, Mutex};
    const WIDGETS: usize = 100;
    let app = spawn_app_with(TestEnv::new().await, |_| {}).await;
    let port = app.port;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let mut widgets = Vec::new();
    for _ in 0..WIDGETS {
        let started = app.visitor_starts(&inbox, "hello").await;
        widgets.push((
            started.conversation.expect("conversation").id,
            started.visitor_token,
        ));
    }
    let url = format!("http://127.0.0.1:{port}");
    let stop = helpdesk_kit::CancellationToken::new();
    // What each widget shows: (sequence, content) of the messages it received.
    type Shown = Arc<Mutex<Vec<(i64, String)>>>;
    let shown: Vec<Shown> = (0..WIDGETS).map(|_| Arc::default()).collect();
    let connected = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for (i, (conversation, token)) in widgets.iter().cloned().enumerate() {
        let (url, stop, shown, connected) = (
            url.clone(),
            stop.clone(),
            shown[i].clone(),
            connected.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut reconnects = 0;
            // The first message ("hello") is what the widget starts with.
            let mut last = 1;
            while !stop.is_cancelled() {
                let client = ConversationServiceClient::connect(url.clone()).await;
                let stream = match client {
                    Ok(mut client) => client
                        .subscribe(authed(
                            SubscribeRequest {
                                conversation_id: conversation.clone(),
                                resume_after_sequence: Some(last),
                                ..Default::default()
                            },
                            &token,
                        ))
                        .await
                        .ok(),
                    Err(_) => None,
                };
                if let Some(stream) = stream {
                    connected.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    let mut stream = stream.into_inner();
                    loop {
                        let next = tokio::select! {
                            _ = stop.cancelled() => return reconnects,
                            next = stream.next() => next,
                        };
                        let Some(Ok(update)) = next else { break };
                        if let Some(Update::MessageCreated(e)) = update.update
                            && let Some(m) = e.message
                        {
                            last = m.sequence;
                            shown.lock().expect("lock").push((m.sequence, m.content));
                        }
                    }
                    reconnects += 1;
                }
                // Jittered backoff, as the widget does.
                let pause = 100 + rand::random_range(0..900);
                tokio::time::sleep(Duration::from_millis(pause)).await;
            }
            reconnects
        }));
    }
    let all_connected = |n: usize| {
        let connected = connected.clone();
        async move {
            helpdesk_kit::testing::eventually(Duration::from_secs(30), || {
                let connected = connected.clone();
                async move { (connected.load(std::sync::atomic::Ordering::SeqCst) >= n).then_some(()) }
            })
            .await
        }
    };
    assert!(
        all_connected(WIDGETS).await.is_some(),
        "every widget connected"
    );
    let send = |port: u16, round: usize, widgets: Vec<(String, String)>, agent: String| async move {
        let mut client = ConversationServiceClient::connect(format!("http://127.0.0.1:{port}"))
            .await
            .expect("connect");
        for (conversation, _) in &widgets {
            client
                .send_message(authed(
                    SendMessageRequest {
                        conversation_id: conversation.clone(),
                        content: format!("round {round}"),
                        ..Default::default()
                    },
                    &agent,
                ))
                .await
                .expect("send");
        }
    };
    let agent = app.agent();
    send(port, 1, widgets.clone(), agent.clone()).await;

    // Restart on the same port; the widgets' streams end and they come back by
    // themselves, while round 2 is sent before most of them are back.
    let env = app.stop().await;
    let app = spawn_app_with(env, |c| {
        c.grpc_addr = format!("127.0.0.1:{port}").parse().expect("addr")
    })
    .await;
    send(port, 2, widgets.clone(), agent.clone()).await;
    assert!(
        all_connected(2 * WIDGETS).await.is_some(),
        "every widget reconnected"
    );
    send(port, 3, widgets.clone(), agent.clone()).await;

    let expected: Vec<String> = (1..=3).map(|r| format!("round {r}")).collect();
    let complete = helpdesk_kit::testing::eventually(Duration::from_secs(20), || {
        let shown = shown.clone();
        let expected = expected.clone();
        async move {
            shown
                .iter()
                .all(|s| s.lock().expect("lock").len() >= expected.len())
                .then_some(())
        }
    })
    .await;
    stop.cancel();
    for task in tasks {
        assert!(
            task.await.expect("join") >= 1,
            "each widget lost its stream once"
        );
    }
    for (i, s) in shown.iter().enumerate() {
        let s = s.lock().expect("lock");
        let contents: Vec<&str> = s.iter().map(|(_, c)| c.as_str()).collect();
        assert_eq!(
            contents, expected,
            "widget {i}: every message once, in order"
        );
        assert!(
            s.windows(2).all(|w| w[0].0 < w[1].0),
            "widget {i}: in sequence order"
        );
    }
    assert!(complete.is_some());
    app.stop().await;
}

/// Resuming names a conversation, a position that is a sequence, and a client not too
/// far behind; a visitor's replay never carries private notes.
#[tokio::test]
async fn resuming_is_checked_and_replays_only_what_the_caller_may_see() {
    use helpdesk_kit::grpc::violated_fields;
    let app = spawn_app_with(TestEnv::new().await, |_| {}).await;
    let inbox = app.inbox("", ReopenPolicy::Reopen).await;
    let started = app.visitor_starts(&inbox, "hello").await;
    let id = started.conversation.expect("conversation").id;
    let mut client = app.client().await;
    for (request, field) in [
        (
            SubscribeRequest {
                resume_after_sequence: Some(3),
                ..Default::default()
            },
            "resume_after_sequence",
        ),
        (
            SubscribeRequest {
                conversation_id: id.clone(),
                resume_after_sequence: Some(-1),
                ..Default::default()
            },
            "resume_after_sequence",
        ),
    ] {
        let e = client
            .subscribe(authed(request, &app.agent()))
            .await
            .expect_err("refused");
        assert_eq!(e.code(), Code::InvalidArgument);
        assert_eq!(violated_fields(&e), vec![field]);
    }
    let agent = app.agent();
    for (kind, content) in [
        (MessageKind::Note, "internal: VIP"),
        (MessageKind::Outgoing, "Hi!"),
    ] {
        client
            .send_message(authed(
                SendMessageRequest {
                    conversation_id: id.clone(),
                    kind: kind as i32,
                    content: content.into(),
                    ..Default::default()
                },
                &agent,
            ))
            .await
            .expect("send");
    }
    let mut stream = client
        .subscribe(authed(
            SubscribeRequest {
                conversation_id: id.clone(),
                resume_after_sequence: Some(1),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect("resume")
        .into_inner();
    let first = tokio::time::timeout(Duration::from_secs(5), stream.next())
        .await
        .expect("replayed")
        .expect("open")
        .expect("ok");
    match first.update {
        Some(Update::MessageCreated(e)) => {
            assert_eq!(
                e.message.expect("message").content,
                "Hi!",
                "the note is not replayed"
            );
        }
        other => panic!("unexpected {other:?}"),
    }
    // Far behind: more than a replay carries.
    sqlx::query(
        "INSERT INTO messages (id, account_id, conversation_id, sequence, kind, sender_kind, sender_id, content, attachments, created_at)
         SELECT gen_random_uuid(), account_id, id, 100 + g, 'outgoing', 2, 'agent-1', 'bulk', '[]', now()
         FROM conversations, generate_series(1, 1001) g WHERE id = $1::uuid",
    )
    .bind(&id)
    .execute(&app.pool)
    .await
    .expect("many messages");
    let e = client
        .subscribe(authed(
            SubscribeRequest {
                conversation_id: id.clone(),
                resume_after_sequence: Some(1),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect_err("too far behind");
    assert_eq!(e.code(), Code::OutOfRange);
    app.stop().await;
}
