// What every page of the workbench is given: the signed-in staff member and clients.

import { createContext, useContext } from "react";
import type { Clients } from "../lib/client";
import type { Claims } from "../lib/session";

export interface Workbench {
  clients: Clients;
  claims: Claims;
  /** Staff id of the signed-in person (the token's subject). */
  me: string;
  signOut: () => void;
}

export const WorkbenchContext = createContext<Workbench | null>(null);

export function useWorkbench(): Workbench {
  const w = useContext(WorkbenchContext);
  if (!w) throw new Error("useWorkbench outside the workbench");
  return w;
}
