//! Transfers: request, accept, reject, cancel, list.

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::routing::v1::*;

use helpdesk_kit::event::Event;
use helpdesk_kit::live::Scope;
use prost::Message as _;

use super::config::require_team;
use super::queue::uuid_field;
use super::{Api, TransferStream};
use crate::domain::permissions::Permit;
use crate::domain::{recommend, templates};
use crate::engine::{self, Actor, Note, Target};
use crate::store::{config, directory, state, transfers};

/// Longest note a sender may attach.
const MAX_NOTE_CHARS: usize = 2_000;
/// Longest reason a receiver may give.
const MAX_REASON_CHARS: usize = 500;

fn template_proto(t: templates::Template) -> TransferTemplate {
    TransferTemplate {
        id: t.id,
        name: t.name,
        fields: t.fields,
        built_in: t.built_in,
    }
}

/// The events of a transfer's steps.
const TRANSFER_KINDS: [&str; 5] = [
    TransferRequested::KIND,
    TransferAccepted::KIND,
    TransferRejected::KIND,
    TransferTimedOut::KIND,
    TransferCancelled::KIND,
];

/// The caller as the engine sees it (staff only).
fn actor(c: &Caller) -> Result<Actor<'_>> {
    c.claims.require_staff()?;
    Ok(Actor {
        id: &c.claims.sub,
        role: c.claims.role,
    })
}

