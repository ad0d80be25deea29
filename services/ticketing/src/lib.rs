//! The ticketing service: tickets (many turned from chats with their transcript),
//! comments, statuses with what the customer is told, and every change's history.

pub mod commands;
pub mod consumers;
pub mod domain;
pub mod grpc;
pub mod ops;
pub mod startup;
pub mod store;
pub mod timers;

pub use startup::{Ticketing, TicketingSettings};
