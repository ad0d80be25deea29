// Admin → Routing: the routing rules in evaluation order, and the account's routing
// settings (strategy, pooled mode, overflow, queue limits, transfers).

import { useState } from "react";
import {
  OfflinePolicy,
  OverflowAction,
  PriorityClass,
  StaffRole,
  Strategy,
  TransferPolicySchema,
  type RoutingRule,
  type RoutingSettings,
  type TransferPolicy,
} from "../../gen/helpdesk/routing/v1/routing_pb";
import { create } from "@bufbuild/protobuf";
import { useWorkbench } from "../context";
import { Dialog, ErrorLine, Options, useAction, useLoad } from "../ui";
import { type Directory, teamChoices, useDirectory } from "./directory";
import {
  Card,
  Check,
  CheckList,
  ChipsInput,
  DurationInput,
  Field,
  fieldError,
  FormErrors,
  FormFoot,
  ListCard,
  PageHeader,
  SaveBar,
  useDraft,
} from "./forms";
import { ROLES } from "./Agents";
import { listAllInboxes } from "./Inboxes";

const STRATEGIES: [Strategy, string, string][] = [
  [Strategy.LEAST_BUSY, "Least busy", "lowest load relative to capacity first"],
  [Strategy.ROUND_ROBIN, "Round robin", "least recently assigned first"],
  [Strategy.SKILL_WEIGHTED, "Skill weighted", "best skill match, then load, then CSAT"],
  [Strategy.LAST_AGENT, "Last agent", "the agent who last served the contact, if free"],
];
const CLASSES: [PriorityClass, string][] = [
  [PriorityClass.URGENT, "Urgent"],
  [PriorityClass.SKILL, "Skill"],
  [PriorityClass.NORMAL, "Normal"],
];
const CHANNELS = ["web_widget", "mobile_sdk", "api", "email"];
const PRIORITIES = ["any", "low", "medium", "high", "urgent"];

const strategyName = (s: Strategy) => STRATEGIES.find(([v]) => v === s)?.[1];
/** Staff roles named in the plural ("Agents"), for who may send or receive transfers. */
const ROLE_GROUPS = ROLES.map(([r, name]) => [r, `${name}s`] as const);

/** The Routing section. */
export function RoutingAdmin() {
  const dir = useDirectory();
  return (
    <div className="hk-page">
      <PageHeader title="Routing" sub="Where each chat waits and how its agent is chosen." />
      <RulesCard dir={dir} />
      <SettingsCard dir={dir} />
    </div>
  );
}

