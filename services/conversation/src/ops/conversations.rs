//! Conversations: started, created, changed and moved between statuses.

use chrono::{DateTime, Utc};
use helpdesk_kit::auth::{Claims, Role};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::event::{Origin, bot_actor, contact_actor};
use helpdesk_kit::storage::StorageName;
use helpdesk_kit::{outbox, timers};
use helpdesk_proto::common::v1::Actor;
use helpdesk_proto::conversation::v1::{
    Contact, ConversationCreated, ConversationStatus, ConversationStatusChanged,
    ConversationUpdated, Handoff, MessageKind, Priority, StartConversationRequest,
};
use sqlx::PgConnection;
use sqlx::types::Json;
use uuid::Uuid;

use helpdesk_kit::grpc::Violations;

use super::contacts::{Identity, merge, upsert};
use super::messages::{append, find_by_client_id};
use crate::domain::{self, identity};
use crate::store::{
    self, contacts::ContactRow, conversations::ConversationRow, conversations::Scope,
    inboxes::InboxRow,
};

/// How a conversation is resolved.
#[derive(Debug, Clone, Copy, Default)]
pub struct Closing {
    /// Staff chose "resolve without survey".
    pub skip_survey: bool,
    /// Closed because nobody wrote (the inactivity, pending or bot timers).
    pub inactivity: bool,
}

/// Moves `conv` to `to`, keeps the snooze timer in step, saves, and records
/// `conversation.status_changed`. No-op when nothing changes.
pub async fn change_status(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    to: ConversationStatus,
    snoozed_until: Option<DateTime<Utc>>,
) -> Result<ConversationRow> {
    change_status_with(
        conn,
        origin,
        conv,
        to,
        snoozed_until,
        None,
        Closing::default(),
    )
    .await
}

/// Resolves `conv` as `closing` says (closing line and survey per its inbox).
pub async fn resolve(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    closing: Closing,
) -> Result<ConversationRow> {
    change_status_with(
        conn,
        origin,
        conv,
        ConversationStatus::Resolved,
        None,
        None,
        closing,
    )
    .await
}

/// [`change_status`], the event carrying how a bot handed the conversation over, and
/// a resolution how it was closed.
pub(super) async fn change_status_with(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    to: ConversationStatus,
    snoozed_until: Option<DateTime<Utc>>,
    handoff: Option<Handoff>,
    closing: Closing,
) -> Result<ConversationRow> {
    let from = conv.status();
    if from == to && conv.snoozed_until == snoozed_until {
        return Ok(conv);
    }
    let mut conv = conv;
    conv.set_status(to, &origin.actor);
    conv.snoozed_until = snoozed_until;
    if to == ConversationStatus::Resolved {
        conv.waiting_since = None;
    }
    let conv = store::conversations::update(conn, &conv).await?;
    let key = conv.id.to_string();
    match (to, snoozed_until) {
        (ConversationStatus::Snoozed, Some(until)) => {
            let fingerprint = domain::snooze_fingerprint(to, Some(until));
            let payload = serde_json::json!({ "account_id": conv.account_id });
            timers::schedule(
                conn,
                domain::SNOOZE_WAKE,
                &key,
                until,
                &fingerprint,
                payload,
            )
            .await?;
        }
        _ => timers::cancel(conn, domain::SNOOZE_WAKE, &key).await?,
    }
    if from != to {
        let event = ConversationStatusChanged {
            conversation: Some(conv.to_proto()),
            from: from as i32,
            to: to as i32,
            handoff,
            ..Default::default()
        };
        outbox::emit(conn, origin, event).await?;
        return super::lifecycle::after_status(conn, origin, conv, closing).await;
    }
    Ok(conv)
}

