//! Load generator: visitors send messages while agents are subscribed; measures
//! SendMessage and the time from sending to each agent's Subscribe stream.
//!
//! Closed loop: each visitor sends its messages one after another. Open loop: messages
//! are scheduled at a fixed rate whatever the responses do, and latencies are taken
//! from the scheduled send time, so a slow platform cannot slow the load down and hide
//! its own delays.
//!
//! Also what the benchmarks share: tokens, connections, percentiles, labels.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use helpdesk_kit::CancellationToken;
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use tokio::task::JoinHandle;
use tonic::Request;
use tonic::transport::Channel;

use crate::platform::authed;

/// HTTP/2 connections the load is spread over. One would cap the calls in flight at
/// the server's concurrent-stream limit (200 by default); real visitors each have
/// their own.
pub const CONNECTIONS: usize = 16;

/// What to run.
#[derive(Debug, Clone)]
pub struct LoadSpec {
    /// Conversation service address.
    pub conversation_addr: String,
    /// JWT secret of the platform.
    pub jwt_secret: String,
    /// Account to load.
    pub account: String,
    /// Concurrent visitors, each with its own conversation.
    pub visitors: usize,
    /// Agents subscribed to the whole account.
    pub agents: usize,
    /// Messages each visitor sends, one after another (closed loop).
    pub messages_per_visitor: usize,
    /// How long to wait for the last deliveries (and, open loop, for any one call).
    pub drain_timeout: Duration,
    /// When set, messages are scheduled at a rate instead (`messages_per_visitor` is
    /// then unused).
    pub open_loop: Option<OpenLoop>,
}

impl Default for LoadSpec {
    fn default() -> Self {
        Self {
            conversation_addr: "http://127.0.0.1:50051".into(),
            jwt_secret: String::new(),
            account: "load".into(),
            visitors: 50,
            agents: 5,
            messages_per_visitor: 40,
            drain_timeout: Duration::from_secs(60),
            open_loop: None,
        }
    }
}

/// Open-loop pacing: `total` messages at `rate` per second in all, round robin over the
/// visitors' conversations, each sent in its own task.
#[derive(Debug, Clone, Copy)]
pub struct OpenLoop {
    /// Messages per second, in total.
    pub rate: f64,
    /// Messages scheduled.
    pub total: usize,
}

impl OpenLoop {
    /// How long the schedule lasts.
    pub fn duration(&self) -> Duration {
        Duration::from_secs_f64(self.total as f64 / self.rate.max(1e-9))
    }
}

/// What was measured.
#[derive(Debug, Clone, Default)]
pub struct LoadReport {
    /// Messages SendMessage accepted.
    pub sent: usize,
    /// SendMessage calls that failed or timed out (open loop; closed loop stops at the
    /// first).
    pub failed: usize,
    /// The first failure, if any.
    pub first_error: Option<String>,
    /// Wall time of the send phase: closed loop, first send to last response; open
    /// loop, first scheduled send to last response.
    pub send_duration: Duration,
    /// SendMessage latencies (µs), sorted: closed loop, the round trip; open loop,
    /// response time − scheduled time.
    pub send_latency_us: Vec<u64>,
    /// Send (closed loop) or scheduled (open loop) time → agent stream (µs), one per
    /// delivery, sorted.
    pub delivery_latency_us: Vec<u64>,
    /// Deliveries expected (sent × agents).
    pub expected_deliveries: usize,
    /// Messages an agent received more than once.
    pub duplicates: u64,
    /// Open loop: the most the generator itself fell behind its schedule (a busy client
    /// machine shows here).
    pub max_schedule_lag: Duration,
    /// Why an agent's stream ended before the run did, if one did.
    pub stream_error: Option<String>,
}

/// The `q`-quantile (0..=1) of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

/// `p50 … ms, p99 … ms, max … ms` of sorted µs values.
pub fn summary(sorted: &[u64]) -> String {
    let ms = |us: u64| us as f64 / 1000.0;
    format!(
        "p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
        ms(percentile(sorted, 0.5)),
        ms(percentile(sorted, 0.99)),
        ms(sorted.last().copied().unwrap_or(0))
    )
}

