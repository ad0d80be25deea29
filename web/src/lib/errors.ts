// Turns a failed call into a line a person can act on.

import { Code, ConnectError } from "@connectrpc/connect";

/** The message to show for a failed call (field violations named when present). */
export function describe(err: unknown): string {
  const e = ConnectError.from(err);
  switch (e.code) {
    case Code.Unavailable:
      return "The service is unreachable; retrying may help.";
    case Code.PermissionDenied:
      return `Not allowed: ${e.rawMessage}`;
    case Code.Unauthenticated:
      return "Your session has expired; sign in again.";
    default:
      return e.rawMessage || String(e.code);
  }
}

/** True when the error means the stream should simply be opened again. */
export function isTransient(err: unknown): boolean {
  const code = ConnectError.from(err).code;
  return code === Code.Unavailable || code === Code.Unknown || code === Code.Canceled || code === Code.Internal;
}
