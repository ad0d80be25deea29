// Admin → Teams: the teams with their members and ratings, and a new team.

import { useState } from "react";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { useAction } from "../ui";
import { useDirectory } from "./directory";
import { ago, Card, Field, fieldError, FormErrors, ListCard, PageHeader } from "./forms";

/** The Teams section. */
export function TeamsAdmin() {
  const { clients } = useWorkbench();
  const dir = useDirectory();
  const [name, setName] = useState("");
  const [touched, setTouched] = useState(false);
  const [created, setCreated] = useState<string>();
  const [act, error, busy] = useAction();
  const taken = dir.teams.some((t) => t.name.toLowerCase() === name.trim().toLowerCase());
  const problem = touched && !name.trim() ? "A name is required." : taken ? "A team has this name already." : undefined;

  const save = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!name.trim() || taken) return;
    act(async () => {
      const t = await clients.routing.createTeam({ team: { name: name.trim() } });
      setCreated(t.name);
      setName("");
      setTouched(false);
      dir.reload();
    });
  };

  return (
    <div className="hk-page">
      <PageHeader title="Teams" sub="Each team has its own queue; routing rules send chats to it and only its members serve it." />
      <Card title="New team">
        <form className="hk-row" onSubmit={save} style={{ alignItems: "flex-start" }}>
          <div style={{ flex: "0 1 360px" }}>
            <Field label="Name" error={problem ?? fieldError(error, "name")}>
              <input data-testid="team-name" value={name} maxLength={100} placeholder="e.g. Billing" onChange={(e) => setName(e.target.value)} />
            </Field>
          </div>
          <button type="submit" className="primary" data-testid="team-save" disabled={busy} style={{ marginTop: 23 }}>
            {busy ? "Creating…" : "Create team"}
          </button>
          {created && (
            <span className="adm-saved" style={{ marginTop: 29 }}>
              “{created}” created
            </span>
          )}
        </form>
        <FormErrors error={fieldError(error, "name") ? undefined : error} />
      </Card>
      <ListCard
        title="Teams"
        sub={`${dir.teams.length}`}
        error={dir.error}
        loading={dir.loading && dir.teams.length === 0}
        loadingText="Loading teams…"
        count={dir.teams.length}
        empty="No teams yet. Without teams, every chat waits in one account-wide queue."
        columns={["Name", "Members", { label: "CSAT", num: true }, "Created", "Id"]}
      >
        {[...dir.teams]
          .sort((a, b) => a.name.localeCompare(b.name))
          .map((t) => {
            const members = dir.agents.filter((a) => a.teamIds.includes(t.id));
            return (
              <tr key={t.id} data-testid="team-row" data-id={t.id}>
                <td className="strong">{t.name}</td>
                <td>
                  {members.length === 0 ? (
                    <span className="hk-muted">No members — add them under Agents</span>
                  ) : (
                    <div className="adm-tags">
                      {members.map((m) => (
                        <a key={m.id} className="adm-tag" href={`#/admin/agents/${encodeURIComponent(m.id)}`}>
                          {m.name || m.id}
                        </a>
                      ))}
                    </div>
                  )}
                </td>
                <td className="num">{t.csatCount > 0n ? `${t.csatAverage.toFixed(2)} (${t.csatCount})` : "—"}</td>
                <td className="hk-muted">{ago(toDate(t.createTime))}</td>
                <td>
                  <code className="hk-small">{t.id}</code>
                </td>
              </tr>
            );
          })}
      </ListCard>
    </div>
  );
}
