// Admin → Macros: named sets of actions staff apply to a conversation with one click.

import { useState } from "react";
import type { Macro } from "../../gen/helpdesk/automation/v1/automation_pb";
import { readAll } from "../../lib/client";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { go } from "../route";
import { useAction, useLoad } from "../ui";
import { type ActionContext, ActionsEditor, actionSummary } from "./actions";
import { useActionContext } from "./Automation";
import { ago, Card, Field, fieldError, ListCard, MissingItem, PageHeader, SaveBar, saveItem, useDraft } from "./forms";

/** The Macros section: the list, `new`, or one macro by id. */
export function MacrosAdmin({ id }: { id?: string }) {
  const { clients } = useWorkbench();
  const ctx = useActionContext();
  const macros = useLoad(
    () => readAll((pageToken) => clients.automation.listMacros({ pageSize: 100, pageToken }), (r) => r.macros),
    [clients],
  );
  if (id) {
    if (id === "new") return <MacroEditor ctx={ctx} onSaved={macros.reload} />;
    const macro = macros.data?.find((m) => m.id === id);
    if (!macro)
      return <MissingItem back={{ href: "#/admin/macros", label: "Macros" }} loading={macros.loading} error={macros.error ?? "No such macro."} />;
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
      <ListCard
        error={macros.error}
        loading={macros.loading && !macros.data}
        loadingText="Loading macros…"
        count={list.length}
        empty="No macros yet."
        columns={["Macro", "Does", "Updated"]}
      >
        {list.map((m) => (
          <tr key={m.id} className="click" data-testid="macro-row" data-id={m.id} onClick={() => go("admin", `macros/${m.id}`)}>
            <td>
              <span className="strong">{m.name}</span>
              {m.description && <span className="sub">{m.description}</span>}
            </td>
            <td className="hk-small">{m.actions.map((a) => actionSummary(a, ctx)).join(" · ")}</td>
            <td className="hk-muted">{ago(toDate(m.updateTime))}</td>
          </tr>
        ))}
      </ListCard>
    </div>
  );
}

function MacroEditor({ macro, ctx, onSaved }: { macro?: Macro; ctx: ActionContext; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const { draft, set, saved, setSaved } = useDraft(() => ({
    name: macro?.name ?? "",
    description: macro?.description ?? "",
    actions: macro?.actions ?? [],
  }));
  const { name, description, actions } = draft;
  const [touched, setTouched] = useState(false);
  const [act, error, busy] = useAction();
  const taken = ctx.macros.some((m) => m.id !== macro?.id && m.name.toLowerCase() === name.trim().toLowerCase());
  const nameProblem = touched && !name.trim() ? "A name is required." : taken ? "Another macro has this name." : undefined;

  const save = () => {
    setTouched(true);
    if (!name.trim() || taken || actions.length === 0) return;
    const body = { name: name.trim(), description, actions };
    act(() =>
      saveItem({
        section: "macros",
        update: macro && (() => clients.automation.updateMacro({ macro: { ...body, id: macro.id }, updateMask: { paths: ["name", "description", "actions"] } })),
        create: () => clients.automation.createMacro({ macro: body }),
        onSaved,
        setSaved,
      }),
    );
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
            <input data-testid="macro-name" value={name} maxLength={200} onChange={(e) => set({ name: e.target.value })} />
          </Field>
          <Field label="Description" error={fieldError(error, "macro.description")}>
            <input value={description} maxLength={2000} onChange={(e) => set({ description: e.target.value })} />
          </Field>
        </div>
      </Card>
      <Card title="Actions" sub="done in order on the conversation it is applied to">
        <ActionsEditor
          actions={actions}
          onChange={(a) => set({ actions: a })}
          ctx={ctx}
          path="macro.actions"
          error={error}
          allowMacro={false}
        />
        {touched && actions.length === 0 && <p className="error hk-small">Add at least one action.</p>}
      </Card>
      <SaveBar
        error={error}
        saved={saved}
        busy={busy}
        label={macro ? "Save macro" : "Create macro"}
        onSave={save}
        onCancel={() => go("admin", "macros")}
        testId="macro-save"
      />
    </div>
  );
}
