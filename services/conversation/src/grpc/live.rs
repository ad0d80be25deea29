//! Live updates: Subscribe streams events (as the outbox relay publishes them) and
//! typing indicators (core NATS, never stored) to visitors and staff.

use helpdesk_kit::event::Event;
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::live::Scope;
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::conversation::v1::subscribe_response::Update;
use helpdesk_proto::conversation::v1::*;
use prost::Message as _;
use tonic::Status;

use super::{Api, Caller, SubscribeStream};
use crate::domain::validate;
use crate::store;
use helpdesk_kit::error::Result;

/// Messages a resuming stream replays at most.
const REPLAY_LIMIT: usize = 1_000;

/// A stored message as the `message.created` a resuming client missed.
fn replayed(m: &store::messages::MessageRow, conversation: &Conversation) -> MessageCreated {
    let message = m.to_proto();
    MessageCreated {
        meta: Some(helpdesk_proto::common::v1::EventMeta {
            occurred_at: message.create_time,
            account_id: m.account_id.clone(),
            actor: message.sender.clone(),
            ..Default::default()
        }),
        message: Some(message),
        conversation: Some(conversation.clone()),
    }
}

/// What a subscriber wants to see.
#[derive(Debug, Clone)]
struct Interest {
    conversation_id: Option<String>,
    inbox_id: Option<String>,
    assignee_id: Option<String>,
    status: Option<i32>,
    visitor: bool,
    /// Only conversations with their bot (and the change handing each over).
    bot: bool,
}

impl Interest {
    fn wants(&self, conv: Option<&Conversation>) -> bool {
        let Some(conv) = conv else { return false };
        self.conversation_id
            .as_ref()
            .is_none_or(|id| *id == conv.id)
            && self.inbox_id.as_ref().is_none_or(|id| *id == conv.inbox_id)
            && self
                .assignee_id
                .as_ref()
                .is_none_or(|id| *id == conv.assignee_id)
            && self.status.is_none_or(|s| s == conv.status)
            && (!self.bot || conv.status == ConversationStatus::Bot as i32)
    }

    /// Decodes one bus message into an update for this subscriber, if it wants it.
    fn filter(&self, kind: &str, payload: &[u8]) -> Option<Update> {
        match kind {
            MessageCreated::KIND => {
                let e = MessageCreated::decode(payload).ok()?;
                let is_note = e
                    .message
                    .as_ref()
                    .is_some_and(|m| m.kind == MessageKind::Note as i32);
                (self.wants(e.conversation.as_ref()) && !(self.visitor && is_note))
                    .then_some(Update::MessageCreated(e))
            }
            ConversationStatusChanged::KIND => {
                let e = ConversationStatusChanged::decode(payload).ok()?;
                let handed_over = self.bot && e.from == ConversationStatus::Bot as i32;
                let wanted = if handed_over {
                    Interest {
                        bot: false,
                        ..self.clone()
                    }
                    .wants(e.conversation.as_ref())
                } else {
                    self.wants(e.conversation.as_ref())
                };
                wanted.then_some(Update::ConversationStatusChanged(e))
            }
            ConversationCreated::KIND if !self.visitor => {
                let e = ConversationCreated::decode(payload).ok()?;
                self.wants(e.conversation.as_ref())
                    .then_some(Update::ConversationCreated(e))
            }
            ConversationUpdated::KIND if !self.visitor => {
                let e = ConversationUpdated::decode(payload).ok()?;
                self.wants(e.conversation.as_ref())
                    .then_some(Update::ConversationUpdated(e))
            }
            "typing" => {
                let t = TypingIndicator::decode(payload).ok()?;
                self.conversation_id
                    .as_ref()
                    .is_none_or(|id| *id == t.conversation_id)
                    .then_some(Update::Typing(t))
            }
            _ => None,
        }
    }
}

impl Api {
    pub(crate) async fn send_typing_impl(&self, c: &Caller, req: SendTypingRequest) -> Result<()> {
        let mut conn = self.pool.acquire().await?;
        let conv = self
            .visible(&mut conn, c, "conversation_id", &req.conversation_id, false)
            .await?;
        drop(conn);
        let indicator = TypingIndicator {
            account_id: conv.account_id.clone(),
            conversation_id: conv.id.to_string(),
            actor: Some(c.claims.actor()),
            typing: req.typing,
            time: Some(to_timestamp(chrono::Utc::now())),
        };
        let subject = self
            .bus
            .subjects
            .live(&conv.account_id, &format!("typing.{}", conv.id));
        self.bus
            .client
            .publish(subject, indicator.encode_to_vec().into())
            .await
            .map_err(|e| Status::unavailable(format!("live delivery unavailable: {e}")))?;
        Ok(())
    }

