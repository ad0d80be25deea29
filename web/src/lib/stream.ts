// Live server streams that reopen by themselves after a lost connection.

import { isTransient } from "./errors";

/**
 * Runs `open` (which consumes one server stream until it ends) again and again until
 * `signal` aborts, waiting a little longer after each failure (up to 10 s). Errors that
 * retrying cannot fix are passed to `onError` and end the loop.
 */
export async function keepStreaming(
  open: (signal: AbortSignal) => Promise<void>,
  signal: AbortSignal,
  onError?: (err: unknown) => void,
): Promise<void> {
  let delay = 500;
  while (!signal.aborted) {
    const started = Date.now();
    try {
      await open(signal);
    } catch (err) {
      if (signal.aborted) return;
      if (!isTransient(err)) {
        onError?.(err);
        return;
      }
    }
    if (signal.aborted) return;
    if (Date.now() - started > 30_000) delay = 500;
    await new Promise((r) => setTimeout(r, delay));
    delay = Math.min(delay * 2, 10_000);
  }
}
