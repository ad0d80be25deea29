// What the widget remembers in the visitor's browser, per inbox: the visitor token, the
// conversation it is in, what the visitor typed about themselves, and the names of the
// agents met so far (the visitor cannot read the agent directory).

/** A visitor's saved state for one inbox. */
export interface VisitorSession {
  /** The visitor token `StartConversation` returned. */
  token: string;
  /** When the token stops working (ms since the epoch; 0: unknown). */
  expiresAt: number;
  /** The conversation the widget shows; empty once the visitor chose to start anew. */
  conversationId: string;
  name: string;
  email: string;
  /** Agent id → the name the platform announced ("Ana joined the conversation"). */
  agents: Record<string, string>;
}

const PREFIX = "helpdesk.widget.";

function storageKey(inboxKey: string): string {
  return PREFIX + inboxKey;
}

/** The saved session of `inboxKey`, unless missing, unreadable or expired. */
export function loadSession(inboxKey: string): VisitorSession | undefined {
  let raw: string | null = null;
  try {
    raw = localStorage.getItem(storageKey(inboxKey));
  } catch {
    return undefined; // storage blocked (privacy settings): every visit starts afresh
  }
  if (!raw) return undefined;
  try {
    const s = JSON.parse(raw) as Partial<VisitorSession>;
    if (typeof s.token !== "string" || !s.token) return undefined;
    const expiresAt = typeof s.expiresAt === "number" ? s.expiresAt : 0;
    if (expiresAt && expiresAt <= Date.now()) {
      clearSession(inboxKey);
      return undefined;
    }
    return {
      token: s.token,
      expiresAt,
      conversationId: typeof s.conversationId === "string" ? s.conversationId : "",
      name: typeof s.name === "string" ? s.name : "",
      email: typeof s.email === "string" ? s.email : "",
      agents: s.agents && typeof s.agents === "object" ? s.agents : {},
    };
  } catch {
    return undefined;
  }
}

/** Saves the session of `inboxKey`. */
export function saveSession(inboxKey: string, session: VisitorSession): void {
  try {
    localStorage.setItem(storageKey(inboxKey), JSON.stringify(session));
  } catch {
    // Storage blocked or full: the chat goes on, it just will not survive a reload.
  }
}

/** Forgets the session of `inboxKey`. */
export function clearSession(inboxKey: string): void {
  try {
    localStorage.removeItem(storageKey(inboxKey));
  } catch {
    // Nothing saved, nothing to forget.
  }
}
