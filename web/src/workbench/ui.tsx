// Small building blocks shared by the workbench's pages.

import { useCallback, useEffect, useRef, useState } from "react";
import { describe } from "../lib/errors";
import { keepStreaming } from "../lib/stream";

/** The result of a call made when a page opens (and again on `reload`). */
export interface Loaded<T> {
  data?: T;
  error?: string;
  loading: boolean;
  reload: () => void;
}

/** Calls `load` when `deps` change; keeps the last good data while reloading. */
export function useLoad<T>(load: () => Promise<T>, deps: unknown[]): Loaded<T> {
  const [state, setState] = useState<{ data?: T; error?: string; loading: boolean }>({ loading: true });
  const [tick, setTick] = useState(0);
  useEffect(() => {
    let live = true;
    setState((s) => ({ ...s, loading: true }));
    load().then(
      (data) => live && setState({ data, loading: false }),
      (err) => live && setState((s) => ({ data: s.data, error: describe(err), loading: false })),
    );
    return () => {
      live = false;
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, tick]);
  const reload = useCallback(() => setTick((t) => t + 1), []);
  return { ...state, reload };
}

/**
 * Keeps a server stream open while the component is shown (reopening it after a lost
 * connection): `open` consumes the stream until it ends.
 */
export function useLive(open: (signal: AbortSignal) => Promise<void>, deps: unknown[]): string | undefined {
  const [error, setError] = useState<string>();
  const ref = useRef(open);
  ref.current = open;
  useEffect(() => {
    const ctl = new AbortController();
    setError(undefined);
    keepStreaming((s) => ref.current(s), ctl.signal, (err) => setError(describe(err)));
    return () => ctl.abort();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, deps);
  return error;
}

/** Runs an action, reporting its failure; returns true when it succeeded. */
export function useAction(): [(run: () => Promise<unknown>) => Promise<boolean>, string | undefined, boolean] {
  const [error, setError] = useState<string>();
  const [busy, setBusy] = useState(false);
  const act = useCallback(async (run: () => Promise<unknown>) => {
    setBusy(true);
    setError(undefined);
    try {
      await run();
      return true;
    } catch (err) {
      setError(describe(err));
      return false;
    } finally {
      setBusy(false);
    }
  }, []);
  return [act, error, busy];
}

export function ErrorLine({ error }: { error?: string }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

export function Empty({ children }: { children: React.ReactNode }) {
  return <p className="empty muted">{children}</p>;
}

/** A modal dialog with a title; closes on Escape or the backdrop. */
export function Dialog({ title, onClose, children }: { title: string; onClose: () => void; children: React.ReactNode }) {
  useEffect(() => {
    const on = (e: KeyboardEvent) => e.key === "Escape" && onClose();
    window.addEventListener("keydown", on);
    return () => window.removeEventListener("keydown", on);
  }, [onClose]);
  return (
    <div className="backdrop" onClick={onClose}>
      <div className="dialog" role="dialog" aria-label={title} onClick={(e) => e.stopPropagation()}>
        <header>
          <h3>{title}</h3>
          <button className="link" onClick={onClose} aria-label="Close">
            ✕
          </button>
        </header>
        {children}
      </div>
    </div>
  );
}
