//! The conversation projection, the queue, assignments and their history.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use sqlx::types::Json;
use sqlx::{FromRow, PgConnection, Row};
use uuid::Uuid;

/// What routing keeps of a conversation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRow {
    pub account_id: String,
    pub id: Uuid,
    pub inbox_id: Uuid,
    pub contact_id: Uuid,
    pub channel: String,
    pub status: String,
    pub priority: i32,
    pub labels: Vec<String>,
    pub attributes: Json<HashMap<String, String>>,
    pub contact_attributes: Json<HashMap<String, String>>,
    pub first_message: String,
    pub last_agent_id: Option<String>,
    pub last_team_id: Option<Uuid>,
    pub version: i64,
}

const CONV_COLUMNS: &str = "account_id, id, inbox_id, contact_id, channel, status, priority, labels, attributes, \
    contact_attributes, first_message, last_agent_id, last_team_id, version";

/// Inserts or refreshes the projection (keeps first message and last agent) and
/// returns it as stored with whether it is placed (assigned or queued), as
/// [`routable`] does; `None` when the stored projection is already newer (a late,
/// stale event).
pub async fn upsert_conversation(
    conn: &mut PgConnection,
    c: &ConversationRow,
) -> Result<Option<(ConversationRow, bool)>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "INSERT INTO conversations AS c (account_id, id, inbox_id, contact_id, channel, status, priority, labels, attributes,
             contact_attributes, first_message, version)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)
         ON CONFLICT (account_id, id) DO UPDATE SET status = EXCLUDED.status, priority = EXCLUDED.priority,
             labels = EXCLUDED.labels, attributes = EXCLUDED.attributes, version = EXCLUDED.version,
             first_message = CASE WHEN c.first_message = '' THEN EXCLUDED.first_message ELSE c.first_message END
         WHERE c.version <= EXCLUDED.version
         RETURNING {CONV_COLUMNS}, {PLACED}"
    ))
    .bind(&c.account_id)
    .bind(c.id)
    .bind(c.inbox_id)
    .bind(c.contact_id)
    .bind(&c.channel)
    .bind(&c.status)
    .bind(c.priority)
    .bind(&c.labels)
    .bind(&c.attributes)
    .bind(&c.contact_attributes)
    .bind(&c.first_message)
    .bind(c.version)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((ConversationRow::from_row(&r)?, r.try_get("placed")?)))
        .transpose()
}

/// Whether conversation `c` is assigned or queued, as a `placed` column.
const PLACED: &str = "EXISTS (SELECT 1 FROM assignments a WHERE a.account_id = c.account_id AND a.conversation_id = c.id)
    OR EXISTS (SELECT 1 FROM queue q WHERE q.account_id = c.account_id AND q.conversation_id = c.id) AS placed";

