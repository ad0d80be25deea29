// Page, card, table and form pieces shared by the ticket, supervisor and admin pages.

import { useId, useState } from "react";
import { go } from "../route";
import { Empty, ErrorLine } from "../ui";
import "./kit.css";

/** A page's title line, with an optional link back and actions on the right. */
export function PageHeader(props: {
  title: React.ReactNode;
  sub?: React.ReactNode;
  back?: { href: string; label: string };
  actions?: React.ReactNode;
}) {
  return (
    <div className="hk-head">
      <div>
        {props.back && (
          <a className="hk-back" href={props.back.href}>
            ← {props.back.label}
          </a>
        )}
        <h2>{props.title}</h2>
        {props.sub && <p className="hk-sub">{props.sub}</p>}
      </div>
      {props.actions && <div className="hk-actions">{props.actions}</div>}
    </div>
  );
}

/** A white panel with a title bar and a body. */
export function Card(props: {
  title?: React.ReactNode;
  sub?: React.ReactNode;
  actions?: React.ReactNode;
  /** No padding around the body (tables). */
  tight?: boolean;
  testId?: string;
  children: React.ReactNode;
}) {
  return (
    <section className="hk-card" data-testid={props.testId}>
      {(props.title || props.actions) && (
        <header>
          <h3>{props.title}</h3>
          {props.sub && <span className="hk-sub">{props.sub}</span>}
          {props.actions && <div className="hk-actions">{props.actions}</div>}
        </header>
      )}
      <div className={`hk-body ${props.tight ? "tight" : ""}`}>{props.children}</div>
    </section>
  );
}

/** The page of one item of a list while the list loads, or when it has no such item. */
export function MissingItem(props: { back: { href: string; label: string }; loading: boolean; error?: string; loadingText?: string }) {
  return (
    <div className="hk-page">
      <a className="hk-back" href={props.back.href}>
        ← {props.back.label}
      </a>
      {props.loading ? <div className="hk-loading">{props.loadingText ?? "Loading…"}</div> : <ErrorLine error={props.error} />}
    </div>
  );
}

/** A list's state: the call's error, then a loading line until the first answer, what it says when empty, or the list. */
export function ListState(props: {
  error?: string;
  loading: boolean;
  loadingText: string;
  count: number;
  empty: React.ReactNode;
  children: React.ReactNode;
}) {
  return (
    <>
      <ErrorLine error={props.error} />
      {props.loading ? (
        <div className="hk-loading">{props.loadingText}</div>
      ) : props.count === 0 ? (
        <Empty>{props.empty}</Empty>
      ) : (
        props.children
      )}
    </>
  );
}

/** The "Load more" line under a list read a page at a time (nothing on the last page). */
function LoadMore({ more }: { more?: () => void }) {
  return more ? (
    <div className="hk-pager">
      <button className="small" onClick={more}>
        Load more
      </button>
    </div>
  ) : null;
}

/** A table column's heading: its text, or the text with right alignment for figures, a tooltip or a width. */
export type Column = string | { label?: React.ReactNode; num?: boolean; title?: string; width?: number };

/** A table: a heading row of `columns` (none when unset) over the rows given; `wrap` lets it scroll sideways. */
export function Table(props: { columns?: Column[]; wrap?: boolean; className?: string; testId?: string; children: React.ReactNode }) {
  const table = (
    <table className={props.className ? `hk-table ${props.className}` : "hk-table"} data-testid={props.testId}>
      {props.columns && (
        <thead>
          <tr>
            {props.columns.map((c, i) => {
              const col = typeof c === "string" ? { label: c } : c;
              return (
                <th key={i} className={col.num ? "num" : undefined} title={col.title} style={col.width ? { width: col.width } : undefined}>
                  {col.label}
                </th>
              );
            })}
          </tr>
        </thead>
      )}
      <tbody>{props.children}</tbody>
    </table>
  );
  return props.wrap ? <div className="hk-table-wrap">{table}</div> : table;
}

/** A key figure: what it counts, the figure (red when `alert`), and a line under it. */
export function Stat(props: { label: string; value: React.ReactNode; foot: React.ReactNode; alert?: boolean; testId?: string }) {
  return (
    <div className={`hk-stat${props.alert ? " alert" : ""}`}>
      <div className="hk-stat-label">{props.label}</div>
      <div className="hk-stat-value" data-testid={props.testId}>
        {props.value}
      </div>
      <div className="hk-stat-foot">{props.foot}</div>
    </div>
  );
}

