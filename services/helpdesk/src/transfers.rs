//! `helpdesk transfers stats`: transfer figures of a period as CSV, from a running
//! routing service.

use anyhow::Context;
use chrono::{DateTime, NaiveDate, Utc};
use helpdesk_kit::auth::{Claims, JwtKeys, Role};
use helpdesk_kit::time::to_timestamp;
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{GetTransferStatsRequest, TransferStatsBy, TransferStatsRow};

/// Options of `helpdesk transfers stats`.
#[derive(clap::Args)]
pub struct StatsArgs {
    /// Account (tenant) id.
    #[arg(long)]
    account: String,
    /// First day (YYYY-MM-DD, UTC), inclusive.
    #[arg(long)]
    from: NaiveDate,
    /// Last day (YYYY-MM-DD, UTC), inclusive; default today.
    #[arg(long)]
    to: Option<NaiveDate>,
    /// One row per receiving `agent` or per `team`.
    #[arg(long, default_value = "agent", value_parser = ["agent", "team"])]
    by: String,
    /// Routing service address.
    #[arg(long, default_value = "http://127.0.0.1:50052")]
    routing: String,
}

/// Midnight UTC starting `day`.
fn start_of(day: NaiveDate) -> DateTime<Utc> {
    day.and_hms_opt(0, 0, 0).unwrap_or_default().and_utc()
}

/// A CSV field, quoted when it needs to be.
fn field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The CSV: a header, then one line per row.
pub fn csv(by: &str, rows: &[TransferStatsRow]) -> String {
    let mut out = format!(
        "{by},offers,accepted,rejected,timed_out,cancelled,pending,success_rate,average_seconds_to_accept,reject_reasons\n"
    );
    for r in rows {
        let reasons: Vec<String> = r
            .reject_reasons
            .iter()
            .map(|c| format!("{} ({})", c.reason, c.count))
            .collect();
        out.push_str(&format!(
            "{},{},{},{},{},{},{},{:.3},{:.1},{}\n",
            field(&r.key),
            r.offers,
            r.accepted,
            r.rejected,
            r.timed_out,
            r.cancelled,
            r.pending,
            r.success_rate,
            r.average_seconds_to_accept,
            field(&reasons.join("; "))
        ));
    }
    out
}

/// Prints the figures as CSV on stdout.
pub async fn stats(data_dir: &std::path::Path, args: StatsArgs) -> anyhow::Result<()> {
    anyhow::ensure!(
        helpdesk_kit::bus::is_token(&args.account),
        "--account must be [A-Za-z0-9_-], at most 64"
    );
    let to = args.to.unwrap_or_else(|| Utc::now().date_naive());
    anyhow::ensure!(to >= args.from, "--to is before --from");
    let keys = JwtKeys::new(crate::secret::load(data_dir)?.as_bytes());
    let token = keys.mint(&Claims::new(
        &args.account,
        "transfers-stats",
        Role::Supervisor,
        chrono::Duration::minutes(5),
    ));
    let mut routing = RoutingServiceClient::connect(args.routing.clone())
        .await
        .with_context(|| format!("connecting to {} (is `helpdesk up` running?)", args.routing))?;
    let by = if args.by == "team" {
        TransferStatsBy::Team
    } else {
        TransferStatsBy::Agent
    };
    let mut req = tonic::Request::new(GetTransferStatsRequest {
        start_time: Some(to_timestamp(start_of(args.from))),
        end_time: Some(to_timestamp(start_of(to + chrono::Days::new(1)))),
        by: by as i32,
    });
    req.metadata_mut().insert(
        "authorization",
        format!("Bearer {token}").parse().context("token")?,
    );
    let rows = routing
        .get_transfer_stats(req)
        .await
        .context("GetTransferStats")?
        .into_inner()
        .rows;
    print!("{}", csv(&args.by, &rows));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_proto::routing::v1::ReasonCount;

    #[test]
    fn rows_become_csv_with_quoted_reasons() {
        let rows = vec![TransferStatsRow {
            key: "bob".into(),
            offers: 4,
            accepted: 2,
            rejected: 1,
            timed_out: 1,
            success_rate: 0.5,
            average_seconds_to_accept: 12.25,
            reject_reasons: vec![ReasonCount {
                reason: "busy, sorry".into(),
                count: 1,
            }],
            ..Default::default()
        }];
        assert_eq!(
            csv("agent", &rows),
            "agent,offers,accepted,rejected,timed_out,cancelled,pending,success_rate,average_seconds_to_accept,reject_reasons\n\
             bob,4,2,1,1,0,0,0.500,12.2,\"busy, sorry (1)\"\n"
        );
    }
}
