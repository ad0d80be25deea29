//! Commands the conversation service answers for the other services.

use helpdesk_kit::command::Answer;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::conversation::v1::{
    ExportConversationRequest, ExportConversationResponse, RunConversationActionRequest,
    RunConversationActionResponse,
};
use prost::Message as _;
use sqlx::PgPool;

use crate::store::{self, conversations::Scope, messages::MessageRow};

/// Most messages one export page carries.
const MAX_PAGE: i32 = 500;
/// Encoded messages one page carries at most (well under NATS's 1 MiB payload).
const MAX_PAGE_BYTES: usize = 512 * 1024;

/// Answers `export_conversation`: a conversation, its contact and a page of its
/// messages (private notes included), for a service that keeps a copy.
pub struct Export {
    pub pool: PgPool,
}

impl Answer<ExportConversationRequest> for Export {
    async fn answer(&self, req: ExportConversationRequest) -> Result<ExportConversationResponse> {
        let mut v = Violations::new();
        v.check(req.account_id.is_empty(), "account_id", "required");
        let id = helpdesk_kit::validate::uuid(&mut v, "conversation_id", &req.conversation_id);
        v.check(
            !(0..=MAX_PAGE).contains(&req.max_messages),
            "max_messages",
            &format!("0..={MAX_PAGE}"),
        );
        v.check(
            req.after_sequence < 0,
            "after_sequence",
            "must not be negative",
        );
        v.into_result()?;
        let account = req.account_id.as_str();
        let limit = if req.max_messages == 0 {
            MAX_PAGE
        } else {
            req.max_messages
        } as usize;
        let mut conn = self.pool.acquire().await?;
        let conv = store::conversations::get(
            &mut conn,
            account,
            id.unwrap_or_default(),
            Scope::Account,
            false,
        )
        .await?
        .ok_or(Error::NotFound("conversation"))?;
        let contact = store::contacts::get(&mut conn, account, conv.contact_id)
            .await?
            .ok_or(Error::NotFound("contact"))?;
        let inbox = store::inboxes::get(&mut conn, account, conv.inbox_id).await?;
        let rows = store::messages::list(
            &mut conn,
            account,
            conv.id,
            req.after_sequence,
            limit + 1,
            true,
        )
        .await?;
        let mut more = rows.len() > limit;
        let mut messages = Vec::new();
        let mut bytes = 0;
        for m in rows.iter().take(limit).map(MessageRow::to_proto) {
            bytes += m.encoded_len();
            if bytes > MAX_PAGE_BYTES && !messages.is_empty() {
                more = true;
                break;
            }
            messages.push(m);
        }
        Ok(ExportConversationResponse {
            conversation: Some(conv.to_proto()),
            contact: Some(contact.to_proto()),
            messages,
            more,
            inbox: inbox.map(|i| i.to_proto()),
        })
    }
}

/// Answers `run_action`: a change an automation rule makes to a conversation, with
/// the checks staff calls get, once per idempotency key.
pub struct RunAction {
    pub api: crate::grpc::Api,
}

impl Answer<RunConversationActionRequest> for RunAction {
    async fn answer(
        &self,
        req: RunConversationActionRequest,
    ) -> Result<RunConversationActionResponse> {
        let caller = helpdesk_kit::command::acting_caller(
            &req.account_id,
            &req.idempotency_key,
            req.origin.as_ref(),
        )?;
        let (account, key) = (req.account_id.clone(), req.idempotency_key.clone());
        helpdesk_kit::command::once::<RunConversationActionRequest, _, _>(
            &self.api.pool,
            &account,
            &key,
            || {
                helpdesk_kit::error::retry_conflicts(|| {
                    self.api.run_action_impl(&caller, req.clone())
                })
            },
        )
        .await
    }
}
