//! A rule checked and compiled for evaluation: its event, its condition tree (with
//! regular expressions built once) and its actions; and the evaluation itself.

use helpdesk_kit::grpc::Violations;
use helpdesk_proto::automation::v1::{
    Action, ConditionGroup, ConditionResult, Episode, Operator, Predicate, Rule, action, condition,
};
use regex::{Regex, RegexBuilder};

use super::facts::{Attr, Facts, Value};

/// The events a rule may name, in the order they are documented.
pub const EVENTS: &[&str] = &[
    "conversation.created",
    "conversation.updated",
    "conversation.status_changed",
    "conversation.opened",
    "conversation.resolved",
    "message.created",
    "message.incoming",
    "message.outgoing",
    "ticket.created",
    "ticket.updated",
    "ticket.status_changed",
    "ticket.comment_added",
    "routing.queued",
    "routing.overflowed",
    "transfer.accepted",
    "transfer.rejected",
    "transfer.timed_out",
    "transfer.cancelled",
    "sla.warning",
    "sla.breached",
    "csat.submitted",
];

/// Most conditions in one rule.
pub const MAX_CONDITIONS: usize = 50;
/// Deepest nesting of condition groups.
pub const MAX_DEPTH: usize = 5;
/// Most actions of one rule.
pub const MAX_ACTIONS: usize = 20;
/// Most values one condition compares with.
const MAX_VALUES: usize = 50;
/// Longest value (and regular expression), in characters.
const MAX_VALUE_CHARS: usize = 500;
/// Compiled size a rule's regular expression may take.
const REGEX_SIZE_LIMIT: usize = 256 * 1024;
/// Shortest and longest delay.
pub const MIN_DELAY_SECONDS: i64 = 1;
pub const MAX_DELAY_SECONDS: i64 = 30 * 24 * 3600;

/// A rule ready to evaluate.
#[derive(Debug, Clone)]
pub struct Compiled {
    /// The rule as stored.
    pub rule: Rule,
    root: Group,
    /// Set for a delayed rule: after how long, and what ends the wait.
    pub delay: Option<(i64, Episode)>,
    /// What of the projections it reads beyond the event.
    pub needs: Needs,
}

/// What a rule reads beyond the event itself.
#[derive(Debug, Clone, Copy, Default)]
pub struct Needs {
    /// The conversation's contact (conditions, placeholders, email to "contact").
    pub contact: bool,
    /// The conversation's inbox (conditions).
    pub inbox: bool,
    /// Whether the conversation's business hours are open now (conditions).
    pub hours: bool,
    /// The conversation as last seen and its episodes (delayed rules, the agent who
    /// last wrote).
    pub state: bool,
}

impl Needs {
    /// What any of `rules` needs.
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a Compiled>) -> Self {
        rules.into_iter().fold(Needs::default(), |n, r| Needs {
            contact: n.contact || r.needs.contact,
            inbox: n.inbox || r.needs.inbox,
            hours: n.hours || r.needs.hours,
            state: n.state || r.needs.state,
        })
    }
}

impl Group {
    fn attrs<'a>(&'a self, out: &mut Vec<&'a Attr>) {
        for item in &self.items {
            match item {
                Node::Test(t) => out.push(&t.attr),
                Node::Group(g) => g.attrs(out),
            }
        }
    }
}

