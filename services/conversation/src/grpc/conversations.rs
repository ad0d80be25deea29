//! Conversations: start, read, list, update, status changes (with snooze timers).

use chrono::{DateTime, Utc};
use helpdesk_kit::auth::{Claims, Role};
use helpdesk_kit::event::{self, Causation};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::time::{from_timestamp, to_timestamp};
use helpdesk_kit::timers;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use helpdesk_proto::conversation::v1::*;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::contacts::{check_contact, upsert};
use super::messages::{append, find_by_client_id};
use super::{Api, Caller};
use crate::domain::{self, StorageName, validate};
use crate::error::{Error, Result};
use crate::events;
use crate::store::{
    self, contacts::ContactRow, conversations::ConversationRow, conversations::Scope,
};

/// Moves `conv` to `to`, keeps the snooze timer in step, saves, and records
/// `conversation.status_changed`. No-op when nothing changes.
pub(crate) async fn change_status(
    conn: &mut PgConnection,
    conv: ConversationRow,
    to: ConversationStatus,
    snoozed_until: Option<DateTime<Utc>>,
    actor: &Actor,
    causation: &Causation,
) -> Result<ConversationRow> {
    let from = conv.status();
    if from == to && conv.snoozed_until == snoozed_until {
        return Ok(conv);
    }
    let mut conv = conv;
    conv.set_status(to, actor);
    conv.snoozed_until = snoozed_until;
    if to == ConversationStatus::Resolved {
        conv.waiting_since = None;
    }
    let conv = store::conversations::update(conn, &conv).await?;
    let key = conv.id.to_string();
    match (to, snoozed_until) {
        (ConversationStatus::Snoozed, Some(until)) => {
            let fingerprint = domain::snooze_fingerprint(to, Some(until));
            let payload = serde_json::json!({ "account_id": conv.account_id });
            timers::schedule(
                conn,
                domain::SNOOZE_WAKE,
                &key,
                until,
                &fingerprint,
                payload,
            )
            .await?;
        }
        _ => timers::cancel(conn, domain::SNOOZE_WAKE, &key).await?,
    }
    if from != to {
        let meta = event::meta(&conv.account_id, actor, causation);
        events::status_changed(conn, meta, &conv.to_proto(), from, to).await?;
    }
    Ok(conv)
}

/// Inserts a new conversation and records `conversation.created`.
pub(crate) async fn create(
    conn: &mut PgConnection,
    conv: ConversationRow,
    contact: &ContactRow,
    actor: &Actor,
    causation: &Causation,
    initial_message: &str,
) -> Result<ConversationRow> {
    let conv = store::conversations::insert(conn, &conv).await?;
    let meta = event::meta(&conv.account_id, actor, causation);
    events::conversation_created(
        conn,
        meta,
        &conv.to_proto(),
        &contact.to_proto(),
        initial_message,
    )
    .await?;
    Ok(conv)
}

fn check_priority(v: &mut Violations, field: &str, p: i32) -> Priority {
    match Priority::try_from(p) {
        Ok(p) => p,
        Err(_) => {
            v.add(field, "unknown priority");
            Priority::Unspecified
        }
    }
}

