//! Routing domain logic.

pub mod hours;
