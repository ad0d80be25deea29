// What the chat views look up again and again, read once per session and shared:
// contacts, the agent directory and teams, and the last message of each conversation.

import { useEffect, useState, useSyncExternalStore } from "react";
import { ActivityType, MessageKind, type Contact, type Message } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import type { Agent, Team } from "../../gen/helpdesk/routing/v1/routing_pb";
import type { Clients } from "../../lib/client";
import { describe } from "../../lib/errors";
import { listAllAgents } from "../admin/directory";

/** A value loaded once per key, shared by every view that asks for it. */
class Cache<V> {
  private values = new Map<string, V>();
  private loading = new Map<string, Promise<void>>();
  private errors = new Map<string, string>();
  private watchers = new Set<() => void>();
  private version = 0;

  constructor(private load: (key: string) => Promise<V>) {}

  get(key: string): V | undefined {
    return this.values.get(key);
  }

  error(key: string): string | undefined {
    return this.errors.get(key);
  }

  set(key: string, value: V) {
    this.values.set(key, value);
    this.errors.delete(key);
    this.bump();
  }

  /** Starts loading `key` unless it is known or on its way. */
  want(key: string) {
    if (!key || this.values.has(key) || this.loading.has(key) || this.errors.has(key)) return;
    const p = this.load(key).then(
      (v) => this.set(key, v),
      (err) => {
        this.errors.set(key, describe(err));
        this.bump();
      },
    );
    this.loading.set(
      key,
      p.finally(() => this.loading.delete(key)),
    );
  }

  /** Loads `key` again (its value changed). */
  refresh(key: string) {
    this.errors.delete(key);
    this.values.delete(key);
    this.want(key);
  }

  private bump() {
    this.version++;
    this.watchers.forEach((f) => f());
  }

  watch = (f: () => void): (() => void) => {
    this.watchers.add(f);
    return () => this.watchers.delete(f);
  };

  snapshot = (): number => this.version;
}

/** A sequence above any message's: reading before it gives a conversation's newest page. */
export const NEWEST = 2n ** 53n;

/** Messages read at a time for a summary. */
const SUMMARY_PAGE = 20;

/** The newest message of a conversation worth showing in a list, and its last customer message. */
interface Summary {
  last?: Message;
  /** Sequence of the newest message from the customer (0: none). */
  lastIncoming: number;
}

interface Caches {
  contacts: Cache<Contact>;
  summaries: Cache<Summary>;
}

const caches = new WeakMap<Clients, Caches>();

function cachesOf(clients: Clients): Caches {
  let c = caches.get(clients);
  if (!c) {
    c = {
      contacts: new Cache((id) => clients.conversation.getContact({ id })),
      summaries: new Cache((id) => limited(() => readSummary(clients, id))),
    };
    caches.set(clients, c);
  }
  return c;
}

/**
 * Reads a conversation's latest messages for its summary, and further back only while
 * no customer message has been met and earlier ones remain.
 */
async function readSummary(clients: Clients, conversationId: string): Promise<Summary> {
  let summary: Summary = { lastIncoming: 0 };
  let before = NEWEST;
  for (;;) {
    const page = await clients.conversation.listMessages({ conversationId, pageSize: SUMMARY_PAGE, beforeSequence: before });
    for (const m of page.messages) summary = summarize(summary, m);
    if (summary.lastIncoming || !page.hasEarlier || !page.messages.length) return summary;
    before = page.messages[0].sequence;
  }
}

/** The summary after one more message. */
function summarize(s: Summary, m: Message): Summary {
  // Platform lines (activity, and the notes recording transfers or handoffs) are not what anyone wrote.
  const shown = m.kind !== MessageKind.ACTIVITY && m.activity === ActivityType.UNSPECIFIED;
  return {
    last: shown && (!s.last || m.sequence >= s.last.sequence) ? m : s.last,
    lastIncoming: m.kind === MessageKind.INCOMING ? Math.max(s.lastIncoming, Number(m.sequence)) : s.lastIncoming,
  };
}

