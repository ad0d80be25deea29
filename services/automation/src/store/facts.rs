//! Projections of other services' data, fed by their events: what a delayed run
//! re-checks, what a dry run evaluates against, and what events that carry only an id
//! are completed with.

use std::collections::HashMap;

use chrono::{DateTime, Utc};
use helpdesk_kit::hours::HoursSpec;

use crate::domain::facts::Facts;
use crate::domain::rules::Needs;
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::{
    Contact, Conversation, ConversationStatus, Inbox, Message, MessageKind,
};
use helpdesk_proto::routing::v1::BusinessHours;
use helpdesk_proto::ticketing::v1::Ticket;
use prost::Message as _;
use sqlx::PgConnection;

/// A conversation as last seen, with what its episodes are measured by.
#[derive(Debug, Clone, Default)]
pub struct ConversationState {
    pub conversation: Conversation,
    pub status_since: DateTime<Utc>,
    pub last_message_id: String,
    pub last_customer_message_id: String,
    pub last_agent_id: String,
}

#[derive(sqlx::FromRow)]
struct ConversationRow {
    body: Vec<u8>,
    status_since: DateTime<Utc>,
    last_message_id: String,
    last_customer_message_id: String,
    last_agent_id: String,
}

impl ConversationRow {
    fn into_state(self) -> ConversationState {
        ConversationState {
            conversation: Conversation::decode(self.body.as_slice()).unwrap_or_default(),
            status_since: self.status_since,
            last_message_id: self.last_message_id,
            last_customer_message_id: self.last_customer_message_id,
            last_agent_id: self.last_agent_id,
        }
    }
}

pub async fn conversation(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> sqlx::Result<Option<ConversationState>> {
    let row: Option<ConversationRow> = sqlx::query_as(
        "SELECT body, status_since, last_message_id, last_customer_message_id, last_agent_id
         FROM conversations WHERE account_id = $1 AND id = $2",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(ConversationRow::into_state))
}

/// A conversation's projection row, as stored or as a batch of events leaves it.
#[derive(Debug, Clone, sqlx::FromRow)]
pub struct ConversationRecord {
    pub account_id: String,
    pub id: String,
    pub version: i64,
    pub body: Vec<u8>,
    pub status: String,
    pub status_since: DateTime<Utc>,
    pub last_sequence: i64,
    pub last_message_id: String,
    pub last_customer_message_id: String,
    pub last_agent_id: String,
}

impl ConversationRecord {
    /// The record a first sight of `conv` (at `at`) makes.
    pub fn new(account: &str, conv: &Conversation, at: DateTime<Utc>) -> Self {
        Self {
            account_id: account.to_string(),
            id: conv.id.clone(),
            version: conv.version,
            body: conv.encode_to_vec(),
            status: status_name(conv),
            status_since: at,
            last_sequence: 0,
            last_message_id: String::new(),
            last_customer_message_id: String::new(),
            last_agent_id: String::new(),
        }
    }

    /// Takes `conv` in unless the record is newer; a new status starts at `at`.
    pub fn apply(&mut self, conv: &Conversation, at: DateTime<Utc>) {
        if conv.version <= self.version {
            return;
        }
        let status = status_name(conv);
        if status != self.status {
            self.status = status;
            self.status_since = at;
        }
        self.version = conv.version;
        self.body = conv.encode_to_vec();
    }

    /// Notes `m` unless a later message is known: the last one, the customer's last
    /// one, the agent who last wrote to the customer (only public messages written by
    /// a person count).
    pub fn note(&mut self, m: &Message) {
        let kind = MessageKind::try_from(m.kind).unwrap_or_default();
        let sender = m.sender.as_ref();
        let by_agent = sender
            .is_some_and(|s| ActorKind::try_from(s.kind).unwrap_or_default() == ActorKind::Agent);
        let counts = match kind {
            MessageKind::Incoming => true,
            MessageKind::Outgoing => by_agent,
            _ => false,
        };
        if !counts || m.sequence <= self.last_sequence {
            return;
        }
        self.last_sequence = m.sequence;
        self.last_message_id = m.id.clone();
        if kind == MessageKind::Incoming {
            self.last_customer_message_id = m.id.clone();
        } else if let Some(agent) = sender {
            self.last_agent_id = agent.id.clone();
        }
    }
}

fn status_name(conv: &Conversation) -> String {
    ConversationStatus::try_from(conv.status)
        .unwrap_or_default()
        .storage_name()
        .to_string()
}

/// The stored records of `keys` (account, conversation), locked until the
/// transaction ends (in one order, so that two batches cannot deadlock).
pub async fn lock_conversations(
    conn: &mut PgConnection,
    keys: &[(String, String)],
) -> sqlx::Result<Vec<ConversationRecord>> {
    let (accounts, ids): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(a, i)| (a.as_str(), i.as_str())).unzip();
    sqlx::query_as(
        "SELECT account_id, id, version, body, status, status_since, last_sequence,
           last_message_id, last_customer_message_id, last_agent_id
         FROM conversations
         WHERE (account_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))
         ORDER BY account_id, id FOR UPDATE",
    )
    .bind(accounts)
    .bind(ids)
    .fetch_all(conn)
    .await
}

