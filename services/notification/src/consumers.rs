//! The event consumer: every event of the platform, turned into the deliveries of the
//! endpoints that take it, the emails it calls for and what it tells agents.

use helpdesk_kit::consumer::{Handler, HandlerError, IncomingEvent};
use sqlx::PgConnection;

use crate::ops::alerts;
use crate::ops::emails::{self, MailPolicy};
use crate::ops::fanout::{self, Memo};

/// Reads every event kind (see [`helpdesk_kit::Parts::all_events`]).
#[derive(Default)]
pub struct Events {
    memo: Memo,
    mail: MailPolicy,
}

impl Events {
    /// The consumer, sending the emails `mail` allows.
    pub fn new(mail: MailPolicy) -> Self {
        Self {
            memo: Memo::default(),
            mail,
        }
    }
}

impl Handler for Events {
    /// On its own (not in a consumer transaction): nothing remembered.
    async fn handle(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
    ) -> Result<(), HandlerError> {
        fanout::fan_out(conn, event, &Memo::default(), 0).await?;
        emails::on_event(conn, event, &self.mail).await?;
        alerts::on_event(conn, event, &self.mail).await
    }

    async fn handle_in(
        &self,
        conn: &mut PgConnection,
        event: &IncomingEvent,
        batch: u64,
    ) -> Result<(), HandlerError> {
        fanout::fan_out(conn, event, &self.memo, batch).await?;
        emails::on_event(conn, event, &self.mail).await?;
        alerts::on_event(conn, event, &self.mail).await
    }
}
