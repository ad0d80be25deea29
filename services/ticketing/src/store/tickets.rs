//! Tickets: numbered, stored, changed, listed and searched.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::ticketing::v1::{
    Device, Requester, SlaMetric, SlaTarget, StatusCategory, Ticket, TicketPriority, TicketSource,
    TicketType,
};
use serde::{Deserialize, Serialize};
use sqlx::types::Json;
use sqlx::{PgConnection, Postgres, QueryBuilder};
use uuid::Uuid;

use super::StoredAttachment;
use crate::domain::StorageName;
use crate::domain::sla::Standing;
use crate::domain::statuses::StatusDef;

/// The requester as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredRequester {
    pub contact_id: String,
    pub name: String,
    pub email: String,
    pub phone: String,
    pub external_id: String,
}

impl StoredRequester {
    /// From the API.
    pub fn from_proto(r: &Requester) -> Self {
        Self {
            contact_id: r.contact_id.clone(),
            name: r.name.trim().to_string(),
            email: r.email.trim().to_string(),
            phone: r.phone.trim().to_string(),
            external_id: r.external_id.clone(),
        }
    }

    fn to_proto(&self) -> Requester {
        Requester {
            contact_id: self.contact_id.clone(),
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            external_id: self.external_id.clone(),
        }
    }
}

/// The chat's device as stored.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq)]
pub struct StoredDevice {
    pub app_version: String,
    pub os: String,
    pub network_type: String,
    pub current_page: String,
    pub user_agent: String,
    pub locale: String,
}

impl StoredDevice {
    fn to_proto(&self) -> Device {
        Device {
            app_version: self.app_version.clone(),
            os: self.os.clone(),
            network_type: self.network_type.clone(),
            current_page: self.current_page.clone(),
            user_agent: self.user_agent.clone(),
            locale: self.locale.clone(),
        }
    }
}

/// A stored ticket.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct TicketRow {
    pub account_id: String,
    pub id: Uuid,
    pub number: i64,
    pub subject: String,
    pub description: String,
    pub status: String,
    pub status_category: String,
    pub priority: String,
    pub r#type: String,
    pub category: String,
    pub requester: Json<StoredRequester>,
    pub requester_contact_id: Option<Uuid>,
    pub assignee_id: Option<String>,
    pub group_id: Option<Uuid>,
    pub tags: Vec<String>,
    pub custom_fields: Json<HashMap<String, String>>,
    pub source: String,
    pub conversation_ids: Vec<Uuid>,
    pub attachments: Json<Vec<StoredAttachment>>,
    pub due_at: Option<DateTime<Utc>>,
    pub follower_ids: Vec<String>,
    pub device: Option<Json<StoredDevice>>,
    pub request_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub solved_at: Option<DateTime<Utc>>,
    pub version: i64,
    pub comment_count: i32,
    pub merged_into: Option<Uuid>,
    pub sla_policy_id: Option<Uuid>,
    pub sla: Json<Vec<Standing>>,
}

impl TicketRow {
    /// A new ticket of `account` with the defaults (status new, priority normal, type
    /// question, source `source`).
    pub fn blank(account: &str, source: TicketSource) -> Self {
        let now = chrono::Utc::now();
        TicketRow {
            account_id: account.to_string(),
            id: Uuid::now_v7(),
            number: 0,
            subject: String::new(),
            description: String::new(),
            status: "new".into(),
            status_category: "new".into(),
            priority: TicketPriority::Normal.storage_name().to_string(),
            r#type: TicketType::Question.storage_name().to_string(),
            category: String::new(),
            requester: Json(StoredRequester::default()),
            requester_contact_id: None,
            assignee_id: None,
            group_id: None,
            tags: Vec::new(),
            custom_fields: Json(HashMap::new()),
            source: source.storage_name().to_string(),
            conversation_ids: Vec::new(),
            attachments: Json(Vec::new()),
            due_at: None,
            follower_ids: Vec::new(),
            device: None,
            request_id: None,
            created_at: now,
            updated_at: now,
            solved_at: None,
            version: 1,
            comment_count: 0,
            merged_into: None,
            sla_policy_id: None,
            sla: Json(Vec::new()),
        }
    }

    /// The status's category.
    pub fn category(&self) -> StatusCategory {
        StatusCategory::from_storage(&self.status_category)
    }

    /// The etag clients send back.
    pub fn etag(&self) -> String {
        format!("\"{}\"", self.version)
    }

