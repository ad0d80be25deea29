//! The notification service as the kit runs it: its settings and its parts.

use std::sync::Arc;
use std::time::Duration;

use helpdesk_kit::config::ConfigError;
use helpdesk_kit::{Ctx, Parts};
use helpdesk_proto::notification::v1::notification_service_server::NotificationServiceServer;
use helpdesk_proto::notification::v1::{SendEmailRequest, SendWebhookRequest};
use serde::{Deserialize, Serialize};

use crate::domain::targets::TargetPolicy;
use crate::grpc::Api;
use crate::mailer::{Mailer, SmtpConfig};
use crate::ops::Policy;
use crate::ops::emails::MailPolicy;
use crate::sender::{Sender, SenderConfig};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The notification service.
pub struct Notification;

/// The notification service's own settings (`[notification]`,
/// `HELPDESK_NOTIFICATION__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationSettings {
    /// Delay before each attempt of a webhook delivery, in seconds: the first
    /// attempt's (0: at once), then one per retry; ±20 % jitter is added.
    pub retry_schedule_seconds: Vec<f64>,
    /// Finished webhook deliveries (and their attempts) and sent or failed emails are
    /// kept this many days.
    pub delivery_retention_days: u32,
    /// How long one attempt may take, answer included.
    pub attempt_timeout_ms: u64,
    /// An endpoint whose every attempt has failed for this long is disabled.
    pub disable_after_failing_seconds: u64,
    /// Requests in flight to one endpoint, per replica.
    pub per_endpoint_concurrency: u32,
    /// Requests in flight in all, per replica.
    pub max_in_flight: u32,
    /// How often due deliveries are looked for when nothing wakes the sender.
    pub poll_interval_ms: u64,
    /// Allow endpoints on loopback addresses (a single-machine install, tests).
    pub allow_loopback_targets: bool,
    /// Allow endpoints on private and link-local addresses (never metadata ones).
    pub allow_private_targets: bool,
    /// The SMTP server email goes through; empty: no email is sent.
    pub smtp_host: String,
    /// Its port (587 for STARTTLS, 465 for implicit TLS, 25 plain).
    pub smtp_port: u16,
    /// `starttls`, `tls` (implicit) or `none` (a local relay only).
    pub smtp_tls: String,
    /// Login, when the server asks for one.
    pub smtp_username: String,
    pub smtp_password: String,
    /// How long one SMTP conversation may take.
    pub smtp_timeout_ms: u64,
    /// A PEM file of a certificate authority to trust for the SMTP server besides
    /// the web's (a relay with a private CA); empty: none.
    pub smtp_ca_file: String,
    /// The sender of accounts that set none: `Name <address>` or an address.
    pub email_from: String,
    /// Delay before each attempt of an email, in seconds (the first 0).
    pub email_retry_schedule_seconds: Vec<f64>,
}

impl Default for NotificationSettings {
    fn default() -> Self {
        Self {
            retry_schedule_seconds: vec![
                0.0, 5.0, 300.0, 1800.0, 7200.0, 18000.0, 36000.0, 36000.0,
            ],
            delivery_retention_days: 30,
            attempt_timeout_ms: 15_000,
            disable_after_failing_seconds: 5 * 24 * 3600,
            per_endpoint_concurrency: 16,
            max_in_flight: 256,
            poll_interval_ms: 500,
            allow_loopback_targets: false,
            allow_private_targets: false,
            smtp_host: String::new(),
            smtp_port: 587,
            smtp_tls: "starttls".into(),
            smtp_username: String::new(),
            smtp_password: String::new(),
            smtp_timeout_ms: 30_000,
            smtp_ca_file: String::new(),
            email_from: String::new(),
            email_retry_schedule_seconds: vec![0.0, 60.0, 300.0, 1800.0, 7200.0, 21600.0],
        }
    }
}

impl helpdesk_kit::Settings for NotificationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        let s = &self.retry_schedule_seconds;
        if s.is_empty() || s.len() > 20 {
            return Err(ConfigError::new(
                "retry_schedule_seconds",
                "1 to 20 delays (the first attempt's, then one per retry)",
            ));
        }
        if s[0] != 0.0 {
            return Err(ConfigError::new(
                "retry_schedule_seconds",
                "the first attempt goes out at once: the first delay must be 0",
            ));
        }
        if s.iter().any(|d| !(0.0..=7.0 * 24.0 * 3600.0).contains(d)) {
            return Err(ConfigError::new(
                "retry_schedule_seconds",
                "each delay 0 to 604800 seconds",
            ));
        }
        if !(1..=3650).contains(&self.delivery_retention_days) {
            return Err(ConfigError::new(
                "delivery_retention_days",
                "must be 1..=3650",
            ));
        }
        if !(100..=120_000).contains(&self.attempt_timeout_ms) {
            return Err(ConfigError::new(
                "attempt_timeout_ms",
                "must be 100..=120000",
            ));
        }
        if self.disable_after_failing_seconds == 0 {
            return Err(ConfigError::new(
                "disable_after_failing_seconds",
                "must be at least 1",
            ));
        }
        if !(1..=1_000).contains(&self.per_endpoint_concurrency) {
            return Err(ConfigError::new(
                "per_endpoint_concurrency",
                "must be 1..=1000",
            ));
        }
        if !(1..=10_000).contains(&self.max_in_flight) {
            return Err(ConfigError::new("max_in_flight", "must be 1..=10000"));
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(ConfigError::new("poll_interval_ms", "must be 10..=60000"));
        }
        if !matches!(self.smtp_tls.as_str(), "starttls" | "tls" | "none") {
            return Err(ConfigError::new("smtp_tls", "starttls, tls or none"));
        }
        if !(100..=300_000).contains(&self.smtp_timeout_ms) {
            return Err(ConfigError::new("smtp_timeout_ms", "must be 100..=300000"));
        }
        if !self.email_from.is_empty()
            && self.email_from.parse::<lettre::message::Mailbox>().is_err()
        {
            return Err(ConfigError::new(
                "email_from",
                "a mailbox: `Name <address>` or an address",
            ));
        }
        let e = &self.email_retry_schedule_seconds;
        if e.is_empty()
            || e.len() > 20
            || e[0] != 0.0
            || e.iter().any(|d| !(0.0..=7.0 * 24.0 * 3600.0).contains(d))
        {
            return Err(ConfigError::new(
                "email_retry_schedule_seconds",
                "1 to 20 delays of 0 to 604800 seconds, the first 0",
            ));
        }
        Ok(())
    }
}

