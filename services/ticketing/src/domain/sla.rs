//! SLA clocks: which policy a ticket falls under, how each clock reacts to what
//! happens to the ticket, and the targets' state and deadlines, derived from a log of
//! marks (activated, paused, resumed, fulfilled, breached), never from counters.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use helpdesk_proto::ticketing::v1::{SlaMetric, SlaState, StatusCategory};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::StorageName;
use super::calendar::{self, Calendar};

type Instant = DateTime<Utc>;

/// Which tickets a policy covers (an empty list: any).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Filter {
    pub priorities: Vec<String>,
    pub types: Vec<String>,
    pub categories: Vec<String>,
    pub group_ids: Vec<Uuid>,
    /// Any of these tags.
    pub tags: Vec<String>,
    /// All of these values.
    pub custom_fields: HashMap<String, String>,
}

/// One target of a policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Target {
    /// Stored priority name; empty: every priority.
    pub priority: String,
    pub metric: String,
    pub seconds: i64,
    pub business_hours: bool,
}

/// A policy as the clocks use it.
#[derive(Debug, Clone)]
pub struct Policy {
    pub id: Uuid,
    pub filter: Filter,
    pub targets: Vec<Target>,
    pub calendar: Option<Calendar>,
    pub warning: Duration,
}

/// What a ticket looks like to a policy filter.
pub struct Facts<'a> {
    pub priority: &'a str,
    pub r#type: &'a str,
    pub category: &'a str,
    pub group_id: Option<Uuid>,
    pub tags: &'a [String],
    pub custom_fields: &'a HashMap<String, String>,
}

impl Filter {
    /// Whether the ticket falls under it.
    pub fn matches(&self, t: &Facts<'_>) -> bool {
        let any = |list: &[String], v: &str| list.is_empty() || list.iter().any(|x| x == v);
        any(&self.priorities, t.priority)
            && any(&self.types, t.r#type)
            && any(&self.categories, t.category)
            && (self.group_ids.is_empty()
                || t.group_id.is_some_and(|g| self.group_ids.contains(&g)))
            && (self.tags.is_empty() || self.tags.iter().any(|x| t.tags.contains(x)))
            && self
                .custom_fields
                .iter()
                .all(|(k, v)| t.custom_fields.get(k) == Some(v))
    }
}

/// The first policy (in order) covering the ticket.
pub fn choose<'a>(policies: &'a [Policy], t: &Facts<'_>) -> Option<&'a Policy> {
    policies.iter().find(|p| p.filter.matches(t))
}

/// A clock's mark in the log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mark {
    /// A new cycle starts (its time counts from zero).
    Activated,
    Paused,
    /// The cycle goes on (its time so far still counts).
    Resumed,
    Fulfilled,
    /// Annotation: the cycle passed its target.
    Breached,
    /// Annotation: the cycle's warning was sent.
    Warned,
}

impl Mark {
    pub fn name(self) -> &'static str {
        match self {
            Mark::Activated => "activated",
            Mark::Paused => "paused",
            Mark::Resumed => "resumed",
            Mark::Fulfilled => "fulfilled",
            Mark::Breached => "breached",
            Mark::Warned => "warned",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "activated" => Mark::Activated,
            "paused" => Mark::Paused,
            "resumed" => Mark::Resumed,
            "fulfilled" => Mark::Fulfilled,
            "breached" => Mark::Breached,
            "warned" => Mark::Warned,
            _ => return None,
        })
    }
}

/// One logged mark.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub metric: SlaMetric,
    pub mark: Mark,
    pub at: Instant,
}

/// Where a clock is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Run {
    Never,
    Running,
    Paused,
    Done,
}

/// The current cycle of one metric, from its log.
#[derive(Debug, Clone)]
pub struct Cycle {
    pub run: Run,
    /// Spans the cycle ran, the last one open while running.
    pub spans: Vec<(Instant, Option<Instant>)>,
    pub breached: bool,
    pub warned: bool,
}

