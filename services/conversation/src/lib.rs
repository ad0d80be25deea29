//! The conversation service: inboxes, contacts, conversations and messages, with
//! their events on `helpdesk.evt.<account>.…`.

pub mod commands;
pub mod consumers;
pub mod domain;
pub mod grpc;
pub mod ops;
pub mod startup;
pub mod store;
pub mod timers;

pub use startup::{Conversation, ConversationSettings};
