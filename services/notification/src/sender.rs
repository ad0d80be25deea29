//! The sender: claims due deliveries, signs and posts them, and hands what came back
//! to a writer that records it in batches.
//!
//! One slow endpoint never holds up another: each endpoint has its own share of the
//! requests in flight (`per_endpoint_concurrency`) and the claim gives every endpoint
//! its turn, so a hanging receiver uses its share and nothing more. All requests in
//! flight are bounded (`max_in_flight`). A claim lasts the attempt's timeout and a
//! margin, so a sender that dies mid-attempt leaves its deliveries to another replica
//! (or to itself after a restart): a delivery is sent at least once per attempt and
//! recorded once.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use sqlx::PgPool;
use tokio::sync::{Notify, Semaphore, mpsc};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;
use uuid::Uuid;

use crate::domain::RESPONSE_EXCERPT_BYTES;
use crate::domain::schedule::{Verdict, retry_after, verdict};
use crate::domain::signature;
use crate::domain::targets::{self, TargetPolicy};
use crate::ops::Policy;
use crate::ops::results::{self, Outcome};
use crate::store::deliveries::{self, AttemptRecord, Claimed, WAKE_CHANNEL};

/// How the sender works.
#[derive(Debug, Clone)]
pub struct SenderConfig {
    /// Requests in flight to one endpoint (per replica).
    pub per_endpoint: u32,
    /// Requests in flight in all (per replica).
    pub max_in_flight: usize,
    /// How long one attempt may take, answer body included.
    pub timeout: Duration,
    /// How often due deliveries are looked for without being woken.
    pub poll: Duration,
}

/// How long a claim outlives the attempt's timeout.
const CLAIM_MARGIN: Duration = Duration::from_secs(30);
/// Most results recorded in one transaction.
const WRITE_BATCH: usize = 500;
/// The queue is vacuumed after this many claims, at most once per [`VACUUM_EVERY`].
const VACUUM_AFTER: usize = 1_000;
const VACUUM_EVERY: Duration = Duration::from_secs(5);

/// The metrics' name for an attempt's outcome.
fn outcome_name(verdict: Verdict, code: i32) -> &'static str {
    match verdict {
        Verdict::Delivered => "delivered",
        Verdict::Gone => "gone",
        Verdict::Throttled => "throttled",
        Verdict::Failed if code == 0 => "unreachable",
        Verdict::Failed => "failed",
    }
}

/// Sends the deliveries of every account.
pub struct Sender {
    pool: PgPool,
    policy: Arc<Policy>,
    config: SenderConfig,
    client: reqwest::Client,
    slots: Arc<Slots>,
}

