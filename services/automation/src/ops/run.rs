//! Running the rules of one queued event (or one delayed run): evaluated in order
//! against the event's facts, loops and floods stopped, actions done through the
//! owning services' commands with idempotency keys, and every run logged.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use helpdesk_kit::bus::Bus;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::automation::v1::{
    ActionResult, Episode, RuleExecuted, RuleRun, RunOutcome, SampleEvent, action,
};
use helpdesk_proto::common::v1::{Actor, ActorKind, CommandOrigin};
use helpdesk_proto::conversation::v1::{
    ConversationStatus, LabelChange, MessageKind, Priority, RunConversationActionRequest,
    SetStatusRequest, run_conversation_action_request as conversation_action,
};
use helpdesk_proto::notification::v1::{EmailKind, SendEmailRequest, SendWebhookRequest};
use helpdesk_proto::routing::v1::{
    AssignConversationRequest, AssignTeamAction, RequestTransferRequest, RunRoutingActionRequest,
    UnassignConversationRequest, run_routing_action_request as routing_action,
};
use helpdesk_proto::ticketing::v1::{
    CreateTicketFromConversationRequest, RunTicketActionRequest, Ticket, TicketActionChange,
    TicketPriority, run_ticket_action_request as ticket_action,
};
use prost::Message as _;
use sqlx::{PgConnection, PgPool};
use tonic::Code;

use super::events::{Incoming, decode};
use crate::cache::RuleCache;
use crate::domain::facts::Facts;
use crate::domain::rules::{Compiled, Needs, action_name};
use crate::domain::{fill, key};
use crate::store::{self, facts::ConversationState, pending::NewEvent, pending::Pending};

/// How the runner stops loops and floods, and waits for other services.
#[derive(Debug, Clone)]
pub struct Limits {
    /// Longest chain of rule actions an event may descend from and still run rules.
    pub depth_limit: usize,
    /// Most rule runs acting on one conversation in a minute.
    pub max_runs_per_conversation_per_minute: i64,
    /// Deadline of each command.
    pub command_timeout: Duration,
}

/// Runs queued work.
pub struct Runner {
    pub pool: PgPool,
    pub bus: Bus,
    pub cache: RuleCache,
    pub limits: Limits,
    /// When rules last acted on each conversation (this replica), for the rate limit.
    pub recent: Recent,
}

/// When rules acted on each conversation within the last minute, in this replica.
#[derive(Default)]
pub struct Recent {
    acted: std::sync::Mutex<HashMap<String, VecDeque<Instant>>>,
}

/// Conversations remembered before the oldest are forgotten.
const MAX_REMEMBERED: usize = 100_000;

impl Recent {
    /// Counts one more action on `conversation` unless `limit` were reached within a
    /// minute; how many there were when refused.
    fn take(&self, conversation: &str, limit: usize) -> std::result::Result<(), usize> {
        let now = Instant::now();
        let minute = Duration::from_secs(60);
        let mut acted = self.acted.lock().expect("rate lock");
        if acted.len() >= MAX_REMEMBERED {
            acted.retain(|_, times| {
                times
                    .back()
                    .is_some_and(|t| now.duration_since(*t) < minute)
            });
        }
        let times = acted.entry(conversation.to_string()).or_default();
        while times
            .front()
            .is_some_and(|t| now.duration_since(*t) >= minute)
        {
            times.pop_front();
        }
        if times.len() >= limit {
            return Err(times.len());
        }
        times.push_back(now);
        Ok(())
    }
}

/// An event (or delayed run) whose rules were run: what to record.
pub struct Completed {
    pending: Pending,
    incoming: Option<Incoming>,
    decided: Vec<Decided>,
}

/// What became of one piece of work.
pub enum Done {
    /// Run: to be recorded and removed ([`Runner::record_all`]).
    Finished(Box<Completed>),
    /// A service it needs did not answer: try again later (actions already done are
    /// not done twice).
    RetryLater(String),
}

/// Whether an error of another service may pass (try again later).
pub(crate) fn transient(e: &Error) -> bool {
    match e {
        Error::Unavailable(_) | Error::Db(_) | Error::Aborted(_) => true,
        Error::Status(s) => matches!(
            s.code(),
            Code::Unavailable
                | Code::DeadlineExceeded
                | Code::ResourceExhausted
                | Code::Aborted
                | Code::Internal
                | Code::Unknown
        ),
        _ => false,
    }
}

pub(crate) fn describe(e: &Error) -> String {
    match e {
        Error::Status(s) => format!("{:?}: {}", s.code(), s.message()),
        other => other.to_string(),
    }
}