    pub(crate) async fn subscribe_impl(
        &self,
        c: Caller,
        req: SubscribeRequest,
    ) -> Result<SubscribeStream> {
        let mut v = Violations::new();
        validate::opt_uuid(&mut v, "conversation_id", &req.conversation_id);
        validate::opt_uuid(&mut v, "inbox_id", &req.inbox_id);
        let status = match ConversationStatus::try_from(req.status) {
            Ok(ConversationStatus::Unspecified) => None,
            Ok(s) => Some(s as i32),
            Err(_) => {
                v.add("status", "unknown status");
                None
            }
        };
        if c.is_visitor() && req.as_bot {
            v.add("as_bot", "for bots (integrations) and staff");
        }
        if c.is_visitor() && req.conversation_id.is_empty() {
            v.add("conversation_id", "required for visitors");
        }
        match req.resume_after_sequence {
            Some(after) if after < 0 => {
                v.add("resume_after_sequence", "a message sequence (1, 2, …) or 0");
            }
            Some(_) if req.conversation_id.is_empty() => {
                v.add("resume_after_sequence", "resuming needs conversation_id");
            }
            _ => {}
        }
        v.into_result()?;
        let conversation = if req.conversation_id.is_empty() {
            None
        } else {
            let mut conn = self.pool.acquire().await?;
            Some(
                self.visible(
                    &mut conn,
                    &c,
                    "conversation_id",
                    &req.conversation_id,
                    false,
                )
                .await?,
            )
        };
        let interest = Interest {
            conversation_id: Some(req.conversation_id.clone()).filter(|s| !s.is_empty()),
            inbox_id: Some(req.inbox_id.clone()).filter(|s| !s.is_empty()),
            assignee_id: Some(req.assignee_id.clone()).filter(|s| !s.is_empty()),
            status,
            visitor: c.is_visitor(),
            bot: req.as_bot,
        };
        // A conversation's stream only ever receives that conversation's messages;
        // staff monitoring the account receive the account's, filtered here.
        let scope = match &interest.conversation_id {
            Some(id) => Scope::Key(id.clone()),
            None => Scope::Account,
        };
        let mut watch = self.live.watch(&c, scope).await?;
        // Registered first, read second: a message committed meanwhile is both read
        // and received live, and the live copy is skipped by its sequence.
        let missed = match (&conversation, req.resume_after_sequence) {
            (Some(conv), Some(after)) => {
                let mut conn = self.pool.acquire().await?;
                let rows = store::messages::list(
                    &mut conn,
                    c.account(),
                    conv.id,
                    after,
                    REPLAY_LIMIT + 1,
                    !c.is_visitor(),
                )
                .await?;
                if rows.len() > REPLAY_LIMIT {
                    return Err(Status::out_of_range(format!(
                        "more than {REPLAY_LIMIT} messages were missed: reload them with ListMessages"
                    ))
                    .into());
                }
                let conv = conv.to_proto();
                rows.iter().map(|m| replayed(m, &conv)).collect()
            }
            _ => Vec::new(),
        };
        // One conversation's messages arrive in sequence order: a stream following one
        // skips what the replay sent and remembers the last message it sent.
        let follows_one = interest.conversation_id.is_some();
        let mut last_sent = req.resume_after_sequence.unwrap_or(0);
        let stream = async_stream::stream! {
            for event in missed {
                last_sent = event.message.as_ref().map_or(last_sent, |m| m.sequence);
                yield Ok(SubscribeResponse { update: Some(Update::MessageCreated(event)) });
            }
            while let Some(next) = watch.next().await {
                match next {
                    Ok(m) => {
                        let Some(update) = interest.filter(&m.kind, &m.payload) else {
                            continue;
                        };
                        if follows_one
                            && let Update::MessageCreated(e) = &update
                            && let Some(message) = &e.message
                        {
                            if message.sequence <= last_sent {
                                continue;
                            }
                            last_sent = message.sequence;
                        }
                        yield Ok(SubscribeResponse { update: Some(update) });
                    }
                    Err(status) => {
                        yield Err(status);
                        break;
                    }
                }
            }
        };
        Ok(Box::pin(stream))
    }
}
