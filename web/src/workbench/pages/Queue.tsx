// The Queue page: the chats waiting for an agent, in queue order, with their waiting
// times ticking; queue figures per team; and, in pooled mode, "Pick" to take one.
// Kept live from the account's conversation events (every arrival, assignment and
// status change moves the queue) and, for supervisors, the queue statistics stream.

import { useEffect, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { PriorityClass, type QueueEntry, type QueueStats } from "../../gen/helpdesk/routing/v1/routing_pb";
import { describe } from "../../lib/errors";
import { duration } from "../../lib/time";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Empty, ErrorLine, Options, useAction, useDebounced, useLive, useNow } from "../ui";
import { teamChoices } from "../admin/directory";
import { hubOf, untilAborted, useShared } from "../chat/hub";
import { useContacts, useSessionDirectory } from "../chat/directory";
import { avatarHue, contactName, initials } from "../chat/format";
import "../chat/chat.css";

/** Most entries read (the queue pages by 100). */
const MAX_PAGES = 5;

const CLASS: Record<number, { label: string; css: string }> = {
  [PriorityClass.URGENT]: { label: "Urgent", css: "qu-urgent" },
  [PriorityClass.SKILL]: { label: "Skill", css: "qu-skill" },
  [PriorityClass.NORMAL]: { label: "Normal", css: "qu-normal" },
};

