//! The consumer: the events rules run on (and those that keep the projections
//! current), taken in with the inbox in one transaction, written once per batch.

use std::collections::HashMap;
use std::sync::Mutex;

use helpdesk_kit::consumer::{Handler, HandlerError, IncomingEvent};
use sqlx::PgConnection;

use crate::cache::RuleCache;
use crate::ops::{self, intake::Taken};

/// Takes events in.
pub struct Events {
    pub cache: RuleCache,
    /// What each open transaction took in, written when it finishes.
    taken: Mutex<HashMap<u64, Vec<Taken>>>,
}

impl Events {
    pub fn new(cache: RuleCache) -> Self {
        Self {
            cache,
            taken: Mutex::default(),
        }
    }

    async fn take(
        &self,
        conn: &mut PgConnection,
        e: &IncomingEvent,
    ) -> Result<Taken, HandlerError> {
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

impl Handler for Events {
    /// One event on its own: taken in and written at once.
    async fn handle(&self, conn: &mut PgConnection, e: &IncomingEvent) -> Result<(), HandlerError> {
        let taken = self.take(conn, e).await?;
        ops::intake::finish(conn, vec![taken]).await
    }

    async fn handle_in(
        &self,
        conn: &mut PgConnection,
        e: &IncomingEvent,
        batch: u64,
    ) -> Result<(), HandlerError> {
        let taken = self.take(conn, e).await?;
        let mut open = self.taken.lock().expect("intake lock");
        // A transaction that rolled back never finishes: what it took is dropped.
        open.retain(|b, _| *b >= batch);
        open.entry(batch).or_default().push(taken);
        Ok(())
    }

    async fn finish(&self, conn: &mut PgConnection, batch: u64) -> Result<(), HandlerError> {
        let taken = self
            .taken
            .lock()
            .expect("intake lock")
            .remove(&batch)
            .unwrap_or_default();
        ops::intake::finish(conn, taken).await
    }
}
