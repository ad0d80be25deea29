//! Load generator: N visitors send messages while M agents are subscribed; measures
//! SendMessage throughput and the latency from SendMessage to each agent's Subscribe
//! stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use futures::StreamExt;
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_proto::conversation::v1::conversation_service_client::ConversationServiceClient;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use tokio::sync::Mutex;
use tonic::Request;
use tonic::transport::Channel;

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
    /// Messages each visitor sends, one after another.
    pub messages_per_visitor: usize,
    /// How long to wait for the last deliveries.
    pub drain_timeout: Duration,
}

/// What was measured.
#[derive(Debug, Clone)]
pub struct LoadReport {
    /// Messages sent.
    pub sent: usize,
    /// Wall time of the send phase.
    pub send_duration: Duration,
    /// SendMessage round trips (µs), sorted.
    pub send_latency_us: Vec<u64>,
    /// SendMessage → agent stream (µs), one per delivery, sorted.
    pub delivery_latency_us: Vec<u64>,
    /// Deliveries expected (sent × agents).
    pub expected_deliveries: usize,
    /// Messages an agent received more than once.
    pub duplicates: u64,
}

/// The `q`-quantile (0..=1) of sorted values.
pub fn percentile(sorted: &[u64], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let idx = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

impl LoadReport {
    /// Messages per second accepted by SendMessage.
    pub fn messages_per_sec(&self) -> f64 {
        self.sent as f64 / self.send_duration.as_secs_f64().max(1e-9)
    }

    /// Human-readable summary.
    pub fn render(&self, spec: &LoadSpec) -> String {
        let ms = |us: u64| us as f64 / 1000.0;
        format!(
            "visitors={} agents={} messages={} (each visitor sends {} in a row)\n\
             send:     {:.0} messages/s over {:.2}s; SendMessage p50 {:.1} ms, p99 {:.1} ms\n\
             delivery: {}/{} deliveries ({} duplicates); SendMessage -> agent stream p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms",
            spec.visitors,
            spec.agents,
            self.sent,
            spec.messages_per_visitor,
            self.messages_per_sec(),
            self.send_duration.as_secs_f64(),
            ms(percentile(&self.send_latency_us, 0.5)),
            ms(percentile(&self.send_latency_us, 0.99)),
            self.delivery_latency_us.len(),
            self.expected_deliveries,
            self.duplicates,
            ms(percentile(&self.delivery_latency_us, 0.5)),
            ms(percentile(&self.delivery_latency_us, 0.99)),
            ms(self.delivery_latency_us.last().copied().unwrap_or(0)),
        )
    }
}

fn authed<T>(msg: T, token: &str) -> Result<Request<T>, tonic::Status> {
    let mut req = Request::new(msg);
    let value = format!("Bearer {token}")
        .parse()
        .map_err(|_| tonic::Status::internal("bad token header"))?;
    req.metadata_mut().insert("authorization", value);
    Ok(req)
}

/// Content of a load message: `lg <send time in µs since start>`.
fn content(start: Instant) -> String {
    format!("lg {}", start.elapsed().as_micros())
}

fn sent_at_us(content: &str) -> Option<u64> {
    content.strip_prefix("lg ")?.parse().ok()
}

/// Runs the load and returns what was measured.
pub async fn run(spec: &LoadSpec) -> Result<LoadReport, Box<dyn std::error::Error + Send + Sync>> {
    let keys = JwtKeys::new(spec.jwt_secret.as_bytes());
    let token = |sub: &str, role| {
        keys.mint(&Claims::new(
            &spec.account,
            sub,
            role,
            chrono::Duration::hours(2),
        ))
    };
    let channel = Channel::from_shared(spec.conversation_addr.clone())?
        .connect()
        .await?;
    let mut client = ConversationServiceClient::new(channel.clone());
    let inbox = Inbox {
        name: "Load".into(),
        channel_kind: ChannelKind::WebWidget as i32,
        ..Default::default()
    };
    let inbox = client
        .create_inbox(authed(
            CreateInboxRequest { inbox: Some(inbox) },
            &token("load-admin", Role::Admin),
        )?)
        .await?
        .into_inner();

    let start = Instant::now();
    let expected_per_agent = spec.visitors * spec.messages_per_visitor;
    let deliveries = Arc::new(Mutex::new(Vec::with_capacity(
        expected_per_agent * spec.agents,
    )));
    let received = Arc::new(AtomicU64::new(0));
    let duplicates = Arc::new(AtomicU64::new(0));
    let mut agent_tasks = Vec::new();
    for a in 0..spec.agents {
        let mut c = ConversationServiceClient::new(channel.clone());
        let mut stream = c
            .subscribe(authed(
                SubscribeRequest {
                    inbox_id: inbox.id.clone(),
                    ..Default::default()
                },
                &token(&format!("agent-{a}"), Role::Agent),
            )?)
            .await?
            .into_inner();
        let deliveries = deliveries.clone();
        let received = received.clone();
        let duplicates = duplicates.clone();
        agent_tasks.push(tokio::spawn(async move {
            let mut mine = Vec::with_capacity(expected_per_agent);
            let mut seen = std::collections::HashSet::with_capacity(expected_per_agent);
            while mine.len() < expected_per_agent {
                let Some(Ok(item)) = stream.next().await else {
                    break;
                };
                let Some(Update::MessageCreated(e)) = item.update else {
                    continue;
                };
                let Some(m) = e.message else { continue };
                let Some(sent) = sent_at_us(&m.content) else {
                    continue;
                };
                if !seen.insert(m.id) {
                    duplicates.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                mine.push((start.elapsed().as_micros() as u64).saturating_sub(sent));
                received.fetch_add(1, Ordering::Relaxed);
            }
            deliveries.lock().await.extend(mine);
        }));
    }

    let mut visitors = Vec::new();
    for v in 0..spec.visitors {
        let started = client
            .start_conversation(Request::new(StartConversationRequest {
                inbox_public_key: inbox.public_key.clone(),
                contact: Some(Contact {
                    name: format!("Visitor {v}"),
                    ..Default::default()
                }),
                ..Default::default()
            }))
            .await?
            .into_inner();
        let conv = started.conversation.map(|c| c.id).unwrap_or_default();
        visitors.push((conv, started.visitor_token));
    }

    let send_start = Instant::now();
    let mut senders = Vec::new();
    for (conv, visitor_token) in visitors {
        let mut c = ConversationServiceClient::new(channel.clone());
        let n = spec.messages_per_visitor;
        senders.push(tokio::spawn(async move {
            let mut latencies = Vec::with_capacity(n);
            for _ in 0..n {
                let t = Instant::now();
                let req = authed(
                    SendMessageRequest {
                        conversation_id: conv.clone(),
                        content: content(start),
                        ..Default::default()
                    },
                    &visitor_token,
                )?;
                c.send_message(req).await?;
                latencies.push(t.elapsed().as_micros() as u64);
            }
            Ok::<_, tonic::Status>(latencies)
        }));
    }
    let mut send_latency_us = Vec::new();
    for s in senders {
        send_latency_us.extend(s.await??);
    }
    let send_duration = send_start.elapsed();
    let sent = send_latency_us.len();

    let expected_deliveries = sent * spec.agents;
    let deadline = Instant::now() + spec.drain_timeout;
    while (received.load(Ordering::Relaxed) as usize) < expected_deliveries
        && Instant::now() < deadline
    {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for t in agent_tasks {
        if (received.load(Ordering::Relaxed) as usize) < expected_deliveries {
            t.abort();
        }
        let _ = t.await;
    }
    let mut delivery_latency_us = std::mem::take(&mut *deliveries.lock().await);
    delivery_latency_us.sort_unstable();
    send_latency_us.sort_unstable();
    let duplicates = duplicates.load(Ordering::Relaxed);
    Ok(LoadReport {
        sent,
        send_duration,
        send_latency_us,
        delivery_latency_us,
        expected_deliveries,
        duplicates,
    })
}
