//! `run_action`: the changes automation rules make to conversations, carried out with
//! the same checks as the calls staff make, as the rule (the events continue the
//! chain that triggered it).

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::conversation::v1::run_conversation_action_request::Action;
use helpdesk_proto::conversation::v1::*;
use prost_types::FieldMask;

use super::Api;
use crate::domain::validate;

impl Api {
    /// Carries out one action for `c` (a caller acting for a rule).
    pub(crate) async fn run_action_impl(
        &self,
        c: &Caller,
        req: RunConversationActionRequest,
    ) -> Result<RunConversationActionResponse> {
        let id = req.conversation_id.clone();
        let get = || GetConversationRequest { id: id.clone() };
        let Some(action) = req.action else {
            return Err(helpdesk_kit::grpc::invalid_field("action", "required").into());
        };
        let mut message_id = String::new();
        let conversation = match action {
            Action::SetStatus(mut s) => {
                s.conversation_id = id.clone();
                self.set_status_impl(c, s).await?
            }
            Action::AddLabels(change) => self.change_labels(c, &id, change, true).await?,
            Action::RemoveLabels(change) => self.change_labels(c, &id, change, false).await?,
            Action::SetPriority(p) => {
                let update = UpdateConversationRequest {
                    conversation: Some(Conversation {
                        id: id.clone(),
                        priority: p,
                        ..Default::default()
                    }),
                    update_mask: Some(FieldMask {
                        paths: vec!["priority".into()],
                    }),
                };
                self.update_conversation_impl(c, update).await?
            }
            Action::SendMessage(content) => {
                let sent = self
                    .send_as_rule(c, &id, MessageKind::Outgoing, content, &req.idempotency_key)
                    .await?;
                message_id = sent.id;
                self.get_conversation_impl(c, get()).await?
            }
            Action::AddNote(content) => {
                let sent = self
                    .send_as_rule(c, &id, MessageKind::Note, content, &req.idempotency_key)
                    .await?;
                message_id = sent.id;
                self.get_conversation_impl(c, get()).await?
            }
        };
        Ok(RunConversationActionResponse {
            conversation: Some(conversation),
            message_id,
        })
    }

    async fn change_labels(
        &self,
        c: &Caller,
        id: &str,
        change: LabelChange,
        add: bool,
    ) -> Result<Conversation> {
        let mut v = Violations::new();
        v.check(change.labels.is_empty(), "labels", "1 or more");
        validate::labels(&mut v, "labels", &change.labels);
        v.into_result()?;
        let current = self
            .get_conversation_impl(c, GetConversationRequest { id: id.into() })
            .await?;
        let mut labels = current.labels.clone();
        for label in &change.labels {
            let label = label.trim().to_lowercase();
            let present = labels.contains(&label);
            if add && !present {
                labels.push(label);
            } else if !add && present {
                labels.retain(|l| *l != label);
            }
        }
        if labels == current.labels {
            return Ok(current);
        }
        let update = UpdateConversationRequest {
            conversation: Some(Conversation {
                id: id.into(),
                labels,
                ..Default::default()
            }),
            update_mask: Some(FieldMask {
                paths: vec!["labels".into()],
            }),
        };
        self.update_conversation_impl(c, update).await
    }

    /// A message from the rule, once per idempotency key (its client message id is
    /// derived from the key, so a retry finds the stored message).
    async fn send_as_rule(
        &self,
        c: &Caller,
        id: &str,
        kind: MessageKind,
        content: String,
        key: &str,
    ) -> Result<Message> {
        let client_message_id = helpdesk_kit::command::derived_id("rule", key);
        let request = SendMessageRequest {
            conversation_id: id.into(),
            kind: kind as i32,
            content,
            client_message_id,
            ..Default::default()
        };
        self.send_message_impl(c, request).await
    }
}
