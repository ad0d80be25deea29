// The account's teams and agents, read once per page, for names and pickers.

import { useMemo } from "react";
import type { Agent, Team } from "../../gen/helpdesk/routing/v1/routing_pb";
import { readAll, type Clients } from "../../lib/client";
import { useWorkbench } from "../context";
import { useLoad } from "../ui";

/** Teams and agents with lookups by id. */
export interface Directory {
  teams: Team[];
  agents: Agent[];
  loading: boolean;
  error?: string;
  teamName: (id: string) => string;
  agentName: (id: string) => string;
  reload: () => void;
}

/** Every agent of the account (all pages). */
export function listAllAgents(clients: Clients): Promise<Agent[]> {
  return readAll((pageToken) => clients.routing.listAgents({ pageSize: 100, pageToken }), (r) => r.agents);
}

/** Teams as [id, name] pairs, for `Options` and `CheckList`. */
export function teamChoices(teams: Team[]): [string, string][] {
  return teams.map((t) => [t.id, t.name]);
}

/** Agents as [id, name] pairs (the id when the name is empty), for `Options`. */
export function agentChoices(agents: Agent[]): [string, string][] {
  return agents.map((a) => [a.id, a.name || a.id]);
}

/** Loads the directory when the component mounts. */
export function useDirectory(): Directory {
  const { clients } = useWorkbench();
  const loaded = useLoad(async () => {
    const [teams, agents] = await Promise.all([clients.routing.listTeams({}).then((r) => r.teams), listAllAgents(clients)]);
    return { teams, agents };
  }, [clients]);
  const { data, loading, error, reload } = loaded;
  return useMemo(() => {
    const teams = data?.teams ?? [];
    const agents = data?.agents ?? [];
    const teamById = new Map(teams.map((t) => [t.id, t.name]));
    const agentById = new Map(agents.map((a) => [a.id, a.name || a.id]));
    return {
      teams,
      agents,
      loading,
      error,
      reload,
      teamName: (id: string) => (id ? teamById.get(id) ?? shortId(id) : ""),
      agentName: (id: string) => (id ? agentById.get(id) ?? id : ""),
    };
  }, [data, loading, error, reload]);
}

/** The first characters of a long generated id. */
function shortId(id: string): string {
  return id.length > 12 ? `${id.slice(0, 8)}…` : id;
}
