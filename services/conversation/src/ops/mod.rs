//! The conversation service's application layer: one function per use case, each
//! working in the caller's transaction and recording the events it causes. The gRPC
//! layer, the event consumer and the timers call these; nothing here calls back up.

mod bot;
mod contacts;
mod conversations;
mod inboxes;
mod lifecycle;
mod messages;

pub use bot::{after_customer_message, hand_off};
pub use contacts::{Identity, merge, upsert};
pub use conversations::{Closing, Start, change_status, create, resolve, save_changes, start};
pub use inboxes::{announce_existing, announce_task};
pub use lifecycle::{after_message, warn_inactive};
pub use messages::{append, append_activity, append_row, find_by_client_id, wake_for_customer};
