//! Teams, agents, skills.

use std::collections::{HashMap, HashSet};

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::routing::v1::{Agent, Presence, Skill, SkillLevel, StaffRole, Team};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

use crate::domain::select::Candidate;
use helpdesk_kit::storage::StorageName;

/// A stored team.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TeamRow {
    pub id: Uuid,
    pub account_id: String,
    pub name: String,
    pub created_at: DateTime<Utc>,
    pub csat_sum: i64,
    pub csat_count: i64,
}

/// An average of `count` ratings summing to `sum` (0 without ratings).
pub fn csat_average(sum: i64, count: i64) -> f64 {
    if count == 0 {
        0.0
    } else {
        sum as f64 / count as f64
    }
}

impl TeamRow {
    /// As the API shows it.
    pub fn to_proto(&self) -> Team {
        Team {
            id: self.id.to_string(),
            account_id: self.account_id.clone(),
            name: self.name.clone(),
            create_time: Some(to_timestamp(self.created_at)),
            csat_average: csat_average(self.csat_sum, self.csat_count),
            csat_count: self.csat_count,
        }
    }
}

/// Inserts a team.
pub async fn insert_team(
    conn: &mut PgConnection,
    account: &str,
    name: &str,
) -> Result<TeamRow, sqlx::Error> {
    sqlx::query_as("INSERT INTO teams (id, account_id, name) VALUES ($1, $2, $3) RETURNING id, account_id, name, created_at, csat_sum, csat_count")
        .bind(Uuid::now_v7())
        .bind(account)
        .bind(name)
        .fetch_one(conn)
        .await
}

/// The account's teams by name.
pub async fn list_teams(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<TeamRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT id, account_id, name, created_at, csat_sum, csat_count FROM teams
         WHERE account_id = $1 ORDER BY name",
    )
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Which of `ids` are not teams of the account.
pub async fn unknown_teams(
    conn: &mut PgConnection,
    account: &str,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let known: Vec<Uuid> =
        sqlx::query_scalar("SELECT id FROM teams WHERE account_id = $1 AND id = ANY($2)")
            .bind(account)
            .bind(ids)
            .fetch_all(conn)
            .await?;
    Ok(ids.iter().filter(|i| !known.contains(i)).copied().collect())
}

/// Records an inbox the conversation service announced.
pub async fn know_inbox(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO known_inboxes (account_id, inbox_id) VALUES ($1, $2) ON CONFLICT DO NOTHING",
    )
    .bind(account)
    .bind(id)
    .execute(conn)
    .await?;
    Ok(())
}

/// Those of `ids` that are not inboxes of the account.
pub async fn unknown_inboxes(
    conn: &mut PgConnection,
    account: &str,
    ids: &[Uuid],
) -> Result<Vec<Uuid>, sqlx::Error> {
    let known: Vec<Uuid> = sqlx::query_scalar(
        "SELECT inbox_id FROM known_inboxes WHERE account_id = $1 AND inbox_id = ANY($2)",
    )
    .bind(account)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(ids.iter().filter(|i| !known.contains(i)).copied().collect())
}

/// A stored agent.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AgentRow {
    pub account_id: String,
    pub id: String,
    pub name: String,
    pub email: String,
    pub languages: Vec<String>,
    pub max_chats: i32,
    pub channel_capacity: Json<HashMap<String, i32>>,
    pub presence: String,
    pub presence_at: DateTime<Utc>,
    pub last_seen_at: Option<DateTime<Utc>>,
    pub last_assigned_at: Option<DateTime<Utc>>,
    pub resolved_count: i64,
    pub csat_sum: i64,
    pub csat_count: i64,
    pub role: String,
}

impl AgentRow {
    /// The role colleagues see.
    pub fn role(&self) -> StaffRole {
        StaffRole::from_storage(&self.role)
    }

    /// Current presence.
    pub fn presence(&self) -> Presence {
        Presence::from_storage(&self.presence)
    }

