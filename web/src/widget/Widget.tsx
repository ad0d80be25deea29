// The widget: a launcher at the bottom right that opens the chat panel. The panel shows
// the pre-chat form until the visitor has a conversation, then the live chat; the
// visitor's token and conversation survive a reload (localStorage, per inbox).

import { useCallback, useEffect, useMemo, useRef, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConversationStatus, type Conversation, type WidgetSettings } from "../gen/helpdesk/conversation/v1/conversation_pb";
import { makeVisitorClients, type Endpoints } from "../lib/client";
import { newId } from "../lib/ids";
import { Composer, MessageList, QueueLine, TicketCard, type Names } from "./Chat";
import { currentDevice } from "./device";
import { ChatIcon, ChevronDownIcon } from "./icons";
import { PreChatForm, type PreChatAnswers } from "./PreChat";
import { clearSession, loadSession, saveSession, type VisitorSession } from "./session";
import { visitorError } from "./text";
import { useChat } from "./useChat";

/** The line under the inbox's name in the panel header. */
function subtitle(conversation: Conversation | undefined, names: Names, waiting: boolean): string {
  if (!conversation) return "We reply right here";
  switch (conversation.status) {
    case ConversationStatus.BOT:
      return "Our assistant answers first";
    case ConversationStatus.OPEN:
      if (waiting) return "Waiting for an agent";
      return names.agents[conversation.assigneeId] ? `Chatting with ${names.agents[conversation.assigneeId]}` : "An agent is with you";
    case ConversationStatus.PENDING:
    case ConversationStatus.SNOOZED:
      return "We'll get back to you";
    case ConversationStatus.RESOLVED:
      return "This chat has ended";
    default:
      return "";
  }
}