    /// As the API shows it to staff; the labels come from the account's `statuses`.
    pub fn to_proto(&self, statuses: &[StatusDef]) -> Ticket {
        let status = statuses.iter().find(|s| s.key == self.status);
        Ticket {
            id: self.id.to_string(),
            account_id: self.account_id.clone(),
            number: self.number,
            subject: self.subject.clone(),
            description: self.description.clone(),
            status: self.status.clone(),
            status_category: self.category() as i32,
            status_label: status.map(|s| s.label.clone()).unwrap_or_default(),
            external_status_label: status.map(|s| s.external_label.clone()).unwrap_or_default(),
            priority: TicketPriority::from_storage(&self.priority) as i32,
            r#type: TicketType::from_storage(&self.r#type) as i32,
            category: self.category.clone(),
            requester: Some(self.requester.0.to_proto()),
            assignee_id: self.assignee_id.clone().unwrap_or_default(),
            group_id: self.group_id.map(|g| g.to_string()).unwrap_or_default(),
            tags: self.tags.clone(),
            custom_fields: self.custom_fields.0.clone(),
            source: TicketSource::from_storage(&self.source) as i32,
            conversation_ids: self.conversation_ids.iter().map(Uuid::to_string).collect(),
            attachments: self
                .attachments
                .0
                .iter()
                .map(StoredAttachment::to_proto)
                .collect(),
            due_time: self.due_at.map(to_timestamp),
            follower_ids: self.follower_ids.clone(),
            device: self.device.as_ref().map(|d| d.0.to_proto()),
            create_time: Some(to_timestamp(self.created_at)),
            update_time: Some(to_timestamp(self.updated_at)),
            solve_time: self.solved_at.map(to_timestamp),
            etag: self.etag(),
            comment_count: self.comment_count,
            merged_into_id: self.merged_into.map(|m| m.to_string()).unwrap_or_default(),
            sla_policy_id: self
                .sla_policy_id
                .map(|p| p.to_string())
                .unwrap_or_default(),
            sla: self.sla.0.iter().map(sla_target).collect(),
        }
    }
}

/// A target's standing as the API shows it, as of now.
fn sla_target(s: &Standing) -> SlaTarget {
    SlaTarget {
        metric: SlaMetric::from_storage(&s.metric) as i32,
        target_seconds: s.seconds,
        business_hours: s.business_hours,
        state: s.state_at(Utc::now()) as i32,
        due_time: s.due_at.map(to_timestamp),
        elapsed_seconds: s.elapsed_seconds,
    }
}

const COLUMNS: &str = "account_id, id, number, subject, description, status, status_category, priority, type, \
    category, requester, requester_contact_id, assignee_id, group_id, tags, custom_fields, source, conversation_ids, \
    attachments, due_at, follower_ids, device, request_id, created_at, updated_at, solved_at, version, comment_count, merged_into, sla_policy_id, sla";

/// The account's next ticket number. The counter row stays locked until the
/// transaction ends: creations in one account take numbers one after another, and a
/// rolled-back creation gives its number back.
pub async fn next_number(conn: &mut PgConnection, account: &str) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar(
        "INSERT INTO counters (account_id, last_number) VALUES ($1, 1)
         ON CONFLICT (account_id) DO UPDATE SET last_number = counters.last_number + 1
         RETURNING last_number",
    )
    .bind(account)
    .fetch_one(conn)
    .await
}

/// Stores a new ticket; returns it as stored.
pub async fn insert(conn: &mut PgConnection, t: &TicketRow) -> Result<TicketRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "INSERT INTO tickets ({COLUMNS})
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20,
                 $21, $22, $23, now(), now(), $24, 1, 0, NULL, NULL, '[]')
         RETURNING {COLUMNS}"
    ))
    .bind(&t.account_id)
    .bind(t.id)
    .bind(t.number)
    .bind(&t.subject)
    .bind(&t.description)
    .bind(&t.status)
    .bind(&t.status_category)
    .bind(&t.priority)
    .bind(&t.r#type)
    .bind(&t.category)
    .bind(&t.requester)
    .bind(t.requester_contact_id)
    .bind(&t.assignee_id)
    .bind(t.group_id)
    .bind(&t.tags)
    .bind(&t.custom_fields)
    .bind(&t.source)
    .bind(&t.conversation_ids)
    .bind(&t.attachments)
    .bind(t.due_at)
    .bind(&t.follower_ids)
    .bind(&t.device)
    .bind(&t.request_id)
    .bind(t.solved_at)
    .fetch_one(conn)
    .await
}

