//! Live streams: one NATS subscription per process and account, fanned out in memory
//! to the gRPC streams that want its messages.
//!
//! A stream registers a [`Watch`] for an account and, usually, one key (a
//! conversation id, an agent id): it then receives only the events whose aggregate is
//! that key (`ce-subject`) and the live signals (`<root>.live.<account>.<what>.<key>`,
//! e.g. typing) for it. Each watch has a buffer bounded in bytes: a client that stops reading
//! is ended with RESOURCE_EXHAUSTED instead of the process buffering for it without
//! bound. A caller may hold a limited number of watches at once. So a message's cost
//! never depends on how many clients are connected, and no client can grow the
//! process.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;
use tonic::Status;

use crate::auth::Caller;
use crate::bus::{Subjects, header, headers};
use crate::config::LiveConfig;

/// One message delivered to a watch.
#[derive(Debug, Clone)]
pub struct LiveMessage {
    /// For events `<aggregate>.<event>` (`message.created`); for live signals the
    /// signal's name (`typing`).
    pub kind: String,
    /// The aggregate id the message is about.
    pub key: String,
    /// True for a stored event, false for an ephemeral live signal.
    pub is_event: bool,
    /// Encoded protobuf body.
    pub payload: Bytes,
}

/// What a watch wants of its account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Everything of the account (staff monitoring screens).
    Account,
    /// Only what is about this aggregate id.
    Key(String),
}

struct Slot {
    id: u64,
    scope: Scope,
    tx: mpsc::UnboundedSender<LiveMessage>,
    buffered: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
}

#[derive(Clone, Debug)]
enum FeedState {
    Pending,
    Subscribed,
    Failed(String),
}

/// The watches of one account's feed, found by what they want: a message is handed
/// to the watches of its key and to the account-wide ones, and no other watch is
/// looked at, so its cost does not grow with the number of open streams.
#[derive(Default)]
struct Slots {
    /// Watches of one aggregate, by its id.
    by_key: HashMap<String, Vec<Slot>>,
    /// Watches of the whole account.
    account: Vec<Slot>,
}

impl Slots {
    fn push(&mut self, slot: Slot) {
        match &slot.scope {
            Scope::Account => self.account.push(slot),
            Scope::Key(key) => self.by_key.entry(key.clone()).or_default().push(slot),
        }
    }

    fn remove(&mut self, scope: &Scope, id: u64) {
        match scope {
            Scope::Account => self.account.retain(|s| s.id != id),
            Scope::Key(key) => {
                if let Some(slots) = self.by_key.get_mut(key) {
                    slots.retain(|s| s.id != id);
                    if slots.is_empty() {
                        self.by_key.remove(key);
                    }
                }
            }
        }
    }

    fn is_empty(&self) -> bool {
        self.account.is_empty() && self.by_key.is_empty()
    }
}

struct Feed {
    slots: Arc<Mutex<Slots>>,
    ready: watch::Receiver<FeedState>,
    stop: CancellationToken,
}

struct Inner {
    client: async_nats::Client,
    subjects: Subjects,
    config: LiveConfig,
    feeds: Mutex<HashMap<String, Feed>>,
    callers: Mutex<HashMap<(String, String), usize>>,
    connections: Mutex<HashMap<SocketAddr, usize>>,
    next_id: AtomicU64,
    shutdown: CancellationToken,
}

/// The process's live fan-out for one service.
#[derive(Clone)]
pub struct Hub {
    inner: Arc<Inner>,
}

