// One ticket: its thread (request, replies, notes), the chat it came from, its
// properties, SLA clocks and history, kept current by the account's ticket stream:
// changed fields and new comments show as they happen, the history is read again
// after each change, and the ticket itself after an SLA warning or breach.

import { useEffect, useRef, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Comment, Status, Ticket, TicketEvent, Transcript } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { StatusCategory, TicketSchema, TicketSource } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { readAll, type Clients } from "../../lib/client";
import { describe } from "../../lib/errors";
import { newId } from "../../lib/ids";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { Empty, ErrorLine, Fact, Options, useAction, useDebounced } from "../ui";
import { agentChoices, type Directory, teamChoices, useDirectory } from "../admin/directory";
import { ago, Card, ChipsInput, FormErrors, fullTime, MissingItem } from "../admin/forms";
import { latestTicket, useTicketChanges } from "./live";
import {
  actorName,
  categoryName,
  isDone,
  PRIORITIES,
  PriorityLabel,
  SlaClock,
  solvedStatus,
  statusChoices,
  sourceName,
  StatusBadge,
  TYPES,
  typeName,
} from "./model";

interface Loaded {
  ticket: Ticket;
  comments: Comment[];
  events: TicketEvent[];
  transcript?: Transcript;
}

type Ticketing = Clients["ticketing"];

/** Every comment of a ticket, oldest first. */
function allComments(ticketing: Ticketing, ticketId: string): Promise<Comment[]> {
  return readAll((pageToken) => ticketing.listComments({ ticketId, pageSize: 100, pageToken }), (r) => r.comments);
}

/** Every recorded change of a ticket, oldest first. */
function allEvents(ticketing: Ticketing, ticketId: string): Promise<TicketEvent[]> {
  return readAll((pageToken) => ticketing.listTicketEvents({ ticketId, pageSize: 100, pageToken }), (r) => r.events);
}

/** The chat a ticket was made from, if it has one. */
function readTranscript(ticketing: Ticketing, ticket: Ticket): Promise<Transcript | undefined> {
  if (ticket.source !== TicketSource.CHAT && ticket.conversationIds.length === 0) return Promise.resolve(undefined);
  return ticketing.getTranscript({ ticketId: ticket.id }).catch((err) => {
    const code = ConnectError.from(err).code;
    if (code === Code.NotFound || code === Code.FailedPrecondition) return undefined;
    throw err;
  });
}

/** Comments with `more` added: each once, oldest first. */
function withComments(held: Comment[], more: Comment[]): Comment[] {
  const known = new Set(held.map((c) => c.id));
  const fresh = more.filter((c) => !known.has(c.id));
  if (!fresh.length) return held;
  const time = (c: Comment) => (c.createTime ? timestampDate(c.createTime).getTime() : 0);
  return [...held, ...fresh].sort((a, b) => time(a) - time(b));
}

