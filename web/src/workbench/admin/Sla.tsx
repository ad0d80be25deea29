// Admin → SLA & tickets: SLA policies, business calendars, ticket statuses and custom
// ticket fields.

import { useState } from "react";
import {
  FieldType,
  SlaMetric,
  StatusCategory,
  TicketPriority,
  TicketType,
  type Calendar,
  type SlaPolicy,
} from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { duration } from "../../lib/time";
import { useWorkbench } from "../context";
import { Dialog, Empty, ErrorLine, useAction, useLoad } from "../ui";
import { CATEGORIES, METRICS, metricName, PRIORITIES, priorityName, TYPES, typeName } from "../tickets/model";
import { type Directory, useDirectory } from "./directory";
import { Card, Check, ChipsInput, DurationInput, Field, fieldError, FormErrors, PageHeader } from "./forms";
import { localZone, officeWeek, type Week, WeekEditor, weekProblem, ZoneInput, DatesInput, WEEKDAYS } from "./schedule";

/** The SLA & tickets section. */
export function SlaAdmin() {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const calendars = useLoad(() => clients.ticketing.listCalendars({}).then((r) => r.calendars), [clients]);
  return (
    <div className="hk-page">
      <PageHeader title="SLA & tickets" sub="Response and resolution targets, the hours they count in, and how tickets are described." />
      <Policies dir={dir} calendars={calendars.data ?? []} />
      <Calendars calendars={calendars.data ?? []} error={calendars.error} loading={calendars.loading && !calendars.data} reload={calendars.reload} />
      <Statuses />
      <Fields />
    </div>
  );
}

