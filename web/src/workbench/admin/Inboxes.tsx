// Admin → Inboxes: the list, and one inbox's settings with its widget embed code.

import { useState } from "react";
import { ChannelKind, ReopenPolicy, type Inbox } from "../../gen/helpdesk/conversation/v1/conversation_pb";
import { readAll, type Clients } from "../../lib/client";
import { toDate } from "../../lib/time";
import { useWorkbench } from "../context";
import { go } from "../route";
import { ErrorLine, Options, useAction, useLoad } from "../ui";
import {
  ago,
  Card,
  Check,
  ChipsInput,
  CopyButton,
  DurationInput,
  Field,
  fieldError,
  ListCard,
  MissingItem,
  PageHeader,
  SaveBar,
  saveItem,
  useDraft,
} from "./forms";

const CHANNELS: [ChannelKind, string][] = [
  [ChannelKind.WEB_WIDGET, "Web widget"],
  [ChannelKind.MOBILE_SDK, "Mobile SDK"],
  [ChannelKind.API, "API"],
  [ChannelKind.EMAIL, "Email"],
];

const channelName = (c: ChannelKind) => CHANNELS.find(([v]) => v === c)?.[1] ?? "—";

/** Every inbox of the account (all pages). */
export function listAllInboxes(clients: Clients): Promise<Inbox[]> {
  return readAll((pageToken) => clients.conversation.listInboxes({ pageSize: 100, pageToken }), (r) => r.inboxes);
}

/** The Inboxes section: the list, `new`, or one inbox by id. */
export function InboxesAdmin({ id }: { id?: string }) {
  const { clients } = useWorkbench();
  const list = useLoad(() => listAllInboxes(clients), [clients]);
  if (id) {
    if (id === "new") return <InboxEditor onSaved={list.reload} />;
    const inbox = list.data?.find((i) => i.id === id);
    if (!inbox)
      return <MissingItem back={{ href: "#/admin/inboxes", label: "Inboxes" }} loading={list.loading} error={list.error ?? "No such inbox."} />;
    return <InboxEditor key={inbox.id} inbox={inbox} onSaved={list.reload} />;
  }
  const inboxes = list.data ?? [];
  return (
    <div className="hk-page">
      <PageHeader
        title="Inboxes"
        sub="Each inbox is a door customers come through: a website widget, an app, the API or email."
        actions={
          <button className="primary" data-testid="inbox-new" onClick={() => go("admin", "inboxes/new")}>
            New inbox
          </button>
        }
      />
      <ListCard
        error={list.error}
        loading={list.loading && !list.data}
        loadingText="Loading inboxes…"
        count={inboxes.length}
        empty="No inboxes yet. Create one to put a chat widget on your site."
        columns={["Name", "Channel", "Public key", "Features", "Created"]}
      >
        {inboxes.map((i) => (
          <tr key={i.id} className="click" data-testid="inbox-row" data-id={i.id} onClick={() => go("admin", `inboxes/${i.id}`)}>
            <td className="strong">
              {i.name}
              {i.greetingMessage && <span className="sub">“{i.greetingMessage.slice(0, 70)}”</span>}
            </td>
            <td>{channelName(i.channelKind)}</td>
            <td>
              <code className="hk-small">{i.publicKey}</code>
            </td>
            <td>
              <div className="adm-tags">
                {i.bot?.enabled && <span className="adm-tag strong">Bot first</span>}
                {i.csatSurvey?.enabled && <span className="adm-tag">CSAT survey</span>}
                {i.visitorAttributeKeys.length > 0 && <span className="adm-tag">Pre-chat form</span>}
                {i.ticketOnLeaveMessage && <span className="adm-tag">Tickets on leave-a-message</span>}
              </div>
            </td>
            <td className="hk-muted">{ago(toDate(i.createTime))}</td>
          </tr>
        ))}
      </ListCard>
    </div>
  );
}

