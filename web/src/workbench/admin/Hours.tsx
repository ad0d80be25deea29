// Admin → Business hours: one team's or inbox's opening times, holidays, special days,
// out-of-office message and what happens to chats outside the hours.

import { Code, ConnectError } from "@connectrpc/connect";
import { OutsideHoursPolicy, type BusinessHours } from "../../gen/helpdesk/routing/v1/routing_pb";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Empty, ErrorLine, Options, useAction, useLoad } from "../ui";
import { useDirectory } from "./directory";
import { Card, Field, fieldError, PageHeader, SaveBar, useDraft } from "./forms";
import { listAllInboxes } from "./Inboxes";
import { closedWeek, DatesInput, localZone, officeWeek, type Week, WeekField, weekProblem, ZoneInput } from "./schedule";

/** The Business hours section; `?team=<id>` or `?inbox=<id>` picks whose. */
export function HoursAdmin({ query }: { query: URLSearchParams }) {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const inboxes = useLoad(() => listAllInboxes(clients), [clients]);
  const teamId = query.get("team") ?? "";
  const inboxId = query.get("inbox") ?? "";
  const target = teamId ? `team:${teamId}` : inboxId ? `inbox:${inboxId}` : "";
  const hours = useLoad(async () => {
    if (!teamId && !inboxId) return undefined;
    try {
      return await clients.routing.getBusinessHours({ teamId, inboxId });
    } catch (err) {
      if (ConnectError.from(err).code === Code.NotFound) return null;
      throw err;
    }
  }, [clients, teamId, inboxId]);

  const name = teamId
    ? dir.teamName(teamId)
    : inboxId
      ? inboxes.data?.find((i) => i.id === inboxId)?.name ?? "this inbox"
      : "";

  return (
    <div className="hk-page">
      <PageHeader
        title="Business hours"
        sub="When a team (or an inbox) is open. A chat's team's hours apply; without them, its inbox's; with neither, routing is always open."
      />
      <Card title="Whose hours">
        <div className="hk-row">
          <select
            data-testid="hours-target"
            value={target}
            style={{ minWidth: 320 }}
            onChange={(e) => {
              const [kind, id] = e.target.value.split(":");
              go("admin", "hours", id ? { [kind]: id } : undefined);
            }}
          >
            <option value="">Choose a team or an inbox…</option>
            <optgroup label="Teams">
              <Options of={dir.teams.map((t) => [`team:${t.id}`, t.name] as const)} />
            </optgroup>
            <optgroup label="Inboxes">
              <Options of={(inboxes.data ?? []).map((i) => [`inbox:${i.id}`, i.name] as const)} />
            </optgroup>
          </select>
          {hours.data === null && <span className="hk-pill dim">No hours set: always open</span>}
          {hours.data && <span className="hk-pill ok">Hours set</span>}
        </div>
        <ErrorLine error={dir.error ?? inboxes.error} />
      </Card>
      {!target ? (
        <Card>
          <Empty>Pick a team or an inbox to see and set its hours.</Empty>
        </Card>
      ) : hours.loading && hours.data === undefined ? (
        <div className="hk-loading">Loading…</div>
      ) : hours.error ? (
        <ErrorLine error={hours.error} />
      ) : (
        <HoursEditor key={target} hours={hours.data ?? undefined} teamId={teamId} inboxId={inboxId} name={name} onSaved={hours.reload} />
      )}
    </div>
  );
}

interface Draft {
  timeZone: string;
  week: Week;
  holidays: string[];
  special: { date: string; ranges: { start: string; end: string }[] }[];
  message: string;
  policy: OutsideHoursPolicy;
}

function draftOf(h?: BusinessHours): Draft {
  if (!h) return { timeZone: localZone(), week: officeWeek(), holidays: [], special: [], message: "", policy: OutsideHoursPolicy.LEAVE_MESSAGE };
  const week = closedWeek();
  for (const day of h.weekly) week[day.weekday] = day.ranges.map((r) => ({ start: r.start, end: r.end }));
  return {
    timeZone: h.timeZone,
    week,
    holidays: [...h.holidays],
    special: h.specialDays.map((s) => ({ date: s.date, ranges: s.ranges.map((r) => ({ start: r.start, end: r.end })) })),
    message: h.outOfOfficeMessage,
    policy: h.outsideHoursPolicy || OutsideHoursPolicy.LEAVE_MESSAGE,
  };
}