/// The current cycle of `metric` in `log` (in time order).
pub fn cycle(log: &[Entry], metric: SlaMetric) -> Cycle {
    let mut c = Cycle {
        run: Run::Never,
        spans: Vec::new(),
        breached: false,
        warned: false,
    };
    for e in log.iter().filter(|e| e.metric == metric) {
        match e.mark {
            Mark::Activated => {
                c = Cycle {
                    run: Run::Running,
                    spans: vec![(e.at, None)],
                    breached: false,
                    warned: false,
                };
            }
            Mark::Resumed if c.run != Run::Running && c.run != Run::Never => {
                c.run = Run::Running;
                c.spans.push((e.at, None));
            }
            Mark::Paused | Mark::Fulfilled if c.run == Run::Running => {
                if let Some(last) = c.spans.last_mut() {
                    last.1 = Some(e.at);
                }
                c.run = if e.mark == Mark::Paused {
                    Run::Paused
                } else {
                    Run::Done
                };
            }
            Mark::Fulfilled if c.run == Run::Paused => c.run = Run::Done,
            Mark::Breached => c.breached = true,
            Mark::Warned => c.warned = true,
            _ => {}
        }
    }
    c
}

/// What happened to a ticket, as the clocks see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Happening {
    Created(StatusCategory),
    Moved(StatusCategory, StatusCategory),
    /// A public reply from staff, the ticket being in this category.
    StaffReply(StatusCategory),
    /// A public reply from the customer.
    CustomerReply,
}

/// The marks a happening puts in the log, given the clocks' current state.
pub fn react(log: &[Entry], what: Happening, at: Instant) -> Vec<Entry> {
    use SlaMetric::*;
    let run = |m| cycle(log, m).run;
    let mut out = Vec::new();
    let mut mark = |metric, mark| out.push(Entry { metric, mark, at });
    let closed = |c: StatusCategory| matches!(c, StatusCategory::Solved | StatusCategory::Closed);
    // Agent work pauses while waiting on the customer or on hold; requester wait
    // pauses while waiting on the customer.
    let works = |c: StatusCategory| !matches!(c, StatusCategory::Pending | StatusCategory::OnHold);
    let waits = |c: StatusCategory| c != StatusCategory::Pending;
    match what {
        Happening::Created(c) => {
            mark(FirstReply, Mark::Activated);
            mark(Resolution, Mark::Activated);
            mark(AgentWork, Mark::Activated);
            mark(RequesterWait, Mark::Activated);
            if closed(c) {
                // Created solved: the clocks stand fulfilled, and go on if it reopens.
                for m in [FirstReply, Resolution, AgentWork, RequesterWait] {
                    mark(m, Mark::Fulfilled);
                }
                return out;
            }
            if !works(c) {
                mark(AgentWork, Mark::Paused);
            }
            if !waits(c) {
                mark(RequesterWait, Mark::Paused);
            }
        }
        Happening::Moved(from, to) => {
            if closed(to) {
                for m in [
                    FirstReply,
                    NextReply,
                    PeriodicUpdate,
                    Resolution,
                    AgentWork,
                    RequesterWait,
                ] {
                    if matches!(run(m), Run::Running | Run::Paused) {
                        mark(m, Mark::Fulfilled);
                    }
                }
                return out;
            }
            if closed(from) {
                // Reopened: the whole-ticket clocks go on where they stopped.
                for m in [Resolution, AgentWork, RequesterWait] {
                    if run(m) == Run::Done {
                        mark(m, Mark::Resumed);
                    }
                }
            }
            for (m, on) in [(AgentWork, works(to)), (RequesterWait, waits(to))] {
                let now = if closed(from) && run(m) == Run::Done {
                    Run::Running
                } else {
                    run(m)
                };
                match (now, on) {
                    (Run::Running, false) => mark(m, Mark::Paused),
                    (Run::Paused, true) => mark(m, Mark::Resumed),
                    _ => {}
                }
            }
        }
        Happening::StaffReply(c) => {
            for m in [FirstReply, NextReply] {
                if matches!(run(m), Run::Running | Run::Paused) {
                    mark(m, Mark::Fulfilled);
                }
            }
            // Every staff reply starts the wait for the next update, while the ticket
            // is being worked (not after it was solved).
            if run(PeriodicUpdate) == Run::Running {
                mark(PeriodicUpdate, Mark::Fulfilled);
            }
            if !closed(c) {
                mark(PeriodicUpdate, Mark::Activated);
            }
        }
        Happening::CustomerReply => {
            let first_done = matches!(run(FirstReply), Run::Done | Run::Never);
            if first_done && run(NextReply) != Run::Running {
                mark(NextReply, Mark::Activated);
            }
        }
    }
    out
}