impl Api {
    pub(crate) async fn start_conversation_impl(
        &self,
        claims: Option<Claims>,
        req: StartConversationRequest,
    ) -> Result<StartConversationResponse> {
        let contact_in = req.contact.clone().unwrap_or_default();
        let mut v = Violations::new();
        check_contact(&mut v, "contact", &contact_in);
        if let Some(d) = &req.device {
            validate::device(&mut v, "device", d);
        }
        validate::text(
            &mut v,
            "initial_message",
            &req.initial_message,
            false,
            validate::MAX_CONTENT_CHARS,
        );
        validate::text(
            &mut v,
            "client_message_id",
            &req.client_message_id,
            false,
            128,
        );
        if !req.client_message_id.is_empty() && req.initial_message.trim().is_empty() {
            v.add("client_message_id", "only meaningful with initial_message");
        }
        validate::attributes(&mut v, "custom_attributes", &req.custom_attributes);
        let labels = validate::labels(&mut v, "labels", &req.labels);
        let priority = check_priority(&mut v, "priority", req.priority);
        let visitor_path = !req.inbox_public_key.is_empty();
        let inbox_id = if visitor_path {
            validate::text(&mut v, "inbox_public_key", &req.inbox_public_key, true, 100);
            None
        } else {
            validate::uuid(&mut v, "inbox_id", &req.inbox_id)
        };
        if visitor_path && claims.as_ref().is_some_and(|c| c.role.is_staff()) {
            v.add(
                "inbox_public_key",
                "staff start conversations with inbox_id",
            );
        }
        v.into_result()?;

        let mut tx = self.pool.begin().await?;
        let (inbox, returning_contact) = if visitor_path {
            let inbox = store::inboxes::by_public_key(&mut tx, &req.inbox_public_key)
                .await?
                .ok_or_else(|| {
                    helpdesk_kit::grpc::invalid_field("inbox_public_key", "unknown inbox key")
                })?;
            // A returning visitor keeps its contact; anyone else gets a new one (an
            // unverified email or external id must never unlock someone's history).
            let returning = claims
                .as_ref()
                .filter(|c| c.role == Role::Visitor && c.acct == inbox.account_id)
                .and_then(|c| c.sub.parse::<Uuid>().ok());
            (inbox, returning)
        } else {
            let claims = claims
                .as_ref()
                .ok_or_else(|| tonic::Status::unauthenticated("missing bearer token"))?;
            claims.require(&[
                Role::Admin,
                Role::Supervisor,
                Role::Agent,
                Role::Integration,
            ])?;
            let inbox = store::inboxes::get(&mut tx, &claims.acct, inbox_id.unwrap_or_default())
                .await?
                .ok_or(Error::NotFound("inbox"))?;
            (inbox, None)
        };
        let account = inbox.account_id.clone();

        // A retried start with the same client id returns the first conversation.
        if !req.client_message_id.is_empty()
            && let Some(existing) =
                find_by_client_id(&mut tx, &account, &req.client_message_id).await?
        {
            let conv = store::conversations::get(
                &mut tx,
                &account,
                existing.conversation_id,
                Scope::Account,
                false,
            )
            .await?
            .ok_or(Error::NotFound("conversation"))?;
            let contact = store::contacts::get(&mut tx, &account, conv.contact_id)
                .await?
                .ok_or(Error::NotFound("contact"))?;
            let same_caller = match &claims {
                Some(c) if c.role.is_staff() => c.acct == account,
                Some(c) => c.sub == contact.id.to_string(),
                None => false,
            };
            if !same_caller {
                return Err(Error::AlreadyExists(
                    "client_message_id already used".into(),
                ));
            }
            tx.commit().await?;
            return Ok(self.start_response(conv, contact, visitor_path));
        }

        let causation = Causation::request();
        let staff_actor = claims
            .as_ref()
            .filter(|c| c.role.is_staff())
            .map(Claims::actor);
        let contact = match returning_contact {
            Some(id) => {
                let mut row = store::contacts::get(&mut tx, &account, id)
                    .await?
                    .ok_or(Error::NotFound("contact"))?;
                let mut changed: Vec<String> = row
                    .merge(&contact_in)
                    .into_iter()
                    .map(String::from)
                    .collect();
                if req.device.as_ref().is_some_and(|d| row.set_device(d)) {
                    changed.push("device".into());
                }
                if !changed.is_empty() {
                    row = store::contacts::update(&mut tx, &row).await?;
                    let actor = Actor {
                        kind: ActorKind::Contact as i32,
                        id: row.id.to_string(),
                    };
                    events::contact_updated(
                        &mut tx,
                        event::meta(&account, &actor, &causation),
                        &row.to_proto(),
                        changed,
                    )
                    .await?;
                }
                row
            }
            None => {
                let actor = staff_actor.clone().unwrap_or(Actor {
                    kind: ActorKind::Contact as i32,
                    id: String::new(),
                });
                let match_existing = !visitor_path;
                upsert(
                    &mut tx,
                    &account,
                    &contact_in,
                    req.device.as_ref(),
                    match_existing,
                    &actor,
                    &causation,
                )
                .await?
                .0
            }
        };
        let contact_actor = Actor {
            kind: ActorKind::Contact as i32,
            id: contact.id.to_string(),
        };
        let actor = staff_actor.unwrap_or_else(|| contact_actor.clone());

        let mut conv =
            ConversationRow::new(&account, inbox.id, contact.id, inbox.channel(), &actor);
        conv.custom_attributes = Json(req.custom_attributes.clone());
        conv.labels = labels;
        conv.priority = priority.storage_name().to_string();
        let mut conv = create(
            &mut tx,
            conv,
            &contact,
            &actor,
            &causation,
            req.initial_message.trim(),
        )
        .await?;
        if !inbox.greeting_message.trim().is_empty() {
            let bot = Actor {
                kind: ActorKind::Bot as i32,
                id: "greeting".into(),
            };
            let greeting = inbox.greeting_message.clone();
            conv = append(
                &mut tx,
                conv,
                MessageKind::Outgoing,
                &bot,
                &greeting,
                vec![],
                None,
                &causation,
            )
            .await?
            .1;
        }
        if !req.initial_message.trim().is_empty() {
            let client_id = Some(req.client_message_id.clone()).filter(|s| !s.is_empty());
            conv = append(
                &mut tx,
                conv,
                MessageKind::Incoming,
                &contact_actor,
                &req.initial_message,
                vec![],
                client_id,
                &causation,
            )
            .await?
            .1;
        }
        tx.commit().await?;
        Ok(self.start_response(conv, contact, visitor_path))
    }