impl Hub {
    /// A hub on `client`; every feed and watch ends when `shutdown` is cancelled.
    pub fn new(
        client: async_nats::Client,
        subjects: Subjects,
        config: LiveConfig,
        shutdown: CancellationToken,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                client,
                subjects,
                config,
                feeds: Mutex::new(HashMap::new()),
                callers: Mutex::new(HashMap::new()),
                connections: Mutex::new(HashMap::new()),
                next_id: AtomicU64::new(1),
                shutdown,
            }),
        }
    }

    /// Registers a watch for `scope` in the caller's account. Returns once the
    /// account's subscription is in place, so nothing published after this returns is
    /// missed. RESOURCE_EXHAUSTED, with a retry delay, when the caller or its
    /// connection holds too many watches; UNAVAILABLE when NATS cannot be reached.
    pub async fn watch(&self, caller: &Caller, scope: Scope) -> Result<Watch, Status> {
        if self.inner.client.connection_state() != async_nats::connection::State::Connected {
            return Err(Status::unavailable(
                "live updates unavailable: NATS is not connected",
            ));
        }
        let account = caller.account();
        let who = (account.to_string(), caller.claims.sub.clone());
        let config = &self.inner.config;
        if !take(&self.inner.callers, &who, config.max_streams_per_caller) {
            return Err(too_many(format!(
                "at most {} live streams per caller",
                config.max_streams_per_caller
            )));
        }
        // From here on the guard gives the slots back, whatever happens.
        let mut guard = WatchGuard {
            hub: self.clone(),
            caller: who,
            connection: None,
            account: account.to_string(),
            scope: scope.clone(),
            slot: None,
        };
        if let Some(connection) = caller.connection {
            if !take(
                &self.inner.connections,
                &connection,
                config.max_streams_per_connection,
            ) {
                return Err(too_many(format!(
                    "at most {} live streams per connection",
                    config.max_streams_per_connection
                )));
            }
            guard.connection = Some(connection);
        }
        let (tx, rx) = mpsc::unbounded_channel();
        let buffered = Arc::new(AtomicUsize::new(0));
        let overflowed = Arc::new(AtomicBool::new(false));
        let id = self.inner.next_id.fetch_add(1, Ordering::Relaxed);
        let mut ready = {
            let mut feeds = lock(&self.inner.feeds);
            let feed = feeds
                .entry(account.to_string())
                .or_insert_with(|| self.start_feed(account));
            lock(&feed.slots).push(Slot {
                id,
                scope,
                tx,
                buffered: buffered.clone(),
                overflowed: overflowed.clone(),
            });
            feed.ready.clone()
        };
        guard.slot = Some(id);
        let outcome = tokio::time::timeout(Duration::from_secs(5), async {
            loop {
                let state = ready.borrow_and_update().clone();
                match state {
                    FeedState::Subscribed => return Ok(()),
                    FeedState::Failed(e) => return Err(e),
                    FeedState::Pending => {
                        if ready.changed().await.is_err() {
                            return Err("live feed stopped".to_string());
                        }
                    }
                }
            }
        })
        .await;
        match outcome {
            Ok(Ok(())) => Ok(Watch {
                rx,
                buffered,
                overflowed,
                shutdown: self.inner.shutdown.clone(),
                _guard: guard,
            }),
            Ok(Err(e)) => Err(Status::unavailable(format!(
                "live updates unavailable: {e}"
            ))),
            Err(_) => Err(Status::unavailable(
                "live updates unavailable: NATS did not answer",
            )),
        }
    }

    /// Starts the account's subscription and its dispatcher (called under the lock).
    fn start_feed(&self, account: &str) -> Feed {
        let slots: Arc<Mutex<Slots>> = Arc::default();
        let (ready_tx, ready) = watch::channel(FeedState::Pending);
        let stop = self.inner.shutdown.child_token();
        let inner = self.inner.clone();
        let subject = format!("{}.*.{account}.>", self.inner.subjects.root());
        let account = account.to_string();
        let feed_slots = slots.clone();
        let feed_stop = stop.clone();
        tokio::spawn(async move {
            let subscribed = async {
                let sub = inner.client.subscribe(subject).await?;
                inner.client.flush().await?;
                Ok::<_, Box<dyn std::error::Error + Send + Sync>>(sub)
            }
            .await;
            let mut sub = match subscribed {
                Ok(sub) => {
                    let _ = ready_tx.send(FeedState::Subscribed);
                    sub
                }
                Err(e) => {
                    let _ = ready_tx.send(FeedState::Failed(e.to_string()));
                    // Forget this feed so the next watch tries again.
                    let mut feeds = lock(&inner.feeds);
                    if feeds.get(&account).is_some_and(|f| f.stop == feed_stop) {
                        feeds.remove(&account);
                    }
                    return;
                }
            };
            loop {
                let msg = tokio::select! {
                    _ = feed_stop.cancelled() => break,
                    msg = sub.next() => match msg {
                        Some(msg) => msg,
                        None => break,
                    },
                };
                let Some(live) = classify(&inner.subjects, &msg) else {
                    continue;
                };
                dispatch(&feed_slots, live, inner.config.buffer_bytes);
            }
            let _ = sub.unsubscribe().await;
        });
        Feed { slots, ready, stop }
    }

    fn release(&self, guard: &WatchGuard) {
        give_back(&self.inner.callers, &guard.caller);
        if let Some(connection) = &guard.connection {
            give_back(&self.inner.connections, connection);
        }
        let (account, scope) = (&guard.account, &guard.scope);
        let Some(id) = guard.slot else { return };
        let mut feeds = lock(&self.inner.feeds);
        let empty = match feeds.get(account) {
            Some(feed) => {
                let mut slots = lock(&feed.slots);
                slots.remove(scope, id);
                slots.is_empty()
            }
            None => false,
        };
        if empty && let Some(feed) = feeds.remove(account) {
            feed.stop.cancel();
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Counts one more watch of `who`, unless it holds `limit` already.
fn take<K: Eq + Hash + Clone>(counts: &Mutex<HashMap<K, usize>>, who: &K, limit: usize) -> bool {
    let mut counts = lock(counts);
    let open = counts.entry(who.clone()).or_insert(0);
    if *open >= limit {
        return false;
    }
    *open += 1;
    true
}

/// Counts one watch of `who` less.
fn give_back<K: Eq + Hash>(counts: &Mutex<HashMap<K, usize>>, who: &K) {
    let mut counts = lock(counts);
    if let Some(open) = counts.get_mut(who) {
        *open = open.saturating_sub(1);
        if *open == 0 {
            counts.remove(who);
        }
    }
}

/// How long a client refused for too many streams is asked to wait before trying again.
pub const RETRY_AFTER: Duration = Duration::from_secs(5);

/// RESOURCE_EXHAUSTED with a `google.rpc.RetryInfo` detail.
fn too_many(message: String) -> Status {
    use tonic_types::{ErrorDetails, StatusExt};
    Status::with_error_details(
        tonic::Code::ResourceExhausted,
        format!("{message}; retry in {} s", RETRY_AFTER.as_secs()),
        ErrorDetails::with_retry_info(Some(RETRY_AFTER)),
    )
}

/// Reads kind and key off an event (`<root>.evt.<account>.<aggregate>.<event>`, key
/// from `ce-subject`) or a live signal (`<root>.live.<account>.<what>.<key>`).
fn classify(subjects: &Subjects, msg: &async_nats::Message) -> Option<LiveMessage> {
    let rest = msg.subject.as_str().strip_prefix(subjects.root())?;
    let rest = rest.strip_prefix('.')?;
    let (class, rest) = rest.split_once('.')?;
    let (_account, what) = rest.split_once('.')?;
    match class {
        "evt" => Some(LiveMessage {
            kind: what.to_string(),
            key: header(msg.headers.as_ref(), headers::SUBJECT)
                .unwrap_or_default()
                .to_string(),
            is_event: true,
            payload: msg.payload.clone(),
        }),
        "live" => {
            let (kind, key) = what.split_once('.').unwrap_or((what, ""));
            Some(LiveMessage {
                kind: kind.to_string(),
                key: key.to_string(),
                is_event: false,
                payload: msg.payload.clone(),
            })
        }
        _ => None,
    }
}

/// What one buffered message counts against its stream's buffer.
fn cost(message: &LiveMessage) -> usize {
    message.payload.len() + message.kind.len() + message.key.len() + 64
}

/// Hands `live` to the slots of its key and the account-wide ones; a slot whose
/// buffer would exceed `limit` bytes is cut off (its stream ends with
/// RESOURCE_EXHAUSTED once it has read what it holds).
fn dispatch(slots: &Mutex<Slots>, live: LiveMessage, limit: usize) {
    let size = cost(&live);
    let deliver = |slot: &Slot| {
        if slot.buffered.load(Ordering::Relaxed) + size > limit {
            slot.overflowed.store(true, Ordering::Relaxed);
            return false;
        }
        slot.buffered.fetch_add(size, Ordering::Relaxed);
        slot.tx.send(live.clone()).is_ok()
    };
    let mut slots = lock(slots);
    let slots = &mut *slots;
    if let Some(keyed) = slots.by_key.get_mut(&live.key) {
        keyed.retain(deliver);
        if keyed.is_empty() {
            slots.by_key.remove(&live.key);
        }
    }
    slots.account.retain(deliver);
}

struct WatchGuard {
    hub: Hub,
    caller: (String, String),
    connection: Option<SocketAddr>,
    account: String,
    scope: Scope,
    slot: Option<u64>,
}

impl Drop for WatchGuard {
    fn drop(&mut self) {
        self.hub.release(self);
    }
}

/// One stream's share of its account's feed.
pub struct Watch {
    rx: mpsc::UnboundedReceiver<LiveMessage>,
    buffered: Arc<AtomicUsize>,
    overflowed: Arc<AtomicBool>,
    shutdown: CancellationToken,
    _guard: WatchGuard,
}

impl Watch {
    /// The next message; `None` when the service shuts down; RESOURCE_EXHAUSTED once
    /// the client fell too far behind (after what was buffered).
    pub async fn next(&mut self) -> Option<Result<LiveMessage, Status>> {
        let next = tokio::select! {
            biased;
            _ = self.shutdown.cancelled() => return None,
            next = self.rx.recv() => next,
        };
        match next {
            Some(message) => {
                self.buffered.fetch_sub(cost(&message), Ordering::Relaxed);
                Some(Ok(message))
            }
            None if self.overflowed.load(Ordering::Relaxed) => Some(Err(
                Status::resource_exhausted("the client fell behind the live stream; resubscribe"),
            )),
            None => None,
        }
    }
}