impl Api {
    pub(crate) async fn request_transfer_impl(
        &self,
        c: &Caller,
        req: RequestTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let mut v = Violations::new();
        let conversation = uuid_field("conversation_id", &req.conversation_id);
        let team = if req.to_team_id.is_empty() {
            None
        } else {
            let team = req.to_team_id.parse::<uuid::Uuid>().ok();
            v.check(team.is_none(), "to_team_id", "must be a UUID");
            team
        };
        let skill = req.to_skill.trim().to_lowercase();
        let targets = [&req.to_agent_id, &req.to_team_id, &skill]
            .iter()
            .filter(|t| !t.is_empty())
            .count();
        v.check(
            targets == 0,
            "to_agent_id",
            "required (or to_team_id, or to_skill)",
        );
        v.check(
            targets > 1,
            if req.to_team_id.is_empty() {
                "to_skill"
            } else {
                "to_team_id"
            },
            "give one of an agent, a team or a skill",
        );
        v.check(
            !skill.is_empty() && !crate::domain::is_name(&skill),
            "to_skill",
            "1-64 characters of [a-z0-9_-]",
        );
        v.check(
            req.note.chars().count() > MAX_NOTE_CHARS,
            "note",
            &format!("at most {MAX_NOTE_CHARS} characters"),
        );
        let template = if req.template_id.is_empty() {
            v.check(!req.fields.is_empty(), "fields", "only with a template_id");
            None
        } else {
            let mut conn = self.pool.acquire().await?;
            let found = self
                .templates(&mut conn, c.account())
                .await?
                .into_iter()
                .find(|t| t.id == req.template_id);
            v.check(found.is_none(), "template_id", "unknown template");
            found
        };
        if let Some(t) = &template {
            for (name, value) in &req.fields {
                v.check(
                    !t.fields.contains(name),
                    &format!("fields[{name}]"),
                    "not a field of the template",
                );
                v.check(
                    value.chars().count() > templates::MAX_FIELD_CHARS,
                    &format!("fields[{name}]"),
                    &format!("at most {} characters", templates::MAX_FIELD_CHARS),
                );
            }
        }
        v.into_result()?;
        let conversation = conversation?;
        let to = match team {
            Some(team) => Target::Team(team),
            None if !skill.is_empty() => Target::Skill(&skill),
            None => Target::Agent(&req.to_agent_id),
        };
        let note = Note {
            text: req.note.clone(),
            template_id: req.template_id.clone(),
            fields: req
                .fields
                .iter()
                .filter(|(_, value)| !value.trim().is_empty())
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect(),
        };
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        require_team(&mut tx, c.account(), "to_team_id", team).await?;
        let t = engine::request_transfer(&mut tx, &c.origin(), by, conversation, to, note).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn accept_transfer_impl(
        &self,
        c: &Caller,
        req: AcceptTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::accept_transfer(&mut tx, &c.origin(), by, id).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn reject_transfer_impl(
        &self,
        c: &Caller,
        req: RejectTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let mut v = Violations::new();
        v.check(
            req.reason.chars().count() > MAX_REASON_CHARS,
            "reason",
            &format!("at most {MAX_REASON_CHARS} characters"),
        );
        v.into_result()?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::reject_transfer(&mut tx, &c.origin(), by, id, &req.reason).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn cancel_transfer_impl(
        &self,
        c: &Caller,
        req: CancelTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::cancel_transfer(&mut tx, &c.origin(), by, id).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn watch_transfers_impl(
        &self,
        c: Caller,
        req: WatchTransfersRequest,
    ) -> Result<TransferStream> {
        let by = actor(&c)?;
        let agent = if req.agent_id.is_empty() || req.agent_id == by.id {
            by.id.to_string()
        } else if by.oversees() {
            req.agent_id
        } else {
            return Err(helpdesk_kit::error::Error::PermissionDenied(
                "agents watch their own transfers".into(),
            ));
        };
        // Subscribed first, then the pending offers read: nothing falls between.
        let mut watch = self.live.watch(&c, Scope::Account).await?;
        let mut conn = self.pool.acquire().await?;
        let pending = transfers::pending(&mut conn, c.account(), None, Some(&agent)).await?;
        drop(conn);
        let shutdown = self.shutdown.clone();
        let stream = async_stream::stream! {
            for t in pending {
                yield Ok(t.to_proto());
            }
            loop {
                let next = tokio::select! {
                    _ = shutdown.cancelled() => break,
                    next = watch.next() => next,
                };
                let msg = match next {
                    Some(Ok(msg)) => msg,
                    Some(Err(status)) => {
                        yield Err(status);
                        break;
                    }
                    None => break,
                };
                if !TRANSFER_KINDS.contains(&msg.kind.as_str()) {
                    continue;
                }
                // Every transfer event is `meta` and the transfer, in the same fields.
                let Ok(e) = TransferRequested::decode(msg.payload) else { continue };
                let Some(t) = e.transfer else { continue };
                if t.to_agent_id == agent || t.from_agent_id == agent {
                    yield Ok(t);
                }
            }
        };
        Ok(Box::pin(stream))
    }

    pub(crate) async fn leave_in_team_queue_impl(
        &self,
        c: &Caller,
        req: LeaveInTeamQueueRequest,
    ) -> Result<LeaveInTeamQueueResponse> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        engine::leave_in_team_queue(&mut tx, &c.origin(), by, id).await?;
        tx.commit().await?;
        Ok(LeaveInTeamQueueResponse {})
    }

    pub(crate) async fn recommend_impl(
        &self,
        c: &Caller,
        req: RecommendTransferTargetsRequest,
    ) -> Result<RecommendTransferTargetsResponse> {
        c.claims.require_staff()?;
        let conversation = uuid_field("conversation_id", &req.conversation_id)?;
        let team = if req.team_id.is_empty() {
            None
        } else {
            Some(uuid_field("team_id", &req.team_id)?)
        };
        let mut conn = self.pool.acquire().await?;
        require_team(&mut conn, c.account(), "team_id", team).await?;
        let conv = state::conversation(&mut conn, c.account(), conversation)
            .await?
            .ok_or(helpdesk_kit::error::Error::NotFound("conversation"))?;
        let current = state::assignment(&mut conn, c.account(), conversation)
            .await?
            .map(|a| a.agent_id)
            .unwrap_or_default();
        let since = chrono::Utc::now() - chrono::Duration::hours(24);
        let declined = transfers::decliners(&mut conn, c.account(), conversation, since).await?;
        // Only those the caller may transfer to under the account's policy.
        let settings = config::settings(&mut conn, c.account()).await?;
        let permit = Permit {
            policy: &settings.transfer_policy,
            id: &c.claims.sub,
            role: c.claims.role,
            teams: directory::agent_teams(&mut conn, c.account(), &c.claims.sub).await?,
        };
        let agents: Vec<_> = directory::agent_views(&mut conn, c.account(), None, true, team)
            .await?
            .iter()
            .map(directory::AgentView::candidate)
            .filter(|a| permit.refuses_receiver(a.into()).is_none())
            .collect();
        let skill = Some(req.skill.as_str()).filter(|s| !s.is_empty());
        let declined = declined.into_iter().collect();
        let ranked = recommend::rank(&agents, &conv.channel, skill, &current, &declined);
        Ok(RecommendTransferTargetsResponse {
            targets: ranked
                .into_iter()
                .map(|r| TransferTarget {
                    agent_id: r.agent_id,
                    name: r.name,
                    score: r.score,
                    reasons: r.reasons,
                    active_chats: r.active_chats,
                    max_chats: r.max_chats,
                    declined_recently: r.declined_recently,
                })
                .collect(),
        })
    }

    pub(crate) async fn transfer_stats_impl(
        &self,
        c: &Caller,
        req: GetTransferStatsRequest,
    ) -> Result<GetTransferStatsResponse> {
        c.claims.require(&[Role::Admin, Role::Supervisor])?;
        let mut v = Violations::new();
        let from = req
            .start_time
            .as_ref()
            .and_then(helpdesk_kit::time::from_timestamp);
        v.check(from.is_none(), "start_time", "required");
        let to = match &req.end_time {
            None => Some(chrono::Utc::now()),
            Some(t) => helpdesk_kit::time::from_timestamp(t),
        };
        v.check(to.is_none(), "end_time", "not a valid time");
        if let (Some(from), Some(to)) = (from, to) {
            v.check(to <= from, "end_time", "must be after start_time");
            v.check(
                to - from > chrono::Duration::days(366),
                "end_time",
                "at most 366 days after start_time",
            );
        }
        let by = TransferStatsBy::try_from(req.by).ok();
        v.check(by.is_none(), "by", "unknown value");
        v.into_result()?;
        let (Some(from), Some(to)) = (from, to) else {
            return Ok(GetTransferStatsResponse::default());
        };
        let by_team = by == Some(TransferStatsBy::Team);
        let mut conn = self.pool.acquire().await?;
        let (rows, reasons) = transfers::stats(&mut conn, c.account(), from, to, by_team).await?;
        Ok(GetTransferStatsResponse {
            rows: rows
                .into_iter()
                .map(|r| {
                    let decided = r.offers - r.pending;
                    TransferStatsRow {
                        reject_reasons: reasons
                            .iter()
                            .filter(|(k, _, _)| *k == r.key)
                            .map(|(_, reason, count)| ReasonCount {
                                reason: reason.clone(),
                                count: *count,
                            })
                            .collect(),
                        success_rate: if decided > 0 {
                            r.accepted as f64 / decided as f64
                        } else {
                            0.0
                        },
                        average_seconds_to_accept: r.average_seconds_to_accept.unwrap_or(0.0),
                        key: r.key,
                        offers: r.offers,
                        accepted: r.accepted,
                        rejected: r.rejected,
                        timed_out: r.timed_out,
                        cancelled: r.cancelled,
                        pending: r.pending,
                    }
                })
                .collect(),
        })
    }

    /// The built-in templates, then the account's own.
    async fn templates(
        &self,
        conn: &mut sqlx::PgConnection,
        account: &str,
    ) -> Result<Vec<templates::Template>> {
        let mut all = templates::built_in();
        all.extend(transfers::templates(conn, account).await?);
        Ok(all)
    }

    pub(crate) async fn list_templates_impl(
        &self,
        c: &Caller,
    ) -> Result<ListTransferTemplatesResponse> {
        c.claims.require_staff()?;
        let mut conn = self.pool.acquire().await?;
        Ok(ListTransferTemplatesResponse {
            templates: self
                .templates(&mut conn, c.account())
                .await?
                .into_iter()
                .map(template_proto)
                .collect(),
        })
    }

    pub(crate) async fn create_template_impl(
        &self,
        c: &Caller,
        req: CreateTransferTemplateRequest,
    ) -> Result<TransferTemplate> {
        c.claims.require(&[Role::Admin])?;
        let t = req.template.unwrap_or_default();
        let mut v = Violations::new();
        v.check(
            !templates::is_name(&t.id),
            "template.id",
            "1 to 64 of a-z, 0-9, _ and -",
        );
        let name = t.name.trim();
        v.check(
            name.is_empty() || name.chars().count() > 100,
            "template.name",
            "1 to 100 characters",
        );
        v.check(
            t.fields.is_empty() || t.fields.len() > templates::MAX_FIELDS,
            "template.fields",
            &format!("1 to {} fields", templates::MAX_FIELDS),
        );
        for (i, f) in t.fields.iter().enumerate() {
            v.check(
                !templates::is_name(f) || t.fields[..i].contains(f),
                &format!("template.fields[{i}]"),
                "1 to 64 of a-z, 0-9, _ and -, each once",
            );
        }
        v.check(
            templates::built_in().iter().any(|b| b.id == t.id),
            "template.id",
            "the id of a built-in template",
        );
        v.into_result()?;
        let template = templates::Template {
            id: t.id,
            name: name.to_string(),
            fields: t.fields,
            built_in: false,
        };
        let mut conn = self.pool.acquire().await?;
        if !transfers::insert_template(&mut conn, c.account(), &template).await? {
            return Err(helpdesk_kit::error::Error::AlreadyExists(format!(
                "template {} exists",
                template.id
            )));
        }
        Ok(template_proto(template))
    }

    pub(crate) async fn delete_template_impl(
        &self,
        c: &Caller,
        req: DeleteTransferTemplateRequest,
    ) -> Result<DeleteTransferTemplateResponse> {
        c.claims.require(&[Role::Admin])?;
        if templates::built_in().iter().any(|b| b.id == req.id) {
            return Err(helpdesk_kit::error::Error::FailedPrecondition(
                "built-in templates cannot be deleted".into(),
            ));
        }
        let mut conn = self.pool.acquire().await?;
        if !transfers::delete_template(&mut conn, c.account(), &req.id).await? {
            return Err(helpdesk_kit::error::Error::NotFound("template"));
        }
        Ok(DeleteTransferTemplateResponse {})
    }

    pub(crate) async fn list_transfers_impl(
        &self,
        c: &Caller,
        req: ListTransfersRequest,
    ) -> Result<ListTransfersResponse> {
        c.claims.require_staff()?;
        let conversation = uuid_field("conversation_id", &req.conversation_id)?;
        let mut conn = self.pool.acquire().await?;
        let rows = transfers::of_conversation(&mut conn, c.account(), conversation).await?;
        Ok(ListTransfersResponse {
            transfers: rows.iter().map(|t| t.to_proto()).collect(),
        })
    }
}
