//! SQL for the conversation schema. Every function takes a connection so callers
//! compose them in one transaction with the outbox writes; every query is scoped by
//! account.

pub mod contacts;
pub mod conversations;
pub mod inboxes;
pub mod messages;