function HoursEditor(props: { hours?: BusinessHours; teamId: string; inboxId: string; name: string; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const { draft: d, set, saved, setSaved } = useDraft(() => draftOf(props.hours));
  const [act, error, busy] = useAction();
  const problem = weekProblem(d.week) ?? (d.special.some((s) => !/^\d{4}-\d\d-\d\d$/.test(s.date)) ? "Each special day needs a date." : undefined);

  const save = () => {
    if (problem) return;
    act(async () => {
      await clients.routing.setBusinessHours({
        hours: {
          teamId: props.teamId,
          inboxId: props.inboxId,
          timeZone: d.timeZone.trim(),
          weekly: Object.entries(d.week)
            .filter(([, r]) => r.length)
            .map(([weekday, ranges]) => ({ weekday: Number(weekday), ranges })),
          holidays: d.holidays,
          specialDays: d.special,
          outOfOfficeMessage: d.message,
          outsideHoursPolicy: d.policy,
        },
      });
      setSaved(true);
      props.onSaved();
    });
  };

  return (
    <>
      <Card title={`Opening times of ${props.name}`} sub="local time of the zone; an end of 24:00 means midnight">
        <div className="hk-form">
          <Field label="Time zone" error={fieldError(error, "time_zone")}>
            <ZoneInput testId="hours-zone" value={d.timeZone} onChange={(timeZone) => set({ timeZone })} />
          </Field>
          <div />
          <WeekField week={d.week} onChange={(week) => set({ week })} error={problem ?? fieldError(error, "weekly")} />
        </div>
      </Card>
      <Card title="Holidays and special days">
        <div className="hk-form">
          <Field label="Holidays" hint="Closed all day." error={fieldError(error, "holidays")}>
            <DatesInput value={d.holidays} onChange={(holidays) => set({ holidays })} />
          </Field>
          <Field label="Special days" hint="Other hours that day (no range: closed). A holiday wins." error={fieldError(error, "special_days")}>
            <div className="hk-form one" style={{ gap: 8 }}>
              {d.special.map((s, i) => (
                <div key={i} className="hk-row">
                  <input
                    type="date"
                    value={s.date}
                    onChange={(e) => set({ special: d.special.map((x, j) => (j === i ? { ...x, date: e.target.value } : x)) })}
                  />
                  <input
                    placeholder="10:00-14:00"
                    style={{ width: 130 }}
                    value={s.ranges.map((r) => `${r.start}-${r.end}`).join(", ")}
                    onChange={(e) =>
                      set({
                        special: d.special.map((x, j) =>
                          j === i
                            ? {
                                ...x,
                                ranges: e.target.value
                                  .split(",")
                                  .map((p) => p.trim())
                                  .filter(Boolean)
                                  .map((p) => {
                                    const [start = "", end = ""] = p.split("-").map((t) => t.trim());
                                    return { start, end };
                                  }),
                              }
                            : x,
                        ),
                      })
                    }
                  />
                  <button className="ghost small" onClick={() => set({ special: d.special.filter((_, j) => j !== i) })}>
                    Remove
                  </button>
                </div>
              ))}
              <div>
                <button className="small" onClick={() => set({ special: [...d.special, { date: "", ranges: [] }] })}>
                  Add a special day
                </button>
              </div>
            </div>
          </Field>
        </div>
      </Card>
      <Card title="Outside the hours">
        <div className="hk-form one">
          <Field label="What happens to a new chat" error={fieldError(error, "outside_hours_policy")}>
            <div className="hk-checks" style={{ flexDirection: "column", gap: 8 }}>
              <label className="hk-check">
                <input type="radio" checked={d.policy === OutsideHoursPolicy.LEAVE_MESSAGE} onChange={() => set({ policy: OutsideHoursPolicy.LEAVE_MESSAGE })} />
                The visitor is told and may leave a message (the chat goes pending)
              </label>
              <label className="hk-check">
                <input type="radio" checked={d.policy === OutsideHoursPolicy.WAIT} onChange={() => set({ policy: OutsideHoursPolicy.WAIT })} />
                The chat waits in the queue until opening time
              </label>
            </div>
          </Field>
          <Field label="Out-of-office message" hint="Shown to the visitor; empty: the account's leave-a-message text." error={fieldError(error, "out_of_office_message")}>
            <textarea data-testid="hours-message" rows={3} maxLength={2000} value={d.message} onChange={(e) => set({ message: e.target.value })} />
          </Field>
        </div>
      </Card>
      <SaveBar error={error} saved={saved} busy={busy} disabled={!!problem} label="Save hours" onSave={save} testId="hours-save" />
    </>
  );
}
