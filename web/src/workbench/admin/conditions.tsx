// The condition editor of automation rules: groups of tests (all / any), nested.

import { create } from "@bufbuild/protobuf";
import {
  ConditionGroupSchema,
  ConditionSchema,
  Operator,
  type Condition,
  type ConditionGroup,
  type Predicate,
} from "../../gen/helpdesk/automation/v1/automation_pb";
import type { Directory } from "./directory";
import { ChipsInput } from "./forms";

type Suggestion = string | { value: string; label: string };

/** The attributes a rule may test, with the values they take when there are few. */
const ATTRIBUTES: { name: string; values?: string[]; group: string }[] = [
  { group: "Conversation", name: "conversation.status", values: ["open", "pending", "snoozed", "resolved", "bot"] },
  { group: "Conversation", name: "conversation.priority", values: ["none", "low", "medium", "high", "urgent"] },
  { group: "Conversation", name: "conversation.labels" },
  { group: "Conversation", name: "conversation.inbox_id" },
  { group: "Conversation", name: "conversation.channel", values: ["web_widget", "mobile_sdk", "api", "email"] },
  { group: "Conversation", name: "conversation.team_id" },
  { group: "Conversation", name: "conversation.assignee_id" },
  { group: "Conversation", name: "conversation.csat_rating", values: ["1", "2", "3", "4", "5"] },
  { group: "Conversation", name: "conversation.within_business_hours", values: ["true", "false"] },
  { group: "Conversation", name: "conversation.custom_attributes." },
  { group: "Message", name: "message.content" },
  { group: "Message", name: "message.kind", values: ["incoming", "outgoing"] },
  { group: "Contact", name: "contact.name" },
  { group: "Contact", name: "contact.email" },
  { group: "Contact", name: "contact.country" },
  { group: "Contact", name: "contact.vip_level" },
  { group: "Contact", name: "contact.language" },
  { group: "Contact", name: "contact.identity_verified", values: ["true", "false"] },
  { group: "Contact", name: "contact.custom_attributes." },
  { group: "Inbox", name: "inbox.name" },
  { group: "Inbox", name: "inbox.channel", values: ["web_widget", "mobile_sdk", "api", "email"] },
  { group: "Ticket", name: "ticket.status" },
  { group: "Ticket", name: "ticket.status_category", values: ["new", "open", "pending", "on_hold", "solved", "closed"] },
  { group: "Ticket", name: "ticket.priority", values: ["low", "normal", "high", "urgent"] },
  { group: "Ticket", name: "ticket.type", values: ["question", "incident", "problem", "task"] },
  { group: "Ticket", name: "ticket.category" },
  { group: "Ticket", name: "ticket.tags" },
  { group: "Ticket", name: "ticket.assignee_id" },
  { group: "Ticket", name: "ticket.group_id" },
  { group: "Ticket", name: "ticket.subject" },
  { group: "Ticket", name: "ticket.custom_fields." },
  { group: "Satisfaction", name: "csat.rating", values: ["1", "2", "3", "4", "5"] },
  { group: "Satisfaction", name: "csat.comment" },
];

const OPERATORS: [Operator, string][] = [
  [Operator.EQUAL_TO, "is"],
  [Operator.NOT_EQUAL_TO, "is not"],
  [Operator.CONTAINS, "contains"],
  [Operator.DOES_NOT_CONTAIN, "does not contain"],
  [Operator.STARTS_WITH, "starts with"],
  [Operator.MATCHES, "matches (regex)"],
  [Operator.IS_PRESENT, "is present"],
  [Operator.IS_NOT_PRESENT, "is not present"],
  [Operator.GREATER_THAN, "is greater than"],
  [Operator.LESS_THAN, "is less than"],
  [Operator.CHANGED, "changed"],
];

/** The operator in words ("contains"). */
export const operatorName = (o: Operator) => OPERATORS.find(([v]) => v === o)?.[1] ?? "?";
const takesNoValues = (o: Operator) => o === Operator.IS_PRESENT || o === Operator.IS_NOT_PRESENT || o === Operator.CHANGED;

/** What a value of the attribute may be: fixed words, or the directory's ids. */
function suggestionsFor(attribute: string, dir: Directory, statuses: { key: string; label: string }[]): Suggestion[] {
  const fixed = ATTRIBUTES.find((a) => a.name === attribute)?.values;
  if (fixed) return fixed;
  if (attribute.endsWith("team_id") || attribute === "ticket.group_id") return dir.teams.map((t) => ({ value: t.id, label: t.name }));
  if (attribute.endsWith("assignee_id")) return dir.agents.map((a) => ({ value: a.id, label: a.name }));
  if (attribute === "ticket.status") return statuses.map((s) => ({ value: s.key, label: s.label }));
  return [];
}

/** A new test, of the conversation's status by default. */
function newPredicate(): Condition {
  return create(ConditionSchema, {
    kind: { case: "predicate", value: { attribute: "conversation.status", operator: Operator.EQUAL_TO, values: [] } },
  });
}

/** An empty group inside a group. */
function newGroup(): Condition {
  return create(ConditionSchema, { kind: { case: "group", value: { any: true, conditions: [newPredicate()] } } });
}

/** An empty top group ("always"). */
export function emptyGroup(): ConditionGroup {
  return create(ConditionGroupSchema, { any: false, conditions: [] });
}

