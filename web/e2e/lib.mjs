// What both browser journeys are made of: Debian's Chromium driven by Playwright,
// named steps, numbered screenshots, live waits and the workbench's sign-in.

import { chromium } from "playwright-core";

/** How long anything live may take to show (generous: the suite runs beside it). */
export const LIVE = 30_000;

/**
 * Starts a journey: checks that `required` environment variables are set (HD_WEB,
 * HD_CHROMIUM and HD_SHOTS always are) and launches the browser. Screenshots are
 * `<prefix>NN-<name>.png` in HD_SHOTS (`fullPage` for long pages).
 */
export async function startJourney({ label, required, prefix = "", fullPage = false }) {
  const env = process.env;
  for (const name of ["HD_WEB", "HD_CHROMIUM", "HD_SHOTS", ...required]) {
    if (!env[name]) throw new Error(`${name} is not set`);
  }
  const browser = await chromium.launch({
    executablePath: env.HD_CHROMIUM,
    args: ["--headless", "--no-sandbox", "--disable-background-networking"],
  });
  const pages = {};
  let shotNumber = 0;
  let current = "starting";
  const j = {
    env,
    web: env.HD_WEB,
    browser,
    /** Every page opened, by who uses it (screenshotted when the journey fails). */
    pages,
    step(name) {
      current = name;
      console.log(`step: ${name}`);
    },
    async shot(page, name) {
      shotNumber += 1;
      const file = `${prefix}${String(shotNumber).padStart(2, "0")}-${name}.png`;
      await page.screenshot({ path: `${env.HD_SHOTS}/${file}`, fullPage });
    },
    /** Waits until an element with this test id shows text matching `re`. */
    async waitText(page, testId, re, timeout = LIVE) {
      await page.getByTestId(testId).filter({ hasText: re }).first().waitFor({ timeout });
    },
    /** A staff member signed in to the workbench with their token, in a browser of their own. */
    async signIn(name, token) {
      const context = await browser.newContext({ viewport: { width: 1440, height: 900 } });
      const page = await context.newPage();
      pages[name] = page;
      await page.goto(env.HD_WEB);
      await page.getByTestId("token").fill(token);
      await page.getByTestId("sign-in").click();
      await page.getByTestId("me").waitFor({ timeout: LIVE });
      return page;
    },
    /** Runs the steps; on a failure names the step, screenshots every page, exits 1. */
    async run(steps) {
      try {
        await steps();
        console.log(`${label}: every step passed`);
      } catch (err) {
        console.error(`${label} failed at step "${current}": ${err?.message ?? err}`);
        for (const [name, page] of Object.entries(pages)) {
          await page.screenshot({ path: `${env.HD_SHOTS}/${prefix}failed-${name}.png`, fullPage }).catch(() => {});
        }
        process.exitCode = 1;
      } finally {
        await browser.close();
      }
    },
  };
  return j;
}
