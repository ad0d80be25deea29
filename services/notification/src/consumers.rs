//! The event consumer: every event of the platform, turned into the deliveries of the
//! endpoints that take it.

use helpdesk_kit::consumer::{Handler, HandlerError, IncomingEvent};
use sqlx::PgConnection;

use crate::ops::fanout;

/// Reads every event kind (see [`helpdesk_kit::Parts::all_events`]).
pub struct Webhooks;

impl Handler for Webhooks {
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        fanout::fan_out(conn, event).await
    }
}