interface Draft {
  name: string;
  channelKind: ChannelKind;
  greetingMessage: string;
  reopenPolicy: ReopenPolicy;
  visitorAttributeKeys: string[];
  botEnabled: boolean;
  botIntegrationId: string;
  handoffPhrases: string[];
  handoffChoices: string[];
  ticketOnLeaveMessage: boolean;
  reopenOnTicketUpdate: boolean;
  warningSeconds: number;
  closeSeconds: number;
  warningMessage: string;
  inactivityClosingMessage: string;
  agentClosingMessage: string;
  customerClosingMessage: string;
  pendingCloseSeconds: number;
  botCloseSeconds: number;
  csatEnabled: boolean;
  csatQuestion: string;
  csatOnlyLabels: string[];
  csatSkipOnAutoClose: boolean;
}

function draftOf(i?: Inbox): Draft {
  return {
    name: i?.name ?? "",
    channelKind: i?.channelKind || ChannelKind.WEB_WIDGET,
    greetingMessage: i?.greetingMessage ?? "",
    reopenPolicy: i?.reopenPolicy || ReopenPolicy.REOPEN,
    visitorAttributeKeys: i?.visitorAttributeKeys ?? [],
    botEnabled: i?.bot?.enabled ?? false,
    botIntegrationId: i?.bot?.integrationId ?? "",
    handoffPhrases: i?.bot?.handoffPhrases ?? [],
    handoffChoices: i?.bot?.handoffChoices ?? [],
    ticketOnLeaveMessage: i?.ticketOnLeaveMessage ?? false,
    reopenOnTicketUpdate: i?.reopenOnTicketUpdate ?? false,
    warningSeconds: i?.lifecycle?.inactivityWarningSeconds ?? 0,
    closeSeconds: i?.lifecycle?.inactivityCloseSeconds ?? 0,
    warningMessage: i?.lifecycle?.warningMessage ?? "",
    inactivityClosingMessage: i?.lifecycle?.inactivityClosingMessage ?? "",
    agentClosingMessage: i?.lifecycle?.agentClosingMessage ?? "",
    customerClosingMessage: i?.lifecycle?.customerClosingMessage ?? "",
    pendingCloseSeconds: i?.lifecycle?.pendingCloseSeconds ?? 0,
    botCloseSeconds: i?.lifecycle?.botCloseSeconds ?? 0,
    csatEnabled: i?.csatSurvey?.enabled ?? false,
    csatQuestion: i?.csatSurvey?.question ?? "",
    csatOnlyLabels: i?.csatSurvey?.onlyLabels ?? [],
    csatSkipOnAutoClose: i?.csatSurvey?.skipOnAutoClose ?? false,
  };
}

/** The inbox as the API takes it. */
function inboxOf(d: Draft) {
  const lifecycleSet =
    d.warningSeconds ||
    d.closeSeconds ||
    d.pendingCloseSeconds ||
    d.botCloseSeconds ||
    d.warningMessage ||
    d.inactivityClosingMessage ||
    d.agentClosingMessage ||
    d.customerClosingMessage;
  const botSet = d.botEnabled || d.botIntegrationId || d.handoffPhrases.length || d.handoffChoices.length;
  const csatSet = d.csatEnabled || d.csatQuestion || d.csatOnlyLabels.length;
  return {
    name: d.name.trim(),
    channelKind: d.channelKind,
    greetingMessage: d.greetingMessage,
    reopenPolicy: d.reopenPolicy,
    visitorAttributeKeys: d.visitorAttributeKeys,
    ticketOnLeaveMessage: d.ticketOnLeaveMessage,
    reopenOnTicketUpdate: d.reopenOnTicketUpdate,
    bot: botSet
      ? {
          enabled: d.botEnabled,
          integrationId: d.botIntegrationId.trim(),
          handoffPhrases: d.handoffPhrases,
          handoffChoices: d.handoffChoices,
        }
      : undefined,
    lifecycle: lifecycleSet
      ? {
          inactivityWarningSeconds: d.warningSeconds,
          inactivityCloseSeconds: d.closeSeconds,
          warningMessage: d.warningMessage,
          inactivityClosingMessage: d.inactivityClosingMessage,
          agentClosingMessage: d.agentClosingMessage,
          customerClosingMessage: d.customerClosingMessage,
          pendingCloseSeconds: d.pendingCloseSeconds,
          botCloseSeconds: d.botCloseSeconds,
        }
      : undefined,
    csatSurvey: csatSet
      ? { enabled: d.csatEnabled, question: d.csatQuestion, onlyLabels: d.csatOnlyLabels, skipOnAutoClose: d.csatSkipOnAutoClose }
      : undefined,
  };
}