/// Writes `records` in one statement; a record never replaces a newer version or
/// a later message that another replica wrote meanwhile.
pub async fn save_conversations(
    conn: &mut PgConnection,
    records: &[ConversationRecord],
) -> sqlx::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    macro_rules! column {
        ($field:ident) => {
            records.iter().map(|r| r.$field.clone()).collect::<Vec<_>>()
        };
    }
    sqlx::query(
        "INSERT INTO conversations AS c (account_id, id, version, body, status, status_since,
           last_sequence, last_message_id, last_customer_message_id, last_agent_id)
         SELECT * FROM unnest($1::text[], $2::text[], $3::int8[], $4::bytea[], $5::text[],
           $6::timestamptz[], $7::int8[], $8::text[], $9::text[], $10::text[])
         ON CONFLICT (account_id, id) DO UPDATE SET
           status_since = CASE WHEN EXCLUDED.version < c.version THEN c.status_since
             ELSE EXCLUDED.status_since END,
           status = CASE WHEN EXCLUDED.version < c.version THEN c.status ELSE EXCLUDED.status END,
           body = CASE WHEN EXCLUDED.version < c.version THEN c.body ELSE EXCLUDED.body END,
           version = GREATEST(c.version, EXCLUDED.version),
           updated_at = now(),
           last_message_id = CASE WHEN EXCLUDED.last_sequence < c.last_sequence
             THEN c.last_message_id ELSE EXCLUDED.last_message_id END,
           last_customer_message_id = CASE WHEN EXCLUDED.last_sequence < c.last_sequence
             THEN c.last_customer_message_id ELSE EXCLUDED.last_customer_message_id END,
           last_agent_id = CASE WHEN EXCLUDED.last_sequence < c.last_sequence
             THEN c.last_agent_id ELSE EXCLUDED.last_agent_id END,
           last_sequence = GREATEST(c.last_sequence, EXCLUDED.last_sequence)",
    )
    .bind(column!(account_id))
    .bind(column!(id))
    .bind(column!(version))
    .bind(column!(body))
    .bind(column!(status))
    .bind(column!(status_since))
    .bind(column!(last_sequence))
    .bind(column!(last_message_id))
    .bind(column!(last_customer_message_id))
    .bind(column!(last_agent_id))
    .execute(conn)
    .await?;
    Ok(())
}

macro_rules! blob_table {
    ($get:ident, $save:ident, $ty:ty, $table:literal) => {
        pub async fn $get(
            conn: &mut PgConnection,
            account: &str,
            id: &str,
        ) -> sqlx::Result<Option<$ty>> {
            let body: Option<Vec<u8>> = sqlx::query_scalar(concat!(
                "SELECT body FROM ",
                $table,
                " WHERE account_id = $1 AND id = $2"
            ))
            .bind(account)
            .bind(id)
            .fetch_optional(conn)
            .await?;
            Ok(body.map(|b| <$ty>::decode(b.as_slice()).unwrap_or_default()))
        }

        pub async fn $save(
            conn: &mut PgConnection,
            account: &str,
            value: &$ty,
        ) -> sqlx::Result<()> {
            sqlx::query(concat!(
                "INSERT INTO ",
                $table,
                " (account_id, id, body) VALUES ($1, $2, $3)
                 ON CONFLICT (account_id, id) DO UPDATE SET body = EXCLUDED.body"
            ))
            .bind(account)
            .bind(&value.id)
            .bind(value.encode_to_vec())
            .execute(conn)
            .await?;
            Ok(())
        }
    };
}

blob_table!(contact, save_contact, Contact, "contacts");
blob_table!(inbox, save_inbox, Inbox, "inboxes");

/// The contacts of `keys` (account, contact id) that are known.
pub async fn contacts(
    conn: &mut PgConnection,
    keys: &[(String, String)],
) -> sqlx::Result<HashMap<(String, String), Contact>> {
    if keys.is_empty() {
        return Ok(HashMap::new());
    }
    let (accounts, ids): (Vec<&str>, Vec<&str>) =
        keys.iter().map(|(a, i)| (a.as_str(), i.as_str())).unzip();
    let rows: Vec<(String, String, Vec<u8>)> = sqlx::query_as(
        "SELECT account_id, id, body FROM contacts
         WHERE (account_id, id) IN (SELECT * FROM unnest($1::text[], $2::text[]))",
    )
    .bind(accounts)
    .bind(ids)
    .fetch_all(conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(a, i, b)| ((a, i), Contact::decode(b.as_slice()).unwrap_or_default()))
        .collect())
}

