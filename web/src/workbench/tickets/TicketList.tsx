// The ticket list: filters and search kept in the URL, pages, bulk changes, new tickets.
// It follows the account's ticket changes live: a changed ticket's row is replaced in
// place, and the page is read again (at most once a second) after tickets are created
// or changed, since only the service knows which of them the filters and order take in.

import { useEffect, useMemo, useRef, useState } from "react";
import { StatusCategory, type Status, type Ticket } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { describe } from "../../lib/errors";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { go } from "../route";
import { type Choice, Options, useAction } from "../ui";
import { ago, FormErrors, fullTime, ListCard, PageHeader } from "../admin/forms";
import { agentChoices, teamChoices, useDirectory } from "../admin/directory";
import { NewTicketDialog } from "./NewTicket";
import { HeardTickets, latestTicket, useTicketChanges } from "./live";
import { isDone, NextSla, PRIORITIES, PriorityLabel, statusChoices, StatusBadge } from "./model";

const PAGE_SIZE = 25;
/** The least time between two reads of the page prompted by ticket changes. */
const REREAD_MS = 1000;
/** The status filter's pseudo-value for every ticket not yet solved. */
const UNSOLVED = ":unsolved";

const SORTS: [string, string][] = [
  ["-updated", "Recently updated"],
  ["-created", "Newest first"],
  ["created", "Oldest first"],
  ["-priority", "Highest priority"],
  ["due", "Due soonest"],
  ["-number", "Number (high to low)"],
];

/** The filters of the list, as kept in the URL's query. */
interface Filters {
  status: string;
  priority: string;
  assignee: string;
  team: string;
  q: string;
  sort: string;
}

/** The filters picked from a select. */
type FilterKey = "status" | "priority" | "assignee" | "team";

function filtersOf(query: URLSearchParams): Filters {
  return {
    status: query.get("status") ?? "",
    priority: query.get("priority") ?? "",
    assignee: query.get("assignee") ?? "",
    team: query.get("team") ?? "",
    q: query.get("q") ?? "",
    sort: query.get("sort") ?? "-updated",
  };
}

function setFilters(f: Filters) {
  const q: Record<string, string> = {};
  for (const [k, v] of Object.entries(f)) if (v && !(k === "sort" && v === "-updated")) q[k] = v;
  go("tickets", undefined, Object.keys(q).length ? q : undefined);
}

