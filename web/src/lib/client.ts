// Typed clients of the platform's five services over grpc-web.
//
// Each service listens on its own port (see the platform's architecture); the page
// learns their addresses from `config.json` next to it, which `helpdesk up` (or
// `helpdesk web`) writes from the request's host, so a browser on another machine
// reaches the same hosts it loaded the page from.

import type { DescService } from "@bufbuild/protobuf";
import { createClient, type Client, type Interceptor } from "@connectrpc/connect";
import { createGrpcWebTransport } from "@connectrpc/connect-web";
import { AutomationService } from "../gen/helpdesk/automation/v1/automation_pb";
import { ConversationService } from "../gen/helpdesk/conversation/v1/conversation_pb";
import { NotificationService } from "../gen/helpdesk/notification/v1/notification_pb";
import { RoutingService } from "../gen/helpdesk/routing/v1/routing_pb";
import { TicketingService } from "../gen/helpdesk/ticketing/v1/ticketing_pb";

/** Base URLs of the services' grpc-web endpoints. */
export interface Endpoints {
  conversation: string;
  routing: string;
  ticketing: string;
  automation: string;
  notification: string;
}

/** The services' default ports, used when no `config.json` is served (a dev server). */
const DEFAULT_PORTS: Record<keyof Endpoints, number> = {
  conversation: 50051,
  routing: 50052,
  ticketing: 50053,
  automation: 50054,
  notification: 50055,
};

/** Reads `config.json` from `base` (a URL ending in `/`), else assumes default ports. */
export async function loadEndpoints(base: string): Promise<Endpoints> {
  try {
    const res = await fetch(new URL("config.json", base), { cache: "no-store" });
    if (res.ok) {
      const body = (await res.json()) as { services?: Partial<Endpoints> };
      if (body.services?.conversation) return body.services as Endpoints;
    }
  } catch {
    // Falls through to the defaults.
  }
  const host = new URL(base).hostname;
  const out = {} as Endpoints;
  for (const [name, port] of Object.entries(DEFAULT_PORTS)) {
    out[name as keyof Endpoints] = `${location.protocol}//${host}:${port}`;
  }
  return out;
}

/** One client per service. */
export interface Clients {
  conversation: Client<typeof ConversationService>;
  routing: Client<typeof RoutingService>;
  ticketing: Client<typeof TicketingService>;
  automation: Client<typeof AutomationService>;
  notification: Client<typeof NotificationService>;
}

/** A client of one service that sends `Bearer <token()>` on every call (when set). */
function makeClient<S extends DescService>(
  service: S,
  baseUrl: string,
  token: () => string | undefined,
): Client<S> {
  const auth: Interceptor = (next) => async (req) => {
    const t = token();
    if (t) req.header.set("authorization", `Bearer ${t}`);
    return next(req);
  };
  return createClient(service, createGrpcWebTransport({ baseUrl, interceptors: [auth] }));
}

/** Clients of every service, for staff. */
export function makeClients(endpoints: Endpoints, token: () => string | undefined): Clients {
  return {
    conversation: makeClient(ConversationService, endpoints.conversation, token),
    routing: makeClient(RoutingService, endpoints.routing, token),
    ticketing: makeClient(TicketingService, endpoints.ticketing, token),
    automation: makeClient(AutomationService, endpoints.automation, token),
    notification: makeClient(NotificationService, endpoints.notification, token),
  };
}

/** What a visitor calls: its chat, its place in the queue, its tickets. */
export type VisitorClients = Pick<Clients, "conversation" | "routing" | "ticketing">;

/** The visitor's clients (the widget carries no other service's code). */
export function makeVisitorClients(endpoints: Endpoints, token: () => string | undefined): VisitorClients {
  return {
    conversation: makeClient(ConversationService, endpoints.conversation, token),
    routing: makeClient(RoutingService, endpoints.routing, token),
    ticketing: makeClient(TicketingService, endpoints.ticketing, token),
  };
}

/**
 * Every item of a paged list: `page` asks for the page at a token (starting with ""),
 * `items` picks the items out of the answer, until the answer has no next page.
 */
export async function readAll<R extends { nextPageToken: string }, T>(
  page: (pageToken: string) => Promise<R>,
  items: (res: R) => T[],
): Promise<T[]> {
  const out: T[] = [];
  let pageToken = "";
  do {
    const res = await page(pageToken);
    out.push(...items(res));
    pageToken = res.nextPageToken;
  } while (pageToken);
  return out;
}