fn needs(rule: &Rule, root: &Group, delayed: bool) -> Needs {
    let mut attrs = Vec::new();
    root.attrs(&mut attrs);
    let texts = rule.actions.iter().filter_map(|a| match &a.kind {
        Some(action::Kind::SendMessage(m) | action::Kind::AddNote(m)) => Some(m.content.as_str()),
        Some(action::Kind::SendEmail(e)) => Some(e.text.as_str()),
        _ => None,
    });
    let placeholders = texts
        .chain(rule.actions.iter().filter_map(|a| match &a.kind {
            Some(action::Kind::SendEmail(e)) => Some(e.subject.as_str()),
            Some(action::Kind::CreateTicket(t)) => Some(t.subject.as_str()),
            _ => None,
        }))
        .any(|t| t.contains("{{contact."));
    let email_contact = rule.actions.iter().any(|a| {
        matches!(&a.kind, Some(action::Kind::SendEmail(e)) if e.to.iter().any(|t| t == "contact"))
    });
    let last_agent = rule
        .actions
        .iter()
        .any(|a| matches!(&a.kind, Some(action::Kind::AssignAgent(x)) if x == "last_responding"));
    // A macro's actions are read when the rule runs: they may need anything.
    let macro_action = rule
        .actions
        .iter()
        .any(|a| matches!(&a.kind, Some(action::Kind::ApplyMacro(_))));
    Needs {
        contact: placeholders
            || email_contact
            || macro_action
            || attrs.iter().any(|a| {
                matches!(
                    a,
                    Attr::ContactName
                        | Attr::ContactEmail
                        | Attr::ContactCountry
                        | Attr::ContactVipLevel
                        | Attr::ContactLanguage
                        | Attr::ContactVerified
                        | Attr::ContactCustom(_)
                )
            }),
        inbox: attrs
            .iter()
            .any(|a| matches!(a, Attr::InboxName | Attr::InboxChannel)),
        hours: attrs
            .iter()
            .any(|a| matches!(a, Attr::ConversationWithinHours)),
        state: delayed || last_agent || macro_action,
    }
}

#[derive(Debug, Clone)]
struct Group {
    any: bool,
    items: Vec<Node>,
}

#[derive(Debug, Clone)]
enum Node {
    Test(Box<Test>),
    Group(Group),
}

#[derive(Debug, Clone)]
struct Test {
    source: Predicate,
    attr: Attr,
    op: Operator,
    /// Values in lower case.
    values: Vec<String>,
    regex: Option<Regex>,
    number: f64,
}

impl Compiled {
    /// Whether the conditions hold for `facts`.
    pub fn matches(&self, facts: &Facts) -> bool {
        self.root.eval(facts)
    }

    /// Whether the conditions hold, with every condition's own result.
    pub fn explain(&self, facts: &Facts) -> (bool, Vec<ConditionResult>) {
        let mut out = Vec::new();
        let matched = self.root.explain(facts, "", &mut out);
        (matched, out)
    }
}

impl Group {
    fn eval(&self, facts: &Facts) -> bool {
        if self.any {
            self.items.is_empty() || self.items.iter().any(|n| n.eval(facts))
        } else {
            self.items.iter().all(|n| n.eval(facts))
        }
    }

    fn explain(&self, facts: &Facts, prefix: &str, out: &mut Vec<ConditionResult>) -> bool {
        let mut results = Vec::with_capacity(self.items.len());
        for (i, item) in self.items.iter().enumerate() {
            let path = if prefix.is_empty() {
                i.to_string()
            } else {
                format!("{prefix}.{i}")
            };
            results.push(match item {
                Node::Test(t) => {
                    let matched = t.eval(facts);
                    out.push(ConditionResult {
                        path,
                        attribute: t.source.attribute.clone(),
                        operator: t.op as i32,
                        values: t.source.values.clone(),
                        actual: t.attr.value(facts, false).render(),
                        matched,
                    });
                    matched
                }
                Node::Group(g) => g.explain(facts, &path, out),
            });
        }
        if self.any {
            results.is_empty() || results.iter().any(|r| *r)
        } else {
            results.iter().all(|r| *r)
        }
    }
}

impl Node {
    fn eval(&self, facts: &Facts) -> bool {
        match self {
            Node::Test(t) => t.eval(facts),
            Node::Group(g) => g.eval(facts),
        }
    }
}

/// Text compared without regard to case.
fn lower(s: &str) -> String {
    s.to_lowercase()
}

