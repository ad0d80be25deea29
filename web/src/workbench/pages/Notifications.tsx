// The signed-in person's notifications: the bell with the unread count in the top bar
// (which also plays the sound and shows the desktop notification each one asks for),
// and the page listing them with the preferences per kind.

import { useEffect, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  NotificationKind,
  type AgentNotification,
  type NotificationPreference,
} from "../../gen/helpdesk/notification/v1/notification_pb";
import { clock } from "../../lib/time";
import { describe } from "../../lib/errors";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Empty, ErrorLine, useAction, useDebounced } from "../ui";
import { hubOf, useShared } from "../chat/hub";
import { askDesktopPermission, beep, desktopPermission, showDesktop, testBeep } from "../chat/alerts";
import { AlertIcon, AtIcon, ChatIcon, ClockIcon, MailIcon, QueueIcon, TicketIcon, TransferIcon } from "../chat/icons";
import "../chat/chat.css";

const KINDS: { kind: NotificationKind; label: string; Icon: typeof ChatIcon }[] = [
  { kind: NotificationKind.ASSIGNMENT, label: "Conversation assigned to me", Icon: ChatIcon },
  { kind: NotificationKind.TRANSFER_OFFER, label: "Transfer offered to me", Icon: TransferIcon },
  { kind: NotificationKind.MENTION, label: "Mentioned in a note", Icon: AtIcon },
  { kind: NotificationKind.MESSAGE_WHILE_AWAY, label: "Customer wrote while I was away", Icon: MailIcon },
  { kind: NotificationKind.SLA_WARNING, label: "Ticket SLA close to due", Icon: ClockIcon },
  { kind: NotificationKind.SLA_BREACH, label: "Ticket SLA breached", Icon: AlertIcon },
  { kind: NotificationKind.QUEUE_OVERFLOW, label: "Queue overflowed", Icon: QueueIcon },
  { kind: NotificationKind.TICKET_ASSIGNED, label: "Ticket assigned to me", Icon: TicketIcon },
];

function kindOf(k: NotificationKind) {
  return KINDS.find((x) => x.kind === k) ?? { kind: k, label: "Notification", Icon: ChatIcon };
}

/** Where a notification leads. */
function openTarget(n: AgentNotification) {
  if (n.conversationId) go("conversations", n.conversationId);
  else if (n.ticketId) go("tickets", n.ticketId);
}

/** How long ago something happened, in few words. */
function ago(ms: number): string {
  const s = Math.max(0, Math.round((Date.now() - ms) / 1000));
  if (s < 60) return "just now";
  if (s < 3600) return `${Math.floor(s / 60)} min ago`;
  if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
  return "";
}

/** The bell in the top bar: the unread count, live; sound and desktop alerts. */
export function NotificationBell() {
  const { clients } = useWorkbench();
  const hub = hubOf(clients);
  const [unread, setUnread] = useState<number>();
  const error = useShared(hub.notifications, {
    item: (u) => {
      setUnread(Number(u.unreadCount));
      const n = u.notification;
      if (!n || n.read) return;
      const changed = n.updateTime ? timestampDate(n.updateTime).getTime() : Date.now();
      if (Date.now() - changed > 60_000) return;
      if (n.sound) beep();
      if (n.desktop && (document.hidden || !document.hasFocus())) {
        showDesktop(n.title, n.body, n.id, () => openTarget(n));
      }
    },
  });
  const count = unread ?? 0;
  return (
    <a
      href="#/notifications"
      className={`nt-bell${count ? " nt-has" : ""}`}
      data-testid="notification-bell"
      title={error ? `Notifications: ${error}` : `${count} unread notification${count === 1 ? "" : "s"}`}
      aria-label={`Notifications, ${count} unread`}
    >
      <svg viewBox="0 0 24 24" width="18" height="18" aria-hidden>
        <path
          fill="currentColor"
          d="M12 22a2.5 2.5 0 0 0 2.45-2h-4.9A2.5 2.5 0 0 0 12 22Zm7-6V11a7 7 0 0 0-5.5-6.84V3.5a1.5 1.5 0 0 0-3 0v.66A7 7 0 0 0 5 11v5l-2 2v1h18v-1l-2-2Z"
        />
      </svg>
      <span className="nt-count" data-testid="notification-count" hidden={!count}>
        {count > 99 ? "99+" : count}
      </span>
    </a>
  );
}