/** The whole widget for the inbox with public key `inboxKey`. */
export function Widget({ inboxKey, endpoints }: { inboxKey: string; endpoints: Endpoints }) {
  const sessionRef = useRef<VisitorSession | undefined>(loadSession(inboxKey));
  const [session, setSessionState] = useState(sessionRef.current);
  const setSession = useCallback(
    (next: VisitorSession | undefined) => {
      sessionRef.current = next;
      if (next) saveSession(inboxKey, next);
      else clearSession(inboxKey);
      setSessionState(next);
    },
    [inboxKey],
  );
  const clients = useMemo(() => makeVisitorClients(endpoints, () => sessionRef.current?.token), [endpoints]);

  const [settings, setSettings] = useState<WidgetSettings>();
  const [settingsError, setSettingsError] = useState<string>();
  const [open, setOpen] = useState(false);
  const [draft, setDraft] = useState("");
  const [notice, setNotice] = useState<string>();
  const [remembered, setRemembered] = useState({ name: session?.name ?? "", email: session?.email ?? "" });
  const [confirmEnd, setConfirmEnd] = useState(false);
  const [endError, setEndError] = useState<string>();
  const launcher = useRef<HTMLButtonElement>(null);
  const startId = useRef({ text: "", id: "" });

  const learnAgents = useCallback(
    (names: Record<string, string>) => {
      const s = sessionRef.current;
      if (!s || Object.entries(names).every(([id, name]) => s.agents[id] === name)) return;
      setSession({ ...s, agents: { ...s.agents, ...names } });
    },
    [setSession],
  );

  const conversationId = session?.conversationId ?? "";
  const chat = useChat({ clients, conversationId, open, learnAgents });
  const { conversation, queue, ticket } = chat.state;

  useEffect(() => {
    const ctrl = new AbortController();
    clients.conversation
      .getWidgetSettings({ inboxPublicKey: inboxKey }, { signal: ctrl.signal })
      .then(setSettings)
      .catch((err) => {
        if (!ctrl.signal.aborted) setSettingsError(visitorError(err));
      });
    return () => ctrl.abort();
  }, [clients, inboxKey]);

  // A chat the platform no longer opens for this visitor: start afresh.
  useEffect(() => {
    if (!chat.state.expired) return;
    setNotice("Your earlier chat could not be reopened. Start a new one below.");
    setSession(undefined);
  }, [chat.state.expired, setSession]);

  // Keep the contact's device info current (the page they are on now), once per page view.
  const deviceSent = useRef(false);
  useEffect(() => {
    if (!conversation?.contactId || deviceSent.current) return;
    deviceSent.current = true;
    // Best effort: agents then see an older page, nothing else depends on it.
    clients.conversation.updateDeviceInfo({ contactId: conversation.contactId, device: currentDevice() }).catch(() => undefined);
  }, [clients, conversation?.contactId]);

  const close = useCallback(() => {
    setOpen(false);
    setConfirmEnd(false);
    launcher.current?.focus();
  }, []);

  const start = async (a: PreChatAnswers) => {
    if (startId.current.text !== a.message || !startId.current.id) startId.current = { text: a.message, id: newId() };
    let res;
    try {
      res = await clients.conversation.startConversation({
        inboxPublicKey: inboxKey,
        contact: { name: a.name, email: a.email },
        customAttributes: a.attributes,
        initialMessage: a.message,
        clientMessageId: startId.current.id,
        device: currentDevice(),
      });
    } catch (err) {
      throw new Error(visitorError(err));
    }
    const prev = sessionRef.current;
    startId.current = { text: "", id: "" };
    deviceSent.current = true; // sent with the start
    setNotice(undefined);
    setRemembered({ name: a.name, email: a.email });
    setSession({
      token: res.visitorToken || prev?.token || "",
      expiresAt: res.visitorTokenExpireTime ? timestampDate(res.visitorTokenExpireTime).getTime() : prev?.expiresAt ?? 0,
      conversationId: res.conversation?.id ?? "",
      name: a.name,
      email: a.email,
      agents: prev?.agents ?? {},
    });
  };

  const newChat = () => {
    const s = sessionRef.current;
    if (s) setSession({ ...s, conversationId: "" });
    setDraft("");
    setConfirmEnd(false);
    setEndError(undefined);
  };

  const endChat = async () => {
    setEndError(undefined);
    try {
      await chat.end();
      setConfirmEnd(false);
    } catch (err) {
      setEndError(visitorError(err));
    }
  };

  const names: Names = { inbox: settings?.inboxName || "Support", agents: session?.agents ?? {} };
  const waiting = conversation?.status === ConversationStatus.OPEN && !conversation.assigneeId;
  const resolved = conversation?.status === ConversationStatus.RESOLVED;
  const title = settings?.inboxName || "Chat";
  const unread = open ? 0 : chat.state.unread;

  let body;
  if (conversationId) {
    if (chat.state.loading) {
      body = <div className="state">Loading your conversation…</div>;
    } else {
      body = (
        <>
          {ticket && <TicketCard ticket={ticket} />}
          {queue && waiting && <QueueLine queue={queue} />}
          {chat.state.error && (
            <p className="banner error" role="alert">
              {chat.state.error}
            </p>
          )}
          <MessageList chat={chat} names={names} />
          {resolved ? (
            <div className="ended">
              <span>Need anything else?</span>
              <button type="button" className="primary" data-testid="new-chat" onClick={newChat}>
                Start a new chat
              </button>
            </div>
          ) : (
            <Composer chat={chat} draft={draft} setDraft={setDraft} />
          )}
        </>
      );
    }
  } else if (settings) {
    body = (
      <div className="scroll">
        <PreChatForm settings={settings} initialName={remembered.name} initialEmail={remembered.email} notice={notice} onStart={start} />
      </div>
    );
  } else if (settingsError) {
    body = (
      <div className="state error" role="alert">
        Chat is not available right now: {settingsError}
      </div>
    );
  } else {
    body = <div className="state">Loading…</div>;
  }

  return (
    <div className="root">
      {open && (
        <section
          className="panel"
          data-testid="widget-panel"
          role="dialog"
          aria-label={`Chat with ${title}`}
          onKeyDown={(e) => {
            if (e.key === "Escape") close();
          }}
        >
          <header className="head">
            <div className="avatar" aria-hidden="true">
              {title.charAt(0).toUpperCase()}
            </div>
            <div className="head-text">
              <div className="head-title">{title}</div>
              <div className="head-sub">{subtitle(conversation, names, waiting)}</div>
            </div>
            {conversation && !resolved && !confirmEnd && (
              <button type="button" className="head-btn text" data-testid="end-chat" onClick={() => setConfirmEnd(true)}>
                End chat
              </button>
            )}
            <button type="button" className="head-btn" aria-label="Close chat" onClick={close}>
              <ChevronDownIcon />
            </button>
          </header>
          {confirmEnd && conversation && !resolved && (
            <div className="confirm" role="alertdialog" aria-label="End this chat?">
              <span>End this chat?</span>
              {endError && <span className="error">{endError}</span>}
              <button type="button" onClick={() => setConfirmEnd(false)}>
                Cancel
              </button>
              <button type="button" className="primary" data-testid="end-chat-confirm" onClick={() => void endChat()}>
                End chat
              </button>
            </div>
          )}
          {body}
        </section>
      )}
      <button
        ref={launcher}
        type="button"
        className={open ? "launcher open" : "launcher"}
        data-testid="widget-launcher"
        aria-label={open ? "Close chat" : unread ? `Open chat, ${unread} unread` : "Open chat"}
        aria-expanded={open}
        onClick={() => (open ? close() : setOpen(true))}
      >
        {open ? <ChevronDownIcon size={26} /> : <ChatIcon size={26} />}
        {unread > 0 && (
          <span className="unread" data-testid="widget-unread" aria-hidden="true">
            {unread > 9 ? "9+" : unread}
          </span>
        )}
      </button>
    </div>
  );
}
