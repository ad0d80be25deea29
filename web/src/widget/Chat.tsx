// The chat itself: the ticket card, the queue line, the messages (customer right,
// agents left with their name, bot and platform lines centred), the typing indicator,
// the survey once resolved, and the composer.

import { Fragment, useEffect, useLayoutEffect, useRef, useState, type ReactNode } from "react";
import { ActorKind } from "../gen/helpdesk/common/v1/meta_pb";
import {
  ActivityType,
  ConversationStatus,
  MessageKind,
  type Attachment,
  type Conversation,
  type Message,
} from "../gen/helpdesk/conversation/v1/conversation_pb";
import type { QueuePosition } from "../gen/helpdesk/routing/v1/routing_pb";
import { StatusCategory, type Ticket } from "../gen/helpdesk/ticketing/v1/ticketing_pb";
import { clock } from "../lib/time";
import { CsatSurvey } from "./Csat";
import { CloseIcon, FileIcon, PaperclipIcon, SendIcon, TicketIcon } from "./icons";
import type { Chat, PendingMessage, Typing } from "./useChat";
import { fileSize } from "./text";

/** Who wrote a message, as the `data-author` attribute says it. */
type Author = "customer" | "agent" | "bot" | "system";

/** The author of a stored message. */
function authorOf(m: Message): Author {
  if (m.kind === MessageKind.INCOMING) return "customer";
  if (m.kind === MessageKind.OUTGOING) return m.sender?.kind === ActorKind.AGENT ? "agent" : "bot";
  return "system";
}

