//! Projections of other services' data, fed by their events: what a delayed run
//! re-checks, what a dry run evaluates against, and what events that carry only an id
//! are completed with.

use chrono::{DateTime, Utc};
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::common::v1::ActorKind;
use helpdesk_proto::conversation::v1::{
    Contact, Conversation, ConversationStatus, Inbox, Message, MessageKind,
};
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
    version: i64,
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
        "SELECT version, body, status_since, last_message_id, last_customer_message_id,
           last_agent_id FROM conversations WHERE account_id = $1 AND id = $2",
    )
    .bind(account)
    .bind(id)
    .fetch_optional(conn)
    .await?;
    Ok(row.map(ConversationRow::into_state))
}

/// Keeps `conv` unless a newer version is stored (`at`: when the event happened, the
/// start of a new status). Returns the conversation stored before.
pub async fn save_conversation(
    conn: &mut PgConnection,
    account: &str,
    conv: &Conversation,
    at: DateTime<Utc>,
) -> sqlx::Result<Option<Conversation>> {
    let stored: Option<ConversationRow> = sqlx::query_as(
        "SELECT version, body, status_since, last_message_id, last_customer_message_id,
           last_agent_id FROM conversations WHERE account_id = $1 AND id = $2 FOR UPDATE",
    )
    .bind(account)
    .bind(&conv.id)
    .fetch_optional(&mut *conn)
    .await?;
    let status = ConversationStatus::try_from(conv.status)
        .unwrap_or_default()
        .storage_name();
    match stored {
        None => {
            sqlx::query(
                "INSERT INTO conversations (account_id, id, version, body, status, status_since)
                 VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT DO NOTHING",
            )
            .bind(account)
            .bind(&conv.id)
            .bind(conv.version)
            .bind(conv.encode_to_vec())
            .bind(status)
            .bind(at)
            .execute(conn)
            .await?;
            Ok(None)
        }
        Some(row) => {
            let previous = Conversation::decode(row.body.as_slice()).unwrap_or_default();
            if conv.version > row.version {
                sqlx::query(
                    "UPDATE conversations SET version = $3, body = $4,
                       status_since = CASE WHEN status = $5 THEN status_since ELSE $6 END,
                       status = $5, updated_at = now()
                     WHERE account_id = $1 AND id = $2",
                )
                .bind(account)
                .bind(&conv.id)
                .bind(conv.version)
                .bind(conv.encode_to_vec())
                .bind(status)
                .bind(at)
                .execute(conn)
                .await?;
            }
            Ok(Some(previous))
        }
    }
}

/// Notes a message of the conversation (the last one, the customer's last one, the
/// agent who last wrote to the customer), unless a later one is known.
pub async fn note_message(conn: &mut PgConnection, account: &str, m: &Message) -> sqlx::Result<()> {
    let kind = MessageKind::try_from(m.kind).unwrap_or_default();
    let sender = m.sender.clone().unwrap_or_default();
    let sender_kind = ActorKind::try_from(sender.kind).unwrap_or_default();
    let public_by_person = match kind {
        MessageKind::Incoming => true,
        MessageKind::Outgoing => sender_kind == ActorKind::Agent,
        _ => false,
    };
    if !public_by_person {
        return Ok(());
    }
    let customer = kind == MessageKind::Incoming;
    let agent = (kind == MessageKind::Outgoing).then_some(sender.id.as_str());
    sqlx::query(
        "UPDATE conversations SET last_sequence = $3, last_message_id = $4,
           last_customer_message_id = CASE WHEN $5 THEN $4 ELSE last_customer_message_id END,
           last_agent_id = COALESCE($6, last_agent_id)
         WHERE account_id = $1 AND id = $2 AND last_sequence < $3",
    )
    .bind(account)
    .bind(&m.conversation_id)
    .bind(m.sequence)
    .bind(&m.id)
    .bind(customer)
    .bind(agent)
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
