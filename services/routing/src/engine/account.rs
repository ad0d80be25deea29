//! The per-account context of an engine operation: read once, right after the
//! account lock, and kept current in memory while the operation assigns and frees.

use std::collections::HashMap;

use chrono::{DateTime, Utc};

use helpdesk_kit::error::Result;
use helpdesk_proto::routing::v1::Presence;
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::select::Candidate;
use crate::domain::{Settings, rules};
use crate::store::{self, config, directory, state};

/// What every step of an operation needs of the account. Valid only under the
/// account lock: nothing else changes the account's assignments meanwhile.
#[derive(Debug)]
pub(super) struct Account {
    /// The account id.
    pub id: String,
    pub settings: Settings,
    /// Online agents with their loads, in id order. Assignments update them
    /// (`Candidate::take`), as do [`Account::freed`] and [`Account::presence_changed`].
    pub agents: Vec<Candidate>,
    /// The routing rules, once read.
    rules: Option<Vec<rules::Rule>>,
    /// Business hours by scope and id, once read.
    hours: HashMap<(&'static str, Uuid), Option<config::HoursRow>>,
    /// The queue in order, once read; the queue operations keep it equal to the table.
    queue: Option<Vec<state::QueueRow>>,
    /// The queue counted by team and priority class, once read, while the queue itself
    /// is not: enough to place a chat at the back of its class.
    tally: Option<Tally>,
    /// Seconds one chat takes, for estimates, once read.
    handle_seconds: Option<f64>,
}

/// The chats waiting per team and priority class, with the order key of the last.
type Tally = HashMap<(Option<Uuid>, i32), (usize, (i32, DateTime<Utc>, Uuid))>;

impl Account {
    /// Takes the account's routing lock for the rest of the transaction, then reads
    /// its context.
    pub async fn lock(conn: &mut PgConnection, account: &str) -> Result<Self> {
        store::lock_account(conn, account).await?;
        Self::load(conn, account).await
    }

    /// Reads the context. Call right after `store::lock_account`.
    async fn load(conn: &mut PgConnection, account: &str) -> Result<Self> {
        let settings = config::settings(conn, account).await?;
        let agents = online_agents(conn, account, None).await?;
        Ok(Self {
            id: account.to_string(),
            settings,
            agents,
            rules: None,
            hours: HashMap::new(),
            queue: None,
            tally: None,
            handle_seconds: None,
        })
    }

    /// The account's routing rules, read on first use.
    pub async fn rules(&mut self, conn: &mut PgConnection) -> Result<&[rules::Rule]> {
        if self.rules.is_none() {
            let rules = config::rules(conn, &self.id)
                .await?
                .into_iter()
                .map(|r| r.rule)
                .collect();
            self.rules = Some(rules);
        }
        Ok(self.rules.as_deref().unwrap_or_default())
    }

    /// The business hours of `scope` (`team` or `inbox`) `id`, read on first use.
    pub async fn hours(
        &mut self,
        conn: &mut PgConnection,
        scope: &'static str,
        id: Uuid,
    ) -> Result<Option<config::HoursRow>> {
        if let Some(known) = self.hours.get(&(scope, id)) {
            return Ok(known.clone());
        }
        let hours = config::hours(conn, &self.id, scope, id).await?;
        self.hours.insert((scope, id), hours.clone());
        Ok(hours)
    }

    /// The account's queue in order (priority class, then time entered), read on
    /// first use.
    pub async fn queue(&mut self, conn: &mut PgConnection) -> Result<&[state::QueueRow]> {
        if self.queue.is_none() {
            self.queue = Some(state::queue(conn, &self.id).await?);
            self.tally = None;
        }
        Ok(self.queue.as_deref().unwrap_or_default())
    }

    /// The position `row` would take in its team's queue. Without the queue in memory
    /// it is counted (by team and class) instead of read; `None` when `row` would not
    /// be the last of its class (then its place needs the queue itself).
    pub async fn position_at_back(
        &mut self,
        conn: &mut PgConnection,
        row: &state::QueueRow,
    ) -> Result<Option<i32>> {
        if let Some(queue) = &self.queue {
            let at = queue.partition_point(|q| q.order_key() < row.order_key());
            let ahead = queue[..at]
                .iter()
                .filter(|q| q.team_id == row.team_id)
                .count();
            return Ok(Some(i32::try_from(ahead + 1).unwrap_or(i32::MAX)));
        }
        let tally = match &mut self.tally {
            Some(tally) => tally,
            none => {
                let mut tally = Tally::new();
                for t in state::queue_tally(conn, &self.id).await? {
                    tally.insert((t.team_id, t.priority_class), (t.waiting, t.last));
                }
                none.insert(tally)
            }
        };
        let mut ahead = 0;
        for ((team, class), (waiting, last)) in tally.iter() {
            if *team != row.team_id || *class > row.priority_class {
                continue;
            }
            if *class == row.priority_class && *last > row.order_key() {
                return Ok(None);
            }
            ahead += waiting;
        }
        Ok(Some(i32::try_from(ahead + 1).unwrap_or(i32::MAX)))
    }

