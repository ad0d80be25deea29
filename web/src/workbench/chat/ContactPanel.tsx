// The right column of a conversation: who the customer is (contact, verification,
// device, attributes), the conversation's own settings (priority, labels, attributes),
// the tickets linked to it (kept current by the account's ticket stream) and the
// customer's earlier conversations.

import { useEffect, useRef, useState } from "react";
import {
  ChannelKind,
  type Conversation,
  type DeviceInfo,
  type Inbox,
} from "../../gen/helpdesk/conversation/v1/conversation_pb";
import type { Ticket } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { clock } from "../../lib/time";
import { describe } from "../../lib/errors";
import { useWorkbench } from "../context";
import { ErrorLine, Fact, Options, useAction } from "../ui";
import { HeardTickets, latestTicket, useTicketChanges } from "../tickets/live";
import { avatarHue, contactName, humanize, initials, PRIORITIES, statusLabel } from "./format";
import { useContact, useSessionDirectory } from "./directory";

const CHANNELS: Record<number, string> = {
  [ChannelKind.WEB_WIDGET]: "Web chat",
  [ChannelKind.MOBILE_SDK]: "Mobile app",
  [ChannelKind.API]: "API",
  [ChannelKind.EMAIL]: "Email",
};

/** The right column of conversation `c`. */
export function ContactPanel({ conversation: c, onChanged }: { conversation: Conversation; onChanged: (c: Conversation) => void }) {
  const { clients } = useWorkbench();
  const directory = useSessionDirectory(clients);
  const { contact, error: contactError } = useContact(clients, c.contactId);
  const name = contactName(contact, c.contactId);
  const [inbox, setInbox] = useState<Inbox>();
  useEffect(() => {
    clients.conversation.getInbox({ id: c.inboxId }).then(setInbox, () => setInbox(undefined));
  }, [clients, c.inboxId]);

  const contactAttributes = Object.entries(contact?.customAttributes ?? {});
  const conversationAttributes = Object.entries(c.customAttributes);

  return (
    <aside className="cp-panel" data-testid="contact-panel" aria-label="Customer details">
      <div className="cp-contact">
        <span className="ch-avatar ch-avatar-lg" style={{ "--hue": avatarHue(c.contactId) } as React.CSSProperties} aria-hidden>
          {initials(name)}
        </span>
        <div className="cp-who">
          <h3 data-testid="contact-name">{name}</h3>
          {contact?.email && (
            <div className="cp-line">
              <a href={`mailto:${contact.email}`}>{contact.email}</a>
            </div>
          )}
          {contact?.phone && <div className="cp-line">{contact.phone}</div>}
          {contact && (
            <span
              className={`cp-verified${contact.identityVerified ? " yes" : ""}`}
              data-testid="contact-verified"
              title={
                contact.identityVerified
                  ? "The customer's own site proved this identity"
                  : "Given by the visitor without proof: do not trust the email or id"
              }
            >
              {contact.identityVerified ? "Verified identity" : "Unverified identity"}
            </span>
          )}
        </div>
      </div>
      <ErrorLine error={contactError} />

      <Section title="Conversation">
        <dl className="cp-facts">
          <dt>Status</dt>
          <dd>
            <span className={`ch-status ch-s${c.status}`}>{statusLabel(c.status)}</span>
            {c.snoozedUntil && <span className="muted"> until {clock(c.snoozedUntil)}</span>}
          </dd>
          <dt>Assignee</dt>
          <dd>{c.assigneeId ? directory.agentName(c.assigneeId) : <span className="muted">Unassigned</span>}</dd>
          <dt>Team</dt>
          <dd>{c.teamId ? directory.teamName(c.teamId) : <span className="muted">None</span>}</dd>
          <dt>Inbox</dt>
          <dd>
            {inbox?.name ?? "…"} <span className="muted">· {CHANNELS[c.channelKind] ?? "Other"}</span>
          </dd>
          <dt>Started</dt>
          <dd>{clock(c.createTime)}</dd>
          {c.csatRating > 0 && <Fact label="Rating">{c.csatRating} / 5</Fact>}
        </dl>
        <PriorityField conversation={c} onChanged={onChanged} />
        <LabelsField conversation={c} onChanged={onChanged} />
        {conversationAttributes.length > 0 && <Attributes entries={conversationAttributes} />}
      </Section>

      <LinkedTickets conversationId={c.id} />

      {contact?.device && hasDevice(contact.device) && (
        <Section title="Device">
          <Device device={contact.device} />
        </Section>
      )}

      {contact && (contactAttributes.length > 0 || contact.externalId) && (
        <Section title="Contact attributes">
          {contact.externalId && (
            <dl className="cp-facts">
              <dt>External id</dt>
              <dd className="cp-mono">{contact.externalId}</dd>
            </dl>
          )}
          {contactAttributes.length > 0 && <Attributes entries={contactAttributes} />}
        </Section>
      )}

      <PreviousConversations conversation={c} />
    </aside>
  );
}

