//! Teams, agents and presence.

use std::time::Duration;

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::to_timestamp;
use helpdesk_kit::timers;
use helpdesk_proto::routing::v1::*;
use prost::Message as _;
use sqlx::types::Json;
use uuid::Uuid;

use super::{Api, PresenceStream};
use crate::domain::is_name;
use crate::engine::{self, IDLE_TIMER};
use crate::store::{self, config, directory};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Event;
use helpdesk_kit::live::Scope;

/// Channel kinds a capacity may name.
const CHANNELS: &[&str] = &["web_widget", "mobile_sdk", "api", "email"];

/// Validated agent fields.
struct AgentInput {
    teams: Vec<Uuid>,
    skills: Vec<(String, i32)>,
    role: StaffRole,
}

fn check_agent(v: &mut Violations, a: &Agent, paths: Option<&[String]>) -> AgentInput {
    let wants = |p: &str| paths.is_none_or(|ps| ps.iter().any(|x| x == p));
    if wants("name") && (a.name.trim().is_empty() || a.name.chars().count() > 200) {
        v.add("agent.name", "required, at most 200 characters");
    }
    if wants("email") && a.email.len() > 254 {
        v.add("agent.email", "at most 254 characters");
    }
    if wants("max_chats") && !(1..=100).contains(&a.max_chats) {
        v.add("agent.max_chats", "must be 1..=100");
    }
    if wants("channel_capacity") {
        for (channel, cap) in &a.channel_capacity {
            if !CHANNELS.contains(&channel.as_str()) {
                v.add(
                    format!("agent.channel_capacity.{channel}"),
                    format!("unknown channel; one of {}", CHANNELS.join(", ")),
                );
            } else if !(0..=100).contains(cap) {
                v.add(
                    format!("agent.channel_capacity.{channel}"),
                    "must be 0..=100",
                );
            }
        }
    }
    if wants("languages")
        && (a.languages.len() > 20 || a.languages.iter().any(|l| l.is_empty() || l.len() > 16))
    {
        v.add(
            "agent.languages",
            "at most 20 language codes of 1-16 characters",
        );
    }
    let mut teams = Vec::new();
    if wants("team_ids") {
        for (i, t) in a.team_ids.iter().enumerate() {
            match t.parse::<Uuid>() {
                Ok(id) => teams.push(id),
                Err(_) => v.add(format!("agent.team_ids[{i}]"), "must be a UUID"),
            }
        }
    }
    let mut skills = Vec::new();
    if wants("skills") {
        for (i, s) in a.skills.iter().enumerate() {
            let name = s.name.trim().to_lowercase();
            if !is_name(&name) {
                v.add(
                    format!("agent.skills[{i}].name"),
                    "1-64 characters of [a-z0-9_-]",
                );
            }
            let level: SkillLevel = helpdesk_kit::validate::enumeration(
                v,
                &format!("agent.skills[{i}].level"),
                s.level,
            );
            if level == SkillLevel::Unspecified {
                v.add(
                    format!("agent.skills[{i}].level"),
                    "primary, secondary or general",
                );
            }
            if skills.iter().any(|(n, _)| *n == name) {
                v.add(format!("agent.skills[{i}].name"), "listed twice");
            }
            skills.push((name, level as i32));
        }
    }
    let role = if wants("role") {
        let role: StaffRole = helpdesk_kit::validate::enumeration(v, "agent.role", a.role);
        if a.role == 0 && paths.is_some() {
            v.add("agent.role", "agent, supervisor or admin");
        }
        role
    } else {
        StaffRole::Unspecified
    };
    AgentInput {
        teams,
        skills,
        role: if role == StaffRole::Unspecified {
            StaffRole::Agent
        } else {
            role
        },
    }
}

impl Api {
    pub(crate) async fn create_team_impl(
        &self,
        c: &Caller,
        req: CreateTeamRequest,
    ) -> Result<Team> {
        c.claims.require(&[Role::Admin])?;
        let name = req.team.map(|t| t.name).unwrap_or_default();
        let mut v = Violations::new();
        if name.trim().is_empty() || name.chars().count() > 100 {
            v.add("team.name", "required, at most 100 characters");
        }
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        match directory::insert_team(&mut conn, c.account(), name.trim()).await {
            Ok(t) => Ok(t.to_proto()),
            Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Err(
                helpdesk_kit::grpc::invalid_field("team.name", "a team with this name exists")
                    .into(),
            ),
            Err(e) => Err(e.into()),
        }
    }