/// Where a run happens, to label its figures: a running platform at `url`, else the
/// in-process services on the test servers.
pub fn place(url: Option<&str>) -> String {
    match url {
        Some(url) => format!("platform at {url}"),
        None => "in-process test servers (fsync off)".into(),
    }
}

/// Starts the NATS and PostgreSQL servers of a tool's in-process run (they stop when
/// the tool ends, however it ends), and says which they are.
pub async fn own_servers() -> anyhow::Result<helpdesk_kit::testing::OwnedServers> {
    let servers = helpdesk_kit::testing::OwnedServers::start().await?;
    let (nats, postgres) = servers.pids();
    eprintln!(
        "started private servers for this run (nats-server pid {nats}, postgres pid {postgres})"
    );
    Ok(servers)
}

/// `HELPDESK_JWT_SECRET`, required to drive a running platform.
pub fn jwt_secret_from_env() -> anyhow::Result<String> {
    std::env::var("HELPDESK_JWT_SECRET")
        .ok()
        .filter(|s| !s.is_empty())
        .context("HELPDESK_JWT_SECRET is required against a running platform")
}

/// `<prefix>-<8 hex digits>`: a fresh account, so runs on a long-lived platform don't
/// meet each other's data.
pub fn fresh_account(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..8])
}

/// Tokens of one account, signed with the platform's secret.
#[derive(Clone)]
pub struct Tokens {
    keys: JwtKeys,
    account: String,
}

impl Tokens {
    /// Tokens of `account` signed with `secret`.
    pub fn new(secret: &str, account: &str) -> Self {
        Self {
            keys: JwtKeys::new(secret.as_bytes()),
            account: account.into(),
        }
    }

    /// The account.
    pub fn account(&self) -> &str {
        &self.account
    }

    /// A token for `subject` in `role`, valid for two hours.
    pub fn mint(&self, subject: &str, role: Role) -> String {
        self.keys.mint(&Claims::new(
            &self.account,
            subject,
            role,
            chrono::Duration::hours(2),
        ))
    }
}

/// `n` (at least one) HTTP/2 connections to `url`.
pub async fn connect(url: &str, n: usize) -> anyhow::Result<Vec<Channel>> {
    let endpoint = Channel::from_shared(url.to_string())?;
    let mut channels = Vec::with_capacity(n.max(1));
    for _ in 0..n.max(1) {
        let channel = endpoint
            .connect()
            .await
            .with_context(|| format!("connecting to {url}"))?;
        channels.push(channel);
    }
    Ok(channels)
}

/// Creates a web-widget inbox as an admin of the tokens' account.
pub async fn create_inbox(
    client: &mut ConversationServiceClient<Channel>,
    tokens: &Tokens,
    name: &str,
) -> anyhow::Result<Inbox> {
    let inbox = Inbox {
        name: name.into(),
        channel_kind: ChannelKind::WebWidget as i32,
        ..Default::default()
    };
    Ok(client
        .create_inbox(authed(
            CreateInboxRequest { inbox: Some(inbox) },
            &tokens.mint("load-admin", Role::Admin),
        ))
        .await
        .context("creating the inbox")?
        .into_inner())
}

impl LoadReport {
    /// Messages per second accepted by SendMessage.
    pub fn messages_per_sec(&self) -> f64 {
        self.sent as f64 / self.send_duration.as_secs_f64().max(1e-9)
    }

    /// Deliveries that never arrived.
    pub fn lost(&self) -> usize {
        self.expected_deliveries
            .saturating_sub(self.delivery_latency_us.len())
    }

