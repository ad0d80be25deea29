//! Messages: sending (idempotent by client id, reopening when the customer writes)
//! and listing.

use helpdesk_kit::auth::Role;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::{bot_actor, contact_actor};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::page;
use helpdesk_proto::conversation::v1::*;

use super::{Api, Caller, Scoped};
use crate::domain::{bot, validate};
use crate::ops;
use crate::store::messages::StoredOption;
use crate::store::{self, conversations::Scope, messages::MessageRow, messages::StoredAttachment};
use sqlx::types::Json;

impl Api {
    pub(crate) async fn send_message_impl(
        &self,
        c: &Caller,
        req: SendMessageRequest,
    ) -> Result<Message> {
        let mut v = Violations::new();
        validate::message_body(&mut v, &req.content, &req.attachments);
        validate::text(
            &mut v,
            "client_message_id",
            &req.client_message_id,
            false,
            128,
        );
        let requested: MessageKind = helpdesk_kit::validate::enumeration(&mut v, "kind", req.kind);
        bot::check_menu(&mut v, &req.menu);
        bot::check_choice(&mut v, &req.menu_choice);
        let kind = match (c.claims.role, requested) {
            (Role::Visitor, MessageKind::Unspecified | MessageKind::Incoming) => {
                MessageKind::Incoming
            }
            (Role::Visitor, _) => {
                v.add("kind", "visitors can only send incoming messages");
                MessageKind::Incoming
            }
            (Role::Integration, MessageKind::Incoming) => MessageKind::Incoming,
            (_, MessageKind::Incoming) => {
                v.add(
                    "kind",
                    "only the customer (or an integration for them) sends incoming messages",
                );
                MessageKind::Incoming
            }
            (_, MessageKind::Unspecified) => MessageKind::Outgoing,
            (_, k) => k,
        };
        v.check(
            !req.menu.is_empty() && kind != MessageKind::Outgoing,
            "menu",
            "only outgoing messages offer a menu",
        );
        v.check(
            !req.menu_choice.is_empty() && kind != MessageKind::Incoming,
            "menu_choice",
            "only the customer's messages pick from a menu",
        );
        v.into_result()?;
        let client_id = Some(req.client_message_id.clone()).filter(|s| !s.is_empty());
        let attachments: Vec<StoredAttachment> =
            req.attachments.iter().map(StoredAttachment::from).collect();

        match self
            .send_once(c, &req, kind, client_id.clone(), attachments)
            .await
        {
            // Two retries racing past the duplicate check: the loser reads the winner.
            Err(Error::Db(sqlx::Error::Database(e)))
                if e.is_unique_violation() && client_id.is_some() =>
            {
                let mut conn = self.pool.acquire().await?;
                let existing = ops::find_by_client_id(
                    &mut conn,
                    c.account(),
                    client_id.as_deref().unwrap_or_default(),
                )
                .await?
                .ok_or_else(|| Error::Aborted("concurrent send; retry".into()))?;
                if !is_replay_of(&existing, c, kind, &req.conversation_id) {
                    return Err(Error::AlreadyExists(
                        "client_message_id already used".into(),
                    ));
                }
                Ok(existing.to_proto())
            }
            other => other,
        }
    }