function Section({ title, children, count }: { title: string; children: React.ReactNode; count?: number }) {
  return (
    <details className="cp-section" open>
      <summary>
        {title}
        {count !== undefined && <span className="cp-count">{count}</span>}
      </summary>
      <div className="cp-section-body">{children}</div>
    </details>
  );
}

function Attributes({ entries }: { entries: [string, string][] }) {
  return (
    <dl className="cp-facts cp-attrs">
      {entries
        .sort(([a], [b]) => a.localeCompare(b))
        .map(([k, v]) => (
          <div key={k} className="cp-attr">
            <dt title={k}>{humanize(k)}</dt>
            <dd>{v}</dd>
          </div>
        ))}
    </dl>
  );
}

function hasDevice(d: DeviceInfo): boolean {
  return !!(d.os || d.appVersion || d.networkType || d.currentPage || d.userAgent || d.locale);
}

function Device({ device: d }: { device: DeviceInfo }) {
  return (
    <dl className="cp-facts" data-testid="contact-device">
      {d.os && <Fact label="System">{d.os}</Fact>}
      {d.appVersion && <Fact label="App version">{d.appVersion}</Fact>}
      {d.networkType && <Fact label="Network">{d.networkType}</Fact>}
      {d.locale && <Fact label="Language">{d.locale}</Fact>}
      {d.currentPage && (
        <Fact label="Page" className="cp-break">
          {/^https?:\/\//.test(d.currentPage) ? (
            <a href={d.currentPage} target="_blank" rel="noreferrer">
              {d.currentPage}
            </a>
          ) : (
            d.currentPage
          )}
        </Fact>
      )}
      {d.userAgent && (
        <Fact label="Browser" className="cp-break cp-small" title={d.userAgent}>
          {d.userAgent}
        </Fact>
      )}
    </dl>
  );
}

function PriorityField({ conversation: c, onChanged }: { conversation: Conversation; onChanged: (c: Conversation) => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  return (
    <label className="cp-field">
      <span>Priority</span>
      <select
        data-testid="priority-select"
        value={c.priority}
        disabled={busy}
        onChange={(e) =>
          void act(async () =>
            onChanged(
              await clients.conversation.updateConversation({
                conversation: { id: c.id, priority: Number(e.target.value) },
                updateMask: { paths: ["priority"] },
              }),
            ),
          )
        }
      >
        <Options of={PRIORITIES} />
      </select>
      <ErrorLine error={error} />
    </label>
  );
}

function LabelsField({ conversation: c, onChanged }: { conversation: Conversation; onChanged: (c: Conversation) => void }) {
  const { clients } = useWorkbench();
  const [text, setText] = useState("");
  const [act, error, busy] = useAction();
  const save = (labels: string[]) =>
    act(async () =>
      onChanged(
        await clients.conversation.updateConversation({
          conversation: { id: c.id, labels },
          updateMask: { paths: ["labels"] },
        }),
      ),
    );
  const add = async () => {
    const more = text
      .split(/[\s,]+/)
      .map((l) => l.trim().toLowerCase())
      .filter(Boolean);
    if (!more.length) return;
    if (await save([...new Set([...c.labels, ...more])])) setText("");
  };
  return (
    <div className="cp-field">
      <span>Labels</span>
      <div className="cp-labels">
        {c.labels.map((l) => (
          <span key={l} className="ch-label cp-chip" data-testid="label-chip">
            {l}
            <button aria-label={`Remove label ${l}`} disabled={busy} onClick={() => void save(c.labels.filter((x) => x !== l))}>
              ×
            </button>
          </span>
        ))}
        <input
          data-testid="label-input"
          placeholder={c.labels.length ? "Add…" : "Add a label…"}
          value={text}
          disabled={busy}
          onChange={(e) => setText(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" || e.key === ",") {
              e.preventDefault();
              void add();
            }
          }}
          onBlur={() => text.trim() && void add()}
        />
      </div>
      <ErrorLine error={error} />
    </div>
  );
}

