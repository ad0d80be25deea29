//! The consumer: the events rules run on (and those that keep the projections
//! current), taken in with the inbox in one transaction.

use helpdesk_kit::consumer::{Handler, HandlerError, IncomingEvent};
use sqlx::PgConnection;

use crate::cache::RuleCache;
use crate::ops;

/// Takes events in.
pub struct Events {
    pub cache: RuleCache,
}

impl Handler for Events {
    async fn handle(&self, conn: &mut PgConnection, e: &IncomingEvent) -> Result<(), HandlerError> {
        ops::intake::take(
            conn,
            &self.cache,
            &e.account_id,
            &e.event_id,
            &e.kind,
            &e.payload,
        )
        .await
    }
}
