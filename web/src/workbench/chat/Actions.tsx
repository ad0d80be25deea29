// What an agent does to a conversation from its header: move its status (resolve,
// pending, snooze until a time, reopen) and turn it into a ticket.

import { useState } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { ConversationStatus, MessageKind, Priority, type Conversation } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { TicketPriority, TicketType } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { newId } from "../../lib/ids";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Dialog, ErrorLine, Options, useAction } from "../ui";
import { PRIORITIES, TYPES } from "../tickets/model";
import { CheckIcon, TicketIcon } from "./icons";

/** Resolve / pending / snooze / reopen, as the conversation's status allows. */
export function StatusActions({ conversation: c, onChanged }: { conversation: Conversation; onChanged: (c: Conversation) => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [snoozing, setSnoozing] = useState(false);
  const set = (status: ConversationStatus, until?: Date) =>
    act(async () =>
      onChanged(
        await clients.conversation.setStatus({
          conversationId: c.id,
          status,
          snoozedUntil: until ? timestampFromDate(until) : undefined,
        }),
      ),
    );
  const s = c.status;
  return (
    <div className="ac-status">
      {error && (
        <span className="ac-error" role="alert" title={error}>
          {error}
        </span>
      )}
      {s === ConversationStatus.BOT && (
        <button data-testid="handoff" disabled={busy} onClick={() => void set(ConversationStatus.OPEN)} title="Take it from the bot and route it to an agent">
          Hand to an agent
        </button>
      )}
      {s === ConversationStatus.OPEN && (
        <button data-testid="pending" disabled={busy} onClick={() => void set(ConversationStatus.PENDING)} title="Waiting on the customer">
          Pending
        </button>
      )}
      {(s === ConversationStatus.OPEN || s === ConversationStatus.PENDING) && (
        <button data-testid="snooze" disabled={busy} onClick={() => setSnoozing(true)} title="Hide until a time, then reopen">
          Snooze
        </button>
      )}
      {(s === ConversationStatus.PENDING || s === ConversationStatus.SNOOZED || s === ConversationStatus.RESOLVED) && (
        <button data-testid="reopen" disabled={busy} onClick={() => void set(ConversationStatus.OPEN)}>
          Reopen
        </button>
      )}
      {s !== ConversationStatus.RESOLVED && (
        <button className="primary" data-testid="resolve" disabled={busy} onClick={() => void set(ConversationStatus.RESOLVED)}>
          <CheckIcon /> Resolve
        </button>
      )}
      {snoozing && (
        <SnoozeDialog
          onClose={() => setSnoozing(false)}
          onSnooze={async (until) => {
            if (await set(ConversationStatus.SNOOZED, until)) setSnoozing(false);
          }}
          error={error}
          busy={busy}
        />
      )}
    </div>
  );
}

/** A date as a `datetime-local` input value (local time). */
function localValue(d: Date): string {
  const p = (n: number) => String(n).padStart(2, "0");
  return `${d.getFullYear()}-${p(d.getMonth() + 1)}-${p(d.getDate())}T${p(d.getHours())}:${p(d.getMinutes())}`;
}

function at(daysAhead: number, hour: number): Date {
  const d = new Date();
  d.setDate(d.getDate() + daysAhead);
  d.setHours(hour, 0, 0, 0);
  return d;
}

function SnoozeDialog({
  onClose,
  onSnooze,
  error,
  busy,
}: {
  onClose: () => void;
  onSnooze: (until: Date) => void;
  error?: string;
  busy: boolean;
}) {
  const [custom, setCustom] = useState(() => localValue(new Date(Date.now() + 3600_000)));
  const daysToMonday = ((8 - new Date().getDay()) % 7) || 7;
  const presets: { label: string; until: Date }[] = [
    { label: "In 1 hour", until: new Date(Date.now() + 3600_000) },
    { label: "In 4 hours", until: new Date(Date.now() + 4 * 3600_000) },
    { label: "Tomorrow, 9:00", until: at(1, 9) },
    { label: "Next Monday, 9:00", until: at(daysToMonday, 9) },
  ];
  const customDate = custom ? new Date(custom) : undefined;
  const valid = !!customDate && !isNaN(customDate.getTime()) && customDate.getTime() > Date.now();
  return (
    <Dialog title="Snooze until" onClose={onClose}>
      <div className="ac-snooze">
        <div className="ac-presets">
          {presets.map((p) => (
            <button key={p.label} disabled={busy} onClick={() => onSnooze(p.until)}>
              <strong>{p.label}</strong>
              <span className="muted">
                {p.until.toLocaleString([], { weekday: "short", hour: "2-digit", minute: "2-digit" })}
              </span>
            </button>
          ))}
        </div>
        <label className="tf-field">
          <span>Or pick a time</span>
          <input type="datetime-local" data-testid="snooze-until" value={custom} onChange={(e) => setCustom(e.target.value)} />
        </label>
        <p className="muted">The conversation reopens by itself at that time, or when the customer writes.</p>
        <ErrorLine error={error} />
        <div className="tf-actions">
          <button onClick={onClose}>Cancel</button>
          <button className="primary" data-testid="snooze-confirm" disabled={!valid || busy} onClick={() => customDate && onSnooze(customDate)}>
            Snooze
          </button>
        </div>
      </div>
    </Dialog>
  );
}

const TICKET_PRIORITY: Record<number, TicketPriority> = {
  [Priority.LOW]: TicketPriority.LOW,
  [Priority.MEDIUM]: TicketPriority.NORMAL,
  [Priority.HIGH]: TicketPriority.HIGH,
  [Priority.URGENT]: TicketPriority.URGENT,
};

/** Messages read from a conversation's start to find the customer's first one. */
const OPENING_PAGE = 20;

/**
 * "Create ticket": one click makes the ticket from the conversation (subject from the
 * customer's first message) and opens it; the arrow opens a form to set subject,
 * priority and type first.
 */
export function CreateTicket({ conversation: c }: { conversation: Conversation }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [form, setForm] = useState(false);
  // The form's suggested subject: the first line of the customer's first message (read
  // when the form opens; empty when none is near the start or it could not be read).
  const [suggested, setSuggested] = useState<string>();
  const [requestId] = useState(newId);

  const openForm = () => {
    setForm(true);
    if (suggested !== undefined) return;
    clients.conversation.listMessages({ conversationId: c.id, pageSize: OPENING_PAGE }).then(
      (page) => {
        const first = page.messages.find((m) => m.kind === MessageKind.INCOMING)?.content ?? "";
        setSuggested(first.split("\n")[0].slice(0, 200));
      },
      () => setSuggested(""),
    );
  };

  const create = (subject: string, priority?: TicketPriority, type?: TicketType) =>
    act(async () => {
      const t = await clients.ticketing.createTicketFromConversation({
        conversationId: c.id,
        requestId,
        subject,
        ticket: priority || type ? { priority, type } : undefined,
      });
      go("tickets", t.id);
    });

  return (
    <div className="ac-ticket">
      <button data-testid="create-ticket" disabled={busy} onClick={() => void create("")} title="Make a ticket of this conversation and open it">
        <TicketIcon /> {busy && !form ? "Creating…" : "Create ticket"}
      </button>
      <button className="ac-more" data-testid="create-ticket-details" aria-label="Create a ticket with details" disabled={busy} onClick={openForm}>
        ▾
      </button>
      {error && !form && (
        <span className="ac-error" role="alert" title={error}>
          {error}
        </span>
      )}
      {form && suggested === undefined && (
        <Dialog title="Create ticket from conversation" onClose={() => setForm(false)}>
          <p className="muted">Reading the conversation…</p>
        </Dialog>
      )}
      {form && suggested !== undefined && (
        <TicketForm
          defaultSubject={suggested}
          defaultPriority={TICKET_PRIORITY[c.priority] ?? TicketPriority.NORMAL}
          busy={busy}
          error={error}
          onClose={() => setForm(false)}
          onCreate={(subject, priority, type) => void create(subject, priority, type)}
        />
      )}
    </div>
  );
}

function TicketForm({
  defaultSubject,
  defaultPriority,
  busy,
  error,
  onClose,
  onCreate,
}: {
  defaultSubject: string;
  defaultPriority: TicketPriority;
  busy: boolean;
  error?: string;
  onClose: () => void;
  onCreate: (subject: string, priority: TicketPriority, type: TicketType) => void;
}) {
  const [subject, setSubject] = useState(defaultSubject);
  const [priority, setPriority] = useState(defaultPriority);
  const [type, setType] = useState(TicketType.QUESTION);
  return (
    <Dialog title="Create ticket from conversation" onClose={onClose}>
      <form
        className="ac-form"
        onSubmit={(e) => {
          e.preventDefault();
          onCreate(subject.trim(), priority, type);
        }}
      >
        <label className="tf-field">
          <span>Subject</span>
          <input data-testid="ticket-subject" value={subject} maxLength={255} required onChange={(e) => setSubject(e.target.value)} autoFocus />
        </label>
        <div className="ac-row">
          <label className="tf-field">
            <span>Priority</span>
            <select data-testid="ticket-priority" value={priority} onChange={(e) => setPriority(Number(e.target.value))}>
              <Options of={PRIORITIES} />
            </select>
          </label>
          <label className="tf-field">
            <span>Type</span>
            <select value={type} onChange={(e) => setType(Number(e.target.value))}>
              <Options of={TYPES} />
            </select>
          </label>
        </div>
        <p className="muted">The transcript, contact, device, labels and attributes come along; the customer is told the ticket's number in the chat.</p>
        <ErrorLine error={error} />
        <div className="tf-actions">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button className="primary" type="submit" data-testid="ticket-create" disabled={busy || !subject.trim()}>
            {busy ? "Creating…" : "Create and open"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}