/// Writes the mutable fields back, one version on; returns the ticket as stored.
pub async fn update(conn: &mut PgConnection, t: &TicketRow) -> Result<TicketRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE tickets SET subject = $3, description = $4, status = $5, status_category = $6, priority = $7,
             type = $8, category = $9, requester = $10, requester_contact_id = $11, assignee_id = $12,
             group_id = $13, tags = $14, custom_fields = $15, conversation_ids = $16, attachments = $17,
             due_at = $18, follower_ids = $19, solved_at = $20, merged_into = $21, version = version + 1,
             updated_at = now()
         WHERE account_id = $1 AND id = $2
         RETURNING {COLUMNS}"
    ))
    .bind(&t.account_id)
    .bind(t.id)
    .bind(&t.subject)
    .bind(&t.description)
    .bind(&t.status)
    .bind(&t.status_category)
    .bind(&t.priority)
    .bind(&t.r#type)
    .bind(&t.category)
    .bind(&t.requester)
    .bind(t.requester_contact_id)
    .bind(&t.assignee_id)
    .bind(t.group_id)
    .bind(&t.tags)
    .bind(&t.custom_fields)
    .bind(&t.conversation_ids)
    .bind(&t.attachments)
    .bind(t.due_at)
    .bind(&t.follower_ids)
    .bind(t.solved_at)
    .bind(t.merged_into)
    .fetch_one(conn)
    .await
}

/// Distinct comment words a ticket's search keeps (well under PostgreSQL's 1 MB
/// text-search limit); later comments are still stored, not indexed.
const SEARCH_WORDS: i32 = 20_000;
/// The first characters of each comment that are indexed.
const SEARCH_CHARS_PER_COMMENT: i32 = 4_000;

/// Counts a new comment and adds its words to the ticket's search.
pub async fn commented(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    body: &str,
) -> Result<TicketRow, sqlx::Error> {
    sqlx::query_as(&format!(
        "UPDATE tickets SET comment_count = comment_count + 1,
             comments_doc = CASE WHEN length(comments_doc) < $4
                 THEN comments_doc || to_tsvector('simple', left($3, $5)) ELSE comments_doc END,
             version = version + 1, updated_at = now()
         WHERE account_id = $1 AND id = $2 RETURNING {COLUMNS}"
    ))
    .bind(account)
    .bind(id)
    .bind(body)
    .bind(SEARCH_WORDS)
    .bind(SEARCH_CHARS_PER_COMMENT)
    .fetch_one(conn)
    .await
}

/// How one ticket is named.
#[derive(Debug, Clone, Copy)]
pub enum Key {
    Id(Uuid),
    Number(i64),
}

/// One ticket of the account; `lock` holds it for the rest of the transaction.
pub async fn get(
    conn: &mut PgConnection,
    account: &str,
    key: Key,
    lock: bool,
) -> Result<Option<TicketRow>, sqlx::Error> {
    let lock = if lock { " FOR UPDATE" } else { "" };
    let (column, query) = match key {
        Key::Id(_) => ("id", "$2::uuid"),
        Key::Number(_) => ("number", "$2::bigint"),
    };
    let sql =
        format!("SELECT {COLUMNS} FROM tickets WHERE account_id = $1 AND {column} = {query}{lock}");
    let q = sqlx::query_as(&sql).bind(account);
    match key {
        Key::Id(id) => q.bind(id).fetch_optional(conn).await,
        Key::Number(n) => q.bind(n).fetch_optional(conn).await,
    }
}

/// The ticket created earlier with this request id.
pub async fn by_request_id(
    conn: &mut PgConnection,
    account: &str,
    request_id: &str,
) -> Result<Option<TicketRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {COLUMNS} FROM tickets WHERE account_id = $1 AND request_id = $2"
    ))
    .bind(account)
    .bind(request_id)
    .fetch_optional(conn)
    .await
}

/// What a list asks for (each filter optional, all combined).
#[derive(Debug, Clone, Default)]
pub struct Filter {
    pub statuses: Vec<String>,
    pub categories: Vec<String>,
    pub priorities: Vec<String>,
    pub types: Vec<String>,
    pub category: Option<String>,
    pub requester: Option<Uuid>,
    /// `Some(None)`: unassigned.
    pub assignee: Option<Option<String>>,
    pub group: Option<Uuid>,
    pub tags: Vec<String>,
    pub custom_fields: HashMap<String, String>,
    pub source: Option<String>,
    pub conversation: Option<Uuid>,
    pub follower: Option<String>,
    pub due_before: Option<DateTime<Utc>>,
    pub created_after: Option<DateTime<Utc>>,
    pub created_before: Option<DateTime<Utc>>,
    /// `websearch_to_tsquery` syntax.
    pub query: Option<String>,
}

/// A sort column and its direction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sort {
    Number,
    Created,
    Updated,
    Priority,
    Due,
}