/// Keeps the business hours of a team or an inbox.
pub async fn save_hours(
    conn: &mut PgConnection,
    account: &str,
    hours: &BusinessHours,
) -> sqlx::Result<()> {
    let owner = if hours.team_id.is_empty() {
        &hours.inbox_id
    } else {
        &hours.team_id
    };
    sqlx::query(
        "INSERT INTO business_hours (account_id, owner_id, body) VALUES ($1, $2, $3)
         ON CONFLICT (account_id, owner_id) DO UPDATE SET body = EXCLUDED.body",
    )
    .bind(account)
    .bind(owner)
    .bind(hours.encode_to_vec())
    .execute(conn)
    .await?;
    Ok(())
}

/// Completes the facts of a conversation's event from the projections with what
/// `needs` says the rules read: its contact (when the event carried none), its inbox,
/// and whether its business hours are open now.
pub async fn complete(
    conn: &mut PgConnection,
    account: &str,
    facts: &mut Facts,
    needs: Needs,
) -> sqlx::Result<()> {
    let Some(c) = &facts.conversation else {
        return Ok(());
    };
    let (contact_id, inbox_id, team_id) =
        (c.contact_id.clone(), c.inbox_id.clone(), c.team_id.clone());
    if needs.contact && facts.contact.is_none() {
        facts.contact = contact(conn, account, &contact_id).await?;
    }
    if needs.inbox {
        facts.inbox = inbox(conn, account, &inbox_id).await?;
    }
    if needs.hours {
        facts.within_hours =
            Some(within_hours(conn, account, &team_id, &inbox_id, Utc::now()).await?);
    }
    Ok(())
}

/// Whether the business hours of a conversation of `team` and `inbox` (the team's,
/// else the inbox's, as routing applies them) are open at `at`; open when neither has
/// hours.
async fn within_hours(
    conn: &mut PgConnection,
    account: &str,
    team: &str,
    inbox: &str,
    at: DateTime<Utc>,
) -> sqlx::Result<bool> {
    let owners: Vec<&str> = [team, inbox]
        .into_iter()
        .filter(|o| !o.is_empty())
        .collect();
    let rows: Vec<(String, Vec<u8>)> = sqlx::query_as(
        "SELECT owner_id, body FROM business_hours WHERE account_id = $1 AND owner_id = ANY($2)",
    )
    .bind(account)
    .bind(&owners)
    .fetch_all(conn)
    .await?;
    let first = owners
        .iter()
        .find_map(|o| rows.iter().find(|(owner, _)| owner == o));
    let Some((_, body)) = first else {
        return Ok(true);
    };
    let hours = BusinessHours::decode(body.as_slice()).unwrap_or_default();
    let mut v = helpdesk_kit::grpc::Violations::new();
    let compiled = HoursSpec::from_proto(&hours, &mut v).compile();
    Ok(compiled.is_none_or(|h| h.is_open(at)))
}

/// A ticket as last seen and since when it has its status.
pub async fn ticket(
    conn: &mut PgConnection,
    account: &str,
    id: &str,
) -> sqlx::Result<Option<(Ticket, DateTime<Utc>)>> {
    let row: Option<(Vec<u8>, DateTime<Utc>)> =
        sqlx::query_as("SELECT body, status_since FROM tickets WHERE account_id = $1 AND id = $2")
            .bind(account)
            .bind(id)
            .fetch_optional(conn)
            .await?;
    Ok(row.map(|(b, since)| (Ticket::decode(b.as_slice()).unwrap_or_default(), since)))
}

/// Keeps `t` unless a later update is stored; the ticket stored before.
pub async fn save_ticket(
    conn: &mut PgConnection,
    account: &str,
    t: &Ticket,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Ticket>> {
    let stored: Option<(Vec<u8>, Option<DateTime<Utc>>)> = sqlx::query_as(
        "SELECT body, update_time FROM tickets WHERE account_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(account)
    .bind(&t.id)
    .fetch_optional(&mut *conn)
    .await?;
    let updated = t.update_time.as_ref().and_then(from_timestamp);
    let previous = stored
        .as_ref()
        .map(|(b, _)| Ticket::decode(b.as_slice()).unwrap_or_default());
    let newer = match (&stored, updated) {
        (None, _) => true,
        (Some((_, Some(old))), Some(new)) => new >= *old,
        _ => true,
    };
    if newer {
        sqlx::query(
            "INSERT INTO tickets (account_id, id, body, status, status_since, update_time)
             VALUES ($1, $2, $3, $4, $5, $6)
             ON CONFLICT (account_id, id) DO UPDATE SET body = EXCLUDED.body,
               status_since = CASE WHEN tickets.status = EXCLUDED.status
                 THEN tickets.status_since ELSE EXCLUDED.status_since END,
               status = EXCLUDED.status, update_time = EXCLUDED.update_time",
        )
        .bind(account)
        .bind(&t.id)
        .bind(t.encode_to_vec())
        .bind(&t.status)
        .bind(at)
        .bind(updated)
        .execute(conn)
        .await?;
    }
    Ok(previous)
}
