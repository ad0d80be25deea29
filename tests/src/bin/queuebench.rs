//! `queuebench`: a flash sale, against a running platform (`--conversation`,
//! `--routing`, `--nats` and HELPDESK_JWT_SECRET), in a fresh account each run.
//!
//! `--agents` agents with `--capacity` seats each exist but are offline; `--chats`
//! visitors start chats at `--rate` per second, so every chat must wait. It reports how
//! far the `routing.queued` events fell behind the chats' creation (intake) and when
//! the server was idle again, follows `--watchers` visitors' `WatchQueuePosition`
//! streams (updates per visitor per second, any position that rose), then brings every
//! agent online at once and reports the SetPresence answer times, the drain rate
//! (first agent online to last `routing.assigned`), chats assigned twice and agents
//! over capacity (from the `routing.assigned` events).

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use helpdesk_kit::auth::Role;
use helpdesk_proto::common::v1::EventMeta;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::{Contact, ConversationCreated, StartConversationRequest};
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{
    ConversationAssigned, ConversationQueued, GetQueuePositionRequest, Presence, SetPresenceRequest,
};
use helpdesk_tests::bench;
use helpdesk_tests::load::{self, Tokens};
use helpdesk_tests::platform::authed;
use prost::Message;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(about = "Helpdesk flash-sale queue benchmark")]
struct Args {
    /// Conversation service.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    conversation: String,
    /// Routing service.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    routing: String,
    /// NATS, to follow the events.
    #[arg(long, default_value = "nats://127.0.0.1:14222")]
    nats: String,
    /// First token of the subjects.
    #[arg(long, default_value = "helpdesk")]
    subject_root: String,
    /// Chats of the sale.
    #[arg(long, default_value_t = 10_000)]
    chats: usize,
    /// Chats started per second.
    #[arg(long, default_value_t = 500)]
    rate: u32,
    /// Agents, offline during the intake.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Seats per agent.
    #[arg(long, default_value_t = 100)]
    capacity: i32,
    /// Visitors whose position streams are followed.
    #[arg(long, default_value_t = 200)]
    watchers: usize,
    /// How long to wait for each phase, in seconds.
    #[arg(long, default_value_t = 300)]
    timeout: u64,
}

/// Microseconds since the epoch of an event's `occurred_at`.
fn micros(meta: Option<&EventMeta>) -> Option<i64> {
    let t = meta?.occurred_at.as_ref()?;
    Some(t.seconds * 1_000_000 + i64::from(t.nanos) / 1_000)
}

fn now_micros() -> i64 {
    chrono::Utc::now().timestamp_micros()
}

/// What the event collector saw.
#[derive(Default)]
struct Seen {
    created: HashMap<String, i64>,
    queued: HashMap<String, i64>,
    /// Conversation → every agent it was assigned to, and when.
    assigned: HashMap<String, Vec<(String, i64)>>,
}

/// What one followed visitor's position stream showed.
#[derive(Default, Clone)]
struct Followed {
    positions: Vec<(Instant, i32)>,
    assigned: bool,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let account = load::fresh_account("sale");
    let tokens = Tokens::new(&load::jwt_secret_from_env()?, &account);
    println!(
        "measuring: a flash sale of {} chats at {}/s with {} agents of {} seats offline, then all online; platform at {}, account {account}",
        args.chats, args.rate, args.agents, args.capacity, args.conversation
    );
    let routing = RoutingServiceClient::new(
        Channel::from_shared(args.routing.clone())?
            .connect()
            .await
            .with_context(|| format!("connecting to {}", args.routing))?,
    );
    bench::create_agents(&routing, &tokens, args.agents, args.capacity).await?;
    let channels = load::connect(&args.conversation, load::CONNECTIONS).await?;
    let inbox = load::create_inbox(
        &mut ConversationServiceClient::new(channels[0].clone()),
        &tokens,
        "Sale",
    )
    .await?;

