//! Routing a conversation that opened without an agent: straight to the agent it
//! should go back to, into the queue, or away from it (closed hours, full queue).
//! Pure: the engine reads the facts under the account lock, [`decide`]s, then applies.

use chrono::{DateTime, Utc};
use helpdesk_proto::routing::v1::{
    AssignReason, OutsideHoursPolicy, OverflowAction, PriorityClass, Strategy,
};
use uuid::Uuid;

use super::Settings;
use super::hours::Hours;
use super::rules::Decision;
use super::select::{self, Candidate, Need};

/// Overflow reason: the business hours are closed and the visitor may leave a message.
pub const OUTSIDE_HOURS: &str = "outside_hours";
/// Overflow reason: the target queue is at its maximum length.
pub const QUEUE_FULL: &str = "queue_full";
/// Overflow reason: the chat waited longer than the account allows.
pub const WAIT_EXCEEDED: &str = "wait_exceeded";
/// Overflow reason: no agent with the required skills took the chat in time.
pub const NO_SKILLED_AGENT: &str = "no_skilled_agent";

/// Business hours that apply to a conversation (its target team's, else its inbox's).
#[derive(Debug, Clone)]
pub struct OpeningHours {
    pub hours: Hours,
    pub policy: OutsideHoursPolicy,
    pub out_of_office_message: String,
}

/// What routing decides from, all read under the account lock.
#[derive(Debug, Clone)]
pub struct Situation<'a> {
    /// The conversation's channel.
    pub channel: &'a str,
    /// Reopened (back to its previous agent) rather than new.
    pub reopened: bool,
    /// The team it was last served in.
    pub last_team_id: Option<Uuid>,
    /// Where and how the rules send it ([`super::rules::decide`]).
    pub target: &'a Decision,
    pub settings: &'a Settings,
    /// Online agents with their current loads.
    pub agents: &'a [Candidate],
    /// The agent to go back to, if any: its previous agent when reopened, else the
    /// contact's last agent (last-agent strategy).
    pub preferred: Option<&'a str>,
    /// The business hours that apply, if any.
    pub hours: Option<&'a OpeningHours>,
    pub now: DateTime<Utc>,
    /// Conversations already waiting in the target team's queue.
    pub waiting: usize,
}

/// What to do with the conversation.
#[derive(Debug, Clone, PartialEq)]
pub enum RouteDecision {
    /// Straight to `agents[agent]`, without queueing.
    Assign {
        agent: usize,
        team_id: Option<Uuid>,
        reason: AssignReason,
    },
    /// Away from the queue: the visitor is asked to leave `message`.
    LeaveMessage {
        from_team_id: Option<Uuid>,
        reason: &'static str,
        message: String,
    },
    /// Into the queue.
    Enqueue(Entry),
}

/// A conversation going into the queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    pub team_id: Option<Uuid>,
    pub skills: Vec<String>,
    pub class: PriorityClass,
    pub strategy: Strategy,
    /// Not assigned before this instant (waiting for opening time).
    pub not_before: Option<DateTime<Utc>>,
    /// Told to the visitor while the hours are closed ("" when open).
    pub out_of_office_message: String,
    /// Set when it overflowed (to `team_id`) on the way in.
    pub overflowed: Option<Overflowed>,
}

/// An overflow to another team's queue.
#[derive(Debug, Clone, PartialEq)]
pub struct Overflowed {
    pub from_team_id: Option<Uuid>,
    pub to_team_id: Uuid,
    pub reason: &'static str,
}

/// Where an overflowing conversation goes.
#[derive(Debug, Clone, PartialEq)]
pub enum Overflow {
    /// To the account's overflow team.
    Team(Uuid),
    /// Out of the queue: the visitor is asked to leave this message.
    LeaveMessage(String),
}

/// Resolves an overflow `action` from `from_team`: the overflow team when asked for
/// and there is one other than `from_team`; otherwise the visitor leaves a message.
pub fn overflow(settings: &Settings, from_team: Option<Uuid>, action: OverflowAction) -> Overflow {
    match (action, overflow_team(settings, from_team)) {
        (OverflowAction::OverflowTeam, Some(team)) => Overflow::Team(team),
        _ => Overflow::LeaveMessage(settings.leave_message_text.clone()),
    }
}

/// The account's overflow team, unless it is `from_team`.
pub fn overflow_team(settings: &Settings, from_team: Option<Uuid>) -> Option<Uuid> {
    settings.overflow_team_id.filter(|t| Some(*t) != from_team)
}

