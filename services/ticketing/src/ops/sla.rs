//! SLA clocks kept with every change of a ticket: the marks logged, the policy
//! re-chosen, the standings stored, and the warning and breach timers set for the
//! deadlines they derive.

use chrono::{DateTime, Duration, Utc};
use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::time::to_timestamp;
use helpdesk_kit::{outbox, timers};
use helpdesk_proto::ticketing::v1::{SlaBreached, SlaMetric, SlaState, SlaWarning};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::StorageName;
use crate::domain::sla::{self, Entry, Facts, Happening, Mark, Policy, Standing};
use crate::store::sla as store;
use crate::store::tickets::TicketRow;

/// Timer: a target falls due.
pub const BREACH_TIMER: &str = "ticketing.sla_breach";
/// Timer: a target falls due within the policy's warning lead.
pub const WARNING_TIMER: &str = "ticketing.sla_warning";

/// Every metric a ticket may have a clock for.
const METRICS: [SlaMetric; 6] = [
    SlaMetric::FirstReply,
    SlaMetric::NextReply,
    SlaMetric::PeriodicUpdate,
    SlaMetric::Resolution,
    SlaMetric::AgentWork,
    SlaMetric::RequesterWait,
];

/// The account's policies, in order, with their calendars compiled.
pub async fn policies(conn: &mut PgConnection, account: &str) -> Result<Vec<Policy>> {
    let calendars = store::calendars(conn, account).await?;
    Ok(store::policies(conn, account)
        .await?
        .into_iter()
        .map(|p| Policy {
            id: p.id,
            filter: p.filter.0,
            targets: p.targets.0,
            calendar: p
                .calendar_id
                .and_then(|id| calendars.iter().find(|c| c.id == id))
                .and_then(|c| c.spec.0.compile()),
            warning: Duration::seconds(p.warning_seconds),
        })
        .collect())
}

/// The key of a ticket's timer for `metric`.
pub fn timer_key(ticket: Uuid, metric: SlaMetric) -> String {
    format!("{ticket}:{}", metric.storage_name())
}

/// The fingerprint a target's timers are set with: its policy and due time.
pub fn fingerprint(policy: Uuid, due: chrono::DateTime<Utc>) -> String {
    format!("{policy}:{}", due.timestamp_micros())
}

fn facts(t: &TicketRow) -> Facts<'_> {
    Facts {
        priority: &t.priority,
        r#type: &t.r#type,
        category: &t.category,
        group_id: t.group_id,
        tags: &t.tags,
        custom_fields: &t.custom_fields.0,
    }
}

/// When `metric`'s target falls due, while it is active.
fn active_due(standings: &[Standing], metric: SlaMetric) -> Option<DateTime<Utc>> {
    standings
        .iter()
        .find(|s| SlaMetric::from_storage(&s.metric) == metric)
        .filter(|s| SlaState::from_storage(&s.state) == SlaState::Active)
        .and_then(|s| s.due_at)
}

/// The ticket's policy and its targets' standings now, from its `log`.
fn standings_of(
    t: &TicketRow,
    log: &[Entry],
    policies: &[Policy],
) -> (Option<Uuid>, Vec<Standing>) {
    match sla::choose(policies, &facts(t)) {
        Some(policy) => (
            Some(policy.id),
            sla::standings(policy, &t.priority, log, Utc::now()),
        ),
        None => (None, Vec::new()),
    }
}

/// The ticket's policy and its targets' standings now, its log read.
pub async fn standing(
    conn: &mut PgConnection,
    t: &TicketRow,
    policies: &[Policy],
) -> Result<(Option<Uuid>, Vec<Standing>)> {
    let log = store::log(conn, &t.account_id, t.id).await?;
    Ok(standings_of(t, &log, policies))
}

