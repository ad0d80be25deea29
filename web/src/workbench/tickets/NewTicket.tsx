// The "New ticket" dialog: a ticket typed in by staff (source web).

import { useState } from "react";
import { TicketPriority, TicketSource, TicketType } from "../../gen/helpdesk/ticketing/v1/ticketing_pb";
import { newId } from "../../lib/ids";
import { useWorkbench } from "../context";
import { go } from "../route";
import { Dialog, Options, useAction } from "../ui";
import { agentChoices, teamChoices, type Directory } from "../admin/directory";
import { Field, fieldError, FormErrors, FormFoot } from "../admin/forms";
import { PRIORITIES, TYPES } from "./model";

/** Creates a ticket and opens it. */
export function NewTicketDialog({ dir, onClose }: { dir: Directory; onClose: () => void }) {
  const { clients } = useWorkbench();
  const [act, error, busy] = useAction();
  const [rid] = useState(newId);
  const [form, setForm] = useState({
    subject: "",
    description: "",
    name: "",
    email: "",
    priority: TicketPriority.NORMAL,
    type: TicketType.QUESTION,
    assigneeId: "",
    groupId: "",
  });
  const [touched, setTouched] = useState(false);
  const set = (patch: Partial<typeof form>) => setForm({ ...form, ...patch });
  const subjectMissing = touched && !form.subject.trim();
  const emailBad = form.email.trim() !== "" && !/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(form.email.trim());

  const submit = (e: React.FormEvent) => {
    e.preventDefault();
    setTouched(true);
    if (!form.subject.trim() || emailBad) return;
    act(async () => {
      const t = await clients.ticketing.createTicket({
        requestId: rid,
        ticket: {
          subject: form.subject.trim(),
          description: form.description,
          priority: form.priority,
          type: form.type,
          source: TicketSource.WEB,
          assigneeId: form.assigneeId,
          groupId: form.groupId,
          requester: form.name || form.email ? { name: form.name.trim(), email: form.email.trim() } : undefined,
        },
      });
      onClose();
      go("tickets", t.id);
    });
  };

  return (
    <Dialog title="New ticket" onClose={onClose}>
      <form className="hk-form" onSubmit={submit} style={{ width: 600 }}>
        <FormErrors error={error} />
        <Field label="Subject" wide error={subjectMissing ? "A subject is required." : fieldError(error, "subject")}>
          <input
            autoFocus
            data-testid="ticket-new-subject"
            value={form.subject}
            maxLength={255}
            onChange={(e) => set({ subject: e.target.value })}
          />
        </Field>
        <Field label="Description" wide error={fieldError(error, "description")}>
          <textarea
            data-testid="ticket-new-description"
            rows={5}
            value={form.description}
            onChange={(e) => set({ description: e.target.value })}
          />
        </Field>
        <Field label="Requester name" error={fieldError(error, "requester.name")}>
          <input value={form.name} onChange={(e) => set({ name: e.target.value })} />
        </Field>
        <Field
          label="Requester email"
          error={emailBad ? "That does not look like an email address." : fieldError(error, "requester.email")}
        >
          <input type="email" value={form.email} onChange={(e) => set({ email: e.target.value })} />
        </Field>
        <Field label="Priority">
          <select value={form.priority} onChange={(e) => set({ priority: Number(e.target.value) })}>
            <Options of={PRIORITIES} />
          </select>
        </Field>
        <Field label="Type">
          <select value={form.type} onChange={(e) => set({ type: Number(e.target.value) })}>
            <Options of={TYPES} />
          </select>
        </Field>
        <Field label="Assignee" error={fieldError(error, "assignee_id")}>
          <select value={form.assigneeId} onChange={(e) => set({ assigneeId: e.target.value })}>
            <option value="">Unassigned</option>
            <Options of={agentChoices(dir.agents)} />
          </select>
        </Field>
        <Field label="Team" error={fieldError(error, "group_id")}>
          <select value={form.groupId} onChange={(e) => set({ groupId: e.target.value })}>
            <option value="">No team</option>
            <Options of={teamChoices(dir.teams)} />
          </select>
        </Field>
        <FormFoot onCancel={onClose} busy={busy} label="Create ticket" busyLabel="Creating…" testId="ticket-new-save" />
      </form>
    </Dialog>
  );
}