// A few summaries are read at a time, so a long list does not flood the service.
let running = 0;
const waiting: (() => void)[] = [];
async function limited<T>(f: () => Promise<T>): Promise<T> {
  if (running >= 3) await new Promise<void>((r) => waiting.push(r));
  running++;
  try {
    return await f();
  } finally {
    running--;
    waiting.shift()?.();
  }
}

/** A contact by id (undefined while loading); `error` when it could not be read. */
export function useContact(clients: Clients, id: string | undefined): { contact?: Contact; error?: string } {
  const cache = cachesOf(clients).contacts;
  useSyncExternalStore(cache.watch, cache.snapshot);
  useEffect(() => {
    if (id) cache.want(id);
  }, [cache, id]);
  return id ? { contact: cache.get(id), error: cache.error(id) } : {};
}

/** Values of `cache` by id for a list: asks for the missing ones. */
function useMany<V>(cache: Cache<V>, ids: string[]): (id: string) => V | undefined {
  useSyncExternalStore(cache.watch, cache.snapshot);
  const key = ids.join(",");
  useEffect(() => {
    ids.forEach((id) => cache.want(id));
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [cache, key]);
  return (id) => cache.get(id);
}

/** Contacts by id for a list: asks for the missing ones. */
export function useContacts(clients: Clients, ids: string[]): (id: string) => Contact | undefined {
  return useMany(cachesOf(clients).contacts, ids);
}

/** Remembers a contact an event carried. */
export function rememberContact(clients: Clients, c: Contact) {
  cachesOf(clients).contacts.set(c.id, c);
}

/** Summaries of conversations for a list: asks for the missing ones. */
export function useSummaries(clients: Clients, ids: string[]): (id: string) => Summary | undefined {
  return useMany(cachesOf(clients).summaries, ids);
}

/** Adds a message heard live to its conversation's summary (when the summary is known). */
export function noteMessage(clients: Clients, m: Message) {
  const cache = cachesOf(clients).summaries;
  const s = cache.get(m.conversationId);
  if (s) cache.set(m.conversationId, summarize(s, m));
}

/** The agent directory and the teams, read once per session and shared by the chat views. */
export interface SessionDirectory {
  agents: Agent[];
  teams: Team[];
  agent: (id: string) => Agent | undefined;
  team: (id: string) => Team | undefined;
  /** An agent's name, else the id. */
  agentName: (id: string) => string;
  teamName: (id: string) => string;
  error?: string;
  reload: () => void;
}

interface DirectoryState {
  agents: Agent[];
  teams: Team[];
  error?: string;
}

const directories = new WeakMap<Clients, { state: DirectoryState; promise?: Promise<void>; watchers: Set<() => void> }>();

async function readDirectory(clients: Clients): Promise<DirectoryState> {
  const agents = await listAllAgents(clients);
  const { teams } = await clients.routing.listTeams({});
  return { agents, teams };
}

/** The agent directory and teams, read once per session (and again on `reload`). */
export function useSessionDirectory(clients: Clients): SessionDirectory {
  let d = directories.get(clients);
  if (!d) {
    d = { state: { agents: [], teams: [] }, watchers: new Set() };
    directories.set(clients, d);
  }
  const entry = d;
  const [, setTick] = useState(0);
  useEffect(() => {
    const f = () => setTick((t) => t + 1);
    entry.watchers.add(f);
    if (!entry.promise) load();
    return () => {
      entry.watchers.delete(f);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [entry]);
  function load() {
    entry.promise = readDirectory(clients).then(
      (s) => {
        entry.state = s;
      },
      (err) => {
        entry.state = { ...entry.state, error: describe(err) };
      },
    );
    void entry.promise.then(() => entry.watchers.forEach((f) => f()));
  }
  const { agents, teams, error } = entry.state;
  const agent = (id: string) => agents.find((a) => a.id === id);
  const team = (id: string) => teams.find((t) => t.id === id);
  return {
    agents,
    teams,
    agent,
    team,
    agentName: (id) => agent(id)?.name || id,
    teamName: (id) => team(id)?.name || "Unknown team",
    error,
    reload: load,
  };
}