/// Decides: back to the preferred agent when online with room; otherwise the queue of
/// the target team, unless its hours are closed with the leave-a-message policy or the
/// queue is full (then the overflow action applies).
pub fn decide(s: &Situation<'_>) -> RouteDecision {
    let target = s.target;
    if let Some(preferred) = s.preferred {
        let need = Need {
            team: None,
            skills: &[],
            channel: s.channel,
        };
        if let Some(agent) = s
            .agents
            .iter()
            .position(|a| a.id == preferred && select::eligible(a, &need))
        {
            let (team_id, reason) = if s.reopened {
                (s.last_team_id, AssignReason::Reopened)
            } else {
                (target.team_id, AssignReason::LastAgent)
            };
            return RouteDecision::Assign {
                agent,
                team_id,
                reason,
            };
        }
    }

    let mut not_before = None;
    let mut out_of_office_message = String::new();
    if let Some(h) = s.hours
        && !h.hours.is_open(s.now)
    {
        if h.policy == OutsideHoursPolicy::Wait {
            not_before = h.hours.next_open(s.now);
            out_of_office_message = h.out_of_office_message.clone();
        } else {
            let message = if h.out_of_office_message.is_empty() {
                s.settings.leave_message_text.clone()
            } else {
                h.out_of_office_message.clone()
            };
            return RouteDecision::LeaveMessage {
                from_team_id: target.team_id,
                reason: OUTSIDE_HOURS,
                message,
            };
        }
    }

    let mut team_id = target.team_id;
    let mut skills = target.skills.clone();
    let mut overflowed = None;
    let max = s.settings.max_queue_length;
    if max > 0 && s.waiting >= max as usize {
        match overflow(s.settings, team_id, s.settings.overflow_action) {
            Overflow::Team(team) => {
                overflowed = Some(Overflowed {
                    from_team_id: team_id,
                    to_team_id: team,
                    reason: QUEUE_FULL,
                });
                team_id = Some(team);
                skills.clear();
            }
            Overflow::LeaveMessage(message) => {
                return RouteDecision::LeaveMessage {
                    from_team_id: team_id,
                    reason: QUEUE_FULL,
                    message,
                };
            }
        }
    }
    RouteDecision::Enqueue(Entry {
        team_id,
        skills,
        class: target.class,
        strategy: target.strategy,
        not_before,
        out_of_office_message,
        overflowed,
    })
}

#[cfg(test)]
mod tests {

    use chrono::TimeZone;

    use super::*;
    use crate::domain::hours::HoursSpec;

    const CHANNEL: &str = "web_widget";

    fn team(n: u128) -> Option<Uuid> {
        Some(Uuid::from_u128(n))
    }

    use crate::domain::select::test_agent as agent;

    fn target() -> Decision {
        Decision {
            team_id: team(1),
            skills: vec!["billing".into()],
            class: PriorityClass::Skill,
            strategy: Strategy::LeastBusy,
            rule_id: Some(Uuid::from_u128(101)),
        }
    }

    /// Open Mondays 09:00–17:00 UTC.
    fn mondays(policy: OutsideHoursPolicy, message: &str) -> OpeningHours {
        let spec = HoursSpec {
            time_zone: "UTC".into(),
            weekly: vec![(1, "09:00".into(), "17:00".into())],
            holidays: vec![],
            special_days: vec![],
        };
        OpeningHours {
            hours: spec.compile().expect("valid hours"),
            policy,
            out_of_office_message: message.into(),
        }
    }