/** Linked tickets shown at most. */
const LINKED_SHOWN = 20;

/** The newest first. */
function byCreatedDesc(a: Ticket, b: Ticket): number {
  const x = a.createTime?.seconds ?? 0n;
  const y = b.createTime?.seconds ?? 0n;
  return x > y ? -1 : x < y ? 1 : 0;
}

/** The tickets of `held` updated with `more`: those linked to the conversation, newest first. */
function linkedOnly(conversationId: string, held: Ticket[], more: Ticket[]): Ticket[] {
  const byId = new Map(held.map((t) => [t.id, t]));
  for (const t of more) byId.set(t.id, latestTicket(byId.get(t.id), t));
  return [...byId.values()]
    .filter((t) => t.conversationIds.includes(conversationId))
    .sort(byCreatedDesc)
    .slice(0, LINKED_SHOWN);
}

/** The tickets made from or linked to the conversation, as they change. */
function LinkedTickets({ conversationId }: { conversationId: string }) {
  const { clients } = useWorkbench();
  const [shownFor, setShownFor] = useState(conversationId);
  const [tickets, setTickets] = useState<Ticket[]>();
  const [error, setError] = useState<string>();
  const heard = useRef(new HeardTickets());
  const reads = useRef(0);
  if (shownFor !== conversationId) {
    setShownFor(conversationId);
    setTickets(undefined);
    setError(undefined);
  }

  const read = async () => {
    const n = ++reads.current;
    const mark = heard.current.mark();
    try {
      const res = await clients.ticketing.listTickets({ conversationId, orderBy: "-created", pageSize: LINKED_SHOWN });
      if (n !== reads.current) return;
      // What was heard while reading is newer than the answer when its update time says so.
      setTickets(linkedOnly(conversationId, res.tickets, heard.current.all()));
      heard.current.settled(mark);
      setError(undefined);
    } catch (err) {
      if (n === reads.current) setError(describe(err));
    }
  };
  useEffect(() => {
    heard.current.clear();
    void read();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, conversationId]);

  const streamError = useTicketChanges({
    item: ({ ticket: t }) => {
      // SLA notices carry no ticket, and change nothing shown here.
      if (!t || !(t.conversationIds.includes(conversationId) || tickets?.some((x) => x.id === t.id) || heard.current.has(t.id))) return;
      heard.current.put(t);
      setTickets((held) => held && linkedOnly(conversationId, held, [t]));
    },
    ready: () => void read(),
  });

  return (
    <Section title="Linked tickets" count={tickets?.length}>
      <ErrorLine error={error ?? (streamError && `Live updates stopped: ${streamError}`)} />
      {tickets?.length === 0 && <p className="muted cp-none">No tickets yet.</p>}
      <ul className="cp-links">
        {tickets?.map((t) => (
          <li key={t.id}>
            <a href={`#/tickets/${t.id}`} data-testid="linked-ticket" data-id={t.id}>
              <span className="cp-ticket-no">#{String(t.number)}</span>
              <span className="cp-ticket-subject">{t.subject}</span>
            </a>
            <span className={`cp-ticket-status cp-tc${t.statusCategory}`}>{t.statusLabel || t.status}</span>
          </li>
        ))}
      </ul>
    </Section>
  );
}

function PreviousConversations({ conversation: c }: { conversation: Conversation }) {
  const { clients } = useWorkbench();
  const [items, setItems] = useState<Conversation[]>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    let live = true;
    setItems(undefined);
    clients.conversation.listConversations({ contactId: c.contactId, pageSize: 11 }).then(
      (r) => live && setItems(r.conversations.filter((x) => x.id !== c.id).slice(0, 10)),
      (err) => live && setError(describe(err)),
    );
    return () => {
      live = false;
    };
  }, [clients, c.contactId, c.id]);
  return (
    <Section title="Previous conversations" count={items?.length}>
      <ErrorLine error={error} />
      {items?.length === 0 && <p className="muted cp-none">This is the customer's first conversation.</p>}
      <ul className="cp-links">
        {items?.map((p) => (
          <li key={p.id}>
            <a href={`#/conversations/${p.id}`} data-testid="previous-conversation">
              <span>{clock(p.createTime)}</span>
              {p.labels.length > 0 && <span className="muted"> · {p.labels.join(", ")}</span>}
            </a>
            <span className={`ch-status ch-s${p.status}`}>{statusLabel(p.status)}</span>
          </li>
        ))}
      </ul>
    </Section>
  );
}
