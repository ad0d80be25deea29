// The Supervisor page: live queue and team figures (WatchQueueStats), the waiting
// chats, the agents with their presence and load (WatchAgents), and transfer figures.
// The figures and the agents stream; the waiting chats and the transfer figures are
// read again each time the streamed figures show that the queues moved.

import { useEffect, useState } from "react";
import type { Agent, QueueStats } from "../../gen/helpdesk/routing/v1/routing_pb";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { ErrorLine, useLive, useLoad } from "../ui";
import { useDirectory } from "../admin/directory";
import { PageHeader } from "../admin/forms";
import { listAllInboxes } from "../admin/Inboxes";
import { AgentsBoard } from "../supervisor/AgentsBoard";
import { KeyFigures, QueueCharts, TeamsTable } from "../supervisor/QueueFigures";
import { TransferStats } from "../supervisor/TransferStats";
import { WaitingChats } from "../supervisor/WaitingChats";

/** The supervisor's live view of queues, agents and transfers. */
export function Supervisor() {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const [stats, setStats] = useState<QueueStats>();
  const [agents, setAgents] = useState<Agent[]>();
  const [changes, setChanges] = useState(0);
  const streamError = useLive(
    async (signal) => {
      for await (const s of clients.routing.watchQueueStats({}, { signal })) setStats(s);
    },
    [clients],
  );
  const agentsError = useLive(
    async (signal) => {
      for await (const board of clients.routing.watchAgents({}, { signal })) setAgents(board.agents);
    },
    [clients],
  );
  /** Shows an agent as a change made here left it, until the board sends it again. */
  const showAgent = (a: Agent) => setAgents((list) => list?.map((x) => (x.id === a.id ? a : x)));

  // What the streamed figures say about the queues: when it changes, the waiting chats
  // and the transfer figures are read again.
  const queueSig = stats?.teams.map((t) => `${t.teamId}:${t.waiting}:${t.assignedToday}:${t.overflowedToday}`).join("|") ?? "";
  const inboxes = useLoad(() => listAllInboxes(clients), [clients]);
  const inboxName = (id: string) => inboxes.data?.find((i) => i.id === id)?.name ?? "";
  const queue = useLoad(
    () => clients.routing.listQueue({ pageSize: 100 }).then((r) => r.entries),
    [clients, queueSig, changes],
  );

  // A team created after the page opened: read the directory again for its name.
  const unknownTeam = stats?.teams.some((t) => t.teamId && !dir.loading && !dir.teams.some((d) => d.id === t.teamId));
  useEffect(() => {
    if (unknownTeam) dir.reload();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [unknownTeam]);

  return (
    <div className="hk-page sup-page">
      <PageHeader
        title="Supervisor"
        sub="Queues, agents and transfers, as they happen."
        actions={
          <span className={`hk-live${streamError ? " down" : ""}`} data-testid="sup-live">
            <span className="hk-dot" />
            {streamError ? "Live updates stopped" : stats ? `Live · ${toDate(stats.time)?.toLocaleTimeString()}` : "Connecting…"}
          </span>
        }
      />
      <ErrorLine error={streamError} />
      {!stats ? (
        !streamError && <div className="hk-loading">Waiting for the first figures…</div>
      ) : (
        <>
          <KeyFigures stats={stats} />
          <TeamsTable stats={stats} dir={dir} />
          <QueueCharts stats={stats} dir={dir} />
        </>
      )}
      <WaitingChats
        entries={queue.data ?? []}
        loading={queue.loading && !queue.data}
        error={queue.error}
        agents={agents ?? []}
        dir={dir}
        inboxName={inboxName}
        onChanged={() => setChanges((c) => c + 1)}
      />
      <AgentsBoard agents={agents} error={agentsError} dir={dir} onChanged={showAgent} />
      <TransferStats dir={dir} version={`${queueSig}/${changes}`} />
    </div>
  );
}
