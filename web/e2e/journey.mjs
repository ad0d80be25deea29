// A chat from start to finish in real browsers (Debian's Chromium driven by
// Playwright): a visitor on a shop's page, two agents and a supervisor in the
// workbench, against a running platform. Run by services/helpdesk/tests/browser.rs,
// which starts `helpdesk up`, seeds the shop and checks the result through the API.
//
// Environment: HD_WEB (the workbench's URL), HD_CHROMIUM, HD_SHOTS (screenshot folder),
// HD_INBOX_KEY, HD_TOKEN_ANA, HD_TOKEN_LI, HD_TOKEN_SUPERVISOR.
// Exits non-zero, naming the step, when anything a user would notice goes wrong.

import { LIVE, startJourney } from "./lib.mjs";

const { env, web: WEB, browser, pages, step, shot, waitText, signIn, run } = await startJourney({
  label: "journey",
  required: ["HD_INBOX_KEY", "HD_TOKEN_ANA", "HD_TOKEN_LI", "HD_TOKEN_SUPERVISOR"],
});

await run(async () => {
  step("the supervisor watches the live queue");
  const sup = await signIn("supervisor", env.HD_TOKEN_SUPERVISOR);
  await sup.getByTestId("nav-supervisor").click();
  await waitText(sup, "sup-total-waiting", /^\s*0\b/);

  step("a visitor opens the shop's page and starts a chat from the widget");
  const visitorContext = await browser.newContext({ viewport: { width: 1280, height: 860 } });
  const visitor = await visitorContext.newPage();
  pages.visitor = visitor;
  await visitor.goto(`${WEB}widget/demo.html?inbox=${encodeURIComponent(env.HD_INBOX_KEY)}`);
  await visitor.getByTestId("widget-launcher").click();
  await visitor.getByTestId("prechat-name").fill("Maria");
  await visitor.getByTestId("prechat-email").fill("maria@example.com");
  await visitor.getByTestId("prechat-field-order_number").fill("A-1042");
  await visitor.getByTestId("prechat-message").fill("Where is my parcel?");
  await shot(visitor, "visitor-pre-chat-form");
  await visitor.getByTestId("start-chat").click();
  await waitText(visitor, "widget-message", /Where is my parcel\?/);
  await waitText(visitor, "widget-message", /Ask us anything about your order/);

  step("no agent is online: the visitor waits first in line");
  await waitText(visitor, "queue-position", /\b1\b/);
  await shot(visitor, "visitor-waiting-in-queue");

  step("the supervisor sees the chat waiting, live");
  await waitText(sup, "sup-total-waiting", /^\s*1\b/);
  await shot(sup, "supervisor-one-waiting");

  step("Ana goes online and routing gives her the chat");
  const ana = await signIn("ana", env.HD_TOKEN_ANA);
  await ana.getByTestId("presence").selectOption("online");
  const row = ana.getByTestId("conversation-row").first();
  await row.waitFor({ timeout: LIVE });
  await waitText(ana, "capacity", /1\s*\/\s*3/);
  await row.click();
  await waitText(ana, "chat-message", /Where is my parcel\?/);

  step("the visitor sees Ana join and leaves the queue");
  await waitText(visitor, "widget-message", /Ana/);
  await visitor.getByTestId("queue-position").waitFor({ state: "detached", timeout: LIVE });
  await waitText(sup, "sup-total-waiting", /^\s*0\b/);

  step("typing shows on both sides");
  await visitor.getByTestId("widget-input").pressSequentially("It was due yesterday", { delay: 20 });
  await ana.getByTestId("customer-typing").waitFor({ timeout: LIVE });
  await visitor.getByTestId("widget-send").click();
  await waitText(ana, "chat-message", /It was due yesterday/);
  await ana.getByTestId("reply-input").pressSequentially("Let me check that for you, Maria.", { delay: 20 });
  await visitor.getByTestId("agent-typing").waitFor({ timeout: LIVE });

  step("Ana replies and the visitor reads it");
  await ana.getByTestId("reply-send").click();
  await visitor
    .locator('[data-testid="widget-message"][data-author="agent"]')
    .filter({ hasText: /Let me check that for you/ })
    .waitFor({ timeout: LIVE });
  await shot(ana, "agent-chat");
  await shot(visitor, "visitor-chatting");

  step("Li goes online; Ana offers him the chat with a note");
  const li = await signIn("li", env.HD_TOKEN_LI);
  await li.getByTestId("presence").selectOption("online");
  await ana.getByTestId("transfer-open").click();
  const target = ana.locator('[data-testid="transfer-target"][data-agent-id="li"]');
  await target.waitFor({ timeout: LIVE });
  await target.click();
  await ana.getByTestId("transfer-note").fill("Parcel A-1042 is late; the warehouse team knows more.");
  await shot(ana, "transfer-dialog");
  await ana.getByTestId("transfer-send").click();

  step("Li sees the offer with its countdown and accepts it");
  await li.getByTestId("transfer-offer").waitFor({ timeout: LIVE });
  await waitText(li, "transfer-offer", /warehouse team/);
  await li.getByTestId("transfer-countdown").waitFor();
  await shot(li, "transfer-offer");
  await li.getByTestId("transfer-accept").click();
  await waitText(ana, "transfer-state", /accepted/i);

  step("Li has the chat and its history");
  await waitText(li, "chat-message", /Where is my parcel\?/);
  await li.getByTestId("reply-input").fill("Hi Maria, I have opened a ticket with our warehouse.");
  await li.getByTestId("reply-send").click();
  await visitor
    .locator('[data-testid="widget-message"][data-author="agent"]')
    .filter({ hasText: /I have opened a ticket/ })
    .waitFor({ timeout: LIVE });

  step("Li turns the chat into a ticket in one click and solves it");
  const conversationUrl = li.url();
  await li.getByTestId("create-ticket").click();
  await li.getByTestId("ticket-subject").waitFor({ timeout: LIVE });
  await li.getByTestId("ticket-transcript").waitFor({ timeout: LIVE });
  await waitText(li, "ticket-transcript", /Where is my parcel\?/);
  await li.getByTestId("ticket-solve").click();
  await waitText(li, "ticket-status", /solved/i);
  await shot(li, "ticket-solved");

  step("the visitor's widget shows the ticket's status");
  await waitText(visitor, "ticket-status", /solved/i);
  await shot(visitor, "visitor-ticket-status");

  step("Li resolves the chat; the visitor rates it");
  await li.goto(conversationUrl);
  await li.getByTestId("resolve").click();
  await visitor.getByTestId("csat").waitFor({ timeout: LIVE });
  await visitor.getByTestId("csat-5").click();
  await visitor.getByTestId("csat-comment").fill("Quick and kind, thank you!");
  await visitor.getByTestId("csat-submit").click();
  await visitor.getByTestId("csat-thanks").waitFor({ timeout: LIVE });
  await shot(visitor, "visitor-rated");

  step("the conversation survives a reload of the visitor's page");
  await visitor.reload();
  if (!(await visitor.getByTestId("widget-panel").isVisible())) {
    await visitor.getByTestId("widget-launcher").click();
  }
  await waitText(visitor, "widget-message", /Where is my parcel\?/);
  await waitText(visitor, "widget-message", /I have opened a ticket/);
});