impl Test {
    fn eval(&self, facts: &Facts) -> bool {
        let value = self.attr.comparable(facts);
        match self.op {
            Operator::EqualTo => self.equal(&value),
            Operator::NotEqualTo => !self.equal(&value),
            Operator::Contains => self.contains(&value),
            Operator::DoesNotContain => !self.contains(&value),
            Operator::StartsWith => self.texts(&value, |t| {
                self.values.iter().any(|v| t.starts_with(v.as_str()))
            }),
            Operator::Matches => self
                .regex
                .as_ref()
                .is_some_and(|re| self.texts(&value, |t| re.is_match(t))),
            Operator::IsPresent => value.is_present(),
            Operator::IsNotPresent => !value.is_present(),
            Operator::GreaterThan => number(&value).is_some_and(|n| n > self.number),
            Operator::LessThan => number(&value).is_some_and(|n| n < self.number),
            Operator::Changed => {
                if !self.attr.has_before(facts) {
                    return false; // nothing to compare with
                }
                let before = self.attr.value(facts, true);
                let value = self.attr.value(facts, false);
                if before == value {
                    return false;
                }
                let from = lower(&self.source.from_value);
                let to = lower(&self.source.to_value);
                (from.is_empty() || lower(&before.render()) == from)
                    && (to.is_empty() || lower(&value.render()) == to)
            }
            Operator::Unspecified => false,
        }
    }

    /// Whether some text of `value` (the text, or any list item) satisfies `test`.
    fn texts(&self, value: &Value<'_>, test: impl Fn(&str) -> bool) -> bool {
        match value {
            Value::Text(t) => test(&lower(t)),
            Value::Folded(t) => test(t),
            Value::List(l) => l.iter().any(|item| test(&lower(item))),
            Value::Number(n) => test(&n.to_string()),
            Value::Bool(b) => test(if *b { "true" } else { "false" }),
            Value::Missing => false,
        }
    }

    fn equal(&self, value: &Value<'_>) -> bool {
        match value {
            Value::Number(n) => self
                .values
                .iter()
                .any(|v| v.parse::<f64>().is_ok_and(|x| x == *n)),
            _ => self.texts(value, |t| self.values.iter().any(|v| v == t)),
        }
    }

    /// Text: a substring; a list: one of its items.
    fn contains(&self, value: &Value<'_>) -> bool {
        match value {
            Value::List(_) => self.equal(value),
            _ => self.texts(value, |t| {
                self.values.iter().any(|v| t.contains(v.as_str()))
            }),
        }
    }
}

fn number(value: &Value<'_>) -> Option<f64> {
    match value {
        Value::Number(n) => Some(*n),
        Value::Text(t) => t.trim().parse().ok(),
        Value::Folded(t) => t.trim().parse().ok(),
        _ => None,
    }
}

/// Checks `rule` (reporting each bad field under `prefix`) and compiles it.
pub fn compile(v: &mut Violations, prefix: &str, rule: &Rule) -> Option<Compiled> {
    let before = v.len();
    helpdesk_kit::validate::text(v, &format!("{prefix}.name"), &rule.name, true, 200);
    helpdesk_kit::validate::text(
        v,
        &format!("{prefix}.description"),
        &rule.description,
        false,
        2000,
    );
    v.check(
        !EVENTS.contains(&rule.event.as_str()),
        &format!("{prefix}.event"),
        "unknown event (see the list in automation.proto)",
    );
    v.check(
        rule.position < 0,
        &format!("{prefix}.position"),
        "must not be negative",
    );
    let mut count = 0;
    let root = match &rule.conditions {
        Some(g) => group(v, &format!("{prefix}.conditions"), g, 1, &mut count),
        None => Group {
            any: false,
            items: vec![],
        },
    };
    v.check(
        count > MAX_CONDITIONS,
        &format!("{prefix}.conditions"),
        &format!("at most {MAX_CONDITIONS} conditions"),
    );
    v.check(
        rule.actions.is_empty() || rule.actions.len() > MAX_ACTIONS,
        &format!("{prefix}.actions"),
        &format!("1 to {MAX_ACTIONS} actions"),
    );
    for (i, a) in rule.actions.iter().enumerate() {
        check_action(v, &format!("{prefix}.actions[{i}]"), a, &rule.event);
    }
    let delay = rule.delay.as_ref().map(|d| {
        v.check(
            !(MIN_DELAY_SECONDS..=MAX_DELAY_SECONDS).contains(&d.seconds),
            &format!("{prefix}.delay.seconds"),
            &format!("{MIN_DELAY_SECONDS} to {MAX_DELAY_SECONDS}"),
        );
        let episode = Episode::try_from(d.episode).unwrap_or(Episode::Unspecified);
        v.check(
            Episode::try_from(d.episode).is_err(),
            &format!("{prefix}.delay.episode"),
            "unknown episode",
        );
        let episode = if episode == Episode::Unspecified {
            Episode::Status
        } else {
            episode
        };
        v.check(
            episode != Episode::Status
                && !rule.event.starts_with("message.")
                && !rule.event.starts_with("conversation.")
                && !rule.event.starts_with("routing.")
                && !rule.event.starts_with("transfer.")
                && rule.event != "csat.submitted",
            &format!("{prefix}.delay.episode"),
            "a ticket's rule waits on its status only",
        );
        (d.seconds, episode)
    });
    (v.len() == before).then(|| Compiled {
        needs: needs(rule, &root, delay.is_some()),
        rule: rule.clone(),
        root,
        delay,
    })
}

