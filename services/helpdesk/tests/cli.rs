//! The `helpdesk` binary end to end: `up` (conversation and routing) with private NATS
//! and PostgreSQL, `health`, `events tail`, `demo`, `token`, and a clean stop on SIGTERM.

use std::collections::HashMap;
use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use helpdesk_devservers::process::{free_port, port_open};
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, Command};

const BIN: &str = env!("CARGO_BIN_EXE_helpdesk");

/// The soft open-file limit `helpdesk up` is started with (below any hard limit), so
/// that raising it at start is seen.
const LOW_SOFT_NOFILE: u64 = 512;

fn helpdesk(data: &Path) -> Command {
    helpdesk_in(Command::new(BIN), data)
}

fn helpdesk_in(mut cmd: Command, data: &Path) -> Command {
    cmd.arg("--data-dir").arg(data);
    for var in [
        "HELPDESK_NATS_URL",
        "NATS_URL",
        "HELPDESK_DATABASE_URL",
        "DATABASE_URL",
        "HELPDESK_JWT_SECRET",
    ] {
        cmd.env_remove(var);
    }
    cmd.kill_on_drop(true);
    cmd
}

async fn wait_for_line(child: &mut Child, needle: &str, limit: Duration) -> Vec<String> {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let mut seen = Vec::new();
    let found = tokio::time::timeout(limit, async {
        while let Ok(Some(line)) = lines.next_line().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "never printed {needle:?}; output:\n{}",
        seen.join("\n")
    );
    // Keep draining so the child never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    seen
}

/// Sends `sig` (e.g. `-TERM`) to process `pid`.
async fn signal(pid: u32, sig: &str) {
    let _ = Command::new("kill")
        .arg(sig)
        .arg(pid.to_string())
        .status()
        .await;
}

/// The ports `helpdesk up` listens on.
struct Ports {
    grpc: u16,
    routing: u16,
    ticketing: u16,
    automation: u16,
    notification: u16,
    nats: u16,
    pg: u16,
}

impl Ports {
    fn new(grpc: u16, nats: u16, pg: u16) -> Self {
        Self {
            grpc,
            routing: grpc + 1,
            ticketing: grpc + 2,
            automation: grpc + 3,
            notification: grpc + 4,
            nats,
            pg,
        }
    }

    /// Free ports; conversation takes the base port, routing, ticketing, automation
    /// and notification the next four.
    async fn free() -> Self {
        let grpc = loop {
            let port = free_port().expect("port");
            if port < u16::MAX - 4
                && !port_open(port + 1).await
                && !port_open(port + 2).await
                && !port_open(port + 3).await
                && !port_open(port + 4).await
            {
                break port;
            }
        };
        loop {
            let (nats, pg) = (free_port().expect("port"), free_port().expect("port"));
            let taken = [grpc + 1, grpc + 2, grpc + 3, grpc + 4];
            if !taken.contains(&nats) && !taken.contains(&pg) && nats != pg {
                return Self::new(grpc, nats, pg);
            }
        }
    }
}

/// Starts `helpdesk up` on `data` and `ports`, stdout piped.
fn start_up(data: &Path, ports: &Ports) -> Child {
    // util-linux's prlimit lowers the soft limit and then runs the command in its place.
    let mut launcher = Command::new("prlimit");
    launcher
        .arg(format!("--nofile={LOW_SOFT_NOFILE}:"))
        .arg("--")
        .arg(BIN);
    helpdesk_in(launcher, data)
        .args([
            "up",
            "--grpc-base-port",
            &ports.grpc.to_string(),
            "--nats-port",
            &ports.nats.to_string(),
        ])
        .args(["--postgres-port", &ports.pg.to_string()])
        // The admin port of a free choice; the banner names it.
        .args(["--admin-port", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn helpdesk up")
}

#[tokio::test]
async fn up_serves_the_demo_and_stops_cleanly() {
    let data = data_dir();
    let Ports {
        grpc,
        routing,
        ticketing,
        automation,
        notification,
        nats,
        pg,
    } = Ports::free().await;
    let mut up = start_up(&data, &Ports::new(grpc, nats, pg));
    let banner = wait_for_line(&mut up, "Ctrl-C stops everything", Duration::from_secs(90)).await;
    assert!(banner.iter().any(|l| l.contains("helpdesk is up")));
    // The soft open-file limit it was started with is raised to the hard limit.
    let limits =
        std::fs::read_to_string(format!("/proc/{}/limits", up.id().expect("pid"))).expect("limits");
    let (soft, hard) = limits
        .lines()
        .find_map(|l| {
            let rest = l.strip_prefix("Max open files")?;
            let mut it = rest.split_whitespace();
            Some((it.next()?.to_string(), it.next()?.to_string()))
        })
        .expect("open-file limits");
    assert_eq!(soft, hard, "soft raised to hard");
    assert_ne!(soft, LOW_SOFT_NOFILE.to_string());
    assert!(
        banner
            .iter()
            .any(|l| l.contains(&format!("open files    up to {hard}"))),
        "the banner says so: {banner:?}"
    );
    assert!(
        banner
            .iter()
            .any(|l| l.contains("routing") && l.contains(&format!("grpc://127.0.0.1:{routing}"))),
        "the banner lists routing: {banner:?}"
    );
    let addr = format!("http://127.0.0.1:{grpc}");
    let routing_addr = format!("http://127.0.0.1:{routing}");
    let ticketing_addr = format!("http://127.0.0.1:{ticketing}");
    let notification_addr = format!("http://127.0.0.1:{notification}");
    let automation_addr = format!("http://127.0.0.1:{automation}");

    for service in [
        &addr,
        &routing_addr,
        &ticketing_addr,
        &automation_addr,
        &notification_addr,
    ] {
        let health = helpdesk(&data)
            .args(["health", "--addr", service])
            .output()
            .await
            .expect("health");
        assert!(health.status.success(), "{service} healthy");
        assert_eq!(String::from_utf8_lossy(&health.stdout).trim(), "SERVING");
    }

    let mut tail = helpdesk(&data)
        .args(["events", "tail", "--account", "demo"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn tail");
    // Tail announces itself on stderr once subscribed.
    let mut err = BufReader::new(tail.stderr.take().expect("stderr")).lines();
    let announced = tokio::time::timeout(Duration::from_secs(10), err.next_line()).await;
    assert!(
        matches!(announced, Ok(Ok(Some(ref l))) if l.contains("tailing")),
        "{announced:?}"
    );

    let demo = helpdesk(&data)
        .args([
            "demo",
            "--conversation",
            &addr,
            "--routing",
            &routing_addr,
            "--ticketing",
            &ticketing_addr,
            "--notification",
            &notification_addr,
            "--automation",
            &automation_addr,
        ])
        .output()
        .await
        .expect("demo");
    let demo_out = String::from_utf8_lossy(&demo.stdout);
    assert!(
        demo.status.success(),
        "demo failed: {demo_out}\n{}",
        String::from_utf8_lossy(&demo.stderr)
    );
    assert!(
        demo_out.contains("[agent sees] conversation assigned to ana by routing"),
        "{demo_out}"
    );
    assert!(
        demo_out
            .contains("[visitor sees] activity message from system: Ana joined the conversation"),
        "{demo_out}"
    );
    assert!(
        demo_out.contains("[admin] added the rule \"Thank on close (Demo website)\""),
        "{demo_out}"
    );
    assert!(
        demo_out.contains(
            "[automation] the rule \"Thank on close (Demo website)\" thanked the customer"
        ),
        "{demo_out}"
    );
    assert!(
        demo_out.contains("[agent sees] incoming message"),
        "{demo_out}"
    );
    assert!(
        demo_out.contains("[visitor sees] outgoing message from ana"),
        "{demo_out}"
    );
    assert!(
        demo_out.contains("[agent li] is offered the conversation by ana"),
        "{demo_out}"
    );
    assert!(
        demo_out
            .contains("[li's notifications] Ana offers you a conversation (1 unread, sound on)"),
        "{demo_out}"
    );
    assert!(
        demo_out.contains(
            "[visitor sees] activity message from system: Transferring you to another agent…"
        ),
        "{demo_out}"
    );
    assert!(
        demo_out
            .contains("[visitor sees] activity message from system: Li joined the conversation"),
        "{demo_out}"
    );
    assert!(
        demo_out.contains("[visitor sees] outgoing message from li"),
        "{demo_out}"
    );
    for line in ["Ticket #1 created", "Your ticket #1 is now: Solved"] {
        assert!(
            demo_out.contains(&format!(
                "[visitor sees] activity message from system: {line}"
            )),
            "{demo_out}"
        );
    }
    assert!(!demo_out.contains("[visitor sees] note"), "{demo_out}");
    assert!(demo_out.contains("Demo complete"), "{demo_out}");
    // Li's figures as CSV: one offer, accepted.
    let today = chrono::Utc::now().date_naive().to_string();
    let stats = helpdesk(&data)
        .args([
            "transfers",
            "stats",
            "--account",
            "demo",
            "--from",
            &today,
            "--routing",
            &routing_addr,
        ])
        .output()
        .await
        .expect("transfers stats");
    let csv = String::from_utf8_lossy(&stats.stdout);
    assert!(
        stats.status.success(),
        "{csv}{}",
        String::from_utf8_lossy(&stats.stderr)
    );
    assert!(csv.starts_with("agent,offers,accepted,"), "{csv}");
    assert!(csv.contains("\nli,1,1,0,0,0,0,1.000,"), "{csv}");

    // Ctrl-C ends the tail cleanly; what it printed is one JSON object a line.
    tokio::time::sleep(Duration::from_millis(500)).await;
    signal(tail.id().expect("pid"), "-INT").await;
    let stopped = tokio::time::timeout(Duration::from_secs(5), tail.wait()).await;
    assert!(
        matches!(stopped, Ok(Ok(status)) if status.success()),
        "{stopped:?}"
    );
    let mut tailed = String::new();
    tail.stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut tailed)
        .await
        .expect("read tail");
    let events = json_lines(&tailed);
    let of = |kind: &'static str| events.iter().filter(move |e| e["type"] == kind);
    assert!(
        of("message.created").any(|e| e["data"]["message"]["content"]
            .as_str()
            .is_some_and(|c| c.contains("parcel #42"))),
        "messages in protobuf's JSON mapping: {tailed}"
    );
    assert!(
        of("routing.assigned").any(|e| e["data"]["agentName"] == "Ana"),
        "routing events too: {tailed}"
    );
    assert!(events.iter().all(|e| e["account"] == "demo"));
    check_with_protobuf(&events);

    // From the start, only one type: the same messages again, and nothing else.
    let replay = helpdesk(&data)
        .args([
            "events",
            "tail",
            "--from-start",
            "--type",
            "message.created",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn tail");
    let created = of("message.created").count();
    let mut lines = BufReader::new(replay.stdout.expect("stdout")).lines();
    for _ in 0..created {
        let line = tokio::time::timeout(Duration::from_secs(10), lines.next_line())
            .await
            .expect("replayed in time")
            .expect("read")
            .expect("a line");
        let event: serde_json::Value = serde_json::from_str(&line).expect("JSON");
        assert_eq!(event["type"], "message.created", "{line}");
    }

    let token = helpdesk(&data)
        .args([
            "token",
            "--account",
            "acme",
            "--role",
            "supervisor",
            "--subject",
            "sam",
        ])
        .output()
        .await
        .expect("token");
    assert!(token.status.success());
    let secret = std::fs::read_to_string(data.join("jwt-secret")).expect("generated secret");
    let claims = JwtKeys::new(secret.trim().as_bytes())
        .verify(String::from_utf8_lossy(&token.stdout).trim())
        .expect("minted token verifies");
    assert_eq!(
        (claims.acct.as_str(), claims.sub.as_str(), claims.role),
        ("acme", "sam", Role::Supervisor)
    );
    let bad = helpdesk(&data)
        .args([
            "token",
            "--account",
            "a.b",
            "--role",
            "agent",
            "--subject",
            "x",
        ])
        .output()
        .await
        .expect("token");
    assert!(!bad.status.success(), "an account with a dot is refused");

    let pid = up.id().expect("pid");
    signal(pid, "-TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait())
        .await
        .expect("stops within 30 s")
        .expect("wait");
    assert!(status.success(), "clean exit on SIGTERM: {status:?}");
    for port in [grpc, routing, nats, pg] {
        assert!(!port_open(port).await, "port {port} released");
    }
    let _ = std::fs::remove_dir_all(&data);
}

/// `kill -9` of `helpdesk up` takes its private servers down with it, and the next
/// start on the same folder stops any server an earlier run left behind.
#[tokio::test]
async fn up_after_a_crash_starts_again_on_the_same_folder() {
    let (data, ports, mut up) = ready_up().await;
    let pid = up.id().expect("pid");
    signal(pid, "-KILL").await;
    let _ = up.wait().await;
    // Its NATS and PostgreSQL go with it.
    let mut released = false;
    for _ in 0..100 {
        if !port_open(ports.nats).await && !port_open(ports.pg).await {
            released = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    assert!(released, "the private servers stopped with their owner");

    // A server an older run left running on the folder (here: started detached, as a
    // run without parent-death signals would leave it) is stopped by the next start.
    let mut leftover = helpdesk_devservers::process::start_nats(
        &data.join("nats"),
        ports.nats,
        helpdesk_devservers::process::Lifetime::Detached,
    )
    .await
    .expect("leftover nats");
    assert!(port_open(ports.nats).await);
    let mut up = start_up(&data, &ports);
    wait_for_line(&mut up, "Ctrl-C stops everything", Duration::from_secs(90)).await;
    assert!(
        !std::path::Path::new(&format!("/proc/{}", leftover.pid)).exists(),
        "the leftover server was stopped"
    );
    let health = helpdesk(&data)
        .args([
            "health",
            "--addr",
            &format!("http://127.0.0.1:{}", ports.grpc),
        ])
        .output()
        .await
        .expect("health");
    assert!(health.status.success(), "serving again");
    signal(up.id().expect("pid"), "-TERM").await;
    let status = tokio::time::timeout(Duration::from_secs(30), up.wait())
        .await
        .expect("stops within 30 s")
        .expect("wait");
    assert!(status.success(), "clean exit: {status:?}");
    leftover.stop().await;
    let _ = std::fs::remove_dir_all(&data);
}

/// `kill -9` in the middle of a stream of messages, then the README's start again:
/// every message whose SendMessage was answered OK is stored once and published once.
#[tokio::test]
async fn kill_9_under_load_loses_no_acknowledged_message() {
    use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
    use helpdesk_proto::conversation::v1::*;

    let (data, ports, mut up) = ready_up().await;
    let admin = token(&data, "crash", "admin", Role::Admin);
    let addr = format!("http://127.0.0.1:{}", ports.grpc);
    let authed = |token: &str| {
        let value: tonic::metadata::MetadataValue<_> =
            format!("Bearer {token}").parse().expect("header");
        move |mut r: tonic::Request<()>| {
            r.metadata_mut().insert("authorization", value.clone());
            Ok(r)
        }
    };
    let mut client =
        ConversationServiceClient::with_interceptor(channel(ports.grpc), authed(&admin));
    let inbox = client
        .create_inbox(CreateInboxRequest {
            inbox: Some(Inbox {
                name: "Web".into(),
                channel_kind: ChannelKind::WebWidget as i32,
                ..Default::default()
            }),
        })
        .await
        .expect("inbox")
        .into_inner();
    // A visitor starts the chat: no token.
    let started = ConversationServiceClient::new(channel(ports.grpc))
        .start_conversation(StartConversationRequest {
            inbox_public_key: inbox.public_key,
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner();
    let conversation = started.conversation.expect("conversation").id;
    let visitor = started.visitor_token;

    // Four senders until the platform dies under them.
    let acknowledged = std::sync::Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let mut senders = Vec::new();
    for s in 0..4 {
        let (addr, conversation, visitor, acknowledged) = (
            addr.clone(),
            conversation.clone(),
            visitor.clone(),
            acknowledged.clone(),
        );
        let auth = authed(&visitor);
        senders.push(tokio::spawn(async move {
            let Ok(channel) = tonic::transport::Channel::from_shared(addr)
                .expect("url")
                .connect()
                .await
            else {
                return;
            };
            let mut client = ConversationServiceClient::with_interceptor(channel, auth);
            for i in 0.. {
                let content = format!("m-{s}-{i}");
                let sent = client
                    .send_message(SendMessageRequest {
                        conversation_id: conversation.clone(),
                        content: content.clone(),
                        client_message_id: content.clone(),
                        ..Default::default()
                    })
                    .await;
                match sent {
                    Ok(_) => acknowledged.lock().expect("lock").push(content),
                    Err(_) => return,
                }
            }
        }));
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    signal(up.id().expect("pid"), "-KILL").await;
    let _ = up.wait().await;
    for s in senders {
        let _ = s.await;
    }
    let acknowledged = acknowledged.lock().expect("lock").clone();
    assert!(acknowledged.len() > 20, "load ran: {}", acknowledged.len());

    // The README's command again, on the same folder.
    let mut up = start_up(&data, &ports);
    wait_for_line(&mut up, "Ctrl-C stops everything", Duration::from_secs(90)).await;
    let mut client =
        ConversationServiceClient::with_interceptor(channel(ports.grpc), authed(&visitor));
    let mut stored: HashMap<String, usize> = HashMap::new();
    let mut page_token = String::new();
    loop {
        let page = client
            .list_messages(ListMessagesRequest {
                conversation_id: conversation.clone(),
                page_size: 100,
                page_token,
                ..Default::default()
            })
            .await
            .expect("list")
            .into_inner();
        for m in page.messages {
            *stored.entry(m.content).or_default() += 1;
        }
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    for content in &acknowledged {
        assert_eq!(stored.get(content), Some(&1), "{content} stored once");
    }

    // And each was published once (the relay finishes after the restart).
    let nats_url = std::fs::read_to_string(data.join("nats-url")).expect("nats url");
    let js = async_nats::jetstream::new(async_nats::connect(nats_url.trim()).await.expect("nats"));
    let stream = js.get_stream("HELPDESK_EVENTS").await.expect("stream");
    let mut published: HashMap<String, usize> = HashMap::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        published.clear();
        let consumer = stream
            .create_consumer(async_nats::jetstream::consumer::pull::Config {
                filter_subject: "helpdesk.evt.crash.message.created".into(),
                ack_policy: async_nats::jetstream::consumer::AckPolicy::None,
                ..Default::default()
            })
            .await
            .expect("consumer");
        let mut batch = consumer
            .fetch()
            .max_messages(100_000)
            .expires(Duration::from_secs(1))
            .messages()
            .await
            .expect("fetch");
        while let Some(Ok(m)) = futures::StreamExt::next(&mut batch).await {
            if let Ok(e) = <MessageCreated as prost::Message>::decode(m.payload.clone()) {
                *published
                    .entry(e.message.map(|m| m.content).unwrap_or_default())
                    .or_default() += 1;
            }
        }
        if acknowledged.iter().all(|c| published.contains_key(c)) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    for content in &acknowledged {
        assert_eq!(published.get(content), Some(&1), "{content} published once");
    }

    // `helpdesk status`, as an operator reads it after the crash: every service
    // serving, the outboxes and consumers caught up, no dead letters, and the chat
    // (no agent in this account) waiting in the queue.
    let mut status = serde_json::Value::Null;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while tokio::time::Instant::now() < deadline {
        status = status_json(&data, &ports).await;
        let caught_up = |key: &str, field: &str| {
            status[key]
                .as_array()
                .is_some_and(|rows| rows.iter().all(|r| r[field] == 0))
        };
        if caught_up("outbox", "backlog") && caught_up("consumers", "pending") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let names = |key: &str, field: &str| -> Vec<String> {
        let rows = status[key].as_array().cloned().unwrap_or_default();
        rows.iter()
            .map(|r| r[field].as_str().unwrap_or_default().to_string())
            .collect()
    };
    let every = [
        "conversation",
        "routing",
        "ticketing",
        "automation",
        "notification",
    ];
    assert_eq!(names("services", "name"), every, "{status:#}");
    assert_eq!(names("services", "health"), ["SERVING"; 5], "{status:#}");
    assert_eq!(names("outbox", "service"), every, "{status:#}");
    assert_eq!(names("consumers", "name").len(), 5, "{status:#}");
    for key in ["outbox", "consumers"] {
        let field = if key == "outbox" {
            "backlog"
        } else {
            "pending"
        };
        assert!(
            status[key]
                .as_array()
                .expect(key)
                .iter()
                .all(|r| r[field] == 0),
            "caught up: {status:#}"
        );
    }
    assert!(
        status["deadLetters"]
            .as_array()
            .expect("dead letters")
            .iter()
            .all(|d| d["count"] == 0),
        "{status:#}"
    );
    let queues = status["queues"].as_array().expect("queues");
    assert_eq!(queues.len(), 1, "{status:#}");
    assert_eq!(
        (&queues[0]["account"], &queues[0]["waiting"]),
        (&"crash".into(), &1.into())
    );
    assert_eq!(status["problems"], serde_json::json!([]), "{status:#}");

    stop_up(up, &data).await;
}

/// Each line of `text` as JSON.
fn json_lines(text: &str) -> Vec<serde_json::Value> {
    text.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

/// Checks each tailed event's `data` against protobuf's own JSON mapping.
fn check_with_protobuf(events: &[serde_json::Value]) {
    let cases: Vec<(String, serde_json::Value)> = events
        .iter()
        .map(|e| {
            let name = e["protoType"].as_str().expect("a protobuf type");
            (name.to_string(), e["data"].clone())
        })
        .collect();
    helpdesk_tests::protobuf_json::check(&cases);
}

/// `helpdesk status --json` against the `helpdesk up` of `data` on `ports`.
async fn status_json(data: &Path, ports: &Ports) -> serde_json::Value {
    let out = helpdesk(data)
        .args([
            "status",
            "--json",
            "--grpc-base-port",
            &ports.grpc.to_string(),
        ])
        .output()
        .await
        .expect("helpdesk status");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// `helpdesk dlq` as `helpdesk up` JSON-lists it.
async fn dlq_list(data: &Path) -> Vec<serde_json::Value> {
    let out = helpdesk(data)
        .args(["dlq", "list", "--json"])
        .output()
        .await
        .expect("helpdesk dlq list");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    json_lines(&String::from_utf8_lossy(&out.stdout))
}

/// Runs `helpdesk dlq <args>`, expecting success; its output.
async fn dlq(data: &Path, args: &[&str]) -> String {
    let out = helpdesk(data)
        .arg("dlq")
        .args(args)
        .output()
        .await
        .expect("helpdesk dlq");
    assert!(
        out.status.success(),
        "dlq {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Waits (20 s at most) until the list satisfies `done`.
async fn dlq_until(
    data: &Path,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let list = dlq_list(data).await;
        if done(&list) || tokio::time::Instant::now() > deadline {
            return list;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

#[tokio::test]
async fn dead_letters_and_parked_events_are_listed_replayed_and_discarded() {
    use helpdesk_proto::common::v1::EventMeta;
    use helpdesk_proto::routing::v1::ConversationAssigned;
    use prost::{Message, Name};

    let (data, _ports, up) = ready_up().await;
    let nats_url = std::fs::read_to_string(data.join("nats-url")).expect("nats url");
    let nats = async_nats::connect(nats_url.trim()).await.expect("nats");
    let js = async_nats::jetstream::new(nats.clone());

    // An assignment for a conversation the conversation service has never seen: its
    // consumer gives up on it.
    let (event_id, missing) = (
        uuid::Uuid::now_v7().to_string(),
        uuid::Uuid::now_v7().to_string(),
    );
    let event = ConversationAssigned {
        meta: Some(EventMeta {
            event_id: event_id.clone(),
            account_id: "acme".into(),
            ..Default::default()
        }),
        conversation_id: missing.clone(),
        agent_id: "ana".into(),
        ..Default::default()
    };
    let mut h = async_nats::HeaderMap::new();
    h.insert("ce-specversion", "1.0");
    h.insert("ce-id", event_id.as_str());
    h.insert("Nats-Msg-Id", event_id.as_str());
    h.insert("ce-type", ConversationAssigned::full_name().as_str());
    h.insert("ce-source", "/helpdesk/routing");
    h.insert("ce-subject", missing.as_str());
    h.insert("content-type", "application/protobuf");
    js.publish_with_headers(
        "helpdesk.evt.acme.routing.assigned",
        h,
        event.encode_to_vec().into(),
    )
    .await
    .expect("publish")
    .await
    .expect("ack");
    let list = dlq_until(&data, |l| !l.is_empty()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    let letter = &list[0];
    assert_eq!(letter["source"], "consumer");
    assert_eq!(letter["owner"], "conversation");
    assert_eq!(letter["eventId"], event_id.as_str());
    assert_eq!(letter["subject"], "helpdesk.evt.acme.routing.assigned");
    assert!(
        letter["reason"]
            .as_str()
            .is_some_and(|r| r.contains("not found")),
        "{letter}"
    );
    let first = letter["id"].as_str().expect("id").to_string();
    let shown: serde_json::Value =
        serde_json::from_str(&dlq(&data, &["show", &first]).await).expect("JSON");
    assert_eq!(shown["data"]["conversationId"], missing.as_str(), "{shown}");

    // Replayed, it reaches the consumer again, which gives up again: a new letter.
    assert!(dlq(&data, &["replay", &first]).await.contains("replayed"));
    let list = dlq_until(&data, |l| l.len() == 1 && l[0]["id"] != first.as_str()).await;
    assert_eq!(list.len(), 1, "{list:?}");
    assert_ne!(
        list[0]["id"],
        first.as_str(),
        "delivered and dead-lettered again"
    );
    assert_eq!(list[0]["eventId"], event_id.as_str());

    // An event parked in the conversation service's outbox: replayed, the relay
    // publishes it.
    let database_url = std::fs::read_to_string(data.join("database-url")).expect("database url");
    let db = sqlx::PgPool::connect(database_url.trim())
        .await
        .expect("db");
    let parked_id = uuid::Uuid::now_v7();
    let meta = EventMeta {
        event_id: parked_id.to_string(),
        account_id: "acme".into(),
        ..Default::default()
    };
    sqlx::query(
        "INSERT INTO conversation.outbox_parked
             (id, event_id, subject, event_type, ce_subject, payload, occurred_at, reason)
         VALUES (900001, $1, 'acme.test.parked', 'helpdesk.common.v1.EventMeta', '', $2, now(),
                 'refused by NATS')",
    )
    .bind(parked_id)
    .bind(meta.encode_to_vec())
    .execute(&db)
    .await
    .expect("park an event");
    let list = dlq_list(&data).await;
    let parked = list
        .iter()
        .find(|e| e["id"] == "conversation/900001")
        .unwrap_or_else(|| panic!("{list:?}"));
    assert_eq!(
        (&parked["source"], &parked["reason"]),
        (&"outbox".into(), &"refused by NATS".into())
    );
    assert_eq!(parked["subject"], "helpdesk.evt.acme.test.parked");
    let mut published = nats
        .subscribe("helpdesk.evt.acme.test.parked")
        .await
        .expect("subscribe");
    nats.flush().await.expect("flush");
    dlq(&data, &["replay", "conversation/900001"]).await;
    let again = tokio::time::timeout(
        Duration::from_secs(10),
        futures::StreamExt::next(&mut published),
    )
    .await
    .expect("published by the relay")
    .expect("a message");
    assert_eq!(
        EventMeta::decode(again.payload).expect("decode").event_id,
        parked_id.to_string()
    );

    // Discarded: nothing left.
    dlq(&data, &["discard", "--all"]).await;
    assert_eq!(dlq_list(&data).await, Vec::<serde_json::Value>::new());
    assert!(
        dlq(&data, &["list"])
            .await
            .contains("nothing dead-lettered or parked")
    );

    stop_up(up, &data).await;
}

#[tokio::test]
async fn logs_are_json_lines_with_their_trace_ids_when_asked() {
    let (data, ports) = (data_dir(), Ports::free().await);
    let mut up = helpdesk(&data)
        .args(["up", "--grpc-base-port", &ports.grpc.to_string()])
        .args(["--nats-port", &ports.nats.to_string()])
        .args(["--postgres-port", &ports.pg.to_string()])
        .args(["--admin-port", "0"])
        .env("HELPDESK_LOG_FORMAT", "json")
        // The gRPC layer's request logs, written inside each request's span.
        .env("RUST_LOG", "info,tower_http=debug")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start helpdesk up");
    let mut lines = BufReader::new(up.stdout.take().expect("stdout")).lines();
    let mut logs = Vec::new();
    let ready = tokio::time::timeout(Duration::from_secs(90), async {
        while let Ok(Some(line)) = lines.next_line().await {
            if line.starts_with('{') {
                logs.push(line);
            } else if line.contains("Ctrl-C stops everything") {
                return true;
            }
        }
        false
    })
    .await;
    assert!(matches!(ready, Ok(true)), "never ready: {logs:?}");
    // A health probe is logged but makes no trace of its own.
    assert!(healthy(&data, ports.grpc).await);
    let probe = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            logs.push(line.clone());
            if line.contains("started processing request") {
                return Some(line);
            }
        }
        None
    })
    .await
    .expect("the probe is logged")
    .expect("a line");
    assert!(!probe.contains("trace_id"), "{probe}");
    // A customer-facing call (here refused: no token) is traced.
    use helpdesk_proto::conversation::v1::ListInboxesRequest;
    use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
    let refused = ConversationServiceClient::connect(format!("http://127.0.0.1:{}", ports.grpc))
        .await
        .expect("connect")
        .list_inboxes(ListInboxesRequest::default())
        .await
        .expect_err("no token");
    assert_eq!(refused.code(), tonic::Code::Unauthenticated);
    let traced = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(line)) = lines.next_line().await {
            let traced = line.contains("trace_id");
            logs.push(line);
            if traced {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(traced, Ok(true)),
        "no line with a trace id: {logs:?}"
    );
    for line in &logs {
        let log: serde_json::Value =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}"));
        for key in ["timestamp", "level", "target", "message"] {
            assert!(log[key].is_string(), "{key} in {line}");
        }
    }
    let last: serde_json::Value = serde_json::from_str(logs.last().expect("a line")).expect("JSON");
    assert_eq!(last["span"], "grpc.request");
    assert_eq!(last["trace_id"].as_str().map(str::len), Some(32), "{last}");
    assert_eq!(last["span_id"].as_str().map(str::len), Some(16), "{last}");

    stop_up(up, &data).await;
}

/// A fresh data folder for `helpdesk up`.
/// A token, valid for an hour, that the `helpdesk up` keeping `data` accepts.
fn token(data: &Path, account: &str, subject: &str, role: Role) -> String {
    let secret = std::fs::read_to_string(data.join("jwt-secret")).expect("secret");
    JwtKeys::new(secret.trim().as_bytes()).mint(&Claims::new(
        account,
        subject,
        role,
        chrono::Duration::hours(1),
    ))
}

/// A channel to a local port, connected on first use.
fn channel(port: u16) -> tonic::transport::Channel {
    tonic::transport::Channel::from_shared(format!("http://127.0.0.1:{port}"))
        .expect("url")
        .connect_lazy()
}

fn data_dir() -> std::path::PathBuf {
    std::env::temp_dir().join(format!("helpdesk-cli-{}", uuid::Uuid::new_v4().simple()))
}

/// `helpdesk up` on a fresh data folder and free ports, once it is ready.
async fn ready_up() -> (std::path::PathBuf, Ports, Child) {
    let (data, ports) = (data_dir(), Ports::free().await);
    let mut up = start_up(&data, &ports);
    wait_for_line(&mut up, "Ctrl-C stops everything", Duration::from_secs(90)).await;
    (data, ports, up)
}

/// Stops `up` (SIGTERM, 30 s at most) and removes its data folder.
async fn stop_up(mut up: Child, data: &Path) {
    signal(up.id().expect("pid"), "-TERM").await;
    let _ = tokio::time::timeout(Duration::from_secs(30), up.wait()).await;
    let _ = std::fs::remove_dir_all(data);
}

/// Whether `helpdesk health` finds the service on `port` serving.
async fn healthy(data: &Path, port: u16) -> bool {
    helpdesk(data)
        .args(["health", "--addr", &format!("http://127.0.0.1:{port}")])
        .output()
        .await
        .expect("helpdesk health")
        .status
        .success()
}

/// Every line `child` writes to stdout, kept as it comes.
fn collect_stdout(child: &mut Child) -> std::sync::Arc<std::sync::Mutex<Vec<String>>> {
    let lines = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut reader = BufReader::new(child.stdout.take().expect("piped stdout")).lines();
    let kept = lines.clone();
    tokio::spawn(async move {
        while let Ok(Some(line)) = reader.next_line().await {
            kept.lock().expect("lock").push(line);
        }
    });
    lines
}

/// Waits (at most `limit`) until a line satisfies `hit`; that line.
async fn line_where(
    lines: &std::sync::Mutex<Vec<String>>,
    limit: Duration,
    hit: impl Fn(&str) -> bool,
) -> Option<String> {
    let deadline = std::time::Instant::now() + limit;
    loop {
        if let Some(line) = lines.lock().expect("lock").iter().find(|l| hit(l)) {
            return Some(line.clone());
        }
        if std::time::Instant::now() > deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_customer_action_is_one_trace_and_the_metrics_can_be_scraped() {
    use helpdesk_kit::testing::http::Receiver;
    use helpdesk_kit::testing::otlp::{Collector, Span, Trace};
    use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
    use helpdesk_proto::conversation::v1::*;
    use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
    use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
    use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
    use helpdesk_proto::routing::v1::{Agent, CreateAgentRequest, Presence, SetPresenceRequest};
    use helpdesk_tests::platform::authed;

    let (data, ports) = (data_dir(), Ports::free().await);
    let otlp = loop {
        let port = free_port().expect("port");
        if port < ports.grpc || port > ports.notification {
            break port;
        }
    };
    // The collector is not there yet: the platform says so once, and carries on.
    let mut up = helpdesk(&data)
        .args(["up", "--grpc-base-port", &ports.grpc.to_string()])
        .args(["--nats-port", &ports.nats.to_string()])
        .args(["--postgres-port", &ports.pg.to_string()])
        .args(["--admin-port", "0"])
        .env(
            "OTEL_EXPORTER_OTLP_ENDPOINT",
            format!("http://127.0.0.1:{otlp}"),
        )
        .env("OTEL_BSP_SCHEDULE_DELAY", "200")
        .env("OTEL_METRIC_EXPORT_INTERVAL", "500")
        .env("HELPDESK_LOG_FORMAT", "json")
        // The recovery is an info line, whatever the caller's filter.
        .env("RUST_LOG", "info")
        .env("HELPDESK_NOTIFICATION__ALLOW_LOOPBACK_TARGETS", "true")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start helpdesk up");
    let out = collect_stdout(&mut up);
    let limit = Duration::from_secs(90);
    line_where(&out, limit, |l| l.contains("Ctrl-C stops everything"))
        .await
        .expect("ready");
    let metrics_url = line_where(&out, limit, |l| l.trim_start().starts_with("metrics"))
        .await
        .expect("the banner names the metrics")
        .split_whitespace()
        .nth(1)
        .expect("a URL")
        .to_string();
    let failing = |l: &str| l.contains("OpenTelemetry export failing");
    let first = line_where(&out, Duration::from_secs(20), failing)
        .await
        .expect("an unreachable collector is logged");
    let logged: serde_json::Value = serde_json::from_str(&first).expect("JSON log");
    assert_eq!(logged["level"], "WARN");
    assert_eq!(logged["endpoint"], format!("http://127.0.0.1:{otlp}"));
    // Several exports fail meanwhile; each signal says so once.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let collector = Collector::start(otlp).await;
    line_where(&out, Duration::from_secs(30), |l| {
        l.contains("OpenTelemetry export works again")
    })
    .await
    .unwrap_or_else(|| {
        let lines = out.lock().expect("lock").join("\n");
        panic!("the recovery is not logged:\n{lines}")
    });
    let failures: Vec<String> = out
        .lock()
        .expect("lock")
        .iter()
        .filter(|l| failing(l))
        .cloned()
        .collect();
    assert!(
        (1..=2).contains(&failures.len()),
        "once per signal: {failures:?}"
    );

    // An agent online, a webhook, then a visitor's chat and message.
    let token = |subject: &str, role: Role| token(&data, "traced", subject, role);
    let admin = token("boss", Role::Admin);
    let receiver = Receiver::start().await;
    NotificationServiceClient::new(channel(ports.notification))
        .create_endpoint(authed(
            CreateEndpointRequest {
                endpoint: Some(Endpoint {
                    url: receiver.url.clone(),
                    event_types: vec!["message.created".into()],
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("webhook");
    let mut routing = RoutingServiceClient::new(channel(ports.routing));
    routing
        .create_agent(authed(
            CreateAgentRequest {
                agent: Some(Agent {
                    id: "ana".into(),
                    name: "Ana".into(),
                    max_chats: 3,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("agent");
    routing
        .set_presence(authed(
            SetPresenceRequest {
                agent_id: String::new(),
                presence: Presence::Online as i32,
            },
            &token("ana", Role::Agent),
        ))
        .await
        .expect("online");
    let mut conversations = ConversationServiceClient::new(channel(ports.grpc));
    let inbox = conversations
        .create_inbox(authed(
            CreateInboxRequest {
                inbox: Some(Inbox {
                    name: "Web".into(),
                    channel_kind: ChannelKind::WebWidget as i32,
                    ..Default::default()
                }),
            },
            &admin,
        ))
        .await
        .expect("inbox")
        .into_inner();
    // Routing learns of the inbox from its event before the chat starts.
    tokio::time::sleep(Duration::from_secs(1)).await;
    let started = conversations
        .start_conversation(StartConversationRequest {
            inbox_public_key: inbox.public_key,
            ..Default::default()
        })
        .await
        .expect("start")
        .into_inner();
    let conversation = started.conversation.expect("conversation").id;
    conversations
        .send_message(authed(
            SendMessageRequest {
                conversation_id: conversation.clone(),
                content: "Where is my order?".into(),
                client_message_id: "traced-1".into(),
                ..Default::default()
            },
            &started.visitor_token,
        ))
        .await
        .expect("send");
    assert!(!receiver.wait_for(1, limit).await.is_empty(), "webhook");
    // A health probe: no trace of its own.
    assert!(healthy(&data, ports.grpc).await);

    let rpc = |method: &'static str| {
        move |spans: &[Span]| {
            spans
                .iter()
                .find(|s| {
                    s.name == format!("helpdesk.conversation.v1.ConversationService/{method}")
                })
                .cloned()
        }
    };
    // StartConversation → publish → routing's assignment → routing.assigned applied.
    let start = collector
        .wait_for(limit, rpc("StartConversation"))
        .await
        .expect("the call's span");
    assert_eq!(start.attr("rpc.system"), "grpc");
    assert_eq!(
        start.attr("rpc.service"),
        "helpdesk.conversation.v1.ConversationService"
    );
    assert_eq!(start.attr("rpc.method"), "StartConversation");
    assert_eq!(start.attr("rpc.grpc.status_code"), "0");
    let chain = collector
        .wait_for(limit, |spans| {
            let trace = Trace::of(spans, &start.trace_id);
            let publish = trace.below(&start, |n| n == "publish conversation.created")?;
            let assign = trace.below(publish, |n| n == "routing assign")?;
            let published = trace.below(assign, |n| n == "publish routing.assigned")?;
            let applied =
                trace.below(published, |n| n == "conversation process routing.assigned")?;
            Some([publish, assign, published, applied].map(Span::clone))
        })
        .await
        .unwrap_or_else(|| {
            let spans = collector.spans();
            let trace = Trace::of(&spans, &start.trace_id);
            let names: Vec<(&str, &str, &str)> = trace
                .spans()
                .iter()
                .map(|s| {
                    (
                        s.name.as_str(),
                        s.span_id.as_str(),
                        s.parent_span_id.as_str(),
                    )
                })
                .collect();
            panic!("the chat's trace is not whole: {names:?}")
        });
    let [publish, assign, published, applied] = chain;
    assert_eq!(publish.attr("messaging.system"), "nats");
    assert_eq!(publish.attr("messaging.operation.type"), "send");
    assert!(
        publish
            .attr("messaging.destination.name")
            .ends_with(".conversation.created")
    );
    assert_eq!(assign.attr("routing.outcome"), "assigned");
    assert_eq!(assign.attr("routing.candidates"), "1");
    assert_eq!(published.attr("messaging.message.id").len(), 36);
    assert_eq!(applied.attr("messaging.operation.type"), "process");
    assert_eq!(
        applied.attr("messaging.consumer.group.name"),
        "conversation"
    );
    assert_ne!(applied.status, 2);

    // A message → publish → the webhook's delivery, in one trace.
    let send = collector
        .wait_for(limit, rpc("SendMessage"))
        .await
        .expect("the call's span");
    let delivery = collector
        .wait_for(limit, |spans| {
            let trace = Trace::of(spans, &send.trace_id);
            let publish = trace.below(&send, |n| n == "publish message.created")?;
            trace.below(publish, |n| n == "webhook deliver").cloned()
        })
        .await
        .expect("the webhook's delivery is in the message's trace");
    assert_eq!(delivery.attr("http.response.status_code"), "200");
    assert_eq!(delivery.attr("server.address"), "127.0.0.1");
    assert_ne!(delivery.status, 2);
    let spans = collector.spans();
    assert!(
        !spans.iter().any(|s| s.name.starts_with("grpc.health")),
        "health probes are not traced"
    );

    // Metrics, as Prometheus reads them.
    let text = reqwest::get(&metrics_url)
        .await
        .expect("scrape")
        .text()
        .await
        .expect("body");
    let samples = helpdesk_tests::prometheus_text::parse(&text);
    let find = |name: &str, labels: &[(&str, &str)]| {
        helpdesk_tests::prometheus_text::find(&samples, name, labels)
            .unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };
    let calls = find(
        "rpc_server_call_duration_seconds_count",
        &[
            ("rpc_method", "StartConversation"),
            ("rpc_grpc_status_code", "0"),
        ],
    );
    assert_eq!(calls.kind, "histogram");
    assert!(calls.number() >= 1.0);
    assert!(
        find(
            "helpdesk_assignments_total",
            &[("reason", "ASSIGN_REASON_ROUTED")]
        )
        .number()
            >= 1.0
    );
    assert!(
        find(
            "helpdesk_webhook_attempt_duration_seconds_count",
            &[("outcome", "delivered")]
        )
        .number()
            >= 1.0
    );
    assert!(
        find(
            "helpdesk_outbox_published_total",
            &[("service", "conversation")]
        )
        .number()
            >= 3.0
    );
    for gauge in ["helpdesk_outbox_backlog", "helpdesk_outbox_lag_seconds"] {
        let sample = find(gauge, &[("service", "routing")]);
        assert_eq!(sample.kind, "gauge");
    }
    assert_eq!(
        find("helpdesk_consumer_pending", &[("consumer", "routing")]).kind,
        "gauge"
    );
    assert_eq!(
        find("helpdesk_dead_letters", &[("consumer", "notification")]).number(),
        0.0
    );
    assert_eq!(
        find("helpdesk_notification_queue", &[("kind", "webhook")]).kind,
        "gauge"
    );
    // And the same metrics went to the collector over OTLP.
    let exported = tokio::time::timeout(limit, async {
        loop {
            let names = collector.metric_names();
            if names.iter().any(|n| n == "rpc.server.call.duration")
                && names.iter().any(|n| n == "helpdesk.assignments")
            {
                return names;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await;
    assert!(exported.is_ok(), "metrics exported over OTLP");

    stop_up(up, &data).await;
}
