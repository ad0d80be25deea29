// Weekly opening times, holidays and time zones, shared by business hours and SLA
// calendars.

import { useState } from "react";
import { ChipsInput } from "./forms";

/** Opening ranges per weekday (1 = Monday … 7 = Sunday). */
export type Week = Record<number, { start: string; end: string }[]>;

/** Weekday names, Monday first (weekday 1). */
export const WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"];

/** A week closed every day. */
export function closedWeek(): Week {
  const w: Week = {};
  for (let d = 1; d <= 7; d++) w[d] = [];
  return w;
}

/** Monday to Friday, 9 to 17. */
export function officeWeek(): Week {
  const w = closedWeek();
  for (let d = 1; d <= 5; d++) w[d] = [{ start: "09:00", end: "17:00" }];
  return w;
}

/** Problems of a week: a range ending before it starts, or overlapping another. */
export function weekProblem(w: Week): string | undefined {
  for (let d = 1; d <= 7; d++) {
    const ranges = [...(w[d] ?? [])].sort((a, b) => a.start.localeCompare(b.start));
    for (const [i, r] of ranges.entries()) {
      if (!/^\d\d:\d\d$/.test(r.start) || !/^\d\d:\d\d$/.test(r.end)) return `${WEEKDAYS[d - 1]}: times are HH:MM.`;
      if (r.end <= r.start) return `${WEEKDAYS[d - 1]}: ${r.start}–${r.end} ends before it starts.`;
      if (i > 0 && r.start < ranges[i - 1].end) return `${WEEKDAYS[d - 1]}: ranges overlap.`;
    }
  }
  return undefined;
}

/** The opening times of each weekday as a form's full-width field, with the complaint about them. */
export function WeekField({ week, onChange, error }: { week: Week; onChange: (w: Week) => void; error?: string }) {
  return (
    <div className="hk-field wide">
      <WeekEditor week={week} onChange={onChange} />
      {error && <span className="hk-field-error">{error}</span>}
    </div>
  );
}

/** The opening times of each weekday, with several ranges a day. */
function WeekEditor({ week, onChange }: { week: Week; onChange: (w: Week) => void }) {
  const setDay = (d: number, ranges: { start: string; end: string }[]) => onChange({ ...week, [d]: ranges });
  return (
    <div className="adm-week">
      {WEEKDAYS.map((name, i) => {
        const d = i + 1;
        const ranges = week[d] ?? [];
        return (
          <div className="adm-day" key={d} data-testid={`hours-day-${d}`}>
            <label className="hk-check">
              <input
                type="checkbox"
                checked={ranges.length > 0}
                onChange={(e) => setDay(d, e.target.checked ? [{ start: "09:00", end: "17:00" }] : [])}
              />
              <strong>{name}</strong>
            </label>
            <div className="adm-ranges">
              {ranges.length === 0 && <span className="adm-closed">Closed</span>}
              {ranges.map((r, j) => (
                <span className="adm-range" key={j}>
                  <input
                    type="text"
                    pattern="\d\d:\d\d"
                    placeholder="09:00"
                    aria-label={`${name} opens`}
                    value={r.start}
                    onChange={(e) => setDay(d, ranges.map((x, k) => (k === j ? { ...x, start: e.target.value } : x)))}
                  />
                  –
                  <input
                    type="text"
                    aria-label={`${name} closes`}
                    value={r.end}
                    pattern="\d\d:\d\d"
                    placeholder="17:00"
                    title="HH:MM; 24:00 for midnight"
                    onChange={(e) => setDay(d, ranges.map((x, k) => (k === j ? { ...x, end: e.target.value } : x)))}
                  />
                  <button type="button" className="ghost small" aria-label="Remove range" onClick={() => setDay(d, ranges.filter((_, k) => k !== j))}>
                    ×
                  </button>
                </span>
              ))}
              {ranges.length > 0 && (
                <button
                  type="button"
                  className="ghost small"
                  onClick={() => setDay(d, [...ranges, { start: ranges[ranges.length - 1].end, end: "24:00" }])}
                >
                  + range
                </button>
              )}
            </div>
            <div>
              {ranges.length > 0 && d === 1 && (
                <button
                  type="button"
                  className="small"
                  title="Give Tuesday to Friday the same hours"
                  onClick={() => onChange({ ...week, 2: [...ranges], 3: [...ranges], 4: [...ranges], 5: [...ranges] })}
                >
                  Copy to weekdays
                </button>
              )}
            </div>
          </div>
        );
      })}
    </div>
  );
}

/** Dates (YYYY-MM-DD) picked one at a time. */
export function DatesInput({ value, onChange }: { value: string[]; onChange: (v: string[]) => void }) {
  const [date, setDate] = useState("");
  return (
    <div className="hk-form one" style={{ gap: 8 }}>
      <div className="hk-row">
        <input type="date" value={date} onChange={(e) => setDate(e.target.value)} />
        <button
          type="button"
          className="small"
          disabled={!date || value.includes(date)}
          onClick={() => {
            onChange([...value, date].sort());
            setDate("");
          }}
        >
          Add date
        </button>
      </div>
      <ChipsInput value={value} onChange={onChange} placeholder="YYYY-MM-DD" normalize={(s) => (/^\d{4}-\d\d-\d\d$/.test(s) ? s : "")} />
    </div>
  );
}

/** Every IANA time zone the browser knows. */
function timeZones(): string[] {
  const intl = Intl as unknown as { supportedValuesOf?: (k: string) => string[] };
  return intl.supportedValuesOf?.("timeZone") ?? ["UTC"];
}

/** A time-zone field with suggestions. */
export function ZoneInput({ value, onChange, testId }: { value: string; onChange: (v: string) => void; testId?: string }) {
  return (
    <>
      <input data-testid={testId} list="hk-time-zones" value={value} placeholder="Europe/Berlin" onChange={(e) => onChange(e.target.value)} />
      <datalist id="hk-time-zones">
        {timeZones().map((z) => (
          <option key={z} value={z} />
        ))}
      </datalist>
    </>
  );
}

/** The browser's own zone, a good default. */
export function localZone(): string {
  return Intl.DateTimeFormat().resolvedOptions().timeZone || "UTC";
}