/// Inserts a new conversation and records `conversation.created`.
pub async fn create(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    contact: &ContactRow,
    initial_message: &str,
) -> Result<ConversationRow> {
    let conv = store::conversations::insert(conn, &conv).await?;
    let event = ConversationCreated {
        conversation: Some(conv.to_proto()),
        contact: Some(contact.to_proto()),
        initial_message: initial_message.to_string(),
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(conv)
}

/// Saves `conv` and records `conversation.updated` naming `changed`; nothing when
/// `changed` is empty.
pub async fn save_changes(
    conn: &mut PgConnection,
    origin: &Origin,
    conv: ConversationRow,
    changed: Vec<String>,
) -> Result<ConversationRow> {
    if changed.is_empty() {
        return Ok(conv);
    }
    let conv = store::conversations::update(conn, &conv).await?;
    let event = ConversationUpdated {
        conversation: Some(conv.to_proto()),
        changed_fields: changed,
        ..Default::default()
    };
    outbox::emit(conn, origin, event).await?;
    Ok(conv)
}

/// Refuses what an anonymous visitor may not choose: routing trusts the priority,
/// labels and attributes, so they come from staff, integrations or a verified
/// identity; the inbox names the conversation attributes its form may set.
fn check_anonymous(req: &StartConversationRequest, inbox: &InboxRow) -> Result<()> {
    let mut v = Violations::new();
    if req.priority != 0 {
        v.add("priority", "visitors do not set a priority");
    }
    if !req.labels.is_empty() {
        v.add("labels", "visitors do not set labels");
    }
    if req
        .contact
        .as_ref()
        .is_some_and(|c| !c.custom_attributes.is_empty())
    {
        v.add(
            "contact.custom_attributes",
            "only staff, integrations and verified visitors set contact attributes",
        );
    }
    let mut keys: Vec<&String> = req.custom_attributes.keys().collect();
    keys.sort();
    for k in keys {
        if !inbox.visitor_attribute_keys.contains(k) {
            v.add(
                format!("custom_attributes.{k}"),
                "not one of this inbox's visitor_attribute_keys",
            );
        }
    }
    Ok(v.into_result()?)
}

/// Whether `input` would change `row`'s external id or email.
fn claims_identity(input: &Contact, row: &ContactRow) -> bool {
    (!input.external_id.is_empty() && row.external_id.as_deref() != Some(&input.external_id))
        || (!input.email.is_empty() && row.email.as_deref() != Some(&input.email))
}

/// A validated request to start a conversation.
pub struct Start<'a> {
    /// The caller's claims (none for an anonymous visitor).
    pub claims: Option<&'a Claims>,
    /// The request as sent.
    pub request: &'a StartConversationRequest,
    /// Started from a widget with the inbox's public key (a visitor), not by staff.
    pub visitor_path: bool,
    /// The inbox named by staff (`inbox_id`).
    pub inbox_id: Option<Uuid>,
    /// Normalised labels.
    pub labels: Vec<String>,
    /// Checked priority.
    pub priority: Priority,
}

