//! A conversation turned into a ticket, with everything it carries: read from the
//! conversation service by a command (never from its schema).

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::storage::name_of;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::conversation::v1 as conv;
use helpdesk_proto::ticketing::v1::*;
use sqlx::types::Json;
use tonic::Code;
use uuid::Uuid;

use super::Api;
use super::input;
use crate::domain::{self, StorageName, fields};
use crate::ops::{self, FromChat};
use crate::store::tickets::{StoredDevice, StoredRequester};
use crate::store::transcripts::Line;
use crate::store::{StoredAttachment, config, tickets};

/// Messages asked for per command.
const PAGE: i32 = 500;
/// Longest subject taken from the customer's first words.
const SUBJECT_CHARS: usize = 200;

/// What the conversation service sends of a chat.
struct Exported {
    conversation: conv::Conversation,
    contact: conv::Contact,
    messages: Vec<conv::Message>,
    truncated: bool,
}

impl Api {
    /// Reads the conversation, its contact and its messages (at most
    /// [`domain::MAX_TRANSCRIPT_LINES`]) page by page.
    async fn export(&self, account: &str, conversation: Uuid) -> Result<Exported> {
        let mut after = 0;
        let mut messages = Vec::new();
        loop {
            let request = conv::ExportConversationRequest {
                account_id: account.to_string(),
                conversation_id: conversation.to_string(),
                after_sequence: after,
                max_messages: PAGE,
            };
            let page = helpdesk_kit::command::call(&self.bus, &request, self.command_timeout)
                .await
                .map_err(|e| match e {
                    Error::Status(s) if s.code() == Code::NotFound => {
                        Error::NotFound("conversation")
                    }
                    other => other,
                })?;
            after = page.messages.last().map_or(after, |m| m.sequence);
            messages.extend(page.messages);
            let full = messages.len() >= domain::MAX_TRANSCRIPT_LINES;
            if !page.more || full {
                messages.truncate(domain::MAX_TRANSCRIPT_LINES);
                return Ok(Exported {
                    conversation: page.conversation.unwrap_or_default(),
                    contact: page.contact.unwrap_or_default(),
                    messages,
                    truncated: page.more || full,
                });
            }
        }
    }

    pub(crate) async fn create_from_conversation_impl(
        &self,
        c: &Caller,
        req: CreateTicketFromConversationRequest,
    ) -> Result<Ticket> {
        c.claims.require_staff()?;
        let t = req.ticket.clone().unwrap_or_default();
        let mut v = Violations::new();
        let conversation =
            helpdesk_kit::validate::uuid(&mut v, "conversation_id", &req.conversation_id);
        helpdesk_kit::validate::text(
            &mut v,
            "subject",
            &req.subject,
            false,
            domain::MAX_SUBJECT_CHARS,
        );
        helpdesk_kit::validate::text(&mut v, "request_id", &req.request_id, false, 128);
        v.into_result()?;
        let conversation = conversation.unwrap_or_else(Uuid::nil);
        if !req.request_id.is_empty() {
            let mut conn = self.pool.acquire().await?;
            if let Some(first) =
                tickets::by_request_id(&mut conn, c.account(), &req.request_id).await?
            {
                let statuses = config::statuses(&mut conn, c.account()).await?;
                return Ok(first.to_proto(&statuses));
            }
        }
        // Read before the transaction: no row is locked while another service answers.
        let chat = self.export(c.account(), conversation).await?;

        let mut tx = self.pool.begin().await?;
        let statuses = config::statuses(&mut tx, c.account()).await?;
        let definitions = config::fields(&mut tx, c.account()).await?;
        let mut row = input::blank(c.account(), TicketSource::Chat);
        fill_from_chat(&mut row, &chat, &definitions);
        if !req.subject.trim().is_empty() {
            row.subject = req.subject.trim().to_string();
        }
        // What the request sets wins over what the chat suggests.
        let mut v = Violations::new();
        let wants = |f: &str| {
            !matches!(
                f,
                "subject" | "description" | "requester" | "conversation_ids"
            ) && input::given(&t, f)
        };
        input::apply(&mut v, &t, &wants, &mut row, &statuses, &definitions);
        v.check(
            row.status_category == "closed",
            "ticket.status",
            "a new ticket cannot be closed",
        );
        v.into_result()?;
        row.request_id = Some(req.request_id.clone()).filter(|r| !r.is_empty());
        let lines = chat.messages.iter().map(line).collect();
        let from = FromChat {
            conversation_id: conversation,
            lines,
            truncated: chat.truncated,
        };
        let row = ops::create(
            &mut tx,
            &c.origin(),
            row,
            Some(from),
            &statuses,
            self.close_after,
        )
        .await?;
        tx.commit().await?;
        Ok(row.to_proto(&statuses))
    }
}