    /// 2024-01-`day` at `hour`:00 UTC (the 8th is a Monday).
    fn january(day: u32, hour: u32) -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 1, day, hour, 0, 0)
            .single()
            .expect("valid time")
    }

    fn monday_noon() -> DateTime<Utc> {
        january(8, 12)
    }

    fn sunday_noon() -> DateTime<Utc> {
        january(7, 12)
    }

    fn situation<'a>(
        target: &'a Decision,
        settings: &'a Settings,
        agents: &'a [Candidate],
    ) -> Situation<'a> {
        Situation {
            channel: CHANNEL,
            reopened: false,
            last_team_id: None,
            target,
            settings,
            agents,
            preferred: None,
            hours: None,
            now: monday_noon(),
            waiting: 0,
        }
    }

    fn plain_entry(target: &Decision) -> Entry {
        Entry {
            team_id: target.team_id,
            skills: target.skills.clone(),
            class: target.class,
            strategy: target.strategy,
            not_before: None,
            out_of_office_message: String::new(),
            overflowed: None,
        }
    }

    #[test]
    fn reopened_goes_back_to_the_previous_agent_when_eligible() {
        let (target, settings) = (target(), Settings::default());
        let agents = vec![agent("a", 0, 2), agent("b", 1, 2)];
        let mut s = situation(&target, &settings, &agents);
        s.reopened = true;
        s.last_team_id = team(7);
        s.preferred = Some("b");
        assert_eq!(
            decide(&s),
            RouteDecision::Assign {
                agent: 1,
                team_id: team(7),
                reason: AssignReason::Reopened,
            }
        );

        // Not reopened: the contact's last agent, in the rules' team.
        s.reopened = false;
        assert_eq!(
            decide(&s),
            RouteDecision::Assign {
                agent: 1,
                team_id: team(1),
                reason: AssignReason::LastAgent,
            }
        );

        // At capacity (or not online): the queue, with the rules' team and skills.
        let full = vec![agent("a", 0, 2), agent("b", 2, 2)];
        s.agents = &full;
        s.reopened = true;
        assert_eq!(decide(&s), RouteDecision::Enqueue(plain_entry(&target)));
        s.agents = &[];
        assert_eq!(decide(&s), RouteDecision::Enqueue(plain_entry(&target)));
    }

    #[test]
    fn closed_hours_with_leave_message_policy_leave_a_message() {
        let (target, settings) = (target(), Settings::default());
        let hours = mondays(OutsideHoursPolicy::LeaveMessage, "Back on Monday");
        let mut s = situation(&target, &settings, &[]);
        s.hours = Some(&hours);
        s.now = sunday_noon();
        assert_eq!(
            decide(&s),
            RouteDecision::LeaveMessage {
                from_team_id: team(1),
                reason: OUTSIDE_HOURS,
                message: "Back on Monday".into(),
            }
        );

        // Without a message of their own, the account's text.
        let silent = mondays(OutsideHoursPolicy::LeaveMessage, "");
        s.hours = Some(&silent);
        assert_eq!(
            decide(&s),
            RouteDecision::LeaveMessage {
                from_team_id: team(1),
                reason: OUTSIDE_HOURS,
                message: settings.leave_message_text.clone(),
            }
        );

        // Open: the queue.
        s.now = monday_noon();
        assert_eq!(decide(&s), RouteDecision::Enqueue(plain_entry(&target)));
    }

    #[test]
    fn closed_hours_with_wait_policy_queue_until_opening() {
        let (target, settings) = (target(), Settings::default());
        let hours = mondays(OutsideHoursPolicy::Wait, "We open Monday at 9");
        let mut s = situation(&target, &settings, &[]);
        s.hours = Some(&hours);
        s.now = sunday_noon();
        assert_eq!(
            decide(&s),
            RouteDecision::Enqueue(Entry {
                not_before: Some(january(8, 9)),
                out_of_office_message: "We open Monday at 9".into(),
                ..plain_entry(&target)
            })
        );
    }

    #[test]
    fn a_full_queue_overflows_to_the_overflow_team_or_leaves_a_message() {
        let target = target();
        let settings = Settings {
            max_queue_length: 2,
            overflow_action: OverflowAction::OverflowTeam,
            overflow_team_id: team(9),
            ..Settings::default()
        };
        let mut s = situation(&target, &settings, &[]);
        s.waiting = 1;
        assert_eq!(decide(&s), RouteDecision::Enqueue(plain_entry(&target)));

        s.waiting = 2;
        assert_eq!(
            decide(&s),
            RouteDecision::Enqueue(Entry {
                team_id: team(9),
                skills: vec![],
                overflowed: Some(Overflowed {
                    from_team_id: team(1),
                    to_team_id: Uuid::from_u128(9),
                    reason: QUEUE_FULL,
                }),
                ..plain_entry(&target)
            })
        );

        // The overflow team's own queue is full: nowhere else to go.
        let from_overflow = Decision {
            team_id: team(9),
            ..target.clone()
        };
        s.target = &from_overflow;
        let leave = RouteDecision::LeaveMessage {
            from_team_id: team(9),
            reason: QUEUE_FULL,
            message: settings.leave_message_text.clone(),
        };
        assert_eq!(decide(&s), leave);

        // Leave-a-message action.
        let leave_action = Settings {
            overflow_action: OverflowAction::LeaveMessage,
            ..settings.clone()
        };
        let s = Situation {
            settings: &leave_action,
            target: &target,
            ..s
        };
        assert_eq!(
            decide(&s),
            RouteDecision::LeaveMessage {
                from_team_id: team(1),
                reason: QUEUE_FULL,
                message: settings.leave_message_text.clone(),
            }
        );
    }

    #[test]
    fn plain_enqueue_keeps_the_rules_target() {
        let (target, settings) = (target(), Settings::default());
        // An open inbox, a queue without a maximum, agents busy or not preferred.
        let hours = mondays(OutsideHoursPolicy::LeaveMessage, "closed");
        let agents = vec![agent("a", 0, 2)];
        let mut s = situation(&target, &settings, &agents);
        s.hours = Some(&hours);
        s.waiting = 50;
        assert_eq!(decide(&s), RouteDecision::Enqueue(plain_entry(&target)));
    }

    #[test]
    fn overflow_resolves_to_a_team_only_when_there_is_another_one() {
        let mut settings = Settings::default();
        let leave = Overflow::LeaveMessage(settings.leave_message_text.clone());
        assert_eq!(
            overflow(&settings, team(1), OverflowAction::OverflowTeam),
            leave
        );
        settings.overflow_team_id = team(9);
        assert_eq!(
            overflow(&settings, team(1), OverflowAction::OverflowTeam),
            Overflow::Team(Uuid::from_u128(9))
        );
        assert_eq!(
            overflow(&settings, None, OverflowAction::OverflowTeam),
            Overflow::Team(Uuid::from_u128(9))
        );
        assert_eq!(
            overflow(&settings, team(9), OverflowAction::OverflowTeam),
            leave
        );
        assert_eq!(
            overflow(&settings, team(1), OverflowAction::LeaveMessage),
            leave
        );
    }
}
