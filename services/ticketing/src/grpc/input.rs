//! Checking a ticket's fields as a request sends them.

use std::collections::HashMap;

use helpdesk_kit::grpc::Violations;
use helpdesk_kit::time::from_timestamp;
use helpdesk_kit::validate;
use helpdesk_proto::ticketing::v1::{
    Attachment, FieldDefinition, Ticket, TicketPriority, TicketType,
};
use sqlx::types::Json;

use crate::domain::statuses::StatusDef;
use crate::domain::{self, StorageName, fields};
use crate::store::StoredAttachment;
use crate::store::tickets::{StoredRequester, TicketRow};

/// The paths `UpdateTicket` accepts.
pub const PATHS: &[&str] = &[
    "subject",
    "description",
    "status",
    "priority",
    "type",
    "category",
    "requester",
    "assignee_id",
    "group_id",
    "tags",
    "custom_fields",
    "attachments",
    "due_time",
    "follower_ids",
    "conversation_ids",
];

/// Checks attachments' metadata (`field` names the list).
pub fn attachments(v: &mut Violations, field: &str, list: &[Attachment]) -> Vec<StoredAttachment> {
    v.check(
        list.len() > domain::MAX_ATTACHMENTS,
        field,
        &format!("at most {}", domain::MAX_ATTACHMENTS),
    );
    for (i, a) in list.iter().enumerate() {
        validate::text(v, &format!("{field}[{i}].name"), &a.name, true, 255);
        validate::text(v, &format!("{field}[{i}].url"), &a.url, true, 2048);
        validate::text(
            v,
            &format!("{field}[{i}].content_type"),
            &a.content_type,
            false,
            255,
        );
        v.check(
            a.size_bytes < 0,
            &format!("{field}[{i}].size_bytes"),
            "must not be negative",
        );
    }
    list.iter().map(StoredAttachment::from).collect()
}

/// A list of ids: each 1-128 characters, at most `max`, without repeats.
fn ids(v: &mut Violations, field: &str, list: &[String], max: usize) -> Vec<String> {
    v.check(list.len() > max, field, &format!("at most {max}"));
    for (i, id) in list.iter().enumerate() {
        let bad = id.is_empty() || id.len() > 128 || id.contains(char::is_whitespace);
        v.check(bad, &format!("{field}[{i}]"), "an id of 1-128 characters");
    }
    let mut out = list.to_vec();
    out.sort();
    out.dedup();
    out
}

