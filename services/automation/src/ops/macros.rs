//! Macros applied by staff: their actions done in order on a conversation, as the
//! person who applied them, each once per request id.

use helpdesk_kit::error::{Error, Result};
use helpdesk_proto::automation::v1::{ActionResult, Macro};
use helpdesk_proto::common::v1::{Actor, CommandOrigin};
use helpdesk_proto::conversation::v1::{Conversation, ExportConversationRequest};

use super::run::{By, Runner, Step, describe, transient};
use crate::domain::facts::Facts;
use crate::domain::key;
use crate::domain::rules::{Needs, action_name};
use crate::store;

/// Does `m`'s actions on the conversation as `actor`. A service that does not answer
/// is UNAVAILABLE (the actions done so far are not done again when the caller
/// retries with the same `request_id`); other failures are reported per action.
pub async fn apply(
    runner: &Runner,
    account: &str,
    actor: Actor,
    m: &Macro,
    conversation_id: &str,
    request_id: &str,
) -> Result<Vec<ActionResult>> {
    let mut conn = runner.pool.acquire().await?;
    let state = store::facts::conversation(&mut conn, account, conversation_id).await?;
    let mut facts = Facts {
        conversation: Some(
            state
                .as_ref()
                .map(|s| s.conversation.clone())
                .unwrap_or_else(|| Conversation {
                    id: conversation_id.to_string(),
                    ..Default::default()
                }),
        ),
        ..Default::default()
    };
    if state.is_some() {
        let needs = Needs {
            contact: true,
            inbox: true,
            ..Needs::default()
        };
        store::facts::complete(&mut conn, account, &mut facts, needs).await?;
    }
    drop(conn);
    if state.is_none() {
        // Not seen here yet (it was just started): ask the conversation service.
        let export = ExportConversationRequest {
            account_id: account.to_string(),
            conversation_id: conversation_id.to_string(),
            after_sequence: 0,
            max_messages: 1,
        };
        let found =
            helpdesk_kit::command::call(&runner.bus, &export, runner.limits.command_timeout)
                .await?;
        facts.conversation = found.conversation.or(facts.conversation);
        facts.contact = found.contact;
        facts.inbox = found.inbox;
    }
    let origin = CommandOrigin {
        actor: Some(actor),
        causation_id: String::new(),
        correlation_id: uuid::Uuid::now_v7().to_string(),
        automation_chain: Vec::new(),
    };
    let mut results = Vec::with_capacity(m.actions.len());
    for (i, a) in m.actions.iter().enumerate() {
        let index = i.to_string();
        let step = Step {
            account,
            by: By {
                kind: "macro",
                id: &m.id,
                name: &m.name,
                event: "",
            },
            origin: &origin,
            key: key(&["macro", &m.id, conversation_id, request_id, &index]),
            state: state.as_ref(),
        };
        match runner.act(&step, a, &mut facts).await {
            Ok(detail) => results.push(ActionResult {
                action: action_name(a).into(),
                ok: true,
                detail,
            }),
            Err(e) if transient(&e) => {
                return Err(Error::Unavailable(format!(
                    "action {} of the macro could not be done now ({}); apply it again with the same request_id",
                    i + 1,
                    describe(&e)
                )));
            }
            Err(e) => results.push(ActionResult {
                action: action_name(a).into(),
                ok: false,
                detail: describe(&e),
            }),
        }
    }
    Ok(results)
}