    fn start_response(
        &self,
        conv: ConversationRow,
        contact: ContactRow,
        visitor: bool,
    ) -> StartConversationResponse {
        let (visitor_token, expire) = if visitor {
            let claims = Claims::new(
                &conv.account_id,
                &contact.id.to_string(),
                Role::Visitor,
                self.visitor_token_ttl,
            );
            let expire = DateTime::from_timestamp(claims.exp, 0).map(to_timestamp);
            (self.keys.mint(&claims), expire)
        } else {
            (String::new(), None)
        };
        StartConversationResponse {
            conversation: Some(conv.to_proto()),
            contact: Some(contact.to_proto()),
            visitor_token,
            visitor_token_expire_time: expire,
        }
    }

    /// Loads a conversation the caller may see, or NOT_FOUND.
    pub(crate) async fn visible(
        &self,
        conn: &mut PgConnection,
        c: &Caller,
        field: &str,
        id: &str,
        lock: bool,
    ) -> Result<ConversationRow> {
        let mut v = Violations::new();
        let id = validate::uuid(&mut v, field, id);
        v.into_result()?;
        store::conversations::get(conn, c.account(), id.unwrap_or_default(), c.scope, lock)
            .await?
            .ok_or(Error::NotFound("conversation"))
    }

    pub(crate) async fn get_conversation_impl(
        &self,
        c: &Caller,
        req: GetConversationRequest,
    ) -> Result<Conversation> {
        let mut conn = self.pool.acquire().await?;
        Ok(self
            .visible(&mut conn, c, "id", &req.id, false)
            .await?
            .to_proto())
    }

    pub(crate) async fn list_conversations_impl(
        &self,
        c: &Caller,
        req: ListConversationsRequest,
    ) -> Result<ListConversationsResponse> {
        let mut v = Violations::new();
        let size = validate::page_size(&mut v, req.page_size);
        let status = match ConversationStatus::try_from(req.status) {
            Ok(ConversationStatus::Unspecified) => None,
            Ok(s) => Some(s.storage_name().to_string()),
            Err(_) => {
                v.add("status", "unknown status");
                None
            }
        };
        let mut filter = store::conversations::Filter {
            status,
            inbox_id: validate::opt_uuid(&mut v, "inbox_id", &req.inbox_id),
            assignee_id: Some(req.assignee_id.clone()).filter(|s| !s.is_empty()),
            team_id: Some(req.team_id.clone()).filter(|s| !s.is_empty()),
            label: Some(req.label.trim().to_lowercase()).filter(|s| !s.is_empty()),
            contact_id: validate::opt_uuid(&mut v, "contact_id", &req.contact_id),
            unassigned: req.unassigned,
        };
        let after = match req.page_token.as_str() {
            "" => None,
            t => {
                let cursor = store::decode_token(t).and_then(|s| {
                    let rest = s.strip_prefix("c:")?;
                    let (micros, id) = rest.split_once(':')?;
                    Some((
                        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
                        id.parse::<Uuid>().ok()?,
                    ))
                });
                if cursor.is_none() {
                    v.add("page_token", "malformed page token");
                }
                cursor
            }
        };
        v.into_result()?;
        if let Scope::Contact(own) = c.scope {
            if filter.contact_id.is_some_and(|id| id != own) {
                return Ok(ListConversationsResponse::default());
            }
            filter.contact_id = Some(own);
        }
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            store::conversations::list(&mut conn, c.account(), &filter, after, size + 1).await?;
        let next_page_token = store::paginate(&mut rows, size, |r| {
            format!("c:{}:{}", r.last_activity_at.timestamp_micros(), r.id)
        });
        Ok(ListConversationsResponse {
            conversations: rows.iter().map(ConversationRow::to_proto).collect(),
            next_page_token,
        })
    }

