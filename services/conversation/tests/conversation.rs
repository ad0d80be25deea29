//! End-to-end tests of the conversation service against real NATS and PostgreSQL.

mod conversation {
    pub mod auth;
    pub mod chat;
    pub mod idempotency;
    pub mod identity;
    pub mod inboxes;
    pub mod lifecycle;
    pub mod live;
    pub mod outage;
    pub mod plans;
    pub mod reflection;
    pub mod routing_events;
    pub mod shutdown;
    pub mod support;
    pub mod timers;
    pub mod validation;
}
