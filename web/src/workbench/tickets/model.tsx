// Names, colours and small displays of ticket fields, shared by the list and the detail.

import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ActorKind, type Actor } from "../../gen/helpdesk/common/v1/meta_pb";
import {
  SlaMetric,
  SlaState,
  StatusCategory,
  TicketPriority,
  TicketSource,
  TicketType,
  type SlaTarget,
  type Status,
  type Ticket,
} from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { duration } from "../../lib/time";
import type { Directory } from "../admin/directory";
import { useNow } from "../ui";
import "./tickets.css";

/** Ticket priorities with their names, lowest first. */
export const PRIORITIES: [TicketPriority, string][] = [
  [TicketPriority.LOW, "Low"],
  [TicketPriority.NORMAL, "Normal"],
  [TicketPriority.HIGH, "High"],
  [TicketPriority.URGENT, "Urgent"],
];

/** Ticket types with their names. */
export const TYPES: [TicketType, string][] = [
  [TicketType.QUESTION, "Question"],
  [TicketType.INCIDENT, "Incident"],
  [TicketType.PROBLEM, "Problem"],
  [TicketType.TASK, "Task"],
];

/** Status categories: value, name, and the key used for colours. */
export const CATEGORIES: [StatusCategory, string, string][] = [
  [StatusCategory.NEW, "New", "new"],
  [StatusCategory.OPEN, "Open", "open"],
  [StatusCategory.PENDING, "Pending", "pending"],
  [StatusCategory.ON_HOLD, "On hold", "on_hold"],
  [StatusCategory.SOLVED, "Solved", "solved"],
  [StatusCategory.CLOSED, "Closed", "closed"],
];

/** SLA metrics with their names. */
export const METRICS: [SlaMetric, string][] = [
  [SlaMetric.FIRST_REPLY, "First reply"],
  [SlaMetric.NEXT_REPLY, "Next reply"],
  [SlaMetric.PERIODIC_UPDATE, "Periodic update"],
  [SlaMetric.RESOLUTION, "Resolution"],
  [SlaMetric.AGENT_WORK, "Agent work"],
  [SlaMetric.REQUESTER_WAIT, "Requester wait"],
];

const SOURCES: Record<number, string> = {
  [TicketSource.CHAT]: "Chat",
  [TicketSource.EMAIL]: "Email",
  [TicketSource.API]: "API",
  [TicketSource.WEB]: "Web",
  [TicketSource.AUTOMATION]: "Automation",
};

/** Names of enum values, "—" for unset ones. */
export const priorityName = (p: TicketPriority) => PRIORITIES.find(([v]) => v === p)?.[1] ?? "—";
export const typeName = (t: TicketType) => TYPES.find(([v]) => v === t)?.[1] ?? "—";
export const sourceName = (s: TicketSource) => SOURCES[s] ?? "—";
export const metricName = (m: SlaMetric) => METRICS.find(([v]) => v === m)?.[1] ?? "SLA";
export const categoryName = (c: StatusCategory) => CATEGORIES.find(([v]) => v === c)?.[1] ?? "—";
const categoryKey = (c: StatusCategory) => CATEGORIES.find(([v]) => v === c)?.[2] ?? "new";

/** The status "Solve" moves a ticket to: the account's first status of the solved category. */
export function solvedStatus(statuses: Status[]): Status | undefined {
  return statuses.find((s) => s.category === StatusCategory.SOLVED);
}

/** Statuses as [key, label] pairs, for `Options`. */
export function statusChoices(statuses: Status[]): [string, string][] {
  return statuses.map((s) => [s.key, s.label]);
}

/** True once a ticket is solved or closed. */
export function isDone(t: Ticket): boolean {
  return t.statusCategory === StatusCategory.SOLVED || t.statusCategory === StatusCategory.CLOSED;
}

/** The status as a coloured badge (colour by category). */
export function StatusBadge(props: { category: StatusCategory; label: string; testId?: string }) {
  return (
    <span className={`tk-status cat-${categoryKey(props.category)}`} data-testid={props.testId}>
      {props.label}
    </span>
  );
}

