//! Comments, the transcript and the history of a ticket.

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::page;
use helpdesk_proto::ticketing::v1::*;
use sqlx::types::Json;
use uuid::Uuid;

use super::Api;
use super::input;
use crate::domain;
use crate::ops;
use crate::store::comments::{self, CommentRow};
use crate::store::{history, tickets, transcripts};

/// Reads a page token of time-ordered ids.
fn after_id(v: &mut Violations, token: &str) -> Option<Uuid> {
    if token.is_empty() {
        return None;
    }
    let id = page::decode_token(token).and_then(|s| s.parse::<Uuid>().ok());
    v.check(id.is_none(), "page_token", "malformed page token");
    id
}

/// ALREADY_EXISTS unless `first` is what this very call would have stored.
fn same_comment(first: &CommentRow, c: &Caller, req: &AddCommentRequest) -> Result<()> {
    let same = first.ticket_id.to_string() == req.ticket_id && first.author_id == c.actor().id;
    if same {
        Ok(())
    } else {
        Err(Error::AlreadyExists(
            "client_comment_id already used".into(),
        ))
    }
}

impl Api {
    pub(crate) async fn add_comment_impl(
        &self,
        c: &Caller,
        req: AddCommentRequest,
    ) -> Result<Comment> {
        match self.add_comment_once(c, &req).await {
            // A retry racing the first call with the same client id: the first.
            Err(Error::Db(sqlx::Error::Database(e)))
                if e.is_unique_violation() && !req.client_comment_id.is_empty() =>
            {
                let mut conn = self.pool.acquire().await?;
                let first = comments::by_client_id(&mut conn, c.account(), &req.client_comment_id)
                    .await?
                    .ok_or_else(|| Error::Aborted("concurrent comment; retry".into()))?;
                same_comment(&first, c, &req)?;
                Ok(first.to_proto())
            }
            other => other,
        }
    }

    async fn add_comment_once(&self, c: &Caller, req: &AddCommentRequest) -> Result<Comment> {
        let req = req.clone();
        let mut v = Violations::new();
        let ticket = helpdesk_kit::validate::uuid(&mut v, "ticket_id", &req.ticket_id);
        helpdesk_kit::validate::text(&mut v, "body", &req.body, true, domain::MAX_BODY_CHARS);
        helpdesk_kit::validate::text(
            &mut v,
            "client_comment_id",
            &req.client_comment_id,
            false,
            128,
        );
        let attachments = input::attachments(&mut v, "attachments", &req.attachments);
        v.check(
            c.contact.is_some() && !req.public,
            "public",
            "customers write public replies only",
        );
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        if !req.client_comment_id.is_empty()
            && let Some(first) =
                comments::by_client_id(&mut tx, c.account(), &req.client_comment_id).await?
        {
            same_comment(&first, c, &req)?;
            return Ok(first.to_proto());
        }
        let ctx = ops::context(&mut tx, c.account(), self.close_after).await?;
        let key = tickets::Key::Id(ticket.unwrap_or_else(Uuid::nil));
        let current = self.visible(&mut tx, c, key, true).await?;
        let author = c.actor();
        let row = CommentRow {
            account_id: c.account().to_string(),
            id: Uuid::now_v7(),
            ticket_id: current.id,
            author_kind: author.kind,
            author_id: author.id.clone(),
            body: req.body.clone(),
            public: req.public,
            attachments: Json(attachments),
            client_comment_id: Some(req.client_comment_id.clone()).filter(|s| !s.is_empty()),
            created_at: chrono::Utc::now(),
        };
        let origin = c.origin();
        let (stored, ticket) = ops::comment(&mut tx, &origin, &current, row, &ctx).await?;
        // A customer answering a ticket that waits on them, or was solved, reopens it.
        if c.contact.is_some()
            && matches!(
                ticket.category(),
                StatusCategory::Pending | StatusCategory::Solved
            )
        {
            let mut next = ticket.clone();
            next.status = "open".into();
            next.status_category = "open".into();
            let fields = ["status".to_string()];
            ops::update(&mut tx, &origin, ticket, next, &fields, &ctx).await?;
        }
        tx.commit().await?;
        Ok(stored.to_proto())
    }

    pub(crate) async fn list_comments_impl(
        &self,
        c: &Caller,
        req: ListCommentsRequest,
    ) -> Result<ListCommentsResponse> {
        let mut v = Violations::new();
        let ticket = helpdesk_kit::validate::uuid(&mut v, "ticket_id", &req.ticket_id);
        let size = page::page_size(&mut v, req.page_size);
        let after = after_id(&mut v, &req.page_token);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let key = tickets::Key::Id(ticket.unwrap_or_else(Uuid::nil));
        let t = self.visible(&mut conn, c, key, false).await?;
        let public_only = c.contact.is_some();
        let mut rows =
            comments::list(&mut conn, c.account(), t.id, after, public_only, size + 1).await?;
        let next_page_token = page::paginate(&mut rows, size, |r| r.id.to_string());
        Ok(ListCommentsResponse {
            comments: rows.iter().map(CommentRow::to_proto).collect(),
            next_page_token,
        })
    }

    pub(crate) async fn get_transcript_impl(
        &self,
        c: &Caller,
        req: GetTranscriptRequest,
    ) -> Result<Transcript> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let ticket = helpdesk_kit::validate::uuid(&mut v, "ticket_id", &req.ticket_id);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let key = tickets::Key::Id(ticket.unwrap_or_else(Uuid::nil));
        let t = self.visible(&mut conn, c, key, false).await?;
        transcripts::get(&mut conn, c.account(), t.id)
            .await?
            .ok_or(Error::NotFound("transcript"))
    }

    pub(crate) async fn list_events_impl(
        &self,
        c: &Caller,
        req: ListTicketEventsRequest,
    ) -> Result<ListTicketEventsResponse> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let ticket = helpdesk_kit::validate::uuid(&mut v, "ticket_id", &req.ticket_id);
        let size = page::page_size(&mut v, req.page_size);
        let after = after_id(&mut v, &req.page_token);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let key = tickets::Key::Id(ticket.unwrap_or_else(Uuid::nil));
        let t = self.visible(&mut conn, c, key, false).await?;
        let mut rows = history::list(&mut conn, c.account(), t.id, after, size + 1).await?;
        let next_page_token = page::paginate(&mut rows, size, |r| r.id.to_string());
        Ok(ListTicketEventsResponse {
            events: rows.iter().map(history::EventRow::to_proto).collect(),
            next_page_token,
        })
    }
}
