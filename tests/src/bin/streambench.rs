//! `streambench`: customers' live streams at scale, against a running platform
//! (`--conversation` and HELPDESK_JWT_SECRET), in a fresh account each run.
//!
//! Starts `--streams` chats, opens `--agents` agent streams (each following its own
//! assignments, so each receives the account's events and keeps its own), then opens
//! the visitors' `Subscribe` streams in stages. At each stage it measures the server's
//! memory per open stream (resident memory of `--server-pid`, by default the running
//! `helpdesk up`), agent → visitor latency (from the scheduled send of `--samples`
//! messages to random open conversations to the visitor's stream) and the server's
//! CPU per message; at the last stage, a sustained open-loop run at `--rate`
//! messages/s for `--duration` seconds. Prints a line per stage and a summary line.

use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use futures::StreamExt;
use helpdesk_kit::auth::Role;
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::{SendMessageRequest, SubscribeRequest};
use helpdesk_tests::bench;
use helpdesk_tests::load::{self, Tokens, Visitor};
use helpdesk_tests::platform::authed;
use tonic::transport::Channel;

#[derive(Parser)]
#[command(about = "Helpdesk live-stream benchmark")]
struct Args {
    /// Address of the running conversation service.
    #[arg(long, default_value = "http://127.0.0.1:50051")]
    conversation: String,
    /// Visitor streams at the last stage.
    #[arg(long, default_value_t = 10_000)]
    streams: usize,
    /// Open visitor streams at which to measure (the last is --streams).
    #[arg(long, value_delimiter = ',', default_value = "100,1000,2500,5000")]
    stages: Vec<usize>,
    /// Agent streams, open throughout.
    #[arg(long, default_value_t = 100)]
    agents: usize,
    /// Visitor streams per HTTP/2 connection.
    #[arg(long, default_value_t = 500)]
    per_connection: usize,
    /// Latency samples per stage, sent at --sample-rate.
    #[arg(long, default_value_t = 200)]
    samples: usize,
    /// Messages per second of the samples.
    #[arg(long, default_value_t = 50.0)]
    sample_rate: f64,
    /// Messages per second of the sustained run at the last stage (0: none).
    #[arg(long, default_value_t = 500.0)]
    rate: f64,
    /// Seconds of the sustained run.
    #[arg(long, default_value_t = 10.0)]
    duration: f64,
    /// The server process whose memory and CPU are read [default: the running
    /// `helpdesk up`].
    #[arg(long)]
    server_pid: Option<u32>,
    /// Last, a reconnect storm: this shell command restarts the platform (it must
    /// return once the restart is under way); every widget reconnects and resumes,
    /// and `--storm-messages` messages sent right after the restart must all arrive.
    #[arg(long)]
    restart_with: Option<String>,
    /// Messages sent to distinct open conversations right after the restart.
    #[arg(long, default_value_t = 1_000)]
    storm_messages: usize,
}

/// Waits until `pid` is quiet (at most a minute).
async fn quiet(pid: u32) {
    let _ = bench::until_idle(pid, Duration::from_secs(60)).await;
}

/// When each marked message reached its visitor's stream.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// How the visitor streams fared: ends, and reconnections after a restart.
#[derive(Default)]
struct Health {
    /// Streams that ended (for good, or until they reconnected).
    ended: AtomicUsize,
    /// Streams opened again after ending.
    reconnected: AtomicUsize,
    /// When the first stream ended and when the last one came back.
    first_end: Mutex<Option<Instant>>,
    last_back: Mutex<Option<Instant>>,
}

