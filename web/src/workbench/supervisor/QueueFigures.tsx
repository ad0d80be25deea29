// Live queue figures: account totals, one row per team, and charts of them.

import type { QueueStats, TeamStats } from "../../gen/helpdesk/routing/v1/routing_pb";
import { duration } from "../../lib/time";
import type { Directory } from "../admin/directory";
import { Card } from "../admin/forms";
import { BarChart } from "./charts";

/** The name of a stats row: its team, or the account-wide queue. */
export function rowName(row: TeamStats, dir: Directory): string {
  return row.teamId ? dir.teamName(row.teamId) : "No team";
}

/** Team rows by name, the account-wide queue last. */
export function sortedRows(stats: QueueStats, dir: Directory): TeamStats[] {
  return [...stats.teams].sort((a, b) => {
    if (!a.teamId) return 1;
    if (!b.teamId) return -1;
    return rowName(a, dir).localeCompare(rowName(b, dir));
  });
}

function csat(avg: number, count: bigint): string {
  return count > 0n ? `${avg.toFixed(1)} ★` : "—";
}

/** The account's totals as key figures. */
export function KeyFigures({ stats }: { stats: QueueStats }) {
  const rows = stats.teams;
  const all = rows.find((r) => !r.teamId);
  const waiting = rows.reduce((s, r) => s + r.waiting, 0);
  const longest = Math.max(0, ...rows.map((r) => r.longestWaitSeconds));
  const assigned = rows.reduce((s, r) => s + r.assignedToday, 0);
  const overflowed = rows.reduce((s, r) => s + r.overflowedToday, 0);
  return (
    <div className="hk-stats">
      <div className={`hk-stat${waiting > 0 && (all?.agentsAvailable ?? 0) === 0 ? " alert" : ""}`}>
        <div className="hk-stat-label">Waiting now</div>
        <div className="hk-stat-value" data-testid="sup-total-waiting">
          {waiting}
        </div>
        <div className="hk-stat-foot">in every queue</div>
      </div>
      <div className={`hk-stat${longest > 300 ? " alert" : ""}`}>
        <div className="hk-stat-label">Longest wait</div>
        <div className="hk-stat-value">{waiting ? duration(longest) : "—"}</div>
        <div className="hk-stat-foot">of the chats waiting</div>
      </div>
      <div className="hk-stat">
        <div className="hk-stat-label">Agents online</div>
        <div className="hk-stat-value">{all?.agentsOnline ?? 0}</div>
        <div className="hk-stat-foot">{all?.agentsAvailable ?? 0} with a free seat</div>
      </div>
      <div className="hk-stat">
        <div className="hk-stat-label">Chats per agent</div>
        <div className="hk-stat-value">{(all?.chatsPerAgent ?? 0).toFixed(1)}</div>
        <div className="hk-stat-foot">open chats per online agent</div>
      </div>
      <div className="hk-stat">
        <div className="hk-stat-label">Assigned today</div>
        <div className="hk-stat-value">{assigned}</div>
        <div className="hk-stat-foot">since midnight UTC</div>
      </div>
      <div className={`hk-stat${overflowed > 0 ? " alert" : ""}`}>
        <div className="hk-stat-label">Overflowed today</div>
        <div className="hk-stat-value">{overflowed}</div>
        <div className="hk-stat-foot">sent away from a queue</div>
      </div>
      <div className="hk-stat">
        <div className="hk-stat-label">CSAT</div>
        <div className="hk-stat-value">{all && all.csatCount > 0n ? all.csatAverage.toFixed(2) : "—"}</div>
        <div className="hk-stat-foot">{all ? `${all.csatCount} rating${all.csatCount === 1n ? "" : "s"}` : "no ratings"}</div>
      </div>
    </div>
  );
}

/** One row per team's queue. */
export function TeamsTable({ stats, dir }: { stats: QueueStats; dir: Directory }) {
  const rows = sortedRows(stats, dir);
  return (
    <Card title="Teams" sub="queues and the agents serving them" tight>
      <div className="hk-table-wrap">
        <table className="hk-table sup-teams">
          <thead>
            <tr>
              <th>Team</th>
              <th className="num">Waiting</th>
              <th className="num">Longest wait</th>
              <th className="num">Average wait</th>
              <th className="num">Online</th>
              <th className="num">Available</th>
              <th className="num">Chats / agent</th>
              <th className="num">Assigned today</th>
              <th className="num">Overflowed</th>
              <th className="num">CSAT</th>
            </tr>
          </thead>
          <tbody>
            {rows.map((r) => (
              <tr key={r.teamId || "-"} data-testid="sup-team-row" data-team-id={r.teamId}>
                <td className="strong">
                  {rowName(r, dir)}
                  {!r.teamId && <span className="sub">account-wide queue · every agent</span>}
                </td>
                <td className="num" data-testid="sup-waiting">
                  <span className={r.waiting > 0 ? "sup-hot" : undefined}>{r.waiting}</span>
                </td>
                <td className="num" data-testid="sup-longest-wait">
                  {r.waiting ? duration(r.longestWaitSeconds) : "—"}
                </td>
                <td className="num">{r.waiting ? duration(r.averageWaitSeconds) : "—"}</td>
                <td className="num" data-testid="sup-agents-online">
                  {r.agentsOnline}
                </td>
                <td className="num">
                  <span className={r.agentsAvailable === 0 && r.agentsOnline > 0 ? "sup-warn" : undefined}>{r.agentsAvailable}</span>
                </td>
                <td className="num" data-testid="sup-chats-per-agent">
                  {r.chatsPerAgent.toFixed(1)}
                </td>
                <td className="num">{r.assignedToday}</td>
                <td className="num" data-testid="sup-overflowed">
                  {r.overflowedToday}
                </td>
                <td className="num">{csat(r.csatAverage, r.csatCount)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </Card>
  );
}

/** Waiting chats and load per team, side by side. */
export function QueueCharts({ stats, dir }: { stats: QueueStats; dir: Directory }) {
  const rows = sortedRows(stats, dir);
  return (
    <div className="sup-charts">
      <Card title="Waiting per team">
        <BarChart
          label="Chats waiting per team"
          bars={rows.map((r) => ({
            label: rowName(r, dir),
            value: r.waiting,
            color: r.waiting > 0 && r.agentsAvailable === 0 ? "#d92d20" : "#2f6fed",
          }))}
        />
      </Card>
      <Card title="Chats per online agent">
        <BarChart
          label="Open chats per online agent, per team"
          format={(v) => v.toFixed(1)}
          bars={rows.map((r) => ({ label: rowName(r, dir), value: r.chatsPerAgent, color: "#7a5af8" }))}
        />
      </Card>
    </div>
  );
}
