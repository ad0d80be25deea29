//! Where a webhook may go, checked on the addresses its host resolves to.

use std::net::IpAddr;

use crate::domain::targets::{TargetPolicy, Url};

/// Why a resolved target may not be called.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The host does not resolve (now).
    Unresolved(String),
    /// It resolves to an address the policy refuses.
    Address(String),
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Unresolved(why) | Self::Address(why) => f.write_str(why),
        }
    }
}

/// Resolves `url`'s host (an address literal as is) and checks every address.
pub async fn check(url: &Url, policy: TargetPolicy) -> Result<(), Refused> {
    let host = url.host_str().unwrap_or_default().to_string();
    let addrs: Vec<IpAddr> = match url.host() {
        Some(url::Host::Ipv4(ip)) => vec![ip.into()],
        Some(url::Host::Ipv6(ip)) => vec![ip.into()],
        _ => {
            let port = url.port_or_known_default().unwrap_or(443);
            tokio::net::lookup_host((host.as_str(), port))
                .await
                .map_err(|e| Refused::Unresolved(format!("{host} does not resolve: {e}")))?
                .map(|a| a.ip())
                .collect()
        }
    };
    policy.check_all(&host, &addrs).map_err(Refused::Address)
}
