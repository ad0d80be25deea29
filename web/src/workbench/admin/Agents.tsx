// Admin → Agents & skills: the directory, and one agent's teams, skills and capacity.

import { useState } from "react";
import { SkillLevel, StaffRole, type Agent } from "../../gen/helpdesk/routing/v1/routing_pb";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Options, useAction } from "../ui";
import { presenceName } from "../supervisor/AgentsBoard";
import { teamChoices, useDirectory } from "./directory";
import { Card, CheckList, ChipsInput, Field, fieldError, ListCard, MissingItem, PageHeader, SaveBar, saveItem, useDraft } from "./forms";

/** The roles an agent may have to colleagues. */
export const ROLES: [StaffRole, string][] = [
  [StaffRole.AGENT, "Agent"],
  [StaffRole.SUPERVISOR, "Supervisor"],
  [StaffRole.ADMIN, "Admin"],
];

const LEVELS: [SkillLevel, string][] = [
  [SkillLevel.PRIMARY, "Primary"],
  [SkillLevel.SECONDARY, "Secondary"],
  [SkillLevel.GENERAL, "General"],
];

const CHANNELS = ["web_widget", "mobile_sdk", "api", "email"];

const roleName = (r: StaffRole) => ROLES.find(([v]) => v === r)?.[1] ?? "Agent";
const levelName = (l: SkillLevel) => LEVELS.find(([v]) => v === l)?.[1] ?? "—";

/** The Agents section: the list, `new`, or one agent by id. */
export function AgentsAdmin({ id }: { id?: string }) {
  const dir = useDirectory();
  const [filter, setFilter] = useState("");
  if (id) {
    if (id === "new") return <AgentEditor dir={dir} />;
    const agentId = decodeURIComponent(id);
    const agent = dir.agents.find((a) => a.id === agentId);
    if (!agent) return <MissingItem back={{ href: "#/admin/agents", label: "Agents" }} loading={dir.loading} error={dir.error ?? "No such agent."} />;
    return <AgentEditor key={agent.id} agent={agent} dir={dir} />;
  }
  const q = filter.trim().toLowerCase();
  const agents = dir.agents
    .filter((a) => !q || `${a.name} ${a.id} ${a.email} ${a.skills.map((s) => s.name).join(" ")}`.toLowerCase().includes(q))
    .sort((a, b) => (a.name || a.id).localeCompare(b.name || b.id));
  return (
    <div className="hk-page">
      <PageHeader
        title="Agents & skills"
        sub="Who serves chats: their teams, skills, languages and how many chats they take at once."
        actions={
          <>
            <input type="search" placeholder="Find an agent or skill" value={filter} onChange={(e) => setFilter(e.target.value)} />
            <button className="primary" data-testid="agent-new" onClick={() => go("admin", "agents/new")}>
              New agent
            </button>
          </>
        }
      />
      <ListCard
        error={dir.error}
        loading={dir.loading && dir.agents.length === 0}
        loadingText="Loading agents…"
        count={agents.length}
        empty={q ? "No agent matches." : "No agents yet."}
        columns={["Agent", "Role", "Teams", "Skills", "Languages", { label: "Max chats", num: true }, "Presence"]}
      >
        {agents.map((a) => (
          <tr
            key={a.id}
            className="click"
            data-testid="agent-row"
            data-id={a.id}
            onClick={() => go("admin", `agents/${encodeURIComponent(a.id)}`)}
          >
            <td>
              <span className="strong">{a.name || a.id}</span>
              <span className="sub">
                {a.id}
                {a.email && ` · ${a.email}`}
              </span>
            </td>
            <td>{roleName(a.role)}</td>
            <td className="hk-small">{a.teamIds.map((t) => dir.teamName(t)).join(", ") || <span className="hk-muted">—</span>}</td>
            <td>
              <div className="adm-tags">
                {a.skills.map((s) => (
                  <span key={s.name} className={`adm-tag${s.level === SkillLevel.PRIMARY ? " strong" : ""}`} title={levelName(s.level)}>
                    {s.name}
                  </span>
                ))}
              </div>
            </td>
            <td className="hk-small">{a.languages.join(", ")}</td>
            <td className="num">{a.maxChats}</td>
            <td className="hk-small">{presenceName(a.presence)}</td>
          </tr>
        ))}
      </ListCard>
    </div>
  );
}

interface Draft {
  id: string;
  name: string;
  email: string;
  role: StaffRole;
  maxChats: number;
  teamIds: string[];
  languages: string[];
  skills: { name: string; level: SkillLevel }[];
  capacity: { channel: string; max: number }[];
}