fn group(
    v: &mut Violations,
    field: &str,
    g: &ConditionGroup,
    depth: usize,
    count: &mut usize,
) -> Group {
    if depth > MAX_DEPTH {
        v.add(field, format!("groups nest at most {MAX_DEPTH} deep"));
    }
    let mut items = Vec::with_capacity(g.conditions.len());
    for (i, c) in g.conditions.iter().enumerate() {
        let field = format!("{field}.conditions[{i}]");
        match &c.kind {
            Some(condition::Kind::Predicate(p)) => {
                *count += 1;
                if let Some(t) = test(v, &format!("{field}.predicate"), p) {
                    items.push(Node::Test(Box::new(t)));
                }
            }
            Some(condition::Kind::Group(inner)) => {
                let inner = group(v, &format!("{field}.group"), inner, depth + 1, count);
                items.push(Node::Group(inner));
            }
            None => v.add(field, "a predicate or a group"),
        }
    }
    Group { any: g.any, items }
}

fn test(v: &mut Violations, field: &str, p: &Predicate) -> Option<Test> {
    let attr = Attr::parse(&p.attribute);
    if attr.is_none() {
        v.add(
            format!("{field}.attribute"),
            format!("unknown attribute {:?}", p.attribute),
        );
    }
    let op = Operator::try_from(p.operator).unwrap_or(Operator::Unspecified);
    if op == Operator::Unspecified {
        v.add(format!("{field}.operator"), "unknown or missing operator");
    }
    v.check(
        p.values.len() > MAX_VALUES || p.values.iter().any(|x| x.chars().count() > MAX_VALUE_CHARS),
        &format!("{field}.values"),
        &format!("at most {MAX_VALUES} values of {MAX_VALUE_CHARS} characters"),
    );
    let needs_values = matches!(
        op,
        Operator::EqualTo
            | Operator::NotEqualTo
            | Operator::Contains
            | Operator::DoesNotContain
            | Operator::StartsWith
    );
    v.check(
        needs_values && p.values.iter().all(|x| x.is_empty()),
        &format!("{field}.values"),
        "at least one value",
    );
    let one_value = matches!(
        op,
        Operator::Matches | Operator::GreaterThan | Operator::LessThan
    );
    v.check(
        one_value && p.values.len() != 1,
        &format!("{field}.values"),
        "exactly one value",
    );
    v.check(
        matches!(
            op,
            Operator::IsPresent | Operator::IsNotPresent | Operator::Changed
        ) && !p.values.is_empty(),
        &format!("{field}.values"),
        "none with this operator",
    );
    v.check(
        op != Operator::Changed && !(p.from_value.is_empty() && p.to_value.is_empty()),
        &format!("{field}.from_value"),
        "only with the operator changed",
    );
    let mut number = 0.0;
    if matches!(op, Operator::GreaterThan | Operator::LessThan) {
        if attr.as_ref().is_some_and(|a| !a.is_numeric()) {
            v.add(
                format!("{field}.operator"),
                "greater_than and less_than apply to numbers (csat ratings)",
            );
        }
        match p.values.first().map(|x| x.trim().parse::<f64>()) {
            Some(Ok(n)) if n.is_finite() => number = n,
            _ => v.add(format!("{field}.values"), "a number"),
        }
    }
    let mut regex = None;
    if op == Operator::Matches && p.values.len() == 1 {
        match RegexBuilder::new(&p.values[0])
            .case_insensitive(true)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .build()
        {
            Ok(re) => regex = Some(re),
            Err(e) => v.add(
                format!("{field}.values"),
                format!(
                    "not a usable regular expression: {}",
                    e.to_string().lines().last().unwrap_or_default()
                ),
            ),
        }
    }
    Some(Test {
        source: p.clone(),
        attr: attr?,
        op,
        values: p.values.iter().map(|x| lower(x.trim())).collect(),
        regex,
        number,
    })
}