    /// Human-readable summary; the first line says where it ran (see [`place`]).
    pub fn render(&self, spec: &LoadSpec, place: &str) -> String {
        let delivered = format!(
            "{}/{} deliveries ({} lost, {} duplicates)",
            self.delivery_latency_us.len(),
            self.expected_deliveries,
            self.lost(),
            self.duplicates
        );
        let mut out = match spec.open_loop {
            None => format!(
                "loadgen on {place}: closed loop, visitors={} agents={} messages={} (each visitor sends {} in a row)\n\
                 send:     {:.0} messages/s over {:.2}s; SendMessage {}\n\
                 delivery: {delivered}; SendMessage -> agent stream {}",
                spec.visitors,
                spec.agents,
                self.sent,
                spec.messages_per_visitor,
                self.messages_per_sec(),
                self.send_duration.as_secs_f64(),
                summary(&self.send_latency_us),
                summary(&self.delivery_latency_us),
            ),
            Some(open) => format!(
                "loadgen on {place}: open loop, {} messages/s scheduled for {:.1}s round robin over {} visitors' conversations, agents={}\n\
                 send:     {}/{} accepted ({} failed), achieved {:.0} messages/s (first scheduled send to last response {:.2}s); \
                 SendMessage from scheduled time {}; generator behind schedule at most {:.1} ms\n\
                 delivery: {delivered}; scheduled time -> agent stream {}",
                open.rate,
                open.duration().as_secs_f64(),
                spec.visitors,
                spec.agents,
                self.sent,
                open.total,
                self.failed,
                self.messages_per_sec(),
                self.send_duration.as_secs_f64(),
                summary(&self.send_latency_us),
                self.max_schedule_lag.as_secs_f64() * 1000.0,
                summary(&self.delivery_latency_us),
            ),
        };
        if let Some(e) = &self.first_error {
            out.push_str(&format!("\nfirst SendMessage failure: {e}"));
        }
        if let Some(e) = &self.stream_error {
            out.push_str(&format!("\nan agent's stream ended early: {e}"));
        }
        out
    }
}

/// Content of a load message: `lg <send or scheduled time in µs since start>`.
fn marker(start: Instant, at: Instant) -> String {
    format!("lg {}", at.saturating_duration_since(start).as_micros())
}

fn marker_us(content: &str) -> Option<u64> {
    content.strip_prefix("lg ")?.parse().ok()
}

/// A visitor's conversation and token.
pub struct Visitor {
    /// The visitor's conversation id.
    pub conversation: String,
    /// The visitor token StartConversation issued.
    pub token: String,
}

/// The send phase's outcome.
#[derive(Default)]
struct Sends {
    accepted: usize,
    failed: usize,
    first_error: Option<String>,
    duration: Duration,
    latency_us: Vec<u64>,
    max_lag: Duration,
}

/// Runs the load and returns what was measured.
pub async fn run(spec: &LoadSpec) -> anyhow::Result<LoadReport> {
    let tokens = Tokens::new(&spec.jwt_secret, &spec.account);
    let channels = connect(&spec.conversation_addr, spec.visitors.clamp(1, CONNECTIONS)).await?;
    let inbox = create_inbox(
        &mut ConversationServiceClient::new(channels[0].clone()),
        &tokens,
        "Load",
    )
    .await?;
    let start = Instant::now();
    let agents = Agents::subscribe(&channels, &tokens, &inbox.id, spec.agents, start).await?;
    let visitors = start_visitors(&channels, &inbox.public_key, spec.visitors).await?;
    anyhow::ensure!(!visitors.is_empty(), "no visitors");
    let sends = match spec.open_loop {
        None => closed_loop(&channels, visitors, spec.messages_per_visitor, start).await?,
        Some(open) => open_loop(&channels, &visitors, open, start, spec.drain_timeout).await?,
    };
    let expected_deliveries = sends.accepted * spec.agents;
    let (delivery_latency_us, duplicates, stream_error) =
        agents.drain(expected_deliveries, spec.drain_timeout).await;
    let mut send_latency_us = sends.latency_us;
    send_latency_us.sort_unstable();
    Ok(LoadReport {
        sent: sends.accepted,
        failed: sends.failed,
        first_error: sends.first_error,
        send_duration: sends.duration,
        send_latency_us,
        delivery_latency_us,
        expected_deliveries,
        duplicates,
        max_schedule_lag: sends.max_lag,
        stream_error,
    })
}