function draftOf(a?: Agent): Draft {
  return {
    id: a?.id ?? "",
    name: a?.name ?? "",
    email: a?.email ?? "",
    role: a?.role || StaffRole.AGENT,
    maxChats: a?.maxChats ?? 3,
    teamIds: a?.teamIds ?? [],
    languages: a?.languages ?? [],
    skills: a?.skills.map((s) => ({ name: s.name, level: s.level || SkillLevel.PRIMARY })) ?? [],
    capacity: Object.entries(a?.channelCapacity ?? {}).map(([channel, max]) => ({ channel, max })),
  };
}

const PATHS = ["name", "email", "team_ids", "languages", "skills", "max_chats", "channel_capacity", "role"];

/** Checks what can be checked before asking the platform. */
function problems(d: Draft, isNew: boolean, taken: boolean): Record<string, string> {
  const p: Record<string, string> = {};
  if (isNew && !d.id.trim()) p.id = "The agent id (their sign-in subject) is required.";
  else if (isNew && /\s/.test(d.id)) p.id = "No spaces in an id.";
  else if (isNew && taken) p.id = "An agent has this id already.";
  if (!d.name.trim()) p.name = "A name is required.";
  if (d.email && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(d.email)) p.email = "That does not look like an email address.";
  if (!(d.maxChats >= 1 && d.maxChats <= 100)) p.max_chats = "Between 1 and 100.";
  const names = d.skills.map((s) => s.name);
  if (names.some((n) => !/^[a-z0-9_-]{1,64}$/.test(n))) p.skills = "Skill names are 1–64 of a–z, 0–9, _ and -.";
  else if (new Set(names).size !== names.length) p.skills = "Each skill once.";
  if (d.capacity.some((c) => c.max < 0 || c.max > 100)) p.channel_capacity = "Between 0 and 100.";
  return p;
}

