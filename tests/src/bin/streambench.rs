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
}

/// The running `helpdesk up`: a process whose command line has a `helpdesk` program
/// and the word `up`.
fn find_server() -> Option<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args.first().map(|p| p.rsplit('/').next().unwrap_or(p));
        if program == Some("helpdesk") && args.iter().any(|a| a == "up") {
            found.push(pid);
        }
    }
    (found.len() == 1).then(|| found[0])
}

/// Resident memory of `pid`, in bytes.
fn resident(pid: u32) -> anyhow::Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .context("VmRSS")?;
    Ok(kib * 1024)
}

/// CPU time `pid` has used, all threads, in milliseconds.
fn cpu_ms(pid: u32) -> anyhow::Result<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))?;
    let fields: Vec<&str> = stat
        .rsplit_once(") ")
        .context("stat")?
        .1
        .split_whitespace()
        .collect();
    let ticks: u64 = fields[11].parse::<u64>()? + fields[12].parse::<u64>()?;
    Ok(ticks * 10)
}

/// Waits until `pid` uses under 5 % of a core over a second (at most a minute).
async fn quiet(pid: u32) -> anyhow::Result<()> {
    let until = Instant::now() + Duration::from_secs(60);
    let mut last = cpu_ms(pid)?;
    while Instant::now() < until {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_ms(pid)?;
        if now - last < 50 {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}

/// When each marked message reached its visitor's stream.
type Arrivals = Arc<Mutex<HashMap<u64, Instant>>>;

/// Opens the visitor streams of `visitors` and records arrivals of marked messages.
async fn open_visitor_streams(
    channels: &[Channel],
    visitors: &[Visitor],
    arrivals: &Arrivals,
    ended: &Arc<AtomicUsize>,
) -> anyhow::Result<()> {
    let opened = futures::stream::iter(visitors.iter().enumerate())
        .map(|(i, v)| {
            let mut client = ConversationServiceClient::new(channels[i % channels.len()].clone());
            let request = authed(
                SubscribeRequest {
                    conversation_id: v.conversation.clone(),
                    ..Default::default()
                },
                &v.token,
            );
            async move { client.subscribe(request).await }
        })
        .buffer_unordered(100)
        .collect::<Vec<_>>()
        .await;
    for stream in opened {
        let mut stream = stream.context("opening a visitor stream")?.into_inner();
        let (arrivals, ended) = (arrivals.clone(), ended.clone());
        tokio::spawn(async move {
            while let Some(Ok(update)) = stream.next().await {
                if let Some(Update::MessageCreated(e)) = update.update
                    && let Some(id) = e
                        .message
                        .and_then(|m| m.content.strip_prefix("sb ")?.parse::<u64>().ok())
                {
                    let now = Instant::now();
                    if let Ok(mut arrivals) = arrivals.lock() {
                        arrivals.insert(id, now);
                    }
                }
            }
            ended.fetch_add(1, Ordering::Relaxed);
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

/// Sends `total` marked messages at `rate`/s, each to a random open conversation, as
/// staff; waits for them to arrive (up to 10 s after the last send).
#[allow(clippy::too_many_arguments)]
async fn paced(
    channels: &[Channel],
    open: &[Visitor],
    token: &str,
    arrivals: &Arrivals,
    next_id: &mut u64,
    total: usize,
    rate: f64,
    server: u32,
) -> anyhow::Result<Run> {
    let cpu_before = cpu_ms(server)?;
    let start = Instant::now();
    let mut scheduled = Vec::with_capacity(total);
    let mut sends = Vec::with_capacity(total);
    for i in 0..total {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        tokio::time::sleep_until(at.into()).await;
        let id = *next_id;
        *next_id += 1;
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
    let drain = Instant::now() + Duration::from_secs(10);
    while Instant::now() < drain {
        let arrived = arrivals.lock().map(|a| a.len()).unwrap_or(0);
        if arrived >= sent {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let cpu_ms = cpu_ms(server)? - cpu_before;
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

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let server = match args.server_pid {
        Some(pid) => pid,
        None => find_server().context(
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
    let ended = Arc::new(AtomicUsize::new(0));
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
    quiet(server).await?;
    let baseline = resident(server)?;

    let sender = tokens.mint("bench-sender", Role::Supervisor);
    let arrivals: Arrivals = Arc::default();
    let mut next_id = 1u64;
    let mut open = 0;
    let mut first_p50 = None;
    let mut summary = String::new();
    for stage in &stages {
        open_visitor_streams(&channels, &visitors[open..*stage], &arrivals, &ended).await?;
        open = *stage;
        quiet(server).await?;
        let per_stream = resident(server)?.saturating_sub(baseline) / open as u64;
        let run = paced(
            &channels,
            &visitors[..open],
            &sender,
            &arrivals,
            &mut next_id,
            args.samples,
            args.sample_rate,
            server,
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
        let run = paced(
            &channels,
            &visitors[..open],
            &sender,
            &arrivals,
            &mut next_id,
            total,
            args.rate,
            server,
        )
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
    let ended = ended.load(Ordering::Relaxed);
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
