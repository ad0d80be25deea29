// Transfer figures of a period, per receiving agent or per team, with a chart.

import { useState } from "react";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { TransferStatsBy } from "../../gen/helpdesk/routing/v1/routing_pb";
import { useWorkbench } from "../context";
import { useLoad } from "../ui";
import type { Directory } from "../admin/directory";
import { Card, ListState, Table } from "../admin/forms";
import { StackedBarChart } from "./charts";

const PERIODS: [string, string][] = [
  ["today", "Today"],
  ["7d", "7 days"],
  ["30d", "30 days"],
];

function startOf(period: string): Date {
  if (period === "today") {
    const d = new Date();
    d.setHours(0, 0, 0, 0);
    return d;
  }
  const days = period === "30d" ? 30 : 7;
  return new Date(Date.now() - days * 86400_000);
}

const SEGMENTS = [
  { name: "Accepted", color: "#12b76a" },
  { name: "Rejected", color: "#f04438" },
  { name: "Timed out", color: "#f79009" },
  { name: "Cancelled", color: "#98a2b3" },
  { name: "Pending", color: "#2f6fed" },
];

/**
 * The table and chart. `version` changes when the live queue figures say assignments
 * moved, and the figures are read again then.
 */
export function TransferStats({ dir, version }: { dir: Directory; version: string }) {
  const { clients } = useWorkbench();
  const [period, setPeriod] = useState("today");
  const [by, setBy] = useState(TransferStatsBy.AGENT);
  const stats = useLoad(
    () => clients.routing.getTransferStats({ startTime: timestampFromDate(startOf(period)), by }).then((r) => r.rows),
    [clients, period, by, version],
  );
  const rows = stats.data ?? [];
  const name = (key: string) => (by === TransferStatsBy.TEAM ? dir.teamName(key) || "No team" : dir.agentName(key));
  return (
    <Card
      title="Transfers"
      sub={by === TransferStatsBy.TEAM ? "per team transferred to" : "per receiving agent"}
      actions={
        <>
          <div className="sup-seg" role="group" aria-label="Period">
            {PERIODS.map(([v, label]) => (
              <button key={v} className={period === v ? "on" : ""} onClick={() => setPeriod(v)} data-testid={`sup-transfer-period-${v}`}>
                {label}
              </button>
            ))}
          </div>
          <div className="sup-seg" role="group" aria-label="Group by">
            <button className={by === TransferStatsBy.AGENT ? "on" : ""} onClick={() => setBy(TransferStatsBy.AGENT)}>
              By agent
            </button>
            <button className={by === TransferStatsBy.TEAM ? "on" : ""} onClick={() => setBy(TransferStatsBy.TEAM)}>
              By team
            </button>
          </div>
        </>
      }
      tight
    >
      <ListState
        error={stats.error}
        loading={stats.loading && !stats.data}
        loadingText="Loading transfer figures…"
        count={rows.length}
        empty="No transfers in this period."
      >
        <div className="sup-transfers">
          <Table
            wrap
            columns={[
              by === TransferStatsBy.TEAM ? "Team" : "Agent",
              ...["Offers", "Accepted", "Rejected", "Timed out", "Cancelled", "Pending", "Success", "Avg. to accept"].map((label) => ({ label, num: true })),
              "Reject reasons",
            ]}
          >
            {rows.map((r) => (
              <tr key={r.key} data-testid="sup-transfer-row" data-key={r.key}>
                <td className="strong">{name(r.key)}</td>
                <td className="num">{String(r.offers)}</td>
                <td className="num">{String(r.accepted)}</td>
                <td className="num">{String(r.rejected)}</td>
                <td className="num">{String(r.timedOut)}</td>
                <td className="num">{String(r.cancelled)}</td>
                <td className="num">{String(r.pending)}</td>
                <td className="num">
                  <span className={r.successRate < 0.5 && r.offers > r.pending ? "sup-warn" : undefined}>
                    {r.offers > r.pending ? `${Math.round(r.successRate * 100)} %` : "—"}
                  </span>
                </td>
                <td className="num">{r.accepted > 0n ? `${r.averageSecondsToAccept.toFixed(1)} s` : "—"}</td>
                <td className="hk-small">
                  {r.rejectReasons.length === 0 ? (
                    <span className="hk-muted">—</span>
                  ) : (
                    r.rejectReasons.slice(0, 3).map((x) => (
                      <span key={x.reason} className="sup-reason">
                        {x.reason || "no reason"} <b>×{String(x.count)}</b>
                      </span>
                    ))
                  )}
                </td>
              </tr>
            ))}
          </Table>
          <div className="sup-transfers-chart">
            <StackedBarChart
              label="Transfer outcomes"
              segments={SEGMENTS}
              rows={rows.map((r) => ({
                label: name(r.key),
                values: [r.accepted, r.rejected, r.timedOut, r.cancelled, r.pending].map(Number),
              }))}
            />
          </div>
        </div>
      </ListState>
    </Card>
  );
}