/// One projected conversation.
pub async fn conversation(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<ConversationRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {CONV_COLUMNS} FROM conversations WHERE account_id = $1 AND id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The conversation and whether it is already placed (assigned or queued), in one
/// query.
pub async fn routable(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<(ConversationRow, bool)>, sqlx::Error> {
    let row = sqlx::query(&format!(
        "SELECT {CONV_COLUMNS}, {PLACED} FROM conversations c WHERE account_id = $1 AND id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    row.map(|r| Ok((ConversationRow::from_row(&r)?, r.try_get("placed")?)))
        .transpose()
}

/// Records the first customer message if none yet.
pub async fn set_first_message(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    text: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE conversations SET first_message = $3 WHERE account_id = $1 AND id = $2 AND first_message = ''")
        .bind(account)
        .bind(id)
        .bind(text)
        .execute(conn)
        .await?;
    Ok(())
}

/// The agent who most recently served this contact (any conversation).
pub async fn last_agent_of_contact(
    conn: &mut PgConnection,
    account: &str,
    contact: Uuid,
) -> Result<Option<String>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT last_agent_id FROM conversations WHERE account_id = $1 AND contact_id = $2 AND last_agent_id IS NOT NULL
         ORDER BY created_at DESC LIMIT 1",
    )
    .bind(account)
    .bind(contact)
    .fetch_optional(conn)
    .await
}

/// A queued conversation.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct QueueRow {
    pub account_id: String,
    pub conversation_id: Uuid,
    pub team_id: Option<Uuid>,
    pub required_skills: Vec<String>,
    pub priority_class: i32,
    pub strategy: String,
    pub channel: String,
    pub enqueued_at: DateTime<Utc>,
    pub stage: i32,
    pub not_before: Option<DateTime<Utc>>,
    /// Place in its team's queue (1 first), derived from the order when read; 0 when
    /// not derived.
    #[sqlx(default)]
    pub position: i32,
    /// Estimated wait, computed by the reader (never stored).
    #[sqlx(default)]
    pub estimate_secs: i32,
}

impl QueueRow {
    /// The queue's order: priority class, time entered, conversation id.
    pub fn order_key(&self) -> (i32, DateTime<Utc>, Uuid) {
        (self.priority_class, self.enqueued_at, self.conversation_id)
    }
}

const QUEUE_COLUMNS: &str = "account_id, conversation_id, team_id, required_skills, priority_class, strategy, channel, \
    enqueued_at, stage, not_before";

/// A queue row's place in its team's queue, as a column of a query over `queue`.
const POSITION: &str = "(row_number() OVER (PARTITION BY team_id ORDER BY priority_class, enqueued_at, conversation_id))::int AS position";

/// Puts a conversation in the queue.
pub async fn enqueue(conn: &mut PgConnection, q: &QueueRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "INSERT INTO queue (account_id, conversation_id, team_id, required_skills, priority_class, strategy, channel,
             enqueued_at, stage, not_before)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(&q.account_id)
    .bind(q.conversation_id)
    .bind(q.team_id)
    .bind(&q.required_skills)
    .bind(q.priority_class)
    .bind(&q.strategy)
    .bind(&q.channel)
    .bind(q.enqueued_at)
    .bind(q.stage)
    .bind(q.not_before)
    .execute(conn)
    .await?;
    Ok(())
}

/// One queue entry (its position not derived).
pub async fn queued(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<QueueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUEUE_COLUMNS} FROM queue WHERE account_id = $1 AND conversation_id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// One queue entry with its position (counting the entries ahead of it in its team's
/// queue).
pub async fn queued_with_position(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<QueueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUEUE_COLUMNS},
                (SELECT count(*) FROM queue a WHERE a.account_id = q.account_id
                   AND a.team_id IS NOT DISTINCT FROM q.team_id
                   AND (a.priority_class, a.enqueued_at, a.conversation_id)
                       <= (q.priority_class, q.enqueued_at, q.conversation_id))::int AS position
         FROM queue q WHERE account_id = $1 AND conversation_id = $2"
    ))
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// The whole queue of the account in order, with positions.
pub async fn queue(conn: &mut PgConnection, account: &str) -> Result<Vec<QueueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUEUE_COLUMNS}, {POSITION} FROM queue WHERE account_id = $1
         ORDER BY priority_class, enqueued_at, conversation_id"
    ))
    .bind(account)
    .fetch_all(conn)
    .await
}

/// Up to `limit` queue entries in order after `after` (from the head without it),
/// their positions not derived.
pub async fn queue_after(
    conn: &mut PgConnection,
    account: &str,
    after: Option<(i32, DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<QueueRow>, sqlx::Error> {
    sqlx::query_as(&format!(
        "SELECT {QUEUE_COLUMNS} FROM queue WHERE account_id = $1
           AND ($2::int IS NULL OR (priority_class, enqueued_at, conversation_id) > ($2, $3, $4))
         ORDER BY priority_class, enqueued_at, conversation_id LIMIT $5"
    ))
    .bind(account)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(after.map(|a| a.2))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await
}

/// The chats waiting in one team's queue in one priority class.
#[derive(Debug)]
pub struct TallyRow {
    pub team_id: Option<Uuid>,
    pub priority_class: i32,
    /// How many.
    pub waiting: usize,
    /// No entry of the class orders after this key (the last one's time entered,
    /// with the greatest id).
    pub last: (i32, DateTime<Utc>, Uuid),
}

/// The account's queue counted by team and priority class.
pub async fn queue_tally(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<TallyRow>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT team_id, priority_class, count(*) AS waiting, max(enqueued_at) AS last
         FROM queue WHERE account_id = $1 GROUP BY team_id, priority_class",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            let class: i32 = r.try_get("priority_class")?;
            let waiting: i64 = r.try_get("waiting")?;
            Ok(TallyRow {
                team_id: r.try_get("team_id")?,
                priority_class: class,
                waiting: usize::try_from(waiting).unwrap_or(0),
                last: (class, r.try_get("last")?, Uuid::max()),
            })
        })
        .collect()
}

