// The chats waiting in the queues, in queue order, with their customers and a manual
// assignment.

import { useState } from "react";
import { Presence, PriorityClass, type Agent, type QueueEntry } from "../../gen/helpdesk/routing/v1/routing_pb";
import { duration, toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { ErrorLine, useAction, useNow } from "../ui";
import type { Directory } from "../admin/directory";
import { Check, ListCard } from "../admin/forms";
import { useContacts } from "../chat/directory";
import { contactName } from "../chat/format";

const CLASSES: Record<number, string> = {
  [PriorityClass.URGENT]: "Urgent",
  [PriorityClass.SKILL]: "Skill",
  [PriorityClass.NORMAL]: "Normal",
};

/** The waiting chats (as read after the last change of the queue figures). */
export function WaitingChats(props: {
  entries: QueueEntry[];
  loading: boolean;
  error?: string;
  agents: Agent[];
  dir: Directory;
  inboxName: (id: string) => string;
  onChanged: () => void;
}) {
  const { clients } = useWorkbench();
  const now = useNow();
  const contact = useContacts(clients, [...new Set(props.entries.map((e) => e.contactId).filter(Boolean))]);
  return (
    <ListCard
      title="Waiting chats"
      sub={`${props.entries.length} in queue order`}
      error={props.error}
      loading={props.loading}
      loadingText="Loading the queue…"
      count={props.entries.length}
      empty="Nobody is waiting."
      wrap
      columns={[{ label: "Place", num: true, title: "Place in its own queue" }, "Customer", "Queue", "Class", { label: "Waiting", num: true }, "Assign to"]}
    >
      {props.entries.map((e) => {
        const since = toDate(e.enqueueTime)?.getTime() ?? now;
        return (
          <tr key={e.conversationId} data-testid="sup-waiting-row" data-id={e.conversationId}>
            <td className="num">{e.position}</td>
            <td>
              <a href={`#/conversations/${e.conversationId}`}>{contactName(contact(e.contactId), e.contactId)}</a>
              <span className="sub">
                {props.inboxName(e.inboxId)}
                {e.requiredSkills.length > 0 && ` · needs ${e.requiredSkills.join(", ")}`}
              </span>
            </td>
            <td>{e.teamId ? props.dir.teamName(e.teamId) : "No team"}</td>
            <td>
              <span className={`hk-pill ${e.priorityClass === PriorityClass.URGENT ? "bad" : "dim"}`}>
                {CLASSES[e.priorityClass] ?? "Normal"}
              </span>
            </td>
            <td className="num">{duration((now - since) / 1000)}</td>
            <td>
              <AssignControl entry={e} agents={props.agents} onChanged={props.onChanged} />
            </td>
          </tr>
        );
      })}
    </ListCard>
  );
}

function AssignControl({ entry, agents, onChanged }: { entry: QueueEntry; agents: Agent[]; onChanged: () => void }) {
  const { clients } = useWorkbench();
  const [agentId, setAgentId] = useState("");
  const [over, setOver] = useState(false);
  const [act, error, busy] = useAction();
  const candidates = agents
    .filter((a) => !entry.teamId || a.teamIds.includes(entry.teamId))
    .sort((a, b) => Number(b.presence === Presence.ONLINE) - Number(a.presence === Presence.ONLINE));
  const chosen = agents.find((a) => a.id === agentId);
  const full = chosen ? chosen.activeChats >= chosen.maxChats : false;
  return (
    <div className="hk-row" style={{ flexWrap: "nowrap" }}>
      <select aria-label="Agent" value={agentId} onChange={(e) => setAgentId(e.target.value)} style={{ maxWidth: 180 }}>
        <option value="">Choose an agent…</option>
        {candidates.map((a) => (
          <option key={a.id} value={a.id}>
            {a.name || a.id} ({a.activeChats}/{a.maxChats}
            {a.presence === Presence.ONLINE ? "" : ", not online"})
          </option>
        ))}
      </select>
      {full && <Check checked={over} onChange={setOver} label="over capacity" />}
      <button
        className="small"
        disabled={!agentId || busy || (full && !over)}
        onClick={() =>
          act(async () => {
            await clients.routing.assignConversation({ conversationId: entry.conversationId, agentId, allowOverCapacity: over });
            onChanged();
          })
        }
      >
        Assign
      </button>
      <ErrorLine error={error} />
    </div>
  );
}
