//! The automation service's use cases: rules kept in order, events taken in, and
//! queued work run.

pub mod events;
pub mod intake;
pub mod macros;
pub mod rules;
pub mod run;
