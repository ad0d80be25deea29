// Server streams shared by every view of the workbench that needs them: one stream per
// kind is held open while anything listens (browsers allow few open requests per
// service), reopened after a lost connection, and fanned out to the listeners.

import { useEffect, useRef, useSyncExternalStore } from "react";
import type { SubscribeResponse } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { TransferState, type Transfer } from "../../gen/helpdesk/routing/v1/routing_pb";
import type { NotificationUpdate } from "../../gen/helpdesk/notification/v1/notification_pb";
import type { TicketChangeNotice } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import type { Clients } from "../../lib/client";
import { describe } from "../../lib/errors";
import { keepStreaming } from "../../lib/stream";

/** What a listener of a shared stream is told. */
export interface Listener<T> {
  /** Each item the stream sends. */
  item?: (item: T) => void;
  /**
   * The stream was (re)established after the listener joined: whatever was read
   * before may have missed items, so a view reloads its data here.
   */
  ready?: () => void;
}

/** Opens one stream; calls `onReady` once the server has answered with its headers. */
type Opener<T> = (signal: AbortSignal, onReady: () => void) => AsyncIterable<T>;

/** A server stream opened while it has listeners and closed a little after the last leaves. */
export class SharedStream<T> {
  private listeners = new Set<Listener<T>>();
  private ctl?: AbortController;
  private closing?: ReturnType<typeof setTimeout>;
  private watchers = new Set<() => void>();
  /** True while the stream is established. */
  ready = false;
  /** Why the stream stopped for good (a refusal retrying cannot fix). */
  error?: string;

  constructor(private open: Opener<T>) {}

  /** Adds a listener; returns the function that removes it. */
  listen(l: Listener<T>): () => void {
    this.listeners.add(l);
    if (this.closing) {
      clearTimeout(this.closing);
      this.closing = undefined;
    }
    if (!this.ctl) this.start();
    return () => {
      this.listeners.delete(l);
      if (this.listeners.size === 0 && !this.closing) {
        this.closing = setTimeout(() => this.stop(), 3000);
      }
    };
  }

  /** For useSyncExternalStore: notified when `ready` or `error` change. */
  watch = (f: () => void): (() => void) => {
    this.watchers.add(f);
    return () => this.watchers.delete(f);
  };

  private changed() {
    this.watchers.forEach((f) => f());
  }

  private start() {
    const ctl = new AbortController();
    this.ctl = ctl;
    this.error = undefined;
    void keepStreaming(
      async (signal) => {
        try {
          for await (const item of this.open(signal, () => {
            this.ready = true;
            this.error = undefined;
            this.changed();
            this.listeners.forEach((l) => l.ready?.());
          })) {
            this.listeners.forEach((l) => l.item?.(item));
          }
        } finally {
          if (this.ready) {
            this.ready = false;
            this.changed();
          }
        }
      },
      ctl.signal,
      (err) => {
        this.error = describe(err);
        this.ctl = undefined;
        this.changed();
      },
    );
  }

  private stop() {
    this.closing = undefined;
    this.ctl?.abort();
    this.ctl = undefined;
    this.ready = false;
  }
}

/**
 * Listens to a shared stream while the component is shown; returns the stream's
 * error, if it stopped for good. The callbacks may change on every render.
 */
export function useShared<T>(stream: SharedStream<T> | undefined, listener: Listener<T>): string | undefined {
  const ref = useRef(listener);
  ref.current = listener;
  useEffect(() => {
    if (!stream) return;
    return stream.listen({ item: (x) => ref.current.item?.(x), ready: () => ref.current.ready?.() });
  }, [stream]);
  return useSyncExternalStore(stream?.watch ?? noWatch, () => stream?.error);
}

const noWatch = () => () => {};

/** The streams of one signed-in session. */
export interface Hub {
  /** The account's conversation events (staff, unfiltered: views filter). */
  conversations: SharedStream<SubscribeResponse>;
  /** Transfers offered to or sent by the signed-in agent. */
  transfers: SharedStream<Transfer>;
  /** The signed-in person's notifications and unread count. */
  notifications: SharedStream<NotificationUpdate>;
  /** Every change of the account's tickets (staff; views filter). */
  tickets: SharedStream<TicketChangeNotice>;
  /** Transfers as last heard of, by id (kept while `transfers` is open). */
  transferStore: TransferStore;
}

const hubs = new WeakMap<Clients, Hub>();

/** The shared streams of the session the clients belong to. */
export function hubOf(clients: Clients): Hub {
  let hub = hubs.get(clients);
  if (!hub) {
    const transfers = new SharedStream<Transfer>((signal, onHeader) =>
      clients.routing.watchTransfers({}, { signal, onHeader }),
    );
    hub = {
      conversations: new SharedStream((signal, onHeader) => clients.conversation.subscribe({}, { signal, onHeader })),
      transfers,
      notifications: new SharedStream((signal, onHeader) =>
        clients.notification.watchNotifications({}, { signal, onHeader }),
      ),
      tickets: new SharedStream((signal, onHeader) => clients.ticketing.watchTickets({}, { signal, onHeader })),
      transferStore: new TransferStore(),
    };
    hubs.set(clients, hub);
  }
  return hub;
}

/** Transfers by id, newest state wins; views read it with `useTransfers`. */
export class TransferStore {
  private byId = new Map<string, Transfer>();
  private snapshot: Transfer[] = [];
  private watchers = new Set<() => void>();

  /** Records a transfer's state (an older copy never replaces a newer one). */
  put(t: Transfer) {
    const known = this.byId.get(t.id);
    if (known && known.state !== TransferState.PENDING && t.state === TransferState.PENDING) return;
    this.byId.set(t.id, t);
    this.snapshot = [...this.byId.values()];
    this.watchers.forEach((f) => f());
  }

  watch = (f: () => void): (() => void) => {
    this.watchers.add(f);
    return () => this.watchers.delete(f);
  };

  /** Forgets pending transfers (a reopened stream sends those still pending again). */
  forgetPending() {
    for (const [id, t] of this.byId) if (t.state === TransferState.PENDING) this.byId.delete(id);
    this.snapshot = [...this.byId.values()];
    this.watchers.forEach((f) => f());
  }

  all = (): Transfer[] => this.snapshot;
}

/** The transfers heard of on the shared stream (kept open while shown). */
export function useTransfers(hub: Hub, enabled: boolean): Transfer[] {
  useShared(enabled ? hub.transfers : undefined, {
    item: (t) => hub.transferStore.put(t),
    ready: () => hub.transferStore.forgetPending(),
  });
  return useSyncExternalStore(hub.transferStore.watch, hub.transferStore.all);
}

/** Resolves when `signal` aborts: a live view with nothing to watch yet waits here. */
export function untilAborted(signal: AbortSignal): Promise<void> {
  return new Promise((done) => signal.addEventListener("abort", () => done(), { once: true }));
}
