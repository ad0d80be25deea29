//! SQL of the notification schema. Every query names the account, except the
//! sender's, which works across accounts on rows it has claimed.

pub mod agents;
pub mod alerts;
pub mod deliveries;
pub mod emails;
pub mod endpoints;
