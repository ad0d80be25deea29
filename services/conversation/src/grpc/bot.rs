//! Bot-first conversations: the bot hands over, and is kept out once a human has it.

use helpdesk_kit::auth::Role;
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::conversation::v1::*;
use sqlx::PgConnection;

use super::{Api, Caller};
use crate::domain::validate;
use crate::ops;
use crate::store::{self, conversations::ConversationRow};
use helpdesk_kit::validate::is_name as is_skill;

/// Longest handoff summary.
const MAX_SUMMARY_CHARS: usize = 4_000;
/// Most skills a handoff may ask for.
const MAX_SKILLS: usize = 10;

impl Api {
    /// FAILED_PRECONDITION when the caller is the integration an inbox names as its
    /// bot and `conv` is no longer with the bot: once handed over, the bot is out.
    pub(crate) async fn refuse_departed_bot(
        &self,
        conn: &mut PgConnection,
        c: &Caller,
        conv: &ConversationRow,
    ) -> Result<()> {
        if c.claims.role != Role::Integration || conv.status() == ConversationStatus::Bot {
            return Ok(());
        }
        let inbox = store::inboxes::get(conn, c.account(), conv.inbox_id).await?;
        if inbox
            .as_ref()
            .and_then(|i| i.bot())
            .is_some_and(|b| b.is_named_bot(&c.claims))
        {
            return Err(Error::FailedPrecondition(
                "the conversation was handed to a human; its bot no longer takes part".into(),
            ));
        }
        Ok(())
    }

    pub(crate) async fn handoff_to_human_impl(
        &self,
        c: &Caller,
        req: HandoffToHumanRequest,
    ) -> Result<Conversation> {
        c.claims.require_staff()?;
        let mut v = Violations::new();
        validate::text(&mut v, "summary", &req.summary, false, MAX_SUMMARY_CHARS);
        validate::opt_uuid(&mut v, "team_id", &req.team_id);
        let skills: Vec<String> = req
            .required_skills
            .iter()
            .map(|s| s.trim().to_lowercase())
            .collect();
        v.check(
            skills.len() > MAX_SKILLS,
            "required_skills",
            &format!("at most {MAX_SKILLS}"),
        );
        for (i, s) in skills.iter().enumerate() {
            v.check(
                !is_skill(s),
                &format!("required_skills[{i}]"),
                "1-64 characters of [a-z0-9_-]",
            );
        }
        let conversation = validate::uuid(&mut v, "conversation_id", &req.conversation_id);
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let conv = store::conversations::get(
            &mut tx,
            c.account(),
            conversation.unwrap_or_default(),
            store::conversations::Scope::Account,
            true,
        )
        .await?
        .ok_or(Error::NotFound("conversation"))?;
        let trigger = if c.claims.role == Role::Integration {
            let inbox = store::inboxes::get(&mut tx, c.account(), conv.inbox_id)
                .await?
                .ok_or(Error::NotFound("inbox"))?;
            if !inbox.bot().is_some_and(|b| b.is_the_bot(&c.claims)) {
                return Err(Error::PermissionDenied(
                    "only the inbox's bot (or staff) hands its conversations over".into(),
                ));
            }
            HandoffTrigger::Bot
        } else {
            HandoffTrigger::Staff
        };
        let handoff = Handoff {
            trigger: trigger as i32,
            summary: req.summary.trim().to_string(),
            team_id: req.team_id.clone(),
            required_skills: skills,
        };
        let origin = c.origin().acting_as(if trigger == HandoffTrigger::Bot {
            helpdesk_kit::event::bot_actor(&c.claims.sub)
        } else {
            c.claims.actor()
        });
        let conv = ops::hand_off(&mut tx, &origin, conv, handoff).await?;
        tx.commit().await?;
        Ok(conv.to_proto())
    }
}
