//! Conversations: start, read, list, update, status changes (with snooze timers).

use chrono::{DateTime, Utc};
use helpdesk_kit::auth::{Claims, Role};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::contact_actor;
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::outbox;
use helpdesk_kit::page;
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::{from_timestamp, to_timestamp};
use helpdesk_proto::conversation::v1::*;
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use super::contacts::check_contact;
use super::{Api, Caller, Scoped};
use crate::domain::validate;
use crate::ops;
use crate::store::{
    self, contacts::ContactRow, conversations::ConversationRow, conversations::Scope,
};

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
        let mut v = Violations::new();
        check_contact(&mut v, "contact", &req.contact.clone().unwrap_or_default());
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
        let (conv, contact) = ops::start(
            &mut tx,
            ops::Start {
                claims: claims.as_ref(),
                request: &req,
                visitor_path,
                inbox_id,
                labels,
                priority,
            },
        )
        .await?;
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
        store::conversations::get(conn, c.account(), id.unwrap_or_default(), c.scope(), lock)
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
                let cursor = page::decode_token(t).and_then(|s| {
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
        if let Scope::Contact(own) = c.scope() {
            if filter.contact_id.is_some_and(|id| id != own) {
                return Ok(ListConversationsResponse::default());
            }
            filter.contact_id = Some(own);
        }
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            store::conversations::list(&mut conn, c.account(), &filter, after, size + 1).await?;
        let next_page_token = page::paginate(&mut rows, size, |r| {
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
        let conv = ops::save_changes(&mut tx, &c.origin(), conv, changed).await?;
        tx.commit().await?;
        Ok(conv.to_proto())
    }

    pub(crate) async fn set_status_impl(
        &self,
        c: &Caller,
        req: SetStatusRequest,
    ) -> Result<Conversation> {
        let mut v = Violations::new();
        let status: ConversationStatus =
            helpdesk_kit::validate::enumeration(&mut v, "status", req.status);
        if matches!(
            status,
            ConversationStatus::Unspecified | ConversationStatus::Bot
        ) {
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
            (ConversationStatus::Snoozed, Some(None)) => {
                v.add("snoozed_until", "not a valid timestamp");
                None
            }
            (ConversationStatus::Snoozed, None) => {
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
        self.refuse_departed_bot(&mut tx, c, &conv).await?;
        let conv = if status == ConversationStatus::Resolved {
            let closing = ops::Closing {
                skip_survey: req.skip_survey,
                ..Default::default()
            };
            ops::resolve(&mut tx, &c.origin(), conv, closing).await?
        } else {
            ops::change_status(&mut tx, &c.origin(), conv, status, until).await?
        };
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
        let previous_rating = conv.csat_rating.unwrap_or(0);
        conv.csat_rating = Some(req.rating);
        conv.csat_comment = comment;
        let conv = store::conversations::update(&mut tx, &conv).await?;
        let event = CsatSubmitted {
            conversation: Some(conv.to_proto()),
            rating: req.rating,
            comment: conv.csat_comment.clone().unwrap_or_default(),
            previous_rating,
            ..Default::default()
        };
        let origin = c.origin().acting_as(contact_actor(conv.contact_id));
        outbox::emit(&mut tx, &origin, event).await?;
        tx.commit().await?;
        Ok(conv.to_proto())
    }
}
