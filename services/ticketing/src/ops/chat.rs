//! A chat read from the conversation service (the `export_conversation` command,
//! never its schema) and the ticket it suggests.

use std::time::Duration;

use helpdesk_kit::bus::Bus;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::storage::name_of;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::conversation::v1 as conv;
use helpdesk_proto::ticketing::v1::{FieldDefinition, TicketPriority};
use sqlx::types::Json;
use tonic::Code;
use uuid::Uuid;

use super::FromChat;
use crate::domain::{self, StorageName, fields};
use crate::store::StoredAttachment;
use crate::store::tickets::{StoredDevice, StoredRequester, TicketRow};
use crate::store::transcripts::Line;

/// Messages asked for per command.
const PAGE: i32 = 500;
/// Longest subject taken from the customer's first words.
const SUBJECT_CHARS: usize = 200;

/// What the conversation service sends of a chat.
pub struct Exported {
    pub conversation: conv::Conversation,
    pub contact: conv::Contact,
    pub inbox: Option<conv::Inbox>,
    pub messages: Vec<conv::Message>,
    pub truncated: bool,
}

impl Exported {
    /// The transcript a ticket keeps of it.
    pub fn transcript(&self, conversation: Uuid) -> FromChat {
        FromChat {
            conversation_id: conversation,
            lines: self.messages.iter().map(line).collect(),
            truncated: self.truncated,
        }
    }
}

/// Reads the conversation, its contact and its messages (at most
/// [`domain::MAX_TRANSCRIPT_LINES`]) page by page.
pub async fn export(
    bus: &Bus,
    deadline: Duration,
    account: &str,
    conversation: Uuid,
) -> Result<Exported> {
    let mut after = 0;
    let mut messages = Vec::new();
    loop {
        let request = conv::ExportConversationRequest {
            account_id: account.to_string(),
            conversation_id: conversation.to_string(),
            after_sequence: after,
            max_messages: PAGE,
        };
        let page = helpdesk_kit::command::call(bus, &request, deadline)
            .await
            .map_err(|e| match e {
                Error::Status(s) if s.code() == Code::NotFound => Error::NotFound("conversation"),
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
                inbox: page.inbox,
                messages,
                truncated: page.more || full,
            });
        }
    }
}

/// The ticket's fields as the chat suggests them: subject and description from the
/// customer's words, the contact as requester, its device, labels as tags, custom
/// attributes that are ticket fields, the chat's priority, team and agent.
pub fn fill_from_chat(row: &mut TicketRow, chat: &Exported, definitions: &[FieldDefinition]) {
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
pub fn line(m: &conv::Message) -> Line {
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
