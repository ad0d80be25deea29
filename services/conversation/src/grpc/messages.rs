//! Messages: sending (idempotent by client id, reopening when the customer writes)
//! and listing.

use chrono::Utc;
use helpdesk_kit::auth::Role;
use helpdesk_kit::event::{self, Causation};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::common::v1::{Actor, ActorKind};
use helpdesk_proto::conversation::v1::*;
use sqlx::PgConnection;

use super::conversations::{change_status, create};
use super::{Api, Caller};
use crate::domain::{StorageName, validate};
use crate::error::{Error, Result};
use crate::events;
use crate::store::{
    self, conversations::ConversationRow, conversations::Scope, messages::MessageRow,
    messages::StoredAttachment,
};

/// Stores a message in `conv`, updates the conversation's timers and counters, and
/// records `message.created`. Returns the message and the updated conversation.
#[allow(clippy::too_many_arguments)]
pub(crate) async fn append(
    conn: &mut PgConnection,
    mut conv: ConversationRow,
    kind: MessageKind,
    sender: &Actor,
    content: &str,
    attachments: Vec<StoredAttachment>,
    client_message_id: Option<String>,
    causation: &Causation,
) -> Result<(MessageRow, ConversationRow)> {
    let row =
        store::messages::new_row(&conv, kind, sender, content, attachments, client_message_id);
    let row = store::messages::insert(conn, &row).await?;
    let now = Utc::now();
    conv.next_sequence += 1;
    conv.last_activity_at = now;
    match kind {
        MessageKind::Incoming => {
            conv.waiting_since.get_or_insert(now);
        }
        MessageKind::Outgoing if sender.kind == ActorKind::Agent as i32 => {
            conv.waiting_since = None;
            conv.first_reply_at.get_or_insert(now);
        }
        _ => {}
    }
    let conv = store::conversations::update(conn, &conv).await?;
    let meta = event::meta(&conv.account_id, sender, causation);
    events::message_created(conn, meta, &row.to_proto(), &conv.to_proto()).await?;
    Ok((row, conv))
}

/// The message stored earlier under `client_message_id` in this account.
pub(crate) async fn find_by_client_id(
    conn: &mut PgConnection,
    account: &str,
    client_message_id: &str,
) -> Result<Option<MessageRow>> {
    Ok(store::messages::by_client_id(conn, account, client_message_id).await?)
}

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
        let requested = MessageKind::try_from(req.kind).unwrap_or_default();
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
                let existing = find_by_client_id(
                    &mut conn,
                    c.account(),
                    client_id.as_deref().unwrap_or_default(),
                )
                .await?;
                Ok(existing
                    .ok_or_else(|| Error::Aborted("concurrent send; retry".into()))?
                    .to_proto())
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
            && let Some(existing) = find_by_client_id(&mut tx, c.account(), id).await?
        {
            let visible = store::conversations::get(
                &mut tx,
                c.account(),
                existing.conversation_id,
                c.scope,
                false,
            )
            .await?;
            let same_sender = existing.sender_id == c.claims.sub || kind == MessageKind::Incoming;
            if visible.is_none() || !same_sender {
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
        let causation = Causation::request();
        let sender = match (c.claims.role, kind) {
            (Role::Integration, MessageKind::Incoming) | (Role::Visitor, _) => Actor {
                kind: ActorKind::Contact as i32,
                id: conv.contact_id.to_string(),
            },
            (Role::Integration, _) => Actor {
                kind: ActorKind::Bot as i32,
                id: c.claims.sub.clone(),
            },
            _ => c.claims.actor(),
        };
        if kind == MessageKind::Incoming {
            conv = self
                .wake_for_customer(&mut tx, conv, &sender, &causation, &req.content)
                .await?;
        }
        let (message, _) = append(
            &mut tx,
            conv,
            kind,
            &sender,
            &req.content,
            attachments,
            client_id,
            &causation,
        )
        .await?;
        tx.commit().await?;
        Ok(message.to_proto())
    }

    /// A customer writing reopens a pending or snoozed conversation; on a resolved
    /// one the inbox's reopen policy decides: reopen it or start a new one.
    async fn wake_for_customer(
        &self,
        conn: &mut PgConnection,
        conv: ConversationRow,
        sender: &Actor,
        causation: &Causation,
        content: &str,
    ) -> Result<ConversationRow> {
        let start_new = match conv.status() {
            ConversationStatus::Open | ConversationStatus::Unspecified => return Ok(conv),
            ConversationStatus::Pending | ConversationStatus::Snoozed => false,
            ConversationStatus::Resolved => {
                let inbox = store::inboxes::get(conn, &conv.account_id, conv.inbox_id)
                    .await?
                    .ok_or(Error::NotFound("inbox"))?;
                inbox.reopen() == ReopenPolicy::NewConversation
            }
        };
        if !start_new {
            return change_status(
                conn,
                conv,
                ConversationStatus::Open,
                None,
                sender,
                causation,
            )
            .await;
        }
        let contact = store::contacts::get(conn, &conv.account_id, conv.contact_id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let channel = ChannelKind::from_storage(&conv.channel_kind);
        let fresh = ConversationRow::new(
            &conv.account_id,
            conv.inbox_id,
            conv.contact_id,
            channel,
            sender,
        );
        create(conn, fresh, &contact, sender, causation, content).await
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
            t => store::decode_token(t)
                .and_then(|s| s.strip_prefix("m:").and_then(|n| n.parse::<i64>().ok())),
        };
        if after.is_none() {
            v.add("page_token", "malformed page token");
        }
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let conv = self
            .visible(&mut conn, c, "conversation_id", &req.conversation_id, false)
            .await?;
        let include_notes = matches!(c.scope, Scope::Account);
        let mut rows = store::messages::list(
            &mut conn,
            c.account(),
            conv.id,
            after.unwrap_or(0),
            size + 1,
            include_notes,
        )
        .await?;
        let next_page_token = store::paginate(&mut rows, size, |m| format!("m:{}", m.sequence));
        Ok(ListMessagesResponse {
            messages: rows.iter().map(MessageRow::to_proto).collect(),
            next_page_token,
        })
    }
}
