// One conversation, open: its header and actions, the timeline (its latest messages,
// earlier pages on request, then live messages and typing from the conversation's
// stream), the reply box, the transfer in progress, and the customer panel on the right.

import { useEffect, useMemo, useRef, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Code, ConnectError } from "@connectrpc/connect";
import {
  ActivityType,
  ConversationStatus,
  MessageKind,
  type Conversation,
  type Message,
  type SubscribeResponse,
} from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { ActorKind } from "../../gen/helpdesk/common/v1/meta_pb";
import { TransferState, type Transfer } from "../../gen/helpdesk/routing/v1/routing_pb";
import type { Clients } from "../../lib/client";
import { describe } from "../../lib/errors";
import { duration } from "../../lib/time";
import { newId } from "../../lib/ids";
import { useWorkbench } from "../context";
import { ErrorLine, useLive, useNow } from "../ui";
import { CreateTicket, StatusActions } from "./Actions";
import { Composer } from "./Composer";
import { ContactPanel } from "./ContactPanel";
import { NEWEST, noteMessage, useContact, useSessionDirectory } from "./directory";
import { avatarHue, contactName, initials, newer, statusLabel } from "./format";
import { hubOf, untilAborted, useTransfers } from "./hub";
import { MessageList, type Outgoing } from "./MessageList";
import { markSeen } from "./seen";
import { TransferDialog, TransferStatus } from "./Transfer";
import { ClockIcon, TransferIcon } from "./icons";

/** Messages read when the conversation opens, and by each "load earlier". */
const PAGE = 50;
/** How long "Customer is typing…" stays without news from the customer. */
const TYPING_SHOWN_MS = 8000;

const TRANSFER_ACTIVITY = new Set([
  ActivityType.TRANSFER,
  ActivityType.TRANSFER_ACCEPT,
  ActivityType.TRANSFER_REJECT,
  ActivityType.TRANSFER_TIMEOUT,
  ActivityType.TRANSFER_CANCEL,
]);

/** The `PAGE` messages of a conversation just before sequence `before`, oldest first. */
function readPage(clients: Clients, conversationId: string, before: bigint) {
  return clients.conversation.listMessages({ conversationId, pageSize: PAGE, beforeSequence: before });
}

/** Adds messages to a timeline: each once, in sequence order. */
function merge(old: Message[], more: Message[]): Message[] {
  const known = new Set(old.map((o) => o.id));
  const fresh = more.filter((m) => !known.has(m.id));
  if (!fresh.length) return old;
  const all = [...old, ...fresh];
  return all.sort((a, b) => (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0));
}

