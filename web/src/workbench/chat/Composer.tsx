// Writing in a conversation: a reply to the customer or a private note for colleagues
// (with @mentions suggested from the agent directory), and the typing indicator the
// customer sees while the agent writes a reply.

import { useEffect, useRef, useState } from "react";
import { flushSync } from "react-dom";
import type { Agent } from "../../gen/helpdesk/routing/v1/routing_pb";
import { useWorkbench } from "../context";
import { useSessionDirectory } from "./directory";

/** How often "still typing" is said again while the agent keeps typing. */
const TYPING_EVERY_MS = 3000;
/** Silence after which the agent counts as no longer typing. */
const TYPING_IDLE_MS = 4000;

/** The text after `@` that mentions an agent, as the platform reads it (letters, digits, `.`, `_`, `-`). */
const HANDLE = /^[\p{L}\p{N}._-]*[\p{L}\p{N}_]$/u;

/** The handle a note mentions an agent by: their id when it reads as one, else their name without spaces. */
function handleOf(a: Agent): string {
  if (HANDLE.test(a.id)) return a.id;
  return a.name.replace(/\s+/g, "");
}

/** The `@word` being typed just before the caret, if any. */
function mentionAt(text: string, caret: number): { start: number; query: string } | undefined {
  const m = /(^|[^\p{L}\p{N}.])@([\p{L}\p{N}._-]*)$/u.exec(text.slice(0, caret));
  if (!m) return undefined;
  return { start: caret - m[2].length - 1, query: m[2].toLowerCase() };
}

/** The reply box; `onSend` posts the text as a reply or a note. */
export function Composer({ conversationId, onSend }: { conversationId: string; onSend: (text: string, note: boolean) => void }) {
  const { clients, me } = useWorkbench();
  const directory = useSessionDirectory(clients);
  const [text, setText] = useState("");
  const [note, setNote] = useState(false);
  const [mention, setMention] = useState<{ start: number; query: string }>();
  const [choice, setChoice] = useState(0);
  const area = useRef<HTMLTextAreaElement>(null);
  const typing = useRef({ sentAt: 0, idle: undefined as ReturnType<typeof setTimeout> | undefined });

  const stopTyping = () => {
    const t = typing.current;
    clearTimeout(t.idle);
    if (t.sentAt) {
      t.sentAt = 0;
      clients.conversation.sendTyping({ conversationId, typing: false }).catch(() => undefined);
    }
  };
  const keepTyping = () => {
    const t = typing.current;
    if (Date.now() - t.sentAt > TYPING_EVERY_MS) {
      t.sentAt = Date.now();
      clients.conversation.sendTyping({ conversationId, typing: true }).catch(() => undefined);
    }
    clearTimeout(t.idle);
    t.idle = setTimeout(stopTyping, TYPING_IDLE_MS);
  };
  // A new conversation starts with an empty reply; leaving one stops the indicator.
  useEffect(() => {
    setText("");
    setMention(undefined);
    return stopTyping;
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [conversationId]);

  const suggestions = mention
    ? directory.agents
        .filter((a) => a.id !== me)
        .filter(
          (a) =>
            a.id.toLowerCase().startsWith(mention.query) ||
            a.name.toLowerCase().replace(/\s+/g, "").startsWith(mention.query) ||
            a.name.toLowerCase().split(/\s+/).some((w) => w.startsWith(mention.query)),
        )
        .slice(0, 6)
    : [];

  /** Puts `@handle ` in place of the `@word` typed, with the caret right after it. */
  const insert = (a: Agent) => {
    if (!mention) return;
    const handle = `@${handleOf(a)} `;
    const caret = area.current?.selectionStart ?? text.length;
    const next = text.slice(0, mention.start) + handle + text.slice(caret);
    // The new text is in the box when flushSync returns, so the caret is placed before
    // the next key is handled.
    flushSync(() => {
      setText(next);
      setMention(undefined);
    });
    const pos = mention.start + handle.length;
    area.current?.focus();
    area.current?.setSelectionRange(pos, pos);
  };

  const send = () => {
    const body = text.trim();
    if (!body) return;
    stopTyping();
    onSend(body, note);
    setText("");
    setMention(undefined);
  };

  const toggleNote = () => {
    if (!note) {
      stopTyping();
      // Colleagues added since the page opened can be mentioned too.
      directory.reload();
    }
    setNote(!note);
    setMention(undefined);
    area.current?.focus();
  };

  return (
    <div className={`co-box${note ? " co-note" : ""}`}>
      <div className="co-tabs" role="tablist">
        <button role="tab" aria-selected={!note} className={!note ? "on" : undefined} onClick={() => note && toggleNote()}>
          Reply
        </button>
        <button role="tab" aria-selected={note} aria-pressed={note} data-testid="note-toggle" className={note ? "on" : undefined} onClick={toggleNote}>
          Private note
        </button>
        <span className="co-hint">
          {note ? "Only your team sees notes · type @ to mention" : "Enter to send · Shift+Enter for a new line"}
        </span>
      </div>
      {mention && suggestions.length > 0 && (
        <ul className="co-mentions" role="listbox" aria-label="Mention an agent">
          {suggestions.map((a, i) => (
            <li
              key={a.id}
              role="option"
              aria-selected={i === choice}
              data-testid="mention-option"
              data-agent-id={a.id}
              className={i === choice ? "on" : undefined}
              onMouseDown={(e) => {
                e.preventDefault();
                insert(a);
              }}
            >
              <strong>{a.name || a.id}</strong> <span className="muted">@{handleOf(a)}</span>
            </li>
          ))}
        </ul>
      )}
      <textarea
        ref={area}
        data-testid="reply-input"
        rows={3}
        placeholder={note ? "Write a private note…" : "Write a reply…"}
        value={text}
        onChange={(e) => {
          setText(e.target.value);
          const m = note ? mentionAt(e.target.value, e.target.selectionStart) : undefined;
          setMention(m);
          setChoice(0);
          if (!note && e.target.value.trim()) keepTyping();
          if (!note && !e.target.value.trim()) stopTyping();
        }}
        onKeyDown={(e) => {
          if (mention && suggestions.length) {
            if (e.key === "ArrowDown" || e.key === "ArrowUp") {
              e.preventDefault();
              setChoice((c) => (c + (e.key === "ArrowDown" ? 1 : suggestions.length - 1)) % suggestions.length);
              return;
            }
            if (e.key === "Enter" || e.key === "Tab") {
              e.preventDefault();
              insert(suggestions[Math.min(choice, suggestions.length - 1)]);
              return;
            }
            if (e.key === "Escape") {
              e.preventDefault();
              setMention(undefined);
              return;
            }
          }
          if (e.key === "Enter" && !e.shiftKey && !e.nativeEvent.isComposing) {
            e.preventDefault();
            send();
          }
        }}
        onBlur={() => setMention(undefined)}
      />
      <div className="co-actions">
        <span className="spacer" />
        <button className="primary" data-testid="reply-send" disabled={!text.trim()} onClick={send}>
          {note ? "Add note" : "Send"}
        </button>
      </div>
    </div>
  );
}
