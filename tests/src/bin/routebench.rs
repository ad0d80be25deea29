//! `routebench`: many agents online, many visitors starting chats at once; reports
//! assignments per second and the latency from `conversation.created` to
//! `routing.assigned` (both taken from the events' own `occurred_at`).
//!
//! Against a running platform with `--conversation`, `--routing` and `--nats` (and
//! HELPDESK_JWT_SECRET), in a fresh account each run. Without them it runs the
//! conversation service and `--routers` routing replicas in-process on NATS and
//! PostgreSQL servers of its own (fsync off), which stop when it ends.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::{StreamExt, TryStreamExt};
use helpdesk_proto::common::v1::EventMeta;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{ConversationCreated, StartConversationRequest};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{ConversationAssigned, Presence};
use helpdesk_tests::bench;
use helpdesk_tests::load::{self, Tokens};
use helpdesk_tests::platform::Platform;
use prost::Message;
use tonic::transport::Channel;

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
    /// Routing replicas (in-process only).
    #[arg(long, default_value_t = 2, conflicts_with = "conversation")]
    routers: usize,
    /// Chats started per second (0: as fast as the concurrency allows).
    #[arg(long, default_value_t = 0)]
    rate: u32,
    /// Conversation service of a running platform (then --routing, --nats and
    /// HELPDESK_JWT_SECRET are required).
    #[arg(long, requires_all = ["routing", "nats"])]
    conversation: Option<String>,
    /// Routing service of a running platform.
    #[arg(long, requires = "conversation")]
    routing: Option<String>,
    /// NATS of a running platform (where the events are watched).
    #[arg(long, requires = "conversation")]
    nats: Option<String>,
    /// Subject root of a running platform.
    #[arg(long, default_value = "helpdesk")]
    subject_root: String,
    /// Account the agents and chats are created in [default: a fresh bench-<random>].
    #[arg(long)]
    account: Option<String>,
}

/// The platform under test.
struct Target {
    conversation: String,
    routing: String,
    nats: String,
    subject_root: String,
    tokens: Tokens,
}

/// Now, in microseconds since the epoch.
fn now_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_micros() as i64)
        .unwrap_or(0)
}

fn micros(meta: Option<&EventMeta>) -> Option<i64> {
    let t = meta?.occurred_at.as_ref()?;
    Some(t.seconds * 1_000_000 + i64::from(t.nanos) / 1000)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    anyhow::ensure!(
        args.chats <= args.agents * args.capacity.max(0) as usize,
        "more chats than capacity: every chat should be assigned"
    );
    let account = args
        .account
        .clone()
        .unwrap_or_else(|| load::fresh_account("bench"));
    let place = load::place(args.conversation.as_deref());
    println!(
        "measuring: routing of {} new chats (conversation.created -> routing.assigned, from the events' occurred_at) with {} agents online, account {account}, on {place}",
        args.chats, args.agents
    );
    match (&args.conversation, &args.routing, &args.nats) {
        (Some(conversation), Some(routing), Some(nats)) => {
            let target = Target {
                conversation: conversation.clone(),
                routing: routing.clone(),
                nats: nats.clone(),
                subject_root: args.subject_root.clone(),
                tokens: Tokens::new(&load::jwt_secret_from_env()?, &account),
            };
            bench(&args, &target, &place).await
        }
        _ => {
            // Servers of this run only, stopped however it ends.
            let servers = load::own_servers().await?;
            let p = Platform::start_with(args.routers, |c| c.database_max_connections = 30).await;
            let target = Target {
                conversation: p.conversation.url(),
                routing: p.routers[0].url(),
                nats: p.env.nats_url.clone(),
                subject_root: p.env.subject_root.clone(),
                tokens: Tokens::new(&p.env.jwt_secret, &account),
            };
            let result = bench(&args, &target, &place).await;
            p.stop().await;
            servers.stop().await;
            result
        }
    }
}

