//! Background dispatch: waiting chats assigned a bounded number per transaction, for
//! the accounts it is woken for. An agent coming online answers at once, and its
//! chats follow within moments however long the queue is, without any one
//! transaction holding the account's lock for the whole drain.

use std::collections::BTreeSet;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::event::Origin;
use helpdesk_kit::outbox;
use sqlx::PgPool;
use tokio::sync::mpsc;

use crate::engine;
use crate::gates::Gates;

/// Assignments per transaction.
pub const BATCH: usize = 200;

/// Wakes the background dispatch of an account.
#[derive(Clone)]
pub struct Dispatcher {
    wake: mpsc::UnboundedSender<String>,
}

impl Dispatcher {
    /// A dispatcher and the task that serves it (run it until `stop`).
    pub fn new(
        pool: PgPool,
        gates: Gates,
    ) -> (
        Self,
        impl FnOnce(CancellationToken) -> futures::future::BoxFuture<'static, ()>,
    ) {
        let (wake, woken) = mpsc::unbounded_channel();
        let run = move |stop: CancellationToken| -> futures::future::BoxFuture<'static, ()> {
            Box::pin(serve(pool, gates, woken, stop))
        };
        (Self { wake }, run)
    }

    /// Has the account's waiting chats assigned to whoever has room, soon.
    pub fn wake(&self, account: &str) {
        let _ = self.wake.send(account.to_string());
    }
}

async fn serve(
    pool: PgPool,
    gates: Gates,
    mut woken: mpsc::UnboundedReceiver<String>,
    stop: CancellationToken,
) {
    loop {
        let first = tokio::select! {
            _ = stop.cancelled() => return,
            next = woken.recv() => match next {
                Some(account) => account,
                None => return,
            },
        };
        // Every wake that arrived meanwhile, each account once.
        let mut accounts = BTreeSet::from([first]);
        while let Ok(more) = woken.try_recv() {
            accounts.insert(more);
        }
        for account in accounts {
            drain(&pool, &gates, &account).await;
        }
    }
}

/// Assigns until nothing more fits (or a failure, which the periodic sweep makes up for).
async fn drain(pool: &PgPool, gates: &Gates, account: &str) {
    loop {
        let (result, enqueued) = outbox::tracked(async {
            let _turn = gates.enter(account).await?;
            let mut tx = pool.begin().await?;
            let n = engine::dispatch_some(&mut tx, &Origin::system(account), BATCH).await?;
            tx.commit().await?;
            Ok::<_, helpdesk_kit::error::Error>(n)
        })
        .await;
        if enqueued {
            outbox::wake();
        }
        match result {
            Ok(n) if n == BATCH => continue,
            Ok(_) => return,
            Err(e) => {
                tracing::warn!(error = %e, %account, "background dispatch failed");
                return;
            }
        }
    }
}
