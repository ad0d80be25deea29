// The action list editor of automation rules and macros.

import { create } from "@bufbuild/protobuf";
import { ActionSchema, type Action, type Macro } from "../../gen/helpdesk/automation/v1/automation_pb";
import type { Endpoint } from "../../gen/helpdesk/notification/v1/notification_pb";
import type { Status } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { Options } from "../ui";
import { agentChoices, teamChoices, type Directory } from "./directory";
import { ChipsInput, DurationInput, fieldError } from "./forms";

type Kind = NonNullable<Action["kind"]["case"]>;

/** Every kind of action, with its name. */
const ACTION_KINDS: [Kind, string][] = [
  ["sendMessage", "Send a message to the customer"],
  ["addNote", "Add a private note"],
  ["addLabels", "Add labels"],
  ["removeLabels", "Remove labels"],
  ["changeStatus", "Change the status"],
  ["changePriority", "Change the priority"],
  ["assignAgent", "Assign to an agent"],
  ["assignTeam", "Move to a team's queue"],
  ["transferToTeam", "Offer to a team (transfer)"],
  ["createTicket", "Create a ticket"],
  ["updateTicket", "Update the ticket"],
  ["sendWebhook", "Send a webhook"],
  ["sendEmail", "Send an email"],
  ["applyMacro", "Apply a macro"],
];

/** A new action of a kind, with sensible first values. */
function newAction(kind: Kind): Action {
  switch (kind) {
    case "sendMessage":
    case "addNote":
      return create(ActionSchema, { kind: { case: kind, value: { content: "" } } });
    case "addLabels":
    case "removeLabels":
      return create(ActionSchema, { kind: { case: kind, value: { labels: [] } } });
    case "changeStatus":
      return create(ActionSchema, { kind: { case: kind, value: { status: "resolved" } } });
    case "changePriority":
      return create(ActionSchema, { kind: { case: kind, value: "high" } });
    case "createTicket":
    case "updateTicket":
      return create(ActionSchema, { kind: { case: kind, value: {} } });
    case "sendWebhook":
      return create(ActionSchema, { kind: { case: kind, value: { endpointId: "" } } });
    case "sendEmail":
      return create(ActionSchema, { kind: { case: kind, value: { to: ["contact"], subject: "", text: "" } } });
    default:
      return create(ActionSchema, { kind: { case: kind, value: "" } });
  }
}

/** Resources the editor offers in its pickers. */
export interface ActionContext {
  dir: Directory;
  statuses: Status[];
  endpoints: Endpoint[];
  macros: Macro[];
}

/** One line describing an action (for lists). */
export function actionSummary(a: Action, ctx: ActionContext): string {
  const k = a.kind;
  switch (k.case) {
    case "sendMessage":
      return `Message “${k.value.content.slice(0, 40)}”`;
    case "addNote":
      return `Note “${k.value.content.slice(0, 40)}”`;
    case "addLabels":
      return `+labels ${k.value.labels.join(", ")}`;
    case "removeLabels":
      return `−labels ${k.value.labels.join(", ")}`;
    case "changeStatus":
      return `Status → ${k.value.status}`;
    case "changePriority":
      return `Priority → ${k.value}`;
    case "assignAgent":
      return k.value === "none" ? "Unassign" : k.value === "last_responding" ? "Assign to last responder" : `Assign to ${ctx.dir.agentName(k.value)}`;
    case "assignTeam":
      return `Queue of ${ctx.dir.teamName(k.value)}`;
    case "transferToTeam":
      return `Offer to ${ctx.dir.teamName(k.value)}`;
    case "createTicket":
      return "Create a ticket";
    case "updateTicket":
      return "Update the ticket";
    case "sendWebhook":
      return `Webhook ${ctx.endpoints.find((e) => e.id === k.value.endpointId)?.url ?? ""}`;
    case "sendEmail":
      return `Email ${k.value.to.join(", ")}`;
    case "applyMacro":
      return `Macro ${ctx.macros.find((m) => m.id === k.value)?.name ?? ""}`;
    default:
      return "—";
  }
}

