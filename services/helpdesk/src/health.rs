//! `helpdesk health`: a grpc.health.v1 probe for containers.

use tonic_health::pb::HealthCheckRequest;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_client::HealthClient;

/// The status `service` (empty: the whole server) at `addr` reports.
pub async fn check(addr: &str, service: &str) -> anyhow::Result<ServingStatus> {
    let channel = tonic::transport::Endpoint::from_shared(addr.to_string())?
        .connect()
        .await?;
    let mut client = HealthClient::new(channel);
    Ok(client
        .check(HealthCheckRequest {
            service: service.to_string(),
        })
        .await?
        .into_inner()
        .status())
}

/// Exits with an error unless the service reports SERVING.
pub async fn run(addr: &str, service: &str) -> anyhow::Result<()> {
    let status = check(addr, service).await?;
    println!("{}", status.as_str_name());
    anyhow::ensure!(status == ServingStatus::Serving, "not serving");
    Ok(())
}
