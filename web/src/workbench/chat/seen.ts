// What the agent has read: per conversation, the last customer message this browser
// showed them (the platform keeps no read markers for staff), for the unread dots.

import { useSyncExternalStore } from "react";

const watchers = new Set<() => void>();
let cache: { key: string; seen: Record<string, number> } | undefined;

function storageKey(account: string, me: string) {
  return `helpdesk.workbench.seen.${account}.${me}`;
}

function read(key: string): Record<string, number> {
  if (cache?.key !== key) {
    let seen: Record<string, number> = {};
    try {
      seen = JSON.parse(localStorage.getItem(key) ?? "{}") as Record<string, number>;
    } catch {
      seen = {};
    }
    cache = { key, seen };
  }
  return cache.seen;
}

/** Records that the customer messages up to `sequence` were shown. */
export function markSeen(account: string, me: string, conversationId: string, sequence: number) {
  const key = storageKey(account, me);
  const seen = read(key);
  if ((seen[conversationId] ?? 0) >= sequence) return;
  const next = { ...seen, [conversationId]: sequence };
  // Keeps the newest few hundred entries.
  const entries = Object.entries(next);
  const kept = entries.length > 500 ? Object.fromEntries(entries.slice(entries.length - 500)) : next;
  cache = { key, seen: kept };
  try {
    localStorage.setItem(key, JSON.stringify(kept));
  } catch {
    // Storage full or disabled: unread dots last for this page only.
  }
  watchers.forEach((f) => f());
}

/** The last customer message sequence shown, by conversation id. */
export function useSeen(account: string, me: string): Record<string, number> {
  return useSyncExternalStore(
    (f) => {
      watchers.add(f);
      return () => watchers.delete(f);
    },
    () => read(storageKey(account, me)),
  );
}