/**
 * A card listing rows in a table (`columns` over the rows given as children): the list's
 * error, a loading line until the first answer, what it says when empty, else the table;
 * then "Load more" when `more` is set, and `after` (a pager, a note).
 */
export function ListCard(props: {
  title?: React.ReactNode;
  sub?: React.ReactNode;
  actions?: React.ReactNode;
  testId?: string;
  error?: string;
  loading: boolean;
  loadingText: string;
  count: number;
  empty: React.ReactNode;
  columns?: Column[];
  wrap?: boolean;
  tableClass?: string;
  more?: () => void;
  after?: React.ReactNode;
  children: React.ReactNode;
}) {
  return (
    <Card title={props.title} sub={props.sub} actions={props.actions} testId={props.testId} tight>
      <ListState error={props.error} loading={props.loading} loadingText={props.loadingText} count={props.count} empty={props.empty}>
        <Table columns={props.columns} wrap={props.wrap} className={props.tableClass}>
          {props.children}
        </Table>
      </ListState>
      <LoadMore more={props.more} />
      {props.after}
    </Card>
  );
}

/** A labelled form control with a hint and the platform's complaint about it, if any. */
export function Field(props: {
  label: React.ReactNode;
  hint?: React.ReactNode;
  error?: string;
  wide?: boolean;
  children: React.ReactNode;
}) {
  const cls = `hk-field${props.wide ? " wide" : ""}${props.error ? " invalid" : ""}`;
  return (
    <div className={cls}>
      <label className="hk-label">{props.label}</label>
      {props.children}
      {props.error ? <span className="hk-field-error">{props.error}</span> : props.hint && <span className="hk-hint">{props.hint}</span>}
    </div>
  );
}

/** One bad field named by an INVALID_ARGUMENT answer. */
interface Violation {
  field: string;
  description: string;
}

/** The field violations in a described INVALID_ARGUMENT ("invalid argument: a: b; c: d"). */
function violations(error?: string): Violation[] {
  if (!error) return [];
  const body = error.replace(/^invalid argument:\s*/i, "");
  if (body === error && !/^[\w.[\]-]+: /.test(error)) return [];
  const out: Violation[] = [];
  for (const part of body.split(/;\s+/)) {
    const m = /^([\w.[\]-]+):\s*(.*)$/s.exec(part);
    if (m) out.push({ field: m[1], description: m[2] });
  }
  return out;
}

/**
 * The complaint about one field: a violation whose path is `path`, or lies under it,
 * or ends with it (the request's wrapper, e.g. `inbox.`, left off).
 */
export function fieldError(error: string | undefined, path: string): string | undefined {
  for (const v of violations(error)) {
    const f = v.field;
    if (f === path || f.endsWith(`.${path}`) || f.startsWith(`${path}.`) || f.startsWith(`${path}[`) || f.includes(`.${path}[`) || f.includes(`.${path}.`))
      return v.description;
  }
  return undefined;
}

/** A failed call: field by field for INVALID_ARGUMENT, else the message. */
export function FormErrors({ error }: { error?: string }) {
  if (!error) return null;
  const list = violations(error);
  if (list.length === 0) return <ErrorLine error={error} />;
  return (
    <div className="hk-errors" role="alert">
      Please correct {list.length === 1 ? "this field" : "these fields"}:
      <ul>
        {list.map((v, i) => (
          <li key={i}>
            <code>{v.field}</code> {v.description}
          </li>
        ))}
      </ul>
    </div>
  );
}

/** The bar under a form that stays in view: the call's complaint, "Saved", Cancel and the save button. */
export function SaveBar(props: {
  error?: string;
  saved?: boolean;
  busy: boolean;
  label: string;
  onSave: () => void;
  onCancel?: () => void;
  disabled?: boolean;
  testId?: string;
}) {
  return (
    <div className="adm-savebar">
      <FormErrors error={props.error} />
      {props.saved && <span className="adm-saved">Saved</span>}
      {props.onCancel && (
        <button type="button" onClick={props.onCancel}>
          Cancel
        </button>
      )}
      <button className="primary" data-testid={props.testId} disabled={props.busy || props.disabled} onClick={props.onSave}>
        {props.busy ? "Saving…" : props.label}
      </button>
    </div>
  );
}

