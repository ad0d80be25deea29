//! The account's email settings and its outbound mail log.

use std::collections::BTreeMap;

use helpdesk_kit::auth::Caller;
use helpdesk_kit::error::Result;
use helpdesk_kit::grpc::Violations;
use helpdesk_kit::page::{page_size, paginate};
use helpdesk_proto::notification::v1::*;
use sqlx::types::Json;

use super::Api;
use crate::domain::StorageName;
use crate::domain::templates::{MAX_TEMPLATE_CHARS, Template};
use crate::store::emails::{self, SettingsRow};
use helpdesk_kit::page::{decode_time_cursor, time_cursor};

fn to_proto(s: &SettingsRow) -> EmailSettings {
    EmailSettings {
        from_name: s.from_name.clone(),
        from_address: s.from_address.clone(),
        reply_to: s.reply_to.clone(),
        ticket_emails_disabled: s.ticket_emails_disabled,
        templates: s
            .templates
            .0
            .iter()
            .map(|(kind, t)| EmailTemplate {
                kind: EmailKind::from_storage(kind) as i32,
                subject: t.subject.clone(),
                text: t.text.clone(),
                html: t.html.clone(),
            })
            .collect(),
    }
}

impl Api {
    pub(crate) async fn get_email_settings_impl(&self, c: &Caller) -> Result<EmailSettings> {
        let mut conn = self.pool.acquire().await?;
        Ok(to_proto(&emails::settings(&mut conn, c.account()).await?))
    }

    pub(crate) async fn update_email_settings_impl(
        &self,
        c: &Caller,
        req: UpdateEmailSettingsRequest,
    ) -> Result<EmailSettings> {
        let s = req.settings.unwrap_or_default();
        let mut v = Violations::new();
        helpdesk_kit::validate::text(&mut v, "settings.from_name", &s.from_name, false, 100);
        v.check(
            s.from_name.contains(['"', '<', '>', '\r', '\n']),
            "settings.from_name",
            "no quotes, angle brackets or line breaks",
        );
        if !s.from_address.is_empty() {
            helpdesk_kit::validate::email(&mut v, "settings.from_address", &s.from_address);
        }
        if !s.reply_to.is_empty() {
            helpdesk_kit::validate::email(&mut v, "settings.reply_to", &s.reply_to);
        }
        let mut templates = BTreeMap::new();
        for (i, t) in s.templates.iter().enumerate() {
            let kind: EmailKind = helpdesk_kit::validate::enumeration(
                &mut v,
                &format!("settings.templates[{i}].kind"),
                t.kind,
            );
            if kind == EmailKind::Unspecified {
                v.add(format!("settings.templates[{i}].kind"), "required");
            }
            for (part, value) in [
                ("subject", &t.subject),
                ("text", &t.text),
                ("html", &t.html),
            ] {
                if value.chars().count() > MAX_TEMPLATE_CHARS {
                    v.add(
                        format!("settings.templates[{i}].{part}"),
                        format!("at most {MAX_TEMPLATE_CHARS} characters"),
                    );
                }
            }
            let over = Template {
                subject: t.subject.clone(),
                text: t.text.clone(),
                html: t.html.clone(),
            };
            if templates
                .insert(kind.storage_name().to_string(), over)
                .is_some()
            {
                v.add(
                    format!("settings.templates[{i}].kind"),
                    "one template per kind",
                );
            }
        }
        v.into_result()?;
        let row = SettingsRow {
            from_name: s.from_name.trim().to_string(),
            from_address: s.from_address.trim().to_string(),
            reply_to: s.reply_to.trim().to_string(),
            ticket_emails_disabled: s.ticket_emails_disabled,
            templates: Json(templates),
        };
        let mut conn = self.pool.acquire().await?;
        emails::save_settings(&mut conn, c.account(), &row).await?;
        Ok(to_proto(&row))
    }

    pub(crate) async fn list_emails_impl(
        &self,
        c: &Caller,
        req: ListEmailsRequest,
    ) -> Result<ListEmailsResponse> {
        let mut v = Violations::new();
        let status: EmailStatus = helpdesk_kit::validate::enumeration(&mut v, "status", req.status);
        let size = page_size(&mut v, req.page_size);
        let before = decode_time_cursor(&mut v, &req.page_token);
        v.into_result()?;
        let status = (status != EmailStatus::Unspecified).then(|| status.storage_name());
        let mut conn = self.pool.acquire().await?;
        let mut rows =
            emails::list(&mut conn, c.account(), status, before, size as i64 + 1).await?;
        let next_page_token = paginate(&mut rows, size, |r| time_cursor(r.created_at, r.id));
        Ok(ListEmailsResponse {
            emails: rows.iter().map(|r| r.to_proto()).collect(),
            next_page_token,
        })
    }
}