/// A label or tag: 1 to 64 characters of [a-z0-9_-] (any case).
fn is_label(s: &str) -> bool {
    (1..=64).contains(&s.trim().len())
        && s.trim()
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

/// Most characters of a message a rule writes.
pub const MAX_MESSAGE_CHARS: usize = 4000;

fn check_action(v: &mut Violations, field: &str, a: &Action, event: &str) {
    let Some(kind) = &a.kind else {
        v.add(field.to_string(), "unknown or missing action");
        return;
    };
    let conversation_event = !event.starts_with("ticket.") && !event.starts_with("sla.");
    match kind {
        action::Kind::AssignAgent(agent) => {
            v.check(
                agent.trim().is_empty() || agent.len() > 128,
                &format!("{field}.assign_agent"),
                "an agent id, \"none\" or \"last_responding\"",
            );
        }
        action::Kind::AddLabels(l) | action::Kind::RemoveLabels(l) => {
            let name = if matches!(kind, action::Kind::AddLabels(_)) {
                "add_labels"
            } else {
                "remove_labels"
            };
            v.check(
                l.labels.is_empty() || l.labels.len() > 20 || !l.labels.iter().all(|x| is_label(x)),
                &format!("{field}.{name}.labels"),
                "1 to 20 labels of 1-64 characters of [a-z0-9_-]",
            );
        }
        action::Kind::SendMessage(m) | action::Kind::AddNote(m) => {
            let name = if matches!(kind, action::Kind::SendMessage(_)) {
                "send_message"
            } else {
                "add_note"
            };
            helpdesk_kit::validate::text(
                v,
                &format!("{field}.{name}.content"),
                &m.content,
                true,
                MAX_MESSAGE_CHARS,
            );
        }
        action::Kind::ChangeStatus(s) => {
            v.check(
                !matches!(
                    s.status.as_str(),
                    "open" | "pending" | "snoozed" | "resolved"
                ),
                &format!("{field}.change_status.status"),
                "open, pending, snoozed or resolved",
            );
            if s.status == "snoozed" {
                v.check(
                    !(60..=31_536_000).contains(&s.snooze_seconds),
                    &format!("{field}.change_status.snooze_seconds"),
                    "60 to 31536000 with snoozed",
                );
            } else {
                v.check(
                    s.snooze_seconds != 0,
                    &format!("{field}.change_status.snooze_seconds"),
                    "only with snoozed",
                );
            }
        }
        action::Kind::ChangePriority(p) => v.check(
            !matches!(p.as_str(), "none" | "low" | "medium" | "high" | "urgent"),
            &format!("{field}.change_priority"),
            "none, low, medium, high or urgent",
        ),
        action::Kind::CreateTicket(t) => {
            helpdesk_kit::validate::text(
                v,
                &format!("{field}.create_ticket.subject"),
                &t.subject,
                false,
                200,
            );
            v.check(
                t.tags.len() > 20 || !t.tags.iter().all(|x| is_label(x)),
                &format!("{field}.create_ticket.tags"),
                "at most 20 tags of 1-64 characters of [a-z0-9_-]",
            );
            helpdesk_kit::validate::text(
                v,
                &format!("{field}.create_ticket.category"),
                &t.category,
                false,
                100,
            );
            v.check(
                !matches!(
                    t.priority.as_str(),
                    "" | "low" | "normal" | "high" | "urgent"
                ),
                &format!("{field}.create_ticket.priority"),
                "low, normal, high or urgent",
            );
            if !t.group_id.is_empty() {
                helpdesk_kit::validate::uuid(
                    v,
                    &format!("{field}.create_ticket.group_id"),
                    &t.group_id,
                );
            }
        }
        action::Kind::UpdateTicket(t) => {
            v.check(
                t.status.len() > 64,
                &format!("{field}.update_ticket.status"),
                "a status key",
            );
            v.check(
                !matches!(
                    t.priority.as_str(),
                    "" | "low" | "normal" | "high" | "urgent"
                ),
                &format!("{field}.update_ticket.priority"),
                "low, normal, high or urgent",
            );
            v.check(
                t.add_tags.len() > 20
                    || t.remove_tags.len() > 20
                    || !t.add_tags.iter().chain(&t.remove_tags).all(|x| is_label(x)),
                &format!("{field}.update_ticket.add_tags"),
                "at most 20 tags of 1-64 characters of [a-z0-9_-]",
            );
            v.check(
                t.status.is_empty()
                    && t.priority.is_empty()
                    && t.add_tags.is_empty()
                    && t.remove_tags.is_empty(),
                &format!("{field}.update_ticket"),
                "change something",
            );
        }
        action::Kind::SendWebhook(w) => {
            helpdesk_kit::validate::uuid(
                v,
                &format!("{field}.send_webhook.endpoint_id"),
                &w.endpoint_id,
            );
        }
        action::Kind::SendEmail(e) => {
            v.check(
                e.to.is_empty() || e.to.len() > 10,
                &format!("{field}.send_email.to"),
                "1 to 10 recipients",
            );
            for (i, to) in e.to.iter().enumerate() {
                if to != "contact" {
                    helpdesk_kit::validate::email(v, &format!("{field}.send_email.to[{i}]"), to);
                }
            }
            helpdesk_kit::validate::text(
                v,
                &format!("{field}.send_email.subject"),
                &e.subject,
                true,
                250,
            );
            helpdesk_kit::validate::text(
                v,
                &format!("{field}.send_email.text"),
                &e.text,
                true,
                20_000,
            );
        }
        action::Kind::TransferToTeam(team) => {
            helpdesk_kit::validate::uuid(v, &format!("{field}.transfer_to_team"), team);
        }
        action::Kind::ApplyMacro(id) => {
            helpdesk_kit::validate::uuid(v, &format!("{field}.apply_macro"), id);
        }
        action::Kind::AssignTeam(team) => {
            helpdesk_kit::validate::uuid(v, &format!("{field}.assign_team"), team);
        }
    }
    let needs_conversation = matches!(
        kind,
        action::Kind::AssignAgent(_)
            | action::Kind::AddLabels(_)
            | action::Kind::RemoveLabels(_)
            | action::Kind::SendMessage(_)
            | action::Kind::AddNote(_)
            | action::Kind::ChangeStatus(_)
            | action::Kind::ChangePriority(_)
            | action::Kind::CreateTicket(_)
            | action::Kind::TransferToTeam(_)
            | action::Kind::ApplyMacro(_)
            | action::Kind::AssignTeam(_)
    );
    v.check(
        needs_conversation && !conversation_event,
        field,
        "acts on a conversation: not with a ticket's event",
    );
}

/// The action's kind as the run log names it.
pub fn action_name(a: &Action) -> &'static str {
    match &a.kind {
        Some(action::Kind::AssignAgent(_)) => "assign_agent",
        Some(action::Kind::AddLabels(_)) => "add_labels",
        Some(action::Kind::RemoveLabels(_)) => "remove_labels",
        Some(action::Kind::SendMessage(_)) => "send_message",
        Some(action::Kind::AddNote(_)) => "add_note",
        Some(action::Kind::ChangeStatus(_)) => "change_status",
        Some(action::Kind::ChangePriority(_)) => "change_priority",
        Some(action::Kind::CreateTicket(_)) => "create_ticket",
        Some(action::Kind::UpdateTicket(_)) => "update_ticket",
        Some(action::Kind::SendWebhook(_)) => "send_webhook",
        Some(action::Kind::SendEmail(_)) => "send_email",
        Some(action::Kind::TransferToTeam(_)) => "transfer_to_team",
        Some(action::Kind::ApplyMacro(_)) => "apply_macro",
        Some(action::Kind::AssignTeam(_)) => "assign_team",
        None => "unknown",
    }
}

