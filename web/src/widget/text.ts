// Small helpers for what the widget writes on screen.

import { Code, ConnectError } from "@connectrpc/connect";
import { describe } from "../lib/errors";

/** "order_number" → "Order number". */
export function humanize(key: string): string {
  const words = key.replace(/[_-]+/g, " ").replace(/([a-z])([A-Z])/g, "$1 $2").trim().toLowerCase();
  return words.charAt(0).toUpperCase() + words.slice(1);
}

/** "820 B", "14 KB", "3.2 MB". */
export function fileSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} B`;
  if (bytes < 1024 * 1024) return `${Math.round(bytes / 1024)} KB`;
  return `${(bytes / 1024 / 1024).toFixed(1)} MB`;
}

/**
 * The agent a platform line announces ("Ana joined the conversation" → "Ana"). The
 * visitor may not read the agent directory, so this line is where names come from.
 */
export function joinedName(content: string): string | undefined {
  const m = /^(.+) joined the conversation$/.exec(content.trim());
  return m?.[1];
}

/** True when the call failed because the visitor's token is no longer accepted. */
export function isExpired(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Unauthenticated;
}

/** A failed call as the visitor should read it. */
export function visitorError(err: unknown): string {
  if (isExpired(err)) return "This chat session has expired.";
  const e = ConnectError.from(err);
  // The browser could not reach the service at all (offline, blocked).
  if (e.code === Code.Unknown && e.cause instanceof TypeError) return "No connection; check your network.";
  return describe(err);
}
