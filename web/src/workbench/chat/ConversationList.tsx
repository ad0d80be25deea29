// The conversation list: filters (mine, unassigned, team, status, label) and rows kept
// live from the account's conversation events.

import { useEffect, useMemo, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { ConversationStatus, Priority, type Conversation } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { describe } from "../../lib/errors";
import { clock, duration } from "../../lib/time";
import { useWorkbench } from "../context";
import { Empty, ErrorLine, Options, useDebounced, useNow } from "../ui";
import { teamChoices } from "../admin/directory";
import { avatarHue, contactName, initials, newer, snippet, statusLabel, STATUS_KEYS } from "./format";
import { noteMessage, rememberContact, useContacts, useSessionDirectory, useSummaries } from "./directory";
import { hubOf, useShared } from "./hub";
import { useSeen } from "./seen";
import { ClockIcon } from "./icons";

/** The list's filters, as the URL's query keeps them. */
export interface Filters {
  /** Whose conversations: the signed-in agent's, nobody's, or all. */
  view: "mine" | "unassigned" | "all";
  /** A key of STATUS_KEYS, or "any". */
  status: string;
  team: string;
  label: string;
}

/** The "whose" choices, with their names. */
const VIEWS: [Filters["view"], string][] = [
  ["mine", "Mine"],
  ["unassigned", "Unassigned"],
  ["all", "All"],
];

/** Reads the filters from the URL's query (agents see their own open ones by default). */
export function filtersOf(query: URLSearchParams, role: string): Filters {
  const view = VIEWS.find(([v]) => v === query.get("view"))?.[0];
  return {
    view: view ?? (role === "agent" ? "mine" : "all"),
    status: query.get("status") ?? "open",
    team: query.get("team") ?? "",
    label: query.get("label") ?? "",
  };
}

/** The filters as a URL query. */
export function queryOf(f: Filters): Record<string, string> {
  const q: Record<string, string> = { view: f.view, status: f.status };
  if (f.team) q.team = f.team;
  if (f.label) q.label = f.label;
  return q;
}

function matches(c: Conversation, f: Filters, me: string): boolean {
  if (f.view === "mine" && c.assigneeId !== me) return false;
  if (f.view === "unassigned" && c.assigneeId) return false;
  const status = STATUS_KEYS[f.status];
  if (status !== undefined && c.status !== status) return false;
  if (f.team && c.teamId !== f.team) return false;
  if (f.label && !c.labels.includes(f.label.trim().toLowerCase())) return false;
  return true;
}

function activity(c: Conversation): number {
  const t = c.lastActivityTime ?? c.updateTime ?? c.createTime;
  return t ? timestampDate(t).getTime() : 0;
}

/** The conversation list column. */
export function ConversationList({
  filters,
  selectedId,
  onFilters,
  onSelect,
}: {
  filters: Filters;
  selectedId?: string;
  onFilters: (f: Filters) => void;
  onSelect: (id: string) => void;
}) {
  const { clients, me, claims } = useWorkbench();
  const hub = hubOf(clients);
  const directory = useSessionDirectory(clients);
  const [rows, setRows] = useState<Conversation[]>([]);
  const [next, setNext] = useState("");
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string>();
  const [labelText, setLabelText] = useState(filters.label);
  const key = JSON.stringify(filters);

  const load = async (pageToken = "") => {
    setLoading(true);
    try {
      const status = STATUS_KEYS[filters.status] ?? ConversationStatus.UNSPECIFIED;
      const page = await clients.conversation.listConversations({
        pageSize: 30,
        pageToken,
        status,
        assigneeId: filters.view === "mine" ? me : "",
        unassigned: filters.view === "unassigned",
        teamId: filters.team,
        label: filters.label.trim().toLowerCase(),
      });
      setRows((old) => {
        const merged = pageToken ? [...old] : [];
        for (const c of page.conversations) {
          const i = merged.findIndex((o) => o.id === c.id);
          if (i >= 0) merged[i] = newer(merged[i], c);
          else merged.push(c);
        }
        return merged;
      });
      setNext(page.nextPageToken);
      setError(undefined);
    } catch (err) {
      setError(describe(err));
    } finally {
      setLoading(false);
    }
  };

  useEffect(() => {
    setRows([]);
    setNext("");
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, key]);
  // The URL's label wins when it changes from elsewhere (back button, a link).
  useEffect(() => {
    setLabelText((t) => (t.trim().toLowerCase() === filters.label ? t : filters.label));
  }, [filters.label]);

  const applyLabel = useDebounced(() => onFilters({ ...filters, label: labelText.trim().toLowerCase() }), 450);

  const streamError = useShared(hub.conversations, {
    item: (u) => {
      const v = u.update.value;
      if (!v || !("conversation" in v) || !v.conversation) return;
      if (u.update.case === "conversationCreated" && u.update.value.contact) rememberContact(clients, u.update.value.contact);
      if (u.update.case === "messageCreated" && u.update.value.message) noteMessage(clients, u.update.value.message);
      const c = v.conversation;
      setRows((old) => {
        const i = old.findIndex((o) => o.id === c.id);
        const current = i >= 0 ? newer(old[i], c) : c;
        if (i >= 0 && current !== c) return old;
        const rest = old.filter((o) => o.id !== c.id);
        if (!matches(c, filters, me)) return i >= 0 ? rest : old;
        return [...rest, c].sort((a, b) => activity(b) - activity(a));
      });
    },
    ready: () => void load(),
  });

  const ids = useMemo(() => rows.map((r) => r.id), [rows]);
  const contact = useContacts(clients, useMemo(() => [...new Set(rows.map((r) => r.contactId))], [rows]));
  const summary = useSummaries(clients, ids);
  const seen = useSeen(claims.account, me);
  const now = useNow(1000);

  // A label being typed goes along with any other change.
  const set = (patch: Partial<Filters>) => onFilters({ ...filters, label: labelText.trim().toLowerCase(), ...patch });

  return (
    <section className="cl-column" aria-label="Conversations">
      <header className="cl-head">
        <div className="cl-title">
          <h2>Conversations</h2>
          <span className="muted">{rows.length}{next ? "+" : ""}</span>
        </div>
        <div className="ch-segment cl-views" role="group" aria-label="Whose">
          {VIEWS.map(([view, label]) => (
            <button
              key={view}
              data-testid={`filter-${view}`}
              aria-pressed={filters.view === view}
              className={filters.view === view ? "on" : undefined}
              onClick={() => set({ view })}
            >
              {label}
            </button>
          ))}
        </div>
        <div className="cl-filters">
          <select data-testid="filter-status" aria-label="Status" value={filters.status} onChange={(e) => set({ status: e.target.value })}>
            <Options of={Object.entries(STATUS_KEYS).map(([key, status]) => [key, statusLabel(status)] as const)} />
            <option value="any">Any status</option>
          </select>
          <select data-testid="filter-team" aria-label="Team" value={filters.team} onChange={(e) => set({ team: e.target.value })}>
            <option value="">All teams</option>
            <Options of={teamChoices(directory.teams)} />
          </select>
          <input
            data-testid="filter-label"
            aria-label="Label"
            placeholder="Filter by label"
            value={labelText}
            onChange={(e) => {
              setLabelText(e.target.value);
              applyLabel();
            }}
            onKeyDown={(e) => e.key === "Enter" && set({ label: labelText.trim().toLowerCase() })}
          />
        </div>
      </header>
      <ErrorLine error={error ?? streamError} />
      <div className="cl-rows">
        {rows.map((c) => {
          const s = summary(c.id);
          const name = contactName(contact(c.contactId), c.contactId);
          const unread = (s?.lastIncoming ?? 0) > (seen[c.id] ?? 0) && c.id !== selectedId;
          const waiting = c.waitingSince ? (now - timestampDate(c.waitingSince).getTime()) / 1000 : undefined;
          return (
            <button
              key={c.id}
              className={`cl-row${c.id === selectedId ? " cl-selected" : ""}${unread ? " cl-unread" : ""}`}
              data-testid="conversation-row"
              data-id={c.id}
              data-unread={unread ? "true" : "false"}
              onClick={() => onSelect(c.id)}
            >
              <span className="ch-avatar" style={{ "--hue": avatarHue(c.contactId) } as React.CSSProperties} aria-hidden>
                {initials(name)}
              </span>
              <span className="cl-main">
                <span className="cl-line1">
                  <span className="cl-name">{name}</span>
                  <span className="cl-time">{clock(c.lastActivityTime)}</span>
                </span>
                <span className="cl-line2">
                  <span className="cl-snippet">{s ? snippet(s.last, me) || "No messages yet" : "…"}</span>
                  {unread && <span className="cl-dot" title="Unread customer message" />}
                </span>
                <span className="cl-line3">
                  {(filters.status === "any" || STATUS_KEYS[filters.status] !== c.status) && (
                    <span className={`ch-status ch-s${c.status}`}>{statusLabel(c.status)}</span>
                  )}
                  {waiting !== undefined && c.status === ConversationStatus.OPEN && (
                    <span className={`cl-wait${waiting > 300 ? " cl-late" : ""}`} title="Customer waiting for a reply">
                      <ClockIcon size={11} /> {duration(waiting)}
                    </span>
                  )}
                  {c.priority >= Priority.HIGH && (
                    <span className={`ch-prio ch-p${c.priority}`}>{c.priority === Priority.URGENT ? "Urgent" : "High"}</span>
                  )}
                  {c.labels.slice(0, 2).map((l) => (
                    <span key={l} className="ch-label">
                      {l}
                    </span>
                  ))}
                  {c.assigneeId && c.assigneeId !== me && filters.view !== "mine" && (
                    <span className="cl-assignee">{directory.agentName(c.assigneeId)}</span>
                  )}
                  {!c.assigneeId && c.status === ConversationStatus.OPEN && <span className="cl-assignee muted">Unassigned</span>}
                </span>
              </span>
            </button>
          );
        })}
        {!rows.length && !loading && !error && <Empty>No conversations match these filters.</Empty>}
        {loading && !rows.length && <p className="muted cl-pad">Loading conversations…</p>}
        {next && (
          <button className="cl-more" disabled={loading} onClick={() => void load(next)}>
            {loading ? "Loading…" : "Load more"}
          </button>
        )}
      </div>
    </section>
  );
}