/// Starts one conversation per visitor (16 at a time).
pub async fn start_visitors(
    channels: &[Channel],
    inbox_public_key: &str,
    n: usize,
) -> anyhow::Result<Vec<Visitor>> {
    let visitors = futures::stream::iter(0..n)
        .map(|v| {
            let mut client = ConversationServiceClient::new(channels[v % channels.len()].clone());
            let key = inbox_public_key.to_string();
            async move {
                let started = client
                    .start_conversation(Request::new(StartConversationRequest {
                        inbox_public_key: key,
                        contact: Some(Contact {
                            name: format!("Visitor {v}"),
                            ..Default::default()
                        }),
                        ..Default::default()
                    }))
                    .await?
                    .into_inner();
                Ok::<_, tonic::Status>(Visitor {
                    conversation: started.conversation.map(|c| c.id).unwrap_or_default(),
                    token: started.visitor_token,
                })
            }
        })
        .buffered(16)
        .try_collect()
        .await
        .context("starting the visitors' conversations")?;
    Ok(visitors)
}

/// Each visitor sends `n` messages, one after another; the first failure stops the run.
async fn closed_loop(
    channels: &[Channel],
    visitors: Vec<Visitor>,
    n: usize,
    start: Instant,
) -> anyhow::Result<Sends> {
    let send_start = Instant::now();
    let mut senders = Vec::new();
    for (v, visitor) in visitors.into_iter().enumerate() {
        let mut client = ConversationServiceClient::new(channels[v % channels.len()].clone());
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let req = authed(
                    SendMessageRequest {
                        conversation_id: visitor.conversation.clone(),
                        content: marker(start, t),
                        ..Default::default()
                    },
                    &visitor.token,
                );
                client.send_message(req).await?;
                latencies.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut latency_us = Vec::new();
    for s in senders {
        latency_us.extend(s.await?.context("SendMessage")?);
    }
    Ok(Sends {
        accepted: latency_us.len(),
        duration: send_start.elapsed(),
        latency_us,
        ..Sends::default()
    })
}

/// Sends `open.total` messages at `open.rate` per second, message `i` at
/// `first + i / rate` into visitor `i mod visitors`'s conversation, each in its own
/// task; a call may take at most `call_timeout`.
async fn open_loop(
    channels: &[Channel],
    visitors: &[Visitor],
    open: OpenLoop,
    start: Instant,
    call_timeout: Duration,
) -> anyhow::Result<Sends> {
    anyhow::ensure!(open.rate > 0.0, "the rate must be positive");
    let first = Instant::now();
    let mut max_lag = Duration::ZERO;
    let mut calls: Vec<JoinHandle<Result<(u64, Instant), String>>> = Vec::with_capacity(open.total);
    for i in 0..open.total {
        let scheduled = first + Duration::from_secs_f64(i as f64 / open.rate);
        tokio::time::sleep_until(scheduled.into()).await;
        max_lag = max_lag.max(Instant::now().saturating_duration_since(scheduled));
        let v = i % visitors.len();
        let mut client = ConversationServiceClient::new(channels[v % channels.len()].clone());
        let req = authed(
            SendMessageRequest {
                conversation_id: visitors[v].conversation.clone(),
                content: marker(start, scheduled),
                ..Default::default()
            },
            &visitors[v].token,
        );
        calls.push(tokio::spawn(async move {
            let outcome = tokio::time::timeout(call_timeout, client.send_message(req)).await;
            let done = Instant::now();
            match outcome {
                Ok(Ok(_)) => Ok((done.duration_since(scheduled).as_micros() as u64, done)),
                Ok(Err(status)) => Err(status.to_string()),
                Err(_) => Err(format!("no answer within {} s", call_timeout.as_secs())),
            }
        }));
    }
    let mut sends = Sends {
        max_lag,
        latency_us: Vec::with_capacity(open.total),
        ..Sends::default()
    };
    let mut last = first;
    for call in calls {
        match call.await {
            Ok(Ok((latency, done))) => {
                sends.accepted += 1;
                sends.latency_us.push(latency);
                last = last.max(done);
            }
            Ok(Err(e)) => {
                sends.failed += 1;
                sends.first_error.get_or_insert(e);
            }
            Err(e) => {
                sends.failed += 1;
                sends.first_error.get_or_insert(e.to_string());
            }
        }
    }
    sends.duration = last.duration_since(first);
    Ok(sends)
}

/// What one agent saw.
struct AgentOutcome {
    /// Delivery latencies (µs).
    latencies: Vec<u64>,
    duplicates: u64,
    /// Why the stream ended before the agent was stopped.
    ended: Option<String>,
}

/// Agents subscribed to the inbox, each recording when load messages reach it.
struct Agents {
    received: Arc<AtomicU64>,
    stop: CancellationToken,
    tasks: Vec<JoinHandle<AgentOutcome>>,
}

impl Agents {
    async fn subscribe(
        channels: &[Channel],
        tokens: &Tokens,
        inbox_id: &str,
        n: usize,
        start: Instant,
    ) -> anyhow::Result<Self> {
        let received = Arc::new(AtomicU64::new(0));
        let stop = CancellationToken::new();
        let mut tasks = Vec::with_capacity(n);
        for a in 0..n {
            let mut client = ConversationServiceClient::new(channels[a % channels.len()].clone());
            let mut stream = client
                .subscribe(authed(
                    SubscribeRequest {
                        inbox_id: inbox_id.to_string(),
                        ..Default::default()
                    },
                    &tokens.mint(&format!("agent-{a}"), Role::Agent),
                ))
                .await
                .context("Subscribe")?
                .into_inner();
            let received = received.clone();
            let stop = stop.clone();
            tasks.push(tokio::spawn(async move {
                let mut mine = Vec::new();
                let mut seen = HashSet::new();
                let mut duplicates = 0;
                let mut ended = None;
                loop {
                    let item = tokio::select! {
                        _ = stop.cancelled() => break,
                        item = stream.next() => item,
                    };
                    let item = match item {
                        Some(Ok(item)) => item,
                        Some(Err(status)) => {
                            ended = Some(status.to_string());
                            break;
                        }
                        None => {
                            ended = Some("closed by the server".into());
                            break;
                        }
                    };
                    let Some(Update::MessageCreated(e)) = item.update else {
                        continue;
                    };
                    let Some(m) = e.message else { continue };
                    let Some(sent) = marker_us(&m.content) else {
                        continue;
                    };
                    if !seen.insert(m.id) {
                        duplicates += 1;
                        continue;
                    }
                    mine.push((start.elapsed().as_micros() as u64).saturating_sub(sent));
                    received.fetch_add(1, Ordering::Relaxed);
                }
                AgentOutcome {
                    latencies: mine,
                    duplicates,
                    ended,
                }
            }));
        }
        Ok(Self {
            received,
            stop,
            tasks,
        })
    }

    /// Waits until `expected` deliveries arrived or `timeout` passed, then stops the
    /// agents; returns every delivery's latency (µs, sorted), the duplicates, and why a
    /// stream ended early if one did.
    async fn drain(self, expected: usize, timeout: Duration) -> (Vec<u64>, u64, Option<String>) {
        let deadline = Instant::now() + timeout;
        while (self.received.load(Ordering::Relaxed) as usize) < expected
            && Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.stop.cancel();
        let mut latencies = Vec::with_capacity(expected);
        let mut duplicates = 0;
        let mut ended = None;
        for t in self.tasks {
            match t.await {
                Ok(agent) => {
                    latencies.extend(agent.latencies);
                    duplicates += agent.duplicates;
                    ended = ended.or(agent.ended);
                }
                Err(e) => ended = ended.or(Some(e.to_string())),
            }
        }
        latencies.sort_unstable();
        (latencies, duplicates, ended)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_sorted_values() {
        let v: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&v, 0.5), 51);
        assert_eq!(percentile(&v, 0.99), 99);
        assert_eq!(percentile(&[], 0.5), 0);
    }

    #[test]
    fn marker_round_trips() {
        let start = Instant::now();
        let at = start + Duration::from_micros(1234);
        assert_eq!(marker_us(&marker(start, at)), Some(1234));
        assert_eq!(marker_us("hello"), None);
    }
}
