// A staff member's token, kept in the browser, and what it says about them.

/** Claims the platform puts in its JWTs. */
export interface Claims {
  account: string;
  sub: string;
  role: "admin" | "supervisor" | "agent" | "visitor" | "integration";
  exp: number;
}

/** Reads a JWT's claims without checking it (the services check every call). */
export function claimsOf(token: string): Claims | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/"));
    const c = JSON.parse(json) as { acct?: string; sub?: string; role?: Claims["role"]; exp?: number };
    const account = c.acct;
    if (!account || !c.sub || !c.role) return undefined;
    return { account, sub: c.sub, role: c.role, exp: c.exp ?? 0 } as Claims;
  } catch {
    return undefined;
  }
}

const KEY = "helpdesk.workbench.token";

export function savedToken(): string | undefined {
  const t = localStorage.getItem(KEY) ?? undefined;
  const c = t ? claimsOf(t) : undefined;
  if (!t || !c || (c.exp && c.exp * 1000 < Date.now())) return undefined;
  return t;
}

export function saveToken(token: string | undefined): void {
  if (token) localStorage.setItem(KEY, token);
  else localStorage.removeItem(KEY);
}