/// Applies the fields of `t` named by `wants` onto `row`, checking each; violations
/// name `ticket.<field>`.
#[allow(clippy::too_many_arguments)]
pub fn apply(
    v: &mut Violations,
    t: &Ticket,
    wants: &dyn Fn(&str) -> bool,
    row: &mut TicketRow,
    statuses: &[StatusDef],
    definitions: &[FieldDefinition],
) {
    if wants("subject") {
        validate::text(
            v,
            "ticket.subject",
            &t.subject,
            true,
            domain::MAX_SUBJECT_CHARS,
        );
        row.subject = t.subject.trim().to_string();
    }
    if wants("description") {
        validate::text(
            v,
            "ticket.description",
            &t.description,
            false,
            domain::MAX_BODY_CHARS,
        );
        row.description = t.description.clone();
    }
    if wants("status") {
        match statuses.iter().find(|s| s.key == t.status) {
            Some(s) => {
                row.status = s.key.clone();
                row.status_category = s.category.storage_name().to_string();
            }
            None => v.add("ticket.status", "not a status of this account"),
        }
    }
    if wants("priority") {
        let p: TicketPriority = validate::enumeration(v, "ticket.priority", t.priority);
        v.check(
            t.priority == 0,
            "ticket.priority",
            "low, normal, high or urgent",
        );
        row.priority = p.storage_name().to_string();
    }
    if wants("type") {
        let k: TicketType = validate::enumeration(v, "ticket.type", t.r#type);
        v.check(
            t.r#type == 0,
            "ticket.type",
            "question, incident, problem or task",
        );
        row.r#type = k.storage_name().to_string();
    }
    if wants("category") {
        validate::text(
            v,
            "ticket.category",
            &t.category,
            false,
            domain::MAX_CATEGORY_CHARS,
        );
        row.category = t.category.trim().to_string();
    }
    if wants("requester") {
        let r = t.requester.clone().unwrap_or_default();
        let contact = validate::opt_uuid(v, "ticket.requester.contact_id", &r.contact_id);
        validate::text(v, "ticket.requester.name", &r.name, false, 200);
        validate::text(v, "ticket.requester.phone", &r.phone, false, 50);
        validate::text(
            v,
            "ticket.requester.external_id",
            &r.external_id,
            false,
            128,
        );
        if !r.email.is_empty() {
            validate::email(v, "ticket.requester.email", &r.email);
        }
        row.requester = Json(StoredRequester::from_proto(&r));
        row.requester_contact_id = contact;
    }
    if wants("assignee_id") {
        let a = t.assignee_id.trim();
        v.check(
            a.len() > 128,
            "ticket.assignee_id",
            "at most 128 characters",
        );
        row.assignee_id = Some(a.to_string()).filter(|a| !a.is_empty());
    }
    if wants("group_id") {
        row.group_id = validate::opt_uuid(v, "ticket.group_id", &t.group_id);
    }
    if wants("tags") {
        let mut tags: Vec<String> = t.tags.iter().map(|s| s.trim().to_lowercase()).collect();
        tags.sort();
        tags.dedup();
        v.check(
            tags.len() > domain::MAX_TAGS,
            "ticket.tags",
            &format!("at most {}", domain::MAX_TAGS),
        );
        for (i, tag) in tags.iter().enumerate() {
            let bad = tag.is_empty()
                || tag.chars().count() > domain::MAX_TAG_CHARS
                || tag.contains(char::is_whitespace);
            v.check(
                bad,
                &format!("ticket.tags[{i}]"),
                "1-64 characters without spaces",
            );
        }
        row.tags = tags;
    }
    if wants("custom_fields") {
        fields::check_values(v, "ticket.", definitions, &t.custom_fields);
        row.custom_fields = Json(
            t.custom_fields
                .iter()
                .map(|(k, v)| (k.clone(), v.trim().to_string()))
                .collect::<HashMap<_, _>>(),
        );
    }
    if wants("attachments") {
        row.attachments = Json(attachments(v, "ticket.attachments", &t.attachments));
    }
    if wants("due_time") {
        row.due_at = match &t.due_time {
            None => None,
            Some(ts) => {
                let due = from_timestamp(ts);
                v.check(due.is_none(), "ticket.due_time", "not a valid time");
                due
            }
        };
    }
    if wants("follower_ids") {
        row.follower_ids = ids(
            v,
            "ticket.follower_ids",
            &t.follower_ids,
            domain::MAX_FOLLOWERS,
        );
    }
    if wants("conversation_ids") {
        let mut list = Vec::new();
        v.check(
            t.conversation_ids.len() > domain::MAX_CONVERSATIONS,
            "ticket.conversation_ids",
            &format!("at most {}", domain::MAX_CONVERSATIONS),
        );
        for (i, id) in t.conversation_ids.iter().enumerate() {
            if let Some(id) = validate::uuid(v, &format!("ticket.conversation_ids[{i}]"), id) {
                list.push(id);
            }
        }
        list.sort();
        list.dedup();
        row.conversation_ids = list;
    }
}

/// Which fields a create request sets: those it gives a value.
pub fn given(t: &Ticket, field: &str) -> bool {
    match field {
        "subject" | "description" => true,
        "status" => !t.status.is_empty(),
        "priority" => t.priority != 0,
        "type" => t.r#type != 0,
        "category" => !t.category.is_empty(),
        "requester" => t.requester.is_some(),
        "assignee_id" => !t.assignee_id.is_empty(),
        "group_id" => !t.group_id.is_empty(),
        "tags" => !t.tags.is_empty(),
        "custom_fields" => !t.custom_fields.is_empty(),
        "attachments" => !t.attachments.is_empty(),
        "due_time" => t.due_time.is_some(),
        "follower_ids" => !t.follower_ids.is_empty(),
        "conversation_ids" => !t.conversation_ids.is_empty(),
        _ => false,
    }
}