/// A page of the queue in order (optionally one team's) after the `after` position
/// (priority class, time entered, conversation), each entry with its conversation's
/// contact and inbox, in one query.
pub async fn queue_page(
    conn: &mut PgConnection,
    account: &str,
    team: Option<Uuid>,
    after: Option<(i32, DateTime<Utc>, Uuid)>,
    limit: usize,
) -> Result<Vec<(QueueRow, Option<Uuid>, Option<Uuid>)>, sqlx::Error> {
    let columns: Vec<String> = QUEUE_COLUMNS
        .split(',')
        .map(|c| format!("q.{}", c.trim()))
        .collect();
    let rows = sqlx::query(&format!(
        "SELECT {}, q.position, c.contact_id, c.inbox_id
         FROM (SELECT {QUEUE_COLUMNS}, {POSITION} FROM queue
               WHERE account_id = $1 AND ($2::uuid IS NULL OR team_id = $2)) q
         LEFT JOIN conversations c ON c.account_id = q.account_id AND c.id = q.conversation_id
         WHERE ($3::int IS NULL OR (q.priority_class, q.enqueued_at, q.conversation_id) > ($3, $4, $5))
         ORDER BY q.priority_class, q.enqueued_at, q.conversation_id LIMIT $6",
        columns.join(", ")
    ))
    .bind(account)
    .bind(team)
    .bind(after.map(|a| a.0))
    .bind(after.map(|a| a.1))
    .bind(after.map(|a| a.2))
    .bind(i64::try_from(limit).unwrap_or(i64::MAX))
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok((
                QueueRow::from_row(r)?,
                r.try_get("contact_id")?,
                r.try_get("inbox_id")?,
            ))
        })
        .collect()
}

/// Removes a conversation from the queue; true when it was queued.
pub async fn dequeue(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<bool, sqlx::Error> {
    Ok(dequeue_all(conn, account, &[id]).await? == 1)
}

/// Removes conversations from the queue, in one statement; how many were queued.
pub async fn dequeue_all(
    conn: &mut PgConnection,
    account: &str,
    ids: &[Uuid],
) -> Result<u64, sqlx::Error> {
    Ok(
        sqlx::query("DELETE FROM queue WHERE account_id = $1 AND conversation_id = ANY($2)")
            .bind(account)
            .bind(ids)
            .execute(conn)
            .await?
            .rows_affected(),
    )
}

/// Writes routing changes of a queue entry (team, skills, stage).
pub async fn update_entry(conn: &mut PgConnection, q: &QueueRow) -> Result<(), sqlx::Error> {
    sqlx::query(
        "UPDATE queue SET team_id = $3, required_skills = $4, stage = $5, not_before = $6 WHERE account_id = $1 AND conversation_id = $2",
    )
    .bind(&q.account_id)
    .bind(q.conversation_id)
    .bind(q.team_id)
    .bind(&q.required_skills)
    .bind(q.stage)
    .bind(q.not_before)
    .execute(conn)
    .await?;
    Ok(())
}

/// Accounts with anything queued.
pub async fn accounts_with_queue(conn: &mut PgConnection) -> Result<Vec<String>, sqlx::Error> {
    sqlx::query_scalar("SELECT DISTINCT account_id FROM queue")
        .fetch_all(conn)
        .await
}

/// An open assignment.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct AssignmentRow {
    pub account_id: String,
    pub conversation_id: Uuid,
    pub agent_id: String,
    pub team_id: Option<Uuid>,
    pub channel: String,
    pub assigned_at: DateTime<Utc>,
}

