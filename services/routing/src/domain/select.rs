//! Choosing an agent for a queued conversation. Deterministic: ties break on agent id.

use std::cmp::Ordering;
use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use helpdesk_proto::routing::v1::{StaffRole, Strategy};
use uuid::Uuid;

use super::level_weight;

/// An online agent as the dispatcher sees it.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub id: String,
    pub name: String,
    pub max_chats: i32,
    pub channel_capacity: HashMap<String, i32>,
    pub active: i32,
    pub active_by_channel: HashMap<String, i32>,
    pub teams: HashSet<Uuid>,
    /// Skill → level (1 primary, 2 secondary, 3 general).
    pub skills: HashMap<String, i32>,
    pub last_assigned_at: Option<DateTime<Utc>>,
    /// Average CSAT (0 when none).
    pub csat_average: f64,
    /// The directory role (who may transfer to the agent).
    pub role: StaffRole,
}

impl Candidate {
    /// Room for one more chat on `channel`.
    pub fn has_room(&self, channel: &str) -> bool {
        self.active < self.max_chats
            && self
                .channel_capacity
                .get(channel)
                .is_none_or(|cap| self.active_by_channel.get(channel).copied().unwrap_or(0) < *cap)
    }

    /// Records one more chat on `channel`.
    pub fn take(&mut self, channel: &str, now: DateTime<Utc>) {
        self.active += 1;
        *self
            .active_by_channel
            .entry(channel.to_string())
            .or_default() += 1;
        self.last_assigned_at = Some(now);
    }

    /// Records one chat less on `channel` (its assignment ended).
    pub fn free(&mut self, channel: &str) {
        if let Some(n) = self.active_by_channel.get_mut(channel)
            && *n > 0
        {
            *n -= 1;
            self.active -= 1;
            if *n == 0 {
                self.active_by_channel.remove(channel);
            }
        }
    }
}

/// What a conversation needs.
#[derive(Debug, Clone)]
pub struct Need<'a> {
    pub team: Option<Uuid>,
    pub skills: &'a [String],
    pub channel: &'a str,
}

/// May `c` take this conversation (team, skills, room)?
pub fn eligible(c: &Candidate, need: &Need<'_>) -> bool {
    need.team.is_none_or(|t| c.teams.contains(&t))
        && need.skills.iter().all(|s| c.skills.contains_key(s))
        && c.has_room(need.channel)
}

fn load_cmp(a: &Candidate, b: &Candidate) -> Ordering {
    // a.active / a.max vs b.active / b.max without floating point.
    (i64::from(a.active) * i64::from(b.max_chats.max(1)))
        .cmp(&(i64::from(b.active) * i64::from(a.max_chats.max(1))))
}

fn recency_cmp(a: &Candidate, b: &Candidate) -> Ordering {
    // Never assigned first, then longest ago.
    match (a.last_assigned_at, b.last_assigned_at) {
        (None, None) => Ordering::Equal,
        (None, Some(_)) => Ordering::Less,
        (Some(_), None) => Ordering::Greater,
        (Some(x), Some(y)) => x.cmp(&y),
    }
}

fn skill_points(c: &Candidate, skills: &[String]) -> i64 {
    skills
        .iter()
        .filter_map(|s| c.skills.get(s))
        .map(|l| level_weight(*l))
        .sum()
}

/// Index of the best eligible candidate, or `None`. `preferred` (the last agent of
/// the contact) wins when eligible and the strategy is last-agent.
pub fn choose(
    candidates: &[Candidate],
    need: &Need<'_>,
    strategy: Strategy,
    preferred: Option<&str>,
) -> Option<usize> {
    let eligible_idx: Vec<usize> = (0..candidates.len())
        .filter(|&i| eligible(&candidates[i], need))
        .collect();
    if strategy == Strategy::LastAgent
        && let Some(p) = preferred
        && let Some(&i) = eligible_idx.iter().find(|&&i| candidates[i].id == p)
    {
        return Some(i);
    }
    eligible_idx.into_iter().min_by(|&x, &y| {
        let (a, b) = (&candidates[x], &candidates[y]);
        let order = match strategy {
            Strategy::RoundRobin => recency_cmp(a, b),
            Strategy::SkillWeighted => skill_points(b, need.skills)
                .cmp(&skill_points(a, need.skills))
                .then_with(|| load_cmp(a, b))
                .then_with(|| {
                    b.csat_average
                        .partial_cmp(&a.csat_average)
                        .unwrap_or(Ordering::Equal)
                })
                .then_with(|| recency_cmp(a, b)),
            Strategy::LeastBusy | Strategy::LastAgent | Strategy::Unspecified => {
                load_cmp(a, b).then_with(|| recency_cmp(a, b))
            }
        };
        order.then_with(|| a.id.cmp(&b.id))
    })
}