function RulesCard({ dir }: { dir: Directory }) {
  const { clients } = useWorkbench();
  const rules = useLoad(() => clients.routing.listRoutingRules({}).then((r) => r.rules), [clients]);
  const inboxes = useLoad(() => listAllInboxes(clients), [clients]);
  const [creating, setCreating] = useState(false);
  const [act, error, busy] = useAction();
  const inboxName = (id: string) => inboxes.data?.find((i) => i.id === id)?.name ?? id.slice(0, 8);
  const list = rules.data ?? [];
  return (
    <>
      <ListCard
        title="Routing rules"
        sub="the first rule whose condition matches decides; none matching: the account-wide queue"
        actions={
          <button className="primary small" data-testid="routing-rule-new" onClick={() => setCreating(true)}>
            New rule
          </button>
        }
        error={rules.error ?? error}
        loading={rules.loading && !rules.data}
        loadingText="Loading rules…"
        count={list.length}
        empty="No routing rules: every chat waits in the account-wide queue, served by any online agent."
        columns={[{ label: "#", num: true }, "Rule", "When", "Then", {}]}
        after={
          <p className="hk-small hk-muted" style={{ margin: 0, padding: "8px 12px" }}>
            Rules cannot be edited: create the new one, then delete the old.
          </p>
        }
      >
        {list.map((r) => (
          <tr key={r.id} data-testid="routing-rule-row" data-id={r.id}>
            <td className="num">{r.position}</td>
            <td className="strong">{r.name}</td>
            <td className="hk-small">{conditionText(r, inboxName)}</td>
            <td className="hk-small">
              {r.targetTeamId ? <>Team <b>{dir.teamName(r.targetTeamId)}</b></> : "Account-wide queue"}
              {r.requiredSkills.length > 0 && <> · skills {r.requiredSkills.join(", ")}</>}
              {r.priorityClass !== PriorityClass.UNSPECIFIED && <> · class {CLASSES.find(([c]) => c === r.priorityClass)?.[1]}</>}
              {r.strategy !== Strategy.UNSPECIFIED && <> · {strategyName(r.strategy)}</>}
            </td>
            <td className="num">
              <button
                className="small danger"
                disabled={busy}
                onClick={() =>
                  confirm(`Delete the rule “${r.name}”?`) &&
                  act(async () => {
                    await clients.routing.deleteRoutingRule({ id: r.id });
                    rules.reload();
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
        <NewRuleDialog
          dir={dir}
          inboxes={inboxes.data ?? []}
          next={Math.max(0, ...list.map((r) => r.position)) + 1}
          onClose={() => setCreating(false)}
          onSaved={() => {
            setCreating(false);
            rules.reload();
          }}
        />
      )}
    </>
  );
}

function conditionText(r: RoutingRule, inboxName: (id: string) => string): string {
  const c = r.condition;
  if (!c) return "Every chat";
  const parts: string[] = [];
  if (c.inboxIds.length) parts.push(`inbox ${c.inboxIds.map(inboxName).join(" or ")}`);
  if (c.channels.length) parts.push(`channel ${c.channels.join(" or ")}`);
  for (const [k, v] of Object.entries(c.contactAttributes)) parts.push(`contact ${k} = ${v}`);
  for (const [k, v] of Object.entries(c.conversationAttributes)) parts.push(`${k} = ${v}`);
  if (c.minPriority) parts.push(`priority ≥ ${PRIORITIES[c.minPriority]}`);
  if (c.labels.length) parts.push(`label ${c.labels.join(" or ")}`);
  if (c.keywords.length) parts.push(`message mentions ${c.keywords.map((k) => `“${k}”`).join(" or ")}`);
  return parts.length ? parts.join(" and ") : "Every chat";
}

/** "key=value" lines to a map. */
function pairs(list: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const p of list) {
    const i = p.indexOf("=");
    if (i > 0) out[p.slice(0, i).trim()] = p.slice(i + 1).trim();
  }
  return out;
}

function NewRuleDialog(props: {
  dir: Directory;
  inboxes: { id: string; name: string }[];
  next: number;
  onClose: () => void;
  onSaved: () => void;
}) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [d, setD] = useState({
    name: "",
    position: props.next,
    inboxIds: [] as string[],
    channels: [] as string[],
    contact: [] as string[],
    conversation: [] as string[],
    minPriority: 0,
    labels: [] as string[],
    keywords: [] as string[],
    team: "",
    skills: [] as string[],
    klass: PriorityClass.UNSPECIFIED,
    strategy: Strategy.UNSPECIFIED,
  });
  const [touched, setTouched] = useState(false);
  const set = (patch: Partial<typeof d>) => setD({ ...d, ...patch });
  const badPair = [...d.contact, ...d.conversation].find((p) => !/^[^=]+=.+$/.test(p));
  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!d.name.trim() || badPair) return;
    act(async () => {
      await clients.routing.createRoutingRule({
        rule: {
          name: d.name.trim(),
          position: d.position,
          condition: {
            inboxIds: d.inboxIds,
            channels: d.channels,
            contactAttributes: pairs(d.contact),
            conversationAttributes: pairs(d.conversation),
            minPriority: d.minPriority,
            labels: d.labels,
            keywords: d.keywords,
          },
          targetTeamId: d.team,
          requiredSkills: d.skills,
          priorityClass: d.klass,
          strategy: d.strategy,
        },
      });
      props.onSaved();
    });
  };
  return (
    <Dialog title="New routing rule" onClose={props.onClose}>
      <form className="hk-form" onSubmit={save} style={{ width: 620 }}>
        <FormErrors error={error} />
        <Field label="Name" error={touched && !d.name.trim() ? "A name is required." : fieldError(error, "name")}>
          <input data-testid="routing-rule-name" value={d.name} onChange={(e) => set({ name: e.target.value })} autoFocus />
        </Field>
        <Field label="Position" hint="Lower runs first." error={fieldError(error, "position")}>
          <input type="number" min={0} value={d.position} onChange={(e) => set({ position: Number(e.target.value) })} />
        </Field>
        <div className="hk-legend">When every part that is set matches</div>
        <Field label="Inboxes" wide error={fieldError(error, "condition.inbox_ids")}>
          <CheckList
            options={props.inboxes.map((i) => [i.id, i.name] as const)}
            value={d.inboxIds}
            onChange={(inboxIds) => set({ inboxIds })}
            empty={<span className="hk-muted hk-small">No inboxes.</span>}
          />
        </Field>
        <Field label="Channels" wide>
          <CheckList options={CHANNELS.map((c) => [c, c] as const)} value={d.channels} onChange={(channels) => set({ channels })} />
        </Field>
        <Field label="Contact attributes" hint="key=value, e.g. language=de" error={touched && badPair ? `“${badPair}” is not key=value.` : fieldError(error, "condition.contact_attributes")}>
          <ChipsInput value={d.contact} onChange={(contact) => set({ contact })} placeholder="vip_level=gold" />
        </Field>
        <Field label="Conversation attributes" hint="key=value, e.g. menu=billing" error={fieldError(error, "condition.conversation_attributes")}>
          <ChipsInput value={d.conversation} onChange={(conversation) => set({ conversation })} placeholder="menu=billing" />
        </Field>
        <Field label="Priority at least">
          <select value={d.minPriority} onChange={(e) => set({ minPriority: Number(e.target.value) })}>
            <Options of={PRIORITIES.map((p, i) => [i, p] as const)} />
          </select>
        </Field>
        <Field label="Any of these labels" error={fieldError(error, "condition.labels")}>
          <ChipsInput value={d.labels} onChange={(labels) => set({ labels })} normalize={(s) => s.toLowerCase()} />
        </Field>
        <Field label="Opening message mentions any of" wide error={fieldError(error, "condition.keywords")}>
          <ChipsInput value={d.keywords} onChange={(keywords) => set({ keywords })} placeholder="refund, invoice…" />
        </Field>
        <div className="hk-legend">Then</div>
        <Field label="Queue" error={fieldError(error, "target_team_id")}>
          <select data-testid="routing-rule-team" value={d.team} onChange={(e) => set({ team: e.target.value })}>
            <option value="">Account-wide queue</option>
            <Options of={props.dir.teams.map((t) => [t.id, `Team ${t.name}`] as const)} />
          </select>
        </Field>
        <Field label="Required skills" error={fieldError(error, "required_skills")}>
          <ChipsInput value={d.skills} onChange={(skills) => set({ skills })} normalize={(s) => s.toLowerCase()} />
        </Field>
        <Field label="Queue class" hint="Unset: skill when skills are required, else normal.">
          <select value={d.klass} onChange={(e) => set({ klass: Number(e.target.value) })}>
            <option value={PriorityClass.UNSPECIFIED}>Automatic</option>
            <Options of={CLASSES} />
          </select>
        </Field>
        <Field label="Strategy">
          <select value={d.strategy} onChange={(e) => set({ strategy: Number(e.target.value) })}>
            <option value={Strategy.UNSPECIFIED}>The account's default</option>
            <Options of={STRATEGIES} />
          </select>
        </Field>
        <FormFoot onCancel={props.onClose} busy={busy} label="Create rule" busyLabel="Creating…" testId="routing-rule-save" />
      </form>
    </Dialog>
  );
}

