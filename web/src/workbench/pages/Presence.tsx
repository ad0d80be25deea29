// The presence switch in the top bar: the signed-in agent's presence (kept alive with
// a heartbeat and the presence stream), their chats against their capacity, and the
// transfer offers made to them, on every page.

import { useEffect, useState } from "react";
import { Code, ConnectError } from "@connectrpc/connect";
import { Presence, type Agent } from "../../gen/helpdesk/routing/v1/routing_pb";
import { ConversationStatus } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { describe } from "../../lib/errors";
import { useWorkbench } from "../context";
import { useAction, useDebounced, useLive } from "../ui";
import { hubOf, untilAborted, useShared } from "../chat/hub";
import { TransferOffers } from "../chat/TransferOffers";
import "../chat/chat.css";
import { AlertIcon } from "../chat/icons";

const CHOICES: { value: string; presence: Presence; label: string }[] = [
  { value: "online", presence: Presence.ONLINE, label: "Online" },
  { value: "away", presence: Presence.AWAY, label: "Away" },
  { value: "busy", presence: Presence.BUSY, label: "Busy" },
  { value: "offline", presence: Presence.OFFLINE, label: "Offline" },
];

/** Longest pause between heartbeats. */
const HEARTBEAT_SECONDS = 30;

/**
 * The agent's presence (online / away / offline) and "2 / 5" chats; nothing for staff
 * without an agent record.
 */
export function PresenceSwitch() {
  const { clients, me } = useWorkbench();
  const hub = hubOf(clients);
  const [agent, setAgent] = useState<Agent>();
  const [missing, setMissing] = useState(false);
  const [loadError, setLoadError] = useState<string>();
  const [idleSeconds, setIdleSeconds] = useState(120);
  const [act, actError, busy] = useAction();

  const readAgent = () =>
    clients.routing.getAgent({ id: me }).then(
      (a) => {
        setAgent(a);
        setLoadError(undefined);
      },
      (err) => {
        if (ConnectError.from(err).code === Code.NotFound) setMissing(true);
        else setLoadError(describe(err));
      },
    );

  useEffect(() => {
    setMissing(false);
    void readAgent();
    clients.routing.getSettings({}).then(
      (s) => s.presenceIdleSeconds > 0 && setIdleSeconds(s.presenceIdleSeconds),
      () => undefined,
    );
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, me]);

  // Open chats change when routing assigns or releases one of the agent's
  // conversations; routing counts a status change just after the event, so read twice.
  const refreshSoon = useDebounced(() => void readAgent(), 400);
  const refreshLater = useDebounced(() => void readAgent(), 2500);
  useShared(agent ? hub.conversations : undefined, {
    item: (u) => {
      const c = u.update.value && "conversation" in u.update.value ? u.update.value.conversation : undefined;
      if (!c) return;
      const assigneeChanged =
        u.update.case === "conversationUpdated" && u.update.value.changedFields.includes("assignee_id");
      const mineChanged =
        c.assigneeId === me &&
        (u.update.case === "conversationStatusChanged" ||
          (u.update.case === "conversationCreated" && c.status === ConversationStatus.OPEN));
      if (assigneeChanged || mineChanged) {
        refreshSoon();
        refreshLater();
      }
    },
    ready: () => void readAgent(),
  });

  // The presence stream counts as a heartbeat while open and tells of changes made
  // elsewhere (a supervisor, the idle timer).
  const liveError = useLive(
    async (signal) => {
      if (!agent) return untilAborted(signal);
      for await (const u of clients.routing.watchPresence({}, { signal })) {
        if (u.agentId === me) {
          setAgent((a) => (a ? { ...a, presence: u.presence, presenceTime: u.time } : a));
          void readAgent();
        }
      }
    },
    [clients, me, !!agent],
  );

  const presence = agent?.presence ?? Presence.UNSPECIFIED;
  const beating = presence === Presence.ONLINE || presence === Presence.AWAY || presence === Presence.BUSY;
  useEffect(() => {
    if (!beating) return;
    const every = Math.max(5, Math.min(HEARTBEAT_SECONDS, Math.floor(idleSeconds / 3)));
    const t = setInterval(() => {
      clients.routing.heartbeat({}).catch(() => undefined);
    }, every * 1000);
    return () => clearInterval(t);
  }, [clients, beating, idleSeconds]);

  if (missing) return null;
  if (!agent) return loadError ? <span className="pr-error" title={loadError}>Presence unavailable</span> : null;

  const choices = CHOICES.filter((c) => c.value !== "busy" || presence === Presence.BUSY);
  const current = CHOICES.find((c) => c.presence === presence)?.value ?? "";
  const error = actError ?? liveError;
  const full = agent.maxChats > 0 && agent.activeChats >= agent.maxChats;
  return (
    <div className="pr-switch">
      <span className={`pr-dot pr-${current || "unknown"}`} aria-hidden />
      <select
        data-testid="presence"
        aria-label="Your presence"
        value={current}
        disabled={busy}
        onChange={(e) => {
          const choice = CHOICES.find((c) => c.value === e.target.value);
          if (!choice) return;
          void act(async () => setAgent(await clients.routing.setPresence({ presence: choice.presence })));
        }}
      >
        {!current && <option value="">Unknown</option>}
        {choices.map((c) => (
          <option key={c.value} value={c.value}>
            {c.label}
          </option>
        ))}
      </select>
      <span className={`pr-capacity${full ? " pr-full" : ""}`} title="Open chats / most concurrent chats">
        <span data-testid="capacity">
          {agent.activeChats} / {agent.maxChats}
        </span>{" "}
        chats
      </span>
      {error && (
        <span className="pr-error" role="alert" title={error}>
          <AlertIcon />
        </span>
      )}
      <TransferOffers />
    </div>
  );
}