/** A dialog form's last row: Cancel, and the submit button (saying `busyLabel` while the call runs). */
export function FormFoot(props: { onCancel: () => void; busy: boolean; label: string; busyLabel: string; testId?: string }) {
  return (
    <div className="hk-formfoot">
      <button type="button" onClick={props.onCancel}>
        Cancel
      </button>
      <button type="submit" className="primary" data-testid={props.testId} disabled={props.busy}>
        {props.busy ? props.busyLabel : props.label}
      </button>
    </div>
  );
}

/** A form's draft: `set` merges a change in and takes back "Saved" (`setSaved(true)` after a save). */
export function useDraft<T>(init: () => T) {
  const [draft, setDraft] = useState(init);
  const [saved, setSaved] = useState(false);
  const set = (patch: Partial<T>) => {
    setDraft({ ...draft, ...patch });
    setSaved(false);
  };
  return { draft, setDraft, set, saved, setSaved };
}

/**
 * Saves an item of an admin section: an existing one with `update` (then "Saved" shows),
 * else a new one with `create`, whose page then opens. `onSaved` reads the list again.
 */
export async function saveItem(item: {
  section: string;
  update?: () => Promise<unknown>;
  create: () => Promise<{ id: string }>;
  onSaved: () => void;
  setSaved: (saved: boolean) => void;
}): Promise<void> {
  if (item.update) {
    await item.update();
    item.setSaved(true);
    item.onSaved();
  } else {
    const created = await item.create();
    item.onSaved();
    go("admin", `${item.section}/${encodeURIComponent(created.id)}`);
  }
}

/** A list of short words (labels, tags, skills, event types) typed as chips. */
export function ChipsInput(props: {
  value: string[];
  onChange: (v: string[]) => void;
  placeholder?: string;
  testId?: string;
  /** Applied to each word as it is added (e.g. lower-casing). */
  normalize?: (s: string) => string;
  /** Values offered while typing (with a label shown beside the value). */
  suggestions?: (string | { value: string; label: string })[];
}) {
  const [text, setText] = useState("");
  const id = useId();
  const listId = props.suggestions ? `chips${id}` : undefined;
  const add = (raw: string) => {
    const words = raw
      .split(",")
      .map((w) => (props.normalize ? props.normalize(w.trim()) : w.trim()))
      .filter(Boolean);
    const next = [...props.value];
    for (const w of words) if (!next.includes(w)) next.push(w);
    if (next.length !== props.value.length) props.onChange(next);
    setText("");
  };
  return (
    <div className="hk-chips">
      {props.value.map((v) => (
        <span className="hk-chip" key={v}>
          {v}
          <button type="button" aria-label={`Remove ${v}`} onClick={() => props.onChange(props.value.filter((x) => x !== v))}>
            ×
          </button>
        </span>
      ))}
      <input
        data-testid={props.testId}
        value={text}
        list={listId}
        placeholder={props.value.length ? "" : props.placeholder}
        onChange={(e) => {
          const v = e.target.value;
          if (v.includes(",")) add(v);
          else setText(v);
        }}
        onKeyDown={(e) => {
          if (e.key === "Enter") {
            e.preventDefault();
            if (text.trim()) add(text);
          } else if (e.key === "Backspace" && !text && props.value.length) {
            props.onChange(props.value.slice(0, -1));
          }
        }}
        onBlur={() => text.trim() && add(text)}
      />
      {listId && (
        <datalist id={listId}>
          {props.suggestions!
            .map((s) => (typeof s === "string" ? { value: s, label: "" } : s))
            .filter((s) => !props.value.includes(s.value))
            .map((s) => (
              <option key={s.value} value={s.value} label={s.label || undefined} />
            ))}
        </datalist>
      )}
    </div>
  );
}

const UNITS: [string, number][] = [
  ["seconds", 1],
  ["minutes", 60],
  ["hours", 3600],
  ["days", 86400],
];