    let nats = async_nats::connect(args.nats.as_str())
        .await
        .with_context(|| format!("connecting to {}", args.nats))?;
    let subject = |kind: &str| format!("{}.evt.{account}.{kind}", args.subject_root);
    let mut created_sub = nats.subscribe(subject("conversation.created")).await?;
    let mut queued_sub = nats.subscribe(subject("routing.queued")).await?;
    let mut assigned_sub = nats.subscribe(subject("routing.assigned")).await?;
    nats.flush().await?;
    let seen = Arc::new(Mutex::new(Seen::default()));
    let collector = tokio::spawn({
        let seen = seen.clone();
        async move {
            loop {
                tokio::select! {
                    Some(m) = created_sub.next() => {
                        if let Ok(e) = ConversationCreated::decode(m.payload)
                            && let (Some(c), Some(t)) = (e.conversation, micros(e.meta.as_ref()))
                            && let Ok(mut s) = seen.lock() { s.created.insert(c.id, t); }
                    }
                    Some(m) = queued_sub.next() => {
                        if let Ok(e) = ConversationQueued::decode(m.payload)
                            && let Some(t) = micros(e.meta.as_ref())
                            && let Ok(mut s) = seen.lock() { s.queued.insert(e.conversation_id, t); }
                    }
                    Some(m) = assigned_sub.next() => {
                        if let Ok(e) = ConversationAssigned::decode(m.payload)
                            && let Some(t) = micros(e.meta.as_ref())
                            && let Ok(mut s) = seen.lock() {
                            s.assigned.entry(e.conversation_id).or_default().push((e.agent_id, t));
                        }
                    }
                    else => break,
                }
            }
        }
    });

    // The sale: chats at the rate, each visitor's token kept for the watchers.
    let started = Instant::now();
    let mut pace =
        tokio::time::interval(Duration::from_secs_f64(1.0 / f64::from(args.rate.max(1))));
    let mut calls = Vec::with_capacity(args.chats);
    for i in 0..args.chats {
        pace.tick().await;
        let mut client = ConversationServiceClient::new(channels[i % channels.len()].clone());
        let key = inbox.public_key.clone();
        calls.push(tokio::spawn(async move {
            let started = client
                .start_conversation(tonic::Request::new(StartConversationRequest {
                    inbox_public_key: key,
                    contact: Some(Contact {
                        name: format!("Shopper {i}"),
                        ..Default::default()
                    }),
                    initial_message: format!("where is my order {i}?"),
                    ..Default::default()
                }))
                .await?
                .into_inner();
            Ok::<_, tonic::Status>((
                started.conversation.map(|c| c.id).unwrap_or_default(),
                started.visitor_token,
            ))
        }));
    }
    let mut visitors = Vec::with_capacity(args.chats);
    for c in calls {
        visitors.push(c.await?.context("StartConversation")?);
    }
    let intake_s = started.elapsed().as_secs_f64();
    let last_created = now_micros();
    let phase = Duration::from_secs(args.timeout);
    let all_queued = helpdesk_kit::testing::eventually(phase, || async {
        let s = seen.lock().ok()?;
        (s.queued.len() >= args.chats).then(|| s.queued.values().max().copied().unwrap_or(0))
    })
    .await;
    let queued_lag_s = all_queued.map(|t| (t - last_created) as f64 / 1e6);
    let idle_s = match bench::find_helpdesk_up() {
        Some(pid) => bench::until_idle(pid, phase).await,
        None => None,
    };
    let mut intake: Vec<u64> = {
        let s = seen.lock().map_err(|_| anyhow::anyhow!("collector"))?;
        s.queued
            .iter()
            .filter_map(|(id, q)| s.created.get(id).map(|c| (q - c).max(0) as u64))
            .collect()
    };
    intake.sort_unstable();

    // Followed visitors: their position streams through the drain.
    let followed: Vec<Arc<Mutex<Followed>>> = (0..args.watchers.min(visitors.len()))
        .map(|_| Arc::default())
        .collect();
    let routing_channel = Channel::from_shared(args.routing.clone())?
        .connect()
        .await?;
    for (i, (conversation, token)) in visitors.iter().take(followed.len()).enumerate() {
        let mut client = RoutingServiceClient::new(routing_channel.clone());
        let mut stream = client
            .watch_queue_position(authed(
                GetQueuePositionRequest {
                    conversation_id: conversation.clone(),
                },
                token,
            ))
            .await
            .context("watching a position")?
            .into_inner();
        let slot = followed[i].clone();
        tokio::spawn(async move {
            while let Some(Ok(p)) = stream.next().await {
                if let Ok(mut f) = slot.lock() {
                    if !p.assigned_agent_id.is_empty() {
                        f.assigned = true;
                    } else if p.position > 0 {
                        f.positions.push((Instant::now(), p.position));
                    }
                }
            }
        });
    }
    tokio::time::sleep(Duration::from_secs(2)).await;