impl NotificationSettings {
    fn mail(&self) -> MailPolicy {
        MailPolicy {
            enabled: !self.smtp_host.is_empty(),
            default_from: self.email_from.clone(),
            schedule: self
                .email_retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs_f64(*s))
                .collect(),
        }
    }

    fn smtp(&self) -> Result<SmtpConfig, String> {
        let ca_pem = match self.smtp_ca_file.as_str() {
            "" => String::new(),
            path => {
                std::fs::read_to_string(path).map_err(|e| format!("smtp_ca_file {path}: {e}"))?
            }
        };
        Ok(SmtpConfig {
            host: self.smtp_host.clone(),
            port: self.smtp_port,
            tls: self.smtp_tls.clone(),
            ca_pem,
            username: self.smtp_username.clone(),
            password: self.smtp_password.clone(),
            timeout: Duration::from_millis(self.smtp_timeout_ms),
        })
    }

    fn policy(&self) -> Policy {
        Policy {
            schedule: self
                .retry_schedule_seconds
                .iter()
                .map(|s| Duration::from_secs_f64(*s))
                .collect(),
            disable_after: Duration::from_secs(self.disable_after_failing_seconds),
            targets: TargetPolicy {
                allow_loopback: self.allow_loopback_targets,
                allow_private: self.allow_private_targets,
            },
        }
    }
}

impl helpdesk_kit::Service for Notification {
    const NAME: &'static str = "notification";
    const PORT: u16 = 50055;
    type Settings = NotificationSettings;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn parts(ctx: &Ctx, settings: &NotificationSettings) -> Parts {
        let policy = Arc::new(settings.policy());
        let mut mail = settings.mail();
        let poll = Duration::from_millis(settings.poll_interval_ms);
        let mailer = if mail.enabled {
            let made = settings.smtp().and_then(|smtp| {
                Mailer::new(ctx.pool.clone(), Arc::new(mail.clone()), &smtp, poll)
            });
            if let Err(e) = &made {
                // No mailer: no email is queued (commands are refused), rather than
                // mail piling up that nothing will send.
                tracing::error!(error = %e, "the SMTP settings are unusable; email is off");
                mail.enabled = false;
            }
            made.ok()
        } else {
            None
        };
        let mail = Arc::new(mail);
        let api = Api {
            pool: ctx.pool.clone(),
            policy: policy.clone(),
            live: ctx.live.clone(),
            streams: ctx.streams.clone(),
        };
        let sender = Sender::new(
            ctx.pool.clone(),
            policy,
            SenderConfig {
                per_endpoint: settings.per_endpoint_concurrency,
                max_in_flight: settings.max_in_flight as usize,
                timeout: Duration::from_millis(settings.attempt_timeout_ms),
                poll: Duration::from_millis(settings.poll_interval_ms),
            },
        );
        let retention = crate::sender::Retention {
            pool: ctx.pool.clone(),
            keep: chrono::Duration::days(i64::from(settings.delivery_retention_days)),
        };
        let mut parts = Parts::new()
            .grpc(NotificationServiceServer::with_interceptor(api, ctx.auth()))
            .all_events(
                "notification",
                crate::consumers::Events::new(mail.as_ref().clone()),
            )
            .command::<SendWebhookRequest, _>(crate::commands::SendWebhook {
                pool: ctx.pool.clone(),
            })
            .command::<SendEmailRequest, _>(crate::commands::SendEmail {
                pool: ctx.pool.clone(),
                mail: mail.clone(),
            })
            .task(move |stop| sender.run(stop))
            .task(move |stop| retention.run(stop))
            .task({
                let pool = ctx.pool.clone();
                move |stop| crate::metrics::sample(pool, stop)
            });
        if let Some(mailer) = mailer {
            parts = parts.task(move |stop| mailer.run(stop));
        }
        parts
    }
}