    /// Average CSAT, 0 when none.
    pub fn csat_average(&self) -> f64 {
        csat_average(self.csat_sum, self.csat_count)
    }
}

/// An agent with its teams, skills and load.
#[derive(Debug, Clone)]
pub struct AgentView {
    pub row: AgentRow,
    pub teams: Vec<Uuid>,
    pub skills: Vec<(String, i32)>,
    pub active: i32,
    pub active_by_channel: HashMap<String, i32>,
}

impl AgentView {
    /// As the API shows it.
    pub fn to_proto(&self) -> Agent {
        let r = &self.row;
        Agent {
            id: r.id.clone(),
            account_id: r.account_id.clone(),
            name: r.name.clone(),
            email: r.email.clone(),
            team_ids: self.teams.iter().map(Uuid::to_string).collect(),
            languages: r.languages.clone(),
            skills: self
                .skills
                .iter()
                .map(|(name, level)| Skill {
                    name: name.clone(),
                    level: SkillLevel::try_from(*level).unwrap_or_default() as i32,
                })
                .collect(),
            max_chats: r.max_chats,
            channel_capacity: r.channel_capacity.0.clone(),
            presence: r.presence() as i32,
            presence_time: Some(to_timestamp(r.presence_at)),
            active_chats: self.active,
            resolved_count: r.resolved_count,
            csat_average: r.csat_average(),
            csat_count: r.csat_count,
            role: r.role() as i32,
        }
    }

    /// As the dispatcher sees it.
    pub fn candidate(&self) -> Candidate {
        Candidate {
            id: self.row.id.clone(),
            name: self.row.name.clone(),
            max_chats: self.row.max_chats,
            channel_capacity: self.row.channel_capacity.0.clone(),
            active: self.active,
            active_by_channel: self.active_by_channel.clone(),
            teams: self.teams.iter().copied().collect::<HashSet<_>>(),
            skills: self.skills.iter().cloned().collect(),
            last_assigned_at: self.row.last_assigned_at,
            csat_average: self.row.csat_average(),
            role: self.row.role(),
        }
    }
}

const AGENT_COLUMNS: &str = "account_id, id, name, email, languages, max_chats, channel_capacity, presence, presence_at, \
    last_seen_at, last_assigned_at, resolved_count, csat_sum, csat_count, role";

/// An agent's teams (none when not in the directory).
pub async fn agent_teams(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
) -> Result<HashSet<Uuid>, sqlx::Error> {
    let teams: Vec<Uuid> = sqlx::query_scalar(
        "SELECT team_id FROM agent_teams WHERE account_id = $1 AND agent_id = $2",
    )
    .bind(account)
    .bind(agent)
    .fetch_all(conn)
    .await?;
    Ok(teams.into_iter().collect())
}

/// Inserts an agent (teams and skills separately).
pub async fn insert_agent(conn: &mut PgConnection, a: &AgentRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO agents (account_id, id, name, email, languages, max_chats, channel_capacity, role)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&a.account_id)
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.email)
    .bind(&a.languages)
    .bind(a.max_chats)
    .bind(&a.channel_capacity)
    .bind(&a.role)
    .execute(conn)
    .await?;
    Ok(())
}

/// Writes the editable fields back.
pub async fn update_agent(conn: &mut PgConnection, a: &AgentRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE agents SET name = $3, email = $4, languages = $5, max_chats = $6, channel_capacity = $7, role = $8,
             updated_at = now()
         WHERE account_id = $1 AND id = $2",
    )
    .bind(&a.account_id)
    .bind(&a.id)
    .bind(&a.name)
    .bind(&a.email)
    .bind(&a.languages)
    .bind(a.max_chats)
    .bind(&a.channel_capacity)
    .bind(&a.role)
    .execute(conn)
    .await?;
    Ok(())
}

