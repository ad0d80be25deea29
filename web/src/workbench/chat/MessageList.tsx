// A conversation's timeline: customer and agent messages, private notes, and the
// platform's activity lines, with day separators, a way to read earlier messages,
// and the customer's typing indicator.

import { Fragment, useLayoutEffect, useRef } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ActivityType, MessageKind, type Message } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { ActorKind } from "../../gen/helpdesk/common/v1/meta_pb";
import { useWorkbench } from "../context";
import { authorOf } from "./format";
import { useSessionDirectory, type SessionDirectory } from "./directory";
import { LockIcon, PaperclipIcon } from "./icons";

/** A message being sent: shown until the platform has it. */
export interface Outgoing {
  clientMessageId: string;
  content: string;
  note: boolean;
  error?: string;
}

function dayOf(m: Message): string {
  return m.createTime ? timestampDate(m.createTime).toDateString() : "";
}

function dayLabel(m: Message): string {
  if (!m.createTime) return "";
  const d = timestampDate(m.createTime);
  const today = new Date();
  const yesterday = new Date(Date.now() - 86_400_000);
  if (d.toDateString() === today.toDateString()) return "Today";
  if (d.toDateString() === yesterday.toDateString()) return "Yesterday";
  return d.toLocaleDateString([], { weekday: "long", day: "numeric", month: "long" });
}

function timeOf(m: Message): string {
  return m.createTime ? timestampDate(m.createTime).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" }) : "";
}

/** A note's text with its @mentions of known agents marked. */
function withMentions(text: string, directory: SessionDirectory) {
  const parts = text.split(/((?:^|(?<=[^\p{L}\p{N}.]))@[\p{L}\p{N}._-]*[\p{L}\p{N}_])/u);
  return parts.map((p, i) => {
    if (!p.startsWith("@")) return <Fragment key={i}>{p}</Fragment>;
    const handle = p.slice(1).toLowerCase();
    const agent = directory.agents.find(
      (a) => a.id.toLowerCase() === handle || a.name.replace(/\s+/g, "").toLowerCase() === handle,
    );
    return agent ? (
      <span key={i} className="mg-mention" title={agent.name || agent.id}>
        {p}
      </span>
    ) : (
      <Fragment key={i}>{p}</Fragment>
    );
  });
}