/// An online agent with `active` of `max` chats, no teams or skills (for tests).
#[cfg(test)]
pub(crate) fn test_agent(id: &str, active: i32, max: i32) -> Candidate {
    Candidate {
        id: id.into(),
        name: id.into(),
        max_chats: max,
        channel_capacity: HashMap::new(),
        active,
        active_by_channel: HashMap::new(),
        teams: HashSet::new(),
        skills: HashMap::new(),
        last_assigned_at: None,
        csat_average: 0.0,
        role: StaffRole::Agent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_agent as agent;

    fn need<'a>(skills: &'a [String]) -> Need<'a> {
        Need {
            team: None,
            skills,
            channel: "web_widget",
        }
    }

    #[test]
    fn least_busy_uses_load_relative_to_capacity() {
        let agents = vec![agent("a", 2, 4), agent("b", 1, 4), agent("c", 1, 1)];
        assert_eq!(
            choose(&agents, &need(&[]), Strategy::LeastBusy, None),
            Some(1)
        );
    }

    #[test]
    fn ties_break_on_id_and_full_agents_are_skipped() {
        let agents = vec![agent("b", 0, 2), agent("a", 0, 2), agent("z", 2, 2)];
        assert_eq!(
            choose(&agents, &need(&[]), Strategy::LeastBusy, None),
            Some(1)
        );
        assert_eq!(
            choose(&[agent("z", 2, 2)], &need(&[]), Strategy::LeastBusy, None),
            None
        );
    }

    #[test]
    fn round_robin_takes_the_least_recently_assigned() {
        let now = Utc::now();
        let mut a = agent("a", 0, 5);
        a.last_assigned_at = Some(now);
        let mut b = agent("b", 3, 5);
        b.last_assigned_at = Some(now - chrono::Duration::seconds(10));
        assert_eq!(
            choose(&[a, b], &need(&[]), Strategy::RoundRobin, None),
            Some(1)
        );
    }

    #[test]
    fn skill_weighted_prefers_primary_skill() {
        let skills = vec!["billing".to_string()];
        let mut a = agent("a", 0, 5);
        a.skills.insert("billing".into(), 3);
        let mut b = agent("b", 2, 5);
        b.skills.insert("billing".into(), 1);
        let c = agent("c", 0, 5);
        assert_eq!(
            choose(&[a, b, c], &need(&skills), Strategy::SkillWeighted, None),
            Some(1)
        );
    }

    #[test]
    fn free_undoes_take_as_a_fresh_count_would_show() {
        let fresh = agent("a", 0, 2);
        let mut a = fresh.clone();
        a.take("web_widget", Utc::now());
        a.take("email", Utc::now());
        a.free("web_widget");
        assert_eq!(a.active, 1);
        assert_eq!(
            a.active_by_channel,
            HashMap::from([("email".to_string(), 1)])
        );
        a.free("email");
        a.free("email");
        assert_eq!(a.active, fresh.active);
        assert!(a.active_by_channel.is_empty());
    }

    #[test]
    fn channel_capacity_and_last_agent() {
        let mut a = agent("a", 1, 5);
        a.channel_capacity.insert("web_widget".into(), 1);
        a.active_by_channel.insert("web_widget".into(), 1);
        let b = agent("b", 3, 5);
        assert_eq!(
            choose(
                &[a.clone(), b.clone()],
                &need(&[]),
                Strategy::LastAgent,
                Some("a")
            ),
            Some(1)
        );
        a.active_by_channel.clear();
        assert_eq!(
            choose(&[a, b], &need(&[]), Strategy::LastAgent, Some("a")),
            Some(0)
        );
    }
}
