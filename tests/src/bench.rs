//! What the routing and stream benchmarks share: the benchmark's agents, and the
//! running `helpdesk up` process whose memory and CPU they read.

use std::time::{Duration, Instant};

use anyhow::Context;
use futures::{StreamExt, TryStreamExt};
use helpdesk_kit::auth::Role;
use helpdesk_proto::routing::v1::routing_service_client::RoutingServiceClient;
use helpdesk_proto::routing::v1::{Agent, CreateAgentRequest, Presence, SetPresenceRequest};
use tonic::transport::Channel;

use crate::load::Tokens;
use crate::platform::authed;

/// The id of the benchmark's `i`-th agent.
pub fn agent_id(i: usize) -> String {
    format!("agent-{i:04}")
}

/// Creates agents `0..n` with `capacity` seats each (offline), 16 at a time.
pub async fn create_agents(
    routing: &RoutingServiceClient<Channel>,
    tokens: &Tokens,
    n: usize,
    capacity: i32,
) -> anyhow::Result<()> {
    let admin = tokens.mint("bench-admin", Role::Admin);
    futures::stream::iter(0..n)
        .map(|i| {
            let (mut routing, admin) = (routing.clone(), admin.clone());
            async move {
                let id = agent_id(i);
                let agent = Agent {
                    id: id.clone(),
                    name: format!("Agent {id}"),
                    max_chats: capacity,
                    ..Default::default()
                };
                routing
                    .create_agent(authed(CreateAgentRequest { agent: Some(agent) }, &admin))
                    .await
                    .map(|_| ())
            }
        })
        .buffer_unordered(16)
        .try_collect::<Vec<()>>()
        .await
        .context("creating the agents")?;
    Ok(())
}

/// Agent `id` sets its own presence.
pub async fn set_presence(
    mut routing: RoutingServiceClient<Channel>,
    tokens: &Tokens,
    id: &str,
    presence: Presence,
) -> Result<(), tonic::Status> {
    routing
        .set_presence(authed(
            SetPresenceRequest {
                agent_id: String::new(),
                presence: presence as i32,
            },
            &tokens.mint(id, Role::Agent),
        ))
        .await?;
    Ok(())
}

/// The running `helpdesk up`: the one process whose command line has a `helpdesk`
/// program and the word `up`.
pub fn find_helpdesk_up() -> Option<u32> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").ok()?.flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        let args: Vec<String> = cmdline
            .split(|b| *b == 0)
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect();
        let program = args.first().map(|p| p.rsplit('/').next().unwrap_or(p));
        if program == Some("helpdesk") && args.iter().any(|a| a == "up") {
            found.push(pid);
        }
    }
    (found.len() == 1).then(|| found[0])
}

/// Resident memory of `pid`, in bytes.
pub fn resident(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())?;
    Some(kib * 1024)
}

/// CPU time `pid` has used, all threads, in milliseconds.
pub fn cpu_ms(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let fields: Vec<&str> = stat.rsplit_once(") ")?.1.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks * 10)
}

/// Seconds until `pid` used under 5 % of a core over a second (`None`: not within
/// `limit`, or the process is gone).
pub async fn until_idle(pid: u32, limit: Duration) -> Option<f64> {
    let started = Instant::now();
    let mut last = cpu_ms(pid)?;
    while started.elapsed() < limit {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = cpu_ms(pid)?;
        if now - last < 50 {
            return Some((started.elapsed().as_secs_f64() - 1.0).max(0.0));
        }
        last = now;
    }
    None
}
