// The form a visitor fills in before a chat starts: who they are, the inbox's pre-chat
// fields (conversation attributes), and the first message.

import { useEffect, useRef, useState, type FormEvent } from "react";
import type { WidgetSettings } from "../gen/helpdesk/conversation/v1/conversation_pb";
import { humanize } from "./text";

/** What the visitor entered. */
export interface PreChatAnswers {
  name: string;
  email: string;
  /** Pre-chat field key → value (only the fields filled in). */
  attributes: Record<string, string>;
  message: string;
}

/** The pre-chat form, with the inbox's greeting above it. */
export function PreChatForm({
  settings,
  initialName,
  initialEmail,
  notice,
  onStart,
}: {
  settings: WidgetSettings;
  initialName: string;
  initialEmail: string;
  /** A line above the form (e.g. why an earlier chat cannot be resumed). */
  notice?: string;
  /** Starts the chat; rejects with what to show the visitor. */
  onStart: (answers: PreChatAnswers) => Promise<void>;
}) {
  const [name, setName] = useState(initialName);
  const [email, setEmail] = useState(initialEmail);
  const [fields, setFields] = useState<Record<string, string>>({});
  const [message, setMessage] = useState("");
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const firstInput = useRef<HTMLInputElement>(null);
  const messageInput = useRef<HTMLTextAreaElement>(null);

  useEffect(() => {
    // A returning visitor already gave their name: straight to the message.
    if (initialName) messageInput.current?.focus();
    else firstInput.current?.focus();
  }, [initialName]);

  const submit = async (e: FormEvent) => {
    e.preventDefault();
    if (busy) return;
    setBusy(true);
    setError(undefined);
    const attributes: Record<string, string> = {};
    for (const key of settings.preChatFields) {
      const v = (fields[key] ?? "").trim();
      if (v) attributes[key] = v;
    }
    try {
      await onStart({ name: name.trim(), email: email.trim(), attributes, message: message.trim() });
    } catch (err) {
      setError(err instanceof Error ? err.message : String(err));
      setBusy(false);
    }
  };

  const ready = name.trim() !== "" && message.trim() !== "";

  return (
    <form className="prechat" onSubmit={submit}>
      <div className="welcome">
        <h2>Hi there!</h2>
        <p>{settings.greetingMessage || "Send us a message and we will answer you right here."}</p>
      </div>
      {notice && <p className="notice" role="status">{notice}</p>}
      <label className="field">
        <span>Name</span>
        <input
          ref={firstInput}
          data-testid="prechat-name"
          value={name}
          onChange={(e) => setName(e.target.value)}
          autoComplete="name"
          maxLength={200}
          required
        />
      </label>
      <label className="field">
        <span>
          Email <em>optional</em>
        </span>
        <input
          data-testid="prechat-email"
          type="email"
          value={email}
          onChange={(e) => setEmail(e.target.value)}
          autoComplete="email"
          maxLength={254}
        />
      </label>
      {settings.preChatFields.map((key) => (
        <label className="field" key={key}>
          <span>
            {humanize(key)} <em>optional</em>
          </span>
          <input
            data-testid={`prechat-field-${key}`}
            value={fields[key] ?? ""}
            onChange={(e) => setFields((f) => ({ ...f, [key]: e.target.value }))}
            maxLength={1024}
          />
        </label>
      ))}
      <label className="field">
        <span>How can we help?</span>
        <textarea
          ref={messageInput}
          data-testid="prechat-message"
          value={message}
          onChange={(e) => setMessage(e.target.value)}
          onKeyDown={(e) => {
            if (e.key === "Enter" && !e.shiftKey && ready) {
              e.preventDefault();
              e.currentTarget.form?.requestSubmit();
            }
          }}
          rows={3}
          maxLength={10000}
          required
        />
      </label>
      {error && (
        <p className="form-error" role="alert">
          {error}
        </p>
      )}
      <button type="submit" className="primary block" data-testid="start-chat" disabled={busy || !ready}>
        {busy ? "Starting…" : "Start chat"}
      </button>
    </form>
  );
}
