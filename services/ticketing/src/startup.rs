//! The ticketing service as the kit runs it: its settings and its parts.

use std::time::Duration;

use helpdesk_kit::config::ConfigError;
use helpdesk_kit::{Ctx, Parts};
use helpdesk_proto::ticketing::v1::RunTicketActionRequest;
use helpdesk_proto::ticketing::v1::ticketing_service_server::TicketingServiceServer;
use serde::{Deserialize, Serialize};

use crate::grpc::Api;
use crate::timers::TicketTimers;

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The ticketing service.
pub struct Ticketing;

/// The ticketing service's own settings (`[ticketing]`, `HELPDESK_TICKETING__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TicketingSettings {
    /// A solved ticket closes (for good) this long after it was solved, unless it
    /// reopens first.
    pub close_solved_after_seconds: u64,
    /// How long a call to another service (reading a conversation) may take.
    pub command_timeout_ms: u64,
}

impl Default for TicketingSettings {
    fn default() -> Self {
        Self {
            close_solved_after_seconds: 4 * 24 * 3600,
            command_timeout_ms: 5_000,
        }
    }
}

impl helpdesk_kit::Settings for TicketingSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=366 * 24 * 3600).contains(&self.close_solved_after_seconds) {
            return Err(ConfigError::new(
                "close_solved_after_seconds",
                "must be 1..=31622400 (a year)",
            ));
        }
        if !(100..=60_000).contains(&self.command_timeout_ms) {
            return Err(ConfigError::new(
                "command_timeout_ms",
                "must be 100..=60000",
            ));
        }
        Ok(())
    }
}

impl helpdesk_kit::Service for Ticketing {
    const NAME: &'static str = "ticketing";
    const PORT: u16 = 50053;
    type Settings = TicketingSettings;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn parts(ctx: &Ctx, settings: &TicketingSettings) -> Parts {
        let close_after = chrono::Duration::seconds(settings.close_solved_after_seconds as i64);
        let api = Api {
            pool: ctx.pool.clone(),
            bus: ctx.bus.clone(),
            close_after,
            command_timeout: Duration::from_millis(settings.command_timeout_ms),
            live: ctx.live.clone(),
            streams: ctx.streams.clone(),
        };
        let events = crate::consumers::ChatEvents {
            bus: ctx.bus.clone(),
            command_timeout: Duration::from_millis(settings.command_timeout_ms),
            close_after,
        };
        Parts::new()
            .grpc(TicketingServiceServer::with_interceptor(
                api.clone(),
                ctx.auth(),
            ))
            .command::<RunTicketActionRequest, _>(crate::commands::RunAction { api })
            .consumer(crate::consumers::consumer(events))
            .timers(TicketTimers { close_after })
    }
}
