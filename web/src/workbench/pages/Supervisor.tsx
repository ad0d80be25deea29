// The Supervisor page: live queue and team figures (WatchQueueStats), the waiting
// chats, the agents with their presence and load, and transfer figures. The queue
// figures stream; the agents, the queue and the transfer figures are read again each
// time the streamed figures show that they moved.

import { useEffect, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { QueueStats } from "../../gen/helpdesk/routing/v1/routing_pb";
import { useWorkbench } from "../context";
import { ErrorLine, useLive, useLoad } from "../ui";
import { listAllAgents, useDirectory } from "../admin/directory";
import { PageHeader } from "../admin/forms";
import { AgentsBoard } from "../supervisor/AgentsBoard";
import { KeyFigures, QueueCharts, TeamsTable } from "../supervisor/QueueFigures";
import { TransferStats } from "../supervisor/TransferStats";
import { WaitingChats } from "../supervisor/WaitingChats";

/** The supervisor's live view of queues, agents and transfers. */
export function Supervisor() {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const [stats, setStats] = useState<QueueStats>();
  const [changes, setChanges] = useState(0);
  const streamError = useLive(
    async (signal) => {
      for await (const s of clients.routing.watchQueueStats({}, { signal })) setStats(s);
    },
    [clients],
  );

  // What the streamed figures say about the agents and the queue: when it changes,
  // those lists are read again.
  const agentsSig = stats?.teams.map((t) => `${t.teamId}:${t.agentsOnline}:${t.agentsAvailable}:${t.chatsPerAgent}`).join("|") ?? "";
  const queueSig = stats?.teams.map((t) => `${t.teamId}:${t.waiting}:${t.assignedToday}:${t.overflowedToday}`).join("|") ?? "";
  const agents = useLoad(() => listAllAgents(clients), [clients, agentsSig, queueSig, changes]);
  const inboxes = useLoad(() => clients.conversation.listInboxes({ pageSize: 100 }).then((r) => r.inboxes), [clients]);
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

  const updated = stats?.time ? timestampDate(stats.time) : undefined;
  return (
    <div className="hk-page sup-page">
      <PageHeader
        title="Supervisor"
        sub="Queues, agents and transfers, as they happen."
        actions={
          <span className={`hk-live${streamError ? " down" : ""}`} data-testid="sup-live">
            <span className="hk-dot" />
            {streamError ? "Live updates stopped" : stats ? `Live · ${updated?.toLocaleTimeString()}` : "Connecting…"}
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
        error={queue.error}
        agents={agents.data ?? []}
        dir={dir}
        inboxName={inboxName}
        onChanged={() => setChanges((c) => c + 1)}
      />
      <AgentsBoard
        agents={agents.data ?? []}
        error={agents.error}
        loading={agents.loading}
        dir={dir}
        onChanged={() => setChanges((c) => c + 1)}
      />
      <TransferStats dir={dir} version={`${queueSig}/${changes}`} />
    </div>
  );
}