/// Replaces the agent's teams and skills.
pub async fn set_teams_and_skills(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
    teams: &[Uuid],
    skills: &[(String, i32)],
) -> Result<(), sqlx::Error> {
    sqlx::query("DELETE FROM agent_teams WHERE account_id = $1 AND agent_id = $2")
        .bind(account)
        .bind(agent)
        .execute(&mut *conn)
        .await?;
    sqlx::query("DELETE FROM agent_skills WHERE account_id = $1 AND agent_id = $2")
        .bind(account)
        .bind(agent)
        .execute(&mut *conn)
        .await?;
    for t in teams {
        sqlx::query("INSERT INTO agent_teams (account_id, agent_id, team_id) VALUES ($1, $2, $3)")
            .bind(account)
            .bind(agent)
            .bind(t)
            .execute(&mut *conn)
            .await?;
    }
    for (skill, level) in skills {
        sqlx::query(
            "INSERT INTO agent_skills (account_id, agent_id, skill, level) VALUES ($1, $2, $3, $4)",
        )
        .bind(account)
        .bind(agent)
        .bind(skill)
        .bind(level)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

/// One agent row, optionally locked.
pub async fn get_agent_row(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
    lock: bool,
) -> Result<Option<AgentRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {AGENT_COLUMNS} FROM agents WHERE account_id = $1 AND id = $2{}",
        if lock { " FOR UPDATE" } else { "" }
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Agents of the account (optionally only one, only online, only of a team), with
/// teams, skills and open-chat counts.
pub async fn agent_views(
    conn: &mut PgConnection,
    account: &str,
    only_id: Option<&str>,
    online_only: bool,
    team: Option<Uuid>,
) -> Result<Vec<AgentView>, sqlx::Error> {
    // One round trip: each agent with its teams, skills and open chats per channel.
    let rows = sqlx::query(&format!(
        "SELECT {AGENT_COLUMNS},
            ARRAY(SELECT t.team_id FROM agent_teams t
                  WHERE t.account_id = a.account_id AND t.agent_id = a.id ORDER BY t.team_id) AS team_ids,
            ARRAY(SELECT s.skill FROM agent_skills s
                  WHERE s.account_id = a.account_id AND s.agent_id = a.id ORDER BY s.skill) AS skill_names,
            ARRAY(SELECT s.level FROM agent_skills s
                  WHERE s.account_id = a.account_id AND s.agent_id = a.id ORDER BY s.skill) AS skill_levels,
            ARRAY(SELECT x.channel FROM assignments x
                  WHERE x.account_id = a.account_id AND x.agent_id = a.id) AS chat_channels
         FROM agents a WHERE account_id = $1 AND ($2::text IS NULL OR id = $2)
         AND (NOT $3 OR presence = 'online')
         AND ($4::uuid IS NULL OR EXISTS (SELECT 1 FROM agent_teams t WHERE t.account_id = a.account_id AND t.agent_id = a.id AND t.team_id = $4))
         ORDER BY id"
    ))
    .bind(account)
    .bind(only_id)
    .bind(online_only)
    .bind(team)
    .fetch_all(&mut *conn)
    .await?;
    rows.iter()
        .map(|r| {
            let row = AgentRow::from_row(r)?;
            let names: Vec<String> = r.try_get("skill_names")?;
            let levels: Vec<i32> = r.try_get("skill_levels")?;
            let mut by_channel: HashMap<String, i32> = HashMap::new();
            for channel in r.try_get::<Vec<String>, _>("chat_channels")? {
                *by_channel.entry(channel).or_default() += 1;
            }
            Ok(AgentView {
                teams: r.try_get("team_ids")?,
                skills: names.into_iter().zip(levels).collect(),
                active: by_channel.values().sum(),
                active_by_channel: by_channel,
                row,
            })
        })
        .collect()
}

/// Sets presence; returns the previous one (None when the agent does not exist).
pub async fn set_presence(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
    presence: Presence,
) -> Result<Option<Presence>, sqlx::Error> {
    let before: Option<String> = sqlx::query_scalar(
        "SELECT presence FROM agents WHERE account_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(before) = before else {
        return Ok(None);
    };
    let before = Presence::from_storage(&before);
    if before != presence {
        sqlx::query("UPDATE agents SET presence = $3, presence_at = now() WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .bind(presence.storage_name())
            .execute(conn)
            .await?;
    }
    Ok(Some(before))
}

/// Records a heartbeat; returns the stored `last_seen_at`.
pub async fn touch(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar("UPDATE agents SET last_seen_at = now() WHERE account_id = $1 AND id = $2 RETURNING last_seen_at")
        .bind(account)
        .bind(id)
        .fetch_optional(conn)
        .await
}

/// Credits agent `id` with resolving a conversation, once per conversation: a
/// conversation resolved again (after a reopen) adds nothing.
pub async fn credit_resolution(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
    conversation: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "WITH first AS (
             INSERT INTO resolution_credits (account_id, conversation_id, agent_id) VALUES ($1, $3, $2)
             ON CONFLICT DO NOTHING RETURNING 1
         )
         UPDATE agents SET resolved_count = resolved_count + 1
         WHERE account_id = $1 AND id = $2 AND EXISTS (SELECT 1 FROM first)",
    )
    .bind(account)
    .bind(id)
    .bind(conversation)
    .execute(conn)
    .await?;
    Ok(())
}

/// Who a rating counts for: the conversation's agent (empty: none) and team.
#[derive(Debug, Clone, Copy)]
pub struct Rated<'a> {
    pub agent: &'a str,
    pub team: Option<Uuid>,
}

