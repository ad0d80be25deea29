//! In-process turnstiles, one per account: calls that are about to take an account's
//! routing lock line up here first, holding no pooled connection, so that a busy
//! account never ties up more than one of this process's connections waiting for its
//! lock (the outbox relay, the consumers and other accounts keep theirs).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use helpdesk_kit::error::{Error, Result};
use tokio::sync::OwnedMutexGuard;

/// The longest a call waits for its turn before answering UNAVAILABLE (as long as
/// the database lock itself is waited for).
pub const WAIT: Duration = Duration::from_secs(3);

/// The turnstiles of one process.
#[derive(Clone, Default)]
pub struct Gates {
    gates: Arc<Mutex<HashMap<String, Weak<tokio::sync::Mutex<()>>>>>,
}

/// A turn at an account; the next caller goes when it is dropped.
pub type Turn = OwnedMutexGuard<()>;

impl Gates {
    /// Waits for this caller's turn at `account` (UNAVAILABLE after [`WAIT`]).
    pub async fn enter(&self, account: &str) -> Result<Turn> {
        let gate = {
            let mut gates = self.gates.lock().unwrap_or_else(|p| p.into_inner());
            if gates.len() > 1024 {
                gates.retain(|_, g| g.strong_count() > 0);
            }
            match gates.get(account).and_then(Weak::upgrade) {
                Some(gate) => gate,
                None => {
                    let gate = Arc::new(tokio::sync::Mutex::new(()));
                    gates.insert(account.to_string(), Arc::downgrade(&gate));
                    gate
                }
            }
        };
        tokio::time::timeout(WAIT, gate.lock_owned())
            .await
            .map_err(|_| Error::Unavailable("busy; retry".into()))
    }
}
