//! Email settings and the outbound mail.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use helpdesk_kit::time::{opt_timestamp, to_timestamp};
use helpdesk_proto::notification::v1::{Email, EmailKind, EmailStatus};
use sqlx::types::Json;
use sqlx::{PgConnection, PgPool};
use uuid::Uuid;

use crate::domain::StorageName;
use crate::domain::templates::Template;

/// An account's email settings as stored.
#[derive(Debug, Clone, Default, sqlx::FromRow)]
pub struct SettingsRow {
    pub from_name: String,
    pub from_address: String,
    pub reply_to: String,
    pub ticket_emails_disabled: bool,
    pub templates: Json<BTreeMap<String, Template>>,
}

/// The account's settings (defaults when it has none).
pub async fn settings(conn: &mut PgConnection, account: &str) -> Result<SettingsRow, sqlx::Error> {
    Ok(sqlx::query_as(
        "SELECT from_name, from_address, reply_to, ticket_emails_disabled, templates
         FROM email_settings WHERE account_id = $1",
    )
    .bind(account)
    .fetch_optional(conn)
    .await?
    .unwrap_or_default())
}

/// Replaces the account's settings.
pub async fn save_settings(
    conn: &mut PgConnection,
    account: &str,
    s: &SettingsRow,
) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO email_settings (account_id, from_name, from_address, reply_to,
             ticket_emails_disabled, templates)
         VALUES ($1, $2, $3, $4, $5, $6)
         ON CONFLICT (account_id) DO UPDATE SET from_name = $2, from_address = $3,
             reply_to = $4, ticket_emails_disabled = $5, templates = $6, updated_at = now()",
    )
    .bind(account)
    .bind(&s.from_name)
    .bind(&s.from_address)
    .bind(&s.reply_to)
    .bind(s.ticket_emails_disabled)
    .bind(&s.templates)
    .execute(conn)
    .await?;
    Ok(())
}

/// An email to queue.
#[derive(Debug, Clone)]
pub struct NewEmail {
    pub id: Uuid,
    pub account_id: String,
    pub dedupe_key: String,
    pub kind: EmailKind,
    pub sender: String,
    pub reply_to: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub text: String,
    pub html: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub auto_submitted: String,
    pub ticket_id: String,
}

/// Queues an email, or finds the one queued before for the same key: its id and
/// Message-ID.
pub async fn insert(conn: &mut PgConnection, e: &NewEmail) -> Result<(Uuid, String), sqlx::Error> {
    let added: Option<(Uuid, String)> = sqlx::query_as(
        "INSERT INTO emails (id, account_id, dedupe_key, kind, sender, reply_to, recipients,
             subject, text_body, html_body, message_id, in_reply_to, auto_submitted, ticket_id,
             status, traceparent)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, 'queued', $15)
         ON CONFLICT (account_id, dedupe_key) DO NOTHING RETURNING id, message_id",
    )
    .bind(e.id)
    .bind(&e.account_id)
    .bind(&e.dedupe_key)
    .bind(e.kind.storage_name())
    .bind(&e.sender)
    .bind(&e.reply_to)
    .bind(&e.recipients)
    .bind(&e.subject)
    .bind(&e.text)
    .bind(&e.html)
    .bind(&e.message_id)
    .bind(&e.in_reply_to)
    .bind(&e.auto_submitted)
    .bind(&e.ticket_id)
    .bind(helpdesk_kit::telemetry::current_trace_headers().0)
    .fetch_optional(&mut *conn)
    .await?;
    // The mailer polls for queued mail: the webhook senders' wake-up is not for it.
    match added {
        Some(found) => Ok(found),
        None => {
            sqlx::query_as(
                "SELECT id, message_id FROM emails WHERE account_id = $1 AND dedupe_key = $2",
            )
            .bind(&e.account_id)
            .bind(&e.dedupe_key)
            .fetch_one(conn)
            .await
        }
    }
}