impl Sender {
    /// A sender on `pool` (the notification schema).
    pub fn new(pool: PgPool, policy: Arc<Policy>, config: SenderConfig) -> Self {
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .dns_resolver(Arc::new(GuardedResolver(policy.targets)))
            .connect_timeout(config.timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(config.per_endpoint as usize)
            .user_agent(concat!("helpdesk-webhooks/", env!("CARGO_PKG_VERSION")))
            .build()
            .unwrap_or_else(|e| unreachable!("a client without custom TLS builds: {e}"));
        Self {
            pool,
            policy,
            config,
            client,
            slots: Arc::new(Slots::default()),
        }
    }

    /// Sends until `stop`; then lets the attempts in flight finish (within their
    /// timeout) and records them.
    pub async fn run(self, stop: CancellationToken) {
        let (results, received) = mpsc::channel(self.config.max_in_flight * 2);
        let writer = tokio::spawn(write(self.pool.clone(), self.policy.clone(), received));
        let permits = Arc::new(Semaphore::new(self.config.max_in_flight));
        let freed = Arc::new(Notify::new());
        let mut wakeups = helpdesk_kit::db::Wakeups::new(self.pool.clone(), WAKE_CHANNEL);
        let mut attempts = JoinSet::new();
        let claim_ms = (self.config.timeout + CLAIM_MARGIN).as_millis() as i64;
        let (mut since_vacuum, mut vacuumed) = (0usize, Instant::now());
        loop {
            if stop.is_cancelled() {
                break;
            }
            while attempts.try_join_next().is_some() {}
            if since_vacuum >= VACUUM_AFTER && vacuumed.elapsed() >= VACUUM_EVERY {
                if let Err(e) = deliveries::vacuum_queue(&self.pool).await {
                    tracing::debug!(error = %e, "vacuuming the webhook queue failed");
                }
                (since_vacuum, vacuumed) = (0, Instant::now());
            }
            wakeups.listen().await;
            let room = permits.available_permits();
            let mut full = false;
            if room > 0 {
                let caps = self.slots.caps(self.config.per_endpoint);
                let cap = i32::try_from(self.config.per_endpoint).unwrap_or(i32::MAX);
                match deliveries::claim(&self.pool, &caps, cap, room as i64, claim_ms).await {
                    Ok(batch) => {
                        full = batch.len() >= room;
                        since_vacuum += batch.len();
                        for c in batch {
                            let Ok(permit) = permits.clone().try_acquire_owned() else {
                                break;
                            };
                            self.slots.take(c.endpoint_id, c.rate_limit_per_second);
                            let work = Attempt {
                                client: self.client.clone(),
                                targets: self.policy.targets,
                                timeout: self.config.timeout,
                            };
                            let (results, slots, freed) =
                                (results.clone(), self.slots.clone(), freed.clone());
                            attempts.spawn(async move {
                                let endpoint = c.endpoint_id;
                                let outcome = work.run(c).await;
                                // Room again only once the writer has taken the outcome:
                                // a slow writer slows the sending down, so no claim
                                // runs out with its outcome unrecorded.
                                let _ = results.send(outcome).await;
                                slots.release(endpoint);
                                drop(permit);
                                freed.notify_one();
                            });
                        }
                    }
                    Err(e) => {
                        tracing::warn!(error = %e, "claiming webhook deliveries failed; retrying")
                    }
                }
            }
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = freed.notified() => {
                    // Let a few more finish before claiming again.
                    tokio::time::sleep(Duration::from_millis(2)).await;
                }
                _ = wakeups.wait() => {}
                _ = tokio::time::sleep(self.config.poll) => {}
            }
        }
        let drain = async { while attempts.join_next().await.is_some() {} };
        if tokio::time::timeout(self.config.timeout + Duration::from_secs(2), drain)
            .await
            .is_err()
        {
            tracing::warn!(
                "webhook attempts still running at shutdown; their claims will run out and they will be sent again"
            );
            attempts.abort_all();
        }
        drop(results);
        let _ = writer.await;
    }
}

/// What this replica has in flight per endpoint, and each rate-limited endpoint's
/// token bucket.
#[derive(Default)]
struct Slots(Mutex<HashMap<Uuid, Slot>>);

struct Slot {
    in_flight: u32,
    rate: Option<u32>,
    tokens: f64,
    refilled: Instant,
}

impl Slots {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Uuid, Slot>> {
        self.0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Room per endpoint that has anything in flight or a rate limit.
    fn caps(&self, per_endpoint: u32) -> Vec<(Uuid, i32)> {
        let now = Instant::now();
        let mut slots = self.lock();
        slots.retain(|_, s| s.in_flight > 0 || s.rate.is_some_and(|r| s.tokens < f64::from(r)));
        slots
            .iter_mut()
            .map(|(id, s)| {
                let mut room = per_endpoint.saturating_sub(s.in_flight);
                if let Some(rate) = s.rate {
                    let rate = f64::from(rate);
                    let elapsed = now.duration_since(s.refilled).as_secs_f64();
                    s.tokens = (s.tokens + elapsed * rate).min(rate);
                    s.refilled = now;
                    room = room.min(s.tokens.floor() as u32);
                }
                (*id, i32::try_from(room).unwrap_or(i32::MAX))
            })
            .collect()
    }

    fn take(&self, endpoint: Uuid, rate: Option<i32>) {
        let rate = rate.and_then(|r| u32::try_from(r).ok()).filter(|r| *r > 0);
        let mut slots = self.lock();
        let slot = slots.entry(endpoint).or_insert_with(|| Slot {
            in_flight: 0,
            rate,
            tokens: rate.map(f64::from).unwrap_or_default(),
            refilled: Instant::now(),
        });
        slot.in_flight += 1;
        slot.rate = rate;
        if rate.is_some() {
            slot.tokens -= 1.0;
        }
    }