/** The detail page of one ticket. */
export function TicketDetail({ id, statuses }: { id: string; statuses: Status[] }) {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const [data, setData] = useState<Loaded>();
  const [error, setError] = useState<string>();
  // Each read of the ticket is numbered: an answer overtaken by a later read is dropped.
  const reads = useRef(0);
  // Bumped to read everything again (the stream opened before the first read answered).
  const [loads, setLoads] = useState(0);

  useEffect(() => {
    const n = ++reads.current;
    setError(undefined);
    (async () => {
      const ticket = await clients.ticketing.getTicket({ id });
      const [comments, events, transcript] = await Promise.all([
        allComments(clients.ticketing, id),
        allEvents(clients.ticketing, id),
        readTranscript(clients.ticketing, ticket),
      ]);
      return { ticket, comments, events, transcript };
    })().then(
      (loaded) => n === reads.current && setData(loaded),
      (err) => n === reads.current && setError(describe(err)),
    );
  }, [clients, id, loads]);

  /** Reads the ticket, its comments and history again (the transcript does not change). */
  const refresh = async () => {
    const n = ++reads.current;
    try {
      const [ticket, comments, events] = await Promise.all([
        clients.ticketing.getTicket({ id }),
        allComments(clients.ticketing, id),
        allEvents(clients.ticketing, id),
      ]);
      if (n !== reads.current) return;
      setData((d) =>
        d
          ? { ...d, ticket: latestTicket(d.ticket, ticket), comments: withComments(d.comments, comments), events }
          : undefined,
      );
      setError(undefined);
    } catch (err) {
      if (n === reads.current) setError(describe(err));
    }
  };

  const showTicket = (t: Ticket) => setData((d) => d && { ...d, ticket: latestTicket(d.ticket, t) });
  const showComment = (c: Comment) => setData((d) => d && { ...d, comments: withComments(d.comments, [c]) });
  const rereadHistory = useDebounced(() => {
    allEvents(clients.ticketing, id).then(
      (events) => setData((d) => d && { ...d, events }),
      (err) => setError(describe(err)),
    );
  }, 300);

  const streamError = useTicketChanges({
    item: (n) => {
      if (n.ticketId !== id) return;
      if (n.event.startsWith("sla.")) {
        clients.ticketing.getTicket({ id }).then(showTicket, (err) => setError(describe(err)));
      } else if (n.event === "ticket.merged") {
        // Merging moves conversations, tags and followers and adds notes: read it all.
        void refresh();
      } else {
        if (n.ticket) showTicket(n.ticket);
        if (n.comment) showComment(n.comment);
        rereadHistory();
      }
    },
    ready: () => (data ? void refresh() : setLoads((l) => l + 1)),
  });

  const problem = error ?? (streamError && `Live updates stopped: ${streamError}`);
  if (!data) return <MissingItem back={{ href: "#/tickets", label: "Tickets" }} loading={!problem} error={problem} loadingText="Loading ticket…" />;
  return (
    <TicketView
      data={data}
      statuses={statuses}
      dir={dir}
      refresh={() => void refresh()}
      onTicket={(t) => {
        showTicket(t);
        rereadHistory();
      }}
      onComment={showComment}
      loadError={problem}
    />
  );
}

