// The account's ticket changes as they happen, for the views that show tickets: the
// list, one ticket, and the tickets linked to a chat.

import type { Ticket, TicketChangeNotice } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { hubOf, useShared, type Listener } from "../chat/hub";
import { useWorkbench } from "../context";

/** The copy of a ticket to keep: `heard`, unless `known` was changed later. */
export function latestTicket(known: Ticket | undefined, heard: Ticket): Ticket {
  const a = known?.updateTime;
  const b = heard.updateTime;
  if (!a || !b) return heard;
  return a.seconds > b.seconds || (a.seconds === b.seconds && a.nanos > b.nanos) ? known : heard;
}

/**
 * Listens to every change of the account's tickets while the component is shown (one
 * stream shared by all views). `ready` is called when the stream was (re)established
 * after the listener joined: changes may have been missed, so the view reads again.
 * Returns the stream's error once it stopped for good.
 */
export function useTicketChanges(listener: Listener<TicketChangeNotice>): string | undefined {
  const { clients } = useWorkbench();
  return useShared(hubOf(clients).tickets, listener);
}

/**
 * Tickets heard of on the stream while a view's read may have been under way, so that
 * a read answered with an older copy does not undo what was heard since.
 */
export class HeardTickets {
  private byId = new Map<string, { ticket: Ticket; at: number }>();
  private count = 0;

  /** Records a ticket as heard now. */
  put(t: Ticket) {
    this.byId.set(t.id, { ticket: latestTicket(this.byId.get(t.id)?.ticket, t), at: ++this.count });
  }

  get(id: string): Ticket | undefined {
    return this.byId.get(id)?.ticket;
  }

  has(id: string): boolean {
    return this.byId.has(id);
  }

  all(): Ticket[] {
    return [...this.byId.values()].map((h) => h.ticket);
  }

  /** A mark to pass to `settled` when a read starts. */
  mark(): number {
    return this.count;
  }

  /** A read started at `mark` has answered: what was heard before it is in the answer. */
  settled(mark: number) {
    for (const [id, h] of this.byId) if (h.at <= mark) this.byId.delete(id);
  }

  clear() {
    this.byId.clear();
  }
}
