// One conversation as the visitor sees it, kept live by server streams: its history
// (ListMessages), then Subscribe resuming after the last message seen (messages, status
// changes, typing), the queue position while it waits (WatchQueuePosition), and the
// ticket made from it, read again whenever the platform posts a ticket line.

import { useCallback, useEffect, useReducer, useRef } from "react";
import { create } from "@bufbuild/protobuf";
import { Code, ConnectError } from "@connectrpc/connect";
import { ActorKind } from "../gen/helpdesk/common/v1/meta_pb";
import {
  ActivityType,
  AttachmentSchema,
  ConversationStatus,
  MessageKind,
  type Attachment,
  type Conversation,
  type Message,
  type SubscribeResponse,
} from "../gen/helpdesk/conversation/v1/conversation_pb";
import type { QueuePosition } from "../gen/helpdesk/routing/v1/routing_pb";
import type { Ticket } from "../gen/helpdesk/ticketing/v1/ticketing_pb";
import { readAll, type VisitorClients } from "../lib/client";
import { keepStreaming } from "../lib/stream";
import { newId } from "../lib/ids";
import { isExpired, joinedName, visitorError } from "./text";

/** A message the visitor sent that the platform has not confirmed yet. */
export interface PendingMessage {
  clientId: string;
  content: string;
  attachments: Attachment[];
  /** The menu option picked, when the message answers a bot's menu. */
  menuChoice: string;
  /** Why the last attempt failed; unset while sending. */
  failed?: string;
}

/** Someone on the staff side typing, as the stream last said. */
export interface Typing {
  actorId: string;
  actorKind: ActorKind;
  /** When the indicator lapses without a new typing event (ms since the epoch). */
  until: number;
}

/** Everything the chat view shows of one conversation. */
export interface ChatState {
  conversation?: Conversation;
  /** Stored messages in sequence order, each once. */
  messages: Message[];
  pending: PendingMessage[];
  loading: boolean;
  /** Loading or the live stream failed for good. */
  error?: string;
  /** The visitor token is no longer accepted (or the conversation is gone). */
  expired: boolean;
  typing?: Typing;
  /** The place in the queue while the chat waits for an agent. */
  queue?: QueuePosition;
  /** The newest ticket made from the conversation. */
  ticket?: Ticket;
  ticketError?: string;
  /** Staff messages that arrived while the panel was closed. */
  unread: number;
}

type Action =
  | { type: "reset"; loading: boolean }
  | { type: "loaded"; conversation: Conversation; messages: Message[] }
  | { type: "message"; message: Message; conversation?: Conversation; unseen: boolean }
  | { type: "conversation"; conversation: Conversation }
  | { type: "send"; pending: PendingMessage }
  | { type: "sent"; clientId: string; message: Message }
  | { type: "sendFailed"; clientId: string; error: string }
  | { type: "typing"; actorId: string; actorKind: ActorKind; typing: boolean }
  | { type: "typingLapsed" }
  | { type: "queue"; queue?: QueuePosition }
  | { type: "ticket"; ticket?: Ticket; error?: string }
  | { type: "failed"; error: string; expired: boolean }
  | { type: "read" };

/** How long "… is typing" stays up without a new typing event. */
const TYPING_SHOWN_MS = 6_000;

const initial: ChatState = { messages: [], pending: [], loading: false, expired: false, unread: 0 };

/** `list` with `m` in sequence order, unless a message with its id is there already. */
function withMessage(list: Message[], m: Message): Message[] {
  if (list.some((x) => x.id === m.id)) return list;
  const last = list[list.length - 1];
  if (!last || last.sequence < m.sequence) return [...list, m];
  return [...list, m].sort((a, b) => (a.sequence < b.sequence ? -1 : a.sequence > b.sequence ? 1 : 0));
}

/** The newer of two copies of a conversation (they carry a version). */
function newer(cur: Conversation | undefined, next: Conversation): Conversation {
  if (!cur || cur.id !== next.id || next.version >= cur.version) return next;
  return cur;
}

