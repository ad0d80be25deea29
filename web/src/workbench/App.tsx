// The workbench: sign-in, then the navigation and the page the URL names.

import { useEffect, useMemo, useState } from "react";
import { loadEndpoints, makeClients, type Endpoints } from "../lib/client";
import { claimsOf, savedToken, saveToken } from "../lib/session";
import { WorkbenchContext, type Workbench } from "./context";
import { useRoute } from "./route";
import { SignIn } from "./SignIn";
import { Conversations } from "./pages/Conversations";
import { Queue } from "./pages/Queue";
import { Tickets } from "./pages/Tickets";
import { Notifications, NotificationBell } from "./pages/Notifications";
import { Supervisor } from "./pages/Supervisor";
import { Admin } from "./pages/Admin";
import { PresenceSwitch } from "./pages/Presence";

interface Page {
  key: string;
  title: string;
  /** Roles that see the page (all staff when unset). */
  roles?: string[];
  render: () => React.ReactNode;
}

const PAGES: Page[] = [
  { key: "conversations", title: "Conversations", render: () => <Conversations /> },
  { key: "queue", title: "Queue", render: () => <Queue /> },
  { key: "tickets", title: "Tickets", render: () => <Tickets /> },
  { key: "notifications", title: "Notifications", render: () => <Notifications /> },
  { key: "supervisor", title: "Supervisor", roles: ["supervisor", "admin"], render: () => <Supervisor /> },
  { key: "admin", title: "Admin", roles: ["admin"], render: () => <Admin /> },
];

export function App() {
  const [endpoints, setEndpoints] = useState<Endpoints>();
  const [token, setToken] = useState(savedToken);
  useEffect(() => {
    loadEndpoints(new URL(".", location.href).href).then(setEndpoints);
  }, []);
  const claims = token ? claimsOf(token) : undefined;
  const workbench = useMemo<Workbench | undefined>(() => {
    if (!endpoints || !token || !claims) return undefined;
    return {
      clients: makeClients(endpoints, () => token),
      claims,
      me: claims.sub,
      signOut: () => {
        saveToken(undefined);
        setToken(undefined);
      },
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [endpoints, token]);

  if (!endpoints) return <div className="loading">Loading…</div>;
  if (!workbench) {
    return (
      <SignIn
        onToken={(t) => {
          saveToken(t);
          setToken(t);
        }}
      />
    );
  }
  return (
    <WorkbenchContext.Provider value={workbench}>
      <Shell />
    </WorkbenchContext.Provider>
  );
}

function Shell() {
  const route = useRoute();
  return (
    <WorkbenchContext.Consumer>
      {(w) => {
        const pages = PAGES.filter((p) => !p.roles || p.roles.includes(w!.claims.role));
        const page = pages.find((p) => p.key === route.page) ?? pages[0];
        return (
          <div className="shell">
            <header className="topbar">
              <span className="brand">Helpdesk</span>
              <span className="account" data-testid="account">
                {w!.claims.account}
              </span>
              <span className="spacer" />
              <PresenceSwitch />
              <NotificationBell />
              <span className="me" data-testid="me">
                {w!.me} · {w!.claims.role}
              </span>
              <button className="link" onClick={w!.signOut}>
                Sign out
              </button>
            </header>
            <nav className="sidenav">
              {pages.map((p) => (
                <a
                  key={p.key}
                  href={`#/${p.key}`}
                  className={p === page ? "active" : undefined}
                  data-testid={`nav-${p.key}`}
                >
                  {p.title}
                </a>
              ))}
            </nav>
            <main className="content">{page.render()}</main>
          </div>
        );
      }}
    </WorkbenchContext.Consumer>
  );
}
