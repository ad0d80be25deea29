//! Commands the notification service answers for the other services.

use helpdesk_kit::command::Answer;
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::notification::v1::{
    EmailKind, SendEmailRequest, SendEmailResponse, SendWebhookRequest, SendWebhookResponse,
};
use sqlx::PgPool;

use crate::domain::{MAX_COMMAND_DATA_BYTES, MAX_IDEMPOTENCY_KEY_CHARS};
use crate::ops;

/// Answers `send_webhook`: a payload for one of the account's endpoints, delivered
/// like an event (signed, retried, logged), once per idempotency key.
pub struct SendWebhook {
    pub pool: PgPool,
}

fn is_type(s: &str) -> bool {
    (1..=100).contains(&s.len())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b"._-".contains(&b))
}

impl Answer<SendWebhookRequest> for SendWebhook {
    async fn answer(&self, req: SendWebhookRequest) -> Result<SendWebhookResponse> {
        let mut v = Violations::new();
        v.check(req.account_id.is_empty(), "account_id", "required");
        let endpoint = helpdesk_kit::validate::uuid(&mut v, "endpoint_id", &req.endpoint_id);
        let key_chars = req.idempotency_key.chars().count();
        v.check(
            key_chars == 0 || key_chars > MAX_IDEMPOTENCY_KEY_CHARS,
            "idempotency_key",
            "1 to 200 characters",
        );
        v.check(
            !is_type(&req.event_type),
            "event_type",
            "1 to 100 characters of [a-z0-9._-]",
        );
        let data = if req.data_json.len() > MAX_COMMAND_DATA_BYTES {
            v.add("data_json", "at most 256 KiB");
            None
        } else {
            match serde_json::from_str::<serde_json::Value>(&req.data_json) {
                Ok(d) if d.is_object() => Some(d),
                _ => {
                    v.add("data_json", "a JSON object");
                    None
                }
            }
        };
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let id = ops::webhooks::send(
            &mut tx,
            &req.account_id,
            endpoint.unwrap_or_default(),
            &req.idempotency_key,
            &req.event_type,
            data.unwrap_or_default(),
        )
        .await?;
        tx.commit().await?;
        Ok(SendWebhookResponse {
            delivery_id: id.to_string(),
        })
    }
}

/// Answers `send_email`: an email of the account's sender, composed from the kind's
/// template, once per idempotency key.
pub struct SendEmail {
    pub pool: PgPool,
    pub mail: std::sync::Arc<crate::ops::emails::MailPolicy>,
}

/// Most recipients of one email.
const MAX_RECIPIENTS: usize = 50;

impl Answer<SendEmailRequest> for SendEmail {
    async fn answer(&self, req: SendEmailRequest) -> Result<SendEmailResponse> {
        let mut v = Violations::new();
        v.check(req.account_id.is_empty(), "account_id", "required");
        let key_chars = req.idempotency_key.chars().count();
        v.check(
            key_chars == 0 || key_chars > MAX_IDEMPOTENCY_KEY_CHARS,
            "idempotency_key",
            "1 to 200 characters",
        );
        let kind: EmailKind = helpdesk_kit::validate::enumeration(&mut v, "kind", req.kind);
        v.check(kind == EmailKind::Unspecified, "kind", "required");
        v.check(
            req.to.is_empty() || req.to.len() > MAX_RECIPIENTS,
            "to",
            "1 to 50 addresses",
        );
        for (i, to) in req.to.iter().enumerate() {
            helpdesk_kit::validate::email(&mut v, &format!("to[{i}]"), to);
        }
        helpdesk_kit::validate::text(&mut v, "subject", &req.subject, false, 250);
        for (field, value) in [("text", &req.text), ("html", &req.html)] {
            v.check(
                value.len() > MAX_COMMAND_DATA_BYTES,
                field,
                "at most 256 KiB",
            );
        }
        v.check(
            req.variables.len() > 100
                || req
                    .variables
                    .iter()
                    .any(|(k, val)| k.len() > 100 || val.len() > MAX_COMMAND_DATA_BYTES),
            "variables",
            "at most 100, names up to 100 bytes, values up to 256 KiB",
        );
        v.into_result()?;
        let mut tx = self.pool.begin().await?;
        let compose = crate::ops::emails::Compose {
            kind,
            dedupe_key: format!("cmd:{}", req.idempotency_key),
            to: req.to.iter().map(|t| t.trim().to_string()).collect(),
            values: req.variables.into_iter().collect(),
            given: crate::domain::templates::Rendered {
                subject: req.subject,
                text: req.text,
                html: req.html,
            },
            ticket_id: req.ticket_id,
            ..Default::default()
        };
        let (id, message_id) =
            crate::ops::emails::compose(&mut tx, &req.account_id, &self.mail, compose).await?;
        tx.commit().await?;
        Ok(SendEmailResponse {
            email_id: id.to_string(),
            message_id,
        })
    }
}