function AgentEditor({ agent, dir }: { agent?: Agent; dir: ReturnType<typeof useDirectory> }) {
  const { clients } = useWorkbench();
  const { draft: d, set, saved, setSaved } = useDraft(() => draftOf(agent));
  const [touched, setTouched] = useState(false);
  const [act, error, busy] = useAction();
  const taken = !agent && dir.agents.some((a) => a.id === d.id.trim());
  const local = touched ? problems(d, !agent, taken) : {};
  const err = (path: string) => local[path] ?? fieldError(error, path);
  const allSkills = [...new Set(dir.agents.flatMap((a) => a.skills.map((s) => s.name)))].sort();

  const save = () => {
    setTouched(true);
    if (Object.keys(problems(d, !agent, taken)).length) return;
    const body = {
      id: d.id.trim(),
      name: d.name.trim(),
      email: d.email.trim(),
      role: d.role,
      maxChats: d.maxChats,
      teamIds: d.teamIds,
      languages: d.languages,
      skills: d.skills,
      channelCapacity: Object.fromEntries(d.capacity.map((c) => [c.channel, c.max])),
    };
    act(() =>
      saveItem({
        section: "agents",
        update: agent && (() => clients.routing.updateAgent({ agent: body, updateMask: { paths: PATHS } })),
        create: () => clients.routing.createAgent({ agent: body }),
        onSaved: dir.reload,
        setSaved,
      }),
    );
  };

  return (
    <div className="hk-page">
      <PageHeader
        back={{ href: "#/admin/agents", label: "Agents" }}
        title={agent ? agent.name || agent.id : "New agent"}
        sub={agent ? `${presenceName(agent.presence)} · ${agent.activeChats} of ${agent.maxChats} chats open` : "The id is the subject of the agent's sign-in token."}
      />
      <Card title="Profile">
        <div className="hk-form">
          <Field label="Agent id" error={err("id")} hint={agent ? "Cannot change." : "e.g. ana, or the user id of your sign-in system."}>
            <input data-testid="agent-id" value={d.id} disabled={!!agent} maxLength={128} onChange={(e) => set({ id: e.target.value })} />
          </Field>
          <Field label="Name" error={err("name")} hint="Visitors read it (“Ana joined the conversation”).">
            <input data-testid="agent-name" value={d.name} maxLength={200} onChange={(e) => set({ name: e.target.value })} />
          </Field>
          <Field label="Email" error={err("email")} hint="Notifications the agent chooses to get by email go here.">
            <input data-testid="agent-email" type="email" value={d.email} onChange={(e) => set({ email: e.target.value })} />
          </Field>
          <Field label="Role to colleagues" error={err("role")} hint="Who may transfer to them; whose chats a supervisor may move.">
            <select data-testid="agent-role" value={d.role} onChange={(e) => set({ role: Number(e.target.value) })}>
              <Options of={ROLES} />
            </select>
          </Field>
        </div>
      </Card>

      <Card title="Teams and languages">
        <div className="hk-form">
          <Field label="Teams" wide error={err("team_ids")}>
            {dir.teams.length === 0 ? (
              <span className="hk-muted hk-small">
                No teams yet — <a href="#/admin/teams">create one</a>.
              </span>
            ) : (
              <CheckList
                options={teamChoices(dir.teams)}
                value={d.teamIds}
                onChange={(teamIds) => set({ teamIds })}
                testId={(id) => `agent-team-${id}`}
              />
            )}
          </Field>
          <Field label="Languages" wide hint="For display; route by language with a routing rule on a contact attribute." error={err("languages")}>
            <ChipsInput testId="agent-languages" value={d.languages} normalize={(s) => s.toLowerCase()} placeholder="en, de…" onChange={(languages) => set({ languages })} />
          </Field>
        </div>
      </Card>

      <Card
        title="Skills"
        sub="matched by routing rules and skill transfers"
        actions={
          <button className="small" data-testid="agent-add-skill" onClick={() => set({ skills: [...d.skills, { name: "", level: SkillLevel.PRIMARY }] })}>
            Add skill
          </button>
        }
      >
        {err("skills") && <p className="error hk-small">{err("skills")}</p>}
        {d.skills.length === 0 ? (
          <p className="hk-muted hk-small" style={{ margin: 0 }}>
            No skills: the agent takes chats that need none.
          </p>
        ) : (
          <div className="hk-form one">
            {d.skills.map((s, i) => (
              <div key={i} className="hk-row">
                <input
                  data-testid="agent-skill-name"
                  list="agent-skill-names"
                  placeholder="skill name, e.g. refunds"
                  value={s.name}
                  onChange={(e) => set({ skills: d.skills.map((x, j) => (j === i ? { ...x, name: e.target.value.toLowerCase() } : x)) })}
                  style={{ flex: 1 }}
                />
                <select
                  aria-label="Level"
                  data-testid="agent-skill-level"
                  value={s.level}
                  onChange={(e) => set({ skills: d.skills.map((x, j) => (j === i ? { ...x, level: Number(e.target.value) } : x)) })}
                >
                  <Options of={LEVELS} />
                </select>
                <button className="ghost small" aria-label="Remove skill" onClick={() => set({ skills: d.skills.filter((_, j) => j !== i) })}>
                  Remove
                </button>
              </div>
            ))}
            <datalist id="agent-skill-names">
              {allSkills.map((s) => (
                <option key={s} value={s} />
              ))}
            </datalist>
          </div>
        )}
      </Card>

      <Card title="Capacity">
        <div className="hk-form">
          <Field label="Most chats at once" error={err("max_chats")}>
            <input
              data-testid="agent-max-chats"
              type="number"
              min={1}
              max={100}
              value={d.maxChats}
              onChange={(e) => set({ maxChats: Number(e.target.value) })}
            />
          </Field>
          <Field label="Per channel" wide hint="Optional limits within the total; 0 keeps the agent off that channel." error={err("channel_capacity")}>
            <div className="hk-form one">
              {d.capacity.map((c, i) => (
                <div key={i} className="hk-row">
                  <select
                    value={c.channel}
                    onChange={(e) => set({ capacity: d.capacity.map((x, j) => (j === i ? { ...x, channel: e.target.value } : x)) })}
                  >
                    {CHANNELS.map((ch) => (
                      <option key={ch} value={ch} disabled={ch !== c.channel && d.capacity.some((x) => x.channel === ch)}>
                        {ch}
                      </option>
                    ))}
                  </select>
                  <input
                    type="number"
                    min={0}
                    max={100}
                    value={c.max}
                    style={{ width: 90 }}
                    onChange={(e) => set({ capacity: d.capacity.map((x, j) => (j === i ? { ...x, max: Number(e.target.value) } : x)) })}
                  />
                  <button className="ghost small" onClick={() => set({ capacity: d.capacity.filter((_, j) => j !== i) })}>
                    Remove
                  </button>
                </div>
              ))}
              {d.capacity.length < CHANNELS.length && (
                <div>
                  <button
                    className="small"
                    onClick={() => {
                      const free = CHANNELS.find((ch) => !d.capacity.some((x) => x.channel === ch))!;
                      set({ capacity: [...d.capacity, { channel: free, max: d.maxChats }] });
                    }}
                  >
                    Add a channel limit
                  </button>
                </div>
              )}
            </div>
          </Field>
        </div>
      </Card>

      <SaveBar
        error={error}
        saved={saved}
        busy={busy}
        label={agent ? "Save changes" : "Create agent"}
        onSave={save}
        onCancel={() => go("admin", "agents")}
        testId="agent-save"
      />
    </div>
  );
}
