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

/** A list read a page at a time: what `usePages` gives. */
export interface Pages<T> extends Loaded<T[]> {
  /** Reads the next page too; unset on the last page. */
  more?: () => void;
}

/**
 * Reads a list a page at a time: `page` reads the page at a token, `items` picks its
 * items. The pages shown are read again when `deps` change and on `reload`; the list
 * starts again from its first page when `from` (its filters) change.
 */
export function usePages<R extends { nextPageToken: string }, T>(
  page: (pageToken: string) => Promise<R>,
  items: (res: R) => T[],
  from: unknown[],
  deps: unknown[],
): Pages<T> {
  const [tokens, setTokens] = useState({ from, list: [""] });
  if (tokens.from.length !== from.length || tokens.from.some((v, i) => !Object.is(v, from[i]))) setTokens({ from, list: [""] });
  const loaded = useLoad(async () => {
    const pages = await Promise.all(tokens.list.map(page));
    return { items: pages.flatMap(items), next: pages[pages.length - 1].nextPageToken };
  }, [...from, ...deps, tokens]);
  const next = loaded.data?.next;
  return {
    data: loaded.data?.items,
    error: loaded.error,
    loading: loaded.loading,
    reload: loaded.reload,
    more: next ? () => setTokens({ from, list: [...tokens.list, next] }) : undefined,
  };
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

/** A failed call's message, or nothing. */
export function ErrorLine({ error }: { error?: string }) {
  return error ? (
    <p className="error" role="alert">
      {error}
    </p>
  ) : null;
}

/** What an empty list says instead. */
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

/** A term and its description, inside a `<dl>`. */
export function Fact(props: { label: React.ReactNode; className?: string; title?: string; children: React.ReactNode }) {
  return (
    <>
      <dt>{props.label}</dt>
      <dd className={props.className} title={props.title}>
        {props.children}
      </dd>
    </>
  );
}

/** One `<option>`: a [value, label] pair (further entries are not shown), or a word that is both. */
export type Choice = string | readonly [string | number, React.ReactNode, ...unknown[]];

/** The `<option>`s of a select. */
export function Options({ of }: { of: readonly Choice[] }) {
  return (
    <>
      {of.map((o) => {
        const [value, label] = typeof o === "string" ? [o, o] : o;
        return (
          <option key={value} value={value}>
            {label}
          </option>
        );
      })}
    </>
  );
}

/** The current time, moving every `ms` milliseconds (for clocks and countdowns; no calls). */
export function useNow(ms = 1000): number {
  const [now, setNow] = useState(() => Date.now());
  useEffect(() => {
    const t = setInterval(() => setNow(Date.now()), ms);
    return () => clearInterval(t);
  }, [ms]);
  return now;
}

/** Calls `f` once `ms` after the last of a burst of calls of the returned function. */
export function useDebounced(f: () => void, ms: number): () => void {
  const ref = useRef(f);
  ref.current = f;
  const timer = useRef<ReturnType<typeof setTimeout>>(undefined);
  useEffect(() => () => clearTimeout(timer.current), []);
  return useRef(() => {
    clearTimeout(timer.current);
    timer.current = setTimeout(() => ref.current(), ms);
  }).current;
}