/// The ticket's fields as the chat suggests them: subject and description from the
/// customer's words, the contact as requester, its device, labels as tags, custom
/// attributes that are ticket fields, the chat's priority, team and agent.
fn fill_from_chat(
    row: &mut crate::store::tickets::TicketRow,
    chat: &Exported,
    definitions: &[FieldDefinition],
) {
    let conversation = &chat.conversation;
    let first = chat
        .messages
        .iter()
        .find(|m| m.kind == conv::MessageKind::Incoming as i32 && !m.content.trim().is_empty())
        .map(|m| m.content.trim().to_string());
    row.subject = match &first {
        Some(text) => {
            let line = text.lines().next().unwrap_or_default();
            let mut subject: String = line.chars().take(SUBJECT_CHARS).collect();
            if line.chars().count() > SUBJECT_CHARS {
                subject.push('…');
            }
            subject
        }
        None => format!("Chat {}", conversation.id),
    };
    row.description = first
        .map(|t| t.chars().take(domain::MAX_BODY_CHARS).collect())
        .unwrap_or_default();
    let contact = &chat.contact;
    row.requester = Json(StoredRequester {
        contact_id: contact.id.clone(),
        name: contact.name.clone(),
        email: contact.email.clone(),
        phone: contact.phone.clone(),
        external_id: contact.external_id.clone(),
    });
    row.requester_contact_id = contact.id.parse().ok();
    row.device = contact.device.as_ref().map(|d| {
        Json(StoredDevice {
            app_version: d.app_version.clone(),
            os: d.os.clone(),
            network_type: d.network_type.clone(),
            current_page: d.current_page.clone(),
            user_agent: d.user_agent.clone(),
            locale: d.locale.clone(),
        })
    });
    let mut tags: Vec<String> = conversation
        .labels
        .iter()
        .map(|l| l.trim().to_lowercase())
        .filter(|l| !l.is_empty() && l.chars().count() <= domain::MAX_TAG_CHARS)
        .collect();
    tags.sort();
    tags.dedup();
    tags.truncate(domain::MAX_TAGS);
    row.tags = tags;
    // An attribute becomes a field when the account defines one by that key and the
    // value fits it; the rest stays in the transcript's conversation.
    row.custom_fields = Json(
        conversation
            .custom_attributes
            .iter()
            .filter(|(k, value)| {
                let one = [((*k).clone(), (*value).clone())].into_iter().collect();
                let mut v = Violations::new();
                fields::check_values(&mut v, "", definitions, &one);
                v.into_result().is_ok()
            })
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect(),
    );
    row.priority = match conv::Priority::try_from(conversation.priority).unwrap_or_default() {
        conv::Priority::Urgent => TicketPriority::Urgent,
        conv::Priority::High => TicketPriority::High,
        conv::Priority::Low => TicketPriority::Low,
        _ => TicketPriority::Normal,
    }
    .storage_name()
    .to_string();
    row.group_id = conversation.team_id.parse().ok();
    row.assignee_id = Some(conversation.assignee_id.clone()).filter(|a| !a.is_empty());
    row.conversation_ids = conversation.id.parse().into_iter().collect();
}

/// A message as a transcript line.
fn line(m: &conv::Message) -> Line {
    let sender = m.sender.clone().unwrap_or_default();
    Line {
        sequence: m.sequence,
        kind: name_of::<conv::MessageKind>(m.kind).to_string(),
        sender_kind: sender.kind,
        sender_id: sender.id,
        content: m.content.clone(),
        attachments: m
            .attachments
            .iter()
            .map(|a| StoredAttachment {
                name: a.name.clone(),
                content_type: a.content_type.clone(),
                size_bytes: a.size_bytes,
                url: a.url.clone(),
            })
            .collect(),
        at: m
            .create_time
            .as_ref()
            .and_then(from_timestamp)
            .unwrap_or_else(chrono::Utc::now),
        internal: m.kind == conv::MessageKind::Note as i32,
    }
}
