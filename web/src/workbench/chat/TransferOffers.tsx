// The transfer offers made to the signed-in agent, live on every page: who offers which
// conversation, the note and its fields, the time left, and Accept / Reject.

import { useEffect, useState } from "react";
import { timestampDate } from "@bufbuild/protobuf/wkt";
import { TransferState, type Transfer, type TransferTemplate } from "../../gen/helpdesk/routing/v1/routing_pb";
import type { Conversation } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { useWorkbench } from "../context";
import { go } from "../route";
import { ErrorLine, useAction, useNow } from "../ui";
import { contactName, humanize } from "./format";
import { useContact, useSessionDirectory } from "./directory";
import { hubOf, useTransfers } from "./hub";

/** Live popups for the transfers offered to the signed-in agent. */
export function TransferOffers() {
  const { clients, me } = useWorkbench();
  const hub = hubOf(clients);
  const transfers = useTransfers(hub, true);
  const now = useNow(500);
  const offers = transfers.filter(
    (t) =>
      t.toAgentId === me &&
      t.state === TransferState.PENDING &&
      (!t.deadline || timestampDate(t.deadline).getTime() > now),
  );
  if (!offers.length) return null;
  return (
    <div className="tr-offers" aria-live="polite">
      {offers.map((t) => (
        <TransferOffer key={t.id} transfer={t} now={now} />
      ))}
    </div>
  );
}

function TransferOffer({ transfer: t, now }: { transfer: Transfer; now: number }) {
  const { clients } = useWorkbench();
  const hub = hubOf(clients);
  const directory = useSessionDirectory(clients);
  const [conversation, setConversation] = useState<Conversation>();
  const { contact } = useContact(clients, conversation?.contactId);
  const [reason, setReason] = useState("");
  const [act, error, busy] = useAction();

  const [templates, setTemplates] = useState<TransferTemplate[]>([]);
  useEffect(() => {
    clients.conversation.getConversation({ id: t.conversationId }).then(setConversation, () => undefined);
  }, [clients, t.conversationId]);
  useEffect(() => {
    if (t.templateId) clients.routing.listTransferTemplates({}).then((r) => setTemplates(r.templates), () => undefined);
  }, [clients, t.templateId]);

  const deadline = t.deadline ? timestampDate(t.deadline).getTime() : undefined;
  const left = deadline ? Math.max(0, Math.ceil((deadline - now) / 1000)) : undefined;
  const total = t.deadline && t.requestTime ? (deadline! - timestampDate(t.requestTime).getTime()) / 1000 : 30;
  const order = templates.find((x) => x.id === t.templateId)?.fields ?? [];
  const rank = (k: string) => (order.includes(k) ? order.indexOf(k) : order.length);
  const fields = Object.entries(t.fields)
    .filter(([, v]) => v.trim())
    .sort(([a], [b]) => rank(a) - rank(b) || a.localeCompare(b));
  const from = directory.agentName(t.fromAgentId || t.requestedBy);
  const target = t.toTeamId ? ` via team ${directory.teamName(t.toTeamId)}` : t.toSkill ? ` for skill ${t.toSkill}` : "";

  return (
    <section className="tr-offer" data-testid="transfer-offer" role="alertdialog" aria-label="Transfer offer">
      <header>
        <div>
          <div className="tr-offer-kicker">Transfer offer{target}</div>
          <h4>{conversation ? contactName(contact, conversation.contactId) : "Conversation"}</h4>
          <div className="muted">from {from}</div>
        </div>
        {left !== undefined && (
          <div className={`tr-countdown${left <= 10 ? " tr-urgent" : ""}`} title="Time left to answer">
            <span data-testid="transfer-countdown">{left}</span>
            <small>s</small>
          </div>
        )}
      </header>
      {left !== undefined && (
        <div className="tr-progress">
          <div style={{ width: `${Math.min(100, (left / Math.max(1, total)) * 100)}%` }} />
        </div>
      )}
      {t.note && <p className="tr-note">{t.note}</p>}
      {fields.length > 0 && (
        <dl className="tr-fields">
          {fields.map(([k, v]) => (
            <div key={k}>
              <dt>{humanize(k)}</dt>
              <dd>{v}</dd>
            </div>
          ))}
        </dl>
      )}
      <input
        data-testid="transfer-reject-reason"
        placeholder="Reason, if you decline (optional)"
        value={reason}
        maxLength={500}
        onChange={(e) => setReason(e.target.value)}
      />
      <ErrorLine error={error} />
      <div className="tr-actions">
        <button
          data-testid="transfer-reject"
          disabled={busy}
          onClick={() =>
            void act(async () => hub.transferStore.put(await clients.routing.rejectTransfer({ transferId: t.id, reason: reason.trim() })))
          }
        >
          Decline
        </button>
        <button
          className="primary"
          data-testid="transfer-accept"
          disabled={busy}
          onClick={async () => {
            let accepted: Transfer | undefined;
            const ok = await act(async () => {
              accepted = await clients.routing.acceptTransfer({ transferId: t.id });
            });
            if (ok && accepted) {
              hub.transferStore.put(accepted);
              go("conversations", t.conversationId);
            }
          }}
        >
          Accept
        </button>
      </div>
    </section>
  );
}