/// What the action would do, in words (a dry run).
pub fn describe(a: &Action) -> String {
    match &a.kind {
        Some(action::Kind::AssignAgent(x)) => format!("assign agent {x}"),
        Some(action::Kind::AddLabels(l)) => format!("add labels {}", l.labels.join(", ")),
        Some(action::Kind::RemoveLabels(l)) => format!("remove labels {}", l.labels.join(", ")),
        Some(action::Kind::SendMessage(m)) => format!("send message {:?}", m.content),
        Some(action::Kind::AddNote(m)) => format!("add private note {:?}", m.content),
        Some(action::Kind::ChangeStatus(s)) if s.status == "snoozed" => {
            format!("snooze for {} s", s.snooze_seconds)
        }
        Some(action::Kind::ChangeStatus(s)) => format!("change status to {}", s.status),
        Some(action::Kind::ChangePriority(p)) => format!("change priority to {p}"),
        Some(action::Kind::CreateTicket(t)) => format!(
            "create a ticket (tags: {}; category: {})",
            t.tags.join(", "),
            t.category
        ),
        Some(action::Kind::UpdateTicket(t)) => format!(
            "update the ticket (status: {}; priority: {}; add tags: {}; remove tags: {})",
            t.status,
            t.priority,
            t.add_tags.join(", "),
            t.remove_tags.join(", ")
        ),
        Some(action::Kind::SendWebhook(w)) => {
            format!("send a webhook to endpoint {}", w.endpoint_id)
        }
        Some(action::Kind::SendEmail(e)) => {
            format!("send email {:?} to {}", e.subject, e.to.join(", "))
        }
        Some(action::Kind::TransferToTeam(t)) => format!("transfer to team {t}"),
        Some(action::Kind::ApplyMacro(m)) => format!("apply macro {m}"),
        Some(action::Kind::AssignTeam(t)) => format!("assign to team {t}"),
        None => "nothing".into(),
    }
}

