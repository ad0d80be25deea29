//! `helpdesk-routing`: the routing service on its own.

use helpdesk_kit::config::ServiceConfig;
use helpdesk_kit::{shutdown, telemetry};
use helpdesk_routing::{Application, DEFAULT_PORT};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServiceConfig::load(DEFAULT_PORT)?;
    let telemetry = telemetry::init("routing");
    let stop = shutdown::on_signal();
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "routing service listening");
    let result = app.run(stop).await;
    tracing::info!("routing service stopped");
    telemetry.shutdown();
    Ok(result?)
}