/** The middle and right columns for conversation `id`. */
export function ChatView({ id }: { id: string }) {
  const { clients, me, claims } = useWorkbench();
  const hub = hubOf(clients);
  const directory = useSessionDirectory(clients);
  const [conv, setConv] = useState<Conversation>();
  const [messages, setMessages] = useState<Message[]>([]);
  const [loadedFor, setLoadedFor] = useState<string>();
  const [loadError, setLoadError] = useState<string>();
  const [hasEarlier, setHasEarlier] = useState(false);
  const [earlier, setEarlier] = useState<{ loading: boolean; error?: string }>({ loading: false });
  const [pending, setPending] = useState<Outgoing[]>([]);
  const [typing, setTyping] = useState(false);
  const [listed, setListed] = useState<Transfer[]>([]);
  const [dismissed, setDismissed] = useState<string[]>([]);
  const [transferring, setTransferring] = useState(false);
  const typingTimer = useRef<ReturnType<typeof setTimeout>>(undefined);
  // The last message the conversation's stream (or the first read) delivered: where a
  // reopened stream resumes.
  const streamed = useRef(0n);
  // Counts the reads of the newest page: an earlier page asked for before the latest
  // one is dropped.
  const generation = useRef(0);
  const readingEarlier = useRef(false);
  const { contact } = useContact(clients, conv?.contactId);
  const now = useNow(1000);

  // Answers that arrive after the agent moved to another conversation are dropped.
  const shownId = useRef(id);
  shownId.current = id;

  const readTransfers = () =>
    clients.routing.listTransfers({ conversationId: id }).then(
      (r) => shownId.current === id && setListed(r.transfers),
      () => undefined,
    );

  /** Reads the conversation and its newest page of messages. */
  const load = async () => {
    const gen = ++generation.current;
    setLoadError(undefined);
    try {
      const [c, page] = await Promise.all([clients.conversation.getConversation({ id }), readPage(clients, id, NEWEST)]);
      if (shownId.current !== id || gen !== generation.current) return;
      const latest = page.messages;
      setConv(c);
      setMessages(latest);
      setHasEarlier(page.hasEarlier);
      setEarlier({ loading: false });
      streamed.current = latest.length ? latest[latest.length - 1].sequence : 0n;
      setLoadedFor(id);
    } catch (err) {
      if (shownId.current === id) setLoadError(describe(err));
    }
  };

  /** Reads the page before the oldest message shown. */
  const loadEarlier = async () => {
    const first = messages[0];
    if (!first || !hasEarlier || readingEarlier.current) return;
    const gen = generation.current;
    readingEarlier.current = true;
    setEarlier({ loading: true });
    try {
      const page = await readPage(clients, id, first.sequence);
      if (shownId.current !== id || gen !== generation.current) return;
      setMessages((old) => merge(old, page.messages));
      setHasEarlier(page.hasEarlier);
      setEarlier({ loading: false });
    } catch (err) {
      if (shownId.current === id && gen === generation.current) setEarlier({ loading: false, error: describe(err) });
    } finally {
      readingEarlier.current = false;
    }
  };

  useEffect(() => {
    setConv(undefined);
    setMessages([]);
    setLoadedFor(undefined);
    setHasEarlier(false);
    setEarlier({ loading: false });
    setPending([]);
    setTyping(false);
    setListed([]);
    setTransferring(false);
    void load();
    void readTransfers();
    return () => clearTimeout(typingTimer.current);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, id]);

  const onUpdate = (u: SubscribeResponse) => {
    switch (u.update.case) {
      case "messageCreated": {
        const { message: m, conversation: c } = u.update.value;
        if (c) setConv((old) => newer(old, c));
        if (!m) return;
        if (m.sequence > streamed.current) streamed.current = m.sequence;
        setMessages((old) => merge(old, [m]));
        noteMessage(clients, m);
        if (m.clientMessageId) setPending((p) => p.filter((o) => o.clientMessageId !== m.clientMessageId));
        if (m.kind === MessageKind.INCOMING) setTyping(false);
        if (TRANSFER_ACTIVITY.has(m.activity)) void readTransfers();
        return;
      }
      case "conversationUpdated":
      case "conversationStatusChanged":
      case "conversationCreated": {
        const c = u.update.value.conversation;
        if (c) setConv((old) => newer(old, c));
        return;
      }
      case "typing": {
        const t = u.update.value;
        if (t.actor?.kind !== ActorKind.CONTACT) return;
        clearTimeout(typingTimer.current);
        setTyping(t.typing);
        if (t.typing) typingTimer.current = setTimeout(() => setTyping(false), TYPING_SHOWN_MS);
        return;
      }
    }
  };

  const ready = loadedFor === id;
  const liveError = useLive(
    async (signal) => {
      if (!ready) return untilAborted(signal);
      try {
        for await (const u of clients.conversation.subscribe(
          { conversationId: id, resumeAfterSequence: streamed.current },
          { signal },
        )) {
          onUpdate(u);
        }
      } catch (err) {
        // Too much was missed to replay: read the conversation again, then resume.
        if (ConnectError.from(err).code === Code.OutOfRange) return load();
        throw err;
      }
    },
    [clients, id, ready],
  );

  // The transfers of this conversation: as listed, and as they change live.
  const live = useTransfers(hub, true);
  const transfer = useMemo(() => {
    const byId = new Map<string, Transfer>();
    for (const t of [...listed, ...live.filter((t) => t.conversationId === id)]) {
      const known = byId.get(t.id);
      if (!known || known.state === TransferState.PENDING) byId.set(t.id, t);
    }
    const mine = [...byId.values()].filter((t) => t.fromAgentId === me || t.requestedBy === me);
    mine.sort((a, b) => (a.requestTime && b.requestTime ? timestampDate(b.requestTime).getTime() - timestampDate(a.requestTime).getTime() : 0));
    const latest = mine[0];
    return latest && !dismissed.includes(latest.id) ? latest : undefined;
  }, [listed, live, id, me, dismissed]);

  // What the agent sees counts as read.
  const lastIncoming = useMemo(
    () => messages.reduce((n, m) => (m.kind === MessageKind.INCOMING ? Math.max(n, Number(m.sequence)) : n), 0),
    [messages],
  );
  useEffect(() => {
    if (ready && lastIncoming) markSeen(claims.account, me, id, lastIncoming);
  }, [ready, lastIncoming, claims.account, me, id]);

  const send = async (content: string, note: boolean, clientMessageId = newId()) => {
    setPending((p) => [...p.filter((o) => o.clientMessageId !== clientMessageId), { clientMessageId, content, note }]);
    try {
      const m = await clients.conversation.sendMessage({
        conversationId: id,
        kind: note ? MessageKind.NOTE : MessageKind.OUTGOING,
        content,
        clientMessageId,
      });
      if (shownId.current !== id) return;
      setMessages((old) => merge(old, [m]));
      setPending((p) => p.filter((o) => o.clientMessageId !== clientMessageId));
    } catch (err) {
      if (shownId.current !== id) return;
      setPending((p) => p.map((o) => (o.clientMessageId === clientMessageId ? { ...o, error: describe(err) } : o)));
    }
  };

  if (loadError && !conv) {
    return (
      <>
        <section className="cv-chat cv-empty">
          <ErrorLine error={loadError} />
        </section>
        <aside className="cp-panel" />
      </>
    );
  }
  if (!conv || !ready) {
    return (
      <>
        <section className="cv-chat cv-empty">
          <p className="muted">Loading conversation…</p>
        </section>
        <aside className="cp-panel" />
      </>
    );
  }

  const name = contactName(contact, conv.contactId);
  const waiting = conv.waitingSince ? (now - timestampDate(conv.waitingSince).getTime()) / 1000 : undefined;
  const canTransfer = conv.status === ConversationStatus.OPEN && !!conv.assigneeId;

  return (
    <>
      <section className="cv-chat" aria-label={`Conversation with ${name}`}>
        <header className="cv-head">
          <div className="cv-headline">
            <span className="ch-avatar" style={{ "--hue": avatarHue(conv.contactId) } as React.CSSProperties} aria-hidden>
              {initials(name)}
            </span>
            <div className="cv-title">
              <h2>{name}</h2>
              <div className="cv-sub">
                <span className={`ch-status ch-s${conv.status}`} data-testid="conversation-status">
                  {statusLabel(conv.status)}
                </span>
                <span>
                  {conv.assigneeId
                    ? conv.assigneeId === me
                      ? "Assigned to you"
                      : `Assigned to ${directory.agentName(conv.assigneeId)}`
                    : "Unassigned"}
                </span>
                {conv.teamId && <span>· {directory.teamName(conv.teamId)}</span>}
                {waiting !== undefined && conv.status === ConversationStatus.OPEN && (
                  <span className={`cl-wait${waiting > 300 ? " cl-late" : ""}`}>
                    <ClockIcon size={12} /> waiting {duration(waiting)}
                  </span>
                )}
              </div>
            </div>
          </div>
          <div className="cv-toolbar">
            <button
              data-testid="transfer-open"
              disabled={!canTransfer}
              title={canTransfer ? "Hand this conversation to a colleague" : "Only an open, assigned conversation can be transferred"}
              onClick={() => setTransferring(true)}
            >
              <TransferIcon /> Transfer
            </button>
            <CreateTicket key={conv.id} conversation={conv} />
            <span className="spacer" />
            <StatusActions conversation={conv} onChanged={(c) => setConv((old) => newer(old, c))} />
          </div>
        </header>
        {transfer && (
          <TransferStatus
            transfer={transfer}
            onDismiss={() => setDismissed((d) => [...d, transfer.id])}
            onChanged={(t) => setListed((l) => [...l.filter((x) => x.id !== t.id), t])}
          />
        )}
        <ErrorLine error={liveError} />
        <MessageList
          messages={messages}
          hasEarlier={hasEarlier}
          earlier={earlier}
          pending={pending}
          customerTyping={typing}
          customerName={name}
          onEarlier={() => void loadEarlier()}
          onRetry={(o) => void send(o.content, o.note, o.clientMessageId)}
        />
        <Composer conversationId={conv.id} onSend={(text, note) => void send(text, note)} />
        {transferring && (
          <TransferDialog
            conversationId={conv.id}
            onClose={() => setTransferring(false)}
            onSent={(t) => {
              hub.transferStore.put(t);
              setListed((l) => [...l.filter((x) => x.id !== t.id), t]);
              setDismissed((d) => d.filter((x) => x !== t.id));
            }}
          />
        )}
      </section>
      <ContactPanel conversation={conv} onChanged={(c) => setConv((old) => newer(old, c))} />
    </>
  );
}