/** The queue of waiting chats. */
export function Queue() {
  const { clients, claims, me } = useWorkbench();
  const hub = hubOf(clients);
  const directory = useSessionDirectory(clients);
  const [team, setTeam] = useState("");
  const [entries, setEntries] = useState<QueueEntry[]>();
  const [more, setMore] = useState(false);
  const [stats, setStats] = useState<QueueStats>();
  const [pooled, setPooled] = useState<boolean>();
  const [error, setError] = useState<string>();
  const [act, actError, busy] = useAction();
  const now = useNow(1000);
  const supervising = claims.role === "admin" || claims.role === "supervisor";

  const load = async () => {
    try {
      const list: QueueEntry[] = [];
      let pageToken = "";
      let pages = 0;
      do {
        const page = await clients.routing.listQueue({ teamId: team, pageSize: 100, pageToken });
        list.push(...page.entries);
        pageToken = page.nextPageToken;
      } while (pageToken && ++pages < MAX_PAGES);
      setEntries(list);
      setMore(!!pageToken);
      if (!supervising) setStats(await clients.routing.getQueueStats({ teamId: team }));
      setError(undefined);
    } catch (err) {
      setError(describe(err));
    }
  };
  const reloadSoon = useDebounced(() => void load(), 300);

  useEffect(() => {
    setEntries(undefined);
    void load();
    clients.routing.getSettings({}).then(
      (s) => setPooled(s.pooledMode),
      (err) => setError(describe(err)),
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, team]);

  // Every arrival, assignment, requeue and status change shows as a conversation event.
  const streamError = useShared(hub.conversations, {
    item: (u) => {
      if (u.update.case === "conversationCreated" || u.update.case === "conversationStatusChanged") reloadSoon();
      if (u.update.case === "conversationUpdated") {
        const f = u.update.value.changedFields;
        if (f.includes("assignee_id") || f.includes("team_id") || f.includes("priority")) reloadSoon();
      }
    },
    ready: reloadSoon,
  });

  // Supervisors get the figures pushed; each push also means the queue moved.
  const statsError = useLive(
    async (signal) => {
      if (!supervising) return untilAborted(signal);
      for await (const s of clients.routing.watchQueueStats({ teamId: team }, { signal })) {
        setStats(s);
        reloadSoon();
      }
    },
    [clients, team, supervising],
  );

  const contact = useContacts(clients, [...new Set((entries ?? []).map((e) => e.contactId).filter(Boolean))]);

  const pick = (conversationId: string) =>
    act(async () => {
      const a = await clients.routing.pickFromQueue({ conversationId });
      go("conversations", a.conversationId);
    });

  const teamRows = (stats?.teams ?? []).filter((t) => !team || t.teamId === team);
  // The longest wait ticks with the clock from the entries shown (the figures are a snapshot).
  const longest = (teamId: string, reported: number) => {
    if (!entries || more) return reported;
    const waits = entries
      .filter((e) => e.teamId === teamId && e.enqueueTime)
      .map((e) => (now - timestampDate(e.enqueueTime!).getTime()) / 1000);
    return waits.length ? Math.max(...waits) : 0;
  };
  // Only agents take chats (staff without an agent record cannot).
  const canPick = !!pooled && !!directory.agent(me);

  return (
    <div className="page qu-page">
      <div className="qu-head">
        <div>
          <h2>Queue</h2>
          <p className="muted">
            {pooled === undefined
              ? " "
              : pooled
                ? "Pooled mode: take the chats you can serve, oldest and most urgent first."
                : "Chats are assigned automatically as agents free up."}
          </p>
        </div>
        <span className="spacer" />
        <select data-testid="queue-team" aria-label="Team" value={team} onChange={(e) => setTeam(e.target.value)}>
          <option value="">All queues</option>
          <Options of={teamChoices(directory.teams)} />
        </select>
        {canPick && (
          <button className="primary" data-testid="queue-pick-next" disabled={busy || !entries?.length} onClick={() => void pick("")}>
            Take next chat
          </button>
        )}
      </div>
      <ErrorLine error={error ?? actError ?? streamError ?? statsError} />

      {teamRows.length > 0 && (
        <div className="qu-stats">
          {teamRows.map((t) => (
            <div key={t.teamId || "account"} className="qu-stat">
              <div className="qu-stat-name">{t.teamId ? directory.teamName(t.teamId) : "Account-wide queue"}</div>
              <div className="qu-stat-figures">
                <span>
                  <strong>{t.waiting}</strong> waiting
                </span>
                <span>
                  longest <strong>{duration(longest(t.teamId, t.longestWaitSeconds))}</strong>
                </span>
                <span>
                  <strong>{t.agentsAvailable}</strong>/{t.agentsOnline} agents free
                </span>
              </div>
            </div>
          ))}
        </div>
      )}

      <div className="qu-table">
        <div className="qu-row qu-header" aria-hidden>
          <span>#</span>
          <span>Customer</span>
          <span>Queue</span>
          <span>Class</span>
          <span>Waiting</span>
          <span />
        </div>
        {entries?.map((e) => {
          const name = contactName(contact(e.contactId), e.contactId);
          const waited = e.enqueueTime ? (now - timestampDate(e.enqueueTime).getTime()) / 1000 : 0;
          const cls = CLASS[e.priorityClass] ?? CLASS[PriorityClass.NORMAL];
          return (
            <div key={e.conversationId} className="qu-row" data-testid="queue-row" data-id={e.conversationId}>
              <span className="qu-pos" data-testid="queue-position">
                {e.position}
              </span>
              <span className="qu-customer">
                <span className="ch-avatar ch-avatar-sm" style={{ "--hue": avatarHue(e.contactId) } as React.CSSProperties} aria-hidden>
                  {initials(name)}
                </span>
                <a href={`#/conversations/${e.conversationId}`}>{name}</a>
              </span>
              <span>
                {e.teamId ? directory.teamName(e.teamId) : <span className="muted">Account-wide</span>}
                {e.requiredSkills.length > 0 && <span className="qu-skills"> · {e.requiredSkills.join(", ")}</span>}
              </span>
              <span>
                <span className={`qu-class ${cls.css}`}>{cls.label}</span>
              </span>
              <span className={`qu-wait${waited > 300 ? " cl-late" : ""}`} data-testid="queue-waiting">
                {duration(waited)}
              </span>
              <span className="qu-actions">
                {canPick && (
                  <button data-testid="queue-pick" disabled={busy} onClick={() => void pick(e.conversationId)}>
                    Pick
                  </button>
                )}
              </span>
            </div>
          );
        })}
        {entries && !entries.length && <Empty>Nobody is waiting. New chats appear here the moment they queue.</Empty>}
        {!entries && !error && <p className="muted qu-pad">Loading the queue…</p>}
        {more && <p className="muted qu-pad">Showing the first {MAX_PAGES * 100} waiting chats.</p>}
      </div>
    </div>
  );
}