/// Opens the visitor streams of `visitors` and records arrivals of marked messages.
/// With `reconnect`, a stream that ends comes back as the widget does: after a
/// jittered pause (0.1–1 s, doubling up to 5 s), resuming after the last message it had.
async fn open_visitor_streams(
    channels: &[Channel],
    visitors: &[Visitor],
    arrivals: &Arrivals,
    health: &Arc<Health>,
    reconnect: bool,
) -> anyhow::Result<()> {
    let subscribe = |channel: Channel, v: &Visitor, after: Option<i64>| {
        let mut client = ConversationServiceClient::new(channel);
        let request = authed(
            SubscribeRequest {
                conversation_id: v.conversation.clone(),
                resume_after_sequence: after,
                ..Default::default()
            },
            &v.token,
        );
        async move { client.subscribe(request).await }
    };
    let opened = futures::stream::iter(visitors.iter().enumerate())
        .map(|(i, v)| subscribe(channels[i % channels.len()].clone(), v, None))
        .buffered(100)
        .collect::<Vec<_>>()
        .await;
    for (i, (stream, visitor)) in opened.into_iter().zip(visitors).enumerate() {
        let mut stream = stream.context("opening a visitor stream")?.into_inner();
        let (arrivals, health) = (arrivals.clone(), health.clone());
        let channel = channels[i % channels.len()].clone();
        let visitor = Visitor {
            conversation: visitor.conversation.clone(),
            token: visitor.token.clone(),
        };
        tokio::spawn(async move {
            let mut last = 0;
            loop {
                while let Some(Ok(update)) = stream.next().await {
                    if let Some(Update::MessageCreated(e)) = update.update
                        && let Some(m) = e.message
                    {
                        last = last.max(m.sequence);
                        if let Some(id) = m
                            .content
                            .strip_prefix("sb ")
                            .and_then(|n| n.parse::<u64>().ok())
                        {
                            let now = Instant::now();
                            if let Ok(mut arrivals) = arrivals.lock() {
                                arrivals.insert(id, now);
                            }
                        }
                    }
                }
                health.ended.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut first) = health.first_end.lock() {
                    first.get_or_insert_with(Instant::now);
                }
                if !reconnect {
                    return;
                }
                let mut pause = Duration::from_millis(100 + rand::random_range(0..900));
                stream = loop {
                    tokio::time::sleep(pause).await;
                    if let Ok(s) = subscribe(channel.clone(), &visitor, Some(last)).await {
                        break s.into_inner();
                    }
                    pause = (pause * 2).min(Duration::from_secs(5));
                };
                health.reconnected.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut back) = health.last_back.lock() {
                    *back = Some(Instant::now());
                }
            }
        });
    }
    Ok(())
}

/// What one paced send run measured.
struct Run {
    sent: usize,
    failed: usize,
    elapsed: Duration,
    latency_us: Vec<u64>,
    lost: usize,
    cpu_ms: u64,
}

/// Sends marked messages as staff and matches them with their arrivals.
struct Sender {
    channels: Vec<Channel>,
    token: String,
    arrivals: Arrivals,
    next_id: u64,
    /// The server whose CPU a run counts.
    server: u32,
}

