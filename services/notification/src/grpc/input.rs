//! Checks of what callers send: every bad field named, nothing stored.

use helpdesk_kit::grpc::Violations;
use helpdesk_proto::notification::v1::Endpoint;

use crate::domain::targets::{self, TargetPolicy};
use crate::domain::{
    MAX_DESCRIPTION_CHARS, MAX_EVENT_TYPES, MAX_RATE_LIMIT, MAX_URL_CHARS, patterns, signature,
};
use crate::ops::endpoints::EndpointInput;

/// Fields an update may name.
pub const UPDATE_PATHS: &[&str] = &[
    "url",
    "event_types",
    "description",
    "enabled",
    "rate_limit_per_second",
];

/// Checks the fields of `e` that `paths` names (all of them for a create) and returns
/// them ready to store.
pub fn endpoint(
    v: &mut Violations,
    e: &Endpoint,
    paths: &[&str],
    policy: TargetPolicy,
    creating: bool,
) -> EndpointInput {
    let has = |p: &str| paths.contains(&p);
    if has("url") {
        url(v, "endpoint.url", &e.url, policy);
    }
    if has("event_types") {
        if e.event_types.is_empty() {
            v.add("endpoint.event_types", "at least one (`*` for every event)");
        }
        if e.event_types.len() > MAX_EVENT_TYPES {
            v.add("endpoint.event_types", format!("at most {MAX_EVENT_TYPES}"));
        }
        for (i, t) in e.event_types.iter().enumerate() {
            if let Err(why) = patterns::check(t) {
                v.add(format!("endpoint.event_types[{i}]"), why);
            }
        }
    }
    if has("description") {
        helpdesk_kit::validate::text(
            v,
            "endpoint.description",
            &e.description,
            false,
            MAX_DESCRIPTION_CHARS,
        );
    }
    if has("rate_limit_per_second") && e.rate_limit_per_second > MAX_RATE_LIMIT {
        v.add(
            "endpoint.rate_limit_per_second",
            format!("0 (no limit) to {MAX_RATE_LIMIT}"),
        );
    }
    if creating && !e.secret.is_empty() && signature::key(&e.secret).is_none() {
        v.add(
            "endpoint.secret",
            "whsec_ followed by the base64 of 24 to 64 bytes (or empty to have one made)",
        );
    }
    let mut types: Vec<String> = e.event_types.iter().map(|t| t.trim().to_string()).collect();
    types.sort();
    types.dedup();
    EndpointInput {
        url: e.url.trim().to_string(),
        event_types: types,
        description: e.description.trim().to_string(),
        enabled: e.enabled,
        rate_limit_per_second: (e.rate_limit_per_second > 0)
            .then(|| i32::try_from(e.rate_limit_per_second).unwrap_or(i32::MAX)),
        secret: (!e.secret.is_empty()).then(|| e.secret.clone()),
    }
}

/// A URL an endpoint may have: http(s), a host, no credentials, not an address the
/// policy refuses when given as one (host names are resolved by [`resolved_url`]).
fn url(v: &mut Violations, field: &str, value: &str, policy: TargetPolicy) {
    let value = value.trim();
    if value.is_empty() {
        v.add(field, "required");
        return;
    }
    if value.chars().count() > MAX_URL_CHARS {
        v.add(field, format!("at most {MAX_URL_CHARS} characters"));
        return;
    }
    match targets::parse(value) {
        Err(why) => v.add(field, why),
        Ok(url) => {
            let literal = match url.host() {
                Some(url::Host::Ipv4(ip)) => Some(std::net::IpAddr::from(ip)),
                Some(url::Host::Ipv6(ip)) => Some(std::net::IpAddr::from(ip)),
                _ => None,
            };
            if let Some(kind) = literal.and_then(|ip| policy.refuses(ip)) {
                v.add(
                    field,
                    format!("a {kind} address; webhooks go to public addresses only"),
                );
            }
        }
    }
}

/// Resolves an endpoint URL's host when saved: one that points at an address the
/// policy refuses is refused now (and on every attempt anyway). A host that does not
/// resolve yet is accepted: its attempts fail until it does.
pub async fn resolved_url(v: &mut Violations, field: &str, value: &str, policy: TargetPolicy) {
    let Ok(url) = targets::parse(value.trim()) else {
        return;
    };
    let checked = tokio::time::timeout(
        std::time::Duration::from_secs(2),
        crate::ops::targets::check(&url, policy),
    )
    .await;
    if let Ok(Err(crate::ops::targets::Refused::Address(why))) = checked {
        v.add(field, why);
    }
}