/** A number of seconds, typed in the unit that suits it. */
export function DurationInput(props: { seconds: number; onChange: (s: number) => void; testId?: string }) {
  const fit = [...UNITS].reverse().find(([, f]) => props.seconds > 0 && props.seconds % f === 0)?.[1] ?? 60;
  const [unit, setUnit] = useState(props.seconds > 0 ? fit : 60);
  return (
    <div className="hk-row" style={{ flexWrap: "nowrap" }}>
      <input
        type="number"
        min={0}
        step="any"
        data-testid={props.testId}
        value={props.seconds ? String(props.seconds / unit) : props.seconds === 0 ? "0" : ""}
        onChange={(e) => props.onChange(Math.round(Number(e.target.value || 0) * unit))}
        style={{ width: 110 }}
      />
      <select value={unit} onChange={(e) => setUnit(Number(e.target.value))} style={{ width: "auto" }}>
        {UNITS.map(([label, f]) => (
          <option key={f} value={f}>
            {label}
          </option>
        ))}
      </select>
    </div>
  );
}

/** A checkbox with its label. */
export function Check(props: { checked: boolean; onChange: (v: boolean) => void; label: React.ReactNode; testId?: string; disabled?: boolean }) {
  return (
    <label className="hk-check">
      <input
        type="checkbox"
        data-testid={props.testId}
        checked={props.checked}
        disabled={props.disabled}
        onChange={(e) => props.onChange(e.target.checked)}
      />
      {props.label}
    </label>
  );
}

/** Checkboxes picking some of `options` ([value, label] pairs); `empty` shows when there are none. */
export function CheckList<V extends string | number>(props: {
  options: readonly (readonly [V, React.ReactNode])[];
  value: V[];
  onChange: (v: V[]) => void;
  empty?: React.ReactNode;
  testId?: (v: V) => string;
}) {
  return (
    <div className="hk-checks">
      {props.options.length === 0 && props.empty}
      {props.options.map(([v, label]) => (
        <Check
          key={v}
          testId={props.testId?.(v)}
          checked={props.value.includes(v)}
          onChange={(on) => props.onChange(on ? [...props.value, v] : props.value.filter((x) => x !== v))}
          label={label}
        />
      ))}
    </div>
  );
}

/** Copies `text` to the clipboard, saying so for a moment. */
export function CopyButton({ text }: { text: string }) {
  const [done, setDone] = useState(false);
  return (
    <button
      type="button"
      className="small"
      onClick={() => {
        navigator.clipboard?.writeText(text).then(
          () => {
            setDone(true);
            setTimeout(() => setDone(false), 1500);
          },
          () => undefined,
        );
      }}
    >
      {done ? "Copied" : "Copy"}
    </button>
  );
}

/** "just now", "5 min ago", "3 h ago", else the date. */
export function ago(date: Date | undefined): string {
  if (!date) return "";
  const s = (Date.now() - date.getTime()) / 1000;
  if (s < 45) return "just now";
  if (s < 3600) return `${Math.round(s / 60)} min ago`;
  if (s < 86400) return `${Math.round(s / 3600)} h ago`;
  if (s < 7 * 86400) return `${Math.round(s / 86400)} d ago`;
  return date.toLocaleDateString([], { day: "numeric", month: "short", year: "numeric" });
}

/** A full date and time for tooltips and logs. */
export function fullTime(date: Date | undefined): string {
  return date ? date.toLocaleString([], { dateStyle: "medium", timeStyle: "medium" }) : "";
}

/**
 * An on/off switch (for enabling things in lists). It shows the new position at once;
 * when `onChange` resolves to false (the change failed) it goes back.
 */
export function Switch(props: {
  checked: boolean;
  onChange: (v: boolean) => unknown;
  label: string;
  testId?: string;
  disabled?: boolean;
}) {
  const [local, setLocal] = useState<boolean>();
  const [base, setBase] = useState(props.checked);
  if (base !== props.checked) {
    setBase(props.checked);
    setLocal(undefined);
  }
  return (
    <label className="adm-switch" title={props.label}>
      <input
        type="checkbox"
        aria-label={props.label}
        data-testid={props.testId}
        checked={local ?? props.checked}
        disabled={props.disabled}
        onChange={(e) => {
          const v = e.target.checked;
          setLocal(v);
          Promise.resolve(props.onChange(v)).then((ok) => ok === false && setLocal(undefined));
        }}
      />
      <span />
    </label>
  );
}