/** The priority with a coloured marker. */
export function PriorityLabel({ priority }: { priority: TicketPriority }) {
  const name = priorityName(priority);
  return <span className={`tk-priority p-${name.toLowerCase()}`}>{name}</span>;
}

/** Who wrote or changed something, in words. */
export function actorName(actor: Actor | undefined, dir: Directory, requesterName?: string): string {
  if (!actor) return "Someone";
  switch (actor.kind) {
    case ActorKind.AGENT:
      return dir.agentName(actor.id);
    case ActorKind.CONTACT:
      return requesterName || "Customer";
    case ActorKind.BOT:
      return "Bot";
    case ActorKind.SYSTEM:
      return "System";
    case ActorKind.AUTOMATION:
      return "Automation rule";
    case ActorKind.INTEGRATION:
      return `Integration ${actor.id}`;
    default:
      return actor.id || "Someone";
  }
}

/** "2 h 5 min" / "45 s" for a signed number of seconds, without the sign. */
function span(seconds: number): string {
  return duration(Math.abs(seconds));
}

/** How one SLA target stands now: a word, a tone and a line of detail. */
function slaStanding(t: SlaTarget, now: number): { tone: "ok" | "warn" | "bad" | "dim"; text: string; detail: string } {
  const due = t.dueTime ? timestampDate(t.dueTime).getTime() : undefined;
  const target = `target ${span(Number(t.targetSeconds))}${t.businessHours ? " (business hours)" : ""}`;
  switch (t.state) {
    case SlaState.ACTIVE: {
      if (due === undefined) return { tone: "ok", text: "Running", detail: target };
      const left = (due - now) / 1000;
      if (left <= 0) return { tone: "bad", text: `Overdue ${span(left)}`, detail: `was due ${new Date(due).toLocaleString()}` };
      const tone = left < Math.min(3600, Number(t.targetSeconds) * 0.25) ? "warn" : "ok";
      return { tone, text: `${span(left)} left`, detail: `due ${new Date(due).toLocaleString()}` };
    }
    case SlaState.PAUSED:
      return { tone: "dim", text: "Paused", detail: `${span(Number(t.elapsedSeconds))} of ${span(Number(t.targetSeconds))} used` };
    case SlaState.ACHIEVED:
      return { tone: "ok", text: "Achieved", detail: target };
    case SlaState.BREACHED: {
      const over = due !== undefined ? ` · overdue ${span((now - due) / 1000)}` : "";
      return { tone: "bad", text: "Breached", detail: `${target}${due !== undefined && now > due ? over : ""}` };
    }
    default:
      return { tone: "dim", text: "—", detail: target };
  }
}

/** One SLA target as a live clock (red when breached). */
export function SlaClock({ target }: { target: SlaTarget }) {
  const now = useNow();
  const s = slaStanding(target, now);
  return (
    <div className={`tk-sla tone-${s.tone}`} data-testid="sla-clock" data-state={SlaState[target.state]?.toLowerCase()}>
      <span className="tk-sla-metric">{metricName(target.metric)}</span>
      <span className="tk-sla-value">{s.text}</span>
      <span className="tk-sla-detail">{s.detail}</span>
    </div>
  );
}

/** The most pressing SLA target of a ticket, for the list: the soonest due or a breach. */
export function NextSla({ ticket }: { ticket: Ticket }) {
  const now = useNow();
  const breached = ticket.sla.find((t) => t.state === SlaState.BREACHED && !isDone(ticket));
  const active = ticket.sla
    .filter((t) => t.state === SlaState.ACTIVE && t.dueTime)
    .sort((a, b) => timestampDate(a.dueTime!).getTime() - timestampDate(b.dueTime!).getTime())[0];
  const pick = breached ?? active;
  if (!pick) return <span className="hk-muted">—</span>;
  const s = slaStanding(pick, now);
  return (
    <span className={`tk-sla-chip tone-${s.tone}`} title={`${metricName(pick.metric)}: ${s.detail}`}>
      {pick.state === SlaState.BREACHED ? `${metricName(pick.metric)} breached` : s.text}
    </span>
  );
}
