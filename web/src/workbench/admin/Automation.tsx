// Admin → Automation: the rules in their order, one rule's editor (form or JSON), a
// dry run against a stored conversation or ticket, and the run log.

import { useState } from "react";
import { create, fromJson, toJson, type JsonValue } from "@bufbuild/protobuf";
import {
  DelaySchema,
  Episode,
  RuleSchema,
  RunOutcome,
  type DryRunRuleResponse,
  type Rule,
  type RuleRun,
} from "../../gen/helpdesk/automation/v1/automation_pb";
import { MessageKind } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { readAll, type Clients } from "../../lib/client";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { go } from "../route";
import { ErrorLine, Fact, Options, useAction, useLoad, usePages } from "../ui";
import { type ActionContext, ActionsEditor, actionSummary } from "./actions";
import { AttributeList, countPredicates, emptyGroup, GroupEditor, operatorName } from "./conditions";
import { useDirectory } from "./directory";
import {
  ago,
  Card,
  Check,
  DurationInput,
  Field,
  fieldError,
  FormErrors,
  fullTime,
  ListCard,
  MissingItem,
  PageHeader,
  SaveBar,
  saveItem,
  Switch,
  useDraft,
} from "./forms";

/** The rule events, grouped, with what each fires on. */
const EVENTS: { group: string; events: [string, string][] }[] = [
  {
    group: "Conversations",
    events: [
      ["conversation.created", "a new conversation"],
      ["conversation.updated", "labels, priority, attributes, assignee or team changed"],
      ["conversation.status_changed", "any status change"],
      ["conversation.opened", "a conversation (re)opened"],
      ["conversation.resolved", "a conversation resolved"],
    ],
  },
  {
    group: "Messages",
    events: [
      ["message.created", "a customer's or staff's message"],
      ["message.incoming", "a customer's message"],
      ["message.outgoing", "a message to the customer"],
    ],
  },
  {
    group: "Tickets",
    events: [
      ["ticket.created", "a new ticket"],
      ["ticket.updated", "ticket fields changed"],
      ["ticket.status_changed", "a ticket's status changed"],
      ["ticket.comment_added", "a reply or note on a ticket"],
      ["sla.warning", "an SLA target is close"],
      ["sla.breached", "an SLA target passed"],
    ],
  },
  {
    group: "Routing",
    events: [
      ["routing.queued", "a chat joined a queue"],
      ["routing.overflowed", "a chat was sent away from its queue"],
      ["transfer.accepted", "a transfer was accepted"],
      ["transfer.rejected", "a transfer was declined"],
      ["transfer.timed_out", "nobody answered a transfer"],
      ["transfer.cancelled", "a transfer was withdrawn"],
    ],
  },
  { group: "Satisfaction", events: [["csat.submitted", "the customer rated a conversation"]] },
];

const OUTCOMES: [RunOutcome, string, string][] = [
  [RunOutcome.FIRED, "Fired", "ok"],
  [RunOutcome.FAILED, "Failed", "bad"],
  [RunOutcome.STOPPED, "Stopped", "warn"],
  [RunOutcome.SCHEDULED, "Scheduled", "info"],
  [RunOutcome.DROPPED, "Dropped", "dim"],
];

/** Loads what the action pickers offer. */
export function useActionContext(): ActionContext & { error?: string } {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const extra = useLoad(async () => {
    const [statuses, endpoints, macros] = await Promise.all([
      clients.ticketing.listStatuses({}).then((r) => r.statuses),
      clients.notification.listEndpoints({ pageSize: 50 }).then((r) => r.endpoints),
      clients.automation.listMacros({ pageSize: 100 }).then((r) => r.macros),
    ]);
    return { statuses, endpoints, macros };
  }, [clients]);
  return {
    dir,
    statuses: extra.data?.statuses ?? [],
    endpoints: extra.data?.endpoints ?? [],
    macros: extra.data?.macros ?? [],
    error: extra.error,
  };
}

/** Every rule of the account, in order. */
function listAllRules(clients: Clients): Promise<Rule[]> {
  return readAll((pageToken) => clients.automation.listRules({ pageSize: 100, pageToken }), (r) => r.rules);
}