function TicketView(props: {
  data: Loaded;
  statuses: Status[];
  dir: Directory;
  /** Reads the ticket again. */
  refresh: () => void;
  /** The ticket as a change made here left it. */
  onTicket: (t: Ticket) => void;
  /** A comment written here. */
  onComment: (c: Comment) => void;
  loadError?: string;
}) {
  const { clients } = useWorkbench();
  const { ticket, comments, events, transcript } = props.data;
  const { dir, statuses } = props;
  const [act, error, busy] = useAction();
  const solved = solvedStatus(statuses);

  /** Changes the named fields, refusing to overwrite a change made meanwhile. */
  const update = (patch: Omit<MessageInitShape<typeof TicketSchema>, "$typeName">, paths: string[]) =>
    act(async () => {
      try {
        props.onTicket(
          await clients.ticketing.updateTicket({
            ticket: { id: ticket.id, ...patch },
            updateMask: { paths },
            etag: ticket.etag,
          }),
        );
      } catch (err) {
        if (ConnectError.from(err).code === Code.Aborted) {
          props.refresh();
          throw new Error("Someone changed this ticket meanwhile; it has been reloaded. Make your change again.");
        }
        throw err;
      }
    });

  const requesterName = ticket.requester?.name || ticket.requester?.email || "";
  const created = toDate(ticket.createTime);
  // A status the ticket has that the account no longer lists still shows.
  const statusOptions = statusChoices(statuses);
  if (!statuses.some((s) => s.key === ticket.status)) statusOptions.push([ticket.status, ticket.statusLabel || ticket.status]);

  return (
    <div className="hk-page tk-detail-page">
      <a className="hk-back" href="#/tickets">
        ← Tickets
      </a>
      <div className="tk-title">
        <div className="tk-title-main">
          <div className="tk-title-meta">
            <span className="tk-number">#{String(ticket.number)}</span>
            <StatusBadge category={ticket.statusCategory} label={ticket.statusLabel || ticket.status} testId="ticket-status" />
            <PriorityLabel priority={ticket.priority} />
            <span className="hk-muted hk-small">
              {sourceName(ticket.source)} · opened {ago(created)}
              {requesterName && ` by ${requesterName}`}
            </span>
          </div>
          <h2 data-testid="ticket-subject">{ticket.subject}</h2>
        </div>
        <div className="hk-actions">
          <button onClick={props.refresh} className="ghost" title="Read the ticket again">
            Refresh
          </button>
          <button
            className="primary"
            data-testid="ticket-solve"
            disabled={busy || !solved || isDone(ticket)}
            title={solved ? `Set the status to “${solved.label}”` : "The account has no solved status"}
            onClick={() => solved && update({ status: solved.key }, ["status"])}
          >
            {ticket.statusCategory === StatusCategory.SOLVED ? "Solved" : `Solve`}
          </button>
        </div>
      </div>
      <ErrorLine error={props.loadError} />
      <FormErrors error={error} />
      {ticket.mergedIntoId && (
        <p className="hk-note warn">
          Merged into <a href={`#/tickets/${ticket.mergedIntoId}`}>another ticket</a>; it is closed.
        </p>
      )}

      <div className="tk-detail">
        <div className="tk-main">
          <Thread ticket={ticket} comments={comments} dir={dir} requesterName={requesterName} />
          <Composer ticket={ticket} onSent={props.onComment} />
          {transcript && <TranscriptCard transcript={transcript} dir={dir} requesterName={requesterName} />}
          <History events={events} dir={dir} statuses={statuses} requesterName={requesterName} />
        </div>

        <aside className="tk-side">
          <Card title="Properties">
            <div className="tk-props">
              <label>Status</label>
              <select
                data-testid="ticket-status-select"
                value={ticket.status}
                disabled={busy || ticket.statusCategory === StatusCategory.CLOSED}
                onChange={(e) => update({ status: e.target.value }, ["status"])}
              >
                <Options of={statusOptions} />
              </select>
              <label>Priority</label>
              <select
                data-testid="ticket-priority-select"
                value={ticket.priority}
                disabled={busy}
                onChange={(e) => update({ priority: Number(e.target.value) }, ["priority"])}
              >
                <Options of={PRIORITIES} />
              </select>
              <label>Type</label>
              <select value={ticket.type} disabled={busy} onChange={(e) => update({ type: Number(e.target.value) }, ["type"])}>
                {!TYPES.some(([t]) => t === ticket.type) && <option value={ticket.type}>{typeName(ticket.type)}</option>}
                <Options of={TYPES} />
              </select>
              <label>Assignee</label>
              <select
                data-testid="ticket-assignee-select"
                value={ticket.assigneeId}
                disabled={busy}
                onChange={(e) => update({ assigneeId: e.target.value }, ["assignee_id"])}
              >
                <option value="">Unassigned</option>
                {ticket.assigneeId && !dir.agents.some((a) => a.id === ticket.assigneeId) && (
                  <option value={ticket.assigneeId}>{ticket.assigneeId}</option>
                )}
                <Options of={agentChoices(dir.agents)} />
              </select>
              <label>Team</label>
              <select value={ticket.groupId} disabled={busy} onChange={(e) => update({ groupId: e.target.value }, ["group_id"])}>
                <option value="">No team</option>
                <Options of={teamChoices(dir.teams)} />
              </select>
              <label>Category</label>
              <CategoryInput value={ticket.category} onSave={(category) => update({ category }, ["category"])} />
              <label>Tags</label>
              <ChipsInput
                value={ticket.tags}
                placeholder="Add a tag"
                normalize={(s) => s.toLowerCase().replace(/\s+/g, "-")}
                onChange={(tags) => update({ tags }, ["tags"])}
              />
            </div>
          </Card>

          <Card title="SLA" sub={ticket.slaPolicyId ? undefined : "no policy applies"}>
            {ticket.sla.length === 0 ? (
              <p className="hk-muted hk-small" style={{ margin: 0 }}>
                No SLA targets run for this ticket.
              </p>
            ) : (
              <div className="tk-slas">
                {ticket.sla.map((t, i) => (
                  <SlaClock key={`${t.metric}-${i}`} target={t} />
                ))}
              </div>
            )}
          </Card>

          <RequesterCard ticket={ticket} />

          {ticket.device && Object.values(ticket.device).some((v) => typeof v === "string" && v) && (
            <Card title="Device">
              <dl className="tk-dl">
                {ticket.device.os && <Row label="OS" value={ticket.device.os} />}
                {ticket.device.appVersion && <Row label="App version" value={ticket.device.appVersion} />}
                {ticket.device.networkType && <Row label="Network" value={ticket.device.networkType} />}
                {ticket.device.locale && <Row label="Locale" value={ticket.device.locale} />}
                {ticket.device.currentPage && <Row label="Page" value={ticket.device.currentPage} />}
                {ticket.device.userAgent && <Row label="Browser" value={ticket.device.userAgent} />}
              </dl>
            </Card>
          )}

          <Card title="Details">
            <dl className="tk-dl">
              <Row label="Status category" value={categoryName(ticket.statusCategory)} />
              <Row label="Customer sees" value={ticket.externalStatusLabel} />
              <Row label="Source" value={sourceName(ticket.source)} />
              <Row label="Created" value={fullTime(created)} />
              {ticket.updateTime && <Row label="Updated" value={fullTime(timestampDate(ticket.updateTime))} />}
              {ticket.solveTime && <Row label="Solved" value={fullTime(timestampDate(ticket.solveTime))} />}
              {ticket.dueTime && <Row label="Due" value={fullTime(timestampDate(ticket.dueTime))} />}
              {ticket.followerIds.length > 0 && (
                <Row label="Followers" value={ticket.followerIds.map((f) => dir.agentName(f)).join(", ")} />
              )}
              {Object.entries(ticket.customFields).map(([k, v]) => (
                <Row key={k} label={k} value={v} />
              ))}
            </dl>
          </Card>
        </aside>
      </div>
    </div>
  );
}

