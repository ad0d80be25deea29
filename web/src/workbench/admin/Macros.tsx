// Admin → Macros: named sets of actions staff apply to a conversation with one click.

import { useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import type { Action, Macro } from "../../gen/helpdesk/automation/v1/automation_pb";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Empty, ErrorLine, useAction, useLoad } from "../ui";
import { type ActionContext, ActionsEditor, actionSummary } from "./actions";
import { useActionContext } from "./Automation";
import { ago, Card, Field, fieldError, FormErrors, PageHeader } from "./forms";

/** The Macros section: the list, `new`, or one macro by id. */
export function MacrosAdmin({ id }: { id?: string }) {
  const { clients } = useWorkbench();
  const ctx = useActionContext();
  const macros = useLoad(async () => {
    const out: Macro[] = [];
    let pageToken = "";
    do {
      const res = await clients.automation.listMacros({ pageSize: 100, pageToken });
      out.push(...res.macros);
      pageToken = res.nextPageToken;
    } while (pageToken);
    return out;
  }, [clients]);
  if (id) {
    if (id === "new") return <MacroEditor ctx={ctx} onSaved={macros.reload} />;
    const macro = macros.data?.find((m) => m.id === id);
    if (!macro)
      return (
        <div className="hk-page">
          <a className="hk-back" href="#/admin/macros">
            ← Macros
          </a>
          {macros.loading ? <div className="hk-loading">Loading…</div> : <ErrorLine error={macros.error ?? "No such macro."} />}
        </div>
      );
    return <MacroEditor key={macro.id} macro={macro} ctx={ctx} onSaved={macros.reload} />;
  }
  const list = macros.data ?? [];
  return (
    <div className="hk-page">
      <PageHeader
        title="Macros"
        sub="“Refund sent”: tag, tell the customer, resolve — in one click. Every staff member can apply them; the changes are theirs."
        actions={
          <button className="primary" data-testid="macro-new" onClick={() => go("admin", "macros/new")}>
            New macro
          </button>
        }
      />
      <Card tight>
        <ErrorLine error={macros.error} />
        {macros.loading && !macros.data ? (
          <div className="hk-loading">Loading macros…</div>
        ) : list.length === 0 ? (
          <Empty>No macros yet.</Empty>
        ) : (
          <table className="hk-table">
            <thead>
              <tr>
                <th>Macro</th>
                <th>Does</th>
                <th>Updated</th>
              </tr>
            </thead>
            <tbody>
              {list.map((m) => (
                <tr key={m.id} className="click" data-testid="macro-row" data-id={m.id} onClick={() => go("admin", `macros/${m.id}`)}>
                  <td>
                    <span className="strong">{m.name}</span>
                    {m.description && <span className="sub">{m.description}</span>}
                  </td>
                  <td className="hk-small">{m.actions.map((a) => actionSummary(a, ctx)).join(" · ")}</td>
                  <td className="hk-muted">{ago(m.updateTime ? timestampDate(m.updateTime) : undefined)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </Card>
    </div>
  );
}

function MacroEditor({ macro, ctx, onSaved }: { macro?: Macro; ctx: ActionContext; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const [name, setName] = useState(macro?.name ?? "");
  const [description, setDescription] = useState(macro?.description ?? "");
  const [actions, setActions] = useState<Action[]>(macro?.actions ?? []);
  const [touched, setTouched] = useState(false);
  const [saved, setSaved] = useState(false);
  const [act, error, busy] = useAction();
  const taken = ctx.macros.some((m) => m.id !== macro?.id && m.name.toLowerCase() === name.trim().toLowerCase());
  const nameProblem = touched && !name.trim() ? "A name is required." : taken ? "Another macro has this name." : undefined;

  const save = () => {
    setTouched(true);
    if (!name.trim() || taken || actions.length === 0) return;
    act(async () => {
      const body = { name: name.trim(), description, actions };
      if (macro) {
        await clients.automation.updateMacro({ macro: { ...body, id: macro.id }, updateMask: { paths: ["name", "description", "actions"] } });
        setSaved(true);
        onSaved();
      } else {
        const created = await clients.automation.createMacro({ macro: body });
        onSaved();
        go("admin", `macros/${created.id}`);
      }
    });
  };
  return (
    <div className="hk-page">
      <PageHeader
        back={{ href: "#/admin/macros", label: "Macros" }}
        title={macro ? macro.name : "New macro"}
        actions={
          macro && (
            <button
              className="danger"
              disabled={busy}
              onClick={() =>
                confirm(`Delete the macro “${macro.name}”? Rules that apply it will fail that action.`) &&
                act(async () => {
                  await clients.automation.deleteMacro({ id: macro.id });
                  onSaved();
                  go("admin", "macros");
                })
              }
            >
              Delete
            </button>
          )
        }
      />
      <Card title="Macro">
        <div className="hk-form">
          <Field label="Name" error={nameProblem ?? fieldError(error, "macro.name")}>
            <input data-testid="macro-name" value={name} maxLength={200} onChange={(e) => { setName(e.target.value); setSaved(false); }} />
          </Field>
          <Field label="Description" error={fieldError(error, "macro.description")}>
            <input value={description} maxLength={2000} onChange={(e) => { setDescription(e.target.value); setSaved(false); }} />
          </Field>
        </div>
      </Card>
      <Card title="Actions" sub="done in order on the conversation it is applied to">
        <ActionsEditor
          actions={actions}
          onChange={(a) => {
            setActions(a);
            setSaved(false);
          }}
          ctx={ctx}
          path="macro.actions"
          error={error}
          allowMacro={false}
        />
        {touched && actions.length === 0 && <p className="error hk-small">Add at least one action.</p>}
      </Card>
      <div className="adm-savebar">
        <FormErrors error={error} />
        {saved && <span className="adm-saved">Saved</span>}
        <button onClick={() => go("admin", "macros")}>Cancel</button>
        <button className="primary" data-testid="macro-save" disabled={busy} onClick={save}>
          {busy ? "Saving…" : macro ? "Save macro" : "Create macro"}
        </button>
      </div>
    </div>
  );
}