/// What recording an assignment tells about it.
#[derive(Debug, Clone)]
pub struct Recorded {
    /// The agent who served the conversation before, if any.
    pub previous_agent_id: Option<String>,
    /// The assignment change's place in the order of all of them.
    pub sequence: i64,
}

/// Records an assignment in one statement: the assignment, its history row, the
/// agent's last assignment time, the conversation's last agent and team, and the
/// next assignment sequence number.
pub async fn assign(
    conn: &mut PgConnection,
    a: &AssignmentRow,
    reason: &str,
    waited_seconds: i32,
) -> Result<Recorded, sqlx::Error> {
    let row = sqlx::query(
        "WITH previous AS (
             SELECT last_agent_id FROM conversations WHERE account_id = $1 AND id = $2
         ), seated AS (
             INSERT INTO assignments (account_id, conversation_id, agent_id, team_id, channel, assigned_at)
             VALUES ($1, $2, $3, $4, $5, $6)
         ), logged AS (
             INSERT INTO assignment_log (account_id, conversation_id, agent_id, team_id, reason, waited_seconds, assigned_at)
             VALUES ($1, $2, $3, $4, $7, $8, $6)
         ), agent AS (
             UPDATE agents SET last_assigned_at = $6 WHERE account_id = $1 AND id = $3
         ), conversation AS (
             UPDATE conversations SET last_agent_id = $3, last_team_id = $4 WHERE account_id = $1 AND id = $2
         )
         SELECT (SELECT last_agent_id FROM previous) AS previous_agent_id,
                nextval('assignment_sequence') AS sequence",
    )
    .bind(&a.account_id)
    .bind(a.conversation_id)
    .bind(&a.agent_id)
    .bind(a.team_id)
    .bind(&a.channel)
    .bind(a.assigned_at)
    .bind(reason)
    .bind(waited_seconds)
    .fetch_one(conn)
    .await?;
    Ok(Recorded {
        previous_agent_id: row.try_get("previous_agent_id")?,
        sequence: row.try_get("sequence")?,
    })
}

/// The open assignment of a conversation.
pub async fn assignment(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<AssignmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, conversation_id, agent_id, team_id, channel, assigned_at FROM assignments
         WHERE account_id = $1 AND conversation_id = $2",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await
}

/// Open assignments of an agent.
pub async fn assignments_of(
    conn: &mut PgConnection,
    account: &str,
    agent: &str,
) -> Result<Vec<AssignmentRow>, sqlx::Error> {
    sqlx::query_as(
        "SELECT account_id, conversation_id, agent_id, team_id, channel, assigned_at FROM assignments
         WHERE account_id = $1 AND agent_id = $2 ORDER BY assigned_at",
    )
    .bind(account)
    .bind(agent)
    .fetch_all(conn)
    .await
}