/** The list of the account's tickets. */
export function TicketList({ query, statuses }: { query: URLSearchParams; statuses: Status[] }) {
  const { clients, me } = useWorkbench();
  const dir = useDirectory();
  const filters = useMemo(() => filtersOf(query), [query]);
  const [pages, setPages] = useState<string[]>([""]);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [creating, setCreating] = useState(false);
  const key = JSON.stringify(filters);
  useEffect(() => {
    setPages([""]);
    setSelected(new Set());
  }, [key]);
  const pageToken = pages[pages.length - 1];

  const [page, setPage] = useState<{ tickets: Ticket[]; next: string }>();
  const [loading, setLoading] = useState(true);
  const [error, setError] = useState<string>();
  const heard = useRef(new HeardTickets());
  // Each read is numbered: only the answer to the latest one is shown.
  const reads = useRef(0);
  const lastRead = useRef(0);
  const rereadTimer = useRef<ReturnType<typeof setTimeout>>(undefined);

  /** Reads the page; a `quiet` read (prompted by a change) does not dim the table. */
  const read = async (quiet: boolean) => {
    const n = ++reads.current;
    const mark = heard.current.mark();
    lastRead.current = Date.now();
    if (!quiet) setLoading(true);
    try {
      const res = await clients.ticketing.listTickets({
        statuses: filters.status && filters.status !== UNSOLVED ? [filters.status] : [],
        statusCategories:
          filters.status === UNSOLVED
            ? [StatusCategory.NEW, StatusCategory.OPEN, StatusCategory.PENDING, StatusCategory.ON_HOLD]
            : [],
        priorities: filters.priority ? [Number(filters.priority)] : [],
        assigneeId: filters.assignee === "me" ? me : filters.assignee,
        groupId: filters.team,
        query: filters.q,
        orderBy: filters.sort,
        pageSize: PAGE_SIZE,
        pageToken,
      });
      if (n !== reads.current) return;
      setPage({ tickets: res.tickets.map((t) => latestTicket(heard.current.get(t.id), t)), next: res.nextPageToken });
      heard.current.settled(mark);
      setError(undefined);
    } catch (err) {
      if (n === reads.current) setError(describe(err));
    } finally {
      if (n === reads.current) setLoading(false);
    }
  };

  useEffect(() => {
    heard.current.clear();
    void read(false);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, key, pageToken]);
  useEffect(() => () => clearTimeout(rereadTimer.current), []);

  // The read of the latest render: a re-read asks for the filters shown when it runs.
  const latestRead = useRef(read);
  latestRead.current = read;

  /** Reads the page again soon, at most once every `REREAD_MS`. */
  const rereadSoon = () => {
    if (rereadTimer.current !== undefined) return;
    rereadTimer.current = setTimeout(
      () => {
        rereadTimer.current = undefined;
        void latestRead.current(true);
      },
      Math.max(0, lastRead.current + REREAD_MS - Date.now()),
    );
  };

  /** Shows a ticket's new state in its row, if the page has it. */
  const replace = (t: Ticket) =>
    setPage((p) => p && { ...p, tickets: p.tickets.map((x) => (x.id === t.id ? latestTicket(x, t) : x)) });

  const streamError = useTicketChanges({
    item: (n) => {
      const t = n.ticket;
      if (t) {
        heard.current.put(t);
        replace(t);
        // Which tickets the filters, search and order now take in is the service's to say.
        rereadSoon();
      } else if (page?.tickets.some((x) => x.id === n.ticketId)) {
        // An SLA warning or breach names the ticket only: read it again.
        clients.ticketing.getTicket({ id: n.ticketId }).then((fresh) => {
          heard.current.put(fresh);
          replace(fresh);
        }, () => undefined);
      }
    },
    ready: () => void read(true),
  });

  const tickets = page?.tickets ?? [];
  const update = (patch: Partial<Filters>) => setFilters({ ...filters, ...patch });
  /** The select of one filter: `any` (no filter), then `first` and `choices`. */
  const filter = (key: FilterKey, label: string, any: string, choices: readonly Choice[], first?: React.ReactNode) => (
    <select data-testid={`ticket-filter-${key}`} aria-label={label} value={filters[key]} onChange={(e) => update({ [key]: e.target.value })}>
      <option value="">{any}</option>
      {first}
      <Options of={choices} />
    </select>
  );

  return (
    <div className="hk-page tk-list">
      <PageHeader
        title="Tickets"
        sub="Requests that need follow-up, from chats, email and the API."
        actions={
          <button className="primary" data-testid="ticket-new" onClick={() => setCreating(true)}>
            New ticket
          </button>
        }
      />
      <div className="tk-filters">
        <SearchBox value={filters.q} onSearch={(q) => update({ q })} />
        {filter("status", "Status", "All statuses", statusChoices(statuses), <option value={UNSOLVED}>Unsolved</option>)}
        {filter("priority", "Priority", "Any priority", PRIORITIES)}
        {filter(
          "assignee",
          "Assignee",
          "Any assignee",
          agentChoices(dir.agents),
          <>
            <option value="me">Assigned to me</option>
            <option value="none">Unassigned</option>
          </>,
        )}
        {filter("team", "Team", "Any team", teamChoices(dir.teams))}
        <span className="hk-grow" />
        <select aria-label="Sort" value={filters.sort} onChange={(e) => update({ sort: e.target.value })}>
          <Options of={SORTS} />
        </select>
      </div>

      {selected.size > 0 && (
        <BulkBar
          ids={[...selected]}
          statuses={statuses}
          onDone={() => {
            setSelected(new Set());
            void read(false);
          }}
          onClear={() => setSelected(new Set())}
        />
      )}

      <ListCard
        error={error ?? (streamError && `Live updates stopped: ${streamError}`)}
        loading={loading && !page}
        loadingText="Loading tickets…"
        count={tickets.length}
        empty={
          filters.q || filters.status || filters.priority || filters.assignee || filters.team
            ? "No ticket matches these filters."
            : "No tickets yet. Tickets are created from chats, by automation rules, or with “New ticket”."
        }
        wrap
        tableClass={`tk-table${loading ? " tk-stale" : ""}`}
        columns={[
          {
            label: (
              <input
                type="checkbox"
                aria-label="Select all"
                checked={tickets.every((t) => selected.has(t.id))}
                onChange={(e) => setSelected(e.target.checked ? new Set(tickets.map((t) => t.id)) : new Set())}
              />
            ),
            width: 34,
          },
          { label: "#", width: 64 },
          "Subject",
          "Status",
          "Priority",
          "Assignee",
          "Team",
          "SLA",
          "Updated",
        ]}
        after={
          (pages.length > 1 || page?.next) && (
            <div className="hk-pager">
              <span>Page {pages.length}</span>
              <button className="small" disabled={pages.length <= 1} onClick={() => setPages(pages.slice(0, -1))}>
                ← Previous
              </button>
              <button
                className="small"
                data-testid="ticket-next-page"
                disabled={!page?.next}
                onClick={() => page?.next && setPages([...pages, page.next])}
              >
                Next →
              </button>
            </div>
          )
        }
      >
        {tickets.map((t) => (
          <TicketRow
            key={t.id}
            ticket={t}
            selected={selected.has(t.id)}
            onSelect={(on) => {
              const next = new Set(selected);
              if (on) next.add(t.id);
              else next.delete(t.id);
              setSelected(next);
            }}
            assignee={dir.agentName(t.assigneeId)}
            team={dir.teamName(t.groupId)}
          />
        ))}
      </ListCard>
      {creating && <NewTicketDialog dir={dir} onClose={() => setCreating(false)} />}
    </div>
  );
}

