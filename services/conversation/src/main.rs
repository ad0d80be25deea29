//! `helpdesk-conversation`: the conversation service on its own.

use helpdesk_conversation::{Application, DEFAULT_PORT};
use helpdesk_kit::config::ServiceConfig;
use helpdesk_kit::{shutdown, telemetry};

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let config = ServiceConfig::load(DEFAULT_PORT)?;
    let telemetry = telemetry::init("conversation");
    let stop = shutdown::on_signal();
    let app = Application::build(config).await?;
    tracing::info!(port = app.port(), "conversation service listening");
    let result = app.run(stop).await;
    tracing::info!("conversation service stopped");
    telemetry.shutdown();
    Ok(result?)
}
