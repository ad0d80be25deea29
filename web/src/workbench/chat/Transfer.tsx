// Handing a conversation to a colleague: the dialog that picks the receiver (an agent
// from the recommendations, a team or a skill), the note and its template, and the
// sender's live view of how the transfer goes.

import { useEffect, useMemo, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import {
  TransferState,
  type Transfer,
  type TransferTarget,
  type TransferTemplate,
} from "../../gen/helpdesk/routing/v1/routing_pb";
import { describe } from "../../lib/errors";
import { useWorkbench } from "../context";
import { Dialog, Empty, ErrorLine, Options, useAction, useDebounced, useNow } from "../ui";
import { teamChoices } from "../admin/directory";
import { humanize } from "./format";
import { useSessionDirectory } from "./directory";
import { TransferIcon } from "./icons";

type Mode = "agent" | "team" | "skill";

/** The transfer dialog; `onSent` gets the transfer as requested. */
export function TransferDialog({
  conversationId,
  onClose,
  onSent,
}: {
  conversationId: string;
  onClose: () => void;
  onSent: (t: Transfer) => void;
}) {
  const { clients } = useWorkbench();
  const directory = useSessionDirectory(clients);
  const [mode, setMode] = useState<Mode>("agent");
  const [team, setTeam] = useState("");
  const [skill, setSkill] = useState("");
  const [skillQuery, setSkillQuery] = useState("");
  const [agentId, setAgentId] = useState("");
  const [note, setNote] = useState("");
  const [templates, setTemplates] = useState<TransferTemplate[]>([]);
  const [templateId, setTemplateId] = useState("");
  const [fields, setFields] = useState<Record<string, string>>({});
  const [targets, setTargets] = useState<TransferTarget[]>();
  const [targetsError, setTargetsError] = useState<string>();
  const [act, error, busy] = useAction();

  useEffect(() => {
    clients.routing.listTransferTemplates({}).then(
      (r) => setTemplates(r.templates),
      (err) => setTargetsError(describe(err)),
    );
  }, [clients]);

  const applySkill = useDebounced(() => setSkillQuery(skill.trim().toLowerCase()), 350);
  const teamFilter = mode === "skill" ? "" : team;
  const skillFilter = mode === "skill" ? skillQuery : "";
  useEffect(() => {
    let live = true;
    setTargets(undefined);
    clients.routing.recommendTransferTargets({ conversationId, teamId: teamFilter, skill: skillFilter }).then(
      (r) => {
        if (!live) return;
        setTargets(r.targets);
        setTargetsError(undefined);
      },
      (err) => live && setTargetsError(describe(err)),
    );
    return () => {
      live = false;
    };
  }, [clients, conversationId, teamFilter, skillFilter]);

  const skills = useMemo(
    () => [...new Set(directory.agents.flatMap((a) => a.skills.map((s) => s.name)))].sort(),
    [directory.agents],
  );
  const template = templates.find((t) => t.id === templateId);
  const ready =
    (mode === "agent" && !!agentId) || (mode === "team" && !!team) || (mode === "skill" && !!skill.trim());

  const send = () =>
    act(async () => {
      const filled = template
        ? Object.fromEntries(template.fields.map((f) => [f, (fields[f] ?? "").trim()]).filter(([, v]) => v))
        : {};
      const t = await clients.routing.requestTransfer({
        conversationId,
        toAgentId: mode === "agent" ? agentId : "",
        toTeamId: mode === "team" ? team : "",
        toSkill: mode === "skill" ? skill.trim().toLowerCase() : "",
        note: note.trim(),
        templateId,
        fields: filled,
      });
      onSent(t);
      onClose();
    });

  return (
    <Dialog title="Transfer conversation" onClose={onClose}>
      <div className="tf-body">
        <div className="ch-segment tf-modes" role="tablist" aria-label="Transfer to">
          {(["agent", "team", "skill"] as const).map((m) => (
            <button key={m} role="tab" aria-selected={mode === m} className={mode === m ? "on" : undefined} data-testid={`transfer-mode-${m}`} onClick={() => setMode(m)}>
              {m === "agent" ? "An agent" : m === "team" ? "A team" : "A skill"}
            </button>
          ))}
        </div>

        {mode !== "skill" && (
          <label className="tf-field">
            <span>{mode === "team" ? "Team" : "Only agents of"}</span>
            <select data-testid="transfer-team" value={team} onChange={(e) => setTeam(e.target.value)}>
              <option value="">{mode === "team" ? "Choose a team…" : "Any team"}</option>
              <Options of={teamChoices(directory.teams)} />
            </select>
          </label>
        )}
        {mode === "skill" && (
          <label className="tf-field">
            <span>Skill</span>
            <input
              data-testid="transfer-skill"
              list="tf-skills"
              placeholder="e.g. refunds"
              value={skill}
              onChange={(e) => {
                setSkill(e.target.value);
                applySkill();
              }}
            />
            <datalist id="tf-skills">
              {skills.map((s) => (
                <option key={s} value={s} />
              ))}
            </datalist>
          </label>
        )}

        <div className="tf-targets-head">
          <strong>{mode === "agent" ? "Recommended agents" : "Who could take it now"}</strong>
          <span className="muted">
            {mode === "agent"
              ? "Online with a free seat, best match first"
              : mode === "team"
                ? "Offered to the team's agents one after another"
                : "Offered to agents with the skill, best level first"}
          </span>
        </div>
        <ErrorLine error={targetsError} />
        <div className="tf-targets" role={mode === "agent" ? "radiogroup" : "list"}>
          {!targets && !targetsError && <p className="muted tf-pad">Finding available agents…</p>}
          {targets && !targets.length && <Empty>Nobody is online with a free seat{teamFilter ? " in this team" : ""}{skillFilter ? " with this skill" : ""}.</Empty>}
          {targets?.map((t) => (
            <TargetRow
              key={t.agentId}
              target={t}
              selectable={mode === "agent"}
              selected={mode === "agent" && agentId === t.agentId}
              onSelect={() => setAgentId(t.agentId)}
            />
          ))}
        </div>

        <label className="tf-field">
          <span>Note template</span>
          <select
            data-testid="transfer-template"
            value={templateId}
            onChange={(e) => {
              setTemplateId(e.target.value);
              setFields({});
            }}
          >
            <option value="">No template</option>
            <Options of={templates.map((t) => [t.id, t.name || humanize(t.id)] as const)} />
          </select>
        </label>
        {template && (
          <div className="tf-template">
            {template.fields.map((f) => (
              <label key={f} className="tf-field">
                <span>{humanize(f)}</span>
                <input
                  data-testid={`transfer-field-${f}`}
                  maxLength={500}
                  value={fields[f] ?? ""}
                  onChange={(e) => setFields({ ...fields, [f]: e.target.value })}
                />
              </label>
            ))}
          </div>
        )}
        <label className="tf-field">
          <span>Note for the receiver</span>
          <textarea
            data-testid="transfer-note"
            rows={3}
            maxLength={2000}
            placeholder="What they should know (never shown to the customer)"
            value={note}
            onChange={(e) => setNote(e.target.value)}
          />
        </label>
        <ErrorLine error={error} />
        <div className="tf-actions">
          <button onClick={onClose}>Cancel</button>
          <button className="primary" data-testid="transfer-send" disabled={!ready || busy} onClick={() => void send()}>
            {busy ? "Sending…" : "Send transfer"}
          </button>
        </div>
      </div>
    </Dialog>
  );
}

function TargetRow({
  target: t,
  selectable,
  selected,
  onSelect,
}: {
  target: TransferTarget;
  selectable: boolean;
  selected: boolean;
  onSelect: () => void;
}) {
  const load = t.maxChats ? t.activeChats / t.maxChats : 0;
  const content = (
    <>
      <span className="tf-name">
        {t.name || t.agentId}
        {t.declinedRecently && <span className="tf-declined">declined recently</span>}
      </span>
      <span className="tf-load" title="Open chats / capacity">
        <span className="tf-meter">
          <span style={{ width: `${Math.min(100, load * 100)}%` }} />
        </span>
        {t.activeChats} / {t.maxChats}
      </span>
      <span className="tf-score" title="Match: skills 50 %, free seats 30 %, satisfaction 20 %">
        {Math.round(t.score * 100)}%
      </span>
      <span className="tf-reasons">
        {t.reasons.map((r) => (
          <span key={r}>{r}</span>
        ))}
      </span>
    </>
  );
  return selectable ? (
    <button
      role="radio"
      aria-checked={selected}
      className={`tf-target${selected ? " on" : ""}`}
      data-testid="transfer-target"
      data-agent-id={t.agentId}
      onClick={onSelect}
    >
      {content}
    </button>
  ) : (
    <div role="listitem" className="tf-target tf-preview" data-testid="transfer-target" data-agent-id={t.agentId}>
      {content}
    </div>
  );
}

/** The sender's view of the conversation's latest transfer, live. */
export function TransferStatus({
  transfer: t,
  onDismiss,
  onChanged,
}: {
  transfer: Transfer;
  onDismiss: () => void;
  onChanged: (t: Transfer) => void;
}) {
  const { clients } = useWorkbench();
  const directory = useSessionDirectory(clients);
  const now = useNow(500);
  const [act, error, busy] = useAction();
  const to = t.toAgentId ? directory.agentName(t.toAgentId) : "the next agent";
  const via = t.toTeamId ? ` (team ${directory.teamName(t.toTeamId)})` : t.toSkill ? ` (skill ${t.toSkill})` : "";
  const left = t.deadline ? Math.max(0, Math.ceil((timestampDate(t.deadline).getTime() - now) / 1000)) : undefined;

  let tone = "pending";
  let text: string;
  switch (t.state) {
    case TransferState.PENDING:
      text = `Waiting for ${to}${via} to accept${left !== undefined ? ` · ${left} s` : ""}`;
      break;
    case TransferState.ACCEPTED:
      tone = "ok";
      text = `${to} accepted the conversation.`;
      break;
    case TransferState.REJECTED:
      tone = "bad";
      text = `${to} declined${t.reason ? `: “${t.reason}”` : "."}`;
      break;
    case TransferState.TIMED_OUT:
      tone = "bad";
      text = `${to} did not answer in time.`;
      break;
    case TransferState.CANCELLED:
      tone = "muted";
      text = `Transfer withdrawn${t.reason ? `: ${t.reason}` : "."}`;
      break;
    default:
      text = "Transfer state unknown.";
  }
  if (t.exhausted) text += ` Nobody else${via} could take it: you keep the conversation.`;

  return (
    <div className={`tf-status tf-${tone}`} role="status" data-state={TransferState[t.state].toLowerCase()}>
      <TransferIcon className="tf-status-icon" />
      <span data-testid="transfer-state">{text}</span>
      <span className="spacer" />
      <ErrorLine error={error} />
      {t.state === TransferState.PENDING && (
        <button
          className="link"
          disabled={busy}
          onClick={() => void act(async () => onChanged(await clients.routing.cancelTransfer({ transferId: t.id })))}
        >
          Withdraw
        </button>
      )}
      {t.exhausted && t.toTeamId && (
        <button
          className="link"
          disabled={busy}
          onClick={() => void act(() => clients.routing.leaveInTeamQueue({ transferId: t.id }))}
        >
          Leave in the team's queue
        </button>
      )}
      {t.state !== TransferState.PENDING && (
        <button className="link tf-dismiss" onClick={onDismiss} aria-label="Dismiss">
          ✕
        </button>
      )}
    </div>
  );
}
