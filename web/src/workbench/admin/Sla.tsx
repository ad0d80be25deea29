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
import { Dialog, Options, useAction, useLoad } from "../ui";
import { CATEGORIES, categoryName, METRICS, metricName, PRIORITIES, priorityName, TYPES, typeName } from "../tickets/model";
import { type Directory, teamChoices, useDirectory } from "./directory";
import { Check, CheckList, ChipsInput, DurationInput, Field, fieldError, FormErrors, FormFoot, ListCard, PageHeader } from "./forms";
import { closedWeek, DatesInput, localZone, officeWeek, type Week, WeekField, WEEKDAYS, weekProblem, ZoneInput } from "./schedule";

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
    <>
      <ListCard
        title="SLA policies"
        sub="a ticket falls under the first policy whose filter matches"
        actions={
          <button className="primary small" data-testid="sla-new" onClick={() => setCreating(true)}>
            New policy
          </button>
        }
        error={policies.error ?? error}
        loading={policies.loading && !policies.data}
        loadingText="Loading policies…"
        count={list.length}
        empty="No SLA policies: tickets have no deadlines."
        columns={[{ label: "#", num: true }, "Policy", "Applies to", "Targets", "Hours", {}]}
      >
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
      </ListCard>
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
    </>
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
          <CheckList options={PRIORITIES} value={priorities} onChange={setPriorities} />
        </Field>
        <Field label="Types" wide>
          <CheckList options={TYPES} value={types} onChange={setTypes} />
        </Field>
        {props.dir.teams.length > 0 && (
          <Field label="Teams" wide>
            <CheckList options={teamChoices(props.dir.teams)} value={groups} onChange={setGroups} />
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
                  <Options of={PRIORITIES} />
                </select>
                <select aria-label="Metric" value={t.metric} onChange={(e) => setTarget(i, { metric: Number(e.target.value) })}>
                  <Options of={METRICS} />
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
            <Options of={props.calendars.map((c) => [c.id, c.name] as const)} />
          </select>
        </Field>
        <Field label="Warn before a target is due" hint="0: no warning." error={fieldError(error, "policy.warning_seconds")}>
          <DurationInput seconds={warning} onChange={setWarning} />
        </Field>
        <FormFoot onCancel={props.onClose} busy={busy} label="Create policy" busyLabel="Creating…" testId="sla-save" />
      </form>
    </Dialog>
  );
}

function Calendars(props: { calendars: Calendar[]; error?: string; loading: boolean; reload: () => void }) {
  const [editing, setEditing] = useState<Calendar | "new">();
  return (
    <>
      <ListCard
        title="Business calendars"
        sub="the hours business-hours targets count in"
        actions={
          <button className="small" data-testid="calendar-new" onClick={() => setEditing("new")}>
            New calendar
          </button>
        }
        error={props.error}
        loading={props.loading}
        loadingText="Loading calendars…"
        count={props.calendars.length}
        empty="No calendars: every target counts around the clock."
        columns={["Calendar", "Zone", "Week", "Holidays", {}]}
      >
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
      </ListCard>
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
    </>
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
    const w = closedWeek();
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
        <WeekField week={week} onChange={setWeek} error={problem ?? fieldError(error, "calendar.weekly")} />
        <Field label="Holidays" wide error={fieldError(error, "calendar.holidays")}>
          <DatesInput value={holidays} onChange={setHolidays} />
        </Field>
        {calendar && <p className="hk-small hk-muted hk-field wide">Saving derives every open ticket's deadlines again.</p>}
        <FormFoot onCancel={onClose} busy={busy} label="Save calendar" busyLabel="Saving…" />
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
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!KEY.test(d.key) || !d.label.trim() || !d.externalLabel.trim()) return;
    act(async () => {
      await clients.ticketing.createStatus({ status: { ...d, label: d.label.trim(), externalLabel: d.externalLabel.trim() } });
      setD({ key: "", category: StatusCategory.OPEN, label: "", externalLabel: "" });
      setTouched(false);
      statuses.reload();
    });
  };
  return (
    <ListCard
      title="Ticket statuses"
      sub="the six built-in ones, then yours"
      error={statuses.error}
      loading={statuses.loading && !statuses.data}
      loadingText="Loading statuses…"
      count={statuses.data?.length ?? 0}
      empty="No statuses."
      columns={["Staff read", "Key", "Category", "The customer is told"]}
      after={
        <AddRow fields={4} label="Add status" busy={busy} error={error} onSubmit={save}>
          <LabelAndKey
            path="status"
            value={d}
            onChange={(patch) => setD({ ...d, ...patch })}
            touched={touched}
            error={error}
            placeholders={["Waiting for a part", "awaiting_parts"]}
          />
          <Field label="Category" error={fieldError(error, "status.category")}>
            <select value={d.category} onChange={(e) => setD({ ...d, category: Number(e.target.value) })}>
              <Options of={CATEGORIES} />
            </select>
          </Field>
          <Field label="Customer is told" error={touched && !d.externalLabel.trim() ? "Required." : fieldError(error, "status.external_label")}>
            <input value={d.externalLabel} placeholder="In progress" onChange={(e) => setD({ ...d, externalLabel: e.target.value })} />
          </Field>
        </AddRow>
      }
    >
      {(statuses.data ?? []).map((s) => (
        <tr key={s.key} data-testid="status-row">
          <td className="strong">
            {s.label} {s.builtIn && <span className="hk-pill dim">built-in</span>}
          </td>
          <td>
            <code className="hk-small">{s.key}</code>
          </td>
          <td>{categoryName(s.category)}</td>
          <td>{s.externalLabel}</td>
        </tr>
      ))}
    </ListCard>
  );
}

