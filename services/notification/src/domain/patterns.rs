//! Which events an endpoint receives: exact kinds (`ticket.created`), every kind of an
//! aggregate (`ticket.*`), or everything (`*`).

/// Checks one pattern against the platform's event kinds; the reason when it names
/// nothing that exists.
pub fn check(pattern: &str) -> Result<(), String> {
    let kinds: Vec<&'static str> = helpdesk_proto::catalog().iter().map(|e| e.kind).collect();
    if pattern == "*" {
        return Ok(());
    }
    if let Some(aggregate) = pattern.strip_suffix(".*") {
        return if kinds
            .iter()
            .any(|k| k.split_once('.').is_some_and(|(a, _)| a == aggregate))
        {
            Ok(())
        } else {
            Err(format!("no event kind starts with {aggregate}."))
        };
    }
    if kinds.contains(&pattern) {
        Ok(())
    } else {
        Err(format!(
            "unknown event kind {pattern:?} (see docs/events.md; `*` and `<aggregate>.*` match several)"
        ))
    }
}

/// Whether an endpoint with `patterns` receives events of `kind`.
pub fn matches(patterns: &[String], kind: &str) -> bool {
    patterns.iter().any(|p| {
        p == "*"
            || p == kind
            || p.strip_suffix(".*")
                .is_some_and(|aggregate| kind.split_once('.').is_some_and(|(a, _)| a == aggregate))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wildcards_match_an_aggregate_or_everything() {
        let p = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(matches(&p(&["ticket.*"]), "ticket.created"));
        assert!(!matches(&p(&["ticket.*"]), "tickets.created"));
        assert!(!matches(&p(&["ticket.*"]), "message.created"));
        assert!(matches(&p(&["*"]), "message.created"));
        assert!(matches(&p(&["message.created"]), "message.created"));
        assert!(!matches(&p(&[]), "message.created"));
    }

    #[test]
    fn patterns_must_name_real_events() {
        assert!(check("ticket.*").is_ok());
        assert!(check("*").is_ok());
        assert!(check("message.created").is_ok());
        assert!(check("tickets.*").is_err());
        assert!(check("ticket.exploded").is_err());
        assert!(check("ticket.**").is_err());
    }
}