impl Sort {
    /// The column the sort reads (with the ticket number breaking ties).
    fn column(self) -> &'static str {
        match self {
            Sort::Number => "number",
            Sort::Created => "created_at",
            Sort::Updated => "updated_at",
            // Stored names sort as words; rank them.
            Sort::Priority => {
                "(CASE priority WHEN 'urgent' THEN 4 WHEN 'high' THEN 3 WHEN 'normal' THEN 2 WHEN 'low' THEN 1 ELSE 0 END)"
            }
            Sort::Due => "COALESCE(due_at, 'infinity'::timestamptz)",
        }
    }
}

/// Where a page starts: the sort value of the last ticket of the previous page (as
/// text) and its number.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct Cursor {
    pub value: String,
    pub number: i64,
}

/// A page of the account's tickets matching `f`, sorted, after `after`; each with
/// its sort value for the next page's cursor.
pub async fn list(
    conn: &mut PgConnection,
    account: &str,
    f: &Filter,
    sort: Sort,
    descending: bool,
    after: Option<&Cursor>,
    limit: usize,
) -> Result<Vec<(TicketRow, String)>, sqlx::Error> {
    let key = sort.column();
    let mut q: QueryBuilder<Postgres> = QueryBuilder::new(format!(
        "SELECT {COLUMNS}, ({key})::text AS sort_value FROM tickets WHERE account_id = "
    ));
    q.push_bind(account);
    if !f.statuses.is_empty() {
        q.push(" AND status = ANY(")
            .push_bind(f.statuses.clone())
            .push(")");
    }
    if !f.categories.is_empty() {
        q.push(" AND status_category = ANY(")
            .push_bind(f.categories.clone())
            .push(")");
    }
    if !f.priorities.is_empty() {
        q.push(" AND priority = ANY(")
            .push_bind(f.priorities.clone())
            .push(")");
    }
    if !f.types.is_empty() {
        q.push(" AND type = ANY(")
            .push_bind(f.types.clone())
            .push(")");
    }
    if let Some(c) = &f.category {
        q.push(" AND category = ").push_bind(c.clone());
    }
    if let Some(r) = f.requester {
        q.push(" AND requester_contact_id = ").push_bind(r);
    }
    match &f.assignee {
        Some(Some(a)) => {
            q.push(" AND assignee_id = ").push_bind(a.clone());
        }
        Some(None) => {
            q.push(" AND assignee_id IS NULL");
        }
        None => {}
    }
    if let Some(g) = f.group {
        q.push(" AND group_id = ").push_bind(g);
    }
    if !f.tags.is_empty() {
        q.push(" AND tags @> ").push_bind(f.tags.clone());
    }
    if !f.custom_fields.is_empty() {
        q.push(" AND custom_fields @> ")
            .push_bind(Json(f.custom_fields.clone()));
    }
    if let Some(s) = &f.source {
        q.push(" AND source = ").push_bind(s.clone());
    }
    if let Some(c) = f.conversation {
        q.push(" AND conversation_ids @> ARRAY[")
            .push_bind(c)
            .push("]::uuid[]");
    }
    if let Some(fo) = &f.follower {
        q.push(" AND follower_ids @> ARRAY[")
            .push_bind(fo.clone())
            .push("]::text[]");
    }
    if let Some(t) = f.due_before {
        q.push(" AND due_at < ").push_bind(t);
    }
    if let Some(t) = f.created_after {
        q.push(" AND created_at >= ").push_bind(t);
    }
    if let Some(t) = f.created_before {
        q.push(" AND created_at < ").push_bind(t);
    }
    if let Some(text) = &f.query {
        q.push(" AND (doc || comments_doc) @@ websearch_to_tsquery('simple', ")
            .push_bind(text.clone())
            .push(")");
    }
    let (cmp, dir) = if descending {
        ("<", "DESC")
    } else {
        (">", "ASC")
    };
    if let Some(c) = after {
        // The sort value compares as its own type: cast the cursor's text back.
        let cast = match sort {
            Sort::Number | Sort::Priority => "::bigint",
            Sort::Created | Sort::Updated | Sort::Due => "::timestamptz",
        };
        q.push(format!(" AND (({key}), number) {cmp} ("))
            .push_bind(c.value.clone())
            .push(format!("{cast}, "))
            .push_bind(c.number)
            .push(")");
    }
    q.push(format!(" ORDER BY {key} {dir}, number {dir} LIMIT "))
        .push_bind(limit as i64);
    let rows = q.build().fetch_all(conn).await?;
    rows.iter()
        .map(|r| {
            use sqlx::{FromRow, Row};
            Ok((
                TicketRow::from_row(r)?,
                r.try_get::<String, _>("sort_value")?,
            ))
        })
        .collect()
}
