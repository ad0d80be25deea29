// The agents, their presence and load, as the agents board stream sends them; a
// supervisor may set anyone's presence.

import { useMemo, useState } from "react";
import { Presence, type Agent } from "../../gen/helpdesk/routing/v1/routing_pb";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { Options, useAction } from "../ui";
import { teamChoices, type Directory } from "../admin/directory";
import { ago, Card, ListState, Table } from "../admin/forms";
import { BarChart } from "./charts";

const PRESENCES: [Presence, string, string][] = [
  [Presence.ONLINE, "Online", "online"],
  [Presence.AWAY, "Away", "away"],
  [Presence.BUSY, "Busy", "busy"],
  [Presence.OFFLINE, "Offline", "offline"],
];

/** "Online", "Away", "Busy" or "Offline". */
export function presenceName(p: Presence): string {
  return PRESENCES.find(([v]) => v === p)?.[1] ?? "Offline";
}

function presenceClass(p: Presence): string {
  return PRESENCES.find(([v]) => v === p)?.[2] ?? "offline";
}

const ORDER: Record<number, number> = { [Presence.ONLINE]: 0, [Presence.BUSY]: 1, [Presence.AWAY]: 2, [Presence.OFFLINE]: 3 };

/**
 * The agents table with a load chart. `agents` is undefined until the board first
 * arrives; `onChanged` gets an agent as a presence change made here left it.
 */
export function AgentsBoard(props: { agents?: Agent[]; error?: string; dir: Directory; onChanged: (a: Agent) => void }) {
  const { clients } = useWorkbench();
  const [team, setTeam] = useState("");
  const [act, actError, busy] = useAction();
  const agents = useMemo(
    () =>
      (props.agents ?? [])
        .filter((a) => !team || a.teamIds.includes(team))
        .sort((a, b) => (ORDER[a.presence] ?? 3) - (ORDER[b.presence] ?? 3) || (a.name || a.id).localeCompare(b.name || b.id)),
    [props.agents, team],
  );
  const setPresence = (agentId: string, presence: Presence) =>
    act(async () => props.onChanged(await clients.routing.setPresence({ agentId, presence })));
  const counts = PRESENCES.map(([p, name]) => ({ name, n: (props.agents ?? []).filter((a) => a.presence === p).length }));

  return (
    <Card
      title="Agents"
      sub={counts.map((c) => `${c.n} ${c.name.toLowerCase()}`).join(" · ")}
      actions={
        <select aria-label="Team" value={team} onChange={(e) => setTeam(e.target.value)}>
          <option value="">All teams</option>
          <Options of={teamChoices(props.dir.teams)} />
        </select>
      }
      tight
    >
      <ListState
        error={props.error ?? actError}
        loading={!props.agents && !props.error}
        loadingText="Loading agents…"
        count={agents.length}
        empty={`No agents${team ? " in this team" : ""} yet. Admins add them under Admin → Agents.`}
      >
        <div className="sup-agents">
          <Table wrap columns={["Agent", "Presence", "Load", "Teams", { label: "Resolved", num: true }, { label: "CSAT", num: true }, "Set presence"]}>
            {agents.map((a) => {
              const since = toDate(a.presenceTime);
              const load = a.maxChats ? a.activeChats / a.maxChats : 0;
              return (
                <tr key={a.id} data-testid="sup-agent-row" data-agent-id={a.id}>
                  <td>
                    <span className="strong">{a.name || a.id}</span>
                    <span className="sub">{a.id}</span>
                  </td>
                  <td>
                    <span className="sup-presence">
                      <span className={`hk-dot ${presenceClass(a.presence)}`} />
                      <span data-testid="sup-agent-presence">{presenceName(a.presence)}</span>
                    </span>
                    {since && <span className="sub">{ago(since)}</span>}
                  </td>
                  <td>
                    <div className="sup-load" title={`${a.activeChats} of ${a.maxChats} chats`}>
                      <div className="sup-load-bar">
                        <div
                          className={load >= 1 ? "full" : load >= 0.75 ? "high" : ""}
                          style={{ width: `${Math.min(100, load * 100)}%` }}
                        />
                      </div>
                      <span data-testid="sup-agent-chats">
                        {a.activeChats}/{a.maxChats}
                      </span>
                    </div>
                  </td>
                  <td className="hk-small">{a.teamIds.map((t) => props.dir.teamName(t)).join(", ") || <span className="hk-muted">—</span>}</td>
                  <td className="num">{String(a.resolvedCount)}</td>
                  <td className="num">{a.csatCount > 0n ? a.csatAverage.toFixed(1) : "—"}</td>
                  <td>
                    <select
                      aria-label={`Presence of ${a.name || a.id}`}
                      value={a.presence}
                      disabled={busy}
                      onChange={(e) => setPresence(a.id, Number(e.target.value))}
                    >
                      <Options of={PRESENCES} />
                    </select>
                  </td>
                </tr>
              );
            })}
          </Table>
          <div className="sup-agents-chart">
            <h4>Open chats per agent</h4>
            <BarChart
              width={330}
              label="Open chats per agent"
              max={Math.max(...agents.map((a) => a.maxChats), 1)}
              bars={agents
                .filter((a) => a.presence !== Presence.OFFLINE || a.activeChats > 0)
                .map((a) => ({
                  label: a.name || a.id,
                  value: a.activeChats,
                  color: a.maxChats && a.activeChats >= a.maxChats ? "#d92d20" : "#12b76a",
                }))}
            />
          </div>
        </div>
      </ListState>
    </Card>
  );
}