/// Adds `delta` ratings summing to `sum` to the totals of `who`.
async fn add_rating(
    conn: &mut PgConnection,
    account: &str,
    who: Rated<'_>,
    sum: i64,
    delta: i64,
) -> Result<(), sqlx::Error> {
    if !who.agent.is_empty() {
        sqlx::query(
            "UPDATE agents SET csat_sum = csat_sum + $3, csat_count = csat_count + $4
             WHERE account_id = $1 AND id = $2",
        )
        .bind(account)
        .bind(who.agent)
        .bind(sum)
        .bind(delta)
        .execute(&mut *conn)
        .await?;
    }
    if let Some(team) = who.team {
        sqlx::query(
            "UPDATE teams SET csat_sum = csat_sum + $3, csat_count = csat_count + $4
             WHERE account_id = $1 AND id = $2",
        )
        .bind(account)
        .bind(team)
        .bind(sum)
        .bind(delta)
        .execute(conn)
        .await?;
    }
    Ok(())
}

/// Records a conversation's CSAT rating for its agent and team, replacing an earlier
/// rating of the same conversation (which is taken off the totals it counted for).
pub async fn credit_rating(
    conn: &mut PgConnection,
    account: &str,
    who: Rated<'_>,
    conversation: Uuid,
    rating: i64,
) -> Result<(), sqlx::Error> {
    let earlier: Option<(String, Option<Uuid>, i32)> = sqlx::query_as(
        "SELECT agent_id, team_id, rating FROM conversation_ratings
         WHERE account_id = $1 AND conversation_id = $2 FOR UPDATE",
    )
    .bind(account)
    .bind(conversation)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((agent, team, old)) = &earlier {
        let before = Rated { agent, team: *team };
        add_rating(conn, account, before, -i64::from(*old), -1).await?;
    }
    sqlx::query(
        "INSERT INTO conversation_ratings (account_id, conversation_id, agent_id, team_id, rating)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account_id, conversation_id) DO UPDATE SET agent_id = EXCLUDED.agent_id,
           team_id = EXCLUDED.team_id, rating = EXCLUDED.rating",
    )
    .bind(account)
    .bind(conversation)
    .bind(who.agent)
    .bind(who.team)
    .bind(rating as i32)
    .execute(&mut *conn)
    .await?;
    add_rating(conn, account, who, rating, 1).await
}