/// Checks a macro (reporting each bad field under `prefix`).
pub fn check_macro(v: &mut Violations, prefix: &str, m: &helpdesk_proto::automation::v1::Macro) {
    helpdesk_kit::validate::text(v, &format!("{prefix}.name"), &m.name, true, 200);
    helpdesk_kit::validate::text(
        v,
        &format!("{prefix}.description"),
        &m.description,
        false,
        2000,
    );
    v.check(
        m.actions.is_empty() || m.actions.len() > MAX_ACTIONS,
        &format!("{prefix}.actions"),
        &format!("1 to {MAX_ACTIONS} actions"),
    );
    let mut ticket = false;
    for (i, a) in m.actions.iter().enumerate() {
        let field = format!("{prefix}.actions[{i}]");
        check_action(v, &field, a, "");
        match &a.kind {
            Some(action::Kind::ApplyMacro(_)) => v.add(field, "a macro cannot apply another macro"),
            Some(action::Kind::CreateTicket(_)) => ticket = true,
            Some(action::Kind::UpdateTicket(_)) if !ticket => v.add(
                field,
                "a macro updates the ticket an earlier create_ticket of it made",
            ),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use helpdesk_proto::automation::v1::{Condition, LabelsAction, condition};
    use helpdesk_proto::conversation::v1::{Conversation, Message};

    fn test(attribute: &str, op: Operator, values: &[&str]) -> Condition {
        Condition {
            kind: Some(condition::Kind::Predicate(Predicate {
                attribute: attribute.into(),
                operator: op as i32,
                values: values.iter().map(|v| v.to_string()).collect(),
                ..Default::default()
            })),
        }
    }

    fn rule(event: &str, conditions: Vec<Condition>) -> Compiled {
        let rule = Rule {
            name: "r".into(),
            event: event.into(),
            conditions: Some(ConditionGroup {
                any: false,
                conditions,
            }),
            actions: vec![Action {
                kind: Some(action::Kind::AddLabels(LabelsAction {
                    labels: vec!["x".into()],
                })),
            }],
            ..Default::default()
        };
        let mut v = Violations::new();
        compile(&mut v, "rule", &rule).expect("compiles")
    }

    fn chat(labels: &[&str], content: &str) -> Facts {
        Facts {
            conversation: Some(Conversation {
                labels: labels.iter().map(|l| l.to_string()).collect(),
                priority: 2,
                ..Default::default()
            }),
            message: Some(Message {
                content: content.into(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    #[test]
    fn text_ignores_case_and_lists_match_by_item() {
        let facts = chat(&["VIP", "web"], "I want a Refund");
        let holds = |c: Condition| rule("message.incoming", vec![c]).matches(&facts);
        assert!(holds(test(
            "message.content",
            Operator::Contains,
            &["refund"]
        )));
        assert!(holds(test(
            "message.content",
            Operator::Matches,
            &["^i want"]
        )));
        assert!(holds(test(
            "message.content",
            Operator::StartsWith,
            &["i w"]
        )));
        assert!(holds(test(
            "conversation.labels",
            Operator::Contains,
            &["vip"]
        )));
        // A list contains whole items, not substrings of them.
        assert!(!holds(test(
            "conversation.labels",
            Operator::Contains,
            &["we"]
        )));
        assert!(holds(test(
            "conversation.labels",
            Operator::DoesNotContain,
            &["spam"]
        )));
        assert!(holds(test(
            "conversation.priority",
            Operator::EqualTo,
            &["medium"]
        )));
        assert!(holds(test("contact.email", Operator::IsNotPresent, &[])));
        assert!(!holds(test(
            "message.content",
            Operator::NotEqualTo,
            &["i want a refund"]
        )));
    }

    #[test]
    fn changed_needs_the_state_before_the_event() {
        let r = rule(
            "conversation.updated",
            vec![Condition {
                kind: Some(condition::Kind::Predicate(Predicate {
                    attribute: "conversation.priority".into(),
                    operator: Operator::Changed as i32,
                    to_value: "medium".into(),
                    ..Default::default()
                })),
            }],
        );
        let mut facts = chat(&[], "");
        assert!(!r.matches(&facts), "nothing before: not a change");
        facts.previous_conversation = Some(Conversation {
            priority: 1,
            ..Default::default()
        });
        assert!(r.matches(&facts), "low → medium");
        facts.previous_conversation = facts.conversation.clone();
        assert!(!r.matches(&facts), "medium → medium");
    }

    #[test]
    fn nested_groups_report_each_condition_by_path() {
        let r = rule(
            "message.incoming",
            vec![
                test("message.content", Operator::Contains, &["refund"]),
                Condition {
                    kind: Some(condition::Kind::Group(ConditionGroup {
                        any: true,
                        conditions: vec![
                            test("conversation.labels", Operator::Contains, &["vip"]),
                            test("conversation.labels", Operator::Contains, &["gold"]),
                        ],
                    })),
                },
            ],
        );
        let (matched, results) = r.explain(&chat(&["gold"], "refund please"));
        assert!(matched);
        let paths: Vec<(&str, bool)> = results
            .iter()
            .map(|c| (c.path.as_str(), c.matched))
            .collect();
        assert_eq!(paths, vec![("0", true), ("1.0", false), ("1.1", true)]);
        assert!(!r.matches(&chat(&["bronze"], "refund please")));
    }
}
