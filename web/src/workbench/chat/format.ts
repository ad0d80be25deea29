// How conversations, messages and people are named on screen.

import {
  ConversationStatus,
  MessageKind,
  Priority,
  type Contact,
  type Conversation,
  type Message,
} from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { ActorKind } from "../../gen/helpdesk/common/v1/meta_pb";

/** Status filter values as the URL and the status select name them. */
export const STATUS_KEYS: Record<string, ConversationStatus> = {
  open: ConversationStatus.OPEN,
  pending: ConversationStatus.PENDING,
  snoozed: ConversationStatus.SNOOZED,
  resolved: ConversationStatus.RESOLVED,
  bot: ConversationStatus.BOT,
};

/** A conversation status's name. */
export function statusLabel(s: ConversationStatus): string {
  switch (s) {
    case ConversationStatus.OPEN:
      return "Open";
    case ConversationStatus.PENDING:
      return "Pending";
    case ConversationStatus.SNOOZED:
      return "Snoozed";
    case ConversationStatus.RESOLVED:
      return "Resolved";
    case ConversationStatus.BOT:
      return "With bot";
    default:
      return "Unknown";
  }
}

/** Conversation priorities with their names, lowest first. */
export const PRIORITIES: [Priority, string][] = [
  [Priority.UNSPECIFIED, "No priority"],
  [Priority.LOW, "Low"],
  [Priority.MEDIUM, "Medium"],
  [Priority.HIGH, "High"],
  [Priority.URGENT, "Urgent"],
];

/** Who wrote a message, as the chat view's `data-author` names it. */
type Author = "customer" | "agent" | "bot" | "system";

/** Who wrote a message: the customer, an agent, a bot, or the platform. */
export function authorOf(m: Message): Author {
  if (m.kind === MessageKind.INCOMING) return "customer";
  if (m.kind === MessageKind.ACTIVITY) return "system";
  switch (m.sender?.kind) {
    case ActorKind.AGENT:
      return "agent";
    case ActorKind.BOT:
    case ActorKind.INTEGRATION:
      return "bot";
    default:
      return "system";
  }
}

/** A contact's display name: name, else email, else a short form of its id. */
export function contactName(c: Contact | undefined, fallbackId = ""): string {
  if (c?.name) return c.name;
  if (c?.email) return c.email;
  return fallbackId ? `Visitor ${fallbackId.slice(0, 6)}` : "Visitor";
}

/** Up to two initials of a name. */
export function initials(name: string): string {
  const parts = name.replace(/[^\p{L}\p{N}\s]/gu, " ").trim().split(/\s+/).filter(Boolean);
  if (!parts.length) return "?";
  return ((parts[0][0] ?? "") + (parts.length > 1 ? parts[parts.length - 1][0] : "")).toUpperCase();
}

/** A stable soft colour for an avatar. */
export function avatarHue(key: string): number {
  let h = 0;
  for (const ch of key) h = (h * 31 + ch.charCodeAt(0)) % 360;
  return h;
}

/** "customer_problem" → "Customer problem". */
export function humanize(key: string): string {
  const s = key.replace(/[_-]+/g, " ").trim();
  return s.charAt(0).toUpperCase() + s.slice(1);
}

/** The newer of two copies of a conversation (by version). */
export function newer(a: Conversation | undefined, b: Conversation): Conversation {
  return a && a.version > b.version ? a : b;
}

/** A message's text for a one-line preview. */
export function snippet(m: Message | undefined, me: string): string {
  if (!m) return "";
  const text = m.content || (m.attachments.length ? `📎 ${m.attachments.map((a) => a.name).join(", ")}` : "");
  if (m.kind === MessageKind.NOTE) return `Note: ${text}`;
  if (m.kind === MessageKind.OUTGOING && m.sender?.kind === ActorKind.AGENT && m.sender.id === me) return `You: ${text}`;
  return text;
}