/// An email as stored.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct EmailRow {
    pub id: Uuid,
    pub account_id: String,
    pub kind: String,
    pub sender: String,
    pub reply_to: String,
    pub recipients: Vec<String>,
    pub subject: String,
    pub text_body: String,
    pub html_body: String,
    pub message_id: String,
    pub in_reply_to: String,
    pub auto_submitted: String,
    pub ticket_id: String,
    pub status: String,
    pub attempts: i32,
    pub step: i32,
    pub error: String,
    pub created_at: DateTime<Utc>,
    pub sent_at: Option<DateTime<Utc>>,
    /// The trace context it was queued in.
    pub traceparent: String,
}

const COLUMNS: &str = "id, account_id, kind, sender, reply_to, recipients, subject, text_body, \
     html_body, message_id, in_reply_to, auto_submitted, ticket_id, status, attempts, step, error, \
     created_at, sent_at, traceparent";

impl EmailRow {
    /// The contract's view.
    pub fn to_proto(&self) -> Email {
        Email {
            id: self.id.to_string(),
            kind: EmailKind::from_storage(&self.kind) as i32,
            to: self.recipients.clone(),
            subject: self.subject.clone(),
            status: EmailStatus::from_storage(&self.status) as i32,
            attempts: self.attempts,
            message_id: self.message_id.clone(),
            in_reply_to: self.in_reply_to.clone(),
            ticket_id: self.ticket_id.clone(),
            automatic: !self.auto_submitted.is_empty(),
            error: self.error.clone(),
            create_time: Some(to_timestamp(self.created_at)),
            sent_time: opt_timestamp(self.sent_at),
        }
    }
}

/// The account's emails newest first, before `(created_at, id)`, optionally of one
/// status.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    status: Option<&str>,
    before: Option<(DateTime<Utc>, Uuid)>,
    limit: i64,
) -> Result<Vec<EmailRow>, sqlx::Error> {
    let (at, id) = before.unzip();
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM emails WHERE account_id = $1
         AND ($2::text IS NULL OR status = $2)
         AND ($3::timestamptz IS NULL OR (created_at, id) < ($3, $4))
         ORDER BY created_at DESC, id DESC LIMIT $5"
    ))
    .bind(account)
    .bind(status)
    .bind(at)
    .bind(id)
    .bind(limit)
    .fetch_all(conn)
    .await
}

/// Claims up to `limit` due emails for `claim_secs`.
pub async fn claim(
    pool: &PgPool,
    limit: i64,
    claim_secs: f64,
) -> Result<Vec<EmailRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE emails SET claimed_until = now() + make_interval(secs => $2)
         WHERE id IN (
             SELECT id FROM emails
             WHERE status = 'queued' AND next_attempt_at <= now()
               AND (claimed_until IS NULL OR claimed_until < now())
             ORDER BY next_attempt_at LIMIT $1 FOR UPDATE SKIP LOCKED)
         RETURNING {COLUMNS}"
    ))
    .bind(limit)
    .bind(claim_secs)
    .fetch_all(pool)
    .await
}

/// Records that the SMTP server took the email: on its own, at once.
pub async fn mark_sent(pool: &PgPool, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE emails SET status = 'sent', sent_at = now(), attempts = attempts + 1,
             claimed_until = NULL, error = ''
         WHERE id = $1",
    )
    .bind(id)
    .execute(pool)
    .await?;
    Ok(())
}

/// Records a failed attempt: the email waits for attempt `step` at `next` or, without
/// one, has failed for good.
pub async fn mark_failed(
    conn: &mut PgConnection,
    id: Uuid,
    step: i32,
    next: Option<DateTime<Utc>>,
    error: &str,
) -> Result<Option<EmailRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE emails SET attempts = attempts + 1, claimed_until = NULL, step = $2,
             status = CASE WHEN $3::timestamptz IS NULL THEN 'failed' ELSE 'queued' END,
             next_attempt_at = COALESCE($3, next_attempt_at), error = $4
         WHERE id = $1 AND status = 'queued' RETURNING {COLUMNS}"
    ))
    .bind(id)
    .bind(step)
    .bind(next)
    .bind(error)
    .fetch_optional(conn)
    .await
}

/// Deletes up to `limit` sent or failed emails created before `before` (see
/// [`super::delete_older`]); how many.
pub async fn delete_finished(
    pool: &PgPool,
    before: DateTime<Utc>,
    limit: i64,
) -> Result<u64, sqlx::Error> {
    super::delete_older(pool, "emails", "queued", before, limit).await
}