function SettingsCard({ dir }: { dir: Directory }) {
  const { clients } = useWorkbench();
  const settings = useLoad(() => clients.routing.getSettings({}), [clients]);
  if (!settings.data) return settings.error ? <ErrorLine error={settings.error} /> : <div className="hk-loading">Loading settings…</div>;
  return <SettingsForm settings={settings.data} dir={dir} onSaved={settings.reload} />;
}

function SettingsForm({ settings, dir, onSaved }: { settings: RoutingSettings; dir: Directory; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const { draft: s, set, saved, setSaved } = useDraft(() => settings);
  const [act, error, busy] = useAction();
  const policy =
    s.transferPolicy ??
    create(TransferPolicySchema, {
      transferRoles: [StaffRole.AGENT, StaffRole.SUPERVISOR],
      agentsAcrossTeams: true,
      receiverRoles: [StaffRole.AGENT, StaffRole.SUPERVISOR, StaffRole.ADMIN],
      agentsToSupervisors: false,
    });
  const setPolicy = (patch: Partial<TransferPolicy>) => set({ transferPolicy: { ...policy, ...patch } });
  const needsTeam = s.overflowAction === OverflowAction.OVERFLOW_TEAM && !s.overflowTeamId;
  const e = (p: string) => fieldError(error, p);

  const save = () => {
    if (needsTeam) return;
    act(async () => {
      await clients.routing.updateSettings({ settings: s });
      setSaved(true);
      onSaved();
    });
  };

  return (
    <>
      <Card title="Assignment">
        <div className="hk-form">
          <Field label="Default strategy" hint={STRATEGIES.find(([v]) => v === (s.defaultStrategy || Strategy.LEAST_BUSY))?.[2]} error={e("default_strategy")}>
            <select data-testid="routing-strategy" value={s.defaultStrategy || Strategy.LEAST_BUSY} onChange={(ev) => set({ defaultStrategy: Number(ev.target.value) })}>
              <Options of={STRATEGIES} />
            </select>
          </Field>
          <Field label="Skill fallback after" hint="Then any team member; twice this: the overflow team. 0: never." error={e("skill_fallback_seconds")}>
            <DurationInput seconds={s.skillFallbackSeconds} onChange={(skillFallbackSeconds) => set({ skillFallbackSeconds })} />
          </Field>
          <div className="hk-field wide">
            <Check
              testId="routing-pooled"
              checked={s.pooledMode}
              onChange={(pooledMode) => set({ pooledMode })}
              label="Pooled mode: agents pick chats from the queue themselves (nothing is assigned automatically)"
            />
          </div>
          <Field label="When an agent goes offline" error={e("offline_policy")}>
            <select value={s.offlinePolicy || OfflinePolicy.KEEP} onChange={(ev) => set({ offlinePolicy: Number(ev.target.value) })}>
              <option value={OfflinePolicy.KEEP}>They keep their open chats</option>
              <option value={OfflinePolicy.REQUEUE}>Their open chats go back to the queue</option>
            </select>
          </Field>
          <Field label="Idle workbench turns an agent away after" hint="0: the default (2 minutes)." error={e("presence_idle_seconds")}>
            <DurationInput seconds={s.presenceIdleSeconds} onChange={(presenceIdleSeconds) => set({ presenceIdleSeconds })} />
          </Field>
          <Field label="Handle time for wait estimates" hint="Used until 5 chats have ended. 0: 5 minutes." error={e("default_handle_seconds")}>
            <DurationInput seconds={s.defaultHandleSeconds} onChange={(defaultHandleSeconds) => set({ defaultHandleSeconds })} />
          </Field>
        </div>
      </Card>

      <Card title="Queue limits and overflow">
        <div className="hk-form">
          <Field label="Most chats per queue" hint="0: unlimited." error={e("max_queue_length")}>
            <input type="number" min={0} max={100000} value={s.maxQueueLength} onChange={(ev) => set({ maxQueueLength: Number(ev.target.value) })} />
          </Field>
          <Field label="Longest wait" hint="0: unlimited." error={e("max_wait_seconds")}>
            <DurationInput seconds={s.maxWaitSeconds} onChange={(maxWaitSeconds) => set({ maxWaitSeconds })} />
          </Field>
          <Field label="Then" error={e("overflow_action")}>
            <select value={s.overflowAction || OverflowAction.LEAVE_MESSAGE} onChange={(ev) => set({ overflowAction: Number(ev.target.value) })}>
              <option value={OverflowAction.LEAVE_MESSAGE}>Ask the visitor to leave a message</option>
              <option value={OverflowAction.OVERFLOW_TEAM}>Move the chat to the overflow team</option>
            </select>
          </Field>
          <Field label="Overflow team" error={needsTeam ? "Choose the overflow team." : e("overflow_team_id")} hint="Also where skill fallback ends.">
            <select value={s.overflowTeamId} onChange={(ev) => set({ overflowTeamId: ev.target.value })}>
              <option value="">None</option>
              <Options of={teamChoices(dir.teams)} />
            </select>
          </Field>
          <Field label="Leave-a-message text" wide hint="Empty: the default text." error={e("leave_message_text")}>
            <textarea
              rows={2}
              value={s.leaveMessageText}
              placeholder="All our agents are busy right now. Leave us a message and we will get back to you."
              onChange={(ev) => set({ leaveMessageText: ev.target.value })}
            />
          </Field>
        </div>
      </Card>

      <Card title="Transfers">
        <div className="hk-form">
          <Field label="Time to accept a transfer" hint="0: 30 seconds; at most an hour." error={e("transfer_timeout_seconds")}>
            <DurationInput testId="routing-transfer-timeout" seconds={s.transferTimeoutSeconds} onChange={(transferTimeoutSeconds) => set({ transferTimeoutSeconds })} />
          </Field>
          <div />
          <Field label="May request transfers" hint="Admins always may." error={e("transfer_policy.transfer_roles")}>
            <CheckList
              options={ROLE_GROUPS.filter(([r]) => r !== StaffRole.ADMIN)}
              value={policy.transferRoles}
              onChange={(transferRoles) => setPolicy({ transferRoles })}
            />
          </Field>
          <Field label="May receive transfers" error={e("transfer_policy.receiver_roles")}>
            <CheckList options={ROLE_GROUPS} value={policy.receiverRoles} onChange={(receiverRoles) => setPolicy({ receiverRoles })} />
          </Field>
          <div className="hk-field wide hk-checks" style={{ flexDirection: "column", gap: 8 }}>
            <Check checked={policy.agentsAcrossTeams} onChange={(agentsAcrossTeams) => setPolicy({ agentsAcrossTeams })} label="Agents may transfer outside their own teams" />
            <Check checked={policy.agentsToSupervisors} onChange={(agentsToSupervisors) => setPolicy({ agentsToSupervisors })} label="Agents may transfer to supervisors and admins" />
          </div>
        </div>
      </Card>

      <SaveBar error={error} saved={saved} busy={busy} label="Save settings" onSave={save} testId="routing-save" />
    </>
  );
}