/** How many tests a group holds, nested groups included. */
export function countPredicates(g: ConditionGroup | undefined): number {
  if (!g) return 0;
  return g.conditions.reduce((n, c) => n + (c.kind.case === "predicate" ? 1 : c.kind.case === "group" ? countPredicates(c.kind.value) : 0), 0);
}

/** A group of conditions, edited in place; groups nest up to five deep. */
export function GroupEditor(props: {
  group: ConditionGroup;
  onChange: (g: ConditionGroup) => void;
  dir: Directory;
  statuses: { key: string; label: string }[];
  depth?: number;
  onRemove?: () => void;
}) {
  const { group, dir } = props;
  const depth = props.depth ?? 1;
  const setConditions = (conditions: Condition[]) => props.onChange({ ...group, conditions });
  const replace = (i: number, c: Condition) => setConditions(group.conditions.map((x, j) => (j === i ? c : x)));
  const remove = (i: number) => setConditions(group.conditions.filter((_, j) => j !== i));
  return (
    <div className="adm-group" data-testid={depth === 1 ? "rule-conditions" : undefined}>
      <div className="adm-group-head">
        {group.conditions.length === 0 ? (
          <span className="hk-muted">No conditions: the rule always applies.</span>
        ) : (
          <select
            aria-label="Combine"
            value={group.any ? "any" : "all"}
            onChange={(e) => props.onChange({ ...group, any: e.target.value === "any" })}
            style={{ width: "auto" }}
          >
            <option value="all">All of these hold</option>
            <option value="any">Any of these holds</option>
          </select>
        )}
        <span className="hk-grow" />
        <button type="button" className="small" data-testid={depth === 1 ? "rule-add-condition" : undefined} onClick={() => setConditions([...group.conditions, newPredicate()])}>
          + Condition
        </button>
        {depth < 5 && (
          <button type="button" className="small" onClick={() => setConditions([...group.conditions, newGroup()])}>
            + Group
          </button>
        )}
        {props.onRemove && (
          <button type="button" className="ghost small" onClick={props.onRemove}>
            Remove group
          </button>
        )}
      </div>
      {group.conditions.map((c, i) =>
        c.kind.case === "group" ? (
          <GroupEditor
            key={i}
            group={c.kind.value}
            depth={depth + 1}
            dir={dir}
            statuses={props.statuses}
            onChange={(g) => replace(i, create(ConditionSchema, { kind: { case: "group", value: g } }))}
            onRemove={() => remove(i)}
          />
        ) : c.kind.case === "predicate" ? (
          <PredicateEditor
            key={i}
            predicate={c.kind.value}
            dir={dir}
            statuses={props.statuses}
            onChange={(p) => replace(i, create(ConditionSchema, { kind: { case: "predicate", value: p } }))}
            onRemove={() => remove(i)}
          />
        ) : null,
      )}
    </div>
  );
}

function PredicateEditor(props: {
  predicate: Predicate;
  onChange: (p: Predicate) => void;
  onRemove: () => void;
  dir: Directory;
  statuses: { key: string; label: string }[];
}) {
  const p = props.predicate;
  const set = (patch: Partial<Predicate>) => props.onChange({ ...p, ...patch });
  const suggestions = suggestionsFor(p.attribute, props.dir, props.statuses);
  return (
    <div className="adm-pred" data-testid="rule-condition">
      <input
        aria-label="Attribute"
        data-testid="rule-condition-attribute"
        list="adm-attributes"
        value={p.attribute}
        placeholder="attribute"
        onChange={(e) => set({ attribute: e.target.value.trim() })}
      />
      <select
        aria-label="Operator"
        data-testid="rule-condition-operator"
        value={p.operator}
        onChange={(e) => {
          const operator = Number(e.target.value) as Operator;
          set({
            operator,
            values: takesNoValues(operator) ? [] : p.values,
            fromValue: operator === Operator.CHANGED ? p.fromValue : "",
            toValue: operator === Operator.CHANGED ? p.toValue : "",
          });
        }}
      >
        {OPERATORS.map(([o, name]) => (
          <option key={o} value={o}>
            {name}
          </option>
        ))}
      </select>
      {p.operator === Operator.CHANGED ? (
        <div className="adm-changed">
          <input aria-label="From" placeholder="from (any)" value={p.fromValue} onChange={(e) => set({ fromValue: e.target.value })} />
          <input aria-label="To" placeholder="to (any)" value={p.toValue} onChange={(e) => set({ toValue: e.target.value })} />
        </div>
      ) : takesNoValues(p.operator) ? (
        <span />
      ) : p.operator === Operator.MATCHES ? (
        <input
          aria-label="Regular expression"
          className="hk-mono"
          placeholder="refund|money back"
          value={p.values[0] ?? ""}
          onChange={(e) => set({ values: e.target.value ? [e.target.value] : [] })}
        />
      ) : (
        <ChipsInput
          testId="rule-condition-values"
          value={p.values}
          onChange={(values) => set({ values })}
          suggestions={suggestions}
          placeholder="value, Enter for more"
        />
      )}
      <button type="button" className="ghost small" aria-label="Remove condition" onClick={props.onRemove}>
        ×
      </button>
    </div>
  );
}

/** The attribute names offered while typing (rendered once per editor). */
export function AttributeList() {
  return (
    <datalist id="adm-attributes">
      {ATTRIBUTES.map((a) => (
        <option key={a.name} value={a.name} label={a.group} />
      ))}
    </datalist>
  );
}