/** True for what staff (an agent or a bot) say to the customer. */
function isStaffMessage(m: Message): boolean {
  return m.kind === MessageKind.OUTGOING;
}

function reduce(s: ChatState, a: Action): ChatState {
  switch (a.type) {
    case "reset":
      return { ...initial, loading: a.loading };
    case "loaded":
      return { ...s, loading: false, error: undefined, conversation: newer(s.conversation, a.conversation), messages: a.messages.reduce(withMessage, s.messages) };
    case "message": {
      if (s.messages.some((x) => x.id === a.message.id)) {
        return a.conversation ? { ...s, conversation: newer(s.conversation, a.conversation) } : s;
      }
      const fromTyper = s.typing && a.message.sender?.id === s.typing.actorId;
      return {
        ...s,
        messages: withMessage(s.messages, a.message),
        conversation: a.conversation ? newer(s.conversation, a.conversation) : s.conversation,
        pending: a.message.clientMessageId ? s.pending.filter((p) => p.clientId !== a.message.clientMessageId) : s.pending,
        typing: fromTyper ? undefined : s.typing,
        unread: s.unread + (a.unseen && isStaffMessage(a.message) ? 1 : 0),
      };
    }
    case "conversation":
      return { ...s, conversation: newer(s.conversation, a.conversation) };
    case "send": {
      const others = s.pending.filter((p) => p.clientId !== a.pending.clientId);
      return { ...s, pending: [...others, a.pending] };
    }
    case "sent":
      return { ...s, messages: withMessage(s.messages, a.message), pending: s.pending.filter((p) => p.clientId !== a.clientId) };
    case "sendFailed":
      return { ...s, pending: s.pending.map((p) => (p.clientId === a.clientId ? { ...p, failed: a.error } : p)) };
    case "typing":
      if (!a.typing) return s.typing?.actorId === a.actorId ? { ...s, typing: undefined } : s;
      return { ...s, typing: { actorId: a.actorId, actorKind: a.actorKind, until: Date.now() + TYPING_SHOWN_MS } };
    case "typingLapsed":
      return s.typing && s.typing.until <= Date.now() ? { ...s, typing: undefined } : s;
    case "queue":
      return { ...s, queue: a.queue };
    case "ticket":
      return { ...s, ticket: a.ticket ?? s.ticket, ticketError: a.error };
    case "failed":
      return { ...s, loading: false, error: a.error, expired: s.expired || a.expired };
    case "read":
      return s.unread ? { ...s, unread: 0 } : s;
  }
}

/**
 * Agent names the history reveals: each "… joined the conversation" line names the
 * next agent who writes, and the last one names the current assignee.
 */
function namesFromHistory(messages: Message[], assigneeId: string): Record<string, string> {
  const out: Record<string, string> = {};
  let lastJoined: string | undefined;
  let unclaimed: string | undefined;
  for (const m of messages) {
    const joined = m.kind === MessageKind.ACTIVITY ? joinedName(m.content) : undefined;
    if (joined) {
      lastJoined = joined;
      unclaimed = joined;
    } else if (m.kind === MessageKind.OUTGOING && m.sender?.kind === ActorKind.AGENT && unclaimed) {
      if (!(m.sender.id in out)) out[m.sender.id] = unclaimed;
      unclaimed = undefined;
    }
  }
  if (assigneeId && lastJoined) out[assigneeId] = lastJoined;
  return out;
}

/** What `useChat` needs from the widget around it. */
export interface ChatOptions {
  clients: VisitorClients;
  /** The conversation to show; empty: none. */
  conversationId: string;
  /** The panel is open (messages arriving while it is closed count as unread). */
  open: boolean;
  /** Records agent names learnt from the conversation. */
  learnAgents: (names: Record<string, string>) => void;
}