/** A detail of the ticket, "—" when empty. */
function Row({ label, value }: { label: string; value: React.ReactNode }) {
  return <Fact label={label}>{value || <span className="hk-muted">—</span>}</Fact>;
}

/** A text field saved when it loses focus or on Enter. */
function CategoryInput({ value, onSave }: { value: string; onSave: (v: string) => void }) {
  const [text, setText] = useState(value);
  const [base, setBase] = useState(value);
  if (base !== value) {
    setBase(value);
    setText(value);
  }
  const save = () => text.trim() !== value && onSave(text.trim());
  return (
    <input
      value={text}
      maxLength={100}
      placeholder="e.g. billing"
      onChange={(e) => setText(e.target.value)}
      onBlur={save}
      onKeyDown={(e) => e.key === "Enter" && save()}
    />
  );
}

function RequesterCard({ ticket }: { ticket: Ticket }) {
  const r = ticket.requester;
  return (
    <Card title="Requester">
      {!r || !(r.name || r.email || r.phone || r.contactId) ? (
        <p className="hk-muted hk-small" style={{ margin: 0 }}>
          No requester: public replies reach nobody outside.
        </p>
      ) : (
        <div className="tk-requester">
          <div className="tk-avatar">{(r.name || r.email || "?").slice(0, 1).toUpperCase()}</div>
          <div>
            <div className="strong">{r.name || r.email || "Unnamed customer"}</div>
            {r.email && <div className="hk-small">{r.email}</div>}
            {r.phone && <div className="hk-small">{r.phone}</div>}
            {r.externalId && <div className="hk-small hk-muted">External id {r.externalId}</div>}
          </div>
        </div>
      )}
      {ticket.conversationIds.length > 0 && (
        <div className="tk-convs">
          <div className="hk-small hk-muted">Conversations</div>
          {ticket.conversationIds.map((c) => (
            <a key={c} href={`#/conversations/${c}`} data-testid="ticket-conversation-link">
              Open chat {c.slice(0, 8)}…
            </a>
          ))}
        </div>
      )}
    </Card>
  );
}

