//! The mailer: claims queued emails and hands them to the SMTP server.
//!
//! An email is recorded as sent the moment the server accepts it, in a statement of
//! its own before anything else, so no later failure can send it again. A refusal
//! for good (5xx) fails it at once; anything else (4xx, a connection or TLS failure,
//! a timeout) is retried on the schedule.

use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{Header, HeaderName, HeaderValue};
use lettre::message::{Mailbox, MultiPart};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Message, Tokio1Executor};
use sqlx::PgPool;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::ops::emails::{self, MailPolicy};
use crate::store::emails::{self as store, EmailRow};

/// How to reach the SMTP server.
#[derive(Debug, Clone)]
pub struct SmtpConfig {
    pub host: String,
    pub port: u16,
    /// `starttls` (required), `tls` (implicit) or `none`.
    pub tls: String,
    /// PEM of a certificate authority to trust besides the web's (a private relay).
    pub ca_pem: String,
    pub username: String,
    pub password: String,
    pub timeout: Duration,
}

/// Emails sent at once.
const CONCURRENT: usize = 4;

/// Sends the queued emails of every account.
pub struct Mailer {
    pool: PgPool,
    policy: Arc<MailPolicy>,
    transport: AsyncSmtpTransport<Tokio1Executor>,
    poll: Duration,
    timeout: Duration,
}

impl Mailer {
    /// A mailer for `smtp`; an error names what is wrong with it.
    pub fn new(
        pool: PgPool,
        policy: Arc<MailPolicy>,
        smtp: &SmtpConfig,
        poll: Duration,
    ) -> Result<Self, String> {
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&smtp.host)
            .port(smtp.port)
            .timeout(Some(smtp.timeout));
        if smtp.tls != "none" {
            // The web's certificate authorities, and the operator's own if given.
            let mut params = TlsParameters::builder(smtp.host.clone());
            if !smtp.ca_pem.is_empty() {
                let ca = Certificate::from_pem(smtp.ca_pem.as_bytes())
                    .map_err(|e| format!("smtp_ca_file: {e}"))?;
                params = params.add_root_certificate(ca);
            }
            let params = params.build_rustls().map_err(|e| e.to_string())?;
            builder = builder.tls(match smtp.tls.as_str() {
                "tls" => Tls::Wrapper(params),
                _ => Tls::Required(params),
            });
        }
        if !smtp.username.is_empty() {
            builder = builder.credentials(Credentials::new(
                smtp.username.clone(),
                smtp.password.clone(),
            ));
        }
        Ok(Self {
            pool,
            policy,
            transport: builder.build(),
            poll,
            timeout: smtp.timeout,
        })
    }

    /// Sends until `stop`.
    pub async fn run(self, stop: CancellationToken) {
        let claim_secs = (self.timeout * 2 + Duration::from_secs(30)).as_secs_f64();
        loop {
            if stop.is_cancelled() {
                return;
            }
            let batch = match store::claim(&self.pool, CONCURRENT as i64, claim_secs).await {
                Ok(batch) => batch,
                Err(e) => {
                    tracing::warn!(error = %e, "claiming emails failed; retrying");
                    Vec::new()
                }
            };
            let full = batch.len() == CONCURRENT;
            futures::future::join_all(batch.into_iter().map(|e| self.send(e))).await;
            if full {
                continue;
            }
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(self.poll) => {}
            }
        }
    }

    async fn send(&self, email: EmailRow) {
        // A child of what queued it: one trace from the cause to the SMTP server.
        let span = tracing::info_span!(
            "email.send",
            otel.name = %format!("email send {}", email.kind),
            otel.kind = "client",
            otel.status_code = tracing::field::Empty,
            helpdesk.email.id = %email.id,
            helpdesk.email.kind = %email.kind,
            helpdesk.email.recipients = email.recipients.len(),
            helpdesk.email.attempt = email.attempts + 1,
        );
        helpdesk_kit::telemetry::set_parent_traceparent(&span, &email.traceparent);
        let outcome = async {
            match message(&email) {
                // Well inside the claim (lettre's timeout is per step, not per send).
                Ok(m) => {
                    match tokio::time::timeout(self.timeout * 2, self.transport.send(m)).await {
                        Ok(sent) => sent.map_err(|e| (e.is_permanent(), e.to_string())),
                        Err(_) => Err((false, "the SMTP conversation took too long".to_string())),
                    }
                }
                Err(why) => Err((true, why)),
            }
        }
        .instrument(span.clone())
        .await;
        if outcome.is_err() {
            span.record("otel.status_code", "ERROR");
        }
        crate::metrics::email_attempt(match &outcome {
            Ok(_) => "sent",
            Err((true, _)) => "failed",
            Err((false, _)) => "retry",
        });
        match outcome {
            Ok(_) => {
                // Recorded first and alone: accepted mail is never sent again.
                let mut pause = Duration::from_millis(50);
                while let Err(e) = store::mark_sent(&self.pool, email.id).await {
                    tracing::warn!(error = %e, email = %email.id, "recording a sent email failed; retrying");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(2));
                }
            }
            Err((permanent, why)) => {
                tracing::info!(email = %email.id, permanent, error = %why, "email not sent");
                let recorded = async {
                    let (result, enqueued) = helpdesk_kit::outbox::tracked(async {
                        let mut tx = self.pool.begin().await?;
                        emails::failed(&mut tx, &self.policy, &email, permanent, &why).await?;
                        tx.commit().await?;
                        Ok::<_, helpdesk_kit::error::Error>(())
                    })
                    .await;
                    if enqueued && result.is_ok() {
                        helpdesk_kit::outbox::wake();
                    }
                    result
                };
                if let Err(e) = recorded.await {
                    tracing::warn!(error = %e, email = %email.id, "recording a failed email attempt failed; its claim will run out");
                }
            }
        }
    }
}

/// `Auto-Submitted` (RFC 3834).
#[derive(Clone)]
struct AutoSubmitted(String);

impl Header for AutoSubmitted {
    fn name() -> HeaderName {
        HeaderName::new_from_ascii_str("Auto-Submitted")
    }

    fn parse(s: &str) -> Result<Self, Box<dyn std::error::Error + Send + Sync>> {
        Ok(Self(s.to_string()))
    }

    fn display(&self) -> HeaderValue {
        HeaderValue::new(Self::name(), self.0.clone())
    }
}

/// The MIME message of a stored email (multipart text and HTML).
fn message(e: &EmailRow) -> Result<Message, String> {
    let from: Mailbox = e
        .sender
        .parse()
        .map_err(|err| format!("sender {:?}: {err}", e.sender))?;
    let mut b = Message::builder()
        .from(from)
        .subject(e.subject.clone())
        .message_id(Some(e.message_id.clone()));
    for to in &e.recipients {
        let to: Mailbox = to
            .parse()
            .map_err(|err| format!("recipient {to:?}: {err}"))?;
        b = b.to(to);
    }
    if !e.reply_to.is_empty() {
        let reply_to: Mailbox = e
            .reply_to
            .parse()
            .map_err(|err| format!("reply-to {:?}: {err}", e.reply_to))?;
        b = b.reply_to(reply_to);
    }
    if !e.in_reply_to.is_empty() {
        b = b
            .in_reply_to(e.in_reply_to.clone())
            .references(e.in_reply_to.clone());
    }
    if !e.auto_submitted.is_empty() {
        b = b.header(AutoSubmitted(e.auto_submitted.clone()));
    }
    b.multipart(MultiPart::alternative_plain_html(
        e.text_body.clone(),
        e.html_body.clone(),
    ))
    .map_err(|err| err.to_string())
}
