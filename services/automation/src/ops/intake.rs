//! Taking events in (in the consumer's transaction): the projections kept current,
//! and the events queued for the executors when some active rule listens to them.
//! The conversations and the queue are written once per batch of events.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use helpdesk_kit::consumer::HandlerError;
use helpdesk_kit::time::from_timestamp;
use helpdesk_proto::automation::v1::SampleEvent;
use helpdesk_proto::conversation::v1::{Contact, Conversation};
use prost::Message as _;
use sqlx::PgConnection;

use super::events::decode;
use crate::cache::{AccountRules, RuleCache};
use crate::domain::facts::Facts;
use crate::domain::rules::{Compiled, Needs};
use crate::store::{self, facts::ConversationRecord, pending::NewEvent};

/// An event taken in whose conversation and queue writes wait for the end of its
/// batch.
#[derive(Debug)]
pub struct Taken {
    account: String,
    event_id: String,
    kind: String,
    payload: Vec<u8>,
    at: DateTime<Utc>,
    /// What the event carries.
    facts: Facts,
    /// The ticket before the event (saved at once).
    previous_ticket: Option<helpdesk_proto::ticketing::v1::Ticket>,
    /// What its runs are ordered by (see `Incoming::aggregate`).
    aggregate: String,
    /// The rule events it counts as, and the account's rules when one of them listens
    /// (`None`: the event is only kept, never queued).
    triggers: Vec<&'static str>,
    rules: Option<Arc<AccountRules>>,
}

/// Takes in an event of `kind` (encoded as `payload`) of `account`: contacts, inboxes
/// and tickets are saved at once; the rest is left for [`finish`].
pub async fn take(
    conn: &mut PgConnection,
    cache: &RuleCache,
    account: &str,
    event_id: &str,
    kind: &str,
    payload: &[u8],
) -> Result<Taken, HandlerError> {
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
    if let Some(c) = &facts.contact {
        store::facts::save_contact(conn, account, c).await?;
    }
    if let Some(i) = &facts.inbox {
        store::facts::save_inbox(conn, account, i).await?;
    }
    if let Some(h) = &incoming.hours {
        store::facts::save_hours(conn, account, h).await?;
    }
    let previous_ticket = match &facts.ticket {
        Some(t) => store::facts::save_ticket(conn, account, t, at).await?,
        None => None,
    };
    let rules = if incoming.triggers.is_empty() || incoming.aggregate().is_empty() {
        None
    } else {
        Some(cache.get(account).await?).filter(|r| r.listens(&incoming.triggers))
    };
    Ok(Taken {
        account: account.to_string(),
        event_id: event_id.to_string(),
        kind: kind.to_string(),
        payload: payload.to_vec(),
        at,
        aggregate: incoming.aggregate().to_string(),
        facts: incoming.facts,
        previous_ticket,
        triggers: incoming.triggers,
        rules,
    })
}

/// Whether a rule of the event may act on it: false when the event carries its
/// conversation (so the executor would see the same facts) and no listening rule's
/// conditions hold. The executor's work (a queued row, a claim, a removal) is then
/// saved; any other event is queued.
async fn worth_running(
    conn: &mut PgConnection,
    t: &Taken,
    before: &SampleEvent,
    contacts: &HashMap<(String, String), Contact>,
) -> Result<bool, HandlerError> {
    let (Some(rules), Some(conv)) = (&t.rules, &t.facts.conversation) else {
        return Ok(true);
    };
    if t.facts.ticket.is_some() {
        return Ok(true);
    }
    let listening: Vec<&Compiled> = rules.of(&t.triggers).map(|r| r.as_ref()).collect();
    let needs = Needs::of(listening.iter().copied());
    if needs.state {
        return Ok(true);
    }
    let mut facts = Facts {
        previous_conversation: before.previous_conversation.clone(),
        ..t.facts.clone()
    };
    if needs.contact && facts.contact.is_none() {
        // Read for the whole batch at once (an unknown contact stays unknown).
        let key = (t.account.clone(), conv.contact_id.clone());
        facts.contact = contacts.get(&key).cloned();
    }
    let needs = Needs {
        contact: false,
        ..needs
    };
    store::facts::complete(conn, &t.account, &mut facts, needs).await?;
    Ok(listening.iter().any(|r| r.matches(&facts)))
}

/// Writes what a batch of events `taken` (in their order) leaves: each conversation
/// once, and every queued event with the conversation and ticket it found before it.
pub async fn finish(conn: &mut PgConnection, taken: Vec<Taken>) -> Result<(), HandlerError> {
    let mut keys: Vec<(String, String)> = taken
        .iter()
        .filter_map(|t| Some((t.account.clone(), t.facts.conversation.as_ref()?.id.clone())))
        .collect();
    keys.sort();
    keys.dedup();
    let mut records: HashMap<(String, String), ConversationRecord> =
        store::facts::lock_conversations(conn, &keys)
            .await?
            .into_iter()
            .map(|r| ((r.account_id.clone(), r.id.clone()), r))
            .collect();
    // The contacts the evaluations read, in one query.
    let mut wanted: Vec<(String, String)> = taken
        .iter()
        .filter(|t| t.rules.is_some() && t.facts.contact.is_none())
        .filter_map(|t| {
            Some((
                t.account.clone(),
                t.facts.conversation.as_ref()?.contact_id.clone(),
            ))
        })
        .collect();
    wanted.sort();
    wanted.dedup();
    let contacts = store::facts::contacts(conn, &wanted).await?;
    let mut queue: Vec<(usize, Option<Vec<u8>>)> = Vec::new();
    for (i, t) in taken.iter().enumerate() {
        let mut before = SampleEvent {
            previous_ticket: t.previous_ticket.clone(),
            ..Default::default()
        };
        if let Some(c) = &t.facts.conversation {
            let key = (t.account.clone(), c.id.clone());
            match records.get_mut(&key) {
                Some(record) => {
                    if t.rules.is_some() {
                        before.previous_conversation =
                            Some(Conversation::decode(record.body.as_slice()).unwrap_or_default());
                    }
                    record.apply(c, t.at);
                }
                None => {
                    records.insert(key.clone(), ConversationRecord::new(&t.account, c, t.at));
                }
            }
            let record = records.get_mut(&key).expect("just stored");
            if let Some(m) = t
                .facts
                .message
                .as_ref()
                .filter(|m| m.conversation_id == c.id)
            {
                record.note(m);
            }
        }
        if t.rules.is_some() && worth_running(conn, t, &before, &contacts).await? {
            let previous = (before.previous_conversation.is_some()
                || before.previous_ticket.is_some())
            .then(|| before.encode_to_vec());
            queue.push((i, previous));
        }
    }
    // Every conversation of the batch, in the order its rows were locked.
    let changed: Vec<ConversationRecord> = keys.iter().filter_map(|k| records.remove(k)).collect();
    store::facts::save_conversations(conn, &changed).await?;
    let events: Vec<NewEvent<'_>> = queue
        .into_iter()
        .map(|(i, previous)| {
            let t = &taken[i];
            NewEvent {
                account: &t.account,
                aggregate: &t.aggregate,
                event_id: &t.event_id,
                kind: &t.kind,
                payload: t.payload.clone(),
                previous,
            }
        })
        .collect();
    store::pending::enqueue_all(conn, &events).await?;
    Ok(())
}