/** The ordered list of actions, each with its own fields. */
export function ActionsEditor(props: {
  actions: Action[];
  onChange: (a: Action[]) => void;
  ctx: ActionContext;
  /** Where the actions sit in a request, for the platform's field complaints. */
  path: string;
  error?: string;
  /** Macros cannot apply macros. */
  allowMacro: boolean;
}) {
  const { actions, onChange } = props;
  const kinds = ACTION_KINDS.filter(([kind]) => props.allowMacro || kind !== "applyMacro");
  const move = (i: number, by: number) => {
    const next = [...actions];
    const [a] = next.splice(i, 1);
    next.splice(i + by, 0, a);
    onChange(next);
  };
  return (
    <div className="adm-actions-list" data-testid="actions-editor">
      {actions.length === 0 && <p className="hk-muted hk-small" style={{ margin: 0 }}>No actions yet: add at least one.</p>}
      {actions.map((a, i) => (
        <div key={i} className="adm-action" data-testid="action-row">
          <span className="adm-action-n">{i + 1}</span>
          <select
            aria-label="Action"
            data-testid="action-kind"
            value={a.kind.case ?? ""}
            onChange={(e) => onChange(actions.map((x, j) => (j === i ? newAction(e.target.value as Kind) : x)))}
          >
            <Options of={kinds} />
          </select>
          <div className="hk-row" style={{ flexWrap: "nowrap", gap: 2 }}>
            <button type="button" className="ghost small" disabled={i === 0} aria-label="Move up" onClick={() => move(i, -1)}>
              ↑
            </button>
            <button type="button" className="ghost small" disabled={i === actions.length - 1} aria-label="Move down" onClick={() => move(i, 1)}>
              ↓
            </button>
            <button type="button" className="ghost small" aria-label="Remove action" onClick={() => onChange(actions.filter((_, j) => j !== i))}>
              ×
            </button>
          </div>
          <div className="adm-action-body">
            <ActionFields action={a} ctx={props.ctx} onChange={(n) => onChange(actions.map((x, j) => (j === i ? n : x)))} />
            {fieldError(props.error, `${props.path}[${i}]`) && <span className="hk-field-error">{fieldError(props.error, `${props.path}[${i}]`)}</span>}
          </div>
        </div>
      ))}
      {actions.length < 20 && (
        <div>
          <button type="button" className="small" data-testid="action-add" onClick={() => onChange([...actions, newAction("sendMessage")])}>
            + Action
          </button>
        </div>
      )}
    </div>
  );
}

const PLACEHOLDERS = "{{contact.name}}, {{contact.email}}, {{conversation.id}}, {{ticket.number}}";
const CONV_STATUSES = ["open", "pending", "snoozed", "resolved"];
const CONV_PRIORITIES = ["none", "low", "medium", "high", "urgent"];
const TICKET_PRIORITIES = ["low", "normal", "high", "urgent"];