/// After `what` happened to `ticket` (or only its fields changed): logs the clocks'
/// marks, re-chooses the policy, stores the standings on the ticket and sets or
/// cancels the timers. Returns the ticket with its standings.
pub async fn refresh(
    conn: &mut PgConnection,
    mut ticket: TicketRow,
    what: Option<Happening>,
    policies: &[Policy],
) -> Result<TicketRow> {
    let had = ticket.sla_policy_id.is_some() || !ticket.sla.0.is_empty();
    // A new ticket has no log yet.
    let mut log = match what {
        Some(Happening::Created(_)) => Vec::new(),
        _ if policies.is_empty() && what.is_none() => Vec::new(),
        _ => store::log(conn, &ticket.account_id, ticket.id).await?,
    };
    if let Some(what) = what {
        let marks = sla::react(&log, what, Utc::now());
        store::append(conn, &ticket.account_id, ticket.id, &marks).await?;
        log.extend(marks);
    }
    // Without a policy now or before, there is nothing to derive, store or time.
    if policies.is_empty() && !had {
        return Ok(ticket);
    }
    let (policy, standings) = standings_of(&ticket, &log, policies);
    store::set_standings(conn, &ticket.account_id, ticket.id, policy, &standings).await?;
    let warning = policy
        .and_then(|id| policies.iter().find(|p| p.id == id))
        .map_or(Duration::zero(), |p| p.warning);
    let now = Utc::now();
    let mut idle = Vec::new();
    for metric in METRICS {
        let key = timer_key(ticket.id, metric);
        match (policy, active_due(&standings, metric)) {
            (Some(policy), Some(due)) => {
                let fp = fingerprint(policy, due);
                let payload = serde_json::json!({ "account_id": ticket.account_id });
                timers::schedule(conn, BREACH_TIMER, &key, due, &fp, payload.clone()).await?;
                // One warning per cycle; one due already (a change inside the lead, or
                // a late worker) is sent at once rather than dropped.
                let warned = sla::cycle(&log, metric).warned;
                if warning > Duration::zero() && !warned {
                    let at = (due - warning).max(now);
                    timers::schedule(conn, WARNING_TIMER, &key, at, &fp, payload).await?;
                } else {
                    timers::cancel(conn, WARNING_TIMER, &key).await?;
                }
            }
            _ => idle.push(key),
        }
    }
    timers::cancel_kinds_of(conn, &[BREACH_TIMER, WARNING_TIMER], &idle).await?;
    ticket.sla_policy_id = policy;
    ticket.sla = sqlx::types::Json(standings);
    Ok(ticket)
}

/// The current fingerprint of `ticket`'s target for `metric`: set while it runs
/// toward a due time under a policy (for a warning, only until it was sent); `None`
/// otherwise.
pub async fn current(
    conn: &mut PgConnection,
    ticket: &TicketRow,
    metric: SlaMetric,
    policies: &[Policy],
    warning: bool,
) -> Result<Option<String>> {
    let log = store::log(conn, &ticket.account_id, ticket.id).await?;
    if warning && sla::cycle(&log, metric).warned {
        return Ok(None);
    }
    let (policy, standings) = standings_of(ticket, &log, policies);
    Ok(
        policy
            .and_then(|policy| active_due(&standings, metric).map(|due| fingerprint(policy, due))),
    )
}

/// Logs `mark` in `metric`'s current cycle; returns the ticket's policy and the
/// target's due time as they were.
async fn mark_cycle(
    conn: &mut PgConnection,
    ticket: &TicketRow,
    metric: SlaMetric,
    mark: Mark,
    policies: &[Policy],
) -> Result<(String, Option<prost_types::Timestamp>)> {
    let (policy, standings) = standing(conn, ticket, policies).await?;
    let due = standings
        .iter()
        .find(|s| SlaMetric::from_storage(&s.metric) == metric)
        .and_then(|s| s.due_at);
    let entry = Entry {
        metric,
        mark,
        at: Utc::now(),
    };
    store::append(conn, &ticket.account_id, ticket.id, &[entry]).await?;
    let policy = policy.map(|p| p.to_string()).unwrap_or_default();
    Ok((policy, due.map(to_timestamp)))
}

static BREACHES: std::sync::LazyLock<opentelemetry::metrics::Counter<u64>> =
    std::sync::LazyLock::new(|| {
        helpdesk_kit::metrics::meter()
            .u64_counter("helpdesk.sla.breaches")
            .with_unit("{breach}")
            .with_description(
                "SLA targets breached, by metric (first reply, next reply, resolution, …)",
            )
            .build()
    });

/// A target fell due: the breach is logged (once per cycle), the standings stored
/// again, and `sla.breached` recorded.
pub async fn breached(
    conn: &mut PgConnection,
    origin: &Origin,
    ticket: TicketRow,
    metric: SlaMetric,
    policies: &[Policy],
) -> Result<()> {
    let (policy_id, due_time) = mark_cycle(conn, &ticket, metric, Mark::Breached, policies).await?;
    let event = SlaBreached {
        ticket_id: ticket.id.to_string(),
        ticket_number: ticket.number,
        policy_id,
        metric: metric as i32,
        due_time,
        ..Default::default()
    };
    refresh(conn, ticket, None, policies).await?;
    outbox::emit(conn, origin, event).await?;
    BREACHES.add(
        1,
        &[opentelemetry::KeyValue::new("metric", metric.as_str_name())],
    );
    Ok(())
}

/// A target falls due soon: the warning is logged (once per cycle) and `sla.warning`
/// recorded.
pub async fn warn(
    conn: &mut PgConnection,
    origin: &Origin,
    ticket: &TicketRow,
    metric: SlaMetric,
    policies: &[Policy],
) -> Result<()> {
    let (policy_id, due_time) = mark_cycle(conn, ticket, metric, Mark::Warned, policies).await?;
    let event = SlaWarning {
        ticket_id: ticket.id.to_string(),
        ticket_number: ticket.number,
        policy_id,
        metric: metric as i32,
        due_time,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(())
}
