// The Admin page: the account's configuration, one section per `#/admin/<section>`
// (and `#/admin/<section>/<id>` for one item of it).

import { useRoute } from "../route";
import { AutomationAdmin } from "../admin/Automation";
import { AgentsAdmin } from "../admin/Agents";
import { HoursAdmin } from "../admin/Hours";
import { InboxesAdmin } from "../admin/Inboxes";
import { MacrosAdmin } from "../admin/Macros";
import { RoutingAdmin } from "../admin/Routing";
import { SlaAdmin } from "../admin/Sla";
import { TeamsAdmin } from "../admin/Teams";
import { WebhooksAdmin } from "../admin/Webhooks";
import "../admin/admin.css";

interface Section {
  key: string;
  title: string;
  hint: string;
  render: (id: string | undefined, query: URLSearchParams) => React.ReactNode;
}

const SECTIONS: Section[] = [
  { key: "inboxes", title: "Inboxes", hint: "Widgets, greetings, bots", render: (id) => <InboxesAdmin id={id} /> },
  { key: "teams", title: "Teams", hint: "Groups and their queues", render: () => <TeamsAdmin /> },
  { key: "agents", title: "Agents & skills", hint: "People, capacity, skills", render: (id) => <AgentsAdmin id={id} /> },
  { key: "hours", title: "Business hours", hint: "Opening times, holidays", render: (_, q) => <HoursAdmin query={q} /> },
  { key: "routing", title: "Routing", hint: "Rules, strategy, overflow", render: () => <RoutingAdmin /> },
  { key: "automation", title: "Automation", hint: "Rules and their runs", render: (id) => <AutomationAdmin id={id} /> },
  { key: "macros", title: "Macros", hint: "One-click actions", render: (id) => <MacrosAdmin id={id} /> },
  { key: "webhooks", title: "Webhooks", hint: "Events to your systems", render: (id) => <WebhooksAdmin id={id} /> },
  { key: "sla", title: "SLA & tickets", hint: "Policies, calendars, statuses", render: () => <SlaAdmin /> },
];

/** The admin section navigation and the section the URL names. */
export function Admin() {
  const route = useRoute();
  const [key, ...rest] = (route.id ?? "").split("/");
  const section = SECTIONS.find((s) => s.key === key) ?? SECTIONS[0];
  const id = rest.join("/") || undefined;
  return (
    <div className="adm">
      <nav className="adm-nav" aria-label="Admin sections">
        <div className="adm-nav-title">Settings</div>
        {SECTIONS.map((s) => (
          <a
            key={s.key}
            href={`#/admin/${s.key}`}
            className={s === section ? "active" : undefined}
            data-testid={`admin-nav-${s.key}`}
          >
            <span>{s.title}</span>
            <small>{s.hint}</small>
          </a>
        ))}
      </nav>
      <div className="adm-content" key={section.key}>
        {section.render(id, route.query)}
      </div>
    </div>
  );
}