    /// Seconds one chat takes, for estimates (the recent average, else the
    /// setting), read on first use.
    pub async fn handle_seconds(&mut self, conn: &mut PgConnection) -> Result<f64> {
        if let Some(h) = self.handle_seconds {
            return Ok(h);
        }
        let h = super::queue::handle_seconds(conn, &self.id, &self.settings).await?;
        self.handle_seconds = Some(h);
        Ok(h)
    }

    /// Chats waiting in `team`'s queue.
    pub async fn waiting(&mut self, conn: &mut PgConnection, team: Option<Uuid>) -> Result<usize> {
        if self.queue.is_none()
            && let Some(tally) = &self.tally
        {
            return Ok(tally
                .iter()
                .filter(|((t, _), _)| *t == team)
                .map(|(_, (n, _))| n)
                .sum());
        }
        Ok(self
            .queue(conn)
            .await?
            .iter()
            .filter(|q| q.team_id == team)
            .count())
    }

    /// Takes the queue out of the context to work on it; give it back with
    /// [`Account::put_queue`].
    pub async fn take_queue(&mut self, conn: &mut PgConnection) -> Result<Vec<state::QueueRow>> {
        self.queue(conn).await?;
        Ok(self.queue.take().unwrap_or_default())
    }

    /// Gives back the queue taken with [`Account::take_queue`], as it now is.
    pub fn put_queue(&mut self, queue: Vec<state::QueueRow>) {
        self.queue = Some(queue);
    }

    /// A row was just written to the queue table.
    pub fn queued(&mut self, row: &state::QueueRow) {
        if let Some(queue) = &mut self.queue {
            let at = queue.partition_point(|q| q.order_key() < row.order_key());
            queue.insert(at, row.clone());
        }
        if let Some(tally) = &mut self.tally {
            let (waiting, last) = tally
                .entry((row.team_id, row.priority_class))
                .or_insert((0, row.order_key()));
            *waiting += 1;
            *last = (*last).max(row.order_key());
        }
    }

    /// A conversation was just taken out of the queue table.
    pub fn dequeued(&mut self, conversation_id: Uuid) {
        if let Some(queue) = &mut self.queue {
            queue.retain(|q| q.conversation_id != conversation_id);
        }
        // Which count it left is not known here: counted again when next needed.
        self.tally = None;
    }

    /// Whether the queue can be served now: not pooled (agents pick), and some
    /// online agent has a free seat.
    pub fn has_room(&self) -> bool {
        !self.settings.pooled_mode && self.agents.iter().any(|a| a.active < a.max_chats)
    }

    /// The context's own copy of an online agent.
    pub fn agent_mut(&mut self, id: &str) -> Option<&mut Candidate> {
        self.agents.iter_mut().find(|a| a.id == id)
    }

    /// An assignment ended: its agent has one chat less.
    pub fn freed(&mut self, a: &state::AssignmentRow) {
        if let Some(agent) = self.agent_mut(&a.agent_id) {
            agent.free(&a.channel);
        }
    }

    /// An agent's presence was just written: only online agents are candidates.
    pub async fn presence_changed(
        &mut self,
        conn: &mut PgConnection,
        agent_id: &str,
        presence: Presence,
    ) -> Result<()> {
        self.agents.retain(|a| a.id != agent_id);
        if presence == Presence::Online {
            for agent in online_agents(conn, &self.id, Some(agent_id)).await? {
                let at = self.agents.partition_point(|a| a.id < agent.id);
                self.agents.insert(at, agent);
            }
        }
        Ok(())
    }
}

/// Online agents of the account (or only `only_id`), as the dispatcher sees them.
pub(super) async fn online_agents(
    conn: &mut PgConnection,
    account: &str,
    only_id: Option<&str>,
) -> Result<Vec<Candidate>> {
    Ok(directory::agent_views(conn, account, only_id, true, None)
        .await?
        .iter()
        .map(directory::AgentView::candidate)
        .collect())
}

/// The accounts one transaction has locked and read, for the routing operations it
/// makes one after another (the events of one consumer batch): each account is
/// locked and read once, and its context carried from one operation to the next.
/// Use a session for one transaction only.
#[derive(Debug, Default)]
pub struct Session {
    accounts: HashMap<String, Account>,
}

impl Session {
    /// No account yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The account's context, locking and reading it on first use.
    pub(super) async fn account(
        &mut self,
        conn: &mut PgConnection,
        id: &str,
    ) -> Result<&mut Account> {
        if !self.accounts.contains_key(id) {
            let account = Account::lock(conn, id).await?;
            self.accounts.insert(id.to_string(), account);
        }
        self.accounts
            .get_mut(id)
            .ok_or_else(|| helpdesk_kit::error::Error::NotFound("account"))
    }
}