/** The request, then every reply and note, oldest first. */
function Thread(props: { ticket: Ticket; comments: Comment[]; dir: Directory; requesterName: string }) {
  const { ticket, comments, dir } = props;
  const created = toDate(ticket.createTime);
  return (
    <div className="tk-thread">
      <article className="tk-msg from-customer">
        <header>
          <span className="tk-avatar small">{(props.requesterName || "?").slice(0, 1).toUpperCase()}</span>
          <strong>{props.requesterName || "Request"}</strong>
          <span className="hk-muted hk-small" title={fullTime(created)}>
            {ago(created)}
          </span>
        </header>
        <div className="tk-body">{ticket.description || <span className="hk-muted">No description.</span>}</div>
      </article>
      {comments.map((c) => {
        const when = toDate(c.createTime);
        const who = actorName(c.author, dir, props.requesterName);
        return (
          <article
            key={c.id}
            className={`tk-msg ${c.public ? "public" : "internal"}`}
            data-testid="ticket-comment"
            data-public={c.public ? "true" : "false"}
          >
            <header>
              <span className="tk-avatar small">{who.slice(0, 1).toUpperCase()}</span>
              <strong>{who}</strong>
              <span className={`hk-pill ${c.public ? "info" : "warn"}`}>{c.public ? "Public reply" : "Internal note"}</span>
              <span className="hk-muted hk-small" title={fullTime(when)}>
                {ago(when)}
              </span>
            </header>
            <div className="tk-body">{c.body}</div>
            {c.attachments.length > 0 && (
              <ul className="tk-attachments">
                {c.attachments.map((a, i) => (
                  <li key={i}>
                    <a href={a.url} target="_blank" rel="noreferrer">
                      {a.name}
                    </a>
                  </li>
                ))}
              </ul>
            )}
          </article>
        );
      })}
    </div>
  );
}

/** Writes a public reply or an internal note. */
function Composer({ ticket, onSent }: { ticket: Ticket; onSent: (c: Comment) => void }) {
  const { clients } = useWorkbench();
  const [body, setBody] = useState("");
  const [isPublic, setPublic] = useState(true);
  const [cid, setCid] = useState(newId);
  const [act, error, busy] = useAction();
  const closed = ticket.statusCategory === StatusCategory.CLOSED;
  const send = () => {
    if (!body.trim() || busy) return;
    act(async () => {
      const comment = await clients.ticketing.addComment({ ticketId: ticket.id, body: body.trim(), public: isPublic, clientCommentId: cid });
      setBody("");
      setCid(newId());
      onSent(comment);
    });
  };
  return (
    <div className={`tk-composer ${isPublic ? "public" : "internal"}`}>
      <div className="tk-composer-tabs">
        <label className={`hk-check ${isPublic ? "on" : ""}`}>
          <input
            type="checkbox"
            data-testid="ticket-comment-public"
            checked={isPublic}
            onChange={(e) => setPublic(e.target.checked)}
          />
          Public reply
        </label>
        <span className="hk-small hk-muted">
          {isPublic
            ? ticket.conversationIds.length
              ? "The customer reads it in their chat (and by email when they have one)."
              : "The customer is sent this reply."
            : "Internal note: only staff see it."}
        </span>
      </div>
      <textarea
        data-testid="ticket-comment-input"
        rows={4}
        disabled={closed}
        placeholder={closed ? "A closed ticket takes no more comments." : isPublic ? "Write a reply…" : "Write a note for your team…"}
        value={body}
        onChange={(e) => setBody(e.target.value)}
        onKeyDown={(e) => {
          if (e.key === "Enter" && (e.metaKey || e.ctrlKey)) send();
        }}
      />
      <div className="tk-composer-foot">
        <ErrorLine error={error} />
        <span className="hk-small hk-muted">Ctrl+Enter to send</span>
        <button className="primary" data-testid="ticket-comment-send" disabled={busy || !body.trim() || closed} onClick={send}>
          {busy ? "Sending…" : isPublic ? "Send reply" : "Add note"}
        </button>
      </div>
    </div>
  );
}

