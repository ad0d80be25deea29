// An admin sets up a fresh account in the workbench's Admin pages (a team, two agents,
// an inbox, pooled routing, an automation rule, a webhook endpoint), then the setup is
// worked in real browsers (Debian's Chromium driven by Playwright): a visitor starts a
// chat, Ana picks it from the queue and mentions Li in a note, Li reads the mention,
// and the admin checks the rule's runs and the webhook's deliveries. Run by
// services/helpdesk/tests/browser.rs, which starts `helpdesk up` with an empty account
// and checks the result through the API.
//
// Environment: HD_WEB (the workbench's URL), HD_CHROMIUM, HD_SHOTS (screenshot folder),
// HD_ACCOUNT, HD_TOKEN_ADMIN, HD_TOKEN_ANA, HD_TOKEN_LI (agents the admin creates),
// HD_WEBHOOK_URL (a receiver answering 2xx).
// Exits non-zero, naming the step, when anything a user would notice goes wrong.

import { LIVE, startJourney } from "./lib.mjs";

const { env, web: WEB, browser, pages, step, shot, waitText, signIn, run } = await startJourney({
  label: "admin journey",
  required: ["HD_ACCOUNT", "HD_TOKEN_ADMIN", "HD_TOKEN_ANA", "HD_TOKEN_LI", "HD_WEBHOOK_URL"],
  prefix: "admin-",
  fullPage: true,
});

/**
 * For lists the platform offers no stream of (rule runs, webhook deliveries): presses
 * the list's Refresh button, as a person would, until `target` shows.
 */
async function refreshUntil(refresh, target, timeout = LIVE) {
  const deadline = Date.now() + timeout;
  for (;;) {
    try {
      await target.first().waitFor({ timeout: 2_000 });
      return;
    } catch (err) {
      if (Date.now() > deadline) throw err;
    }
    await refresh.click();
  }
}


/** Opens an Admin section from the side navigation. */
async function adminSection(page, key) {
  await page.getByTestId("nav-admin").click();
  await page.getByTestId(`admin-nav-${key}`).click();
}

/** Creates an agent on the Agents page and waits for their page. */
async function createAgent(admin, teamId, id, name) {
  await adminSection(admin, "agents");
  await admin.getByTestId("agent-new").click();
  await admin.getByTestId("agent-id").fill(id);
  await admin.getByTestId("agent-name").fill(name);
  await admin.getByTestId(`agent-team-${teamId}`).check();
  await admin.getByTestId("agent-max-chats").fill("2");
  await admin.getByTestId("agent-save").click();
  await admin.waitForURL((u) => u.hash === `#/admin/agents/${id}`, { timeout: LIVE });
  await admin.getByRole("heading", { name, exact: true }).waitFor({ timeout: LIVE });
}

