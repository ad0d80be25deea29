//! Which addresses a webhook may be sent to. Endpoints are typed in by tenants, so a
//! URL pointing inside the platform's network (loopback, private ranges, link-local,
//! cloud metadata) would let a tenant probe it: such addresses are refused, checked
//! on the addresses a host name resolves to, on every attempt.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

pub use reqwest::Url;

/// Which non-public addresses are allowed anyway (a single-machine install, tests).
#[derive(Debug, Clone, Copy, Default)]
pub struct TargetPolicy {
    /// 127.0.0.0/8 and ::1.
    pub allow_loopback: bool,
    /// RFC 1918, CGNAT, unique-local and link-local ranges (never metadata addresses).
    pub allow_private: bool,
}

/// Parses an endpoint URL: http or https, a host, no credentials.
pub fn parse(url: &str) -> Result<Url, String> {
    let parsed = Url::parse(url).map_err(|e| format!("not a URL: {e}"))?;
    if !matches!(parsed.scheme(), "http" | "https") {
        return Err("must be http or https".into());
    }
    if parsed.host_str().is_none_or(str::is_empty) {
        return Err("must name a host".into());
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    Ok(parsed)
}

/// What kind of non-public address `ip` is, or `None` for a public one.
pub fn classify(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return classify_v4(v4);
            }
            let s = v6.segments();
            if v6.is_loopback() {
                Some("loopback")
            } else if v6.is_unspecified() {
                Some("unspecified")
            } else if s[0] == 0xfd00 && s[1] == 0x0ec2 && v6 == ec2_metadata() {
                Some("metadata")
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some("private")
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some("link-local")
            } else if s[0] & 0xff00 == 0xff00 {
                Some("multicast")
            } else if s[0] == 0x0064 && s[1] == 0xff9b {
                // NAT64: the IPv4 address it embeds decides.
                let [a, b] = s[6].to_be_bytes();
                let [c, d] = s[7].to_be_bytes();
                classify_v4(Ipv4Addr::new(a, b, c, d))
            } else if s[0] == 0x2001 && s[1] == 0x0db8 {
                Some("reserved")
            } else if s[0] == 0 && s[1] == 0 && s[2] == 0 && s[3] == 0 && s[4] == 0 && s[5] == 0 {
                // IPv4-compatible (deprecated) addresses.
                Some("reserved")
            } else {
                None
            }
        }
    }
}

fn ec2_metadata() -> Ipv6Addr {
    Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254)
}

fn classify_v4(ip: Ipv4Addr) -> Option<&'static str> {
    let [a, b, c, _] = ip.octets();
    if ip.is_loopback() {
        Some("loopback")
    } else if ip == Ipv4Addr::new(169, 254, 169, 254) || ip == Ipv4Addr::new(100, 100, 100, 200) {
        Some("metadata")
    } else if ip.is_link_local() {
        Some("link-local")
    } else if ip.is_private() || (a == 100 && (64..128).contains(&b)) {
        Some("private")
    } else if a == 0 {
        Some("unspecified")
    } else if ip.is_multicast() {
        Some("multicast")
    } else if a >= 240
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        Some("reserved")
    } else {
        None
    }
}

impl TargetPolicy {
    /// Why `ip` may not be called, or `None` when it may.
    pub fn refuses(&self, ip: IpAddr) -> Option<&'static str> {
        match classify(ip)? {
            "loopback" if self.allow_loopback => None,
            "private" | "link-local" if self.allow_private => None,
            kind => Some(kind),
        }
    }

    /// Checks every address of a resolved host: one refused address refuses the host
    /// (a name must not point both outside and inside).
    pub fn check_all(&self, host: &str, addrs: &[IpAddr]) -> Result<(), String> {
        if addrs.is_empty() {
            return Err(format!("{host} resolves to no address"));
        }
        for ip in addrs {
            if let Some(kind) = self.refuses(*ip) {
                return Err(format!(
                    "{host} resolves to {ip}, a {kind} address; webhooks go to public addresses only"
                ));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("an address")
    }

    #[test]
    fn inside_addresses_are_named() {
        for (a, kind) in [
            ("127.0.0.1", "loopback"),
            ("::1", "loopback"),
            ("10.1.2.3", "private"),
            ("172.16.0.1", "private"),
            ("192.168.1.1", "private"),
            ("100.64.0.1", "private"),
            ("169.254.169.254", "metadata"),
            ("169.254.1.1", "link-local"),
            ("fd00:ec2::254", "metadata"),
            ("fc00::1", "private"),
            ("fe80::1", "link-local"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:10.0.0.1", "private"),
            ("64:ff9b::a9fe:a9fe", "metadata"),
            ("0.0.0.0", "unspecified"),
            ("::", "unspecified"),
            ("224.0.0.1", "multicast"),
            ("255.255.255.255", "reserved"),
        ] {
            assert_eq!(classify(ip(a)), Some(kind), "{a}");
        }
        for a in [
            "93.184.216.34",
            "2606:2800:220:1:248:1893:25c8:1946",
            "8.8.8.8",
        ] {
            assert_eq!(classify(ip(a)), None, "{a}");
        }
    }

    #[test]
    fn the_policy_opens_loopback_or_private_but_never_metadata() {
        let open = TargetPolicy {
            allow_loopback: true,
            allow_private: true,
        };
        assert_eq!(open.refuses(ip("127.0.0.1")), None);
        assert_eq!(open.refuses(ip("10.0.0.1")), None);
        assert_eq!(open.refuses(ip("169.254.169.254")), Some("metadata"));
        let closed = TargetPolicy::default();
        assert!(
            closed
                .check_all("x", &[ip("8.8.8.8"), ip("10.0.0.1")])
                .is_err()
        );
        assert!(closed.check_all("x", &[ip("8.8.8.8")]).is_ok());
    }

    #[test]
    fn urls_are_http_with_a_host_and_no_credentials() {
        assert!(parse("https://example.com/hook").is_ok());
        assert!(parse("ftp://example.com").is_err());
        assert!(parse("https://user:pw@example.com").is_err());
        assert!(parse("not a url").is_err());
        assert!(parse("file:///etc/passwd").is_err());
    }
}