    fn release(&self, endpoint: Uuid) {
        if let Some(slot) = self.lock().get_mut(&endpoint) {
            slot.in_flight = slot.in_flight.saturating_sub(1);
        }
    }
}

/// One attempt's tools.
struct Attempt {
    client: reqwest::Client,
    targets: TargetPolicy,
    timeout: Duration,
}

/// What came back from a receiver.
struct Answer {
    status: u16,
    retry_after: Option<Duration>,
    excerpt: String,
}

impl Attempt {
    async fn run(&self, c: Claimed) -> Outcome {
        let host = reqwest::Url::parse(&c.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        // A child of the consumer that queued it: one trace from the customer's action
        // to the integrator's endpoint.
        let span = tracing::info_span!(
            "webhook.deliver",
            otel.name = "webhook deliver",
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            http.request.method = "POST",
            server.address = %host,
            http.response.status_code = tracing::field::Empty,
            messaging.message.id = %c.event_id,
            helpdesk.delivery.id = %c.id,
            helpdesk.webhook.endpoint_id = %c.endpoint_id,
            helpdesk.delivery.step = c.step,
        );
        helpdesk_kit::telemetry::set_parent_traceparent(&span, &c.traceparent);
        let started = Instant::now();
        let sent = self.send(&c).instrument(span.clone()).await;
        let elapsed = started.elapsed();
        let latency_ms = i32::try_from(elapsed.as_millis()).unwrap_or(i32::MAX);
        let (code, verdict, retry_after, excerpt, error) = match sent {
            Ok(a) => {
                let v = verdict(Some(a.status));
                let error = match v {
                    Verdict::Delivered => String::new(),
                    _ => format!("answered HTTP {}", a.status),
                };
                (i32::from(a.status), v, a.retry_after, a.excerpt, error)
            }
            Err(error) => (0, Verdict::Failed, None, String::new(), error),
        };
        if code > 0 {
            span.record("http.response.status_code", code);
        }
        if verdict != Verdict::Delivered {
            span.record("otel.status_code", "ERROR");
        }
        crate::metrics::webhook_attempt(outcome_name(verdict, code), elapsed);
        Outcome {
            record: AttemptRecord {
                delivery_id: c.id,
                endpoint_id: c.endpoint_id,
                response_code: code,
                latency_ms,
                response_excerpt: excerpt,
                error,
                succeeded: verdict == Verdict::Delivered,
                claim: c.claimed_until,
            },
            account_id: c.account_id,
            step: c.step,
            verdict,
            retry_after,
        }
    }

    async fn send(&self, c: &Claimed) -> Result<Answer, String> {
        let url = targets::parse(&c.url)?;
        // The lookup counts against the attempt's time too.
        tokio::time::timeout(self.timeout, crate::ops::targets::check(&url, self.targets))
            .await
            .map_err(|_| {
                format!(
                    "no address for the host within {} ms",
                    self.timeout.as_millis()
                )
            })?
            .map_err(|e| e.to_string())?;
        let timestamp = chrono::Utc::now().timestamp();
        let mut secrets = vec![c.secret.as_str()];
        secrets.extend(c.previous_secret.as_deref());
        let signature = signature::header(&secrets, &c.event_id, timestamp, &c.body);
        let response = self
            .client
            .post(url)
            .header("webhook-id", &c.event_id)
            .header("webhook-timestamp", timestamp.to_string())
            .header("webhook-signature", signature)
            .header("content-type", "application/json")
            .body(c.body.clone())
            .timeout(self.timeout)
            .send()
            .await
            .map_err(|e| self.describe(&e))?;
        let status = response.status().as_u16();
        let retry_after = response
            .headers()
            .get(reqwest::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| retry_after(v, SystemTime::now()));
        Ok(Answer {
            status,
            retry_after,
            excerpt: excerpt(response).await,
        })
    }

    fn describe(&self, e: &reqwest::Error) -> String {
        if e.is_timeout() {
            return format!("no answer within {} ms", self.timeout.as_millis());
        }
        let mut text = if e.is_connect() {
            "could not connect".to_string()
        } else {
            "request failed".to_string()
        };
        let mut source = std::error::Error::source(e);
        while let Some(s) = source {
            text.push_str(": ");
            text.push_str(&s.to_string());
            source = s.source();
        }
        text
    }
}

/// The first bytes of a response body, as text that PostgreSQL stores.
async fn excerpt(mut response: reqwest::Response) -> String {
    let mut bytes = Vec::new();
    while bytes.len() < RESPONSE_EXCERPT_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            _ => break,
        }
    }
    bytes.truncate(RESPONSE_EXCERPT_BYTES);
    let mut text = String::from_utf8_lossy(&bytes).replace('\0', "");
    // A multi-byte character cut at the limit is replaced, not kept half.
    if text.len() > RESPONSE_EXCERPT_BYTES {
        let mut end = RESPONSE_EXCERPT_BYTES;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Records results as they come, in batches, until every attempt has reported.
async fn write(pool: PgPool, policy: Arc<Policy>, mut received: mpsc::Receiver<Outcome>) {
    while let Some(first) = received.recv().await {
        let mut batch = vec![first];
        while batch.len() < WRITE_BATCH {
            match received.try_recv() {
                Ok(o) => batch.push(o),
                Err(_) => break,
            }
        }
        let mut pause = Duration::from_millis(50);
        let give_up = Instant::now() + Duration::from_secs(300);
        loop {
            match save(&pool, &policy, &mut batch).await {
                Ok(()) => break,
                Err(e) if Instant::now() < give_up => {
                    tracing::warn!(error = %e, results = batch.len(), "recording webhook attempts failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
                Err(e) => {
                    tracing::error!(error = %e, results = batch.len(), "webhook attempts not recorded; their deliveries will be sent again when their claims run out");
                    break;
                }
            }
        }
    }
}

async fn save(
    pool: &PgPool,
    policy: &Policy,
    batch: &mut [Outcome],
) -> helpdesk_kit::error::Result<()> {
    let (saved, enqueued) = helpdesk_kit::outbox::tracked(async {
        let mut tx = pool.begin().await?;
        results::record(&mut tx, policy, batch).await?;
        tx.commit().await?;
        Ok::<_, helpdesk_kit::error::Error>(())
    })
    .await;
    if saved.is_ok() && enqueued {
        helpdesk_kit::outbox::wake();
    }
    saved
}

/// Resolves host names for the HTTP client and refuses any that point at an address
/// the policy does not allow: the check holds for the connection actually made, not
/// only for the lookup before it.
struct GuardedResolver(TargetPolicy);

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        Box::pin(async move {
            let host = name.as_str().to_string();
            let addrs: Vec<std::net::SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let ips: Vec<IpAddr> = addrs.iter().map(|a| a.ip()).collect();
            policy
                .check_all(&host, &ips)
                .map_err(|e| -> Box<dyn std::error::Error + Send + Sync> { e.into() })?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// Forgets finished webhook deliveries and emails once older than the retention.
pub struct Retention {
    pub pool: PgPool,
    pub keep: chrono::Duration,
}

impl Retention {
    /// Every ten minutes until `stop`, a bounded batch at a time.
    pub async fn run(self, stop: CancellationToken) {
        let mut every = tokio::time::interval(Duration::from_secs(600));
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = every.tick() => {}
            }
            let before = chrono::Utc::now() - self.keep;
            let pool = &self.pool;
            forget("webhook deliveries", &stop, || {
                deliveries::delete_finished(pool, before, 5_000)
            })
            .await;
            forget("emails", &stop, || {
                crate::store::emails::delete_finished(pool, before, 5_000)
            })
            .await;
        }
    }
}

/// Runs `batch` until it deletes nothing (or `stop`).
async fn forget<F, Fut>(what: &str, stop: &CancellationToken, batch: F)
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = Result<u64, sqlx::Error>>,
{
    loop {
        match batch().await {
            Ok(n) if n > 0 && !stop.is_cancelled() => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, %what, "forgetting old records failed; will retry");
                return;
            }
        }
    }
}