function Policies({ dir, calendars }: { dir: Directory; calendars: Calendar[] }) {
  const { clients } = useWorkbench();
  const policies = useLoad(() => clients.ticketing.listSlaPolicies({}).then((r) => r.policies), [clients]);
  const [creating, setCreating] = useState(false);
  const [act, error, busy] = useAction();
  const list = policies.data ?? [];
  return (
    <Card
      title="SLA policies"
      sub="a ticket falls under the first policy whose filter matches"
      actions={
        <button className="primary small" data-testid="sla-new" onClick={() => setCreating(true)}>
          New policy
        </button>
      }
      tight
    >
      <ErrorLine error={policies.error ?? error} />
      {policies.loading && !policies.data ? (
        <div className="hk-loading">Loading policies…</div>
      ) : list.length === 0 ? (
        <Empty>No SLA policies: tickets have no deadlines.</Empty>
      ) : (
        <table className="hk-table">
          <thead>
            <tr>
              <th className="num">#</th>
              <th>Policy</th>
              <th>Applies to</th>
              <th>Targets</th>
              <th>Hours</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {list.map((p) => (
              <tr key={p.id} data-testid="sla-row" data-id={p.id}>
                <td className="num hk-muted">{p.position}</td>
                <td className="strong">
                  {p.name}
                  {p.warningSeconds > 0n && <span className="sub">warns {duration(Number(p.warningSeconds))} before</span>}
                </td>
                <td className="hk-small">{filterText(p, dir)}</td>
                <td className="hk-small">
                  {p.targets.map((t, i) => (
                    <div key={i}>
                      {t.priority ? `${priorityName(t.priority)} · ` : ""}
                      {metricName(t.metric)} <b>{duration(Number(t.seconds))}</b>
                      {t.businessHours && <span className="hk-muted"> (business)</span>}
                    </div>
                  ))}
                </td>
                <td className="hk-small">{p.calendarId ? calendars.find((c) => c.id === p.calendarId)?.name ?? "calendar" : "around the clock"}</td>
                <td className="num">
                  <button
                    className="small danger"
                    disabled={busy}
                    onClick={() =>
                      confirm(`Delete the policy “${p.name}”? Open tickets get their deadlines again from the others.`) &&
                      act(async () => {
                        await clients.ticketing.deleteSlaPolicy({ id: p.id });
                        policies.reload();
                      })
                    }
                  >
                    Delete
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {creating && (
        <PolicyDialog
          dir={dir}
          calendars={calendars}
          next={Math.max(0, ...list.map((p) => p.position)) + 1}
          onClose={() => setCreating(false)}
          onSaved={() => {
            setCreating(false);
            policies.reload();
          }}
        />
      )}
    </Card>
  );
}

function filterText(p: SlaPolicy, dir: Directory): string {
  const parts: string[] = [];
  if (p.priorities.length) parts.push(p.priorities.map(priorityName).join("/"));
  if (p.types.length) parts.push(p.types.map(typeName).join("/"));
  if (p.categories.length) parts.push(`category ${p.categories.join(" or ")}`);
  if (p.groupIds.length) parts.push(`team ${p.groupIds.map((g) => dir.teamName(g)).join(" or ")}`);
  if (p.tags.length) parts.push(`tagged ${p.tags.join(" or ")}`);
  for (const [k, v] of Object.entries(p.customFields)) parts.push(`${k} = ${v}`);
  return parts.length ? parts.join(", ") : "Every ticket";
}

interface TargetDraft {
  priority: TicketPriority;
  metric: SlaMetric;
  seconds: number;
  businessHours: boolean;
}

function PolicyDialog(props: { dir: Directory; calendars: Calendar[]; next: number; onClose: () => void; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [name, setName] = useState("");
  const [position, setPosition] = useState(props.next);
  const [priorities, setPriorities] = useState<TicketPriority[]>([]);
  const [types, setTypes] = useState<TicketType[]>([]);
  const [categories, setCategories] = useState<string[]>([]);
  const [groups, setGroups] = useState<string[]>([]);
  const [tags, setTags] = useState<string[]>([]);
  const [targets, setTargets] = useState<TargetDraft[]>([
    { priority: TicketPriority.UNSPECIFIED, metric: SlaMetric.FIRST_REPLY, seconds: 3600, businessHours: false },
    { priority: TicketPriority.UNSPECIFIED, metric: SlaMetric.RESOLUTION, seconds: 86400, businessHours: false },
  ]);
  const [calendarId, setCalendarId] = useState("");
  const [warning, setWarning] = useState(0);
  const [touched, setTouched] = useState(false);
  const needsCalendar = targets.some((t) => t.businessHours) && !calendarId;
  const toggle = <T,>(list: T[], v: T, on: boolean) => (on ? [...list, v] : list.filter((x) => x !== v));
  const setTarget = (i: number, patch: Partial<TargetDraft>) => setTargets(targets.map((t, j) => (j === i ? { ...t, ...patch } : t)));

  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!name.trim() || needsCalendar || targets.length === 0 || targets.some((t) => t.seconds <= 0)) return;
    act(async () => {
      await clients.ticketing.createSlaPolicy({
        policy: {
          name: name.trim(),
          position,
          priorities,
          types,
          categories,
          groupIds: groups,
          tags,
          targets: targets.map((t) => ({ priority: t.priority, metric: t.metric, seconds: BigInt(t.seconds), businessHours: t.businessHours })),
          calendarId,
          warningSeconds: BigInt(warning),
        },
      });
      props.onSaved();
    });
  };

  return (
    <Dialog title="New SLA policy" onClose={props.onClose}>
      <form className="hk-form" onSubmit={save} style={{ width: 640 }}>
        <FormErrors error={error} />
        <Field label="Name" error={touched && !name.trim() ? "A name is required." : fieldError(error, "policy.name")}>
          <input data-testid="sla-name" autoFocus value={name} onChange={(e) => setName(e.target.value)} placeholder="e.g. Urgent tickets" />
        </Field>
        <Field label="Position" hint="Smaller is tried first." error={fieldError(error, "policy.position")}>
          <input type="number" value={position} onChange={(e) => setPosition(Number(e.target.value))} />
        </Field>
        <div className="hk-legend">Which tickets (nothing picked: any)</div>
        <Field label="Priorities" wide>
          <div className="hk-checks">
            {PRIORITIES.map(([p, n]) => (
              <Check key={p} checked={priorities.includes(p)} onChange={(on) => setPriorities(toggle(priorities, p, on))} label={n} />
            ))}
          </div>
        </Field>
        <Field label="Types" wide>
          <div className="hk-checks">
            {TYPES.map(([t, n]) => (
              <Check key={t} checked={types.includes(t)} onChange={(on) => setTypes(toggle(types, t, on))} label={n} />
            ))}
          </div>
        </Field>
        {props.dir.teams.length > 0 && (
          <Field label="Teams" wide>
            <div className="hk-checks">
              {props.dir.teams.map((t) => (
                <Check key={t.id} checked={groups.includes(t.id)} onChange={(on) => setGroups(toggle(groups, t.id, on))} label={t.name} />
              ))}
            </div>
          </Field>
        )}
        <Field label="Categories">
          <ChipsInput value={categories} onChange={setCategories} />
        </Field>
        <Field label="Any of these tags">
          <ChipsInput value={tags} onChange={setTags} normalize={(s) => s.toLowerCase()} />
        </Field>
        <div className="hk-legend">Targets</div>
        <div className="hk-field wide">
          <div className="hk-form one" style={{ gap: 8 }}>
            {targets.map((t, i) => (
              <div key={i} className="hk-row" data-testid="sla-target">
                <select aria-label="Priority" value={t.priority} onChange={(e) => setTarget(i, { priority: Number(e.target.value) })}>
                  <option value={TicketPriority.UNSPECIFIED}>Every priority</option>
                  {PRIORITIES.map(([p, n]) => (
                    <option key={p} value={p}>
                      {n}
                    </option>
                  ))}
                </select>
                <select aria-label="Metric" value={t.metric} onChange={(e) => setTarget(i, { metric: Number(e.target.value) })}>
                  {METRICS.map(([m, n]) => (
                    <option key={m} value={m}>
                      {n}
                    </option>
                  ))}
                </select>
                <DurationInput seconds={t.seconds} onChange={(seconds) => setTarget(i, { seconds })} />
                <Check checked={t.businessHours} onChange={(businessHours) => setTarget(i, { businessHours })} label="business hours" />
                <button type="button" className="ghost small" onClick={() => setTargets(targets.filter((_, j) => j !== i))}>
                  ×
                </button>
              </div>
            ))}
            <div>
              <button
                type="button"
                className="small"
                onClick={() => setTargets([...targets, { priority: TicketPriority.UNSPECIFIED, metric: SlaMetric.NEXT_REPLY, seconds: 7200, businessHours: false }])}
              >
                + Target
              </button>
            </div>
            {touched && targets.length === 0 && <span className="hk-field-error">Add at least one target.</span>}
            {fieldError(error, "policy.targets") && <span className="hk-field-error">{fieldError(error, "policy.targets")}</span>}
          </div>
        </div>
        <Field label="Business hours calendar" error={touched && needsCalendar ? "Business-hours targets need a calendar." : fieldError(error, "policy.calendar_id")}>
          <select value={calendarId} onChange={(e) => setCalendarId(e.target.value)}>
            <option value="">None (around the clock)</option>
            {props.calendars.map((c) => (
              <option key={c.id} value={c.id}>
                {c.name}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Warn before a target is due" hint="0: no warning." error={fieldError(error, "policy.warning_seconds")}>
          <DurationInput seconds={warning} onChange={setWarning} />
        </Field>
        <div className="hk-formfoot">
          <button type="button" onClick={props.onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" data-testid="sla-save" disabled={busy}>
            {busy ? "Creating…" : "Create policy"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function Calendars(props: { calendars: Calendar[]; error?: string; loading: boolean; reload: () => void }) {
  const [editing, setEditing] = useState<Calendar | "new">();
  return (
    <Card
      title="Business calendars"
      sub="the hours business-hours targets count in"
      actions={
        <button className="small" data-testid="calendar-new" onClick={() => setEditing("new")}>
          New calendar
        </button>
      }
      tight
    >
      <ErrorLine error={props.error} />
      {props.loading ? (
        <div className="hk-loading">Loading calendars…</div>
      ) : props.calendars.length === 0 ? (
        <Empty>No calendars: every target counts around the clock.</Empty>
      ) : (
        <table className="hk-table">
          <thead>
            <tr>
              <th>Calendar</th>
              <th>Zone</th>
              <th>Week</th>
              <th>Holidays</th>
              <th />
            </tr>
          </thead>
          <tbody>
            {props.calendars.map((c) => (
              <tr key={c.id} data-testid="calendar-row">
                <td className="strong">{c.name}</td>
                <td>{c.timeZone}</td>
                <td className="hk-small">{weekText(c)}</td>
                <td className="hk-small">{c.holidays.length ? c.holidays.join(", ") : "—"}</td>
                <td className="num">
                  <button className="small" onClick={() => setEditing(c)}>
                    Edit
                  </button>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      {editing && (
        <CalendarDialog
          calendar={editing === "new" ? undefined : editing}
          onClose={() => setEditing(undefined)}
          onSaved={() => {
            setEditing(undefined);
            props.reload();
          }}
        />
      )}
    </Card>
  );
}

function weekText(c: Calendar): string {
  const byDay = new Map<number, string[]>();
  for (const r of c.weekly) byDay.set(r.weekday, [...(byDay.get(r.weekday) ?? []), `${r.start}–${r.end}`]);
  return [...byDay.entries()]
    .sort(([a], [b]) => a - b)
    .map(([d, rs]) => `${WEEKDAYS[d - 1].slice(0, 3)} ${rs.join(", ")}`)
    .join(" · ");
}

function CalendarDialog({ calendar, onClose, onSaved }: { calendar?: Calendar; onClose: () => void; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [name, setName] = useState(calendar?.name ?? "");
  const [zone, setZone] = useState(calendar?.timeZone ?? localZone());
  const [holidays, setHolidays] = useState(calendar?.holidays ?? []);
  const [week, setWeek] = useState<Week>(() => {
    if (!calendar) return officeWeek();
    const w: Week = {};
    for (let d = 1; d <= 7; d++) w[d] = [];
    for (const r of calendar.weekly) w[r.weekday].push({ start: r.start, end: r.end });
    return w;
  });
  const [touched, setTouched] = useState(false);
  const problem = weekProblem(week);
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!name.trim() || problem) return;
    const body = {
      name: name.trim(),
      timeZone: zone.trim(),
      holidays,
      weekly: Object.entries(week).flatMap(([d, rs]) => rs.map((r) => ({ weekday: Number(d), start: r.start, end: r.end }))),
    };
    act(async () => {
      if (calendar) await clients.ticketing.updateCalendar({ calendar: { ...body, id: calendar.id } });
      else await clients.ticketing.createCalendar({ calendar: body });
      onSaved();
    });
  };
  return (
    <Dialog title={calendar ? `Calendar ${calendar.name}` : "New calendar"} onClose={onClose}>
      <form className="hk-form" onSubmit={save} style={{ width: 640 }}>
        <FormErrors error={error} />
        <Field label="Name" error={touched && !name.trim() ? "A name is required." : fieldError(error, "calendar.name")}>
          <input value={name} autoFocus onChange={(e) => setName(e.target.value)} placeholder="Office hours" />
        </Field>
        <Field label="Time zone" error={fieldError(error, "calendar.time_zone")}>
          <ZoneInput value={zone} onChange={setZone} />
        </Field>
        <div className="hk-field wide">
          <WeekEditor week={week} onChange={setWeek} />
          {(problem || fieldError(error, "calendar.weekly")) && <span className="hk-field-error">{problem ?? fieldError(error, "calendar.weekly")}</span>}
        </div>
        <Field label="Holidays" wide error={fieldError(error, "calendar.holidays")}>
          <DatesInput value={holidays} onChange={setHolidays} />
        </Field>
        {calendar && <p className="hk-small hk-muted hk-field wide">Saving derives every open ticket's deadlines again.</p>}
        <div className="hk-formfoot">
          <button type="button" onClick={onClose}>
            Cancel
          </button>
          <button type="submit" className="primary" disabled={busy}>
            {busy ? "Saving…" : "Save calendar"}
          </button>
        </div>
      </form>
    </Dialog>
  );
}

function Statuses() {
  const { clients } = useWorkbench();
  const statuses = useLoad(() => clients.ticketing.listStatuses({}).then((r) => r.statuses), [clients]);
  const [act, error, busy] = useAction();
  const [d, setD] = useState({ key: "", category: StatusCategory.OPEN, label: "", externalLabel: "" });
  const [touched, setTouched] = useState(false);
  const keyBad = touched && !/^[a-z0-9_-]{1,64}$/.test(d.key);
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!/^[a-z0-9_-]{1,64}$/.test(d.key) || !d.label.trim() || !d.externalLabel.trim()) return;
    act(async () => {
      await clients.ticketing.createStatus({ status: { ...d, label: d.label.trim(), externalLabel: d.externalLabel.trim() } });
      setD({ key: "", category: StatusCategory.OPEN, label: "", externalLabel: "" });
      setTouched(false);
      statuses.reload();
    });
  };
  return (
    <Card title="Ticket statuses" sub="the six built-in ones, then yours" tight>
      <ErrorLine error={statuses.error} />
      <table className="hk-table">
        <thead>
          <tr>
            <th>Staff read</th>
            <th>Key</th>
            <th>Category</th>
            <th>The customer is told</th>
          </tr>
        </thead>
        <tbody>
          {(statuses.data ?? []).map((s) => (
            <tr key={s.key} data-testid="status-row">
              <td className="strong">
                {s.label} {s.builtIn && <span className="hk-pill dim">built-in</span>}
              </td>
              <td>
                <code className="hk-small">{s.key}</code>
              </td>
              <td>{CATEGORIES.find(([c]) => c === s.category)?.[1]}</td>
              <td>{s.externalLabel}</td>
            </tr>
          ))}
        </tbody>
      </table>
      <form className="hk-form" onSubmit={save} style={{ padding: 16, borderTop: "1px solid var(--line)", gridTemplateColumns: "repeat(4, minmax(0, 1fr)) auto", alignItems: "end" }}>
        <Field label="Label" error={touched && !d.label.trim() ? "Required." : fieldError(error, "status.label")}>
          <input
            value={d.label}
            placeholder="Waiting for a part"
            onChange={(e) => setD({ ...d, label: e.target.value, key: d.key === slug(d.label) ? slug(e.target.value) : d.key })}
          />
        </Field>
        <Field label="Key" error={keyBad ? "a–z, 0–9, _ and -" : fieldError(error, "status.key")}>
          <input value={d.key} placeholder="awaiting_parts" onChange={(e) => setD({ ...d, key: e.target.value.toLowerCase() })} />
        </Field>
        <Field label="Category" error={fieldError(error, "status.category")}>
          <select value={d.category} onChange={(e) => setD({ ...d, category: Number(e.target.value) })}>
            {CATEGORIES.map(([c, n]) => (
              <option key={c} value={c}>
                {n}
              </option>
            ))}
          </select>
        </Field>
        <Field label="Customer is told" error={touched && !d.externalLabel.trim() ? "Required." : fieldError(error, "status.external_label")}>
          <input value={d.externalLabel} placeholder="In progress" onChange={(e) => setD({ ...d, externalLabel: e.target.value })} />
        </Field>
        <button type="submit" className="small" disabled={busy} style={{ marginBottom: 2 }}>
          Add status
        </button>
        <div className="hk-field wide">
          <FormErrors error={violationsFree(error)} />
        </div>
      </form>
    </Card>
  );
}

/** A key made from a label: "Waiting for a part" → "waiting_for_a_part". */
function slug(label: string): string {
  return label
    .toLowerCase()
    .replace(/[^a-z0-9]+/g, "_")
    .replace(/^_+|_+$/g, "")
    .slice(0, 64);
}

/** The error when it names no field (field errors show beside their inputs). */
function violationsFree(error?: string): string | undefined {
  return error && !/^invalid argument:/i.test(error) ? error : undefined;
}

const FIELD_TYPES: [FieldType, string][] = [
  [FieldType.TEXT, "Text"],
  [FieldType.NUMBER, "Number"],
  [FieldType.DATE, "Date"],
  [FieldType.OPTION, "Options"],
];

function Fields() {
  const { clients } = useWorkbench();
  const fields = useLoad(() => clients.ticketing.listFieldDefinitions({}).then((r) => r.fields), [clients]);
  const [act, error, busy] = useAction();
  const [d, setD] = useState({ key: "", label: "", type: FieldType.TEXT, options: [] as string[] });
  const [touched, setTouched] = useState(false);
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!/^[a-z0-9_-]{1,64}$/.test(d.key) || !d.label.trim() || (d.type === FieldType.OPTION && d.options.length === 0)) return;
    act(async () => {
      await clients.ticketing.createFieldDefinition({ field: { ...d, label: d.label.trim(), options: d.type === FieldType.OPTION ? d.options : [] } });
      setD({ key: "", label: "", type: FieldType.TEXT, options: [] });
      setTouched(false);
      fields.reload();
    });
  };
  const list = fields.data ?? [];
  return (
    <Card title="Custom ticket fields" tight>
      <ErrorLine error={fields.error} />
      {list.length === 0 ? (
        <Empty>No custom fields yet.</Empty>
      ) : (
        <table className="hk-table">
          <thead>
            <tr>
              <th>Label</th>
              <th>Key</th>
              <th>Type</th>
              <th>Options</th>
            </tr>
          </thead>
          <tbody>
            {list.map((f) => (
              <tr key={f.key} data-testid="field-row">
                <td className="strong">{f.label}</td>
                <td>
                  <code className="hk-small">{f.key}</code>
                </td>
                <td>{FIELD_TYPES.find(([t]) => t === f.type)?.[1]}</td>
                <td className="hk-small">{f.options.join(", ")}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <form className="hk-form" onSubmit={save} style={{ padding: 16, borderTop: "1px solid var(--line)", gridTemplateColumns: "repeat(3, minmax(0, 1fr)) auto", alignItems: "end" }}>
        <Field label="Label" error={touched && !d.label.trim() ? "Required." : fieldError(error, "field.label")}>
          <input
            value={d.label}
            placeholder="Order number"
            onChange={(e) => setD({ ...d, label: e.target.value, key: d.key === slug(d.label) ? slug(e.target.value) : d.key })}
          />
        </Field>
        <Field label="Key" error={touched && !/^[a-z0-9_-]{1,64}$/.test(d.key) ? "a–z, 0–9, _ and -" : fieldError(error, "field.key")}>
          <input value={d.key} placeholder="order_number" onChange={(e) => setD({ ...d, key: e.target.value.toLowerCase() })} />
        </Field>
        <Field label="Type" error={fieldError(error, "field.type")}>
          <select value={d.type} onChange={(e) => setD({ ...d, type: Number(e.target.value) })}>
            {FIELD_TYPES.map(([t, n]) => (
              <option key={t} value={t}>
                {n}
              </option>
            ))}
          </select>
        </Field>
        <button type="submit" className="small" disabled={busy} style={{ marginBottom: 2 }}>
          Add field
        </button>
        {d.type === FieldType.OPTION && (
          <Field label="Options" wide error={touched && d.options.length === 0 ? "Give the options." : fieldError(error, "field.options")}>
            <ChipsInput value={d.options} onChange={(options) => setD({ ...d, options })} placeholder="gold, silver…" />
          </Field>
        )}
        <div className="hk-field wide">
          <FormErrors error={violationsFree(error)} />
        </div>
      </form>
    </Card>
  );
}
