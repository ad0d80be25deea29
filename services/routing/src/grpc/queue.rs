//! Assignments, the queue, positions and live monitoring.

use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use std::time::Duration;

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::routing::v1::*;
use prost::Message as _;
use uuid::Uuid;

use super::{Api, PositionStream, StatsStream};
use crate::domain::class_from_rank;
use crate::engine;
use crate::store::{directory, state};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::{Event, Origin};
use helpdesk_kit::live::Scope;

pub(super) fn uuid_field(field: &str, s: &str) -> Result<Uuid> {
    s.parse::<Uuid>().map_err(|_| {
        helpdesk_kit::grpc::invalid_field(
            field,
            if s.is_empty() {
                "required"
            } else {
                "must be a UUID"
            },
        )
        .into()
    })
}

fn assignment_proto(a: &state::AssignmentRow, reason: AssignReason) -> Assignment {
    Assignment {
        conversation_id: a.conversation_id.to_string(),
        agent_id: a.agent_id.clone(),
        team_id: a.team_id.map(|t| t.to_string()).unwrap_or_default(),
        assign_time: Some(to_timestamp(a.assigned_at)),
        reason: reason as i32,
    }
}

fn origin(c: &Caller) -> Origin {
    c.origin()
}

impl Api {
    pub(crate) async fn assign_impl(
        &self,
        c: &Caller,
        req: AssignConversationRequest,
    ) -> Result<Assignment> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let id = uuid_field("conversation_id", &req.conversation_id)?;
        if req.agent_id.is_empty() {
            return Err(helpdesk_kit::grpc::invalid_field("agent_id", "required").into());
        }
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let row = engine::assign_manually(
            &mut tx,
            &origin(c),
            id,
            &req.agent_id,
            req.allow_over_capacity,
        )
        .await?;
        tx.commit().await?;
        Ok(assignment_proto(&row, AssignReason::Manual))
    }

    pub(crate) async fn unassign_impl(
        &self,
        c: &Caller,
        req: UnassignConversationRequest,
    ) -> Result<()> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let id = uuid_field("conversation_id", &req.conversation_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        engine::unassign(&mut tx, &origin(c), id, req.requeue).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An automation rule's "assign agent: none": off its agent if it has one, and
    /// not back to that agent when it reopens.
    pub(crate) async fn unassign_for_rule_impl(
        &self,
        c: &Caller,
        req: UnassignConversationRequest,
    ) -> Result<()> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let id = uuid_field("conversation_id", &req.conversation_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        engine::unassign_and_forget(&mut tx, &origin(c), id).await?;
        tx.commit().await?;
        Ok(())
    }

    /// An automation rule's "assign team" (see [`engine::move_to_team`]).
    pub(crate) async fn assign_team_for_rule_impl(
        &self,
        c: &Caller,
        req: AssignTeamAction,
    ) -> Result<()> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let id = uuid_field("conversation_id", &req.conversation_id)?;
        let team = uuid_field("team_id", &req.team_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        super::config::require_team(&mut tx, c.account(), "team_id", Some(team)).await?;
        engine::move_to_team(&mut tx, &origin(c), id, team).await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn pick_impl(
        &self,
        c: &Caller,
        req: PickFromQueueRequest,
    ) -> Result<Assignment> {
        c.claims.require_staff()?;
        let id = if req.conversation_id.is_empty() {
            None
        } else {
            Some(uuid_field("conversation_id", &req.conversation_id)?)
        };
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let row = engine::pick(&mut tx, &origin(c), &c.claims.sub, id).await?;
        tx.commit().await?;
        Ok(assignment_proto(&row, AssignReason::Picked))
    }

    pub(crate) async fn list_queue_impl(
        &self,
        c: &Caller,
        req: ListQueueRequest,
    ) -> Result<ListQueueResponse> {
        c.claims.require_staff()?;
        let team = if req.team_id.is_empty() {
            None
        } else {
            Some(uuid_field("team_id", &req.team_id)?)
        };
        let mut v = Violations::new();
        let size = helpdesk_kit::page::page_size(&mut v, req.page_size);
        let after = match req.page_token.as_str() {
            "" => None,
            token => {
                let cursor = helpdesk_kit::page::decode_token(token).and_then(|t| parse_cursor(&t));
                v.check(cursor.is_none(), "page_token", "malformed page token");
                cursor
            }
        };
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = state::queue_page(&mut conn, c.account(), team, after, size + 1).await?;
        let next_page_token = helpdesk_kit::page::paginate(&mut rows, size, |(q, _, _)| {
            format!(
                "q:{}:{}:{}",
                q.priority_class,
                q.enqueued_at.timestamp_micros(),
                q.conversation_id
            )
        });
        let entries = rows
            .into_iter()
            .map(|(q, contact, inbox)| QueueEntry {
                conversation_id: q.conversation_id.to_string(),
                team_id: q.team_id.map(|t| t.to_string()).unwrap_or_default(),
                position: q.position,
                priority_class: class_from_rank(q.priority_class) as i32,
                required_skills: q.required_skills,
                enqueue_time: Some(to_timestamp(q.enqueued_at)),
                contact_id: contact.map(|c| c.to_string()).unwrap_or_default(),
                inbox_id: inbox.map(|i| i.to_string()).unwrap_or_default(),
            })
            .collect();
        Ok(ListQueueResponse {
            entries,
            next_page_token,
        })
    }

    /// The position of a conversation the caller may see, derived now.
    /// The conversation's place in its queue. A conversation routing has not heard of
    /// is waited for up to 3 s: a widget asks right after starting the chat, before
    /// its `conversation.created` has arrived here.
    pub(crate) async fn position(&self, c: &Caller, id: Uuid) -> Result<QueuePosition> {
        let started = std::time::Instant::now();
        loop {
            match self.position_now(c, id).await {
                Err(Error::NotFound(_)) if started.elapsed() < super::ANNOUNCED_WAIT => {
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                other => return other,
            }
        }
    }

    async fn position_now(&self, c: &Caller, id: Uuid) -> Result<QueuePosition> {
        let mut conn = self.pool.acquire().await?;
        let conv = state::conversation(&mut conn, c.account(), id)
            .await?
            .ok_or(Error::NotFound("conversation"))?;
        if !c.claims.role.is_staff() && conv.contact_id.to_string() != c.claims.sub {
            return Err(Error::NotFound("conversation"));
        }
        let entry = state::queued_with_position(&mut conn, c.account(), id).await?;
        Ok(match entry {
            Some(q) => {
                let estimates = engine::Estimates::read(&mut conn, c.account()).await?;
                QueuePosition {
                    conversation_id: id.to_string(),
                    position: q.position,
                    estimated_wait_seconds: estimates.wait(&q, chrono::Utc::now()),
                    team_id: q.team_id.map(|t| t.to_string()).unwrap_or_default(),
                    priority_class: class_from_rank(q.priority_class) as i32,
                    enqueue_time: Some(to_timestamp(q.enqueued_at)),
                    assigned_agent_id: String::new(),
                    opens_at: q.not_before.map(to_timestamp),
                }
            }
            None => {
                let assigned = state::assignment(&mut conn, c.account(), id).await?;
                QueuePosition {
                    conversation_id: id.to_string(),
                    assigned_agent_id: assigned.map(|a| a.agent_id).unwrap_or_default(),
                    ..Default::default()
                }
            }
        })
    }

    pub(crate) async fn get_position_impl(
        &self,
        c: &Caller,
        req: GetQueuePositionRequest,
    ) -> Result<QueuePosition> {
        let id = uuid_field("conversation_id", &req.conversation_id)?;
        self.position(c, id).await
    }

    pub(crate) async fn watch_position_impl(
        &self,
        c: Caller,
        req: GetQueuePositionRequest,
    ) -> Result<PositionStream> {
        let id = uuid_field("conversation_id", &req.conversation_id)?;
        let first = self.position(&c, id).await?;
        let key = id.to_string();
        let mut watch = self.live.watch(&c, Scope::Key(key.clone())).await?;
        let api = self.clone();
        let shutdown = self.shutdown.clone();
        let stream = async_stream::stream! {
            // The current state, re-read after subscribing so nothing falls between;
            // whether the wait is over is decided on that re-read (an assignment
            // between the first read and the subscription ends it too).
            let current = api.position(&c, id).await.unwrap_or(first);
            let done = current.position == 0;
            let mut shown = (current.position, current.estimated_wait_seconds);
            yield Ok(current);
            if done {
                return;
            }
            // Positions come from the account's shared standings, refreshed once a
            // second (a visitor gets at most one update a second, however fast the
            // queue moves); the end of the wait comes at once from the chat's own events.
            let mut standings = api.positions.subscribe(&api.pool, c.account());
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = watch.next() => {
                        let msg = match next {
                            Some(Ok(msg)) => msg,
                            Some(Err(status)) => {
                                yield Err(status);
                                break;
                            }
                            None => break,
                        };
                        match msg.kind.as_str() {
                            ConversationAssigned::KIND => {
                                let Ok(e) = ConversationAssigned::decode(msg.payload) else { continue };
                                yield Ok(QueuePosition { conversation_id: key.clone(), assigned_agent_id: e.agent_id, team_id: e.team_id, ..Default::default() });
                                break;
                            }
                            ConversationOverflowed::KIND => {
                                let Ok(e) = ConversationOverflowed::decode(msg.payload) else { continue };
                                if e.action == OverflowAction::LeaveMessage as i32 {
                                    yield Ok(QueuePosition { conversation_id: key.clone(), ..Default::default() });
                                    break;
                                }
                            }
                            _ => {}
                        }
                    }
                    changed = standings.changed() => {
                        if changed.is_err() {
                            break;
                        }
                        let standing = standings.borrow_and_update().as_ref().map(|s| s.get(&id).copied());
                        let Some(standing) = standing else { continue };
                        let now = match standing {
                            Some(s) => QueuePosition {
                                conversation_id: key.clone(),
                                position: s.position,
                                estimated_wait_seconds: s.estimate,
                                team_id: s.team_id.map(|t| t.to_string()).unwrap_or_default(),
                                ..Default::default()
                            },
                            // Not waiting as of the standings (or they predate its
                            // entry): read it.
                            None => match api.position(&c, id).await {
                                Ok(p) => p,
                                Err(e) => {
                                    yield Err(tonic::Status::from(e));
                                    break;
                                }
                            },
                        };
                        if now.position == 0 {
                            yield Ok(now);
                            break;
                        }
                        let moved = now.position != shown.0
                            || (now.estimated_wait_seconds - shown.1).abs() >= 30;
                        if moved {
                            shown = (now.position, now.estimated_wait_seconds);
                            yield Ok(now);
                        }
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }

    pub(crate) async fn stats(&self, c: &Caller, team: Option<Uuid>) -> Result<QueueStats> {
        let mut conn = self.pool.acquire().await?;
        let account = c.account();
        let agents = directory::agent_views(&mut conn, account, None, false, None).await?;
        let waiting = state::waiting_by_team(&mut conn, account).await?;
        let today = state::today_by_team(&mut conn, account).await?;
        let rows = directory::list_teams(&mut conn, account).await?;
        let mut ratings: HashMap<Option<Uuid>, (i64, i64)> = rows
            .iter()
            .map(|t| (Some(t.id), (t.csat_sum, t.csat_count)))
            .collect();
        // Account-wide: every rating an agent got (the agents' totals, already read).
        let by_agents = agents.iter().fold((0, 0), |(s, n), a| {
            (s + a.row.csat_sum, n + a.row.csat_count)
        });
        ratings.insert(None, by_agents);
        let mut teams: BTreeSet<Option<Uuid>> = rows.iter().map(|t| Some(t.id)).collect();
        teams.insert(None);
        teams.extend(waiting.iter().map(|w| w.0));
        let mut out = Vec::new();
        for t in teams.into_iter().filter(|t| team.is_none() || *t == team) {
            let members: Vec<_> = agents
                .iter()
                .filter(|a| t.is_none_or(|id| a.teams.contains(&id)))
                .collect();
            let online: Vec<_> = members
                .iter()
                .filter(|a| a.row.presence() == Presence::Online)
                .collect();
            let available = online.iter().filter(|a| a.active < a.row.max_chats).count();
            let chats: i32 = online.iter().map(|a| a.active).sum();
            let (n, longest, average) = waiting
                .iter()
                .find(|w| w.0 == t)
                .map(|w| (w.1, w.2, w.3))
                .unwrap_or((0, 0.0, 0.0));
            let (assigned, overflowed) = today.get(&t).copied().unwrap_or((0, 0));
            let (csat_sum, csat_count) = ratings.get(&t).copied().unwrap_or((0, 0));
            out.push(TeamStats {
                team_id: t.map(|id| id.to_string()).unwrap_or_default(),
                waiting: n as i32,
                longest_wait_seconds: longest as i32,
                average_wait_seconds: average as i32,
                agents_online: online.len() as i32,
                agents_available: available as i32,
                chats_per_agent: if online.is_empty() {
                    0.0
                } else {
                    f64::from(chats) / online.len() as f64
                },
                assigned_today: assigned as i32,
                overflowed_today: overflowed as i32,
                csat_average: directory::csat_average(csat_sum, csat_count),
                csat_count,
            });
        }
        Ok(QueueStats {
            teams: out,
            time: Some(to_timestamp(chrono::Utc::now())),
        })
    }

    /// [`Api::stats`], computed at most once a second per account and team whoever
    /// asks: a thousand supervisors watching cost what one does.
    pub(crate) async fn shared_stats(&self, c: &Caller, team: Option<Uuid>) -> Result<QueueStats> {
        let slot = self.stats.slot(c.account(), team);
        let mut slot = slot.lock().await;
        if let Some(stats) = slot.as_ref().filter(|s| fresh(s)) {
            return Ok(stats.clone());
        }
        let stats = self.stats(c, team).await?;
        *slot = Some(stats.clone());
        Ok(stats)
    }

    pub(crate) async fn get_stats_impl(
        &self,
        c: &Caller,
        req: GetQueueStatsRequest,
    ) -> Result<QueueStats> {
        c.claims.require_staff()?;
        let team = if req.team_id.is_empty() {
            None
        } else {
            Some(uuid_field("team_id", &req.team_id)?)
        };
        self.stats(c, team).await
    }

    pub(crate) async fn watch_stats_impl(
        &self,
        c: Caller,
        req: GetQueueStatsRequest,
    ) -> Result<StatsStream> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let team = if req.team_id.is_empty() {
            None
        } else {
            Some(uuid_field("team_id", &req.team_id)?)
        };
        let api = self.clone();
        let shutdown = self.shutdown.clone();
        let stream = async_stream::stream! {
            let mut last: Option<Vec<TeamStats>> = None;
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                match api.shared_stats(&c, team).await {
                    Ok(stats) => {
                        if last.as_ref() != Some(&stats.teams) {
                            last = Some(stats.teams.clone());
                            yield Ok(stats);
                        }
                    }
                    Err(e) => {
                        yield Err(tonic::Status::from(e));
                        break;
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }
}

/// A queue page cursor: `q:<priority class>:<entered, µs>:<conversation>`.
fn parse_cursor(token: &str) -> Option<(i32, chrono::DateTime<chrono::Utc>, Uuid)> {
    let mut parts = token.strip_prefix("q:")?.splitn(3, ':');
    let class = parts.next()?.parse().ok()?;
    let entered = chrono::DateTime::from_timestamp_micros(parts.next()?.parse().ok()?)?;
    let id = parts.next()?.parse().ok()?;
    Some((class, entered, id))
}

/// Where one waiting chat stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Standing {
    position: i32,
    estimate: i32,
    team_id: Option<Uuid>,
}

/// Every waiting chat of an account, by conversation.
pub type Standings = HashMap<Uuid, Standing>;

/// Each watched account's standings, recomputed once a second by one task per
/// account for as long as any `WatchQueuePosition` stream of this process follows it.
#[derive(Default)]
pub struct SharedPositions {
    feeds: Arc<std::sync::Mutex<HashMap<String, StandingsFeed>>>,
}

type StandingsFeed = tokio::sync::watch::Receiver<Option<Arc<Standings>>>;

impl SharedPositions {
    /// Follows `account`'s standings (the first value comes within a second).
    pub fn subscribe(&self, pool: &sqlx::PgPool, account: &str) -> StandingsFeed {
        let Ok(mut feeds) = self.feeds.lock() else {
            return tokio::sync::watch::channel(None).1;
        };
        if let Some(feed) = feeds.get(account) {
            return feed.clone();
        }
        let (tx, rx) = tokio::sync::watch::channel(None);
        feeds.insert(account.to_string(), rx.clone());
        let (feeds, pool, account) = (self.feeds.clone(), pool.clone(), account.to_string());
        tokio::spawn(async move {
            loop {
                // Only the map's own receiver left: nobody follows the account.
                if tx.receiver_count() <= 1
                    && let Ok(mut feeds) = feeds.lock()
                    && tx.receiver_count() <= 1
                {
                    feeds.remove(&account);
                    return;
                }
                match standings(&pool, &account).await {
                    Ok(now) => {
                        tx.send_if_modified(|shown| {
                            let changed = shown.as_deref() != Some(&now);
                            if changed {
                                *shown = Some(Arc::new(now));
                            }
                            changed
                        });
                    }
                    Err(e) => tracing::warn!(error = %e, %account, "queue standings failed"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        });
        rx
    }
}

/// Where every waiting chat of `account` stands now.
async fn standings(pool: &sqlx::PgPool, account: &str) -> Result<Standings> {
    let mut conn = pool.acquire().await?;
    let queue = state::queue(&mut conn, account).await?;
    let estimates = engine::Estimates::read(&mut conn, account).await?;
    let now = chrono::Utc::now();
    Ok(queue
        .iter()
        .map(|q| {
            let standing = Standing {
                position: q.position,
                estimate: estimates.wait(q, now),
                team_id: q.team_id,
            };
            (q.conversation_id, standing)
        })
        .collect())
}

/// The latest statistics per account and team (see [`Api::shared_stats`]).
#[derive(Default)]
pub struct SharedStats {
    slots: std::sync::Mutex<HashMap<(String, Option<Uuid>), StatsSlot>>,
}

type StatsSlot = std::sync::Arc<tokio::sync::Mutex<Option<QueueStats>>>;

/// Accounts and teams remembered before the statistics start over.
const STATS_REMEMBERED: usize = 10_000;

impl SharedStats {
    /// The slot of `account` and `team`, created on first use.
    fn slot(&self, account: &str, team: Option<Uuid>) -> StatsSlot {
        let Ok(mut slots) = self.slots.lock() else {
            return StatsSlot::default();
        };
        if slots.len() >= STATS_REMEMBERED {
            slots.clear();
        }
        slots
            .entry((account.to_string(), team))
            .or_default()
            .clone()
    }
}

/// Computed less than a second ago.
fn fresh(stats: &QueueStats) -> bool {
    stats
        .time
        .as_ref()
        .and_then(helpdesk_kit::time::from_timestamp)
        .is_some_and(|t| chrono::Utc::now() - t < chrono::Duration::seconds(1))
}
