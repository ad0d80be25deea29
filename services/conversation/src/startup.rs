//! The conversation service as the kit runs it: its settings and its parts.

use helpdesk_kit::config::ConfigError;
use helpdesk_kit::{Ctx, Parts};
use helpdesk_proto::conversation::v1::conversation_service_server::ConversationServiceServer;
use helpdesk_proto::conversation::v1::{ExportConversationRequest, RunConversationActionRequest};
use serde::{Deserialize, Serialize};

use crate::grpc::Api;
use crate::timers::ConversationTimers;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The conversation service.
pub struct Conversation;

/// The conversation service's own settings (`[conversation]`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConversationSettings {
    /// Lifetime of the visitor tokens StartConversation issues.
    pub visitor_token_ttl_hours: u64,
}

impl Default for ConversationSettings {
    fn default() -> Self {
        Self {
            visitor_token_ttl_hours: 24,
        }
    }
}

impl helpdesk_kit::Settings for ConversationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=24 * 365).contains(&self.visitor_token_ttl_hours) {
            return Err(ConfigError::new(
                "visitor_token_ttl_hours",
                "must be 1..=8760",
            ));
        }
        Ok(())
    }
}

impl helpdesk_kit::Service for Conversation {
    const NAME: &'static str = "conversation";
    const PORT: u16 = 50051;
    type Settings = ConversationSettings;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn parts(ctx: &Ctx, settings: &ConversationSettings) -> Parts {
        let api = Api {
            pool: ctx.pool.clone(),
            bus: ctx.bus.clone(),
            keys: ctx.keys.clone(),
            visitor_token_ttl: chrono::Duration::hours(settings.visitor_token_ttl_hours as i64),
            live: ctx.live.clone(),
        };
        Parts::new()
            .grpc(ConversationServiceServer::with_interceptor(
                api.clone(),
                ctx.auth(),
            ))
            .consumer(crate::consumers::consumer())
            .timers(ConversationTimers)
            .command::<ExportConversationRequest, _>(crate::commands::Export {
                pool: ctx.pool.clone(),
            })
            .command::<RunConversationActionRequest, _>(crate::commands::RunAction { api })
            .task({
                let pool = ctx.pool.clone();
                move |shutdown| crate::ops::announce_task(pool, shutdown)
            })
    }
}
