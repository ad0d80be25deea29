//! `webhookbench`: webhook deliveries per second and the time from an event to its
//! delivery, with healthy receivers.
//!
//! `--endpoints` local HTTP receivers are registered as endpoints of a fresh account,
//! each taking `message.created`. `--visitors` visitors then send `--messages`
//! messages at `--rate` per second in all (open loop), so every message is one event
//! and `--endpoints` deliveries. Each receiver answers 200 at once and notes when a
//! request arrived; the event's own `meta.occurredAt` (in the body) gives the time
//! from the event to its delivery. Deliveries per second are counted from the first
//! delivery to the last.
//!
//! Against a running platform with `--conversation` and `--notification` (and
//! HELPDESK_JWT_SECRET): its notification service must allow loopback targets
//! (`HELPDESK_NOTIFICATION__ALLOW_LOOPBACK_TARGETS=true`), since the receivers run
//! here. Without them it runs the services in-process on NATS and PostgreSQL servers
//! of its own (fsync off).

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use clap::Parser;
use helpdesk_kit::auth::Role;
use helpdesk_proto::notification::v1::notification_service_client::NotificationServiceClient;
use helpdesk_proto::notification::v1::{CreateEndpointRequest, Endpoint};
use helpdesk_tests::load::{self, LoadSpec, OpenLoop, Tokens, summary};
use helpdesk_tests::platform::{Platform, authed};

#[derive(Parser)]
#[command(about = "Webhook delivery benchmark")]
struct Args {
    /// Endpoints (each its own receiver), each taking every message.
    #[arg(long, default_value_t = 4)]
    endpoints: usize,
    /// Messages sent in all.
    #[arg(long, default_value_t = 30_000)]
    messages: usize,
    /// Messages per second, in all.
    #[arg(long, default_value_t = 600.0)]
    rate: f64,
    /// Visitors the messages are spread over.
    #[arg(long, default_value_t = 50)]
    visitors: usize,
    /// Conversation service of a running platform (then --notification and
    /// HELPDESK_JWT_SECRET are required).
    #[arg(long, requires = "notification")]
    conversation: Option<String>,
    /// Notification service of a running platform.
    #[arg(long, requires = "conversation")]
    notification: Option<String>,
    /// Account [default: a fresh bench-<random>].
    #[arg(long)]
    account: Option<String>,
}

/// What the receivers saw.
#[derive(Default)]
struct Sink {
    latencies_us: Vec<u64>,
    seen: HashSet<(usize, String)>,
    duplicates: usize,
    first: Option<Instant>,
    last: Option<Instant>,
}

type Shared = Arc<Mutex<Sink>>;

async fn hook(
    State((sink, receiver)): State<(Shared, usize)>,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let arrived = Instant::now();
    let now = chrono::Utc::now();
    let id = headers
        .get("webhook-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let Ok(body) = serde_json::from_slice::<serde_json::Value>(&body) else {
        return StatusCode::BAD_REQUEST;
    };
    // Only the load's own messages (not, say, an inbox greeting).
    if !body["data"]["message"]["content"]
        .as_str()
        .is_some_and(|c| c.starts_with("lg "))
    {
        return StatusCode::OK;
    }
    let occurred = body["data"]["meta"]["occurredAt"]
        .as_str()
        .and_then(|at| chrono::DateTime::parse_from_rfc3339(at).ok());
    let mut sink = sink.lock().unwrap_or_else(|p| p.into_inner());
    if !sink.seen.insert((receiver, id)) {
        sink.duplicates += 1;
    }
    if let Some(at) = occurred {
        let us = (now - at.with_timezone(&chrono::Utc))
            .num_microseconds()
            .unwrap_or(0)
            .max(0);
        sink.latencies_us.push(us as u64);
    }
    sink.first.get_or_insert(arrived);
    sink.last = Some(arrived);
    StatusCode::OK
}

/// Starts receiver `n`; its URL.
async fn receiver(sink: Shared, n: usize) -> anyhow::Result<String> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let port = listener.local_addr()?.port();
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state((sink, n));
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok(format!("http://127.0.0.1:{port}/hook"))
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let account = args
        .account
        .clone()
        .unwrap_or_else(|| load::fresh_account("bench"));
    let place = load::place(args.conversation.as_deref());
    println!(
        "measuring: {} messages at {}/s from {} visitors, each delivered to {} endpoints, account {account}, on {place}",
        args.messages, args.rate, args.visitors, args.endpoints
    );
    match (&args.conversation, &args.notification) {
        (Some(conversation), Some(notification)) => {
            let secret = load::jwt_secret_from_env()?;
            bench(&args, conversation, notification, &secret, &account).await
        }
        _ => {
            let servers = load::own_servers().await?;
            let p = Platform::start_with(1, |c| c.database_max_connections = 30).await;
            let result = bench(
                &args,
                &p.conversation.url(),
                &p.notification.url(),
                &p.env.jwt_secret,
                &account,
            )
            .await;
            p.stop().await;
            servers.stop().await;
            result
        }
    }
}

async fn bench(
    args: &Args,
    conversation: &str,
    notification: &str,
    secret: &str,
    account: &str,
) -> anyhow::Result<()> {
    let tokens = Tokens::new(secret, account);
    let admin = tokens.mint("bench-admin", Role::Admin);
    let sink: Shared = Arc::default();
    let mut client = NotificationServiceClient::connect(notification.to_string())
        .await
        .context("connecting to the notification service")?;
    for n in 0..args.endpoints {
        let url = receiver(sink.clone(), n).await?;
        client
            .create_endpoint(authed(
                CreateEndpointRequest {
                    endpoint: Some(Endpoint {
                        url,
                        event_types: vec!["message.created".into()],
                        description: format!("bench receiver {n}"),
                        ..Default::default()
                    }),
                },
                &admin,
            ))
            .await
            .context("registering an endpoint (does the platform allow loopback targets?)")?;
    }
    let spec = LoadSpec {
        conversation_addr: conversation.to_string(),
        jwt_secret: secret.to_string(),
        account: account.to_string(),
        visitors: args.visitors,
        agents: 0,
        drain_timeout: Duration::from_secs(60),
        open_loop: Some(OpenLoop {
            rate: args.rate,
            total: args.messages,
        }),
        ..LoadSpec::default()
    };
    let report = load::run(&spec).await?;
    // Every accepted message is one event, delivered to every endpoint.
    let expected = report.sent * args.endpoints;
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let got = sink.lock().unwrap_or_else(|p| p.into_inner()).seen.len();
        if got >= expected || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let sink = std::mem::take(&mut *sink.lock().unwrap_or_else(|p| p.into_inner()));
    let delivered = sink.seen.len();
    let span = match (sink.first, sink.last) {
        (Some(a), Some(b)) => b.duration_since(a),
        _ => Duration::ZERO,
    };
    let mut latencies = sink.latencies_us;
    latencies.sort_unstable();
    println!(
        "messages: {} accepted, {} failed (send {})",
        report.sent,
        report.failed,
        summary(&report.send_latency_us)
    );
    println!(
        "deliveries: {delivered} of {expected} ({} duplicates) in {:.1} s: {:.0} deliveries/s",
        sink.duplicates,
        span.as_secs_f64(),
        delivered as f64 / span.as_secs_f64().max(1e-9)
    );
    println!("event → delivery: {}", summary(&latencies));
    anyhow::ensure!(
        delivered == expected,
        "{} deliveries missing",
        expected - delivered
    );
    Ok(())
}
