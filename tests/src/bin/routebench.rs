//! `routebench`: many agents online, many visitors starting chats at once; reports
//! assignments per second and the latency from `conversation.created` to
//! `routing.assigned` (both taken from the events' own `occurred_at`).
//!
//! Runs the conversation service and the routing replicas in-process on private NATS
//! and PostgreSQL (the test servers).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use clap::Parser;
use futures::StreamExt;
use helpdesk_proto::common::v1::EventMeta;
use helpdesk_proto::conversation::v1::{ConversationCreated, StartConversationRequest};
use helpdesk_proto::routing::v1::{ConversationAssigned, Presence};
use helpdesk_tests::load::percentile;
use helpdesk_tests::platform::{ACCOUNT, Platform};
use prost::Message;

#[derive(Parser)]
#[command(about = "Routing benchmark")]
struct Args {
    /// Agents online.
    #[arg(long, default_value_t = 200)]
    agents: usize,
    /// Chats each agent may hold.
    #[arg(long, default_value_t = 5)]
    capacity: i32,
    /// Conversations started.
    #[arg(long, default_value_t = 1000)]
    chats: usize,
    /// Concurrent StartConversation calls.
    #[arg(long, default_value_t = 50)]
    concurrency: usize,
    /// Routing replicas.
    #[arg(long, default_value_t = 2)]
    routers: usize,
    /// Chats started per second (0: as fast as the concurrency allows).
    #[arg(long, default_value_t = 0)]
    rate: u32,
}

fn micros(meta: Option<&EventMeta>) -> Option<i64> {
    let t = meta?.occurred_at.as_ref()?;
    Some(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.chats <= args.agents * args.capacity as usize,
        "more chats than capacity: every chat should be assigned"
    );
    let p = Platform::start_with(args.routers, |c| c.database_max_connections = 30).await;
    for i in 0..args.agents {
        let id = format!("agent-{i:04}");
        p.agent(&id, args.capacity, &[], &[]).await;
        p.presence(&id, Presence::Online).await;
    }
    let inbox = p.inbox().await;
    let nats = p.env.nats().await;
    let root = &p.env.subject_root;
    let mut created_sub = nats
        .subscribe(format!("{root}.evt.{ACCOUNT}.conversation.created"))
        .await?;
    let mut assigned_sub = nats
        .subscribe(format!("{root}.evt.{ACCOUNT}.routing.assigned"))
        .await?;
    nats.flush().await?;

    let collect = tokio::spawn(async move {
        let mut created: HashMap<String, i64> = HashMap::new();
        let mut assigned: HashMap<String, i64> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while assigned.len() < args.chats && tokio::time::Instant::now() < deadline {
            tokio::select! {
                Some(m) = created_sub.next() => {
                    if let Ok(e) = ConversationCreated::decode(m.payload)
                        && let (Some(c), Some(t)) = (e.conversation, micros(e.meta.as_ref())) { created.insert(c.id, t); }
                }
                Some(m) = assigned_sub.next() => {
                    if let Ok(e) = ConversationAssigned::decode(m.payload)
                        && let Some(t) = micros(e.meta.as_ref()) { assigned.insert(e.conversation_id, t); }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        (created, assigned)
    });

    let started = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency));
    let mut calls = Vec::new();
    let mut pace = (args.rate > 0)
        .then(|| tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate))));
    for i in 0..args.chats {
        if let Some(p) = pace.as_mut() {
            p.tick().await;
        }
        let mut client = p.conv().await;
        let key = inbox.public_key.clone();
        let permit = sem.clone().acquire_owned().await?;
        calls.push(tokio::spawn(async move {
            let _permit = permit;
            client
                .start_conversation(tonic::Request::new(StartConversationRequest {
                    inbox_public_key: key,
                    initial_message: format!("chat {i}"),
                    ..Default::default()
                }))
                .await
                .map(|_| ())
        }));
    }
    for c in calls {
        c.await??;
    }
    let start_phase = started.elapsed();
    let (created, assigned) = collect.await?;
    let all = started.elapsed();
    let mut latencies: Vec<u64> = assigned
        .iter()
        .filter_map(|(id, at)| created.get(id).map(|c| (at - c).max(0) as u64))
        .collect();
    latencies.sort_unstable();
    let first = created.values().min().copied().unwrap_or(0);
    let last = assigned.values().max().copied().unwrap_or(0);
    let span_s = ((last - first) as f64 / 1e6).max(1e-6);
    let ms = |us: u64| us as f64 / 1000.0;
    println!(
        "agents={} (capacity {} each) routers={} chats={} (concurrency {}, rate {})",
        args.agents,
        args.capacity,
        args.routers,
        args.chats,
        args.concurrency,
        if args.rate == 0 {
            "unlimited".to_string()
        } else {
            format!("{}/s", args.rate)
        }
    );
    println!(
        "started all chats in {:.2}s; all assigned after {:.2}s",
        start_phase.as_secs_f64(),
        all.as_secs_f64()
    );
    println!(
        "assigned {}/{}: {:.0} assignments/s (first conversation.created to last routing.assigned)",
        assigned.len(),
        args.chats,
        assigned.len() as f64 / span_s
    );
    println!(
        "conversation.created -> routing.assigned: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(&latencies, 0.5)),
        ms(percentile(&latencies, 0.99)),
        ms(latencies.last().copied().unwrap_or(0))
    );
    p.stop().await;
    anyhow::ensure!(assigned.len() == args.chats, "not every chat was assigned");
    Ok(())
}
