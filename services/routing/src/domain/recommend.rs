//! Ranking transfer targets: online agents with a free seat, by skill match, free
//! seats and satisfaction, each with the reasons behind its score. Agents who
//! declined the conversation recently rank last.

use std::collections::HashSet;

use super::select::Candidate;

/// Weight of a skill level (1 primary, 2 secondary, 3 general) in a match.
pub fn skill_match(level: i32) -> f64 {
    match level {
        1 => 0.8,
        2 => 0.6,
        _ => 0.4,
    }
}

/// One recommended receiver.
#[derive(Debug, Clone, PartialEq)]
pub struct Recommendation {
    pub agent_id: String,
    pub name: String,
    /// 0 to 1, higher is better.
    pub score: f64,
    pub reasons: Vec<String>,
    pub active_chats: i32,
    pub max_chats: i32,
    /// Declined or let this conversation's transfer time out recently.
    pub declined_recently: bool,
}

/// Ranks `candidates` (online agents) who have a free seat on `channel`, other than
/// `current` (the conversation's agent). With `skill`, only agents having it, scored
/// by its level. Score: skill match 50 %, free seats 30 %, satisfaction 20 % (an agent
/// without ratings counts as average).
pub fn rank(
    candidates: &[Candidate],
    channel: &str,
    skill: Option<&str>,
    current: &str,
    declined: &HashSet<String>,
) -> Vec<Recommendation> {
    let mut out: Vec<Recommendation> = candidates
        .iter()
        .filter(|c| c.id != current && c.has_room(channel))
        .filter_map(|c| {
            let mut reasons = Vec::new();
            let skill_part = match skill {
                Some(s) => {
                    let level = *c.skills.get(s)?;
                    let kind = match level {
                        1 => "primary",
                        2 => "secondary",
                        _ => "general",
                    };
                    reasons.push(format!("{kind} skill {s}"));
                    skill_match(level)
                }
                None => 0.0,
            };
            let free = f64::from(c.max_chats - c.active) / f64::from(c.max_chats.max(1));
            reasons.push(format!("{} of {} chats", c.active, c.max_chats));
            let satisfaction = if c.csat_average > 0.0 {
                reasons.push(format!("CSAT {:.1}", c.csat_average));
                c.csat_average / 5.0
            } else {
                reasons.push("no ratings yet".into());
                0.5
            };
            let declined_recently = declined.contains(&c.id);
            if declined_recently {
                reasons.push("declined this conversation recently".into());
            }
            Some(Recommendation {
                agent_id: c.id.clone(),
                name: c.name.clone(),
                score: 0.5 * skill_part + 0.3 * free + 0.2 * satisfaction,
                reasons,
                active_chats: c.active,
                max_chats: c.max_chats,
                declined_recently,
            })
        })
        .collect();
    out.sort_by(|a, b| {
        a.declined_recently
            .cmp(&b.declined_recently)
            .then(b.score.total_cmp(&a.score))
            .then_with(|| a.agent_id.cmp(&b.agent_id))
    });
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn agent(id: &str, active: i32, max: i32, skill: Option<(&str, i32)>, csat: f64) -> Candidate {
        Candidate {
            id: id.into(),
            name: id.to_uppercase(),
            max_chats: max,
            channel_capacity: Default::default(),
            active,
            active_by_channel: if active > 0 {
                [("web".to_string(), active)].into()
            } else {
                Default::default()
            },
            teams: Default::default(),
            skills: skill
                .map(|(s, l)| [(s.to_string(), l)].into())
                .unwrap_or_default(),
            last_assigned_at: None,
            csat_average: csat,
            role: helpdesk_proto::routing::v1::StaffRole::Agent,
        }
    }

    #[test]
    fn skill_level_then_free_seats_then_satisfaction_and_decliners_last() {
        let agents = vec![
            agent("ana", 1, 3, Some(("refunds", 1)), 0.0), // the conversation's agent
            agent("bob", 0, 3, Some(("refunds", 2)), 5.0),
            agent("cy", 2, 3, Some(("refunds", 1)), 4.0),
            agent("di", 0, 3, Some(("refunds", 1)), 4.0),
            agent("ed", 3, 3, Some(("refunds", 1)), 5.0), // full
            agent("fay", 0, 3, None, 5.0),                // lacks the skill
            agent("gus", 0, 3, Some(("refunds", 1)), 5.0), // declined
        ];
        let declined: HashSet<String> = ["gus".to_string()].into();
        let ranked = rank(&agents, "web", Some("refunds"), "ana", &declined);
        let order: Vec<&str> = ranked.iter().map(|r| r.agent_id.as_str()).collect();
        // A free secondary-skill agent with top ratings (0.80) beats a primary one at
        // two of three chats (0.66).
        assert_eq!(order, vec!["di", "bob", "cy", "gus"]);
        assert_eq!(
            ranked[0].reasons,
            vec!["primary skill refunds", "0 of 3 chats", "CSAT 4.0"]
        );
        assert!(ranked[3].declined_recently);
        // 0.5 * 0.8 + 0.3 * 1 + 0.2 * 0.8
        assert!((ranked[0].score - 0.86).abs() < 1e-9);
        // Without a skill filter everyone with a seat counts, by seats and satisfaction.
        let any: Vec<String> = rank(&agents, "web", None, "ana", &HashSet::new())
            .into_iter()
            .map(|r| r.agent_id)
            .collect();
        assert_eq!(any, vec!["bob", "fay", "gus", "di", "cy"]);
    }
}