/// How running an event's rules ended.
enum Ran {
    Done,
    /// A service did not answer.
    Wait(String),
}

static RULE_RUNS: std::sync::LazyLock<opentelemetry::metrics::Counter<u64>> =
    std::sync::LazyLock::new(|| {
        helpdesk_kit::metrics::meter()
            .u64_counter("helpdesk.rule.runs")
            .with_unit("{run}")
            .with_description(
                "Automation rule runs, by outcome (fired, scheduled, dropped, stopped, failed)",
            )
            .build()
    });

/// What one run of a rule decided.
struct Decided {
    rule: Arc<Compiled>,
    run: RuleRun,
    /// For a delayed rule: the episode to arm it in.
    arm: Option<String>,
    /// The state it acted on.
    observed: String,
}

/// The state `facts` show, as `rule` acts on it: the ticket (for a ticket's rule) or
/// the conversation, and its version.
fn observed(rule: &Compiled, facts: &Facts) -> String {
    let ticket_rule = rule.rule.event.starts_with("ticket.") || rule.rule.event.starts_with("sla.");
    match (&facts.ticket, &facts.conversation) {
        (Some(t), _) if ticket_rule => {
            let at = t
                .update_time
                .as_ref()
                .map(|u| (u.seconds, u.nanos))
                .unwrap_or_default();
            format!("ticket:{}:{}.{}", t.id, at.0, at.1)
        }
        (_, Some(c)) if !ticket_rule => format!("conversation:{}:{}", c.id, c.version),
        _ => String::new(),
    }
}

impl Runner {
    /// Does `p`: evaluates and acts; what to record (or that it must be tried
    /// again).
    pub async fn process(&self, p: &Pending, give_up: bool) -> Result<Done> {
        let Some(incoming) = decode(&p.event_kind, &p.payload) else {
            tracing::warn!(kind = %p.event_kind, event = %p.event_id, "undecodable queued event; dropped");
            return Ok(Done::Finished(Box::new(Completed {
                pending: p.clone(),
                incoming: None,
                decided: Vec::new(),
            })));
        };
        let mut decided = Vec::new();
        let outcome = match p.rule_id {
            None => self.run_event(p, &incoming, &mut decided, give_up).await?,
            Some(rule) => {
                self.run_delayed(p, rule, &incoming, &mut decided, give_up)
                    .await?
            }
        };
        if let Ran::Wait(why) = outcome {
            return Ok(Done::RetryLater(why));
        }
        for d in &decided {
            RULE_RUNS.add(
                1,
                &[opentelemetry::KeyValue::new(
                    "outcome",
                    d.run.outcome().as_str_name(),
                )],
            );
        }
        Ok(Done::Finished(Box::new(Completed {
            pending: p.clone(),
            incoming: Some(incoming),
            decided,
        })))
    }

