// The agents, their presence and load; a supervisor may set anyone's presence.

import { useMemo, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { Presence, type Agent } from "../../gen/helpdesk/routing/v1/routing_pb";
import { useWorkbench } from "../context";
import { Empty, ErrorLine, useAction } from "../ui";
import type { Directory } from "../admin/directory";
import { ago, Card } from "../admin/forms";
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

/** The agents table with a load chart. */
export function AgentsBoard(props: { agents: Agent[]; error?: string; loading: boolean; dir: Directory; onChanged: () => void }) {
  const { clients } = useWorkbench();
  const [team, setTeam] = useState("");
  const [act, actError, busy] = useAction();
  const agents = useMemo(
    () =>
      props.agents
        .filter((a) => !team || a.teamIds.includes(team))
        .sort((a, b) => (ORDER[a.presence] ?? 3) - (ORDER[b.presence] ?? 3) || (a.name || a.id).localeCompare(b.name || b.id)),
    [props.agents, team],
  );
  const setPresence = (agentId: string, presence: Presence) =>
    act(async () => {
      await clients.routing.setPresence({ agentId, presence });
      props.onChanged();
    });
  const counts = PRESENCES.map(([p, name, cls]) => ({ name, cls, n: props.agents.filter((a) => a.presence === p).length }));

  return (
    <Card
      title="Agents"
      sub={counts.map((c) => `${c.n} ${c.name.toLowerCase()}`).join(" · ")}
      actions={
        <select aria-label="Team" value={team} onChange={(e) => setTeam(e.target.value)}>
          <option value="">All teams</option>
          {props.dir.teams.map((t) => (
            <option key={t.id} value={t.id}>
              {t.name}
            </option>
          ))}
        </select>
      }
      tight
    >
      <ErrorLine error={props.error ?? actError} />
      {props.loading && props.agents.length === 0 ? (
        <div className="hk-loading">Loading agents…</div>
      ) : agents.length === 0 ? (
        <Empty>No agents{team ? " in this team" : ""} yet. Admins add them under Admin → Agents.</Empty>
      ) : (
        <div className="sup-agents">
          <div className="hk-table-wrap">
            <table className="hk-table">
              <thead>
                <tr>
                  <th>Agent</th>
                  <th>Presence</th>
                  <th>Load</th>
                  <th>Teams</th>
                  <th className="num">Resolved</th>
                  <th className="num">CSAT</th>
                  <th>Set presence</th>
                </tr>
              </thead>
              <tbody>
                {agents.map((a) => {
                  const since = a.presenceTime ? timestampDate(a.presenceTime) : undefined;
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
                          {PRESENCES.map(([p, name]) => (
                            <option key={p} value={p}>
                              {name}
                            </option>
                          ))}
                        </select>
                      </td>
                    </tr>
                  );
                })}
              </tbody>
            </table>
          </div>
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
      )}
    </Card>
  );
}
