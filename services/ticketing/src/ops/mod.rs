//! The ticketing service's application layer: one function per use case, each in the
//! caller's transaction, recording the history and the events it causes.

pub mod chat;
pub mod sla;

use chrono::{DateTime, Duration, Utc};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::Origin;
use helpdesk_kit::{outbox, timers};
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::ticketing::v1::{
    StatusCategory, TicketAssigned, TicketCommentAdded, TicketCreated, TicketMerged,
    TicketStatusChanged, TicketUpdated,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::domain::sla::Happening;
use crate::domain::statuses::{self, StatusDef};
use crate::store::comments::{self, CommentRow};
use crate::store::history::{self, Change};
use crate::store::tickets::{self, TicketRow};
use crate::store::transcripts::{self, Line};

/// What every change of a ticket needs of its account, read once per call.
pub struct Ctx {
    /// The account's statuses.
    pub statuses: Vec<StatusDef>,
    /// The account's SLA policies, in order.
    pub policies: Vec<crate::domain::sla::Policy>,
    /// How long after solving a ticket closes.
    pub close_after: Duration,
}

/// Reads the account's statuses and SLA policies, holding the policies for the rest
/// of the transaction. Call it before locking any ticket.
pub async fn context(conn: &mut PgConnection, account: &str, close_after: Duration) -> Result<Ctx> {
    crate::store::sla::hold_policies(conn, account, false).await?;
    Ok(Ctx {
        statuses: crate::store::config::statuses(conn, account).await?,
        policies: sla::policies(conn, account).await?,
        close_after,
    })
}

/// Timer: a solved ticket closes.
pub const CLOSE_TIMER: &str = "ticketing.close_solved";

/// The fingerprint a close timer is set with: the solve it was set for.
pub fn close_fingerprint(solved_at: Option<DateTime<Utc>>) -> String {
    solved_at
        .map(|t| format!("solved:{}", t.timestamp_micros()))
        .unwrap_or_default()
}

/// The chat a new ticket is made from.
pub struct FromChat {
    pub conversation_id: Uuid,
    pub lines: Vec<Line>,
    pub truncated: bool,
}

/// Numbers and stores a new ticket (its transcript with it), and records
/// `ticket.created`. `ticket.number` is ignored.
pub async fn create(
    conn: &mut PgConnection,
    origin: &Origin,
    mut ticket: TicketRow,
    chat: Option<FromChat>,
    ctx: &Ctx,
) -> Result<TicketRow> {
    let (statuses, close_after) = (&ctx.statuses[..], ctx.close_after);
    ticket.number = tickets::next_number(conn, &ticket.account_id).await?;
    if ticket.category() == StatusCategory::Solved {
        ticket.solved_at = Some(Utc::now());
    }
    let ticket = tickets::insert(conn, &ticket).await?;
    if let Some(chat) = chat {
        transcripts::insert(
            conn,
            &ticket.account_id,
            ticket.id,
            chat.conversation_id,
            &chat.lines,
            chat.truncated,
        )
        .await?;
    }
    history::record(
        conn,
        &ticket.account_id,
        ticket.id,
        &origin.actor,
        "created",
        vec![Change {
            field: "status".into(),
            from: String::new(),
            to: ticket.status.clone(),
        }],
    )
    .await?;
    keep_close_timer(conn, &ticket, close_after).await?;
    let created = Happening::Created(ticket.category());
    let ticket = sla::refresh(conn, ticket, Some(created), &ctx.policies).await?;
    let event = TicketCreated {
        ticket: Some(ticket.to_proto(statuses)),
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(ticket)
}

/// Sets the close timer of a solved ticket, or cancels it otherwise.
async fn keep_close_timer(conn: &mut PgConnection, t: &TicketRow, after: Duration) -> Result<()> {
    let key = t.id.to_string();
    match t
        .solved_at
        .filter(|_| t.category() == StatusCategory::Solved)
    {
        Some(solved) => {
            let payload = serde_json::json!({ "account_id": t.account_id });
            let fingerprint = close_fingerprint(Some(solved));
            timers::schedule(
                conn,
                CLOSE_TIMER,
                &key,
                solved + after,
                &fingerprint,
                payload,
            )
            .await?;
        }
        None => timers::cancel(conn, CLOSE_TIMER, &key).await?,
    }
    Ok(())
}

/// A field's whole value, to tell whether it changed.
fn value(t: &TicketRow, field: &str) -> String {
    match field {
        "description" => t.description.clone(),
        "requester" => serde_json::to_string(&t.requester.0).unwrap_or_default(),
        "attachments" => serde_json::to_string(&t.attachments.0).unwrap_or_default(),
        _ => shown(t, field),
    }
}

/// What a field of a ticket reads as in its history.
fn shown(t: &TicketRow, field: &str) -> String {
    let join = |v: &[String]| v.join(", ");
    match field {
        "subject" => t.subject.clone(),
        "description" => t.description.chars().take(200).collect(),
        "status" => t.status.clone(),
        "priority" => t.priority.clone(),
        "type" => t.r#type.clone(),
        "category" => t.category.clone(),
        "requester" => t.requester.0.contact_id.clone(),
        "assignee_id" => t.assignee_id.clone().unwrap_or_default(),
        "group_id" => t.group_id.map(|g| g.to_string()).unwrap_or_default(),
        "tags" => join(&t.tags),
        "custom_fields" => {
            let mut kv: Vec<String> = t
                .custom_fields
                .0
                .iter()
                .map(|(k, v)| format!("{k}={v}"))
                .collect();
            kv.sort();
            kv.join(", ")
        }
        "conversation_ids" => t
            .conversation_ids
            .iter()
            .map(Uuid::to_string)
            .collect::<Vec<_>>()
            .join(", "),
        "attachments" => t
            .attachments
            .0
            .iter()
            .map(|a| a.name.clone())
            .collect::<Vec<_>>()
            .join(", "),
        "due_time" => t.due_at.map(|d| d.to_rfc3339()).unwrap_or_default(),
        "follower_ids" => join(&t.follower_ids),
        _ => String::new(),
    }
}

/// Applies a change made to `current` (now `next`, the fields named in `fields`):
/// checks the status move, keeps the solve time and close timer, stores, records the
/// history and `ticket.updated` / `ticket.status_changed` / `ticket.assigned`.
pub async fn update(
    conn: &mut PgConnection,
    origin: &Origin,
    current: TicketRow,
    mut next: TicketRow,
    fields: &[String],
    ctx: &Ctx,
) -> Result<TicketRow> {
    let (statuses, close_after) = (&ctx.statuses[..], ctx.close_after);
    let changed: Vec<&String> = fields
        .iter()
        .filter(|f| value(&current, f) != value(&next, f))
        .collect();
    if changed.is_empty() {
        return Ok(current);
    }
    let status_moved = current.status != next.status;
    // A merge closes its sources whatever their status.
    let merging = current.merged_into.is_none() && next.merged_into.is_some();
    if status_moved {
        if let Some(why) =
            statuses::refuses_move(current.category(), next.category()).filter(|_| !merging)
        {
            return Err(Error::FailedPrecondition(why.into()));
        }
        next.solved_at = match next.category() {
            StatusCategory::Solved => Some(Utc::now()),
            StatusCategory::Closed => current.solved_at,
            _ => None,
        };
    }
    let stored = tickets::update(conn, &next).await?;
    let changes: Vec<Change> = changed
        .iter()
        .map(|f| Change {
            field: (*f).clone(),
            from: shown(&current, f),
            to: shown(&stored, f),
        })
        .collect();
    history::record(
        conn,
        &stored.account_id,
        stored.id,
        &origin.actor,
        "updated",
        changes,
    )
    .await?;
    if status_moved {
        keep_close_timer(conn, &stored, close_after).await?;
    }
    // The clocks react to the move, and any change may choose another policy.
    let moved = status_moved.then(|| Happening::Moved(current.category(), stored.category()));
    let stored = sla::refresh(conn, stored, moved, &ctx.policies).await?;
    let proto = stored.to_proto(statuses);
    let others: Vec<String> = changed
        .iter()
        .filter(|f| !matches!(f.as_str(), "status" | "assignee_id"))
        .map(|f| (*f).clone())
        .collect();
    if !others.is_empty() {
        let event = TicketUpdated {
            ticket: Some(proto.clone()),
            changed_fields: others,
            ..Default::default()
        };
        outbox::emit(conn, origin, event).await?;
    }
    if current.assignee_id != stored.assignee_id {
        let event = TicketAssigned {
            ticket: Some(proto.clone()),
            from: current.assignee_id.clone().unwrap_or_default(),
            to: stored.assignee_id.clone().unwrap_or_default(),
            ..Default::default()
        };
        outbox::emit(conn, origin, event).await?;
    }
    if status_moved {
        let label = |key: &str| {
            statuses
                .iter()
                .find(|s| s.key == key)
                .map(|s| s.external_label.clone())
                .unwrap_or_default()
        };
        let event = TicketStatusChanged {
            ticket: Some(proto),
            from: current.status.clone(),
            to: stored.status.clone(),
            from_category: current.category() as i32,
            to_category: stored.category() as i32,
            external_changed: label(&current.status) != label(&stored.status),
            ..Default::default()
        };
        outbox::emit(conn, origin, event).await?;
    }
    Ok(stored)
}

/// Adds a comment to `ticket`, counts it, adds its words to the search, and records
/// the history and `ticket.comment_added`. A closed ticket takes no comments.
pub async fn comment(
    conn: &mut PgConnection,
    origin: &Origin,
    ticket: &TicketRow,
    comment: CommentRow,
    ctx: &Ctx,
) -> Result<(CommentRow, TicketRow)> {
    let statuses = &ctx.statuses[..];
    if ticket.category() == StatusCategory::Closed {
        return Err(Error::FailedPrecondition(
            "a closed ticket takes no comments".into(),
        ));
    }
    if ticket.comment_count >= crate::domain::MAX_COMMENTS {
        return Err(Error::FailedPrecondition(format!(
            "a ticket takes at most {} comments",
            crate::domain::MAX_COMMENTS
        )));
    }
    let stored = comments::insert(conn, &comment).await?;
    let ticket = tickets::commented(conn, &ticket.account_id, ticket.id, &stored.body).await?;
    let reply = match (
        stored.public,
        stored.author_kind == ActorKind::Contact as i32,
    ) {
        (false, _) => None,
        (true, true) => Some(Happening::CustomerReply),
        (true, false) => Some(Happening::StaffReply(ticket.category())),
    };
    let ticket = sla::refresh(conn, ticket, reply, &ctx.policies).await?;
    let kind = if stored.public { "replied" } else { "noted" };
    history::record(
        conn,
        &ticket.account_id,
        ticket.id,
        &origin.actor,
        kind,
        vec![],
    )
    .await?;
    let event = TicketCommentAdded {
        ticket: Some(ticket.to_proto(statuses)),
        comment: Some(stored.to_proto()),
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok((stored, ticket))
}

/// Merges `sources` into `target` (all locked by the caller): the sources'
/// conversations, tags and followers join the target, each source gets an internal
/// note and closes, pointing at the target, and the target gets a note naming them;
/// records `ticket.merged`. No closed ticket takes part.
pub async fn merge(
    conn: &mut PgConnection,
    origin: &Origin,
    target: TicketRow,
    sources: Vec<TicketRow>,
    ctx: &Ctx,
) -> Result<TicketRow> {
    let statuses = &ctx.statuses[..];
    for t in std::iter::once(&target).chain(&sources) {
        if t.category() == StatusCategory::Closed {
            return Err(Error::FailedPrecondition(format!(
                "ticket #{} is closed and cannot be merged",
                t.number
            )));
        }
    }
    // Replies to the merged ticket reach its conversations: never another customer's.
    if let Some(other) = sources.iter().find(|s| {
        s.requester_contact_id.is_some()
            && target.requester_contact_id.is_some()
            && s.requester_contact_id != target.requester_contact_id
    }) {
        return Err(Error::FailedPrecondition(format!(
            "ticket #{} has another requester than #{}",
            other.number, target.number
        )));
    }
    let mut next = target.clone();
    for s in &sources {
        next.conversation_ids
            .extend(s.conversation_ids.iter().copied());
        next.tags.extend(s.tags.iter().cloned());
        next.follower_ids.extend(s.follower_ids.iter().cloned());
    }
    next.conversation_ids.sort();
    next.conversation_ids.dedup();
    next.tags.sort();
    next.tags.dedup();
    next.follower_ids.sort();
    next.follower_ids.dedup();
    if next.conversation_ids.len() > crate::domain::MAX_CONVERSATIONS
        || next.tags.len() > crate::domain::MAX_TAGS
        || next.follower_ids.len() > crate::domain::MAX_FOLLOWERS
    {
        return Err(Error::FailedPrecondition(
            "the merged ticket would have too many conversations, tags or followers".into(),
        ));
    }
    let fields = ["conversation_ids", "tags", "follower_ids"].map(String::from);
    let mut target = update(conn, origin, target, next, &fields, ctx).await?;
    let numbers: Vec<String> = sources.iter().map(|s| format!("#{}", s.number)).collect();
    let note = format!("Merged {} into this ticket.", numbers.join(", "));
    target = comment(conn, origin, &target, note_row(&target, origin, note), ctx)
        .await?
        .1;
    for source in &sources {
        let note = format!("Merged into #{}.", target.number);
        let source = comment(conn, origin, source, note_row(source, origin, note), ctx)
            .await?
            .1;
        let mut closed = source.clone();
        closed.status = "closed".into();
        closed.status_category = "closed".into();
        closed.merged_into = Some(target.id);
        let fields = ["status".to_string()];
        update(conn, origin, source, closed, &fields, ctx).await?;
    }
    let event = TicketMerged {
        ticket: Some(target.to_proto(statuses)),
        source_ids: sources.iter().map(|s| s.id.to_string()).collect(),
        source_numbers: sources.iter().map(|s| s.number).collect(),
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(target)
}

/// An internal note on `t` from the actor of `origin`.
fn note_row(t: &TicketRow, origin: &Origin, body: String) -> CommentRow {
    CommentRow {
        account_id: t.account_id.clone(),
        id: Uuid::now_v7(),
        ticket_id: t.id,
        author_kind: origin.actor.kind,
        author_id: origin.actor.id.clone(),
        body,
        public: false,
        attachments: sqlx::types::Json(Vec::new()),
        client_comment_id: None,
        created_at: Utc::now(),
    }
}
