//! The JSON a receiver gets: `{"type", "timestamp", "data"}`, `data` being the event
//! in protobuf's canonical JSON mapping ([`helpdesk_proto::json`]).

use chrono::{DateTime, SecondsFormat, Utc};
pub use helpdesk_proto::json::event_json;
use serde_json::{Map, Value};

/// When an event happened, from its JSON (`meta.occurredAt`).
pub fn occurred_at(data: &Value) -> Option<DateTime<Utc>> {
    let at = data.get("meta")?.get("occurredAt")?.as_str()?;
    DateTime::parse_from_rfc3339(at)
        .ok()
        .map(|t| t.with_timezone(&Utc))
}

/// The body sent for an event of `kind` that happened `at`.
pub fn body(kind: &str, at: DateTime<Utc>, data: Value) -> String {
    let mut top = Map::new();
    top.insert("type".into(), Value::String(kind.into()));
    top.insert(
        "timestamp".into(),
        Value::String(at.to_rfc3339_opts(SecondsFormat::Millis, true)),
    );
    top.insert("data".into(), data);
    Value::Object(top).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_proto::common::v1::EventMeta;
    use helpdesk_proto::ticketing::v1::{Ticket, TicketCreated, TicketPriority};
    use prost::Message;

    #[test]
    fn events_render_in_the_canonical_json_mapping() {
        let event = TicketCreated {
            meta: Some(EventMeta {
                event_id: "e1".into(),
                account_id: "acme".into(),
                occurred_at: Some(prost_types::Timestamp {
                    seconds: 1_700_000_000,
                    nanos: 0,
                }),
                ..Default::default()
            }),
            ticket: Some(Ticket {
                id: "t1".into(),
                number: 42,
                priority: TicketPriority::High as i32,
                ..Default::default()
            }),
        };
        let json = event_json(
            "helpdesk.ticketing.v1.TicketCreated",
            &event.encode_to_vec(),
        )
        .expect("renders");
        assert_eq!(json["ticket"]["number"], "42", "int64 as a string");
        assert_eq!(json["ticket"]["priority"], "TICKET_PRIORITY_HIGH");
        assert_eq!(json["meta"]["accountId"], "acme");
        assert_eq!(json["meta"]["occurredAt"], "2023-11-14T22:13:20Z");
        assert!(json["ticket"].get("subject").is_none(), "defaults left out");
        let at = occurred_at(&json).expect("a time");
        let body: Value = serde_json::from_str(&body("ticket.created", at, json)).expect("JSON");
        assert_eq!(body["type"], "ticket.created");
        assert_eq!(body["timestamp"], "2023-11-14T22:13:20.000Z");
        assert!(event_json("helpdesk.Nope", b"").is_err());
    }
}
