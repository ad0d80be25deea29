//! Custom ticket fields: their definitions, and values checked against them.

use std::collections::HashMap;

use chrono::NaiveDate;
use helpdesk_kit::grpc::Violations;
use helpdesk_proto::ticketing::v1::{FieldDefinition, FieldType};

/// Most definitions per account; most options of one; longest value.
pub const MAX_DEFINITIONS: usize = 100;
pub const MAX_OPTIONS: usize = 50;
pub const MAX_VALUE_CHARS: usize = 1_000;

/// Checks a new definition (`field` prefixes the names, e.g. `field`).
pub fn check_definition(v: &mut Violations, d: &FieldDefinition) -> FieldType {
    v.check(
        !helpdesk_kit::validate::is_name(&d.key),
        "field.key",
        "1-64 characters of [a-z0-9_-]",
    );
    helpdesk_kit::validate::text(v, "field.label", &d.label, true, 100);
    let kind: FieldType = helpdesk_kit::validate::enumeration(v, "field.type", d.r#type);
    v.check(d.r#type == 0, "field.type", "text, number, date or option");
    if kind == FieldType::Option {
        v.check(
            d.options.is_empty() || d.options.len() > MAX_OPTIONS,
            "field.options",
            &format!("1-{MAX_OPTIONS} options"),
        );
        for (i, o) in d.options.iter().enumerate() {
            let bad = o.trim().is_empty() || o.chars().count() > 100;
            v.check(bad, &format!("field.options[{i}]"), "1-100 characters");
        }
    } else {
        v.check(
            !d.options.is_empty(),
            "field.options",
            "only for option fields",
        );
    }
    kind
}

/// Checks `values` against the account's `definitions`: every key defined, every
/// value of its type. Violations name `custom_fields.<key>` under `prefix`.
pub fn check_values(
    v: &mut Violations,
    prefix: &str,
    definitions: &[FieldDefinition],
    values: &HashMap<String, String>,
) {
    let mut keys: Vec<&String> = values.keys().collect();
    keys.sort();
    for key in keys {
        let value = &values[key];
        let field = format!("{prefix}custom_fields.{key}");
        let Some(d) = definitions.iter().find(|d| &d.key == key) else {
            v.add(field, "not a field of this account");
            continue;
        };
        if value.chars().count() > MAX_VALUE_CHARS {
            v.add(field, format!("at most {MAX_VALUE_CHARS} characters"));
            continue;
        }
        let ok = match FieldType::try_from(d.r#type).unwrap_or_default() {
            FieldType::Number => value.trim().parse::<f64>().is_ok_and(f64::is_finite),
            FieldType::Date => NaiveDate::parse_from_str(value, "%Y-%m-%d").is_ok(),
            FieldType::Option => d.options.iter().any(|o| o == value),
            FieldType::Text | FieldType::Unspecified => true,
        };
        if !ok {
            let expected = match FieldType::try_from(d.r#type).unwrap_or_default() {
                FieldType::Number => "a number".to_string(),
                FieldType::Date => "a date, YYYY-MM-DD".to_string(),
                _ => format!("one of: {}", d.options.join(", ")),
            };
            v.add(field, expected);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_checked_against_their_definitions() {
        let defs = vec![
            FieldDefinition {
                key: "order".into(),
                label: "Order".into(),
                r#type: FieldType::Number as i32,
                options: vec![],
            },
            FieldDefinition {
                key: "level".into(),
                label: "Level".into(),
                r#type: FieldType::Option as i32,
                options: vec!["gold".into(), "silver".into()],
            },
            FieldDefinition {
                key: "since".into(),
                label: "Since".into(),
                r#type: FieldType::Date as i32,
                options: vec![],
            },
        ];
        let values: HashMap<String, String> = [
            ("order", "1042"),
            ("level", "bronze"),
            ("since", "2026-02-30"),
            ("nope", "x"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        let mut v = Violations::new();
        check_values(&mut v, "ticket.", &defs, &values);
        let e = v.into_result().expect_err("bad values");
        assert_eq!(
            helpdesk_kit::grpc::violated_fields(&e),
            vec![
                "ticket.custom_fields.level",
                "ticket.custom_fields.nope",
                "ticket.custom_fields.since"
            ]
        );
    }
}