/// Creates the agents (online) and an inbox, starts the chats, and reports.
async fn bench(args: &Args, target: &Target, place: &str) -> anyhow::Result<()> {
    let tokens = &target.tokens;
    let routing = RoutingServiceClient::new(
        Channel::from_shared(target.routing.clone())?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", target.routing))?,
    );
    bench::create_agents(&routing, tokens, args.agents, args.capacity).await?;
    futures::stream::iter(0..args.agents)
        .map(|i| {
            let routing = routing.clone();
            async move {
                bench::set_presence(routing, tokens, &bench::agent_id(i), Presence::Online).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .context("bringing the agents online")?;
    let channels = load::connect(
        &target.conversation,
        args.concurrency.clamp(1, load::CONNECTIONS),
    )
    .await?;
    let inbox = load::create_inbox(
        &mut ConversationServiceClient::new(channels[0].clone()),
        tokens,
        "Web",
    )
    .await?;

    let nats = async_nats::connect(target.nats.as_str())
        .await
        .with_context(|| format!("connecting to {}", target.nats))?;
    let events = |kind: &str| format!("{}.evt.{}.{kind}", target.subject_root, tokens.account());
    let mut created_sub = nats.subscribe(events("conversation.created")).await?;
    let mut assigned_sub = nats.subscribe(events("routing.assigned")).await?;
    nats.flush().await?;

    let chats = args.chats;
    let collect = tokio::spawn(async move {
        let mut created: HashMap<String, i64> = HashMap::new();
        let mut published: HashMap<String, i64> = HashMap::new();
        let mut assigned: HashMap<String, i64> = HashMap::new();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(300);
        while assigned.len() < chats && tokio::time::Instant::now() < deadline {
            tokio::select! {
                Some(m) = created_sub.next() => {
                    if let Ok(e) = ConversationCreated::decode(m.payload)
                        && let (Some(c), Some(t)) = (e.conversation, micros(e.meta.as_ref())) {
                        published.insert(c.id.clone(), now_micros());
                        created.insert(c.id, t);
                    }
                }
                Some(m) = assigned_sub.next() => {
                    if let Ok(e) = ConversationAssigned::decode(m.payload)
                        && let Some(t) = micros(e.meta.as_ref()) { assigned.insert(e.conversation_id, t); }
                }
                _ = tokio::time::sleep(Duration::from_secs(1)) => {}
            }
        }
        (created, published, assigned)
    });

    let started = Instant::now();
    let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(args.concurrency.max(1)));
    let mut calls = Vec::new();
    let mut pace = (args.rate > 0)
        .then(|| tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate))));
    for i in 0..args.chats {
        if let Some(p) = pace.as_mut() {
            p.tick().await;
        }
        let mut client = ConversationServiceClient::new(channels[i % channels.len()].clone());
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
        c.await?.context("StartConversation")?;
    }
    let start_phase = started.elapsed();
    let (created, published, assigned) = collect.await?;
    let all = started.elapsed();
    let mut latencies: Vec<u64> = assigned
        .iter()
        .filter_map(|(id, at)| created.get(id).map(|c| (at - c).max(0) as u64))
        .collect();
    latencies.sort_unstable();
    // The two halves: until the event reached NATS (the conversation service's commit
    // and relay), and from there to the assignment (routing).
    let mut relayed: Vec<u64> = published
        .iter()
        .filter_map(|(id, at)| created.get(id).map(|c| (at - c).max(0) as u64))
        .collect();
    relayed.sort_unstable();
    let mut routed: Vec<u64> = assigned
        .iter()
        .filter_map(|(id, at)| published.get(id).map(|p| (at - p).max(0) as u64))
        .collect();
    routed.sort_unstable();
    let first = created.values().min().copied().unwrap_or(0);
    let last = assigned.values().max().copied().unwrap_or(0);
    let span_s = ((last - first) as f64 / 1e6).max(1e-6);
    let routers = if args.conversation.is_none() {
        format!(" routers={}", args.routers)
    } else {
        String::new()
    };
    println!(
        "routebench on {place}: agents={} (capacity {} each){routers} chats={} (concurrency {}, rate {})",
        args.agents,
        args.capacity,
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
        "conversation.created -> routing.assigned: {}",
        load::summary(&latencies)
    );
    println!(
        "  of which conversation.created -> on NATS: {}; on NATS -> routing.assigned: {}",
        load::summary(&relayed),
        load::summary(&routed)
    );
    // Signed off, so that their idle timers do not fire into a later run.
    futures::stream::iter(0..args.agents)
        .map(|i| {
            let routing = routing.clone();
            async move {
                bench::set_presence(routing, tokens, &bench::agent_id(i), Presence::Offline).await
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .context("signing the agents off")?;
    anyhow::ensure!(assigned.len() == args.chats, "not every chat was assigned");
    Ok(())
}