function TicketRow(props: {
  ticket: Ticket;
  selected: boolean;
  onSelect: (on: boolean) => void;
  assignee: string;
  team: string;
}) {
  const t = props.ticket;
  const updated = toDate(t.updateTime);
  const requester = t.requester?.name || t.requester?.email;
  return (
    <tr
      className={`click${props.selected ? " selected" : ""}${isDone(t) ? " tk-done" : ""}`}
      data-testid="ticket-row"
      data-id={t.id}
      onClick={() => go("tickets", t.id)}
    >
      <td onClick={(e) => e.stopPropagation()}>
        <input
          type="checkbox"
          aria-label={`Select ticket ${t.number}`}
          checked={props.selected}
          onChange={(e) => props.onSelect(e.target.checked)}
        />
      </td>
      <td className="hk-muted">#{String(t.number)}</td>
      <td className="tk-subject-cell">
        <a href={`#/tickets/${t.id}`} className="strong" onClick={(e) => e.stopPropagation()}>
          {t.subject}
        </a>
        <span className="sub">
          {requester ? requester : "No requester"}
          {t.commentCount > 0 && ` · ${t.commentCount} comment${t.commentCount === 1 ? "" : "s"}`}
          {t.tags.length > 0 && ` · ${t.tags.map((x) => `#${x}`).join(" ")}`}
        </span>
      </td>
      <td>
        <StatusBadge category={t.statusCategory} label={t.statusLabel || t.status} />
      </td>
      <td>
        <PriorityLabel priority={t.priority} />
      </td>
      <td>{props.assignee || <span className="hk-muted">Unassigned</span>}</td>
      <td>{props.team || <span className="hk-muted">—</span>}</td>
      <td>
        <NextSla ticket={t} />
      </td>
      <td className="hk-muted" title={fullTime(updated)}>
        {ago(updated)}
      </td>
    </tr>
  );
}

/** Search as you type (after a pause) or on Enter. */
function SearchBox({ value, onSearch }: { value: string; onSearch: (q: string) => void }) {
  const [text, setText] = useState(value);
  const sent = useRef(value);
  // The URL changed by other means (back button, a link): show its search.
  useEffect(() => {
    if (value !== sent.current) {
      sent.current = value;
      setText(value);
    }
  }, [value]);
  const search = (q: string) => {
    sent.current = q;
    onSearch(q);
  };
  useEffect(() => {
    if (text.trim() === sent.current) return;
    const t = setTimeout(() => search(text.trim()), 400);
    return () => clearTimeout(t);
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [text]);
  return (
    <input
      type="search"
      className="tk-search"
      data-testid="ticket-search"
      placeholder='Search subject, description, comments ("phrase", -word)'
      value={text}
      onChange={(e) => setText(e.target.value)}
      onKeyDown={(e) => e.key === "Enter" && search(text.trim())}
    />
  );
}

/** Changes the status or priority of the selected tickets in one go. */
function BulkBar(props: { ids: string[]; statuses: Status[]; onDone: () => void; onClear: () => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [result, setResult] = useState<string>();
  const run = (patch: { status?: string; priority?: number }) =>
    act(async () => {
      const res = await clients.ticketing.bulkUpdateTickets({
        ticketIds: props.ids,
        ticket: patch,
        updateMask: { paths: Object.keys(patch) },
      });
      const failed = res.results.filter((r) => r.error);
      setResult(
        failed.length
          ? `${res.results.length - failed.length} changed; ${failed.length} left as they were: ${failed.map((f) => f.error).join("; ")}`
          : undefined,
      );
      props.onDone();
    });
  return (
    <div className="tk-bulk">
      <strong>{props.ids.length} selected</strong>
      <select
        aria-label="Set status"
        value=""
        disabled={busy}
        onChange={(e) => e.target.value && run({ status: e.target.value })}
      >
        <option value="">Set status…</option>
        <Options of={statusChoices(props.statuses)} />
      </select>
      <select
        aria-label="Set priority"
        value=""
        disabled={busy}
        onChange={(e) => e.target.value && run({ priority: Number(e.target.value) })}
      >
        <option value="">Set priority…</option>
        <Options of={PRIORITIES} />
      </select>
      <button className="ghost small" onClick={props.onClear}>
        Clear selection
      </button>
      <FormErrors error={error} />
      {result && <span className="hk-small">{result}</span>}
    </div>
  );
}