/// A target's standing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Standing {
    pub metric: String,
    pub seconds: i64,
    pub business_hours: bool,
    pub state: String,
    /// While running: when it breaches.
    pub due_at: Option<Instant>,
    /// Time counted in the current cycle (to the last mark, or now while paused).
    pub elapsed_seconds: i64,
}

impl Standing {
    /// The state, as of `now` (a running target past its due time is breached).
    pub fn state_at(&self, now: Instant) -> SlaState {
        let stored = SlaState::from_storage(&self.state);
        match (stored, self.due_at) {
            (SlaState::Active, Some(due)) if due <= now => SlaState::Breached,
            (s, _) => s,
        }
    }
}

/// Time the cycle counted, on `calendar`, its open span (if any) up to `now`.
fn counted(c: &Cycle, calendar: Option<&Calendar>, now: Instant) -> Duration {
    c.spans
        .iter()
        .map(|(s, e)| calendar::elapsed(calendar, *s, e.unwrap_or(now)))
        .fold(Duration::zero(), |a, b| a + b)
}

/// The targets that apply to a ticket of `priority`: per metric, the one for its
/// priority, else the one for every priority.
fn applicable<'a>(policy: &'a Policy, priority: &str) -> Vec<&'a Target> {
    let mut out: Vec<&Target> = Vec::new();
    for t in policy.targets.iter().filter(|t| t.priority == priority) {
        out.push(t);
    }
    for t in policy.targets.iter().filter(|t| t.priority.is_empty()) {
        if !out.iter().any(|o| o.metric == t.metric) {
            out.push(t);
        }
    }
    out
}