    /// Records what runs decided and removes their work, in one transaction.
    pub async fn record_all(&self, done: &[Completed]) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        for c in done {
            if let Some(incoming) = &c.incoming {
                for d in &c.decided {
                    self.record(&mut tx, &c.pending, incoming, d).await?;
                }
            }
        }
        let finished: Vec<&Pending> = done.iter().map(|c| &c.pending).collect();
        store::pending::finish_all(&mut tx, &finished).await?;
        tx.commit().await?;
        Ok(())
    }

    async fn record(
        &self,
        conn: &mut PgConnection,
        p: &Pending,
        incoming: &Incoming,
        d: &Decided,
    ) -> Result<()> {
        if let Some(episode) = &d.arm {
            let (seconds, _) = d.rule.delay.unwrap_or_default();
            let armed = store::pending::arm(
                conn,
                NewEvent {
                    account: &p.account_id,
                    aggregate: &p.aggregate,
                    event_id: &p.event_id,
                    kind: &p.event_kind,
                    payload: p.payload.clone(),
                    previous: p.previous.clone(),
                },
                d.rule.rule.id.parse().unwrap_or_default(),
                episode,
                Utc::now() + chrono::Duration::seconds(seconds),
            )
            .await?;
            if !armed {
                return Ok(()); // already waiting in this episode
            }
        }
        let run = store::runs::insert(conn, &p.account_id, d.run.clone(), &d.observed).await?;
        let outcome = RunOutcome::try_from(run.outcome).unwrap_or_default();
        if outcome != RunOutcome::Scheduled {
            let origin = Origin::from_event(&p.account_id, &incoming.meta)
                .acting_as(rule_actor(&run.rule_id));
            let event = RuleExecuted {
                run: Some(run),
                ..Default::default()
            };
            outbox::emit(conn, &origin, event).await?;
        }
        Ok(())
    }

    /// The facts of the event, completed from the projections.
    /// The facts of the event, completed from the projections with what `needs`
    /// says the rules read.
    async fn facts(
        &self,
        account: &str,
        incoming: &Incoming,
        previous: Option<&[u8]>,
        needs: Needs,
    ) -> Result<(Facts, Option<ConversationState>)> {
        let mut facts = incoming.facts.clone();
        let mut conn = self.pool.acquire().await?;
        let wants_state = needs.state || facts.conversation.is_none();
        let state = if incoming.conversation_id.is_empty() || !wants_state {
            None
        } else {
            store::facts::conversation(&mut conn, account, &incoming.conversation_id).await?
        };
        if facts.conversation.is_none() {
            facts.conversation = state.as_ref().map(|s| s.conversation.clone());
        }
        store::facts::complete(&mut conn, account, &mut facts, needs).await?;
        if facts.ticket.is_none() && !incoming.ticket_id.is_empty() {
            facts.ticket = store::facts::ticket(&mut conn, account, &incoming.ticket_id)
                .await?
                .map(|(t, _)| t);
        }
        if let Some(before) = previous.and_then(|b| SampleEvent::decode(b).ok()) {
            facts.previous_conversation = before.previous_conversation;
            facts.previous_ticket = before.previous_ticket;
        }
        Ok((facts, state))
    }

    async fn run_event(
        &self,
        p: &Pending,
        incoming: &Incoming,
        decided: &mut Vec<Decided>,
        give_up: bool,
    ) -> Result<Ran> {
        let rules = self.cache.get(&p.account_id).await?;
        let listening: Vec<Arc<Compiled>> = rules.of(&incoming.triggers).cloned().collect();
        if listening.is_empty() {
            return Ok(Ran::Done);
        }
        let (mut facts, state) = self
            .facts(
                &p.account_id,
                incoming,
                p.previous.as_deref(),
                Needs::of(listening.iter().map(|r| r.as_ref())),
            )
            .await?;
        let by_rule =
            incoming.meta.actor.as_ref().map(|a| a.kind) == Some(ActorKind::Automation as i32);
        // Rules that acted earlier in this run: later ones see their changes, and
        // continue their chain.
        let mut acted: Vec<String> = Vec::new();
        for rule in listening {
            let started = Instant::now();
            if !rule.matches(&facts) {
                continue;
            }
            let seen_state = observed(&rule, &facts);
            if let Some((_, episode)) = rule.delay {
                let Some(key) = self
                    .episode_key(
                        &p.account_id,
                        &rule,
                        episode,
                        incoming,
                        state.as_ref(),
                        true,
                    )
                    .await?
                else {
                    continue;
                };
                let (_, conditions) = rule.explain(&facts);
                let run = self.run_of(
                    &rule,
                    p,
                    incoming,
                    RunOutcome::Scheduled,
                    conditions,
                    started,
                );
                decided.push(Decided {
                    rule,
                    run,
                    arm: Some(key),
                    observed: String::new(),
                });
                continue;
            }
            // An event a rule caused shows a state that rules may have seen already
            // (later rules of that run did): a rule acts on one state once.
            if by_rule && !seen_state.is_empty() {
                let mut conn = self.pool.acquire().await?;
                let rule_id = rule.rule.id.parse().unwrap_or_default();
                if store::runs::seen(&mut conn, &p.account_id, rule_id, &seen_state).await? {
                    continue;
                }
            }
            match self
                .fire(
                    p,
                    incoming,
                    &rule,
                    &mut facts,
                    state.as_ref(),
                    started,
                    give_up,
                    &acted,
                )
                .await?
            {
                Some(run) => {
                    if run.outcome != RunOutcome::Stopped as i32 {
                        acted.push(rule.rule.id.clone());
                    }
                    decided.push(Decided {
                        rule,
                        run,
                        arm: None,
                        observed: seen_state,
                    });
                }
                None => return Ok(Ran::Wait("a service did not answer".into())),
            }
        }
        Ok(Ran::Done)
    }

    async fn run_delayed(
        &self,
        p: &Pending,
        rule_id: uuid::Uuid,
        incoming: &Incoming,
        decided: &mut Vec<Decided>,
        give_up: bool,
    ) -> Result<Ran> {
        let started = Instant::now();
        let rules = self.cache.get(&p.account_id).await?;
        let Some(rule) = rules
            .rules
            .iter()
            .find(|r| r.rule.id == rule_id.to_string())
            .cloned()
        else {
            return Ok(Ran::Done); // deleted or switched off meanwhile
        };
        let Some((_, episode)) = rule.delay else {
            return Ok(Ran::Done); // no longer delayed
        };
        // The facts as they are now: the conversation and ticket as the projections
        // have them (the event's when they have none); the event's own message stays
        // what it was.
        let mut now = incoming.clone();
        now.facts.conversation = None;
        now.facts.ticket = None;
        let (mut facts, state) = self
            .facts(
                &p.account_id,
                &now,
                p.previous.as_deref(),
                Needs {
                    state: true,
                    ..rule.needs
                },
            )
            .await?;
        if facts.conversation.is_none() {
            facts.conversation = incoming.facts.conversation.clone();
        }
        if facts.ticket.is_none() {
            facts.ticket = incoming.facts.ticket.clone();
        }
        let now_key = self
            .episode_key(
                &p.account_id,
                &rule,
                episode,
                incoming,
                state.as_ref(),
                false,
            )
            .await?;
        if now_key.as_deref() != Some(p.episode.as_str()) {
            let mut run = self.run_of(&rule, p, incoming, RunOutcome::Dropped, vec![], started);
            run.reason = "the episode it waited in ended".into();
            decided.push(Decided {
                rule,
                run,
                arm: None,
                observed: String::new(),
            });
            return Ok(Ran::Done);
        }
        let (matched, conditions) = rule.explain(&facts);
        if !matched {
            let mut run = self.run_of(&rule, p, incoming, RunOutcome::Dropped, conditions, started);
            run.reason = "its conditions no longer hold".into();
            decided.push(Decided {
                rule,
                run,
                arm: None,
                observed: String::new(),
            });
            return Ok(Ran::Done);
        }
        let seen_state = observed(&rule, &facts);
        match self
            .fire(
                p,
                incoming,
                &rule,
                &mut facts,
                state.as_ref(),
                started,
                give_up,
                &[],
            )
            .await?
        {
            Some(run) => {
                decided.push(Decided {
                    rule,
                    run,
                    arm: None,
                    observed: seen_state,
                });
                Ok(Ran::Done)
            }
            None => Ok(Ran::Wait("a service did not answer".into())),
        }
    }

    /// The episode a delayed rule waits in: when `arming`, the one the event began
    /// (a message event: that message), else as the projections show it now; `None`
    /// when there is nothing to wait on.
    async fn episode_key(
        &self,
        account: &str,
        rule: &Compiled,
        episode: Episode,
        incoming: &Incoming,
        state: Option<&ConversationState>,
        arming: bool,
    ) -> Result<Option<String>> {
        if arming && let Some(m) = &incoming.facts.message {
            let kind = MessageKind::try_from(m.kind).unwrap_or_default();
            let sender = m.sender.as_ref().map(|a| a.kind).unwrap_or_default();
            let by_person = kind == MessageKind::Incoming
                || (kind == MessageKind::Outgoing && sender == ActorKind::Agent as i32);
            match episode {
                Episode::LastMessage if by_person => return Ok(Some(format!("message:{}", m.id))),
                Episode::CustomerMessage if kind == MessageKind::Incoming => {
                    return Ok(Some(format!("customer:{}", m.id)));
                }
                _ => {}
            }
        }
        let ticket_rule =
            rule.rule.event.starts_with("ticket.") || rule.rule.event.starts_with("sla.");
        if ticket_rule {
            let mut conn = self.pool.acquire().await?;
            let ticket = store::facts::ticket(&mut conn, account, &incoming.ticket_id).await?;
            return Ok(ticket
                .map(|(t, since)| format!("ticket:{}@{}", t.status, since.timestamp_micros())));
        }
        let Some(s) = state else { return Ok(None) };
        let status = ConversationStatus::try_from(s.conversation.status).unwrap_or_default();
        Ok(Some(match episode {
            Episode::LastMessage => format!("message:{}", s.last_message_id),
            Episode::CustomerMessage => format!("customer:{}", s.last_customer_message_id),
            Episode::Status | Episode::Unspecified => format!(
                "status:{}@{}",
                status.storage_name(),
                s.status_since.timestamp_micros()
            ),
        }))
    }

    fn run_of(
        &self,
        rule: &Compiled,
        p: &Pending,
        incoming: &Incoming,
        outcome: RunOutcome,
        conditions: Vec<helpdesk_proto::automation::v1::ConditionResult>,
        started: Instant,
    ) -> RuleRun {
        RuleRun {
            rule_id: rule.rule.id.clone(),
            rule_name: rule.rule.name.clone(),
            event_id: p.event_id.clone(),
            event: rule.rule.event.clone(),
            conversation_id: incoming.conversation_id.clone(),
            ticket_id: incoming.ticket_id.clone(),
            outcome: outcome as i32,
            conditions,
            depth: i32::try_from(incoming.meta.automation_chain.len()).unwrap_or(i32::MAX),
            duration_micros: i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX),
            ..Default::default()
        }
    }

    /// Acts on a rule whose conditions hold, unless that would continue a loop or a
    /// flood. `None`: a service did not answer (try the whole event again later).
    #[allow(clippy::too_many_arguments)]
    async fn fire(
        &self,
        p: &Pending,
        incoming: &Incoming,
        rule: &Arc<Compiled>,
        facts: &mut Facts,
        state: Option<&ConversationState>,
        started: Instant,
        give_up: bool,
        acted: &[String],
    ) -> Result<Option<RuleRun>> {
        let (_, conditions) = rule.explain(facts);
        let mut run = self.run_of(rule, p, incoming, RunOutcome::Fired, conditions, started);
        let meta = &incoming.meta;
        // What changed the facts last: a rule earlier in this run, else the event's actor.
        let caused_by_itself = match acted.last() {
            Some(last) => *last == rule.rule.id,
            None => meta
                .actor
                .as_ref()
                .is_some_and(|a| a.kind == ActorKind::Automation as i32 && a.id == rule.rule.id),
        };
        let chain: Vec<String> = meta.automation_chain.iter().chain(acted).cloned().collect();
        run.depth = i32::try_from(chain.len()).unwrap_or(i32::MAX);
        if caused_by_itself {
            run.outcome = RunOutcome::Stopped as i32;
            run.reason = "the event was caused by this rule's own action".into();
            return Ok(Some(run));
        }
        if chain.len() >= self.limits.depth_limit {
            run.outcome = RunOutcome::Stopped as i32;
            run.reason = format!(
                "the chain of rule actions reached the depth limit ({}): {}",
                self.limits.depth_limit,
                chain.join(" → ")
            );
            return Ok(Some(run));
        }
        if !incoming.conversation_id.is_empty() {
            let limit = self.limits.max_runs_per_conversation_per_minute as usize;
            if let Err(recent) = self.recent.take(&incoming.conversation_id, limit) {
                run.outcome = RunOutcome::Stopped as i32;
                run.reason = format!(
                    "rules acted {recent} times on this conversation in the last minute (limit {limit})"
                );
                return Ok(Some(run));
            }
        }
        let mut chain = chain;
        chain.push(rule.rule.id.clone());
        let origin = CommandOrigin {
            actor: Some(rule_actor(&rule.rule.id)),
            causation_id: meta.event_id.clone(),
            correlation_id: if meta.correlation_id.is_empty() {
                meta.event_id.clone()
            } else {
                meta.correlation_id.clone()
            },
            automation_chain: chain,
        };
        // A delayed run acts once per episode; an immediate one once per event.
        let base = if p.rule_id.is_some() {
            format!("delayed:{}:{}", p.aggregate, p.episode)
        } else {
            format!("event:{}", p.event_id)
        };
        let mut failed = false;
        for (index, a, name) in self.steps(&p.account_id, &rule.rule.actions).await? {
            let Some(a) = a else {
                failed = true;
                run.actions.push(ActionResult {
                    action: name,
                    ok: false,
                    detail: "the macro no longer exists".into(),
                });
                continue;
            };
            let key = key(&[&base, &rule.rule.id, &index]);
            let step = Step {
                account: &p.account_id,
                by: By::rule(rule),
                origin: &origin,
                key,
                state,
            };
            let result = self.act(&step, &a, facts).await;
            match result {
                Ok(detail) => run.actions.push(ActionResult {
                    action: name,
                    ok: true,
                    detail,
                }),
                Err(e) if transient(&e) && !give_up => {
                    tracing::info!(error = %describe(&e), rule = %rule.rule.id, "a rule's action waits for a service");
                    return Ok(None);
                }
                Err(e) => {
                    failed = true;
                    run.actions.push(ActionResult {
                        action: name,
                        ok: false,
                        detail: describe(&e),
                    });
                }
            }
        }
        if failed {
            run.outcome = RunOutcome::Failed as i32;
        }
        run.duration_micros = i64::try_from(started.elapsed().as_micros()).unwrap_or(i64::MAX);
        Ok(Some(run))
    }

    /// A rule's actions as done one by one, with a macro's actions in its place: (the
    /// action's place, for its idempotency key; the action, `None` for a macro that no
    /// longer exists; its name in the run log).
    async fn steps(
        &self,
        account: &str,
        actions: &[helpdesk_proto::automation::v1::Action],
    ) -> Result<
        Vec<(
            String,
            Option<helpdesk_proto::automation::v1::Action>,
            String,
        )>,
    > {
        let mut steps = Vec::with_capacity(actions.len());
        for (i, a) in actions.iter().enumerate() {
            let Some(action::Kind::ApplyMacro(id)) = &a.kind else {
                steps.push((i.to_string(), Some(a.clone()), action_name(a).to_string()));
                continue;
            };
            let found = match id.parse::<uuid::Uuid>() {
                Ok(uuid) => {
                    let mut conn = self.pool.acquire().await?;
                    store::macros::get(&mut conn, account, uuid).await?
                }
                Err(_) => None,
            };
            match found {
                Some(m) => steps.extend(m.actions.into_iter().enumerate().map(|(j, ma)| {
                    let name = format!("apply_macro {}: {}", m.name, action_name(&ma));
                    (format!("{i}.{j}"), Some(ma), name)
                })),
                None => steps.push((i.to_string(), None, format!("apply_macro {id}"))),
            }
        }
        Ok(steps)
    }

    /// Does one action; what it did, in words.
    pub(crate) async fn act(
        &self,
        s: &Step<'_>,
        a: &helpdesk_proto::automation::v1::Action,
        facts: &mut Facts,
    ) -> Result<String> {
        let conversation_id = facts
            .conversation
            .as_ref()
            .map(|c| c.id.clone())
            .unwrap_or_default();
        let Some(kind) = &a.kind else {
            return Err(Error::FailedPrecondition("unknown action".into()));
        };
        let needs_conversation = !matches!(
            kind,
            action::Kind::UpdateTicket(_)
                | action::Kind::SendWebhook(_)
                | action::Kind::SendEmail(_)
        );
        if needs_conversation && conversation_id.is_empty() {
            return Err(Error::FailedPrecondition(
                "the event has no conversation".into(),
            ));
        }
        match kind {
            action::Kind::AssignAgent(agent) => {
                let action = if agent == "none" {
                    routing_action::Action::Unassign(UnassignConversationRequest {
                        conversation_id: conversation_id.clone(),
                        requeue: false,
                    })
                } else {
                    let agent_id = if agent == "last_responding" {
                        s.state
                            .map(|st| st.last_agent_id.clone())
                            .unwrap_or_default()
                    } else {
                        agent.clone()
                    };
                    if agent_id.is_empty() {
                        return Err(Error::FailedPrecondition(
                            "no agent has written to the customer yet".into(),
                        ));
                    }
                    routing_action::Action::Assign(AssignConversationRequest {
                        conversation_id: conversation_id.clone(),
                        agent_id,
                        allow_over_capacity: false,
                    })
                };
                let detail = match &action {
                    routing_action::Action::Assign(a) => format!("assigned to {}", a.agent_id),
                    _ => "unassigned".to_string(),
                };
                self.routing(s, action).await?;
                if let Some(c) = facts.conversation.as_mut() {
                    c.assignee_id = match agent.as_str() {
                        "none" => String::new(),
                        _ => detail.trim_start_matches("assigned to ").to_string(),
                    };
                }
                Ok(detail)
            }
            action::Kind::AssignTeam(team) => {
                self.routing(
                    s,
                    routing_action::Action::AssignTeam(AssignTeamAction {
                        conversation_id,
                        team_id: team.clone(),
                    }),
                )
                .await?;
                if let Some(c) = facts.conversation.as_mut() {
                    c.team_id = team.clone();
                    c.assignee_id.clear();
                }
                Ok(format!("moved to team {team}"))
            }
            action::Kind::ApplyMacro(_) => Err(Error::FailedPrecondition(
                "a macro cannot apply another macro".into(),
            )),
            action::Kind::TransferToTeam(team) => {
                self.routing(
                    s,
                    routing_action::Action::Transfer(RequestTransferRequest {
                        conversation_id,
                        to_team_id: team.clone(),
                        note: format!(
                            "Transferred by the {} \u{201c}{}\u{201d}",
                            s.by.kind, s.by.name
                        ),
                        ..Default::default()
                    }),
                )
                .await?;
                Ok(format!("offered to team {team}"))
            }
            action::Kind::AddLabels(l) | action::Kind::RemoveLabels(l) => {
                let add = matches!(kind, action::Kind::AddLabels(_));
                let change = LabelChange {
                    labels: l.labels.clone(),
                };
                let (action, sign) = if add {
                    (conversation_action::Action::AddLabels(change), "+")
                } else {
                    (conversation_action::Action::RemoveLabels(change), "-")
                };
                self.conversation(s, &conversation_id, action, facts)
                    .await?;
                let shown: Vec<String> = l.labels.iter().map(|x| format!("{sign}{x}")).collect();
                Ok(format!("labels: {}", shown.join(", ")))
            }
            action::Kind::SendMessage(m) | action::Kind::AddNote(m) => {
                let content = fill(&m.content, facts);
                let (action, what) = if matches!(kind, action::Kind::SendMessage(_)) {
                    (conversation_action::Action::SendMessage(content), "message")
                } else {
                    (conversation_action::Action::AddNote(content), "note")
                };
                let id = self
                    .conversation(s, &conversation_id, action, facts)
                    .await?;
                Ok(format!("{what} {id}"))
            }
            action::Kind::ChangeStatus(st) => {
                let status = ConversationStatus::from_storage(&st.status);
                let snoozed_until = (status == ConversationStatus::Snoozed).then(|| {
                    to_timestamp(Utc::now() + chrono::Duration::seconds(st.snooze_seconds))
                });
                self.conversation(
                    s,
                    &conversation_id,
                    conversation_action::Action::SetStatus(SetStatusRequest {
                        conversation_id: conversation_id.clone(),
                        status: status as i32,
                        snoozed_until,
                        ..Default::default()
                    }),
                    facts,
                )
                .await?;
                Ok(format!("status: {}", st.status))
            }
            action::Kind::ChangePriority(pr) => {
                let priority = Priority::from_storage(pr);
                self.conversation(
                    s,
                    &conversation_id,
                    conversation_action::Action::SetPriority(priority as i32),
                    facts,
                )
                .await?;
                Ok(format!("priority: {pr}"))
            }
            action::Kind::CreateTicket(t) => {
                // At most one ticket per rule and conversation.
                let request = RunTicketActionRequest {
                    account_id: s.account.into(),
                    idempotency_key: key(&["create_ticket", s.by.id, &conversation_id]),
                    origin: Some(s.origin.clone()),
                    action: Some(ticket_action::Action::CreateFromConversation(
                        CreateTicketFromConversationRequest {
                            conversation_id: conversation_id.clone(),
                            subject: fill(&t.subject, facts),
                            ticket: Some(Ticket {
                                tags: t.tags.iter().map(|x| x.trim().to_lowercase()).collect(),
                                category: t.category.clone(),
                                priority: ticket_priority(&t.priority),
                                group_id: t.group_id.clone(),
                                ..Default::default()
                            }),
                            request_id: String::new(),
                        },
                    )),
                };
                let ticket = self.ticketing(request).await?;
                let detail = format!("ticket #{}", ticket.number);
                facts.ticket = Some(ticket);
                Ok(detail)
            }
            action::Kind::UpdateTicket(t) => {
                let Some(ticket_id) = facts.ticket.as_ref().map(|t| t.id.clone()) else {
                    return Err(Error::FailedPrecondition("the event has no ticket".into()));
                };
                let request = RunTicketActionRequest {
                    account_id: s.account.into(),
                    idempotency_key: s.key.clone(),
                    origin: Some(s.origin.clone()),
                    action: Some(ticket_action::Action::Update(TicketActionChange {
                        ticket_id,
                        status: t.status.clone(),
                        priority: ticket_priority(&t.priority),
                        add_tags: t.add_tags.clone(),
                        remove_tags: t.remove_tags.clone(),
                    })),
                };
                let ticket = self.ticketing(request).await?;
                let detail = format!("ticket #{} updated", ticket.number);
                facts.ticket = Some(ticket);
                Ok(detail)
            }
            action::Kind::SendWebhook(w) => {
                let data = serde_json::json!({
                    "by": s.by.kind,
                    "rule_id": if s.by.kind == "rule" { s.by.id } else { "" },
                    "macro_id": if s.by.kind == "macro" { s.by.id } else { "" },
                    "name": s.by.name,
                    "event": s.by.event,
                    "event_id": s.origin.causation_id,
                    "conversation_id": conversation_id,
                    "ticket_id": facts.ticket.as_ref().map(|t| t.id.clone()).unwrap_or_default(),
                    "contact_id": facts.conversation.as_ref().map(|c| c.contact_id.clone()).unwrap_or_default(),
                });
                let request = SendWebhookRequest {
                    account_id: s.account.into(),
                    endpoint_id: w.endpoint_id.clone(),
                    idempotency_key: s.key.clone(),
                    event_type: "automation.webhook".into(),
                    data_json: data.to_string(),
                };
                let reply =
                    helpdesk_kit::command::call(&self.bus, &request, self.limits.command_timeout)
                        .await?;
                Ok(format!("webhook delivery {}", reply.delivery_id))
            }
            action::Kind::SendEmail(e) => {
                let mut to = Vec::new();
                for t in &e.to {
                    if t == "contact" {
                        match facts
                            .contact
                            .as_ref()
                            .map(|c| c.email.clone())
                            .filter(|m| !m.is_empty())
                        {
                            Some(m) => to.push(m),
                            None => {
                                return Err(Error::FailedPrecondition(
                                    "the contact has no email address".into(),
                                ));
                            }
                        }
                    } else {
                        to.push(t.clone());
                    }
                }
                let request = SendEmailRequest {
                    account_id: s.account.into(),
                    idempotency_key: s.key.clone(),
                    kind: EmailKind::AutomaticReply as i32,
                    to,
                    subject: fill(&e.subject, facts),
                    // The kind's template lays the body out in the text and HTML parts.
                    variables: [
                        ("body".to_string(), fill(&e.text, facts)),
                        ("subject".to_string(), fill(&e.subject, facts)),
                    ]
                    .into(),
                    ticket_id: facts
                        .ticket
                        .as_ref()
                        .map(|t| t.id.clone())
                        .unwrap_or_default(),
                    ..Default::default()
                };
                let reply =
                    helpdesk_kit::command::call(&self.bus, &request, self.limits.command_timeout)
                        .await?;
                Ok(format!("email {}", reply.email_id))
            }
        }
    }

    /// A conversation action; the id of the message it wrote (if any).
    async fn conversation(
        &self,
        s: &Step<'_>,
        conversation_id: &str,
        action: conversation_action::Action,
        facts: &mut Facts,
    ) -> Result<String> {
        let request = RunConversationActionRequest {
            account_id: s.account.into(),
            conversation_id: conversation_id.into(),
            idempotency_key: s.key.clone(),
            origin: Some(s.origin.clone()),
            action: Some(action),
        };
        let reply =
            helpdesk_kit::command::call(&self.bus, &request, self.limits.command_timeout).await?;
        if let Some(c) = reply.conversation {
            facts.conversation = Some(c);
        }
        Ok(reply.message_id)
    }

    async fn routing(&self, s: &Step<'_>, action: routing_action::Action) -> Result<()> {
        let request = RunRoutingActionRequest {
            account_id: s.account.into(),
            idempotency_key: s.key.clone(),
            origin: Some(s.origin.clone()),
            action: Some(action),
        };
        helpdesk_kit::command::call(&self.bus, &request, self.limits.command_timeout).await?;
        Ok(())
    }

    async fn ticketing(&self, request: RunTicketActionRequest) -> Result<Ticket> {
        let reply =
            helpdesk_kit::command::call(&self.bus, &request, self.limits.command_timeout).await?;
        reply
            .ticket
            .ok_or_else(|| Error::Unavailable("the ticketing service answered no ticket".into()))
    }
}

/// One action's context.
pub(crate) struct Step<'a> {
    pub account: &'a str,
    /// The rule (or macro) acting.
    pub by: By<'a>,
    pub origin: &'a CommandOrigin,
    pub key: String,
    pub state: Option<&'a ConversationState>,
}

/// What acts: a rule (on an event) or a macro (applied by staff).
#[derive(Debug, Clone, Copy)]
pub(crate) struct By<'a> {
    /// `rule` or `macro`.
    pub kind: &'static str,
    pub id: &'a str,
    pub name: &'a str,
    /// The rule's event (empty for a macro).
    pub event: &'a str,
}

impl<'a> By<'a> {
    fn rule(rule: &'a Compiled) -> Self {
        Self {
            kind: "rule",
            id: &rule.rule.id,
            name: &rule.rule.name,
            event: &rule.rule.event,
        }
    }
}

/// A ticket priority a rule names (empty: unset, 0).
fn ticket_priority(name: &str) -> i32 {
    if name.is_empty() {
        0
    } else {
        TicketPriority::from_storage(name) as i32
    }
}

/// A rule as an actor.
pub fn rule_actor(rule_id: &str) -> Actor {
    Actor {
        kind: ActorKind::Automation as i32,
        id: rule_id.to_string(),
    }
}