/** Text with its web addresses as links, line breaks kept (by CSS). */
function RichText({ text }: { text: string }) {
  const parts = text.split(/(https?:\/\/[^\s<>"]+[^\s<>".,;:!?)\]'])/g);
  return (
    <>
      {parts.map((p, i) =>
        i % 2 === 1 ? (
          <a key={i} href={p} target="_blank" rel="noopener noreferrer">
            {p}
          </a>
        ) : (
          <Fragment key={i}>{p}</Fragment>
        ),
      )}
    </>
  );
}

/** A message's files: a link when the file has an address, else its name and size. */
function Attachments({ items }: { items: Attachment[] }) {
  if (!items.length) return null;
  return (
    <ul className="files">
      {items.map((a, i) => {
        const body = (
          <>
            <FileIcon size={16} />
            <span className="file-name">{a.name}</span>
            <span className="file-size">{fileSize(Number(a.sizeBytes))}</span>
          </>
        );
        const linkable = /^(https?:|data:)/.test(a.url);
        return (
          <li key={i}>
            {linkable ? (
              <a className="file" href={a.url} download={a.name} target="_blank" rel="noopener noreferrer">
                {body}
              </a>
            ) : (
              <span className="file">{body}</span>
            )}
          </li>
        );
      })}
    </ul>
  );
}

/** "You are number 3 in line · about 4 min" while the chat waits for an agent. */
export function QueueLine({ queue }: { queue: QueuePosition }) {
  const minutes = Math.max(1, Math.ceil(queue.estimatedWaitSeconds / 60));
  const opens = queue.opensAt ? clock(queue.opensAt) : "";
  return (
    <div className="queue" data-testid="queue-position" role="status">
      <span className="pulse" aria-hidden="true" />
      <span>
        You are number {queue.position} in line
        {queue.estimatedWaitSeconds > 0 && <> · about {minutes} min</>}
        {opens && <> · we open at {opens}</>}
      </span>
    </div>
  );
}

const CATEGORY_TONE: Record<StatusCategory, string> = {
  [StatusCategory.UNSPECIFIED]: "neutral",
  [StatusCategory.NEW]: "info",
  [StatusCategory.OPEN]: "info",
  [StatusCategory.PENDING]: "warn",
  [StatusCategory.ON_HOLD]: "neutral",
  [StatusCategory.SOLVED]: "ok",
  [StatusCategory.CLOSED]: "neutral",
};

/** "Your request #12: In progress", from the ticket made from this chat. */
export function TicketCard({ ticket }: { ticket: Ticket }) {
  const status = ticket.externalStatusLabel || ticket.statusLabel;
  return (
    <div className="ticket" data-testid="ticket-status" role="status">
      <TicketIcon size={18} />
      <div className="ticket-text">
        <div>
          Your request #{ticket.number.toString()}: <strong className={`tone-${CATEGORY_TONE[ticket.statusCategory]}`}>{status}</strong>
        </div>
        {ticket.subject && <div className="ticket-subject">{ticket.subject}</div>}
      </div>
    </div>
  );
}

/** Names for messages and the typing line. */
export interface Names {
  inbox: string;
  agents: Record<string, string>;
}

function agentName(names: Names, id: string | undefined): string {
  return (id && names.agents[id]) || "Agent";
}

const SYSTEM_TONE: Partial<Record<ActivityType, string>> = {
  [ActivityType.INACTIVITY_WARNING]: "warn",
  [ActivityType.CLOSED]: "closed",
  [ActivityType.TICKET]: "ticket-line",
  [ActivityType.CSAT_SURVEY]: "survey",
};

/** One stored message. */
function MessageItem({
  m,
  names,
  first,
  last,
  menuOpen,
  onPick,
}: {
  m: Message;
  names: Names;
  /** First of a run by the same author (shows the name). */
  first: boolean;
  /** Last of a run (shows the time). */
  last: boolean;
  /** Its menu can still be answered. */
  menuOpen: boolean;
  onPick: (id: string, label: string) => void;
}) {
  const author = authorOf(m);
  const time = clock(m.createTime);
  if (author === "system") {
    const tone = SYSTEM_TONE[m.activity] ?? "";
    return (
      <div className={`line system ${tone}`} data-testid="widget-message" data-author="system" title={time}>
        {m.activity === ActivityType.TICKET && <TicketIcon size={14} />}
        <span>
          <RichText text={m.content} />
        </span>
      </div>
    );
  }
  if (author === "bot") {
    return (
      <div className="line bot" data-testid="widget-message" data-author="bot" title={time}>
        <div className="bot-card">
          {m.content && <RichText text={m.content} />}
          <Attachments items={m.attachments} />
        </div>
        {m.menu.length > 0 && (
          <div className="menu" role="group" aria-label="Choose an option">
            {m.menu.map((o) => (
              <button key={o.id} type="button" disabled={!menuOpen} onClick={() => onPick(o.id, o.label)}>
                {o.label}
              </button>
            ))}
          </div>
        )}
      </div>
    );
  }
  return (
    <div className={`row ${author}${first ? " first" : ""}`} data-testid="widget-message" data-author={author} title={time}>
      {author === "agent" && first && <div className="who">{agentName(names, m.sender?.id)}</div>}
      <div className="bubble">
        {m.content && <RichText text={m.content} />}
        <Attachments items={m.attachments} />
      </div>
      {last && <div className="meta">{time}</div>}
    </div>
  );
}

/** A message on its way (or that failed, with a retry). */
function PendingItem({ p, onRetry }: { p: PendingMessage; onRetry: (clientId: string) => void }) {
  return (
    <div
      className={`row customer first pending${p.failed ? " failed" : ""}`}
      data-testid="widget-message"
      data-author="customer"
      data-state={p.failed ? "failed" : "sending"}
    >
      <div className="bubble">
        {p.content && <RichText text={p.content} />}
        <Attachments items={p.attachments} />
      </div>
      {p.failed ? (
        <div className="meta error" role="alert">
          Not sent: {p.failed}{" "}
          <button type="button" className="link" data-testid="widget-retry" onClick={() => onRetry(p.clientId)}>
            Retry
          </button>
        </div>
      ) : (
        <div className="meta">Sending…</div>
      )}
    </div>
  );
}

/** "Ana is typing…". */
function TypingLine({ typing, names }: { typing: Typing; names: Names }) {
  const who = typing.actorKind === ActorKind.AGENT ? agentName(names, typing.actorId) : names.inbox;
  return (
    <div className="typing" data-testid="agent-typing" role="status">
      <span className="dots" aria-hidden="true">
        <i />
        <i />
        <i />
      </span>
      {who} is typing…
    </div>
  );
}

/** Same author (and same sender) as the message before, within a few minutes. */
function continues(prev: Message | undefined, m: Message): boolean {
  if (!prev) return false;
  if (authorOf(prev) !== authorOf(m) || prev.sender?.id !== m.sender?.id) return false;
  const a = prev.createTime?.seconds ?? 0n;
  const b = m.createTime?.seconds ?? 0n;
  return b - a < 300n;
}

/** The survey shows when the conversation was resolved with a survey after everything said. */
function surveyAsked(conversation: Conversation | undefined, messages: Message[]): boolean {
  if (conversation?.status !== ConversationStatus.RESOLVED) return false;
  for (let i = messages.length - 1; i >= 0; i--) {
    const m = messages[i];
    if (m.activity === ActivityType.CSAT_SURVEY) return true;
    if (m.kind === MessageKind.INCOMING || m.kind === MessageKind.OUTGOING) return false;
  }
  return false;
}

/** The scrolling list of everything in the conversation. */
export function MessageList({ chat, names, footer }: { chat: Chat; names: Names; footer?: ReactNode }) {
  const { messages, pending, typing, conversation } = chat.state;
  const visible = messages.filter((m) => m.kind !== MessageKind.NOTE);
  const box = useRef<HTMLDivElement>(null);
  const stick = useRef(true);
  const showSurvey = surveyAsked(conversation, visible);

  // The last message with a menu can be answered until the customer writes after it.
  let menuIndex = -1;
  for (let i = visible.length - 1; i >= 0; i--) {
    if (visible[i].kind === MessageKind.INCOMING) break;
    if (visible[i].menu.length > 0) {
      menuIndex = i;
      break;
    }
  }
  const resolved = conversation?.status === ConversationStatus.RESOLVED;

  useLayoutEffect(() => {
    const el = box.current;
    if (el && stick.current) el.scrollTop = el.scrollHeight;
  }, [visible.length, pending.length, typing, showSurvey, footer]);

  useEffect(() => {
    // A message the visitor sends always brings the list down.
    if (pending.length) stick.current = true;
  }, [pending.length]);

  return (
    <div
      className="messages"
      ref={box}
      data-testid="widget-messages"
      role="log"
      aria-live="polite"
      aria-label="Messages"
      onScroll={(e) => {
        const el = e.currentTarget;
        stick.current = el.scrollHeight - el.scrollTop - el.clientHeight < 60;
      }}
    >
      {visible.map((m, i) => (
        <MessageItem
          key={m.id}
          m={m}
          names={names}
          first={!continues(visible[i - 1], m)}
          last={i === visible.length - 1 || !continues(m, visible[i + 1])}
          menuOpen={i === menuIndex && !resolved}
          onPick={(id, label) => chat.send(label, [], id)}
        />
      ))}
      {pending.map((p) => (
        <PendingItem key={p.clientId} p={p} onRetry={chat.retry} />
      ))}
      {typing && <TypingLine typing={typing} names={names} />}
      {showSurvey && <CsatSurvey rated={(conversation?.csatRating ?? 0) > 0} onRate={chat.rate} />}
      {footer}
    </div>
  );
}

/** Longest `data:` address an attachment may carry (the platform's limit on `url`). */
const MAX_URL_CHARS = 2048;
/** Most attachments on one message. */
const MAX_FILES = 10;

function readAsDataUrl(file: File): Promise<string> {
  return new Promise((resolve, reject) => {
    const r = new FileReader();
    r.onload = () => resolve(String(r.result));
    r.onerror = () => reject(r.error ?? new Error("could not read the file"));
    r.readAsDataURL(file);
  });
}

/**
 * A picked file as an attachment. The platform stores attachment metadata only and
 * requires an address for the file, and this widget has no upload service to store
 * it at: a file small enough travels inside its own `data:` address; a larger one
 * cannot be sent (a page-local object URL would mean nothing to the agent).
 */
async function toAttachment(file: File): Promise<Attachment | string> {
  const type = file.type || "application/octet-stream";
  const budget = Math.floor(((MAX_URL_CHARS - `data:${type};base64,`.length) * 3) / 4);
  if (file.size > budget) {
    return `"${file.name}" is too large to send here: this chat carries files up to ${fileSize(budget)}.`;
  }
  const url = await readAsDataUrl(file);
  if (url.length > MAX_URL_CHARS) return `"${file.name}" is too large to send here.`;
  return { name: file.name.slice(0, 255), contentType: type.slice(0, 255), sizeBytes: BigInt(file.size), url } as Attachment;
}

/** The message box with its attach and send buttons. */
export function Composer({
  chat,
  draft,
  setDraft,
}: {
  chat: Chat;
  /** The text being written (kept by the widget while the panel is closed). */
  draft: string;
  setDraft: (text: string) => void;
}) {
  const [files, setFiles] = useState<Attachment[]>([]);
  const [error, setError] = useState<string>();
  const input = useRef<HTMLTextAreaElement>(null);
  const picker = useRef<HTMLInputElement>(null);

  useEffect(() => {
    input.current?.focus();
  }, []);

  useLayoutEffect(() => {
    const el = input.current;
    if (!el) return;
    el.style.height = "auto";
    el.style.height = `${Math.min(el.scrollHeight, 120)}px`;
  }, [draft]);

  const canSend = draft.trim() !== "" || files.length > 0;
  const send = () => {
    if (!canSend) return;
    chat.send(draft.trim(), files);
    setDraft("");
    setFiles([]);
    setError(undefined);
    input.current?.focus();
  };

  const pick = async (list: FileList | null) => {
    if (!list?.length) return;
    const problems: string[] = [];
    const picked: Attachment[] = [];
    for (const f of Array.from(list)) {
      try {
        const a = await toAttachment(f);
        if (typeof a === "string") problems.push(a);
        else picked.push(a);
      } catch (err) {
        problems.push(`"${f.name}" could not be read: ${err instanceof Error ? err.message : String(err)}`);
      }
    }
    const next = [...files, ...picked];
    if (next.length > MAX_FILES) problems.push(`At most ${MAX_FILES} files per message.`);
    setFiles(next.slice(0, MAX_FILES));
    setError(problems.length ? problems.join(" ") : undefined);
    if (picker.current) picker.current.value = "";
    input.current?.focus();
  };

  return (
    <div className="composer">
      {error && (
        <p className="composer-error" role="alert">
          {error}
        </p>
      )}
      {files.length > 0 && (
        <ul className="staged" aria-label="Files to send">
          {files.map((f, i) => (
            <li key={i}>
              <FileIcon size={14} />
              <span className="file-name">{f.name}</span>
              <span className="file-size">{fileSize(Number(f.sizeBytes))}</span>
              <button type="button" className="icon small" aria-label={`Remove ${f.name}`} onClick={() => setFiles((cur) => cur.filter((_, j) => j !== i))}>
                <CloseIcon size={12} />
              </button>
            </li>
          ))}
        </ul>
      )}
      <div className="compose-row">
        <label className="icon attach" title="Attach a file">
          <PaperclipIcon size={19} />
          <input
            ref={picker}
            type="file"
            multiple
            className="visually-hidden"
            data-testid="widget-attach"
            aria-label="Attach a file"
            onChange={(e) => void pick(e.target.files)}
          />
        </label>
        <textarea
          ref={input}
          data-testid="widget-input"
          aria-label="Message"
          placeholder="Write a message…"
          rows={1}
          maxLength={10000}
          value={draft}
          onChange={(e) => {
            setDraft(e.target.value);
            if (e.target.value.trim()) chat.typing();
          }}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
              e.preventDefault();
              send();
            }
          }}
        />
        <button type="button" className="icon send" data-testid="widget-send" aria-label="Send message" disabled={!canSend} onClick={send}>
          <SendIcon size={18} />
        </button>
      </div>
    </div>
  );
}
