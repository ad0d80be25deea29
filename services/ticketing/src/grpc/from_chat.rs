//! A conversation turned into a ticket, with everything it carries.

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::ticketing::v1::*;
use uuid::Uuid;

use super::Api;
use super::input;
use crate::domain;
use crate::ops::{self, chat};
use crate::store::tickets::TicketRow;
use crate::store::{config, tickets};

impl Api {
    pub(crate) async fn create_from_conversation_impl(
        &self,
        c: &Caller,
        req: CreateTicketFromConversationRequest,
    ) -> Result<Ticket> {
        let request_id = req.request_id.clone();
        match self.create_from_conversation_once(c, req).await {
            Err(e) => self.first_created(c, &request_id, e).await,
            ok => ok,
        }
    }

    async fn create_from_conversation_once(
        &self,
        c: &Caller,
        req: CreateTicketFromConversationRequest,
    ) -> Result<Ticket> {
        c.claims.require_staff()?;
        let t = req.ticket.clone().unwrap_or_default();
        let mut v = Violations::new();
        let conversation =
            helpdesk_kit::validate::uuid(&mut v, "conversation_id", &req.conversation_id);
        helpdesk_kit::validate::text(
            &mut v,
            "subject",
            &req.subject,
            false,
            domain::MAX_SUBJECT_CHARS,
        );
        helpdesk_kit::validate::text(&mut v, "request_id", &req.request_id, false, 128);
        v.into_result()?;
        let conversation = conversation.unwrap_or_else(Uuid::nil);
        if !req.request_id.is_empty() {
            let mut conn = self.pool.acquire().await?;
            if let Some(first) =
                tickets::by_request_id(&mut conn, c.account(), &req.request_id).await?
            {
                let statuses = config::statuses(&mut conn, c.account()).await?;
                return Ok(first.to_proto(&statuses));
            }
        }
        // Read before the transaction: no row is locked while another service answers.
        let chat = chat::export(&self.bus, self.command_timeout, c.account(), conversation).await?;

        let mut tx = self.pool.begin().await?;
        let ctx = ops::context(&mut tx, c.account(), self.close_after).await?;
        let statuses = &ctx.statuses;
        let definitions = config::fields(&mut tx, c.account()).await?;
        let mut row = TicketRow::blank(c.account(), TicketSource::Chat);
        chat::fill_from_chat(&mut row, &chat, &definitions);
        if !req.subject.trim().is_empty() {
            row.subject = req.subject.trim().to_string();
        }
        // What the request sets wins over what the chat suggests.
        let mut v = Violations::new();
        let wants = |f: &str| {
            !matches!(
                f,
                "subject" | "description" | "requester" | "conversation_ids"
            ) && input::given(&t, f)
        };
        input::apply(&mut v, &t, &wants, &mut row, statuses, &definitions);
        v.check(
            row.status_category == "closed",
            "ticket.status",
            "a new ticket cannot be closed",
        );
        v.into_result()?;
        row.request_id = Some(req.request_id.clone()).filter(|r| !r.is_empty());
        let from = chat.transcript(conversation);
        let row = ops::create(&mut tx, &c.origin(), row, Some(from), &ctx).await?;
        tx.commit().await?;
        Ok(row.to_proto(statuses))
    }
}
