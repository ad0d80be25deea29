//! Changes to many tickets at once: bulk updates and merges.

use std::collections::BTreeSet;

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::ticketing::v1::bulk_update_tickets_response::Result as Outcome;
use helpdesk_proto::ticketing::v1::*;
use sqlx::PgConnection;
use uuid::Uuid;

use super::Api;
use super::input::{self, PATHS};
use crate::ops;
use crate::store::config;
use crate::store::tickets::{Key, TicketRow};

/// Most tickets one bulk update changes.
const MAX_BULK: usize = 100;
/// Most tickets merged into one at once.
const MAX_MERGED: usize = 20;

/// Reads a list of ticket ids (each once, `field[i]` named when bad).
fn ticket_ids(v: &mut Violations, field: &str, ids: &[String], max: usize) -> BTreeSet<Uuid> {
    v.check(
        ids.is_empty() || ids.len() > max,
        field,
        &format!("1-{max} ticket ids"),
    );
    ids.iter()
        .enumerate()
        .filter_map(|(i, id)| helpdesk_kit::validate::uuid(v, &format!("{field}[{i}]"), id))
        .collect()
}

impl Api {
    /// The tickets, locked in id order (so two calls never wait on each other in a
    /// circle); NOT_FOUND names none of them twice.
    async fn lock_all(
        &self,
        conn: &mut PgConnection,
        c: &Caller,
        ids: &BTreeSet<Uuid>,
    ) -> Result<Vec<TicketRow>> {
        let mut out = Vec::with_capacity(ids.len());
        for id in ids {
            out.push(self.visible(conn, c, Key::Id(*id), true).await?);
        }
        Ok(out)
    }

    pub(crate) async fn bulk_update_impl(
        &self,
        c: &Caller,
        req: BulkUpdateTicketsRequest,
    ) -> Result<BulkUpdateTicketsResponse> {
        c.claims.require_staff()?;
        let t = req.ticket.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let ids = ticket_ids(&mut v, "ticket_ids", &req.ticket_ids, MAX_BULK);
        if paths.is_empty() {
            v.add("update_mask", format!("required: {}", PATHS.join(", ")));
        }
        for p in &paths {
            if !PATHS.contains(&p.as_str()) {
                v.add("update_mask", format!("unknown or read-only path {p:?}"));
            }
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let ctx = ops::context(&mut tx, c.account(), self.close_after).await?;
        let statuses = &ctx.statuses;
        let definitions = config::fields(&mut tx, c.account()).await?;
        let wants = |f: &str| paths.iter().any(|p| p == f);
        let mut results = Vec::new();
        for current in self.lock_all(&mut tx, c, &ids).await? {
            let mut next = current.clone();
            let mut v = Violations::new();
            input::apply(&mut v, &t, &wants, &mut next, statuses, &definitions);
            v.into_result()?;
            let id = current.id.to_string();
            let origin = c.origin();
            match ops::update(&mut tx, &origin, current, next, &paths, &ctx).await {
                Ok(stored) => results.push(Outcome {
                    ticket_id: id,
                    ticket: Some(stored.to_proto(statuses)),
                    error: String::new(),
                }),
                // Refused before anything was written: this one stays as it was.
                Err(Error::FailedPrecondition(why)) => results.push(Outcome {
                    ticket_id: id,
                    ticket: None,
                    error: why,
                }),
                Err(e) => return Err(e),
            }
        }
        tx.commit().await?;
        Ok(BulkUpdateTicketsResponse { results })
    }

    pub(crate) async fn merge_impl(&self, c: &Caller, req: MergeTicketsRequest) -> Result<Ticket> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        let target = helpdesk_kit::validate::uuid(&mut v, "target_id", &req.target_id);
        let sources = ticket_ids(&mut v, "source_ids", &req.source_ids, MAX_MERGED);
        v.check(
            target.is_some_and(|t| sources.contains(&t)),
            "source_ids",
            "the target cannot be merged into itself",
        );
        v.into_result()?;
        let target = target.unwrap_or_else(Uuid::nil);
        let mut all = sources.clone();
        all.insert(target);
        let mut tx = self.pool.begin().await?;
        let ctx = ops::context(&mut tx, c.account(), self.close_after).await?;
        let statuses = &ctx.statuses;
        let mut locked = self.lock_all(&mut tx, c, &all).await?;
        let at = locked
            .iter()
            .position(|t| t.id == target)
            .ok_or(Error::NotFound("ticket"))?;
        let target = locked.remove(at);
        let merged = ops::merge(&mut tx, &c.origin(), target, locked, &ctx).await?;
        tx.commit().await?;
        Ok(merged.to_proto(statuses))
    }
}
