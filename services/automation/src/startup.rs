//! The automation service as the kit runs it: its settings and its parts.

use std::sync::Arc;
use std::time::Duration;

use helpdesk_kit::config::ConfigError;
use helpdesk_kit::{Ctx, Parts};
use helpdesk_proto::automation::v1::automation_service_server::AutomationServiceServer;
use serde::{Deserialize, Serialize};

use crate::cache::RuleCache;
use crate::executor::ExecutorConfig;
use crate::grpc::Api;
use crate::ops::run::{Limits, Runner};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The automation service.
pub struct Automation;

/// The automation service's own settings (`[automation]`, `HELPDESK_AUTOMATION__…`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AutomationSettings {
    /// A rule does not act on an event that descends from this many rule actions
    /// (the run is logged as stopped).
    pub depth_limit: u32,
    /// Most rule runs acting on one conversation within a minute.
    pub max_runs_per_conversation_per_minute: u32,
    /// Deadline of each action's call to the owning service.
    pub command_timeout_ms: u64,
    /// Runs are kept in the log this many days.
    pub run_retention_days: u32,
    /// How often due work (delayed runs) is looked for when nothing wakes the
    /// executor.
    pub poll_interval_ms: u64,
    /// Events (and delayed runs) run at once per replica.
    pub concurrency: u32,
    /// Each replica reloads an account's rules at least this often (changes are
    /// seen at once through `automation.rules_changed`).
    pub rule_cache_seconds: u64,
}

impl Default for AutomationSettings {
    fn default() -> Self {
        Self {
            depth_limit: 5,
            max_runs_per_conversation_per_minute: 30,
            command_timeout_ms: 5_000,
            run_retention_days: 30,
            poll_interval_ms: 500,
            concurrency: 64,
            rule_cache_seconds: 60,
        }
    }
}

impl helpdesk_kit::Settings for AutomationSettings {
    fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=helpdesk_kit::event::MAX_CHAIN as u32).contains(&self.depth_limit) {
            return Err(ConfigError::new("depth_limit", "must be 1..=32"));
        }
        if !(1..=10_000).contains(&self.max_runs_per_conversation_per_minute) {
            return Err(ConfigError::new(
                "max_runs_per_conversation_per_minute",
                "must be 1..=10000",
            ));
        }
        if !(100..=60_000).contains(&self.command_timeout_ms) {
            return Err(ConfigError::new(
                "command_timeout_ms",
                "must be 100..=60000",
            ));
        }
        if !(1..=3650).contains(&self.run_retention_days) {
            return Err(ConfigError::new("run_retention_days", "must be 1..=3650"));
        }
        if !(10..=60_000).contains(&self.poll_interval_ms) {
            return Err(ConfigError::new("poll_interval_ms", "must be 10..=60000"));
        }
        if !(1..=1_000).contains(&self.concurrency) {
            return Err(ConfigError::new("concurrency", "must be 1..=1000"));
        }
        if !(1..=3_600).contains(&self.rule_cache_seconds) {
            return Err(ConfigError::new("rule_cache_seconds", "must be 1..=3600"));
        }
        Ok(())
    }
}

impl helpdesk_kit::Service for Automation {
    const NAME: &'static str = "automation";
    const PORT: u16 = 50054;
    type Settings = AutomationSettings;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn parts(ctx: &Ctx, settings: &AutomationSettings) -> Parts {
        let cache = RuleCache::new(
            ctx.pool.clone(),
            Duration::from_secs(settings.rule_cache_seconds),
        );
        let runner = Arc::new(Runner {
            pool: ctx.pool.clone(),
            bus: ctx.bus.clone(),
            cache: cache.clone(),
            limits: Limits {
                depth_limit: settings.depth_limit as usize,
                max_runs_per_conversation_per_minute: i64::from(
                    settings.max_runs_per_conversation_per_minute,
                ),
                command_timeout: Duration::from_millis(settings.command_timeout_ms),
            },
            recent: Default::default(),
        });
        let api = Api {
            pool: ctx.pool.clone(),
            cache: cache.clone(),
            runner: runner.clone(),
        };
        let executor = ExecutorConfig {
            concurrency: settings.concurrency as usize,
            poll: Duration::from_millis(settings.poll_interval_ms),
        };
        let (pool, bus, days) = (
            ctx.pool.clone(),
            ctx.bus.clone(),
            settings.run_retention_days,
        );
        let follower = cache.clone();
        Parts::new()
            .grpc(AutomationServiceServer::with_interceptor(api, ctx.auth()))
            .events(
                "automation",
                crate::ops::events::KINDS,
                crate::consumers::Events::new(cache),
            )
            .task(move |stop| crate::executor::run(runner, executor, stop))
            .task(move |stop| follower.follow(bus, stop))
            .task(move |stop| crate::executor::retention(pool, days, stop))
    }
}
