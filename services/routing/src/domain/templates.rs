//! Note templates for transfers: the fields a sender fills in for the receiver.

/// A note template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub id: String,
    pub name: String,
    pub fields: Vec<String>,
    pub built_in: bool,
}

/// The fields of the built-in templates.
pub const STANDARD_FIELDS: [&str; 4] = [
    "customer_problem",
    "what_was_tried",
    "customer_situation",
    "urgency",
];

/// Longest value of one field.
pub const MAX_FIELD_CHARS: usize = 500;
/// Most fields a template may have.
pub const MAX_FIELDS: usize = 10;

/// The templates every account has.
pub fn built_in() -> Vec<Template> {
    [
        ("technical", "Technical issue"),
        ("complaint", "Complaint"),
        ("vip", "VIP customer"),
        ("after_sales", "After-sales"),
    ]
    .into_iter()
    .map(|(id, name)| Template {
        id: id.into(),
        name: name.into(),
        fields: STANDARD_FIELDS.iter().map(|f| f.to_string()).collect(),
        built_in: true,
    })
    .collect()
}

pub use super::is_name;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_name("after_sales") && is_name("refund-2"));
        assert!(!is_name("") && !is_name("Refund") && !is_name("a b") && !is_name(&"a".repeat(65)));
        assert_eq!(built_in().len(), 4);
    }
}