    // Every agent comes online at once.
    let online_at = now_micros();
    let online_started = Instant::now();
    let mut retried = 0;
    let mut answers: Vec<u64> = futures::stream::iter(0..args.agents)
        .map(|i| {
            let mut routing = routing.clone();
            let token = tokens.mint(&bench::agent_id(i), Role::Agent);
            async move {
                // As a workbench does: UNAVAILABLE is retried after a jittered pause.
                let mut refused = 0;
                loop {
                    let t = Instant::now();
                    let answer = routing
                        .set_presence(authed(
                            SetPresenceRequest {
                                agent_id: String::new(),
                                presence: Presence::Online as i32,
                            },
                            &token,
                        ))
                        .await;
                    match answer {
                        Ok(_) => return Ok((t.elapsed().as_micros() as u64, refused)),
                        Err(s) if s.code() == tonic::Code::Unavailable && refused < 50 => {
                            refused += 1;
                            let pause = 200 + rand::random_range(0..800);
                            tokio::time::sleep(Duration::from_millis(pause)).await;
                        }
                        Err(s) => return Err(s),
                    }
                }
            }
        })
        .buffer_unordered(args.agents.max(1))
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect::<Vec<(u64, usize)>>()
        .into_iter()
        .map(|(answer, refused)| {
            retried += refused;
            answer
        })
        .collect();
    answers.sort_unstable();
    let refused = args.agents - answers.len();
    let drained = helpdesk_kit::testing::eventually(phase, || async {
        let s = seen.lock().ok()?;
        (s.assigned.len() >= args.chats).then(|| {
            s.assigned
                .values()
                .flat_map(|v| v.iter().map(|(_, t)| *t))
                .max()
                .unwrap_or(0)
        })
    })
    .await;
    let drain_span_s = drained.map(|t| (t - online_at) as f64 / 1e6);
    let online_wall_s = online_started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(2)).await;

    let (assigned, twice, over) = {
        let s = seen.lock().map_err(|_| anyhow::anyhow!("collector"))?;
        let twice = s.assigned.values().filter(|v| v.len() > 1).count();
        let mut load: HashMap<&str, i32> = HashMap::new();
        for v in s.assigned.values() {
            for (agent, _) in v {
                *load.entry(agent.as_str()).or_default() += 1;
            }
        }
        let over = load.values().filter(|n| **n > args.capacity).count();
        (s.assigned.len(), twice, over)
    };
    let (mut rose, mut most_per_second, mut followed_assigned) = (0, 0usize, 0);
    for f in &followed {
        let f = f.lock().map_err(|_| anyhow::anyhow!("follower"))?.clone();
        followed_assigned += usize::from(f.assigned);
        rose += f.positions.windows(2).filter(|w| w[1].1 > w[0].1).count();
        let mut per_second: HashMap<u64, usize> = HashMap::new();
        for (at, _) in &f.positions {
            *per_second
                .entry(at.duration_since(started).as_secs())
                .or_default() += 1;
        }
        most_per_second = most_per_second.max(per_second.values().copied().max().unwrap_or(0));
    }
    collector.abort();

    println!(
        "intake: {} chats started in {intake_s:.1}s; created -> queued {}; last queued {} after the last chat; server idle {} after",
        args.chats,
        load::summary(&intake),
        queued_lag_s.map_or("never (timeout)".to_string(), |s| format!("{s:.1}s")),
        idle_s.map_or("never / unknown".to_string(), |s| format!("{s:.1}s")),
    );
    println!(
        "online: {} SetPresence answered (the last answer of each agent), p50 {:.0} ms, max {:.0} ms; {retried} answers UNAVAILABLE (retried), {refused} agents never online; drain: {assigned}/{} assigned {}",
        answers.len(),
        load::percentile(&answers, 0.5) as f64 / 1000.0,
        answers.last().copied().unwrap_or(0) as f64 / 1000.0,
        args.chats,
        drain_span_s.map_or(
            format!(
                "(not all within {}s; {online_wall_s:.0}s waited)",
                args.timeout
            ),
            |s| format!(
                "in {s:.1}s after the agents came online: {:.0} assignments/s",
                args.chats as f64 / s.max(1e-6)
            )
        ),
    );
    println!(
        "followed {} visitors: {followed_assigned} saw their assignment, at most {most_per_second} position updates in one second, {rose} positions that rose",
        followed.len()
    );
    println!("violations: {twice} chats assigned twice, {over} agents over capacity");
    futures::stream::iter(0..args.agents)
        .map(|i| {
            let routing = routing.clone();
            let tokens = &tokens;
            async move {
                bench::set_presence(routing, tokens, &bench::agent_id(i), Presence::Offline).await
            }
        })
        .buffer_unordered(16)
        .collect::<Vec<_>>()
        .await;
    anyhow::ensure!(
        twice == 0 && over == 0 && rose == 0,
        "an invariant was broken"
    );
    Ok(())
}
