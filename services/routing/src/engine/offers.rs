//! Ending pending transfers: by their own operations (accept, reject, cancel, timeout)
//! and by others (the receiver leaving, the conversation losing its agent).

use helpdesk_kit::error::Result;
use helpdesk_kit::event::Origin;
use helpdesk_kit::{outbox, timers};
use helpdesk_proto::routing::v1::{
    TransferAccepted, TransferCancelled, TransferRejected, TransferState, TransferTimedOut,
};
use sqlx::PgConnection;
use uuid::Uuid;

use crate::store::transfers::{self, TransferRow};

/// Timer: a pending transfer's deadline.
pub const TRANSFER_TIMER: &str = "routing.transfer_timeout";

/// The fingerprint a transfer's timer is set with: it fires only while pending.
pub const PENDING: &str = "pending";

/// Ends `id` in `state` with `reason`, cancels its timer and records its event;
/// `None` when it was no longer pending.
pub(super) async fn end(
    conn: &mut PgConnection,
    origin: &Origin,
    id: Uuid,
    state: TransferState,
    reason: &str,
) -> Result<Option<TransferRow>> {
    let Some(done) = transfers::finish(conn, &origin.account, id, state, reason).await? else {
        return Ok(None);
    };
    timers::cancel(conn, TRANSFER_TIMER, &id.to_string()).await?;
    let transfer = Some(done.to_proto());
    match state {
        TransferState::Accepted => {
            let event = TransferAccepted {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
        TransferState::Rejected => {
            let event = TransferRejected {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
        TransferState::TimedOut => {
            let event = TransferTimedOut {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
        TransferState::Cancelled | TransferState::Pending | TransferState::Unspecified => {
            let event = TransferCancelled {
                transfer,
                ..Default::default()
            };
            outbox::emit(conn, origin, event).await?
        }
    }
    Ok(Some(done))
}

/// Cancels the pending transfer of a conversation, if any (it lost its agent or left
/// the open state).
pub(super) async fn cancel_for(
    conn: &mut PgConnection,
    origin: &Origin,
    conversation_id: Uuid,
    reason: &str,
) -> Result<()> {
    for t in transfers::pending(conn, &origin.account, Some(conversation_id), None).await? {
        end(conn, origin, t.id, TransferState::Cancelled, reason).await?;
    }
    Ok(())
}

/// Rejects the transfers offered to an agent who is no longer online: an offer is
/// only ever open to an agent who can take it.
pub(super) async fn reject_offered_to(
    conn: &mut PgConnection,
    origin: &Origin,
    agent_id: &str,
) -> Result<()> {
    for t in transfers::pending(conn, &origin.account, None, Some(agent_id)).await? {
        let reason = "the receiver went offline";
        end(conn, origin, t.id, TransferState::Rejected, reason).await?;
    }
    Ok(())
}
