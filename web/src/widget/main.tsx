// The visitor widget's entry, built as one script (`widget/widget.js`). A site embeds it with
//   <script src="https://<helpdesk host>/widget/widget.js" data-inbox="<inbox public key>" async></script>
// It finds its own tag, learns the services' addresses from the helpdesk's `config.json`
// (at the site root, one level above `/widget/`), and renders the launcher and the
// chat panel in a shadow root, so the site's styles and the widget's never mix.

import { createRoot } from "react-dom/client";
import { loadEndpoints } from "../lib/client";
import { STYLES } from "./styles";
import { Widget } from "./Widget";

/** The `<script>` element that loaded this file. */
function ownScript(): HTMLScriptElement | undefined {
  const current = document.currentScript;
  if (current instanceof HTMLScriptElement && current.src) return current;
  const all = Array.from(document.querySelectorAll<HTMLScriptElement>("script[src]"));
  const ours = all.filter((s) => /\/widget\.js([?#]|$)/.test(s.src));
  return ours.find((s) => s.dataset.inbox) ?? ours[0];
}

async function mount(script: HTMLScriptElement | undefined): Promise<void> {
  const inboxKey = script?.dataset.inbox?.trim() ?? "";
  if (!inboxKey) {
    console.error("Chat widget: the script tag needs data-inbox=\"<inbox public key>\".");
    return;
  }
  if (document.querySelector(`[data-helpdesk-widget="${CSS.escape(inboxKey)}"]`)) return; // embedded twice
  const src = script?.src || location.href;
  const endpoints = await loadEndpoints(new URL("../", src).href);

  const host = document.createElement("div");
  host.dataset.helpdeskWidget = inboxKey;
  const shadow = host.attachShadow({ mode: "open" });
  const style = document.createElement("style");
  style.textContent = STYLES;
  const container = document.createElement("div");
  shadow.append(style, container);
  document.body.appendChild(host);
  createRoot(container).render(<Widget inboxKey={inboxKey} endpoints={endpoints} />);
}

// Read while this script runs: `document.currentScript` is unset afterwards.
const script = ownScript();
if (document.body) void mount(script);
else document.addEventListener("DOMContentLoaded", () => void mount(script), { once: true });
