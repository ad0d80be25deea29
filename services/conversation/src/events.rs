//! Writing this service's events to the outbox.

use helpdesk_kit::outbox::{self, OutboxEvent};
use helpdesk_proto::common::v1::EventMeta;
use helpdesk_proto::conversation::v1::{
    Contact, ContactCreated, ContactUpdated, Conversation, ConversationCreated, ConversationRated,
    ConversationStatus, ConversationStatusChanged, ConversationUpdated, Message, MessageCreated,
};
use sqlx::PgConnection;

/// `conversation.created`.
pub const CONVERSATION_CREATED: &str = "conversation.created";
/// `conversation.updated`.
pub const CONVERSATION_UPDATED: &str = "conversation.updated";
/// `conversation.status_changed`.
pub const CONVERSATION_STATUS_CHANGED: &str = "conversation.status_changed";
/// `conversation.rated`.
pub const CONVERSATION_RATED: &str = "conversation.rated";
/// `message.created`.
pub const MESSAGE_CREATED: &str = "message.created";
/// `contact.created`.
pub const CONTACT_CREATED: &str = "contact.created";
/// `contact.updated`.
pub const CONTACT_UPDATED: &str = "contact.updated";

async fn emit<M: prost::Message + prost::Name>(
    conn: &mut PgConnection,
    kind: &'static str,
    meta: &EventMeta,
    ce_subject: &str,
    message: &M,
) -> Result<(), sqlx::Error> {
    outbox::enqueue(conn, &OutboxEvent::new(kind, meta, ce_subject, message)).await
}

/// Records `conversation.created`.
pub async fn conversation_created(
    conn: &mut PgConnection,
    meta: EventMeta,
    conversation: &Conversation,
    contact: &Contact,
    initial_message: &str,
) -> Result<(), sqlx::Error> {
    let event = ConversationCreated {
        meta: Some(meta.clone()),
        conversation: Some(conversation.clone()),
        contact: Some(contact.clone()),
        initial_message: initial_message.to_string(),
    };
    emit(conn, CONVERSATION_CREATED, &meta, &conversation.id, &event).await
}

/// Records `conversation.updated`.
pub async fn conversation_updated(
    conn: &mut PgConnection,
    meta: EventMeta,
    conversation: &Conversation,
    changed_fields: Vec<String>,
) -> Result<(), sqlx::Error> {
    let event = ConversationUpdated {
        meta: Some(meta.clone()),
        conversation: Some(conversation.clone()),
        changed_fields,
    };
    emit(conn, CONVERSATION_UPDATED, &meta, &conversation.id, &event).await
}

/// Records `conversation.status_changed`.
pub async fn status_changed(
    conn: &mut PgConnection,
    meta: EventMeta,
    conversation: &Conversation,
    from: ConversationStatus,
    to: ConversationStatus,
) -> Result<(), sqlx::Error> {
    let event = ConversationStatusChanged {
        meta: Some(meta.clone()),
        conversation: Some(conversation.clone()),
        from: from as i32,
        to: to as i32,
    };
    emit(
        conn,
        CONVERSATION_STATUS_CHANGED,
        &meta,
        &conversation.id,
        &event,
    )
    .await
}

/// Records `conversation.rated`.
pub async fn conversation_rated(
    conn: &mut PgConnection,
    meta: EventMeta,
    conversation: &Conversation,
    rating: i32,
    comment: &str,
) -> Result<(), sqlx::Error> {
    let event = ConversationRated {
        meta: Some(meta.clone()),
        conversation: Some(conversation.clone()),
        rating,
        comment: comment.to_string(),
    };
    emit(conn, CONVERSATION_RATED, &meta, &conversation.id, &event).await
}

/// Records `message.created`.
pub async fn message_created(
    conn: &mut PgConnection,
    meta: EventMeta,
    message: &Message,
    conversation: &Conversation,
) -> Result<(), sqlx::Error> {
    let event = MessageCreated {
        meta: Some(meta.clone()),
        message: Some(message.clone()),
        conversation: Some(conversation.clone()),
    };
    emit(conn, MESSAGE_CREATED, &meta, &conversation.id, &event).await
}

/// Records `contact.created`.
pub async fn contact_created(
    conn: &mut PgConnection,
    meta: EventMeta,
    contact: &Contact,
) -> Result<(), sqlx::Error> {
    let event = ContactCreated {
        meta: Some(meta.clone()),
        contact: Some(contact.clone()),
    };
    emit(conn, CONTACT_CREATED, &meta, &contact.id, &event).await
}

/// Records `contact.updated`.
pub async fn contact_updated(
    conn: &mut PgConnection,
    meta: EventMeta,
    contact: &Contact,
    changed_fields: Vec<String>,
) -> Result<(), sqlx::Error> {
    let event = ContactUpdated {
        meta: Some(meta.clone()),
        contact: Some(contact.clone()),
        changed_fields,
    };
    emit(conn, CONTACT_UPDATED, &meta, &contact.id, &event).await
}
