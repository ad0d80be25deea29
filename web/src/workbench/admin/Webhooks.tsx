// Admin → Webhooks: endpoints that receive the account's events, their signing
// secrets, health, and the delivery log with each attempt.

import { useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { DeliveryStatus, type Delivery, type Endpoint } from "../../gen/helpdesk/notification/v1/notification_pb";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { go } from "../route";
import { ErrorLine, Fact, Options, useAction, useLoad, usePages } from "../ui";
import {
  ago,
  Card,
  Check,
  CopyButton,
  Field,
  fieldError,
  FormErrors,
  fullTime,
  ListCard,
  MissingItem,
  PageHeader,
  SaveBar,
  Stat,
  Switch,
  Table,
} from "./forms";

/** The event catalog, by aggregate. */
const CATALOG: [string, string[]][] = [
  ["conversation", ["conversation.created", "conversation.updated", "conversation.status_changed"]],
  ["message", ["message.created"]],
  ["csat", ["csat.submitted"]],
  ["contact", ["contact.created", "contact.updated"]],
  ["inbox", ["inbox.created", "inbox.updated"]],
  ["ticket", ["ticket.created", "ticket.updated", "ticket.status_changed", "ticket.assigned", "ticket.comment_added", "ticket.merged"]],
  ["sla", ["sla.warning", "sla.breached"]],
  ["routing", ["routing.queued", "routing.assigned", "routing.unassigned", "routing.overflowed"]],
  ["agent", ["agent.presence_changed", "agent.created", "agent.updated"]],
  ["business_hours", ["business_hours.updated"]],
  ["transfer", ["transfer.requested", "transfer.accepted", "transfer.rejected", "transfer.timed_out", "transfer.cancelled"]],
  ["notification", ["notification.endpoint_disabled", "notification.delivery_failed", "notification.email_failed", "notification.agent_notified", "notification.notifications_read"]],
  ["automation", ["automation.rule_executed", "automation.rules_changed"]],
];

const STATUSES: [DeliveryStatus, string, string][] = [
  [DeliveryStatus.PENDING, "Pending", "info"],
  [DeliveryStatus.SUCCEEDED, "Delivered", "ok"],
  [DeliveryStatus.FAILED, "Failed", "bad"],
];

/** The Webhooks section: the endpoints, `new`, or one endpoint by id. */
export function WebhooksAdmin({ id }: { id?: string }) {
  const { clients } = useWorkbench();
  const endpoints = useLoad(() => clients.notification.listEndpoints({ pageSize: 50 }).then((r) => r.endpoints), [clients]);
  // A secret is shown once, right after the endpoint is created.
  const [fresh, setFresh] = useState<{ id: string; secret: string }>();
  if (id) {
    if (id === "new")
      return (
        <EndpointForm
          onSaved={(e) => {
            setFresh({ id: e.id, secret: e.secret });
            endpoints.reload();
            go("admin", `webhooks/${e.id}`);
          }}
        />
      );
    const endpoint = endpoints.data?.find((e) => e.id === id);
    if (!endpoint)
      return (
        <MissingItem back={{ href: "#/admin/webhooks", label: "Webhooks" }} loading={endpoints.loading} error={endpoints.error ?? "No such endpoint."} />
      );
    return (
      <EndpointPage
        key={endpoint.id}
        endpoint={endpoint}
        freshSecret={fresh?.id === endpoint.id ? fresh.secret : undefined}
        onDismissSecret={() => setFresh(undefined)}
        onChanged={endpoints.reload}
      />
    );
  }
  const list = endpoints.data ?? [];
  return (
    <div className="hk-page">
      <PageHeader
        title="Webhooks"
        sub="The platform's events as signed HTTP POSTs to your systems (Standard Webhooks), retried for about a day."
        actions={
          <button className="primary" data-testid="webhook-new" onClick={() => go("admin", "webhooks/new")}>
            New endpoint
          </button>
        }
      />
      <ListCard
        error={endpoints.error}
        loading={endpoints.loading && !endpoints.data}
        loadingText="Loading endpoints…"
        count={list.length}
        empty="No endpoints yet. Add one to send ticket or conversation events to your CRM."
        columns={["Endpoint", "Events", "Health (24 h)", "State"]}
      >
        {list.map((e) => (
          <tr key={e.id} className="click" data-testid="webhook-row" data-id={e.id} onClick={() => go("admin", `webhooks/${e.id}`)}>
            <td>
              <span className="strong hk-mono">{e.url}</span>
              {e.description && <span className="sub">{e.description}</span>}
            </td>
            <td>
              <div className="adm-tags">
                {e.eventTypes.slice(0, 4).map((t) => (
                  <span className="adm-tag" key={t}>
                    {t}
                  </span>
                ))}
                {e.eventTypes.length > 4 && <span className="adm-tag">+{e.eventTypes.length - 4}</span>}
              </div>
            </td>
            <td>
              <HealthBadge endpointId={e.id} />
            </td>
            <td>
              {e.enabled ? (
                <span className="hk-pill ok">Enabled</span>
              ) : (
                <span className="hk-pill bad" title={e.disabledReason}>
                  Disabled
                </span>
              )}
            </td>
          </tr>
        ))}
      </ListCard>
    </div>
  );
}

function HealthBadge({ endpointId }: { endpointId: string }) {
  const { clients } = useWorkbench();
  const h = useLoad(() => clients.notification.getEndpointHealth({ endpointId }), [clients, endpointId]);
  if (!h.data) return <span className="hk-muted hk-small">{h.error ? "unknown" : "…"}</span>;
  const d = h.data;
  if (d.attempts === 0n) return <span className="hk-muted hk-small">no attempts</span>;
  const tone = d.failingSince ? "bad" : d.successRate < 0.95 ? "warn" : "ok";
  return (
    <span className={`hk-pill ${tone}`}>
      {Math.round(d.successRate * 100)} % of {String(d.attempts)}
    </span>
  );
}

/** Event types picked from the catalog (whole aggregates with `.*`, or everything). */
function EventPicker({ value, onChange }: { value: string[]; onChange: (v: string[]) => void }) {
  const all = value.includes("*");
  const toggle = (t: string, on: boolean) => onChange(on ? [...value.filter((x) => x !== t), t] : value.filter((x) => x !== t));
  return (
    <div className="hk-form one" style={{ gap: 8 }}>
      <Check testId="webhook-all-events" checked={all} onChange={(on) => onChange(on ? ["*"] : [])} label={<b>Every event (*)</b>} />
      {!all && (
        <div className="adm-events" data-testid="webhook-events">
          {CATALOG.map(([agg, kinds]) => {
            const whole = value.includes(`${agg}.*`);
            return (
              <div key={agg} style={{ display: "contents" }}>
                <h5>
                  <Check checked={whole} onChange={(on) => onChange(on ? [...value.filter((x) => !x.startsWith(`${agg}.`)), `${agg}.*`] : value.filter((x) => x !== `${agg}.*`))} label={`${agg}.*`} />
                </h5>
                {kinds.map((k) => (
                  <Check key={k} checked={whole || value.includes(k)} disabled={whole} onChange={(on) => toggle(k, on)} label={k} />
                ))}
              </div>
            );
          })}
        </div>
      )}
    </div>
  );
}

function urlProblem(url: string): string | undefined {
  if (!url.trim()) return "A URL is required.";
  try {
    const u = new URL(url.trim());
    if (u.protocol !== "http:" && u.protocol !== "https:") return "Only http and https URLs.";
    if (u.username || u.password) return "No user or password in the URL.";
  } catch {
    return "That is not a URL.";
  }
  return undefined;
}

/** Creates an endpoint, or changes one. */
function EndpointForm({ endpoint, onSaved }: { endpoint?: Endpoint; onSaved: (e: Endpoint) => void }) {
  const { clients } = useWorkbench();
  const [url, setUrl] = useState(endpoint?.url ?? "");
  const [types, setTypes] = useState<string[]>(endpoint?.eventTypes ?? ["ticket.*"]);
  const [description, setDescription] = useState(endpoint?.description ?? "");
  const [rate, setRate] = useState(endpoint?.rateLimitPerSecond ?? 0);
  const [touched, setTouched] = useState(false);
  const [saved, setSaved] = useState(false);
  const [act, error, busy] = useAction();
  const local = touched ? urlProblem(url) : undefined;
  const save = () => {
    setTouched(true);
    if (urlProblem(url) || types.length === 0) return;
    act(async () => {
      const body = { url: url.trim(), eventTypes: types, description, rateLimitPerSecond: rate };
      const e = endpoint
        ? await clients.notification.updateEndpoint({
            endpoint: { ...body, id: endpoint.id },
            updateMask: { paths: ["url", "event_types", "description", "rate_limit_per_second"] },
          })
        : await clients.notification.createEndpoint({ endpoint: body });
      setSaved(true);
      onSaved(e);
    });
  };
  const form = (
    <>
      <div className="hk-form">
        <Field label="URL" wide error={local ?? fieldError(error, "endpoint.url")} hint="http or https; addresses inside the network are refused.">
          <input data-testid="webhook-url" className="hk-mono" value={url} placeholder="https://crm.example.com/hooks/helpdesk" onChange={(e) => setUrl(e.target.value)} />
        </Field>
        <Field label="Description" error={fieldError(error, "endpoint.description")}>
          <input value={description} maxLength={500} placeholder="CRM sync" onChange={(e) => setDescription(e.target.value)} />
        </Field>
        <Field label="Most deliveries per second" hint="0: no limit." error={fieldError(error, "endpoint.rate_limit_per_second")}>
          <input type="number" min={0} max={10000} value={rate} onChange={(e) => setRate(Number(e.target.value))} />
        </Field>
        <Field label="Events" wide error={touched && types.length === 0 ? "Pick at least one event." : fieldError(error, "endpoint.event_types")}>
          <EventPicker value={types} onChange={setTypes} />
        </Field>
      </div>
      <SaveBar
        error={error}
        saved={saved && !!endpoint}
        busy={busy}
        label={endpoint ? "Save endpoint" : "Create endpoint"}
        onSave={save}
        onCancel={endpoint ? undefined : () => go("admin", "webhooks")}
        testId="webhook-save"
      />
    </>
  );
  if (endpoint) return <Card title="Settings">{form}</Card>;
  return (
    <div className="hk-page">
      <PageHeader back={{ href: "#/admin/webhooks", label: "Webhooks" }} title="New endpoint" sub="Its signing secret is shown once, when it is created." />
      <Card>{form}</Card>
    </div>
  );
}

function EndpointPage(props: { endpoint: Endpoint; freshSecret?: string; onDismissSecret: () => void; onChanged: () => void }) {
  const { clients } = useWorkbench();
  const e = props.endpoint;
  const [act, error, busy] = useAction();
  const [tick, setTick] = useState(0);
  const [test, setTest] = useState<string>();
  const refresh = () => setTick((t) => t + 1);
  return (
    <div className="hk-page">
      <PageHeader
        back={{ href: "#/admin/webhooks", label: "Webhooks" }}
        title={<span className="hk-mono" style={{ fontSize: 18 }}>{e.url}</span>}
        sub={e.description || `Created ${ago(toDate(e.createTime))}`}
        actions={
          <>
            <span className="hk-check">
              <Switch
                testId="webhook-enabled"
                label="Enabled"
                checked={e.enabled}
                disabled={busy}
                onChange={(enabled) =>
                  act(async () => {
                    await clients.notification.updateEndpoint({ endpoint: { id: e.id, enabled }, updateMask: { paths: ["enabled"] } });
                    props.onChanged();
                  })
                }
              />
              {e.enabled ? "Enabled" : "Disabled"}
            </span>
            <button
              data-testid="webhook-test"
              disabled={busy || !e.enabled}
              onClick={() =>
                act(async () => {
                  const d = await clients.notification.sendTestEvent({ endpointId: e.id });
                  setTest(d.id);
                  refresh();
                })
              }
            >
              Send test event
            </button>
            <button
              className="danger"
              disabled={busy}
              onClick={() =>
                confirm("Delete this endpoint and its delivery log?") &&
                act(async () => {
                  await clients.notification.deleteEndpoint({ id: e.id });
                  props.onChanged();
                  go("admin", "webhooks");
                })
              }
            >
              Delete
            </button>
          </>
        }
      />
      <FormErrors error={error} />
      {test && <p className="hk-note ok">A test event was queued; its delivery is at the top of the log below.</p>}
      {!e.enabled && e.disabledReason && <p className="hk-note warn">Disabled by the platform: {e.disabledReason}</p>}
      {props.freshSecret && (
        <div className="hk-note warn" style={{ marginBottom: 16 }}>
          <strong>Copy the signing secret now.</strong> It verifies that requests come from this helpdesk.
          <div className="hk-codebox" style={{ marginTop: 8 }}>
            <code data-testid="webhook-secret">{props.freshSecret}</code>
            <CopyButton text={props.freshSecret} />
          </div>
          <button className="link hk-small" style={{ marginTop: 6 }} onClick={props.onDismissSecret}>
            I have stored it
          </button>
        </div>
      )}
      <div className="adm-two">
        <Health endpointId={e.id} tick={tick} />
        <Secret endpointId={e.id} />
      </div>
      <Deliveries endpointId={e.id} tick={tick} onRefresh={refresh} enabled={e.enabled} />
      <EndpointForm endpoint={e} onSaved={props.onChanged} />
    </div>
  );
}

function Health({ endpointId, tick }: { endpointId: string; tick: number }) {
  const { clients } = useWorkbench();
  const h = useLoad(() => clients.notification.getEndpointHealth({ endpointId }), [clients, endpointId, tick]);
  const d = h.data;
  const t = (ts?: Parameters<typeof timestampDate>[0]) => (ts ? fullTime(timestampDate(ts)) : "—");
  return (
    <Card title="Health" sub="last 24 hours" testId="webhook-health">
      <ErrorLine error={h.error} />
      {d && (
        <>
          <div className="hk-stats" style={{ gridTemplateColumns: "1fr 1fr", marginBottom: 12 }}>
            <Stat
              label="Success rate"
              value={d.attempts > 0n ? `${Math.round(d.successRate * 100)} %` : "—"}
              foot={`${d.successes} of ${d.attempts} attempts`}
              alert={!!d.failingSince}
            />
            <Stat label="Pending · failed" value={`${d.pending} · ${d.failed}`} foot="deliveries" alert={d.failed > 0n} />
          </div>
          <dl className="adm-kv">
            <dt>Last success</dt>
            <dd>{t(d.lastSuccessTime)}</dd>
            <dt>Last failure</dt>
            <dd>{t(d.lastFailureTime)}</dd>
            {d.failingSince && (
              <Fact label="Failing since" className="error">
                {t(d.failingSince)}
              </Fact>
            )}
          </dl>
        </>
      )}
    </Card>
  );
}

function Secret({ endpointId }: { endpointId: string }) {
  const { clients } = useWorkbench();
  const [secret, setSecret] = useState<{ secret: string; until?: Date }>();
  const [grace, setGrace] = useState(0);
  const [act, error, busy] = useAction();
  return (
    <Card title="Signing secret">
      <p className="hk-small hk-muted" style={{ marginTop: 0 }}>
        Verify the <code>webhook-signature</code> header with it (HMAC-SHA256 of id, timestamp and body).
      </p>
      {secret ? (
        <div className="hk-codebox">
          <code data-testid="webhook-secret">{secret.secret}</code>
          <CopyButton text={secret.secret} />
        </div>
      ) : (
        <button
          className="small"
          disabled={busy}
          onClick={() =>
            act(async () => {
              const s = await clients.notification.getEndpointSecret({ endpointId });
              setSecret({ secret: s.secret });
            })
          }
        >
          Reveal secret
        </button>
      )}
      {secret?.until && <p className="hk-small">The previous secret also signs until {secret.until.toLocaleString()}.</p>}
      <div className="hk-row" style={{ marginTop: 12 }}>
        <select aria-label="Grace" value={grace} onChange={(e) => setGrace(Number(e.target.value))} style={{ width: "auto" }}>
          <option value={0}>old one valid 1 day</option>
          <option value={3600}>old one valid 1 hour</option>
          <option value={604800}>old one valid 7 days</option>
        </select>
        <button
          className="small"
          data-testid="webhook-rotate"
          disabled={busy}
          onClick={() =>
            confirm("Make a new signing secret?") &&
            act(async () => {
              const s = await clients.notification.rotateSecret({ endpointId, graceSeconds: BigInt(grace) });
              setSecret({ secret: s.secret, until: toDate(s.previousValidUntil) });
            })
          }
        >
          Rotate
        </button>
      </div>
      <ErrorLine error={error} />
    </Card>
  );
}

function Deliveries({ endpointId, tick, onRefresh, enabled }: { endpointId: string; tick: number; onRefresh: () => void; enabled: boolean }) {
  const { clients } = useWorkbench();
  const [status, setStatus] = useState(DeliveryStatus.UNSPECIFIED);
  const [open, setOpen] = useState<string>();
  const list = usePages(
    (pageToken) => clients.notification.listDeliveries({ endpointId, status, pageSize: 25, pageToken }),
    (r) => r.deliveries,
    [clients, endpointId, status],
    [tick],
  );
  const deliveries = list.data ?? [];
  return (
    <ListCard
      title="Delivery log"
      sub="newest first"
      testId="delivery-log"
      actions={
        <>
          <select aria-label="Status" value={status} onChange={(e) => setStatus(Number(e.target.value))} style={{ width: "auto" }}>
            <option value={DeliveryStatus.UNSPECIFIED}>All</option>
            <Options of={STATUSES} />
          </select>
          <button className="small" data-testid="delivery-refresh" onClick={onRefresh}>
            Refresh
          </button>
        </>
      }
      error={list.error}
      loading={list.loading && !list.data}
      loadingText="Loading deliveries…"
      count={deliveries.length}
      empty="No deliveries yet. Send a test event to try the endpoint."
      columns={["Event", "Status", { label: "Attempts", num: true }, "Last answer", "When", {}]}
      wrap
      more={list.more}
    >
      {deliveries.map((d) => (
        <DeliveryRow key={d.id} delivery={d} open={open === d.id} onToggle={() => setOpen(open === d.id ? undefined : d.id)} onRedelivered={onRefresh} enabled={enabled} />
      ))}
    </ListCard>
  );
}

/**
 * The answer of an attempt: its status code and latency, what went wrong (unless that
 * only repeats the code) and the start of the body (one clipped line when `brief`).
 */
function answer(code: number, latency: number, err: string, excerpt: string, brief: boolean): React.ReactNode {
  const problem = err && !/^answered HTTP \d+$/.test(err) ? err : "";
  const body = excerpt.replace(/\s+/g, " ").trim();
  return (
    <>
      <span style={{ whiteSpace: "nowrap" }}>
        {code ? <span className={`hk-pill ${code >= 200 && code < 300 ? "ok" : "bad"}`}>HTTP {code}</span> : <span className="hk-pill dim">no answer</span>}{" "}
        {latency > 0 && <span className="hk-muted hk-small">{latency} ms</span>}
      </span>
      {problem && <span className="sub">{problem}</span>}
      {body &&
        (brief ? (
          <span className="sub adm-clip" title={body}>
            {body}
          </span>
        ) : (
          <pre className="adm-excerpt">{excerpt}</pre>
        ))}
    </>
  );
}

function DeliveryRow(props: { delivery: Delivery; open: boolean; onToggle: () => void; onRedelivered: () => void; enabled: boolean }) {
  const { clients } = useWorkbench();
  const d = props.delivery;
  const st = STATUSES.find(([s]) => s === d.status);
  const [act, error, busy] = useAction();
  const created = toDate(d.createTime);
  return (
    <>
      <tr className="click" data-testid="delivery-row" data-id={d.id} data-status={st?.[1].toLowerCase()} onClick={props.onToggle}>
        <td>
          <code className="hk-small">{d.eventType}</code>
        </td>
        <td style={{ whiteSpace: "nowrap" }}>
          <span className={`hk-pill ${st?.[2] ?? "dim"}`}>{st?.[1] ?? "—"}</span>
          {d.status === DeliveryStatus.PENDING && d.nextAttemptTime && (
            <span className="sub">next at {timestampDate(d.nextAttemptTime).toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" })}</span>
          )}
        </td>
        <td className="num" data-testid="delivery-attempts-count">
          {d.attempts}
        </td>
        <td style={{ maxWidth: 280 }}>{d.attempts > 0 ? answer(d.responseCode, d.latencyMs, d.error, d.responseExcerpt, true) : <span className="hk-muted">not tried yet</span>}</td>
        <td className="hk-muted hk-small" title={fullTime(created)} style={{ whiteSpace: "nowrap" }}>
          {ago(created)}
        </td>
        <td className="num" onClick={(e) => e.stopPropagation()}>
          <button
            className="small"
            data-testid="redeliver"
            disabled={busy || !props.enabled}
            title={props.enabled ? "Send it again (same webhook-id)" : "Enable the endpoint first"}
            onClick={() =>
              act(async () => {
                await clients.notification.redeliver({ deliveryId: d.id });
                props.onRedelivered();
              })
            }
          >
            Redeliver
          </button>
          <ErrorLine error={error} />
        </td>
      </tr>
      {props.open && (
        <tr className="adm-detail-row">
          <td colSpan={6}>
            <p className="hk-small hk-muted" style={{ margin: "0 0 8px" }}>
              webhook-id <code>{d.eventId}</code>
              {d.deliveredTime && <> · delivered {fullTime(timestampDate(d.deliveredTime))}</>}
            </p>
            <Attempts deliveryId={d.id} />
          </td>
        </tr>
      )}
    </>
  );
}

function Attempts({ deliveryId }: { deliveryId: string }) {
  const { clients } = useWorkbench();
  const list = useLoad(() => clients.notification.listDeliveryAttempts({ deliveryId }).then((r) => r.attempts), [clients, deliveryId]);
  if (list.error) return <ErrorLine error={list.error} />;
  if (!list.data) return <div className="hk-loading">Loading attempts…</div>;
  if (list.data.length === 0) return <span className="hk-muted hk-small">No attempt yet.</span>;
  return (
    <Table columns={[{ label: "#", num: true }, "When", "Result", "Answer"]} testId="delivery-attempts">
      {list.data.map((a) => (
        <tr key={a.attempt}>
          <td className="num">{a.attempt}</td>
          <td className="hk-small" style={{ whiteSpace: "nowrap" }}>
            {fullTime(toDate(a.time))}
          </td>
          <td>{a.succeeded ? <span className="hk-pill ok">Succeeded</span> : <span className="hk-pill bad">Failed</span>}</td>
          <td className="hk-small">{answer(a.responseCode, a.latencyMs, a.error, a.responseExcerpt, false)}</td>
        </tr>
      ))}
    </Table>
  );
}