    async fn send_once(
        &self,
        c: &Caller,
        req: &SendMessageRequest,
        kind: MessageKind,
        client_id: Option<String>,
        attachments: Vec<StoredAttachment>,
    ) -> Result<Message> {
        let mut tx = self.pool.begin().await?;
        if let Some(id) = &client_id
            && let Some(existing) = ops::find_by_client_id(&mut tx, c.account(), id).await?
        {
            let visible = store::conversations::get(
                &mut tx,
                c.account(),
                existing.conversation_id,
                c.scope(),
                false,
            )
            .await?;
            if visible.is_none() || !is_replay_of(&existing, c, kind, &req.conversation_id) {
                return Err(Error::AlreadyExists(
                    "client_message_id already used".into(),
                ));
            }
            tx.commit().await?;
            return Ok(existing.to_proto());
        }
        let mut conv = self
            .visible(&mut tx, c, "conversation_id", &req.conversation_id, true)
            .await?;
        let sender = match (c.claims.role, kind) {
            (Role::Integration, MessageKind::Incoming) | (Role::Visitor, _) => {
                contact_actor(conv.contact_id)
            }
            (Role::Integration, _) => bot_actor(&c.claims.sub),
            _ => c.actor(),
        };
        let origin = c.origin().acting_as(sender.clone());
        if kind == MessageKind::Incoming {
            conv = ops::wake_for_customer(&mut tx, &origin, conv, &req.content).await?;
        } else {
            self.refuse_departed_bot(&mut tx, c, &conv).await?;
        }
        let mut row =
            store::messages::new_row(&conv, kind, &sender, &req.content, attachments, client_id);
        row.menu = Json(
            req.menu
                .iter()
                .map(|o| StoredOption {
                    id: o.id.clone(),
                    label: o.label.trim().to_string(),
                })
                .collect(),
        );
        row.menu_choice = req.menu_choice.clone();
        let (message, conv) = ops::append_row(&mut tx, &origin, conv, row, &sender).await?;
        if kind == MessageKind::Incoming {
            ops::after_customer_message(&mut tx, &origin, conv, &req.content, &req.menu_choice)
                .await?;
        }
        tx.commit().await?;
        Ok(message.to_proto())
    }

    pub(crate) async fn list_messages_impl(
        &self,
        c: &Caller,
        req: ListMessagesRequest,
    ) -> Result<ListMessagesResponse> {
        let mut v = Violations::new();
        let size = validate::page_size(&mut v, req.page_size);
        let after = match req.page_token.as_str() {
            "" => Some(0),
            t => page::decode_token(t)
                .and_then(|s| s.strip_prefix("m:").and_then(|n| n.parse::<i64>().ok())),
        };
        if after.is_none() {
            v.add("page_token", "malformed page token");
        }
        if let Some(before) = req.before_sequence {
            if before < 1 {
                v.add("before_sequence", "must be 1 or more");
            }
            if !req.page_token.is_empty() {
                v.add("page_token", "not with before_sequence (ask again with it)");
            }
        }
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let conv = self
            .visible(&mut conn, c, "conversation_id", &req.conversation_id, false)
            .await?;
        let include_notes = matches!(c.scope(), Scope::Account);
        if let Some(before) = req.before_sequence {
            let mut rows = store::messages::list_before(
                &mut conn,
                c.account(),
                conv.id,
                before,
                size + 1,
                include_notes,
            )
            .await?;
            let has_earlier = rows.len() > size;
            rows.truncate(size);
            rows.reverse();
            return Ok(ListMessagesResponse {
                messages: rows.iter().map(MessageRow::to_proto).collect(),
                next_page_token: String::new(),
                has_earlier,
            });
        }
        let mut rows = store::messages::list(
            &mut conn,
            c.account(),
            conv.id,
            after.unwrap_or(0),
            size + 1,
            include_notes,
        )
        .await?;
        let next_page_token = page::paginate(&mut rows, size, |m| format!("m:{}", m.sequence));
        Ok(ListMessagesResponse {
            messages: rows.iter().map(MessageRow::to_proto).collect(),
            next_page_token,
            has_earlier: false,
        })
    }
}

/// Whether `existing` is what this very call would have stored: same conversation,
/// same kind, and sent by the caller (a visitor's own messages; an integration's
/// messages for the customer). Anything else under the same `client_message_id`
/// (a private note, another sender's message) is never handed back.
fn is_replay_of(
    existing: &MessageRow,
    c: &Caller,
    kind: MessageKind,
    conversation_id: &str,
) -> bool {
    let same_place =
        existing.conversation_id.to_string() == conversation_id && existing.kind() == kind;
    let same_sender = if c.claims.role == Role::Integration && kind == MessageKind::Incoming {
        existing.sender_kind == helpdesk_proto::common::v1::ActorKind::Contact as i32
    } else {
        existing.sender_id == c.claims.sub
    };
    same_place && same_sender
}
