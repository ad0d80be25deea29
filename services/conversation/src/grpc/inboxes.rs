//! Inbox administration.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use helpdesk_kit::auth::Role;
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::outbox;
use helpdesk_proto::conversation::v1::*;
use uuid::Uuid;

use super::{Api, Caller};
use crate::domain::bot::Bot;
use crate::domain::lifecycle::{Lifecycle, Survey};
use crate::domain::validate;
use crate::store::{self, inboxes::InboxRow};
use helpdesk_kit::error::{Error, Result};
use helpdesk_kit::page;
use helpdesk_kit::storage::StorageName;
use sqlx::types::Json;

const STAFF: &[Role] = &[
    Role::Admin,
    Role::Supervisor,
    Role::Agent,
    Role::Integration,
];

fn check_fields(v: &mut Violations, inbox: &Inbox) {
    validate::text(v, "inbox.name", &inbox.name, true, 100);
    validate::text(
        v,
        "inbox.greeting_message",
        &inbox.greeting_message,
        false,
        2000,
    );
    if ChannelKind::try_from(inbox.channel_kind).unwrap_or_default() == ChannelKind::Unspecified {
        v.add(
            "inbox.channel_kind",
            "required: web_widget, mobile_sdk, api or email",
        );
    }
    if ReopenPolicy::try_from(inbox.reopen_policy).is_err() {
        v.add("inbox.reopen_policy", "unknown value");
    }
}

fn new_public_key() -> String {
    format!("pk_{}", URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>()))
}

