//! Automation rules written briefly, for scenarios and benchmarks.

use helpdesk_proto::automation::v1::{
    Action, Condition, LabelsAction, Operator, Predicate, action, condition,
};

/// `attribute operator values`.
pub fn pred(attribute: &str, operator: Operator, values: &[&str]) -> Condition {
    Condition {
        kind: Some(condition::Kind::Predicate(Predicate {
            attribute: attribute.into(),
            operator: operator as i32,
            values: values.iter().map(|v| v.to_string()).collect(),
            ..Default::default()
        })),
    }
}

/// Adds (or removes) labels.
pub fn labels(add: bool, names: &[&str]) -> Action {
    let l = LabelsAction {
        labels: names.iter().map(|n| n.to_string()).collect(),
    };
    Action {
        kind: Some(if add {
            action::Kind::AddLabels(l)
        } else {
            action::Kind::RemoveLabels(l)
        }),
    }
}