/// Starts a conversation: finds the inbox, the contact (the returning visitor's own,
/// a new one for anyone else, or a staff-matched one), creates the conversation, posts
/// the greeting and the opening message. A retry with the same client message id
/// returns the first conversation. Returns the conversation and its contact.
pub async fn start(
    conn: &mut PgConnection,
    input: Start<'_>,
) -> Result<(ConversationRow, ContactRow)> {
    let Start {
        claims,
        request: req,
        visitor_path,
        inbox_id,
        labels,
        priority,
    } = input;
    let contact_in = req.contact.clone().unwrap_or_default();
    let (inbox, returning_contact) = if visitor_path {
        let inbox = store::inboxes::by_public_key(conn, &req.inbox_public_key)
            .await?
            .ok_or_else(|| {
                helpdesk_kit::grpc::invalid_field("inbox_public_key", "unknown inbox key")
            })?;
        // A returning visitor keeps its contact; anyone else gets a new one (an
        // unverified email or external id must never unlock someone's history).
        let returning = claims
            .filter(|c| c.role == Role::Visitor && c.acct == inbox.account_id)
            .and_then(|c| c.sub.parse::<Uuid>().ok());
        (inbox, returning)
    } else {
        let claims =
            claims.ok_or_else(|| tonic::Status::unauthenticated("missing bearer token"))?;
        claims.require(&[
            Role::Admin,
            Role::Supervisor,
            Role::Agent,
            Role::Integration,
        ])?;
        let inbox = store::inboxes::get(conn, &claims.acct, inbox_id.unwrap_or_default())
            .await?
            .ok_or(Error::NotFound("inbox"))?;
        (inbox, None)
    };
    let account = inbox.account_id.clone();

    // A retried start with the same client id returns the first conversation.
    if !req.client_message_id.is_empty()
        && let Some(existing) = find_by_client_id(conn, &account, &req.client_message_id).await?
    {
        let conv = store::conversations::get(
            conn,
            &account,
            existing.conversation_id,
            Scope::Account,
            false,
        )
        .await?
        .ok_or(Error::NotFound("conversation"))?;
        let contact = store::contacts::get(conn, &account, conv.contact_id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let same_caller = match claims {
            Some(c) if c.role.is_staff() => c.acct == account,
            Some(c) => c.sub == contact.id.to_string(),
            // An anonymous retry (its answer was lost, so it has no token yet) gets
            // the same chat back with a fresh token, when it is the same start: the
            // opening message of a chat of this inbox, sent by its customer, with
            // the same text. The client id is its proof, so widgets make it random.
            None => {
                visitor_path
                    && conv.inbox_id == inbox.id
                    && existing.kind() == MessageKind::Incoming
                    && existing.sender_id == contact.id.to_string()
                    && existing.content == req.initial_message
            }
        };
        if !same_caller {
            return Err(Error::AlreadyExists(
                "client_message_id already used".into(),
            ));
        }
        return Ok((conv, contact));
    }

    // What a visitor says about itself counts only when the customer's backend
    // vouches for it (identity hash); otherwise it cannot pick its priority, labels,
    // contact attributes or conversation attributes beyond the inbox's form fields.
    let identity = if !visitor_path {
        Identity::Trusted
    } else if req.identity_hash.is_empty() {
        Identity::Unverified
    } else if identity::verified(
        &inbox.identity_secret,
        &contact_in.external_id,
        &req.identity_hash,
    ) {
        Identity::VerifiedVisitor
    } else {
        return Err(helpdesk_kit::grpc::invalid_field(
            "identity_hash",
            "does not match contact.external_id for this inbox",
        )
        .into());
    };
    if identity == Identity::Unverified {
        check_anonymous(req, &inbox)?;
    }

    let staff_actor = claims.filter(|c| c.role.is_staff()).map(Claims::actor);
    // One chain for everything this start records.
    let chain = Origin::request(&account, contact_actor(""));
    let contact = match returning_contact.filter(|_| identity == Identity::Unverified) {
        Some(id) => {
            let row = store::contacts::get(conn, &account, id)
                .await?
                .ok_or(Error::NotFound("contact"))?;
            if row.identity_verified && claims_identity(&contact_in, &row) {
                return Err(helpdesk_kit::grpc::invalid_field(
                    "contact.external_id",
                    "a verified contact's external id and email change only with identity_hash",
                )
                .into());
            }
            let origin = chain.acting_as(contact_actor(row.id));
            merge(conn, &origin, row, &contact_in, req.device.as_ref()).await?
        }
        None => {
            // A visitor creating itself is credited once its contact exists.
            let actor = staff_actor.clone().unwrap_or_else(|| contact_actor(""));
            let origin = chain.acting_as(actor);
            upsert(conn, &origin, &contact_in, req.device.as_ref(), identity)
                .await?
                .0
        }
    };
    let contact_actor = contact_actor(contact.id);
    let actor: Actor = staff_actor.unwrap_or_else(|| contact_actor.clone());
    let origin = chain.acting_as(actor.clone());

    let mut conv = ConversationRow::new(&account, inbox.id, contact.id, inbox.channel(), &actor);
    conv.status = inbox.opening_status().storage_name().to_string();
    conv.custom_attributes = Json(req.custom_attributes.clone());
    conv.labels = labels;
    conv.priority = priority.storage_name().to_string();
    let mut conv = create(conn, &origin, conv, &contact, req.initial_message.trim()).await?;
    if !inbox.greeting_message.trim().is_empty() {
        let greeting = inbox.greeting_message.clone();
        conv = append(
            conn,
            &origin,
            conv,
            MessageKind::Outgoing,
            &bot_actor("greeting"),
            &greeting,
            vec![],
            None,
        )
        .await?
        .1;
    }
    if !req.initial_message.trim().is_empty() {
        let client_id = Some(req.client_message_id.clone()).filter(|s| !s.is_empty());
        conv = append(
            conn,
            &origin,
            conv,
            MessageKind::Incoming,
            &contact_actor,
            &req.initial_message,
            vec![],
            client_id,
        )
        .await?
        .1;
        let customer = origin.acting_as(contact_actor.clone());
        conv = super::bot::after_customer_message(conn, &customer, conv, &req.initial_message, "")
            .await?;
    }
    Ok((conv, contact))
}
