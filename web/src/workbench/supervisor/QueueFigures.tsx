// Live queue figures: account totals, one row per team, and charts of them.

import type { QueueStats, TeamStats } from "../../gen/helpdesk/routing/v1/routing_pb";
import { duration } from "../../lib/time";
import type { Directory } from "../admin/directory";
import { Card, Stat, Table } from "../admin/forms";
import { BarChart } from "./charts";

/** The name of a stats row: its team, or the account-wide queue. */
function rowName(row: TeamStats, dir: Directory): string {
  return row.teamId ? dir.teamName(row.teamId) : "No team";
}

/** Team rows by name, the account-wide queue last. */
function sortedRows(stats: QueueStats, dir: Directory): TeamStats[] {
  return [...stats.teams].sort((a, b) => {
    if (!a.teamId) return 1;
    if (!b.teamId) return -1;
    return rowName(a, dir).localeCompare(rowName(b, dir));
  });
}

/** The figures of a team's row, after its name. */
const FIGURES = ["Waiting", "Longest wait", "Average wait", "Online", "Available", "Chats / agent", "Assigned today", "Overflowed", "CSAT"];

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
      <Stat
        label="Waiting now"
        value={waiting}
        foot="in every queue"
        alert={waiting > 0 && (all?.agentsAvailable ?? 0) === 0}
        testId="sup-total-waiting"
      />
      <Stat label="Longest wait" value={waiting ? duration(longest) : "—"} foot="of the chats waiting" alert={longest > 300} />
      <Stat label="Agents online" value={all?.agentsOnline ?? 0} foot={`${all?.agentsAvailable ?? 0} with a free seat`} />
      <Stat label="Chats per agent" value={(all?.chatsPerAgent ?? 0).toFixed(1)} foot="open chats per online agent" />
      <Stat label="Assigned today" value={assigned} foot="since midnight UTC" />
      <Stat label="Overflowed today" value={overflowed} foot="sent away from a queue" alert={overflowed > 0} />
      <Stat
        label="CSAT"
        value={all && all.csatCount > 0n ? all.csatAverage.toFixed(2) : "—"}
        foot={all ? `${all.csatCount} rating${all.csatCount === 1n ? "" : "s"}` : "no ratings"}
      />
    </div>
  );
}

/** One row per team's queue. */
export function TeamsTable({ stats, dir }: { stats: QueueStats; dir: Directory }) {
  const rows = sortedRows(stats, dir);
  return (
    <Card title="Teams" sub="queues and the agents serving them" tight>
      <Table wrap className="sup-teams" columns={["Team", ...FIGURES.map((label) => ({ label, num: true }))]}>
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
      </Table>
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