/// A new identity secret: 256 random bits, hex.
fn new_identity_secret() -> String {
    rand::random::<[u8; 32]>()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// Checks and normalises the conversation attribute keys visitors may set.
fn visitor_keys(v: &mut Violations, keys: &[String]) -> Vec<String> {
    let mut out: Vec<String> = keys.iter().map(|k| k.trim().to_string()).collect();
    out.sort();
    out.dedup();
    if out.len() > validate::MAX_ATTRIBUTES {
        v.add(
            "inbox.visitor_attribute_keys",
            format!("at most {} keys", validate::MAX_ATTRIBUTES),
        );
    }
    for k in &out {
        if !validate::attribute_key_ok(k) {
            v.add(
                "inbox.visitor_attribute_keys",
                "keys are 1-64 characters of [A-Za-z0-9_-]",
            );
            break;
        }
    }
    out
}

/// The inbox as `c` may see it: admins see the identity secret.
fn shown(c: &Caller, row: &InboxRow) -> Inbox {
    if c.claims.role == Role::Admin {
        row.to_admin_proto()
    } else {
        row.to_proto()
    }
}

impl Api {
    pub(crate) async fn create_inbox_impl(
        &self,
        c: &Caller,
        req: CreateInboxRequest,
    ) -> Result<Inbox> {
        c.claims.require(&[Role::Admin])?;
        let inbox = req.inbox.unwrap_or_default();
        let mut v = Violations::new();
        check_fields(&mut v, &inbox);
        let visitor_attribute_keys = visitor_keys(&mut v, &inbox.visitor_attribute_keys);
        let bot = Bot::check(&mut v, "inbox.bot", inbox.bot.as_ref());
        let lifecycle = Lifecycle::check(&mut v, "inbox.lifecycle", inbox.lifecycle.as_ref());
        let survey = Survey::check(&mut v, "inbox.csat_survey", inbox.csat_survey.as_ref());
        v.into_result()?;
        let reopen = match ReopenPolicy::try_from(inbox.reopen_policy).unwrap_or_default() {
            ReopenPolicy::Unspecified => ReopenPolicy::Reopen,
            p => p,
        };
        let row = InboxRow {
            id: Uuid::now_v7(),
            account_id: c.account().to_string(),
            name: inbox.name.trim().to_string(),
            channel_kind: ChannelKind::try_from(inbox.channel_kind)
                .unwrap_or_default()
                .storage_name()
                .to_string(),
            public_key: new_public_key(),
            greeting_message: inbox.greeting_message,
            reopen_policy: reopen.storage_name().to_string(),
            created_at: chrono::Utc::now(),
            updated_at: chrono::Utc::now(),
            identity_secret: new_identity_secret(),
            visitor_attribute_keys,
            bot: bot.map(Json),
            ticket_on_leave_message: inbox.ticket_on_leave_message,
            reopen_on_ticket_update: inbox.reopen_on_ticket_update,
            lifecycle: lifecycle.map(Json),
            csat_survey: survey.map(Json),
        };
        let mut tx = self.pool.begin().await?;
        let row = store::inboxes::insert(&mut tx, &row).await?;
        let event = InboxCreated {
            inbox: Some(row.to_proto()),
            ..Default::default()
        };
        outbox::emit(&mut tx, &c.origin(), event).await?;
        tx.commit().await?;
        Ok(row.to_admin_proto())
    }

    pub(crate) async fn get_widget_settings_impl(
        &self,
        req: GetWidgetSettingsRequest,
    ) -> Result<WidgetSettings> {
        let mut v = Violations::new();
        validate::text(&mut v, "inbox_public_key", &req.inbox_public_key, true, 100);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let row = store::inboxes::by_public_key(&mut conn, &req.inbox_public_key)
            .await?
            .ok_or(Error::NotFound("inbox"))?;
        let survey = row.survey();
        Ok(WidgetSettings {
            inbox_name: row.name.clone(),
            greeting_message: row.greeting_message.clone(),
            pre_chat_fields: row.visitor_attribute_keys.clone(),
            has_bot: row.bot().is_some(),
            csat_enabled: survey.enabled,
            csat_question: survey.question().to_string(),
        })
    }

    pub(crate) async fn get_inbox_impl(&self, c: &Caller, req: GetInboxRequest) -> Result<Inbox> {
        c.claims.require(STAFF)?;
        let mut v = Violations::new();
        let id = validate::uuid(&mut v, "id", &req.id);
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let row = store::inboxes::get(&mut conn, c.account(), id.unwrap_or_default()).await?;
        Ok(shown(c, &row.ok_or(Error::NotFound("inbox"))?))
    }

    pub(crate) async fn list_inboxes_impl(
        &self,
        c: &Caller,
        req: ListInboxesRequest,
    ) -> Result<ListInboxesResponse> {
        c.claims.require(STAFF)?;
        let mut v = Violations::new();
        let size = validate::page_size(&mut v, req.page_size);
        let after = match req.page_token.as_str() {
            "" => None,
            t => {
                let id = page::decode_token(t)
                    .and_then(|s| s.strip_prefix("i:").and_then(|s| s.parse::<Uuid>().ok()));
                if id.is_none() {
                    v.add("page_token", "malformed page token");
                }
                id
            }
        };
        v.into_result()?;
        let mut conn = self.pool.acquire().await?;
        let mut rows = store::inboxes::list(&mut conn, c.account(), after, size + 1).await?;
        let next_page_token = page::paginate(&mut rows, size, |r| format!("i:{}", r.id));
        Ok(ListInboxesResponse {
            inboxes: rows.iter().map(|r| shown(c, r)).collect(),
            next_page_token,
        })
    }

    pub(crate) async fn update_inbox_impl(
        &self,
        c: &Caller,
        req: UpdateInboxRequest,
    ) -> Result<Inbox> {
        c.claims.require(&[Role::Admin])?;
        let inbox = req.inbox.unwrap_or_default();
        let paths = req.update_mask.map(|m| m.paths).unwrap_or_default();
        let mut v = Violations::new();
        let id = validate::uuid(&mut v, "inbox.id", &inbox.id);
        if paths.is_empty() {
            v.add(
                "update_mask",
                "required: name, greeting_message, reopen_policy, channel_kind, \
                 visitor_attribute_keys, bot, ticket_on_leave_message, \
                 reopen_on_ticket_update, lifecycle, csat_survey, identity_secret",
            );
        }
        let visitor_attribute_keys = visitor_keys(&mut v, &inbox.visitor_attribute_keys);
        let bot = Bot::check(&mut v, "inbox.bot", inbox.bot.as_ref());
        let lifecycle = Lifecycle::check(&mut v, "inbox.lifecycle", inbox.lifecycle.as_ref());
        let survey = Survey::check(&mut v, "inbox.csat_survey", inbox.csat_survey.as_ref());
        for p in &paths {
            match p.as_str() {
                "name" => validate::text(&mut v, "inbox.name", &inbox.name, true, 100),
                "greeting_message" => validate::text(
                    &mut v,
                    "inbox.greeting_message",
                    &inbox.greeting_message,
                    false,
                    2000,
                ),
                "reopen_policy" => {
                    if ReopenPolicy::try_from(inbox.reopen_policy).unwrap_or_default()
                        == ReopenPolicy::Unspecified
                    {
                        v.add(
                            "inbox.reopen_policy",
                            "required: reopen or new_conversation",
                        );
                    }
                }
                "channel_kind" => {
                    if ChannelKind::try_from(inbox.channel_kind).unwrap_or_default()
                        == ChannelKind::Unspecified
                    {
                        v.add("inbox.channel_kind", "required");
                    }
                }
                "visitor_attribute_keys"
                | "identity_secret"
                | "bot"
                | "ticket_on_leave_message"
                | "reopen_on_ticket_update"
                | "lifecycle"
                | "csat_survey" => {}
                other => v.add(
                    "update_mask",
                    format!("unknown or immutable path {other:?}"),
                ),
            }
        }
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let mut row = store::inboxes::get(&mut tx, c.account(), id.unwrap_or_default())
            .await?
            .ok_or(Error::NotFound("inbox"))?;
        for p in &paths {
            match p.as_str() {
                "name" => row.name = inbox.name.trim().to_string(),
                "greeting_message" => row.greeting_message = inbox.greeting_message.clone(),
                "reopen_policy" => {
                    row.reopen_policy = ReopenPolicy::try_from(inbox.reopen_policy)
                        .unwrap_or_default()
                        .storage_name()
                        .to_string()
                }
                "channel_kind" => {
                    row.channel_kind = ChannelKind::try_from(inbox.channel_kind)
                        .unwrap_or_default()
                        .storage_name()
                        .to_string()
                }
                "visitor_attribute_keys" => {
                    row.visitor_attribute_keys = visitor_attribute_keys.clone()
                }
                "identity_secret" => row.identity_secret = new_identity_secret(),
                // Conversations with the bot now stay with it; new ones follow this.
                "bot" => row.bot = bot.clone().map(Json),
                "ticket_on_leave_message" => {
                    row.ticket_on_leave_message = inbox.ticket_on_leave_message
                }
                "reopen_on_ticket_update" => {
                    row.reopen_on_ticket_update = inbox.reopen_on_ticket_update
                }
                "lifecycle" => row.lifecycle = lifecycle.clone().map(Json),
                "csat_survey" => row.csat_survey = survey.clone().map(Json),
                _ => {}
            }
        }
        let row = store::inboxes::update(&mut tx, &row).await?;
        let event = InboxUpdated {
            inbox: Some(row.to_proto()),
            changed_fields: paths,
            ..Default::default()
        };
        outbox::emit(&mut tx, &c.origin(), event).await?;
        tx.commit().await?;
        Ok(row.to_admin_proto())
    }
}