impl Sender {
    /// Sends `total` marked messages at `rate`/s, each to a random conversation of
    /// `open`; waits up to `drain` after the last send for them to arrive.
    async fn paced(
        &mut self,
        open: &[Visitor],
        total: usize,
        rate: f64,
        drain: Duration,
    ) -> anyhow::Result<Run> {
        let (channels, token, arrivals, server) =
            (&self.channels, &self.token, &self.arrivals, self.server);
        // A restarted server is another process: its CPU is not counted then.
        let cpu_before = bench::cpu_ms(server).unwrap_or(0);
        let start = Instant::now();
        let mut scheduled = Vec::with_capacity(total);
        let mut sends = Vec::with_capacity(total);
        for i in 0..total {
            let at = start + Duration::from_secs_f64(i as f64 / rate);
            tokio::time::sleep_until(at.into()).await;
            let id = self.next_id;
            self.next_id += 1;
            let conversation = open[rand::random_range(0..open.len())].conversation.clone();
            let mut client = ConversationServiceClient::new(channels[i % channels.len()].clone());
            let request = authed(
                SendMessageRequest {
                    conversation_id: conversation,
                    content: format!("sb {id}"),
                    ..Default::default()
                },
                token,
            );
            scheduled.push((id, at));
            sends.push(tokio::spawn(async move {
                client.send_message(request).await.is_ok()
            }));
        }
        let mut failed = 0;
        for send in sends {
            if !send.await.unwrap_or(false) {
                failed += 1;
            }
        }
        let elapsed = start.elapsed();
        let sent = total - failed;
        let drain = Instant::now() + drain;
        while Instant::now() < drain {
            let arrived = arrivals.lock().map(|a| a.len()).unwrap_or(0);
            if arrived >= sent {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        let cpu_ms = bench::cpu_ms(server)
            .unwrap_or(cpu_before)
            .saturating_sub(cpu_before);
        let mut arrived = arrivals
            .lock()
            .map(|mut a| std::mem::take(&mut *a))
            .unwrap_or_default();
        let mut latency_us: Vec<u64> = scheduled
            .iter()
            .filter_map(|(id, at)| {
                let got = arrived.remove(id)?;
                Some(got.saturating_duration_since(*at).as_micros() as u64)
            })
            .collect();
        latency_us.sort_unstable();
        let lost = sent.saturating_sub(latency_us.len());
        Ok(Run {
            sent,
            failed,
            elapsed,
            latency_us,
            lost,
            cpu_ms,
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = match args.server_pid {
        Some(pid) => pid,
        None => bench::find_helpdesk_up().context(
            "no single running `helpdesk up` found: start it, or name the process with --server-pid",
        )?,
    };
    let account = load::fresh_account("streams");
    let tokens = Tokens::new(&load::jwt_secret_from_env()?, &account);
    let mut stages: Vec<usize> = args
        .stages
        .iter()
        .copied()
        .filter(|s| *s < args.streams)
        .collect();
    stages.push(args.streams);
    println!(
        "measuring: {} visitor streams in stages {stages:?} with {} agent streams open, on the platform at {} (server pid {server}), account {account}",
        args.streams, args.agents, args.conversation
    );
    let connections = args.streams.div_ceil(args.per_connection.max(1)).max(1);
    let channels = load::connect(&args.conversation, connections).await?;
    let mut admin = ConversationServiceClient::new(channels[0].clone());
    let inbox = load::create_inbox(&mut admin, &tokens, "Streams").await?;

    let started = Instant::now();
    let visitors = load::start_visitors(&channels, &inbox.public_key, args.streams).await?;
    println!(
        "started {} chats in {:.1}s",
        visitors.len(),
        started.elapsed().as_secs_f64()
    );

    // Agents follow their own assignments: each receives the account's events and
    // keeps what is its own.
    let health = Arc::new(Health::default());
    let mut agent_streams = Vec::new();
    for a in 0..args.agents {
        let mut client = ConversationServiceClient::new(channels[a % channels.len()].clone());
        let subject = format!("bench-agent-{a}");
        let request = authed(
            SubscribeRequest {
                assignee_id: subject.clone(),
                ..Default::default()
            },
            &tokens.mint(&subject, Role::Agent),
        );
        let mut stream = client
            .subscribe(request)
            .await
            .context("opening an agent stream")?
            .into_inner();
        agent_streams.push(tokio::spawn(async move {
            while let Some(Ok(_)) = stream.next().await {}
        }));
    }
    quiet(server).await;
    let baseline = bench::resident(server).context("server memory")?;

    let arrivals: Arrivals = Arc::default();
    let mut sender = Sender {
        channels: channels.clone(),
        token: tokens.mint("bench-sender", Role::Supervisor),
        arrivals: arrivals.clone(),
        next_id: 1,
        server,
    };
    let mut open = 0;
    let mut first_p50 = None;
    let mut summary = String::new();
    for stage in &stages {
        open_visitor_streams(
            &channels,
            &visitors[open..*stage],
            &arrivals,
            &health,
            args.restart_with.is_some(),
        )
        .await?;
        open = *stage;
        quiet(server).await;
        let per_stream = bench::resident(server)
            .context("server memory")?
            .saturating_sub(baseline)
            / open as u64;
        let run = sender
            .paced(
                &visitors[..open],
                args.samples,
                args.sample_rate,
                Duration::from_secs(10),
            )
            .await?;
        let p50 = load::percentile(&run.latency_us, 0.50);
        let p99 = load::percentile(&run.latency_us, 0.99);
        first_p50.get_or_insert(p50);
        println!(
            "{open:>6} visitor streams: server memory {:.1} KiB per stream; agent -> visitor p50 {:.1} ms, p99 {:.1} ms ({} of {} arrived, {} failed); server CPU {:.2} ms per message",
            per_stream as f64 / 1024.0,
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0,
            run.latency_us.len(),
            run.sent,
            run.failed,
            run.cpu_ms as f64 / run.sent.max(1) as f64,
        );
        summary = format!(
            "{open} streams: {:.1} KiB/stream, p50 {:.1} ms, p99 {:.1} ms",
            per_stream as f64 / 1024.0,
            p50 as f64 / 1000.0,
            p99 as f64 / 1000.0
        );
    }
    if args.rate > 0.0 {
        let total = (args.rate * args.duration).round() as usize;
        let run = sender
            .paced(&visitors[..open], total, args.rate, Duration::from_secs(10))
            .await?;
        println!(
            "sustained with {open} open: {} messages scheduled at {:.0}/s, {} accepted ({} failed) at {:.0}/s; agent -> visitor p50 {:.1} ms, p99 {:.1} ms; {} lost; server CPU {:.2} ms per message",
            total,
            args.rate,
            run.sent,
            run.failed,
            run.sent as f64 / run.elapsed.as_secs_f64().max(1e-9),
            load::percentile(&run.latency_us, 0.50) as f64 / 1000.0,
            load::percentile(&run.latency_us, 0.99) as f64 / 1000.0,
            run.lost,
            run.cpu_ms as f64 / run.sent.max(1) as f64,
        );
        summary.push_str(&format!(
            "; sustained {:.0} messages/s, p99 {:.1} ms, {} lost",
            run.sent as f64 / run.elapsed.as_secs_f64().max(1e-9),
            load::percentile(&run.latency_us, 0.99) as f64 / 1000.0,
            run.lost
        ));
    }
    let mut ended = health.ended.load(Ordering::Relaxed);
    if let Some(command) = &args.restart_with {
        let restarted = Instant::now();
        let status = tokio::process::Command::new("sh")
            .arg("-c")
            .arg(command)
            .status()
            .await
            .context("running --restart-with")?;
        anyhow::ensure!(status.success(), "--restart-with failed: {status}");
        // Back when a call goes through again.
        let probe = ConversationServiceClient::new(channels[0].clone());
        let up = helpdesk_kit::testing::eventually(Duration::from_secs(120), || {
            let mut probe = probe.clone();
            let token = sender.token.clone();
            async move {
                probe
                    .list_inboxes(authed(Default::default(), &token))
                    .await
                    .ok()
                    .map(|_| ())
            }
        })
        .await;
        anyhow::ensure!(up.is_some(), "the platform did not come back within 120 s");
        let back_after = restarted.elapsed();
        // Messages sent while the widgets are still coming back: each must reach its
        // widget, by the replay on resume or live.
        let storm = args.storm_messages.min(open);
        let run = sender
            .paced(&visitors[..storm], storm, 1_000.0, Duration::from_secs(120))
            .await;
        let all_back = helpdesk_kit::testing::eventually(Duration::from_secs(120), || async {
            (health.reconnected.load(Ordering::Relaxed) >= open).then_some(())
        })
        .await;
        let first_end = health.first_end.lock().ok().and_then(|t| *t);
        let last_back = health.last_back.lock().ok().and_then(|t| *t);
        let storm_s = match (first_end, last_back, all_back) {
            (Some(a), Some(b), Some(())) => format!("{:.1} s", b.duration_since(a).as_secs_f64()),
            _ => format!(
                "not all within 120 s ({} of {open} back)",
                health.reconnected.load(Ordering::Relaxed)
            ),
        };
        let (lost, sent) = match &run {
            Ok(run) => (run.lost, run.sent),
            Err(_) => (storm, 0),
        };
        println!(
            "reconnect storm: the platform answered again {:.1} s after the restart began; {} of {open} widgets back, all within {storm_s} of the first drop; {sent} messages sent right after, {lost} never reached their widget",
            back_after.as_secs_f64(),
            health.reconnected.load(Ordering::Relaxed),
        );
        summary.push_str(&format!(
            "; restart: all back within {storm_s}, {lost} missed"
        ));
        ended = 0;
    }
    println!(
        "streambench: {summary}; first stage p50 {:.1} ms; {ended} visitor streams ended early",
        first_p50.unwrap_or(0) as f64 / 1000.0
    );
    for agent in agent_streams {
        agent.abort();
    }
    anyhow::ensure!(
        ended == 0,
        "{ended} visitor streams ended before the run did"
    );
    Ok(())
}
