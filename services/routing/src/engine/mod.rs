//! The routing engine: routes conversations, keeps the queue moving, and applies
//! manual changes. Every public function takes the account's routing lock first, so
//! with any number of replicas no conversation is assigned twice and no agent goes
//! over capacity (only a supervisor, explicitly).
//!
//! Right after the lock, each public function reads the account's context once
//! (`account::Account`: settings, online agents and their loads) and hands it by
//! `&mut` to the steps it takes; the steps keep the agents' loads current in memory
//! and never read the context again.
//!
//! Modules, dependencies pointing one way only (down this list; all of them may use
//! `account`, and below it `store` and `domain`):
//! - `route`, `manual`, `presence`, `escalation`, `transfer`: the public operations;
//! - `offers`: ending pending transfers (their own outcomes, and as other operations
//!   take a conversation's agent or a receiver away);
//! - `queue`: dispatch, positions and estimates, entering and leaving the queue;
//! - `seat`: one assignment and its event;
//! - `entry_timers`: a queue entry's fallback and longest-wait timers;
//! - `account`: the per-account context.
//!
//! `route` reads the facts, lets `domain::route::decide` (pure) decide, then applies.

mod account;
mod entry_timers;
mod escalation;
mod manual;
mod offers;
mod presence;
mod queue;
mod route;
mod seat;
mod transfer;

pub use account::Session;
pub use entry_timers::{FALLBACK_TIMER, OVERFLOW_TIMER, entry_fingerprint};
pub use escalation::{fall_back, wait_exceeded};
pub use manual::{assign_manually, move_to_team, pick, unassign, unassign_and_forget};
pub use offers::{PENDING as TRANSFER_PENDING, TRANSFER_TIMER};
pub use presence::{IDLE_TIMER, set_presence};
pub use queue::{Estimates, dispatch_some, estimate};
pub use route::{How, release, release_in, route, route_in, route_row};
pub use transfer::{
    Actor, Note, Target, accept_transfer, cancel_transfer, leave_in_team_queue, reject_transfer,
    request_transfer, transfer_timed_out,
};
