//! Transfers: request, accept, reject, cancel, list.

use helpdesk_kit::auth::{Caller, Role};
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::routing::v1::*;

use super::Api;
use super::queue::uuid_field;
use crate::engine::{self, Actor};
use crate::store::transfers;

/// Longest note a sender may attach.
const MAX_NOTE_CHARS: usize = 2_000;
/// Longest reason a receiver may give.
const MAX_REASON_CHARS: usize = 500;

/// The caller as the engine sees it (staff only).
fn actor(c: &Caller) -> Result<Actor<'_>> {
    c.claims.require_staff()?;
    Ok(Actor {
        id: &c.claims.sub,
        supervisor: c.claims.require(&[Role::Admin, Role::Supervisor]).is_ok(),
    })
}

impl Api {
    pub(crate) async fn request_transfer_impl(
        &self,
        c: &Caller,
        req: RequestTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let mut v = Violations::new();
        let conversation = uuid_field("conversation_id", &req.conversation_id);
        v.check(req.to_agent_id.is_empty(), "to_agent_id", "required");
        v.check(
            req.note.chars().count() > MAX_NOTE_CHARS,
            "note",
            &format!("at most {MAX_NOTE_CHARS} characters"),
        );
        v.into_result()?;
        let conversation = conversation?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::request_transfer(
            &mut tx,
            &c.origin(),
            by,
            conversation,
            &req.to_agent_id,
            &req.note,
        )
        .await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn accept_transfer_impl(
        &self,
        c: &Caller,
        req: AcceptTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::accept_transfer(&mut tx, &c.origin(), by, id).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn reject_transfer_impl(
        &self,
        c: &Caller,
        req: RejectTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let mut v = Violations::new();
        v.check(
            req.reason.chars().count() > MAX_REASON_CHARS,
            "reason",
            &format!("at most {MAX_REASON_CHARS} characters"),
        );
        v.into_result()?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::reject_transfer(&mut tx, &c.origin(), by, id, &req.reason).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn cancel_transfer_impl(
        &self,
        c: &Caller,
        req: CancelTransferRequest,
    ) -> Result<Transfer> {
        let by = actor(c)?;
        let id = uuid_field("transfer_id", &req.transfer_id)?;
        let _turn = self.gates.enter(c.account()).await?;
        let mut tx = self.pool.begin().await?;
        let t = engine::cancel_transfer(&mut tx, &c.origin(), by, id).await?;
        tx.commit().await?;
        Ok(t.to_proto())
    }

    pub(crate) async fn list_transfers_impl(
        &self,
        c: &Caller,
        req: ListTransfersRequest,
    ) -> Result<ListTransfersResponse> {
        c.claims.require_staff()?;
        let conversation = uuid_field("conversation_id", &req.conversation_id)?;
        let mut conn = self.pool.acquire().await?;
        let rows = transfers::of_conversation(&mut conn, c.account(), conversation).await?;
        Ok(ListTransfersResponse {
            transfers: rows.iter().map(|t| t.to_proto()).collect(),
        })
    }
}
