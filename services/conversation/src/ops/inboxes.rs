//! Inboxes as other services learn of them.

use std::time::Duration;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use helpdesk_proto::conversation::v1::InboxCreated;
use sqlx::PgPool;

use crate::store;

/// Publishes `inbox.created` for the inboxes that predate the event, a batch per
/// transaction; returns how many it announced.
pub async fn announce_existing(pool: &PgPool) -> Result<usize> {
    let mut total = 0;
    loop {
        let mut tx = pool.begin().await?;
        let rows = store::inboxes::unannounced(&mut tx, 500).await?;
        if rows.is_empty() {
            return Ok(total);
        }
        for row in &rows {
            let event = InboxCreated {
                inbox: Some(row.to_proto()),
                ..Default::default()
            };
            outbox::emit(&mut tx, &Origin::system(&row.account_id), event).await?;
        }
        let ids: Vec<_> = rows.iter().map(|r| r.id).collect();
        store::inboxes::mark_announced(&mut tx, &ids).await?;
        tx.commit().await?;
        outbox::wake();
        total += rows.len();
    }
}

/// Runs [`announce_existing`] at start, again every few seconds until it succeeds.
pub async fn announce_task(pool: PgPool, shutdown: CancellationToken) {
    loop {
        match announce_existing(&pool).await {
            Ok(0) => return,
            Ok(n) => {
                tracing::info!(
                    inboxes = n,
                    "announced inboxes created before inbox.created existed"
                );
                return;
            }
            Err(e) => tracing::warn!(error = %e, "announcing existing inboxes failed; retrying"),
        }
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_secs(5)) => {}
        }
    }
}
