//! Statuses: the six built-in ones, the account's own, and which moves are allowed.

use helpdesk_proto::ticketing::v1::{Status, StatusCategory};

/// A status as the service works with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StatusDef {
    pub key: String,
    pub category: StatusCategory,
    pub label: String,
    pub external_label: String,
    pub built_in: bool,
}

impl StatusDef {
    /// As the API shows it.
    pub fn to_proto(&self) -> Status {
        Status {
            key: self.key.clone(),
            category: self.category as i32,
            label: self.label.clone(),
            external_label: self.external_label.clone(),
            built_in: self.built_in,
        }
    }
}

/// The statuses every account has.
pub fn built_in() -> Vec<StatusDef> {
    [
        ("new", StatusCategory::New, "New", "Received"),
        ("open", StatusCategory::Open, "Open", "In progress"),
        (
            "pending",
            StatusCategory::Pending,
            "Pending",
            "Awaiting your reply",
        ),
        ("on_hold", StatusCategory::OnHold, "On hold", "In progress"),
        ("solved", StatusCategory::Solved, "Solved", "Solved"),
        ("closed", StatusCategory::Closed, "Closed", "Closed"),
    ]
    .into_iter()
    .map(|(key, category, label, external)| StatusDef {
        key: key.into(),
        category,
        label: label.into(),
        external_label: external.into(),
        built_in: true,
    })
    .collect()
}

/// Why a ticket may not move from `from` to `to`; `None` when it may. A closed
/// ticket is final; only a solved ticket closes; nothing goes back to new.
pub fn refuses_move(from: StatusCategory, to: StatusCategory) -> Option<&'static str> {
    match (from, to) {
        (StatusCategory::Closed, _) => Some("a closed ticket cannot change status"),
        (f, StatusCategory::Closed) if f != StatusCategory::Solved => {
            Some("only a solved ticket can be closed")
        }
        (f, StatusCategory::New) if f != StatusCategory::New => {
            Some("a ticket cannot go back to new")
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn closed_is_final_and_solved_reopens() {
        use StatusCategory::*;
        assert!(refuses_move(Closed, Open).is_some());
        assert!(refuses_move(Open, Closed).is_some());
        assert!(refuses_move(Solved, Closed).is_none());
        assert!(refuses_move(Solved, Open).is_none());
        assert!(refuses_move(Pending, New).is_some());
        assert!(refuses_move(New, OnHold).is_none());
    }
}