/** The Automation section: the rules, `new`, or one rule by id. */
export function AutomationAdmin({ id }: { id?: string }) {
  const { clients } = useWorkbench();
  const rules = useLoad(() => listAllRules(clients), [clients]);
  const ctx = useActionContext();
  if (id) {
    if (id === "new") return <RuleEditor ctx={ctx} onSaved={rules.reload} count={rules.data?.length ?? 0} />;
    const rule = rules.data?.find((r) => r.id === id);
    if (!rule)
      return <MissingItem back={{ href: "#/admin/automation", label: "Automation" }} loading={rules.loading} error={rules.error ?? "No such rule."} />;
    return <RuleEditor key={rule.id} rule={rule} ctx={ctx} onSaved={rules.reload} count={rules.data?.length ?? 0} />;
  }
  return <RuleList rules={rules.data ?? []} loading={rules.loading && !rules.data} error={rules.error} ctx={ctx} reload={rules.reload} />;
}

function RuleList(props: { rules: Rule[]; loading: boolean; error?: string; ctx: ActionContext; reload: () => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const toggle = (r: Rule, active: boolean) =>
    act(async () => {
      await clients.automation.updateRule({ rule: { id: r.id, active }, updateMask: { paths: ["active"] } });
      props.reload();
    });
  return (
    <div className="hk-page">
      <PageHeader
        title="Automation"
        sub="When this happens, if these hold, do that: rules run once per event, in this order."
        actions={
          <button className="primary" data-testid="rule-new" onClick={() => go("admin", "automation/new")}>
            New rule
          </button>
        }
      />
      <ListCard
        error={props.error ?? error}
        loading={props.loading}
        loadingText="Loading rules…"
        count={props.rules.length}
        empty="No rules yet. Start with one: “when a customer writes “refund”, create a ticket”."
        columns={[{ label: "#", num: true }, "Rule", "When", "Conditions", "Actions", "Active"]}
      >
        {props.rules.map((r) => (
          <tr key={r.id} className="click" data-testid="rule-row" data-id={r.id} onClick={() => go("admin", `automation/${r.id}`)}>
            <td className="num hk-muted">{r.position}</td>
            <td>
              <span className="strong">{r.name}</span>
              {r.description && <span className="sub">{r.description.slice(0, 90)}</span>}
            </td>
            <td>
              <code className="hk-small">{r.event}</code>
              {r.delay && <span className="sub">after {fmtSeconds(Number(r.delay.seconds))}</span>}
            </td>
            <td className="hk-small">{countPredicates(r.conditions) ? `${countPredicates(r.conditions)} condition${countPredicates(r.conditions) === 1 ? "" : "s"}` : "always"}</td>
            <td className="hk-small">{r.actions.map((a) => actionSummary(a, props.ctx)).join(" · ")}</td>
            <td onClick={(e) => e.stopPropagation()}>
              <Switch testId="rule-active" label={r.active ? "Active" : "Off"} checked={r.active} disabled={busy} onChange={(on) => toggle(r, on)} />
            </td>
          </tr>
        ))}
      </ListCard>
      <RunLog title="Recent runs" ruleNames />
    </div>
  );
}

function fmtSeconds(s: number): string {
  if (s % 86400 === 0) return `${s / 86400} d`;
  if (s % 3600 === 0) return `${s / 3600} h`;
  if (s % 60 === 0) return `${s / 60} min`;
  return `${s} s`;
}

/** A rule as the editor holds it (output-only fields dropped). */
function draftOf(r?: Rule, count = 0): Rule {
  return create(RuleSchema, {
    name: r?.name ?? "",
    description: r?.description ?? "",
    active: r?.active ?? true,
    position: r?.position ?? count + 1,
    event: r?.event ?? "message.incoming",
    conditions: r?.conditions ?? emptyGroup(),
    actions: r?.actions ?? [],
    delay: r?.delay,
  });
}

const PATHS = ["name", "description", "active", "position", "event", "conditions", "actions", "delay"];

function RuleEditor({ rule, ctx, onSaved, count }: { rule?: Rule; ctx: ActionContext & { error?: string }; onSaved: () => void; count: number }) {
  const { clients } = useWorkbench();
  const { draft: d, setDraft, set, saved, setSaved } = useDraft(() => draftOf(rule, count));
  const [mode, setMode] = useState<"form" | "json">("form");
  const [json, setJson] = useState("");
  const [jsonError, setJsonError] = useState<string>();
  const [touched, setTouched] = useState(false);
  const [act, error, busy] = useAction();

  /** The rule being edited: the JSON text when that is shown. */
  const current = (): Rule | undefined => {
    if (mode === "form") return d;
    try {
      const parsed = fromJson(RuleSchema, JSON.parse(json) as JsonValue);
      setJsonError(undefined);
      return parsed;
    } catch (err) {
      setJsonError(err instanceof Error ? err.message : String(err));
      return undefined;
    }
  };
  const toForm = () => {
    const r = current();
    if (!r) return;
    setDraft(draftOf(r));
    setMode("form");
  };
  const toJsonMode = () => {
    setJson(JSON.stringify(toJson(RuleSchema, d), null, 2));
    setJsonError(undefined);
    setMode("json");
  };

  const problems: string[] = [];
  if (!d.name.trim()) problems.push("A name is required.");
  if (d.actions.length === 0) problems.push("Add at least one action.");

  const save = () => {
    setTouched(true);
    const r = current();
    if (!r) return;
    if (mode === "form" && problems.length) return;
    act(() =>
      saveItem({
        section: "automation",
        update: rule && (() => clients.automation.updateRule({ rule: { ...r, id: rule.id }, updateMask: { paths: PATHS } })),
        create: () => clients.automation.createRule({ rule: r }),
        onSaved,
        setSaved,
      }),
    );
  };

  const del = () =>
    rule &&
    confirm(`Delete the rule “${rule.name}”? Its waiting delayed runs are dropped.`) &&
    act(async () => {
      await clients.automation.deleteRule({ id: rule.id });
      onSaved();
      go("admin", "automation");
    });

  const e = (p: string) => fieldError(error, `rule.${p}`);
  const eventHint = EVENTS.flatMap((g) => g.events).find(([v]) => v === d.event)?.[1];

  return (
    <div className="hk-page">
      <PageHeader
        back={{ href: "#/admin/automation", label: "Automation" }}
        title={rule ? rule.name : "New rule"}
        sub={rule ? `Rule ${rule.position} · updated ${ago(toDate(rule.updateTime))}` : "Describe when it runs, what must hold, and what it does."}
        actions={
          <>
            <div className="adm-tabs" role="tablist">
              <button className={mode === "form" ? "on" : ""} onClick={() => mode === "json" && toForm()}>
                Form
              </button>
              <button className={mode === "json" ? "on" : ""} data-testid="rule-json-tab" onClick={() => mode === "form" && toJsonMode()}>
                JSON
              </button>
            </div>
            {rule && (
              <button className="danger" onClick={del} disabled={busy}>
                Delete
              </button>
            )}
          </>
        }
      />
      <ErrorLine error={ctx.error} />
      <div className="adm-split" style={{ gridTemplateColumns: "minmax(0, 1fr) 360px" }}>
        <div>
          {mode === "json" ? (
            <Card title="Rule as JSON" sub="the Rule message in protobuf JSON; the form shows it again when valid">
              <textarea
                className="adm-json"
                data-testid="rule-json"
                spellCheck={false}
                value={json}
                onChange={(ev) => {
                  setJson(ev.target.value);
                  setSaved(false);
                }}
              />
              {jsonError && <p className="error hk-small">Not a valid rule: {jsonError}</p>}
            </Card>
          ) : (
            <>
              <Card title="Rule">
                <div className="hk-form">
                  <Field label="Name" error={touched && !d.name.trim() ? "A name is required." : e("name")}>
                    <input data-testid="rule-name" value={d.name} maxLength={200} onChange={(ev) => set({ name: ev.target.value })} />
                  </Field>
                  <Field label="When" hint={eventHint} error={e("event")}>
                    <select data-testid="rule-event" value={d.event} onChange={(ev) => set({ event: ev.target.value })}>
                      {EVENTS.map((g) => (
                        <optgroup key={g.group} label={g.group}>
                          {g.events.map(([v]) => (
                            <option key={v} value={v}>
                              {v}
                            </option>
                          ))}
                        </optgroup>
                      ))}
                    </select>
                  </Field>
                  <Field label="Description" wide error={e("description")}>
                    <input value={d.description} maxLength={2000} placeholder="What it is for" onChange={(ev) => set({ description: ev.target.value })} />
                  </Field>
                  <Field label="Position" hint="1 runs first; 0: last." error={e("position")}>
                    <input type="number" min={0} value={d.position} onChange={(ev) => set({ position: Number(ev.target.value) })} />
                  </Field>
                  <Field label="Status">
                    <Check testId="rule-enabled" checked={d.active} onChange={(active) => set({ active })} label="Active (runs on new events)" />
                  </Field>
                </div>
              </Card>
              <Card title="If" sub="conditions on the event's conversation, message, contact, ticket or rating">
                <AttributeList />
                <GroupEditor group={d.conditions ?? emptyGroup()} dir={ctx.dir} statuses={ctx.statuses} onChange={(conditions) => set({ conditions })} />
                {e("conditions") && <p className="error hk-small">{e("conditions")}</p>}
              </Card>
              <Card title="Then" sub="done in order; a failed action does not stop the next">
                <ActionsEditor actions={d.actions} onChange={(actions) => set({ actions })} ctx={ctx} path="rule.actions" error={error} allowMacro />
                {touched && d.actions.length === 0 && <p className="error hk-small">Add at least one action.</p>}
              </Card>
              <Card title="Wait">
                <div className="hk-form">
                  <div className="hk-field wide">
                    <Check
                      checked={!!d.delay}
                      onChange={(on) => set({ delay: on ? create(DelaySchema, { seconds: 600n, episode: Episode.STATUS }) : undefined })}
                      label="Act only if still true after a while"
                    />
                  </div>
                  {d.delay && (
                    <>
                      <Field label="After" error={e("delay.seconds")}>
                        <DurationInput seconds={Number(d.delay.seconds)} onChange={(s) => set({ delay: { ...d.delay!, seconds: BigInt(s) } })} />
                      </Field>
                      <Field label="Unless meanwhile" error={e("delay.episode")}>
                        <select value={d.delay.episode || Episode.STATUS} onChange={(ev) => set({ delay: { ...d.delay!, episode: Number(ev.target.value) } })}>
                          <option value={Episode.STATUS}>the status changes</option>
                          <option value={Episode.LAST_MESSAGE}>anyone writes a public message</option>
                          <option value={Episode.CUSTOMER_MESSAGE}>the customer writes again</option>
                        </select>
                      </Field>
                    </>
                  )}
                </div>
              </Card>
            </>
          )}
          <SaveBar
            error={error}
            saved={saved}
            busy={busy}
            label={rule ? "Save rule" : "Create rule"}
            onSave={save}
            onCancel={() => go("admin", "automation")}
            testId="rule-save"
          />
        </div>
        <div>
          <DryRun draft={current} />
          {rule && <RunLog title="Runs of this rule" ruleId={rule.id} compact />}
        </div>
      </div>
    </div>
  );
}

/** How many of a conversation's newest messages a dry run looks through for the customer's. */
const LATEST_MESSAGES = 50;

/** The text a dry run's message conditions read, cut for showing. */
const excerpt = (text: string) => (text.length > 80 ? `${text.slice(0, 80)}…` : text);

/**
 * Evaluates the rule as edited against a stored conversation (with its latest customer
 * message, when asked, so that message conditions have a value) or ticket.
 */
function DryRun({ draft }: { draft: () => Rule | undefined }) {
  const { clients } = useWorkbench();
  const [target, setTarget] = useState<"conversation" | "ticket">("conversation");
  const [id, setId] = useState("");
  const [withMessage, setWithMessage] = useState(true);
  const [result, setResult] = useState<{ answer: DryRunRuleResponse; message?: string }>();
  const [act, error, busy] = useAction();
  const sampled = target === "conversation" && withMessage;
  const run = () => {
    const rule = draft();
    const key = id.trim();
    if (!rule || !key) return;
    setResult(undefined);
    act(async () => {
      if (!sampled) {
        const answer = await clients.automation.dryRunRule({
          rule,
          conversationId: target === "conversation" ? key : "",
          ticketId: target === "ticket" ? key : "",
        });
        setResult({ answer });
        return;
      }
      // The conversation as it is now and the newest message its customer wrote.
      const [conversation, latest] = await Promise.all([
        clients.conversation.getConversation({ id: key }),
        clients.conversation.listMessages({ conversationId: key, pageSize: LATEST_MESSAGES, beforeSequence: 2n ** 53n }),
      ]);
      const message = [...latest.messages].reverse().find((m) => m.kind === MessageKind.INCOMING);
      const answer = await clients.automation.dryRunRule({ rule, sample: { event: rule.event, conversation, message } });
      setResult({ answer, message: message ? message.content : "" });
    });
  };
  return (
    <Card title="Dry run" sub="nothing is changed">
      <div className="hk-form one">
        <div className="hk-row" style={{ flexWrap: "nowrap" }}>
          <select aria-label="Against" value={target} onChange={(e) => setTarget(e.target.value as "conversation" | "ticket")} style={{ width: "auto" }}>
            <option value="conversation">Conversation</option>
            <option value="ticket">Ticket</option>
          </select>
          <input
            data-testid="rule-dry-run-id"
            placeholder={`${target} id`}
            value={id}
            onChange={(e) => setId(e.target.value)}
            onKeyDown={(e) => e.key === "Enter" && run()}
            style={{ flex: 1, minWidth: 0 }}
          />
        </div>
        {target === "conversation" && (
          <Check testId="rule-dry-run-with-message" checked={withMessage} onChange={setWithMessage} label="With its latest customer message" />
        )}
        <button data-testid="rule-dry-run" disabled={busy || !id.trim()} onClick={run}>
          {busy ? "Evaluating…" : "Try the rule"}
        </button>
        <FormErrors error={error} />
        {result?.message !== undefined && (
          <p className="hk-small" style={{ margin: 0 }} data-testid="rule-dry-run-message">
            {result.message ? <>Message: “{excerpt(result.message)}”</> : <span className="hk-muted">No customer message among its latest {LATEST_MESSAGES}: message conditions have no value.</span>}
          </p>
        )}
        {result && <DryRunResult result={result.answer} />}
        <p className="hk-small hk-muted" style={{ margin: 0 }}>
          {sampled
            ? "Evaluated against the conversation as it is now and that message, with nothing before it: rating conditions have no value, and “changed” holds for any attribute that has one."
            : `Evaluated against the ${target} as last seen, with nothing before it: message and rating conditions have no value, and “changed” holds for any attribute that has one.`}
        </p>
      </div>
    </Card>
  );
}

function DryRunResult({ result }: { result: DryRunRuleResponse }) {
  return (
    <div className="adm-result" data-testid="rule-dry-run-result" data-matched={result.matched ? "true" : "false"}>
      <div className={`adm-result-head ${result.matched ? "yes" : "no"}`}>
        {result.matched ? "✓ The conditions hold" : "✗ The conditions do not hold"}
      </div>
      {result.conditions.length > 0 && (
        <table className="hk-table">
          <tbody>
            {result.conditions.map((c) => (
              <tr key={c.path}>
                <td style={{ width: 18 }}>
                  <span className={`adm-tick ${c.matched ? "yes" : "no"}`}>{c.matched ? "✓" : "✗"}</span>
                </td>
                <td className="hk-small">
                  <code>{c.attribute}</code> {operatorName(c.operator)} {c.values.join(", ")}
                  <span className="sub">is {c.actual ? `“${c.actual}”` : "empty"}</span>
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
      <div className="hk-small" style={{ padding: "8px 12px 0", fontWeight: 600 }}>
        {result.matched ? "It would:" : "It would have:"}
      </div>
      <ol>
        {result.actions.map((a, i) => (
          <li key={i}>{a}</li>
        ))}
      </ol>
    </div>
  );
}

/** What the rules did, newest first (of one rule when `ruleId` is set). */
function RunLog({ title, ruleId, ruleNames, compact }: { title: string; ruleId?: string; ruleNames?: boolean; compact?: boolean }) {
  const { clients } = useWorkbench();
  const [outcome, setOutcome] = useState(RunOutcome.UNSPECIFIED);
  const [open, setOpen] = useState<string>();
  const runs = usePages(
    (pageToken) => clients.automation.listRuleRuns({ ruleId: ruleId ?? "", outcome, pageSize: 25, pageToken }),
    (r) => r.runs,
    [clients, ruleId, outcome],
    [],
  );
  const list = runs.data ?? [];
  return (
    <ListCard
      title={title}
      testId="rule-runs"
      actions={
        <>
          <select aria-label="Outcome" value={outcome} onChange={(e) => setOutcome(Number(e.target.value))} style={{ width: "auto" }}>
            <option value={RunOutcome.UNSPECIFIED}>All outcomes</option>
            <Options of={OUTCOMES} />
          </select>
          <button className="small" data-testid="rule-runs-refresh" onClick={runs.reload}>
            Refresh
          </button>
        </>
      }
      error={runs.error}
      loading={runs.loading && !runs.data}
      loadingText="Loading runs…"
      count={list.length}
      empty={`No runs logged${outcome ? " with this outcome" : ""}.`}
      more={runs.more}
    >
      {list.map((r) => (
        <RunRow key={r.id} run={r} open={open === r.id} onToggle={() => setOpen(open === r.id ? undefined : r.id)} ruleName={ruleNames} compact={compact} />
      ))}
    </ListCard>
  );
}

function RunRow({ run, open, onToggle, ruleName, compact }: { run: RuleRun; open: boolean; onToggle: () => void; ruleName?: boolean; compact?: boolean }) {
  const o = OUTCOMES.find(([v]) => v === run.outcome);
  const when = toDate(run.createTime);
  return (
    <>
      <tr className="click" data-testid="rule-run" onClick={onToggle}>
        <td style={{ width: 90 }}>
          <span className={`hk-pill ${o?.[2] ?? "dim"}`}>{o?.[1] ?? "—"}</span>
        </td>
        <td>
          {ruleName && <span className="strong">{run.ruleName} </span>}
          <code className="hk-small">{run.event}</code>
          {!compact && (
            <span className="sub">
              {run.conversationId && (
                <a href={`#/conversations/${run.conversationId}`} onClick={(e) => e.stopPropagation()}>
                  conversation {run.conversationId.slice(0, 8)}…
                </a>
              )}
              {run.ticketId && (
                <>
                  {" "}
                  <a href={`#/tickets/${run.ticketId}`} onClick={(e) => e.stopPropagation()}>
                    ticket {run.ticketId.slice(0, 8)}…
                  </a>
                </>
              )}
            </span>
          )}
        </td>
        <td className="hk-muted hk-small" title={fullTime(when)} style={{ whiteSpace: "nowrap" }}>
          {ago(when)}
        </td>
      </tr>
      {open && (
        <tr className="adm-detail-row">
          <td colSpan={3}>
            <dl className="adm-kv">
              {run.reason && <Fact label="Reason">{run.reason}</Fact>}
              {run.conversationId && (
                <Fact label="Conversation">
                  <a href={`#/conversations/${run.conversationId}`}>{run.conversationId}</a>
                </Fact>
              )}
              {run.ticketId && (
                <Fact label="Ticket">
                  <a href={`#/tickets/${run.ticketId}`}>{run.ticketId}</a>
                </Fact>
              )}
              <dt>Conditions</dt>
              <dd>
                {run.conditions.length === 0
                  ? "none"
                  : run.conditions.map((c) => (
                      <div key={c.path}>
                        <span className={`adm-tick ${c.matched ? "yes" : "no"}`}>{c.matched ? "✓" : "✗"}</span> <code>{c.attribute}</code>{" "}
                        {operatorName(c.operator)} {c.values.join(", ")} <span className="hk-muted">(was “{c.actual}”)</span>
                      </div>
                    ))}
              </dd>
              <dt>Actions</dt>
              <dd>
                {run.actions.length === 0
                  ? "none"
                  : run.actions.map((a, i) => (
                      <div key={i}>
                        <span className={`adm-tick ${a.ok ? "yes" : "no"}`}>{a.ok ? "✓" : "✗"}</span> {a.action}: {a.detail}
                      </div>
                    ))}
              </dd>
              <dt>Took</dt>
              <dd>
                {(Number(run.durationMicros) / 1000).toFixed(1)} ms{run.depth ? ` · ${run.depth} rule(s) before it in the chain` : ""}
              </dd>
            </dl>
          </td>
        </tr>
      )}
    </>
  );
}
