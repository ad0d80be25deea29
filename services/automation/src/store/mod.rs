//! SQL of the automation schema; every query names the account.

pub mod facts;
pub mod macros;
pub mod pending;
pub mod rules;
pub mod runs;