/// Ends an open assignment (capacity freed) and closes its history row.
pub async fn release(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<AssignmentRow>, sqlx::Error> {
    let released: Option<AssignmentRow> = sqlx::query_as(
        "DELETE FROM assignments WHERE account_id = $1 AND conversation_id = $2
         RETURNING account_id, conversation_id, agent_id, team_id, channel, assigned_at",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(&mut *conn)
    .await?;
    if released.is_some() {
        sqlx::query("UPDATE assignment_log SET released_at = now() WHERE account_id = $1 AND conversation_id = $2 AND released_at IS NULL")
            .bind(account)
            .bind(id)
            .execute(conn)
            .await?;
    }
    Ok(released)
}

/// When the customer first started waiting for an agent in this conversation (its
/// first assignment, less the time it had waited in the queue), if it ever had one.
pub async fn first_waiting_since(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
) -> Result<Option<DateTime<Utc>>, sqlx::Error> {
    sqlx::query_scalar(
        "SELECT min(assigned_at - make_interval(secs => waited_seconds)) FROM assignment_log
         WHERE account_id = $1 AND conversation_id = $2",
    )
    .bind(account)
    .bind(id)
    .fetch_one(conn)
    .await
}

/// Average seconds an assignment lasted (last 200 released), if any.
pub async fn average_handle_seconds(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Option<f64>, sqlx::Error> {
    let row = sqlx::query(
        "SELECT avg(extract(epoch FROM released_at - assigned_at))::float8 AS avg, count(*) AS n FROM (
             SELECT assigned_at, released_at FROM assignment_log WHERE account_id = $1 AND released_at IS NOT NULL
             ORDER BY released_at DESC LIMIT 200) recent",
    )
    .bind(account)
    .fetch_one(conn)
    .await?;
    let n: i64 = row.get("n");
    Ok(if n >= 5 { row.get("avg") } else { None })
}

/// Records an overflow.
pub async fn log_overflow(
    conn: &mut PgConnection,
    account: &str,
    id: Uuid,
    from_team: Option<Uuid>,
    action: &str,
    reason: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query("INSERT INTO overflow_log (account_id, conversation_id, from_team_id, action, reason) VALUES ($1, $2, $3, $4, $5)")
        .bind(account)
        .bind(id)
        .bind(from_team)
        .bind(action)
        .bind(reason)
        .execute(conn)
        .await?;
    Ok(())
}

/// Per-team counts for live monitoring: (team, waiting, longest wait s, average wait s).
pub async fn waiting_by_team(
    conn: &mut PgConnection,
    account: &str,
) -> Result<Vec<(Option<Uuid>, i64, f64, f64)>, sqlx::Error> {
    let rows = sqlx::query(
        "SELECT team_id, count(*) AS n, coalesce(max(extract(epoch FROM now() - enqueued_at)), 0)::float8 AS longest,
                coalesce(avg(extract(epoch FROM now() - enqueued_at)), 0)::float8 AS average
         FROM queue WHERE account_id = $1 GROUP BY team_id",
    )
    .bind(account)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|r| {
            (
                r.get("team_id"),
                r.get("n"),
                r.get("longest"),
                r.get("average"),
            )
        })
        .collect())
}

/// Assignments and overflows since the start of the UTC day, per team.
pub async fn today_by_team(
    conn: &mut PgConnection,
    account: &str,
) -> Result<HashMap<Option<Uuid>, (i64, i64)>, sqlx::Error> {
    let mut out: HashMap<Option<Uuid>, (i64, i64)> = HashMap::new();
    for r in sqlx::query(
        "SELECT team_id, count(*) AS n FROM assignment_log WHERE account_id = $1 AND assigned_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' GROUP BY team_id",
    )
    .bind(account)
    .fetch_all(&mut *conn)
    .await?
    {
        out.entry(r.get("team_id")).or_default().0 = r.get("n");
    }
    for r in sqlx::query(
        "SELECT from_team_id, count(*) AS n FROM overflow_log WHERE account_id = $1 AND at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' GROUP BY from_team_id",
    )
    .bind(account)
    .fetch_all(conn)
    .await?
    {
        out.entry(r.get("from_team_id")).or_default().1 = r.get("n");
    }
    Ok(out)
}

/// The next number of the account-independent assignment series (drawn under the
/// account lock, so it orders one account's assignment changes).
pub async fn next_assignment_sequence(conn: &mut PgConnection) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar("SELECT nextval('assignment_sequence')")
        .fetch_one(conn)
        .await
}

/// Forgets who served the conversation last: a reopened conversation is routed like
/// a new one, not back to that agent.
pub async fn forget_last_agent(
    conn: &mut PgConnection,
    account: &str,
    conversation_id: Uuid,
) -> Result<(), sqlx::Error> {
    sqlx::query("UPDATE conversations SET last_agent_id = NULL WHERE account_id = $1 AND id = $2")
        .bind(account)
        .bind(conversation_id)
        .execute(conn)
        .await?;
    Ok(())
}