/** The notifications page: the list, mark read, and the preferences. */
export function Notifications() {
  const { clients } = useWorkbench();
  const hub = hubOf(clients);
  const [unreadOnly, setUnreadOnly] = useState(false);
  const [items, setItems] = useState<AgentNotification[]>([]);
  const [next, setNext] = useState("");
  const [unread, setUnread] = useState(0);
  const [loading, setLoading] = useState(true);
  const [loadError, setLoadError] = useState<string>();
  const [act, actError, busy] = useAction();

  const load = async (pageToken = "") => {
    setLoading(true);
    try {
      const page = await clients.notification.listNotifications({ unreadOnly, pageSize: 30, pageToken });
      setItems((old) => (pageToken ? [...old, ...page.notifications.filter((n) => !old.some((o) => o.id === n.id))] : page.notifications));
      setNext(page.nextPageToken);
      setUnread(Number(page.unreadCount));
      setLoadError(undefined);
    } catch (err) {
      setLoadError(describe(err));
    } finally {
      setLoading(false);
    }
  };
  useEffect(() => {
    void load();
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [clients, unreadOnly]);
  const reloadSoon = useDebounced(() => void load(), 300);

  const streamError = useShared(hub.notifications, {
    item: (u) => {
      setUnread(Number(u.unreadCount));
      const n = u.notification;
      if (n) {
        setItems((old) => [n, ...old.filter((o) => o.id !== n.id)]);
      } else if (Number(u.unreadCount) !== items.filter((i) => !i.read).length) {
        // Read elsewhere (another tab or device): which ones, only the list knows.
        reloadSoon();
      }
    },
    ready: reloadSoon,
  });

  const markRead = (ids: string[]) =>
    act(async () => {
      const r = await clients.notification.markRead({ ids });
      setUnread(Number(r.unreadCount));
      setItems((old) =>
        unreadOnly ? old.filter((n) => !ids.includes(n.id)) : old.map((n) => (ids.includes(n.id) ? { ...n, read: true } : n)),
      );
    });

  return (
    <div className="page nt-page">
      <div className="nt-head">
        <h2>Notifications</h2>
        <span className="muted">{unread} unread</span>
        <span className="spacer" />
        <div className="ch-segment" role="group" aria-label="Show">
          <button className={!unreadOnly ? "on" : undefined} onClick={() => setUnreadOnly(false)}>
            All
          </button>
          <button className={unreadOnly ? "on" : undefined} onClick={() => setUnreadOnly(true)}>
            Unread
          </button>
        </div>
        <button
          data-testid="mark-all-read"
          disabled={busy || unread === 0}
          onClick={() =>
            void act(async () => {
              const r = await clients.notification.markAllRead({});
              setUnread(Number(r.unreadCount));
              setItems((old) => (unreadOnly ? [] : old.map((n) => ({ ...n, read: true }))));
            })
          }
        >
          Mark all read
        </button>
      </div>
      <ErrorLine error={loadError ?? actError ?? streamError} />
      <div className="nt-columns">
        <div className="nt-list">
          {items.map((n) => (
            <NotificationRow key={n.id} n={n} onRead={() => void markRead([n.id])} />
          ))}
          {!items.length && !loading && !loadError && (
            <Empty>{unreadOnly ? "Nothing unread. You are all caught up." : "No notifications yet."}</Empty>
          )}
          {loading && !items.length && <p className="muted nt-pad">Loading notifications…</p>}
          {next && (
            <button className="nt-more" disabled={loading} onClick={() => void load(next)}>
              {loading ? "Loading…" : "Show older"}
            </button>
          )}
        </div>
        <Preferences />
      </div>
    </div>
  );
}

function NotificationRow({ n, onRead }: { n: AgentNotification; onRead: () => void }) {
  const k = kindOf(n.kind);
  const time = n.updateTime ?? n.createTime;
  const when = time ? timestampDate(time).getTime() : 0;
  const target = n.conversationId ? "Open conversation" : n.ticketId ? "Open ticket" : "";
  return (
    <article
      className={`nt-row${n.read ? "" : " nt-unread"}`}
      data-testid="notification-row"
      data-id={n.id}
      data-read={n.read ? "true" : "false"}
    >
      <span className={`nt-icon nt-k${n.kind}`}>
        <k.Icon size={16} />
      </span>
      <div className="nt-main">
        <div className="nt-title">
          {n.title || k.label}
          {n.count > 1 && <span className="nt-times">×{n.count}</span>}
        </div>
        {n.body && <div className="nt-body">{n.body}</div>}
        <div className="nt-meta">
          <span title={time ? timestampDate(time).toLocaleString() : undefined}>{ago(when) || clock(time)}</span>
          <span>·</span>
          <span>{k.label}</span>
        </div>
      </div>
      <div className="nt-actions">
        {target && (
          <button
            className="link"
            onClick={() => {
              if (!n.read) onRead();
              openTarget(n);
            }}
          >
            {target}
          </button>
        )}
        {!n.read && (
          <button className="link nt-mark" onClick={onRead} title="Mark read">
            Mark read
          </button>
        )}
      </div>
    </article>
  );
}

/** Per kind: in the workbench, by email, with a sound, as a desktop notification. */
function Preferences() {
  const { clients } = useWorkbench();
  const [prefs, setPrefs] = useState<NotificationPreference[]>();
  const [dirty, setDirty] = useState(false);
  const [saved, setSaved] = useState(false);
  const [loadError, setLoadError] = useState<string>();
  const [permission, setPermission] = useState(desktopPermission);
  const [act, error, busy] = useAction();

  useEffect(() => {
    clients.notification.getNotificationPreferences({}).then(
      (p) => setPrefs(p.preferences),
      (err) => setLoadError(describe(err)),
    );
  }, [clients]);

  const toggle = (kind: NotificationKind, field: "inApp" | "email" | "sound" | "desktop") => {
    setPrefs((old) => old?.map((p) => (p.kind === kind ? { ...p, [field]: !p[field] } : p)));
    setDirty(true);
    setSaved(false);
  };

  return (
    <aside className="nt-prefs">
      <h3>Preferences</h3>
      <p className="muted">How each kind of notification reaches you.</p>
      <ErrorLine error={loadError ?? error} />
      {prefs && (
        <table className="nt-table">
          <thead>
            <tr>
              <th />
              <th title="In the workbench">App</th>
              <th>Email</th>
              <th>Sound</th>
              <th>Desktop</th>
            </tr>
          </thead>
          <tbody>
            {KINDS.map(({ kind, label }) => {
              const p = prefs.find((x) => x.kind === kind);
              if (!p) return null;
              return (
                <tr key={kind}>
                  <td>{label}</td>
                  {(["inApp", "email", "sound", "desktop"] as const).map((f) => (
                    <td key={f}>
                      <input
                        type="checkbox"
                        aria-label={`${label}: ${f === "inApp" ? "in the workbench" : f}`}
                        checked={p[f]}
                        onChange={() => toggle(kind, f)}
                      />
                    </td>
                  ))}
                </tr>
              );
            })}
          </tbody>
        </table>
      )}
      {!prefs && !loadError && <p className="muted">Loading…</p>}
      <div className="nt-pref-actions">
        <button
          className="primary"
          disabled={!dirty || busy}
          onClick={() =>
            void act(async () => {
              const p = await clients.notification.updateNotificationPreferences({ preferences: prefs });
              setPrefs(p.preferences);
              setDirty(false);
              setSaved(true);
            })
          }
        >
          Save preferences
        </button>
        {saved && <span className="muted">Saved.</span>}
      </div>
      <div className="nt-device">
        <div>
          <strong>This browser</strong>
          <div className="muted">
            {permission === "granted" && "Desktop notifications are on."}
            {permission === "denied" && "Desktop notifications are blocked in the browser's site settings."}
            {permission === "default" && "Desktop notifications need your permission."}
            {permission === "unsupported" && "This browser cannot show desktop notifications."}
          </div>
        </div>
        <div className="nt-device-actions">
          {permission === "default" && (
            <button onClick={() => void askDesktopPermission().then(setPermission)}>Allow desktop notifications</button>
          )}
          <button onClick={testBeep} title="Play the notification sound">
            Test sound
          </button>
        </div>
      </div>
    </aside>
  );
}