const PATHS = [
  "name",
  "greeting_message",
  "reopen_policy",
  "channel_kind",
  "visitor_attribute_keys",
  "bot",
  "ticket_on_leave_message",
  "reopen_on_ticket_update",
  "lifecycle",
  "csat_survey",
];

const keyword = (s: string) => s.trim().toLowerCase().replace(/\s+/g, "_");

/** Creates an inbox, or edits one. */
function InboxEditor({ inbox, onSaved }: { inbox?: Inbox; onSaved: () => void }) {
  const { clients } = useWorkbench();
  const { draft: d, set, saved, setSaved } = useDraft(() => draftOf(inbox));
  const [act, error, busy] = useAction();
  const [touched, setTouched] = useState(false);
  const nameMissing = touched && !d.name.trim();
  const closeWithoutWarning = d.closeSeconds > 0 && d.warningSeconds === 0;

  const save = () => {
    setTouched(true);
    if (!d.name.trim() || closeWithoutWarning) return;
    act(() =>
      saveItem({
        section: "inboxes",
        update: inbox && (() => clients.conversation.updateInbox({ inbox: { id: inbox.id, ...inboxOf(d) }, updateMask: { paths: PATHS } })),
        create: () => clients.conversation.createInbox({ inbox: inboxOf(d) }),
        onSaved,
        setSaved,
      }),
    );
  };

  return (
    <div className="hk-page">
      <PageHeader
        back={{ href: "#/admin/inboxes", label: "Inboxes" }}
        title={inbox ? inbox.name : "New inbox"}
        sub={inbox ? `${channelName(inbox.channelKind)} inbox · id ${inbox.id}` : "Name it, then embed its widget on your site."}
      />
      <div className="adm-split">
        <div>
          <Card title="General">
            <div className="hk-form">
              <Field label="Name" error={nameMissing ? "A name is required." : fieldError(error, "name")}>
                <input data-testid="inbox-name" value={d.name} maxLength={200} onChange={(e) => set({ name: e.target.value })} />
              </Field>
              <Field label="Channel" error={fieldError(error, "channel_kind")}>
                <select value={d.channelKind} onChange={(e) => set({ channelKind: Number(e.target.value) })}>
                  <Options of={CHANNELS} />
                </select>
              </Field>
              <Field label="Greeting" wide hint="Posted as the first message of every new conversation (empty: none)." error={fieldError(error, "greeting_message")}>
                <textarea
                  data-testid="inbox-greeting"
                  rows={2}
                  value={d.greetingMessage}
                  onChange={(e) => set({ greetingMessage: e.target.value })}
                />
              </Field>
              <Field label="When a customer writes to a resolved chat" wide>
                <select value={d.reopenPolicy} onChange={(e) => set({ reopenPolicy: Number(e.target.value) })}>
                  <option value={ReopenPolicy.REOPEN}>Reopen the conversation</option>
                  <option value={ReopenPolicy.NEW_CONVERSATION}>Start a new conversation</option>
                </select>
              </Field>
            </div>
          </Card>

          <Card title="Pre-chat form" sub="what an anonymous visitor may tell you before the chat">
            <Field
              label="Fields"
              hint="Conversation attributes the widget asks for (e.g. order_number, topic). Other attributes come only from staff and verified visitors."
              error={fieldError(error, "visitor_attribute_keys")}
            >
              <ChipsInput
                testId="inbox-prechat"
                value={d.visitorAttributeKeys}
                normalize={keyword}
                placeholder="order_number, topic…"
                onChange={(visitorAttributeKeys) => set({ visitorAttributeKeys })}
              />
            </Field>
          </Card>

          <Card title="Bot" sub="a bot answers first and hands over to people">
            <div className="hk-form">
              <div className="hk-field wide">
                <Check checked={d.botEnabled} onChange={(botEnabled) => set({ botEnabled })} label="New conversations start with the bot (not routed until handed over)" />
              </div>
              <Field label="Bot integration" hint="The integration token subject that is the bot (empty: any integration of the account)." error={fieldError(error, "bot.integration_id")}>
                <input value={d.botIntegrationId} onChange={(e) => set({ botIntegrationId: e.target.value })} disabled={!d.botEnabled} />
              </Field>
              <Field label="Hand-off menu choices" hint="Menu option ids that hand the chat to a person." error={fieldError(error, "bot.handoff_choices")}>
                <ChipsInput value={d.handoffChoices} normalize={keyword} onChange={(handoffChoices) => set({ handoffChoices })} />
              </Field>
              <Field label="Hand-off phrases" wide hint="Whole words or phrases a visitor writes to reach a person (empty: human, agent, real person)." error={fieldError(error, "bot.handoff_phrases")}>
                <ChipsInput value={d.handoffPhrases} onChange={(handoffPhrases) => set({ handoffPhrases })} />
              </Field>
            </div>
          </Card>

          <Card title="Quiet conversations and closing lines">
            <div className="hk-form">
              <Field label="Warn a silent customer after" hint="After a staff reply (0: never)." error={fieldError(error, "lifecycle.inactivity_warning_seconds")}>
                <DurationInput seconds={d.warningSeconds} onChange={(warningSeconds) => set({ warningSeconds })} />
              </Field>
              <Field
                label="Then close after"
                error={closeWithoutWarning ? "Closing needs the warning first." : fieldError(error, "lifecycle.inactivity_close_seconds")}
                hint="Further silence after the warning (0: never)."
              >
                <DurationInput seconds={d.closeSeconds} onChange={(closeSeconds) => set({ closeSeconds })} />
              </Field>
              <Field label="Warning message" wide hint="{{minutes}} is the time left. Empty: the default text." error={fieldError(error, "lifecycle.warning_message")}>
                <input value={d.warningMessage} placeholder="This chat will close in {{minutes}} minutes if we don't hear from you." onChange={(e) => set({ warningMessage: e.target.value })} />
              </Field>
              <Field label="Closed for inactivity" wide error={fieldError(error, "lifecycle.inactivity_closing_message")}>
                <input value={d.inactivityClosingMessage} placeholder="This chat was closed because we did not hear from you. Write again any time." onChange={(e) => set({ inactivityClosingMessage: e.target.value })} />
              </Field>
              <Field label="Posted when staff resolve" error={fieldError(error, "lifecycle.agent_closing_message")}>
                <input value={d.agentClosingMessage} placeholder="(nothing)" onChange={(e) => set({ agentClosingMessage: e.target.value })} />
              </Field>
              <Field label="Posted when the customer ends the chat" error={fieldError(error, "lifecycle.customer_closing_message")}>
                <input value={d.customerClosingMessage} placeholder="(nothing)" onChange={(e) => set({ customerClosingMessage: e.target.value })} />
              </Field>
              <Field label="Resolve pending chats after" hint="Without a message (0: never)." error={fieldError(error, "lifecycle.pending_close_seconds")}>
                <DurationInput seconds={d.pendingCloseSeconds} onChange={(pendingCloseSeconds) => set({ pendingCloseSeconds })} />
              </Field>
              <Field label="Resolve idle bot chats after" hint="Without a message (0: never)." error={fieldError(error, "lifecycle.bot_close_seconds")}>
                <DurationInput seconds={d.botCloseSeconds} onChange={(botCloseSeconds) => set({ botCloseSeconds })} />
              </Field>
            </div>
          </Card>

          <Card title="Satisfaction survey" sub="asked when a conversation is resolved">
            <div className="hk-form">
              <div className="hk-field wide hk-checks">
                <Check testId="inbox-csat" checked={d.csatEnabled} onChange={(csatEnabled) => set({ csatEnabled })} label="Ask customers to rate the conversation" />
                <Check checked={d.csatSkipOnAutoClose} onChange={(csatSkipOnAutoClose) => set({ csatSkipOnAutoClose })} label="Not after an automatic close" disabled={!d.csatEnabled} />
              </div>
              <Field label="Question" wide error={fieldError(error, "csat_survey.question")}>
                <input value={d.csatQuestion} disabled={!d.csatEnabled} placeholder="How would you rate this conversation, from 1 to 5?" onChange={(e) => set({ csatQuestion: e.target.value })} />
              </Field>
              <Field label="Only conversations labelled" wide hint="Empty: every conversation." error={fieldError(error, "csat_survey.only_labels")}>
                <ChipsInput value={d.csatOnlyLabels} normalize={keyword} onChange={(csatOnlyLabels) => set({ csatOnlyLabels })} />
              </Field>
            </div>
          </Card>

          <Card title="Tickets">
            <div className="hk-checks" style={{ flexDirection: "column", gap: 10 }}>
              <Check
                checked={d.ticketOnLeaveMessage}
                onChange={(ticketOnLeaveMessage) => set({ ticketOnLeaveMessage })}
                label="Turn chats into tickets when the visitor is asked to leave a message (full queue, closed hours)"
              />
              <Check
                checked={d.reopenOnTicketUpdate}
                onChange={(reopenOnTicketUpdate) => set({ reopenOnTicketUpdate })}
                label="Reopen a resolved chat when its ticket gets a public reply or a status the customer is told of"
              />
            </div>
          </Card>

          <SaveBar
            error={error}
            saved={saved}
            busy={busy}
            label={inbox ? "Save changes" : "Create inbox"}
            onSave={save}
            onCancel={() => go("admin", "inboxes")}
            testId="inbox-save"
          />
        </div>

        <div>{inbox ? <EmbedCard inbox={inbox} onChanged={onSaved} /> : <Card title="Widget">The public key and the embed code appear once the inbox exists.</Card>}</div>
      </div>
    </div>
  );
}