function ActionFields({ action, ctx, onChange }: { action: Action; ctx: ActionContext; onChange: (a: Action) => void }) {
  const k = action.kind;
  // Builds the same kind of action with a new value.
  const put = <C extends Kind>(c: C, value: Extract<Action["kind"], { case: C }>["value"]) =>
    onChange(create(ActionSchema, { kind: { case: c, value } as Action["kind"] }));
  switch (k.case) {
    case "sendMessage":
    case "addNote":
      return (
        <>
          <textarea
            data-testid="action-content"
            placeholder={k.case === "sendMessage" ? "What the customer reads" : "What staff read"}
            value={k.value.content}
            onChange={(e) => put(k.case, { ...k.value, content: e.target.value })}
          />
          <span className="hk-hint hk-small hk-muted">Placeholders: {PLACEHOLDERS}</span>
        </>
      );
    case "addLabels":
    case "removeLabels":
      return <ChipsInput testId="action-labels" value={k.value.labels} normalize={(s) => s.toLowerCase()} placeholder="labels" onChange={(labels) => put(k.case, { ...k.value, labels })} />;
    case "changeStatus":
      return (
        <div className="hk-row">
          <select value={k.value.status} onChange={(e) => put(k.case, { ...k.value, status: e.target.value, snoozeSeconds: e.target.value === "snoozed" ? k.value.snoozeSeconds || 3600n : 0n })}>
            <Options of={CONV_STATUSES} />
          </select>
          {k.value.status === "snoozed" && (
            <DurationInput seconds={Number(k.value.snoozeSeconds)} onChange={(s) => put(k.case, { ...k.value, snoozeSeconds: BigInt(s) })} />
          )}
        </div>
      );
    case "changePriority":
      return (
        <select value={k.value} onChange={(e) => put(k.case, e.target.value)}>
          <Options of={CONV_PRIORITIES} />
        </select>
      );
    case "assignAgent":
      return (
        <select data-testid="action-agent" value={k.value} onChange={(e) => put(k.case, e.target.value)}>
          <option value="">Choose…</option>
          <option value="last_responding">The agent who last wrote to the customer</option>
          <option value="none">Nobody (unassign)</option>
          <Options of={agentChoices(ctx.dir.agents)} />
        </select>
      );
    case "assignTeam":
    case "transferToTeam":
      return (
        <select data-testid="action-team" value={k.value} onChange={(e) => put(k.case, e.target.value)}>
          <option value="">Choose a team…</option>
          <Options of={teamChoices(ctx.dir.teams)} />
        </select>
      );
    case "applyMacro":
      return (
        <select value={k.value} onChange={(e) => put(k.case, e.target.value)}>
          <option value="">Choose a macro…</option>
          <Options of={ctx.macros.map((m) => [m.id, m.name] as const)} />
        </select>
      );
    case "createTicket":
      return (
        <>
          <input placeholder="Subject (empty: the first customer message)" value={k.value.subject} onChange={(e) => put(k.case, { ...k.value, subject: e.target.value })} />
          <div className="hk-row">
            <select aria-label="Priority" value={k.value.priority} onChange={(e) => put(k.case, { ...k.value, priority: e.target.value })}>
              <option value="">Normal priority</option>
              <Options of={TICKET_PRIORITIES} />
            </select>
            <select aria-label="Team" value={k.value.groupId} onChange={(e) => put(k.case, { ...k.value, groupId: e.target.value })}>
              <option value="">No team</option>
              <Options of={teamChoices(ctx.dir.teams)} />
            </select>
            <input placeholder="Category" value={k.value.category} onChange={(e) => put(k.case, { ...k.value, category: e.target.value })} />
          </div>
          <ChipsInput value={k.value.tags} placeholder="tags" normalize={(s) => s.toLowerCase()} onChange={(tags) => put(k.case, { ...k.value, tags })} />
        </>
      );
    case "updateTicket":
      return (
        <>
          <div className="hk-row">
            <select aria-label="Status" value={k.value.status} onChange={(e) => put(k.case, { ...k.value, status: e.target.value })}>
              <option value="">Status unchanged</option>
              <Options of={ctx.statuses.map((s) => [s.key, s.label] as const)} />
            </select>
            <select aria-label="Priority" value={k.value.priority} onChange={(e) => put(k.case, { ...k.value, priority: e.target.value })}>
              <option value="">Priority unchanged</option>
              <Options of={TICKET_PRIORITIES} />
            </select>
          </div>
          <div className="hk-row">
            <ChipsInput value={k.value.addTags} placeholder="add tags" normalize={(s) => s.toLowerCase()} onChange={(addTags) => put(k.case, { ...k.value, addTags })} />
            <ChipsInput value={k.value.removeTags} placeholder="remove tags" normalize={(s) => s.toLowerCase()} onChange={(removeTags) => put(k.case, { ...k.value, removeTags })} />
          </div>
        </>
      );
    case "sendWebhook":
      return (
        <select value={k.value.endpointId} onChange={(e) => put(k.case, { ...k.value, endpointId: e.target.value })}>
          <option value="">Choose an endpoint…</option>
          <Options of={ctx.endpoints.map((e) => [e.id, e.description || e.url] as const)} />
        </select>
      );
    case "sendEmail":
      return (
        <>
          <ChipsInput value={k.value.to} placeholder="addresses, or contact" onChange={(to) => put(k.case, { ...k.value, to })} suggestions={["contact"]} />
          <input placeholder="Subject" value={k.value.subject} onChange={(e) => put(k.case, { ...k.value, subject: e.target.value })} />
          <textarea placeholder="Text" value={k.value.text} onChange={(e) => put(k.case, { ...k.value, text: e.target.value })} />
          <span className="hk-small hk-muted">Placeholders: {PLACEHOLDERS}</span>
        </>
      );
    default:
      return <span className="hk-muted">Unknown action</span>;
  }
}
