// The Tickets page: the list (`#/tickets?…filters`) or one ticket (`#/tickets/<id>`).

import { useWorkbench } from "../context";
import { useRoute } from "../route";
import { ErrorLine, useLoad } from "../ui";
import { TicketDetail } from "../tickets/TicketDetail";
import { TicketList } from "../tickets/TicketList";

/** The ticket list, or one ticket. */
export function Tickets() {
  const { clients } = useWorkbench();
  const route = useRoute();
  const statuses = useLoad(() => clients.ticketing.listStatuses({}).then((r) => r.statuses), [clients]);
  if (statuses.error && !statuses.data)
    return (
      <div className="hk-page">
        <ErrorLine error={statuses.error} />
      </div>
    );
  const list = statuses.data ?? [];
  return route.id ? <TicketDetail key={route.id} id={route.id} statuses={list} /> : <TicketList query={route.query} statuses={list} />;
}
