//! The active rules of each account, compiled, kept in memory: loaded on first use,
//! dropped when a rule changes (here at once; in other replicas when they see
//! `automation.rules_changed`), and reloaded at the latest after a minute.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use futures::StreamExt;
use helpdesk_kit::CancellationToken;
use helpdesk_kit::bus::Bus;
use helpdesk_kit::event::Event;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::automation::v1::RulesChanged;
use sqlx::PgPool;

use crate::domain::rules::{Compiled, compile};
use crate::store;

/// Most accounts kept; beyond that the cache starts over.
const MAX_ACCOUNTS: usize = 10_000;

/// One account's active rules, in order.
#[derive(Debug, Default)]
pub struct AccountRules {
    pub rules: Vec<Arc<Compiled>>,
}

impl AccountRules {
    /// The rules of any of `events`, in order.
    pub fn of<'a>(&'a self, events: &'a [&'a str]) -> impl Iterator<Item = &'a Arc<Compiled>> + 'a {
        self.rules
            .iter()
            .filter(move |r| events.contains(&r.rule.event.as_str()))
    }

    /// Whether some rule listens to one of `events`.
    pub fn listens(&self, events: &[&str]) -> bool {
        self.of(events).next().is_some()
    }
}

struct Entry {
    loaded: Instant,
    rules: Arc<AccountRules>,
}

/// The cache.
#[derive(Clone)]
pub struct RuleCache {
    pool: PgPool,
    ttl: Duration,
    entries: Arc<Mutex<Entries>>,
}

#[derive(Default)]
struct Entries {
    accounts: HashMap<String, Entry>,
    /// Bumped by every change: a load that began before a change is not kept.
    generation: u64,
}

impl RuleCache {
    pub fn new(pool: PgPool, ttl: Duration) -> Self {
        Self {
            pool,
            ttl,
            entries: Default::default(),
        }
    }

    /// The account's active rules.
    pub async fn get(&self, account: &str) -> Result<Arc<AccountRules>, sqlx::Error> {
        let generation = {
            let entries = self.entries.lock().expect("cache lock");
            if let Some(e) = entries.accounts.get(account)
                && e.loaded.elapsed() < self.ttl
            {
                return Ok(e.rules.clone());
            }
            entries.generation
        };
        let loaded = Instant::now();
        let mut conn = self.pool.acquire().await?;
        let stored = store::rules::active(&mut conn, account).await?;
        let rules = Arc::new(AccountRules {
            rules: stored
                .iter()
                .filter_map(|r| {
                    let mut v = Violations::new();
                    let compiled = compile(&mut v, "rule", r);
                    if compiled.is_none() {
                        tracing::warn!(rule = %r.id, %account, "a stored rule no longer compiles; skipped");
                    }
                    compiled.map(Arc::new)
                })
                .collect(),
        });
        let mut entries = self.entries.lock().expect("cache lock");
        if entries.accounts.len() >= MAX_ACCOUNTS {
            entries.accounts.clear();
        }
        // A change seen while loading may be missing from what was read: keep it
        // only when there was none.
        if entries.generation == generation {
            entries.accounts.insert(
                account.to_string(),
                Entry {
                    loaded,
                    rules: rules.clone(),
                },
            );
        }
        Ok(rules)
    }

    /// Forgets the account's rules.
    pub fn invalidate(&self, account: &str) {
        let mut entries = self.entries.lock().expect("cache lock");
        entries.accounts.remove(account);
        entries.generation += 1;
    }

    /// Drops an account's rules whenever any replica reports a change, until `stop`.
    pub async fn follow(self, bus: Bus, stop: CancellationToken) {
        let subject = bus.subjects.event_kind_any_account(RulesChanged::KIND);
        while !stop.is_cancelled() {
            let mut sub = match bus.client.subscribe(subject.clone()).await {
                Ok(s) => s,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot follow rule changes; retrying");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(Duration::from_secs(1)) => continue,
                    }
                }
            };
            loop {
                let msg = tokio::select! {
                    _ = stop.cancelled() => return,
                    m = sub.next() => m,
                };
                let Some(msg) = msg else { break };
                if let Some((account, _)) = bus.subjects.parse_event(&msg.subject) {
                    self.invalidate(account);
                }
            }
        }
    }
}
