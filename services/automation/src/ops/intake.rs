//! Taking an event in (in the consumer's transaction): the projections kept current,
//! and the event queued for the executors when some active rule listens to it.

use helpdesk_kit::consumer::HandlerError;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::automation::v1::SampleEvent;
use prost::Message as _;
use sqlx::PgConnection;

use super::events::decode;
use crate::cache::RuleCache;
use crate::store::{self, pending::NewEvent};

/// Applies an event of `kind` (encoded as `payload`) of `account`.
pub async fn take(
    conn: &mut PgConnection,
    cache: &RuleCache,
    account: &str,
    event_id: &str,
    kind: &str,
    payload: &[u8],
) -> Result<(), HandlerError> {
    let Some(incoming) = decode(kind, payload) else {
        return Err(HandlerError::Poison(format!("undecodable {kind}")));
    };
    let at = incoming
        .meta
        .occurred_at
        .as_ref()
        .and_then(from_timestamp)
        .unwrap_or_else(chrono::Utc::now);
    let facts = &incoming.facts;
    let mut before = SampleEvent::default();
    if let Some(c) = &facts.conversation {
        before.previous_conversation =
            store::facts::save_conversation(conn, account, c, at).await?;
    }
    if let Some(m) = &facts.message {
        store::facts::note_message(conn, account, m).await?;
    }
    if let Some(c) = &facts.contact {
        store::facts::save_contact(conn, account, c).await?;
    }
    if let Some(i) = &facts.inbox {
        store::facts::save_inbox(conn, account, i).await?;
    }
    if let Some(t) = &facts.ticket {
        before.previous_ticket = store::facts::save_ticket(conn, account, t, at).await?;
    }
    if incoming.triggers.is_empty() || incoming.aggregate().is_empty() {
        return Ok(());
    }
    let rules = cache.get(account).await?;
    if !rules.listens(&incoming.triggers) {
        return Ok(());
    }
    let previous = (before.previous_conversation.is_some() || before.previous_ticket.is_some())
        .then(|| before.encode_to_vec());
    store::pending::enqueue(
        conn,
        NewEvent {
            account,
            aggregate: incoming.aggregate(),
            event_id,
            kind,
            payload: payload.to_vec(),
            previous,
        },
    )
    .await?;
    Ok(())
}
