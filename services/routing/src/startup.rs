//! The routing service as the kit runs it: its parts, and the periodic queue sweep.

use std::time::Duration;

use helpdesk_kit::CancellationToken;
use helpdesk_kit::{Ctx, NoSettings, Parts};
use helpdesk_proto::routing::v1::RunRoutingActionRequest;
use helpdesk_proto::routing::v1::routing_service_server::RoutingServiceServer;
use sqlx::PgPool;

use crate::dispatcher::Dispatcher;
use crate::gates::Gates;
use crate::grpc::Api;
use crate::store::state;
use crate::timers::RoutingTimers;

/// How often every queue is re-examined (opening hours, missed triggers).
const SWEEP_INTERVAL: Duration = Duration::from_secs(2);

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations");

/// The routing service.
pub struct Routing;

impl helpdesk_kit::Service for Routing {
    const NAME: &'static str = "routing";
    const PORT: u16 = 50052;
    type Settings = NoSettings;

    fn migrator() -> &'static sqlx::migrate::Migrator {
        &MIGRATOR
    }

    fn parts(ctx: &Ctx, _: &NoSettings) -> Parts {
        let gates = Gates::default();
        let (dispatcher, dispatching) = Dispatcher::new(ctx.pool.clone(), gates.clone());
        let api = Api {
            pool: ctx.pool.clone(),
            shutdown: ctx.streams.clone(),
            live: ctx.live.clone(),
            stats: Default::default(),
            positions: Default::default(),
            dispatcher: dispatcher.clone(),
            gates,
        };
        let (pool, sampled) = (ctx.pool.clone(), ctx.pool.clone());
        Parts::new()
            .grpc(RoutingServiceServer::with_interceptor(
                api.clone(),
                ctx.auth(),
            ))
            .command::<RunRoutingActionRequest, _>(crate::commands::RunAction { api })
            .consumer(crate::consumers::consumer())
            .timers(RoutingTimers)
            .task(move |stop| sweep(pool, dispatcher, stop))
            .task(dispatching)
            .task(move |stop| crate::metrics::sample(sampled, stop))
    }
}

/// Re-examines every non-empty queue periodically (chats waiting for opening time,
/// anything a missed trigger left behind) through the background dispatch, so a
/// long queue is still served a bounded batch per transaction.
async fn sweep(pool: PgPool, dispatcher: Dispatcher, stop: CancellationToken) {
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            _ = tokio::time::sleep(SWEEP_INTERVAL) => {}
        }
        let accounts = match pool.acquire().await {
            Ok(mut conn) => state::accounts_with_queue(&mut conn)
                .await
                .unwrap_or_default(),
            Err(_) => continue,
        };
        for account in accounts {
            dispatcher.wake(&account);
        }
    }
}