await run(async () => {
  step("the admin signs in and creates the team Billing");
  const admin = await signIn("admin", env.HD_TOKEN_ADMIN);
  await waitText(admin, "account", env.HD_ACCOUNT);
  await adminSection(admin, "teams");
  await admin.getByTestId("team-name").fill("Billing");
  await admin.getByTestId("team-save").click();
  const teamRow = admin.getByTestId("team-row").filter({ hasText: "Billing" });
  await teamRow.waitFor({ timeout: LIVE });
  const teamId = await teamRow.getAttribute("data-id");
  await shot(admin, "teams");

  step("the admin creates the agents Ana and Li in Billing, two chats each");
  await createAgent(admin, teamId, "ana", "Ana");
  await createAgent(admin, teamId, "li", "Li");
  await adminSection(admin, "agents");
  for (const id of ["ana", "li"]) {
    const row = admin.locator(`[data-testid="agent-row"][data-id="${id}"]`);
    await row.filter({ hasText: "Billing" }).waitFor({ timeout: LIVE });
  }
  await shot(admin, "agents");

  step("the admin creates the inbox Help centre with a pre-chat field and a greeting");
  await adminSection(admin, "inboxes");
  await admin.getByTestId("inbox-new").click();
  await admin.getByTestId("inbox-name").fill("Help centre");
  await admin.getByTestId("inbox-prechat").fill("order_number");
  await admin.getByTestId("inbox-prechat").press("Enter");
  await admin.getByTestId("inbox-greeting").fill("Hi! How can we help?");
  await admin.getByTestId("inbox-save").click();
  const keyBox = admin.getByTestId("inbox-public-key");
  await keyBox.waitFor({ timeout: LIVE });
  const inboxKey = (await keyBox.textContent()).trim();
  if (!inboxKey) throw new Error("the inbox shows no public key");
  await shot(admin, "inbox");

  step("the admin turns on pooled mode");
  await adminSection(admin, "routing");
  await admin.getByTestId("routing-pooled").check();
  await admin.getByTestId("routing-save").click();
  await admin.locator(".adm-saved").filter({ hasText: "Saved" }).waitFor({ timeout: LIVE });
  await shot(admin, "routing");

  step("the admin creates the rule Tag refunds");
  await adminSection(admin, "automation");
  await admin.getByTestId("rule-new").click();
  await admin.getByTestId("rule-name").fill("Tag refunds");
  await admin.getByTestId("rule-event").selectOption("message.incoming");
  await admin.getByTestId("rule-enabled").check();
  await admin.getByTestId("rule-add-condition").click();
  const condition = admin.getByTestId("rule-condition").first();
  await condition.getByTestId("rule-condition-attribute").fill("message.content");
  await condition.getByTestId("rule-condition-operator").selectOption({ label: "contains" });
  await condition.getByTestId("rule-condition-values").fill("refund");
  await condition.getByTestId("rule-condition-values").press("Enter");
  await admin.getByTestId("action-add").click();
  const action = admin.getByTestId("action-row").first();
  await action.getByTestId("action-kind").selectOption("addLabels");
  await action.getByTestId("action-labels").fill("refund");
  await action.getByTestId("action-labels").press("Enter");
  await shot(admin, "rule-form");
  await admin.getByTestId("rule-save").click();
  await admin.waitForURL((u) => /^#\/admin\/automation\/[^/]+$/.test(u.hash) && !u.hash.endsWith("/new"), { timeout: LIVE });
  const ruleId = new URL(admin.url()).hash.split("/").pop();
  await admin.getByRole("heading", { name: "Tag refunds", exact: true }).waitFor({ timeout: LIVE });
  await adminSection(admin, "automation");
  const ruleRow = admin.locator(`[data-testid="rule-row"][data-id="${ruleId}"]`);
  await ruleRow.filter({ hasText: "message.incoming" }).waitFor({ timeout: LIVE });
  if (!(await ruleRow.getByTestId("rule-active").isChecked())) throw new Error("the rule is not active");
  await shot(admin, "automation");

  step("the admin adds a webhook endpoint for every event and sees its secret once");
  await adminSection(admin, "webhooks");
  await admin.getByTestId("webhook-new").click();
  await admin.getByTestId("webhook-url").fill(env.HD_WEBHOOK_URL);
  await admin.getByTestId("webhook-all-events").check();
  await admin.getByTestId("webhook-save").click();
  const secret = admin.getByTestId("webhook-secret").first();
  await secret.waitFor({ timeout: LIVE });
  if (!(await secret.textContent()).trim()) throw new Error("the new endpoint's secret is empty");
  const endpointId = new URL(admin.url()).hash.split("/").pop();
  await shot(admin, "webhook-secret");

  step("a visitor starts a chat from the Help centre widget");
  const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const visitor = await visitorContext.newPage();
  pages.visitor = visitor;
  await visitor.goto(`${WEB}widget/demo.html?inbox=${encodeURIComponent(inboxKey)}`);
  await visitor.getByTestId("widget-launcher").click();
  await visitor.getByTestId("prechat-name").fill("Olga");
  await visitor.getByTestId("prechat-email").fill("olga@example.com");
  await visitor.getByTestId("prechat-field-order_number").fill("77");
  await visitor.getByTestId("prechat-message").fill("I want a refund for order 77");
  await visitor.getByTestId("start-chat").click();
  await waitText(visitor, "widget-message", /I want a refund for order 77/);
  await waitText(visitor, "widget-message", /Hi! How can we help\?/);
  await waitText(visitor, "queue-position", /\b1\b/);
  await shot(visitor, "visitor-waiting");

  step("Ana goes online and sees the chat waiting in the queue");
  const ana = await signIn("ana", env.HD_TOKEN_ANA);
  await ana.getByTestId("presence").selectOption("online");
  await waitText(ana, "capacity", /0\s*\/\s*2/);
  await ana.getByTestId("nav-queue").click();
  const queueRow = ana.getByTestId("queue-row").filter({ hasText: "Olga" });
  await queueRow.waitFor({ timeout: LIVE });
  const conversationId = await queueRow.getAttribute("data-id");
  await shot(ana, "queue-waiting");

  step("Ana picks the chat and sees the rule's label on it");
  await queueRow.getByTestId("queue-pick").click();
  await ana.waitForURL((u) => u.hash === `#/conversations/${conversationId}`, { timeout: LIVE });
  await waitText(ana, "chat-message", /I want a refund for order 77/);
  await waitText(ana, "label-chip", /^\s*refund\b/);
  await waitText(ana, "capacity", /1\s*\/\s*2/);
  await visitor.getByTestId("queue-position").waitFor({ state: "detached", timeout: LIVE });
  await shot(ana, "chat-label");

  step("Li signs in with nothing to read");
  const li = await signIn("li", env.HD_TOKEN_LI);
  await li.getByTestId("notification-bell").waitFor({ timeout: LIVE });
  if (await li.getByTestId("notification-count").isVisible()) throw new Error("Li has notifications before being mentioned");

  step("Ana writes a private note mentioning Li");
  await ana.getByTestId("note-toggle").click();
  const input = ana.getByTestId("reply-input");
  await input.pressSequentially("@li", { delay: 20 });
  const option = ana.locator('[data-testid="mention-option"][data-agent-id="li"]');
  await option.waitFor({ timeout: LIVE });
  await option.click();
  // The composer puts the handle in and its caret after it on the next frame.
  await ana.waitForFunction(() => document.querySelector('[data-testid="reply-input"]')?.value === "@li ", null, { timeout: LIVE });
  await ana.evaluate(() => new Promise((done) => requestAnimationFrame(() => done())));
  await input.pressSequentially("can you check order 77?", { delay: 10 });
  const written = await input.inputValue();
  if (written !== "@li can you check order 77?") throw new Error(`the note reads "${written}"`);
  await ana.getByTestId("reply-send").click();
  await ana
    .locator('[data-testid="chat-message"][data-private="true"]')
    .filter({ hasText: /can you check order 77\?/ })
    .waitFor({ timeout: LIVE });
  await shot(ana, "note");

  step("Li sees the mention live and marks it read");
  await waitText(li, "notification-count", /^\s*1\s*$/);
  await li.getByTestId("nav-notifications").click();
  await li.locator('[data-testid="notification-row"][data-read="false"]').first().waitFor({ timeout: LIVE });
  await shot(li, "notifications");
  await li.getByTestId("mark-all-read").click();
  await li.getByTestId("notification-count").waitFor({ state: "hidden", timeout: LIVE });
  await li.locator('[data-testid="notification-row"][data-read="true"]').first().waitFor({ timeout: LIVE });
  if ((await li.locator('[data-testid="notification-row"][data-read="false"]').count()) > 0) {
    throw new Error("a notification is still unread");
  }
  await shot(li, "notifications-read");

  step("the admin sees the rule's run and dry-runs it against the chat");
  await adminSection(admin, "automation");
  await ruleRow.click();
  await admin.waitForURL((u) => u.hash === `#/admin/automation/${ruleId}`, { timeout: LIVE });
  const runs = admin.getByTestId("rule-runs");
  await refreshUntil(runs.getByTestId("rule-runs-refresh"), runs.getByTestId("rule-run").filter({ hasText: /Fired/ }));
  await admin.getByTestId("rule-dry-run-id").fill(conversationId);
  await admin.getByTestId("rule-dry-run").click();
  await admin.locator('[data-testid="rule-dry-run-result"][data-matched="true"]').waitFor({ timeout: LIVE });
  await waitText(admin, "rule-dry-run-result", /refund/);
  await shot(admin, "rule-runs");

  step("the admin sees the webhook deliveries and redelivers one");
  await adminSection(admin, "webhooks");
  await admin.locator(`[data-testid="webhook-row"][data-id="${endpointId}"]`).click();
  const log = admin.getByTestId("delivery-log");
  const refresh = admin.getByTestId("delivery-refresh");
  const created = log.locator('[data-testid="delivery-row"][data-status="delivered"]').filter({ hasText: "conversation.created" });
  await refreshUntil(refresh, created);
  await log.getByTestId("delivery-row").filter({ hasText: "message.created" }).first().waitFor({ timeout: LIVE });
  if (await admin.getByTestId("webhook-secret").count()) throw new Error("the secret is shown again without being asked for");
  await shot(admin, "deliveries");
  const delivery = created.first();
  const deliveryId = await delivery.getAttribute("data-id");
  const row = log.locator(`[data-testid="delivery-row"][data-id="${deliveryId}"]`);
  const attemptsBefore = Number(await row.getByTestId("delivery-attempts-count").textContent());
  await row.getByTestId("redeliver").click();
  await refreshUntil(
    refresh,
    log
      .locator(`[data-testid="delivery-row"][data-id="${deliveryId}"][data-status="delivered"]`)
      .filter({ has: admin.getByTestId("delivery-attempts-count").filter({ hasText: String(attemptsBefore + 1) }) }),
  );
  await row.click();
  await log.getByTestId("delivery-attempts").locator("tbody tr").nth(attemptsBefore).waitFor({ timeout: LIVE });
  await shot(admin, "redelivered");
});