/** What a status or field key may be. */
const KEY = /^[a-z0-9_-]{1,64}$/;

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

/**
 * The label of a new status or field and its key, which follows the label until it is
 * typed itself; `path` is where they sit in the request ("status", "field").
 */
function LabelAndKey(props: {
  path: string;
  value: { label: string; key: string };
  onChange: (patch: { label?: string; key?: string }) => void;
  touched: boolean;
  error?: string;
  placeholders: [string, string];
}) {
  const { label, key } = props.value;
  return (
    <>
      <Field label="Label" error={props.touched && !label.trim() ? "Required." : fieldError(props.error, `${props.path}.label`)}>
        <input
          value={label}
          placeholder={props.placeholders[0]}
          onChange={(e) => props.onChange({ label: e.target.value, key: key === slug(label) ? slug(e.target.value) : key })}
        />
      </Field>
      <Field label="Key" error={props.touched && !KEY.test(key) ? "a–z, 0–9, _ and -" : fieldError(props.error, `${props.path}.key`)}>
        <input value={key} placeholder={props.placeholders[1]} onChange={(e) => props.onChange({ key: e.target.value.toLowerCase() })} />
      </Field>
    </>
  );
}

/** The form under a list that adds one more: `fields` inputs in a row, the button, then `below`. */
function AddRow(props: {
  fields: number;
  label: string;
  busy: boolean;
  error?: string;
  onSubmit: (e: React.FormEvent) => void;
  below?: React.ReactNode;
  children: React.ReactNode;
}) {
  return (
    <form
      className="hk-form"
      onSubmit={props.onSubmit}
      style={{ padding: 16, borderTop: "1px solid var(--line)", gridTemplateColumns: `repeat(${props.fields}, minmax(0, 1fr)) auto`, alignItems: "end" }}
    >
      {props.children}
      <button type="submit" className="small" disabled={props.busy} style={{ marginBottom: 2 }}>
        {props.label}
      </button>
      {props.below}
      <div className="hk-field wide">
        <FormErrors error={violationsFree(props.error)} />
      </div>
    </form>
  );
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
    if (!KEY.test(d.key) || !d.label.trim() || (d.type === FieldType.OPTION && d.options.length === 0)) return;
    act(async () => {
      await clients.ticketing.createFieldDefinition({ field: { ...d, label: d.label.trim(), options: d.type === FieldType.OPTION ? d.options : [] } });
      setD({ key: "", label: "", type: FieldType.TEXT, options: [] });
      setTouched(false);
      fields.reload();
    });
  };
  const list = fields.data ?? [];
  return (
    <ListCard
      title="Custom ticket fields"
      error={fields.error}
      loading={fields.loading && !fields.data}
      loadingText="Loading fields…"
      count={list.length}
      empty="No custom fields yet."
      columns={["Label", "Key", "Type", "Options"]}
      after={
        <AddRow
          fields={3}
          label="Add field"
          busy={busy}
          error={error}
          onSubmit={save}
          below={
            d.type === FieldType.OPTION && (
              <Field label="Options" wide error={touched && d.options.length === 0 ? "Give the options." : fieldError(error, "field.options")}>
                <ChipsInput value={d.options} onChange={(options) => setD({ ...d, options })} placeholder="gold, silver…" />
              </Field>
            )
          }
        >
          <LabelAndKey
            path="field"
            value={d}
            onChange={(patch) => setD({ ...d, ...patch })}
            touched={touched}
            error={error}
            placeholders={["Order number", "order_number"]}
          />
          <Field label="Type" error={fieldError(error, "field.type")}>
            <select value={d.type} onChange={(e) => setD({ ...d, type: Number(e.target.value) })}>
              <Options of={FIELD_TYPES} />
            </select>
          </Field>
        </AddRow>
      }
    >
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
    </ListCard>
  );
}