/** The live conversation and what the visitor can do in it. */
export interface Chat {
  state: ChatState;
  /** Sends a message (text, attachments, or a bot menu choice). */
  send: (content: string, attachments: Attachment[], menuChoice?: string) => void;
  /** Sends a failed message again, with the same client id (never duplicated). */
  retry: (clientId: string) => void;
  /** Tells staff the visitor is typing (throttled to once every few seconds). */
  typing: () => void;
  /** Ends the chat (the visitor may resolve its own conversation). */
  end: () => Promise<void>;
  /** Rates the resolved conversation. */
  rate: (rating: number, comment: string) => Promise<void>;
}

/** How often "the visitor is typing" is sent at most. */
const TYPING_SEND_MS = 3_000;

/** Keeps one conversation live; see the file comment. */
export function useChat({ clients, conversationId, open, learnAgents }: ChatOptions): Chat {
  const [state, dispatch] = useReducer(reduce, initial);
  const openRef = useRef(open);
  openRef.current = open;
  const learnRef = useRef(learnAgents);
  learnRef.current = learnAgents;
  const lastSequence = useRef(0n);
  const typingSent = useRef(0);
  const pendingRef = useRef(state.pending);
  pendingRef.current = state.pending;

  useEffect(() => {
    if (open) dispatch({ type: "read" });
  }, [open, state.unread]);

  // History, then the live stream resuming after it; the ticket card when there is one.
  useEffect(() => {
    dispatch({ type: "reset", loading: !!conversationId });
    lastSequence.current = 0n;
    if (!conversationId) return;
    const ctrl = new AbortController();
    const { signal } = ctrl;

    const readTicket = async () => {
      try {
        const res = await clients.ticketing.listTickets({ conversationId, orderBy: "-number", pageSize: 1 }, { signal });
        dispatch({ type: "ticket", ticket: res.tickets[0] });
      } catch (err) {
        if (!signal.aborted) dispatch({ type: "ticket", error: visitorError(err) });
      }
    };

    const loadHistory = async () => {
      const conversation = await clients.conversation.getConversation({ id: conversationId }, { signal });
      const messages = await readAll(
        (pageToken) => clients.conversation.listMessages({ conversationId, pageSize: 200, pageToken }, { signal }),
        (page) => page.messages,
      );
      for (const m of messages) if (m.sequence > lastSequence.current) lastSequence.current = m.sequence;
      dispatch({ type: "loaded", conversation, messages });
      learnRef.current(namesFromHistory(messages, conversation.assigneeId));
      if (messages.some((m) => m.activity === ActivityType.TICKET)) void readTicket();
    };

    const onUpdate = (res: SubscribeResponse) => {
      const u = res.update;
      switch (u.case) {
        case "messageCreated": {
          const m = u.value.message;
          if (!m) return;
          if (m.sequence > lastSequence.current) lastSequence.current = m.sequence;
          const conversation = u.value.conversation;
          const joined = m.kind === MessageKind.ACTIVITY ? joinedName(m.content) : undefined;
          if (joined && conversation?.assigneeId) learnRef.current({ [conversation.assigneeId]: joined });
          dispatch({ type: "message", message: m, conversation, unseen: !openRef.current });
          if (m.activity === ActivityType.TICKET) void readTicket();
          return;
        }
        case "conversationStatusChanged":
          if (u.value.conversation) dispatch({ type: "conversation", conversation: u.value.conversation });
          return;
        case "typing": {
          const actor = u.value.actor;
          if (!actor || actor.kind === ActorKind.CONTACT) return; // the visitor's own
          dispatch({ type: "typing", actorId: actor.id, actorKind: actor.kind, typing: u.value.typing });
          return;
        }
        default:
          return;
      }
    };

    const subscribe = async (s: AbortSignal) => {
      try {
        const stream = clients.conversation.subscribe(
          { conversationId, resumeAfterSequence: lastSequence.current },
          { signal: s },
        );
        for await (const res of stream) onUpdate(res);
      } catch (err) {
        // Too much missed to replay: read the history again, then resume after it.
        if (ConnectError.from(err).code === Code.OutOfRange) return loadHistory();
        throw err;
      }
    };

    const fail = (err: unknown) => {
      if (signal.aborted) return;
      const code = ConnectError.from(err).code;
      dispatch({ type: "failed", error: visitorError(err), expired: isExpired(err) || code === Code.NotFound || code === Code.PermissionDenied });
    };

    void (async () => {
      try {
        await loadHistory();
      } catch (err) {
        fail(err);
        return;
      }
      await keepStreaming(subscribe, signal, fail);
    })();
    return () => ctrl.abort();
  }, [clients, conversationId]);

  // The queue position, live, while the chat waits for an agent.
  const waiting = state.conversation?.status === ConversationStatus.OPEN && !state.conversation.assigneeId;
  useEffect(() => {
    dispatch({ type: "queue", queue: undefined });
    if (!conversationId || !waiting) return;
    const ctrl = new AbortController();
    const done = () => {
      dispatch({ type: "queue", queue: undefined });
      ctrl.abort();
    };
    void keepStreaming(
      async (signal) => {
        for await (const q of clients.routing.watchQueuePosition({ conversationId }, { signal })) {
          if (q.assignedAgentId || q.position === 0) return done();
          dispatch({ type: "queue", queue: q });
        }
        done(); // the stream ends when the chat leaves the queue
      },
      ctrl.signal,
      done, // not queued (e.g. with a bot, or left without an agent): no line to show
    );
    return () => ctrl.abort();
  }, [clients, conversationId, waiting]);

  // "… is typing" lapses when no new typing event comes.
  useEffect(() => {
    if (!state.typing) return;
    const t = setTimeout(() => dispatch({ type: "typingLapsed" }), Math.max(0, state.typing.until - Date.now()) + 50);
    return () => clearTimeout(t);
  }, [state.typing]);

  const deliver = useCallback(
    async (p: PendingMessage) => {
      dispatch({ type: "send", pending: { ...p, failed: undefined } });
      try {
        const message = await clients.conversation.sendMessage({
          conversationId,
          content: p.content,
          attachments: p.attachments,
          clientMessageId: p.clientId,
          menuChoice: p.menuChoice,
        });
        dispatch({ type: "sent", clientId: p.clientId, message });
      } catch (err) {
        dispatch({ type: "sendFailed", clientId: p.clientId, error: visitorError(err) });
      }
    },
    [clients, conversationId],
  );

  const send = useCallback(
    (content: string, attachments: Attachment[], menuChoice = "") => {
      if (typingSent.current) {
        typingSent.current = 0;
        // Best effort: a lost "stopped typing" only leaves the agent's indicator up a little longer.
        clients.conversation.sendTyping({ conversationId, typing: false }).catch(() => undefined);
      }
      void deliver({
        clientId: newId(),
        content,
        attachments: attachments.map((a) => create(AttachmentSchema, a)),
        menuChoice,
      });
    },
    [clients, conversationId, deliver],
  );

  const retry = useCallback(
    (clientId: string) => {
      const p = pendingRef.current.find((x) => x.clientId === clientId);
      if (p) void deliver(p);
    },
    [deliver],
  );

  const typing = useCallback(() => {
    const now = Date.now();
    if (!conversationId || now - typingSent.current < TYPING_SEND_MS) return;
    typingSent.current = now;
    // Best effort: the indicator is a courtesy, a lost one changes nothing stored.
    clients.conversation.sendTyping({ conversationId, typing: true }).catch(() => undefined);
  }, [clients, conversationId]);

  const end = useCallback(async () => {
    const conversation = await clients.conversation.setStatus({ conversationId, status: ConversationStatus.RESOLVED });
    dispatch({ type: "conversation", conversation });
  }, [clients, conversationId]);

  const rate = useCallback(
    async (rating: number, comment: string) => {
      const conversation = await clients.conversation.rateConversation({ conversationId, rating, comment });
      dispatch({ type: "conversation", conversation });
    },
    [clients, conversationId],
  );

  return { state, send, retry, typing, end, rate };
}