/** The public key, the embed snippet and the identity secret. */
function EmbedCard({ inbox, onChanged }: { inbox: Inbox; onChanged: () => void }) {
  const { clients } = useWorkbench();
  const [reveal, setReveal] = useState(false);
  const [act, error, busy] = useAction();
  const snippet = `<script src="${location.origin}/widget/widget.js" data-inbox="${inbox.publicKey}" async></script>`;
  return (
    <>
      <Card title="Install the widget">
        <div className="hk-form one">
          <Field label="Public key">
            <div className="adm-key">
              <code data-testid="inbox-public-key">{inbox.publicKey}</code>
              <CopyButton text={inbox.publicKey} />
            </div>
          </Field>
          <Field label="Embed code" hint="Paste before </body> on every page that should show the chat.">
            <div className="hk-codebox">
              <code data-testid="inbox-snippet">{snippet}</code>
              <CopyButton text={snippet} />
            </div>
          </Field>
          <a className="hk-small" href={`${location.origin}/widget/demo.html?inbox=${encodeURIComponent(inbox.publicKey)}`} target="_blank" rel="noreferrer">
            Try it on the demo page ↗
          </a>
        </div>
      </Card>
      <Card title="Signed-in visitors">
        <p className="hk-small hk-muted" style={{ marginTop: 0 }}>
          Your backend signs a signed-in user's external id with this secret (HMAC-SHA256, hex) and passes it as the identity
          hash; the contact is then verified.
        </p>
        <div className="hk-codebox">
          <code>{reveal ? inbox.identitySecret || "(none)" : "•".repeat(24)}</code>
          <button type="button" className="small" onClick={() => setReveal(!reveal)}>
            {reveal ? "Hide" : "Reveal"}
          </button>
        </div>
        <div className="hk-row" style={{ marginTop: 10 }}>
          <button
            className="small danger"
            disabled={busy}
            onClick={() =>
              confirm("Generate a new identity secret? Visitors signed with the old one stop being verified.") &&
              act(async () => {
                await clients.conversation.updateInbox({ inbox: { id: inbox.id }, updateMask: { paths: ["identity_secret"] } });
                onChanged();
              })
            }
          >
            Generate a new secret
          </button>
        </div>
        <ErrorLine error={error} />
      </Card>
      <Card title="Business hours">
        <p className="hk-small hk-muted" style={{ marginTop: 0 }}>
          Opening times for chats of this inbox when their team has none.
        </p>
        <a href={`#/admin/hours?inbox=${inbox.id}`}>Set this inbox's hours →</a>
      </Card>
    </>
  );
}