    pub(crate) async fn update_conversation_impl(
        &self,
        c: &Caller,
        req: UpdateConversationRequest,
    ) -> Result<Conversation> {
        c.claims.require_staff()?;
        let input = req.conversation.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        if paths.is_empty() {
            v.add(
                "update_mask",
                "required: labels, priority, custom_attributes",
            );
        }
        let labels = validate::labels(&mut v, "conversation.labels", &input.labels);
        let priority = check_priority(&mut v, "conversation.priority", input.priority);
        validate::attributes(
            &mut v,
            "conversation.custom_attributes",
            &input.custom_attributes,
        );
        for p in &paths {
            if !matches!(p.as_str(), "labels" | "priority" | "custom_attributes") {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let mut conv = self
            .visible(&mut tx, c, "conversation.id", &input.id, true)
            .await?;
        let mut changed = Vec::new();
        for p in &paths {
            match p.as_str() {
                "labels" if conv.labels != labels => {
                    conv.labels = labels.clone();
                    changed.push("labels".to_string());
                }
                "priority" if conv.priority != priority.storage_name() => {
                    conv.priority = priority.storage_name().to_string();
                    changed.push("priority".to_string());
                }
                "custom_attributes" if conv.custom_attributes.0 != input.custom_attributes => {
                    conv.custom_attributes = Json(input.custom_attributes.clone());
                    changed.push("custom_attributes".to_string());
                }
                _ => {}
            }
        }
        if changed.is_empty() {
            tx.commit().await?;
            return Ok(conv.to_proto());
        }
        let conv = store::conversations::update(&mut tx, &conv).await?;
        let meta = event::meta(c.account(), &c.claims.actor(), &Causation::request());
        events::conversation_updated(&mut tx, meta, &conv.to_proto(), changed).await?;
        tx.commit().await?;
        Ok(conv.to_proto())
    }

    pub(crate) async fn set_status_impl(
        &self,
        c: &Caller,
        req: SetStatusRequest,
    ) -> Result<Conversation> {
        let mut v = Violations::new();
        let status = ConversationStatus::try_from(req.status).unwrap_or_default();
        if status == ConversationStatus::Unspecified {
            v.add("status", "required: open, pending, snoozed or resolved");
        }
        let until = req.snoozed_until.as_ref().map(from_timestamp);
        let until = match (status, until) {
            (ConversationStatus::Snoozed, Some(Some(t))) => {
                let now = Utc::now();
                if t <= now {
                    v.add("snoozed_until", "must be in the future");
                } else if t > now + chrono::Duration::days(366) {
                    v.add("snoozed_until", "at most a year ahead");
                }
                Some(t)
            }
            (ConversationStatus::Snoozed, _) => {
                v.add("snoozed_until", "required with status snoozed");
                None
            }
            (_, Some(_)) => {
                v.add("snoozed_until", "only allowed with status snoozed");
                None
            }
            (_, None) => None,
        };
        v.into_result()?;
        if c.is_visitor() && status != ConversationStatus::Resolved {
            return Err(Error::PermissionDenied(
                "visitors may only resolve their conversation".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let conv = self
            .visible(&mut tx, c, "conversation_id", &req.conversation_id, true)
            .await?;
        let conv = change_status(
            &mut tx,
            conv,
            status,
            until,
            &c.claims.actor(),
            &Causation::request(),
        )
        .await?;
        tx.commit().await?;
        Ok(conv.to_proto())
    }

    pub(crate) async fn rate_conversation_impl(
        &self,
        c: &Caller,
        req: RateConversationRequest,
    ) -> Result<Conversation> {
        let mut v = Violations::new();
        if !(1..=5).contains(&req.rating) {
            v.add("rating", "must be between 1 and 5");
        }
        validate::text(
            &mut v,
            "comment",
            &req.comment,
            false,
            validate::MAX_CSAT_COMMENT_CHARS,
        );
        v.into_result()?;
        if !c.is_visitor() {
            return Err(Error::PermissionDenied(
                "only the customer rates a conversation".into(),
            ));
        }
        let mut tx = self.pool.begin().await?;
        let mut conv = self
            .visible(&mut tx, c, "conversation_id", &req.conversation_id, true)
            .await?;
        if conv.status() != ConversationStatus::Resolved {
            return Err(Error::FailedPrecondition(
                "only a resolved conversation can be rated".into(),
            ));
        }
        let comment = Some(req.comment.trim().to_string()).filter(|s| !s.is_empty());
        if conv.csat_rating == Some(req.rating) && conv.csat_comment == comment {
            tx.commit().await?;
            return Ok(conv.to_proto());
        }
        conv.csat_rating = Some(req.rating);
        conv.csat_comment = comment;
        let conv = store::conversations::update(&mut tx, &conv).await?;
        let actor = Actor {
            kind: ActorKind::Contact as i32,
            id: conv.contact_id.to_string(),
        };
        let meta = event::meta(c.account(), &actor, &Causation::request());
        events::conversation_rated(
            &mut tx,
            meta,
            &conv.to_proto(),
            req.rating,
            conv.csat_comment.as_deref().unwrap_or_default(),
        )
        .await?;
        tx.commit().await?;
        Ok(conv.to_proto())
    }
}