/** The timeline; scrolls to the newest message, and keeps its place when earlier ones appear. */
export function MessageList({
  messages,
  hasEarlier,
  earlier,
  pending,
  customerTyping,
  customerName,
  onEarlier,
  onRetry,
}: {
  messages: Message[];
  /** Older messages remain to be read. */
  hasEarlier: boolean;
  /** How the read of earlier messages goes. */
  earlier: { loading: boolean; error?: string };
  pending: Outgoing[];
  customerTyping: boolean;
  customerName: string;
  onEarlier: () => void;
  onRetry: (o: Outgoing) => void;
}) {
  const { clients, me } = useWorkbench();
  const directory = useSessionDirectory(clients);
  const box = useRef<HTMLDivElement>(null);
  const prev = useRef({ first: "", last: "", height: 0 });

  // New messages at the bottom scroll into view when the agent was near it (or sent
  // them); earlier ones added at the top keep what the agent was reading in place.
  useLayoutEffect(() => {
    const el = box.current;
    if (!el) return;
    const first = messages[0]?.id ?? "";
    const last = (messages[messages.length - 1]?.id ?? "") + pending.length + (customerTyping ? "t" : "");
    const p = prev.current;
    if (p.first && first !== p.first && last === p.last) {
      el.scrollTop += el.scrollHeight - p.height;
    } else if (last !== p.last) {
      const nearBottom = el.scrollHeight - el.clientHeight - el.scrollTop < 160 + (el.scrollHeight - p.height);
      const mine = messages[messages.length - 1]?.sender?.id === me;
      if (!p.last || nearBottom || mine || pending.length) el.scrollTop = el.scrollHeight;
    }
    prev.current = { first, last, height: el.scrollHeight };
  }, [messages, pending, customerTyping, me, hasEarlier, earlier]);

  let lastDay = "";
  let lastSender = "";
  return (
    <div
      className="mg-list"
      ref={box}
      data-testid="chat-messages"
      onScroll={(e) => {
        if (hasEarlier && !earlier.loading && !earlier.error && e.currentTarget.scrollTop < 40) onEarlier();
      }}
    >
      {hasEarlier && (
        <div className="mg-earlier">
          <button data-testid="load-earlier" disabled={earlier.loading} onClick={onEarlier}>
            {earlier.loading ? "Loading earlier messages…" : "Load earlier messages"}
          </button>
          {earlier.error && (
            <p className="error" role="alert">
              {earlier.error}
            </p>
          )}
        </div>
      )}
      {messages.map((m) => {
        const day = dayOf(m);
        const separator = day !== lastDay ? <div className="mg-day">{dayLabel(m)}</div> : null;
        lastDay = day;
        const author = authorOf(m);
        const note = m.kind === MessageKind.NOTE;
        const senderKey = `${m.kind === MessageKind.INCOMING ? "in" : "out"}:${m.sender?.kind}:${m.sender?.id}`;
        const showName = !!separator || senderKey !== lastSender || note;
        lastSender = m.kind === MessageKind.ACTIVITY ? "" : senderKey;
        if (m.kind === MessageKind.NOTE && m.activity !== ActivityType.UNSPECIFIED) {
          // A platform line for staff only (a transfer's note, a bot's handoff summary).
          return (
            <Fragment key={m.id}>
              {separator}
              <div className="mg-event" data-testid="chat-message" data-author={author} data-private="true" data-id={m.id}>
                <LockIcon size={12} />
                <span className="mg-text">{m.content}</span>
                <time>{timeOf(m)}</time>
              </div>
            </Fragment>
          );
        }
        if (m.kind === MessageKind.ACTIVITY) {
          return (
            <Fragment key={m.id}>
              {separator}
              <div className="mg-activity" data-testid="chat-message" data-author="system" data-private="false" data-id={m.id}>
                <span>{m.content}</span>
                <time>{timeOf(m)}</time>
              </div>
            </Fragment>
          );
        }
        const side = m.kind === MessageKind.INCOMING ? "mg-in" : "mg-out";
        const who =
          m.kind === MessageKind.INCOMING
            ? customerName
            : m.sender?.kind === ActorKind.AGENT
              ? m.sender.id === me
                ? "You"
                : directory.agentName(m.sender.id)
              : author === "bot"
                ? "Bot"
                : m.sender?.kind === ActorKind.AUTOMATION
                  ? "Automation"
                  : "System";
        return (
          <Fragment key={m.id}>
            {separator}
            <div
              className={`mg-msg ${side}${note ? " mg-note" : ""} mg-${author}`}
              data-testid="chat-message"
              data-author={author}
              data-private={note ? "true" : "false"}
              data-id={m.id}
            >
              {showName && (
                <div className="mg-who">
                  {note && <span className="mg-note-tag">Private note</span>}
                  {who}
                </div>
              )}
              <div className="mg-bubble">
                {m.content && <div className="mg-text">{note ? withMentions(m.content, directory) : m.content}</div>}
                {m.attachments.map((a) => (
                  <a key={a.url || a.name} className="mg-file" href={a.url} target="_blank" rel="noreferrer">
                    <PaperclipIcon /> {a.name}
                  </a>
                ))}
                {m.menu.length > 0 && (
                  <div className="mg-menu">
                    {m.menu.map((o) => (
                      <span key={o.id}>{o.label}</span>
                    ))}
                  </div>
                )}
                <time title={m.createTime ? timestampDate(m.createTime).toLocaleString() : undefined}>{timeOf(m)}</time>
              </div>
            </div>
          </Fragment>
        );
      })}
      {pending.map((o) => (
        <div
          key={o.clientMessageId}
          className={`mg-msg mg-out mg-agent mg-pending${o.note ? " mg-note" : ""}`}
          data-testid="chat-message-pending"
        >
          <div className="mg-bubble">
            <div className="mg-text">{o.content}</div>
            <time>
              {o.error ? (
                <>
                  <span className="error">Not sent: {o.error}</span>{" "}
                  <button className="link" onClick={() => onRetry(o)}>
                    Retry
                  </button>
                </>
              ) : (
                "Sending…"
              )}
            </time>
          </div>
        </div>
      ))}
      {customerTyping && (
        <div className="mg-typing" data-testid="customer-typing">
          <span className="mg-dots" aria-hidden>
            <i />
            <i />
            <i />
          </span>
          Customer is typing…
        </div>
      )}
    </div>
  );
}