/** The chat the ticket was made from, as it was then. */
function TranscriptCard(props: { transcript: Transcript; dir: Directory; requesterName: string }) {
  const { transcript, dir } = props;
  const [open, setOpen] = useState(true);
  return (
    <Card
      title="Chat transcript"
      sub={`${transcript.lines.length} message${transcript.lines.length === 1 ? "" : "s"}${transcript.truncated ? " (first ones kept)" : ""}`}
      actions={
        <>
          <a href={`#/conversations/${transcript.conversationId}`} className="hk-small">
            Open conversation
          </a>
          <button className="ghost small" onClick={() => setOpen(!open)}>
            {open ? "Hide" : "Show"}
          </button>
        </>
      }
    >
      {open && (
        <div className="tk-transcript" data-testid="ticket-transcript">
          {transcript.lines.length === 0 && <Empty>The chat had no messages.</Empty>}
          {transcript.lines.map((l) => {
            const when = toDate(l.time);
            if (l.kind === "activity")
              return (
                <div key={String(l.sequence)} className="tk-line activity">
                  {l.content}
                </div>
              );
            return (
              <div key={String(l.sequence)} className={`tk-line ${l.kind}${l.internal ? " note" : ""}`}>
                <div className="tk-line-head">
                  <strong>{actorName(l.sender, dir, props.requesterName)}</strong>
                  {(l.internal || l.kind === "note") && <span className="hk-pill warn">Private note</span>}
                  <span className="hk-muted">{when?.toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</span>
                </div>
                <div className="tk-line-body">{l.content}</div>
                {l.attachments.map((a, i) => (
                  <a key={i} href={a.url} target="_blank" rel="noreferrer" className="hk-small">
                    📎 {a.name}
                  </a>
                ))}
              </div>
            );
          })}
        </div>
      )}
    </Card>
  );
}

const FIELD_NAMES: Record<string, string> = {
  status: "Status",
  priority: "Priority",
  type: "Type",
  assignee_id: "Assignee",
  group_id: "Team",
  subject: "Subject",
  description: "Description",
  category: "Category",
  tags: "Tags",
  custom_fields: "Custom fields",
  due_time: "Due",
  follower_ids: "Followers",
  requester: "Requester",
  conversation_ids: "Conversations",
};

const EVENT_VERBS: Record<string, string> = {
  created: "created the ticket",
  updated: "changed",
  commented: "commented",
  replied: "replied publicly",
  noted: "added an internal note",
  merged: "merged tickets",
};

/** Who changed what, when, newest first. */
function History(props: { events: TicketEvent[]; dir: Directory; statuses: Status[]; requesterName: string }) {
  const { dir, statuses } = props;
  const [all, setAll] = useState(false);
  const events = [...props.events].reverse();
  const shown = all ? events : events.slice(0, 8);
  const value = (field: string, v: string) => {
    if (!v) return "—";
    if (field === "status") return statuses.find((s) => s.key === v)?.label ?? v;
    if (field === "assignee_id") return dir.agentName(v);
    if (field === "group_id") return dir.teamName(v);
    return v.replace(/^TICKET_(PRIORITY|TYPE)_/, "").toLowerCase();
  };
  return (
    <Card title="History" sub={`${props.events.length} event${props.events.length === 1 ? "" : "s"}`}>
      {events.length === 0 ? (
        <p className="hk-muted hk-small" style={{ margin: 0 }}>
          Nothing recorded yet.
        </p>
      ) : (
        <ol className="tk-history" data-testid="ticket-history">
          {shown.map((e) => {
            const when = toDate(e.time);
            return (
              <li key={e.id}>
                <span className="tk-history-dot" />
                <div>
                  <strong>{actorName(e.actor, dir, props.requesterName)}</strong> {EVENT_VERBS[e.kind] ?? e.kind}
                  <span className="hk-muted hk-small" title={fullTime(when)}>
                    {" "}
                    · {ago(when)}
                  </span>
                  {e.changes.length > 0 && e.kind !== "created" && (
                    <ul>
                      {e.changes.map((c, i) => (
                        <li key={i}>
                          {FIELD_NAMES[c.field] ?? c.field}: <span className="tk-from">{value(c.field, c.from)}</span> →{" "}
                          <strong>{value(c.field, c.to)}</strong>
                        </li>
                      ))}
                    </ul>
                  )}
                </div>
              </li>
            );
          })}
        </ol>
      )}
      {events.length > 8 && (
        <button className="link hk-small" onClick={() => setAll(!all)}>
          {all ? "Show fewer" : `Show all ${events.length}`}
        </button>
      )}
    </Card>
  );
}