    pub(crate) async fn list_teams_impl(&self, c: &Caller) -> Result<ListTeamsResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(ListTeamsResponse {
            teams: directory::list_teams(&mut conn, c.account())
                .await?
                .iter()
                .map(|t| t.to_proto())
                .collect(),
        })
    }

    pub(crate) async fn create_agent_impl(
        &self,
        c: &Caller,
        req: CreateAgentRequest,
    ) -> Result<Agent> {
        c.claims.require(&[Role::Admin])?;
        let a = req.agent.unwrap_or_default();
        let mut v = Violations::new();
        if a.id.is_empty() || a.id.len() > 128 || a.id.contains(char::is_whitespace) {
            v.add(
                "agent.id",
                "required: the agent's user id (token subject), at most 128 characters",
            );
        }
        let input = check_agent(&mut v, &a, None);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let unknown = directory::unknown_teams(&mut tx, c.account(), &input.teams).await?;
        if !unknown.is_empty() {
            return Err(helpdesk_kit::grpc::invalid_field(
                "agent.team_ids",
                &format!("unknown team {}", unknown[0]),
            )
            .into());
        }
        if directory::get_agent_row(&mut tx, c.account(), &a.id, false)
            .await?
            .is_some()
        {
            return Err(Error::Status(tonic::Status::already_exists(format!(
                "agent {} exists",
                a.id
            ))));
        }
        let row = directory::AgentRow {
            account_id: c.account().to_string(),
            id: a.id.clone(),
            name: a.name.trim().to_string(),
            email: a.email.clone(),
            languages: a.languages.clone(),
            max_chats: a.max_chats,
            channel_capacity: Json(a.channel_capacity.clone()),
            presence: "offline".into(),
            presence_at: chrono::Utc::now(),
            last_seen_at: None,
            last_assigned_at: None,
            resolved_count: 0,
            csat_sum: 0,
            csat_count: 0,
            role: input.role.storage_name().to_string(),
        };
        directory::insert_agent(&mut tx, &row).await?;
        directory::set_teams_and_skills(&mut tx, c.account(), &a.id, &input.teams, &input.skills)
            .await?;
        let view = directory::agent_views(&mut tx, c.account(), Some(&a.id), false, None).await?;
        let agent = view
            .first()
            .map(|v| v.to_proto())
            .ok_or(Error::NotFound("agent"))?;
        let event = AgentCreated {
            agent: Some(agent.clone()),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(&mut tx, &c.origin(), event).await?;
        tx.commit().await?;
        Ok(agent)
    }

    pub(crate) async fn get_agent_impl(&self, c: &Caller, req: GetAgentRequest) -> Result<Agent> {
        c.claims.require_staff()?;
        let id = if req.id.is_empty() {
            c.claims.sub.clone()
        } else {
            req.id
        };
        let mut conn = self.pool.acquire().await?;
        let view = directory::agent_views(&mut conn, c.account(), Some(&id), false, None).await?;
        view.first()
            .map(|v| v.to_proto())
            .ok_or(Error::NotFound("agent"))
    }

    pub(crate) async fn list_agents_impl(
        &self,
        c: &Caller,
        req: ListAgentsRequest,
    ) -> Result<ListAgentsResponse> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let team = if req.team_id.is_empty() {
            None
        } else {
            let t = req.team_id.parse::<Uuid>().ok();
            v.check(t.is_none(), "team_id", "must be a UUID");
            t
        };
        if req.page_size < 0 {
            v.add("page_size", "must not be negative");
        }
        let after = match req.page_token.as_str() {
            "" => None,
            t => {
                let decoded = helpdesk_kit::page::decode_token(t);
                v.check(decoded.is_none(), "page_token", "malformed page token");
                decoded
            }
        };
        v.into_result()?;
        let size = if req.page_size == 0 {
            50
        } else {
            req.page_size.min(200) as usize
        };
        let mut v = Violations::new();
        let presence: Presence =
            helpdesk_kit::validate::enumeration(&mut v, "presence", req.presence);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let views = directory::agent_views(
            &mut conn,
            c.account(),
            None,
            presence == Presence::Online,
            team,
        )
        .await?;
        let mut agents: Vec<Agent> = views
            .iter()
            .filter(|a| presence == Presence::Unspecified || a.row.presence() == presence)
            .filter(|a| after.as_ref().is_none_or(|after| a.row.id > *after))
            .map(|a| a.to_proto())
            .take(size + 1)
            .collect();
        let next_page_token = if agents.len() > size {
            agents.truncate(size);
            agents
                .last()
                .map(|a| helpdesk_kit::page::encode_token(&a.id))
                .unwrap_or_default()
        } else {
            String::new()
        };
        Ok(ListAgentsResponse {
            agents,
            next_page_token,
        })
    }

    pub(crate) async fn update_agent_impl(
        &self,
        c: &Caller,
        req: UpdateAgentRequest,
    ) -> Result<Agent> {
        c.claims.require(&[Role::Admin])?;
        let a = req.agent.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        const PATHS: &[&str] = &[
            "name",
            "email",
            "team_ids",
            "languages",
            "skills",
            "max_chats",
            "channel_capacity",
            "role",
        ];
        if paths.is_empty() {
            v.add("update_mask", format!("required: {}", PATHS.join(", ")));
        }
        for p in &paths {
            if !PATHS.contains(&p.as_str()) {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        let input = check_agent(&mut v, &a, Some(&paths));
        v.into_result()?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        store::lock_account(&mut tx, c.account()).await?;
        let unknown = directory::unknown_teams(&mut tx, c.account(), &input.teams).await?;
        if !unknown.is_empty() {
            return Err(helpdesk_kit::grpc::invalid_field(
                "agent.team_ids",
                &format!("unknown team {}", unknown[0]),
            )
            .into());
        }
        let view = directory::agent_views(&mut tx, c.account(), Some(&a.id), false, None).await?;
        let current = view.first().ok_or(Error::NotFound("agent"))?;
        let mut row = current.row.clone();
        let (mut teams, mut skills) = (current.teams.clone(), current.skills.clone());
        for p in &paths {
            match p.as_str() {
                "name" => row.name = a.name.trim().to_string(),
                "email" => row.email = a.email.clone(),
                "languages" => row.languages = a.languages.clone(),
                "max_chats" => row.max_chats = a.max_chats,
                "channel_capacity" => row.channel_capacity = Json(a.channel_capacity.clone()),
                "team_ids" => teams = input.teams.clone(),
                "skills" => skills = input.skills.clone(),
                "role" => row.role = input.role.storage_name().to_string(),
                _ => {}
            }
        }
        directory::update_agent(&mut tx, &row).await?;
        directory::set_teams_and_skills(&mut tx, c.account(), &row.id, &teams, &skills).await?;
        let view = directory::agent_views(&mut tx, c.account(), Some(&row.id), false, None).await?;
        let agent = view
            .first()
            .map(|v| v.to_proto())
            .ok_or(Error::NotFound("agent"))?;
        let event = AgentUpdated {
            agent: Some(agent.clone()),
            changed_fields: paths.clone(),
            ..Default::default()
        };
        helpdesk_kit::outbox::emit(&mut tx, &c.origin(), event).await?;
        tx.commit().await?;
        // More room, new teams or skills: waiting chats may fit now, assigned next.
        self.dispatcher.wake(c.account());
        Ok(agent)
    }

    pub(crate) async fn set_presence_impl(
        &self,
        c: &Caller,
        req: SetPresenceRequest,
    ) -> Result<Agent> {
        c.claims.require_staff()?;
        let target = if req.agent_id.is_empty() {
            c.claims.sub.clone()
        } else {
            req.agent_id.clone()
        };
        if target != c.claims.sub {
            c.claims.require(&[Role::Admin, Role::Supervisor])?;
        }
        let presence = Presence::try_from(req.presence).unwrap_or_default();
        if presence == Presence::Unspecified {
            return Err(helpdesk_kit::grpc::invalid_field(
                "presence",
                "online, away, busy or offline",
            )
            .into());
        }
        let origin = c.origin();
        // Going online takes no account lock, so it need not wait its turn.
        let _turn = match presence {
            Presence::Online => None,
            _ => Some(self.gates.enter(c.account()).await?),
        };
        let mut tx = self.pool.begin().await?;
        engine::set_presence(&mut tx, &origin, &target, presence).await?;
        let view = directory::agent_views(&mut tx, c.account(), Some(&target), false, None).await?;
        tx.commit().await?;
        // Room that came online, or chats requeued by going offline: assigned next.
        self.dispatcher.wake(c.account());
        view.first()
            .map(|v| v.to_proto())
            .ok_or(Error::NotFound("agent"))
    }

    /// Records that the agent's workbench is alive and moves its idle deadline.
    pub(crate) async fn touch(&self, account: &str, agent: &str) -> Result<()> {
        let mut tx = self.pool.begin().await?;
        let seen = directory::touch(&mut tx, account, agent)
            .await?
            .ok_or(Error::NotFound("agent"))?;
        let idle = config::settings(&mut tx, account)
            .await?
            .presence_idle_seconds
            .max(5);
        let due = seen + chrono::Duration::seconds(i64::from(idle));
        let payload = serde_json::json!({ "account_id": account });
        timers::schedule(
            &mut tx,
            IDLE_TIMER,
            agent,
            due,
            &crate::timers::idle_fingerprint(seen),
            payload,
        )
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn heartbeat_impl(&self, c: &Caller) -> Result<Agent> {
        c.claims.require_staff()?;
        self.touch(c.account(), &c.claims.sub).await?;
        self.get_agent_impl(c, GetAgentRequest { id: String::new() })
            .await
    }

    pub(crate) async fn watch_presence_impl(&self, c: Caller) -> Result<PresenceStream> {
        c.claims.require_staff()?;
        let account = c.account().to_string();
        let agent = c.claims.sub.clone();
        self.touch(&account, &agent).await?;
        let idle = {
            let mut conn = self.pool.acquire().await?;
            config::settings(&mut conn, &account)
                .await?
                .presence_idle_seconds
                .max(5)
        };
        let beat = Duration::from_secs((idle as u64 / 3).clamp(1, 10));
        let mut watch = self.live.watch(&c, Scope::Key(agent.clone())).await?;
        let api = self.clone();
        let shutdown = self.shutdown.clone();
        let stream = async_stream::stream! {
            let mut ticker = tokio::time::interval(beat);
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {
                        if let Err(e) = api.touch(&account, &agent).await {
                            tracing::warn!(error = %e, "presence heartbeat failed");
                        }
                    }
                    msg = watch.next() => {
                        let msg = match msg {
                            Some(Ok(msg)) => msg,
                            Some(Err(status)) => {
                                yield Err(status);
                                break;
                            }
                            None => break,
                        };
                        if msg.kind != AgentPresenceChanged::KIND {
                            continue;
                        }
                        let Ok(e) = AgentPresenceChanged::decode(msg.payload) else { continue };
                        if e.agent_id == agent {
                            let time = e.meta.and_then(|m| m.occurred_at).or_else(|| Some(to_timestamp(chrono::Utc::now())));
                            yield Ok(PresenceUpdate { agent_id: e.agent_id, presence: e.to, time });
                        }
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }

    pub(crate) async fn watch_agents_impl(
        &self,
        c: Caller,
        req: WatchAgentsRequest,
    ) -> Result<super::BoardStream> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let team = if req.team_id.is_empty() {
            None
        } else {
            let mut v = Violations::new();
            let t = req.team_id.parse::<Uuid>().ok();
            v.check(t.is_none(), "team_id", "must be a UUID");
            v.into_result()?;
            t
        };
        let pool = self.pool.clone();
        let shutdown = self.shutdown.clone();
        let account = c.account().to_string();
        // Derived like the queue figures: read once a second, sent when it changed.
        let stream = async_stream::stream! {
            let mut last: Option<Vec<Agent>> = None;
            let mut ticker = tokio::time::interval(Duration::from_secs(1));
            loop {
                tokio::select! {
                    _ = shutdown.cancelled() => break,
                    _ = ticker.tick() => {}
                }
                let read = async {
                    let mut conn = pool.acquire().await?;
                    directory::agent_views(&mut conn, &account, None, false, team).await
                };
                match read.await {
                    Ok(views) => {
                        let agents: Vec<Agent> = views.iter().map(directory::AgentView::to_proto).collect();
                        if last.as_ref() != Some(&agents) {
                            last = Some(agents.clone());
                            yield Ok(AgentsBoard {
                                agents,
                                time: Some(to_timestamp(chrono::Utc::now())),
                            });
                        }
                    }
                    Err(e) => {
                        yield Err(tonic::Status::from(Error::from(e)));
                        break;
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }
}