/// Each applicable target's standing under `policy` for a ticket of `priority`.
pub fn standings(policy: &Policy, priority: &str, log: &[Entry], now: Instant) -> Vec<Standing> {
    applicable(policy, priority)
        .into_iter()
        .filter_map(|t| {
            let metric = SlaMetric::from_storage(&t.metric);
            let c = cycle(log, metric);
            if c.run == Run::Never {
                return None;
            }
            let calendar = policy.calendar.as_ref().filter(|_| t.business_hours);
            let target = Duration::seconds(t.seconds);
            let elapsed = counted(&c, calendar, now);
            let (state, due_at) = match c.run {
                Run::Running => {
                    // Counted before the open span began, the rest of the target after.
                    let start = c.spans.last().map(|(s, _)| *s).unwrap_or(now);
                    let before = counted(&c, calendar, start);
                    let due = calendar::after(calendar, start, target - before);
                    let state = if c.breached {
                        SlaState::Breached
                    } else {
                        SlaState::Active
                    };
                    (state, due)
                }
                Run::Paused => {
                    let state = if c.breached {
                        SlaState::Breached
                    } else {
                        SlaState::Paused
                    };
                    (state, None)
                }
                _ => {
                    let late = c.breached || elapsed > target;
                    (
                        if late {
                            SlaState::Breached
                        } else {
                            SlaState::Achieved
                        },
                        None,
                    )
                }
            };
            Some(Standing {
                metric: t.metric.clone(),
                seconds: t.seconds,
                business_hours: calendar.is_some(),
                state: state.storage_name().to_string(),
                due_at,
                elapsed_seconds: elapsed.num_seconds(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use SlaMetric::*;

    fn t(s: i64) -> Instant {
        DateTime::from_timestamp(1_800_000_000 + s, 0).expect("time")
    }

    fn apply(log: &mut Vec<Entry>, what: Happening, at: i64) {
        let marks = react(log, what, t(at));
        log.extend(marks);
    }

    fn policy(metric: SlaMetric, seconds: i64) -> Policy {
        Policy {
            id: Uuid::nil(),
            filter: Filter::default(),
            targets: vec![Target {
                priority: String::new(),
                metric: metric.storage_name().to_string(),
                seconds,
                business_hours: false,
            }],
            calendar: None,
            warning: Duration::zero(),
        }
    }

    #[test]
    fn agent_work_pauses_while_waiting_on_the_customer() {
        let mut log = Vec::new();
        apply(&mut log, Happening::Created(StatusCategory::New), 0);
        apply(
            &mut log,
            Happening::Moved(StatusCategory::New, StatusCategory::Pending),
            100,
        );
        let p = policy(AgentWork, 1_000);
        let paused = &standings(&p, "normal", &log, t(500))[0];
        assert_eq!(paused.state, "paused");
        assert_eq!(paused.elapsed_seconds, 100);
        apply(
            &mut log,
            Happening::Moved(StatusCategory::Pending, StatusCategory::Open),
            400,
        );
        let running = &standings(&p, "normal", &log, t(450))[0];
        // 100 s counted before the pause, 900 s left from 400.
        assert_eq!(running.due_at, Some(t(1_300)));
        apply(
            &mut log,
            Happening::Moved(StatusCategory::Open, StatusCategory::Solved),
            600,
        );
        let done = &standings(&p, "normal", &log, t(700))[0];
        assert_eq!(
            (done.state.as_str(), done.elapsed_seconds),
            ("achieved", 300)
        );
    }

    #[test]
    fn replies_fulfil_first_and_next_reply_and_restart_periodic_updates() {
        let mut log = Vec::new();
        apply(&mut log, Happening::Created(StatusCategory::New), 0);
        apply(&mut log, Happening::CustomerReply, 10);
        assert_eq!(
            cycle(&log, NextReply).run,
            Run::Never,
            "the first reply covers it"
        );
        apply(&mut log, Happening::StaffReply(StatusCategory::Open), 50);
        assert_eq!(cycle(&log, FirstReply).run, Run::Done);
        apply(&mut log, Happening::CustomerReply, 60);
        let next = &standings(&policy(NextReply, 30), "normal", &log, t(200))[0];
        assert_eq!(next.due_at, Some(t(90)));
        assert_eq!(next.state_at(t(200)), SlaState::Breached);
        let periodic = &standings(&policy(PeriodicUpdate, 100), "normal", &log, t(60))[0];
        assert_eq!(periodic.due_at, Some(t(150)));
        apply(&mut log, Happening::StaffReply(StatusCategory::Open), 120);
        let periodic = &standings(&policy(PeriodicUpdate, 100), "normal", &log, t(130))[0];
        assert_eq!(
            periodic.due_at,
            Some(t(220)),
            "a new cycle from the latest reply"
        );
    }

    #[test]
    fn a_priority_target_overrides_the_one_for_every_priority() {
        let mut p = policy(Resolution, 8 * 3600);
        p.targets.push(Target {
            priority: "urgent".into(),
            metric: Resolution.storage_name().to_string(),
            seconds: 3600,
            business_hours: false,
        });
        let mut log = Vec::new();
        apply(&mut log, Happening::Created(StatusCategory::New), 0);
        let urgent = standings(&p, "urgent", &log, t(0));
        assert_eq!(urgent.len(), 1);
        assert_eq!(urgent[0].due_at, Some(t(3600)));
        assert_eq!(
            standings(&p, "low", &log, t(0))[0].due_at,
            Some(t(8 * 3600))
        );
    }

    #[test]
    fn a_ticket_created_solved_starts_its_clocks_when_it_reopens() {
        let mut log = Vec::new();
        apply(&mut log, Happening::Created(StatusCategory::Solved), 0);
        apply(
            &mut log,
            Happening::Moved(StatusCategory::Solved, StatusCategory::Open),
            100,
        );
        let r = &standings(&policy(Resolution, 300), "normal", &log, t(110))[0];
        assert_eq!(r.due_at, Some(t(400)));
        // A reply after solving starts no wait for an update.
        apply(
            &mut log,
            Happening::Moved(StatusCategory::Open, StatusCategory::Solved),
            200,
        );
        apply(&mut log, Happening::StaffReply(StatusCategory::Solved), 210);
        assert_eq!(cycle(&log, PeriodicUpdate).run, Run::Never);
    }

    #[test]
    fn a_reopened_ticket_resumes_its_resolution_clock() {
        let mut log = Vec::new();
        apply(&mut log, Happening::Created(StatusCategory::Open), 0);
        apply(
            &mut log,
            Happening::Moved(StatusCategory::Open, StatusCategory::Solved),
            100,
        );
        apply(
            &mut log,
            Happening::Moved(StatusCategory::Solved, StatusCategory::Open),
            1_000,
        );
        let r = &standings(&policy(Resolution, 300), "normal", &log, t(1_010))[0];
        assert_eq!(r.due_at, Some(t(1_200)), "100 s counted, 200 s left");
    }
}
