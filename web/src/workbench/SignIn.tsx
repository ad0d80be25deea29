// Sign-in with a token that an operator minted (`helpdesk token ...`).

import { useState } from "react";
import { claimsOf } from "../lib/session";

export function SignIn({ onToken }: { onToken: (token: string) => void }) {
  const [text, setText] = useState("");
  const [error, setError] = useState<string>();
  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    const token = text.trim();
    const claims = claimsOf(token);
    if (!claims) return setError("That is not a helpdesk token.");
    if (claims.role === "visitor" || claims.role === "integration")
      return setError("The workbench is for staff: use an admin, supervisor or agent token.");
    if (claims.exp && claims.exp * 1000 < Date.now()) return setError("That token has expired.");
    onToken(token);
  };
  return (
    <form className="signin" onSubmit={submit}>
      <h1>Helpdesk workbench</h1>
      <p>
        Paste your access token. An operator mints one with
        <code> helpdesk token --account &lt;account&gt; --role agent --subject &lt;your agent id&gt;</code>.
      </p>
      <textarea
        data-testid="token"
        value={text}
        onChange={(e) => setText(e.target.value)}
        rows={5}
        placeholder="eyJ…"
      />
      {error && <p className="error">{error}</p>}
      <button type="submit" data-testid="sign-in">
        Sign in
      </button>
    </form>
  );
}
