// The widget's styles, injected into its shadow root (the script is one file, and the
// shadow root keeps the site's CSS and ours apart).

/** Every rule the widget uses. */
export const STYLES = `
:host { all: initial; }
.root {
  --accent: #2f6fed;
  --accent-dark: #1f56c7;
  --accent-soft: #eaf1ff;
  --text: #1b2430;
  --muted: #6b7683;
  --line: #e4e7ec;
  --bg: #f5f7fa;
  --danger: #c62828;
  --warn: #9a5b00;
  --warn-soft: #fff5e5;
  --ok: #2e7d32;
  font-family: system-ui, -apple-system, "Segoe UI", Roboto, "Helvetica Neue", Arial, sans-serif;
  font-size: 14px;
  line-height: 1.45;
  color: var(--text);
  -webkit-font-smoothing: antialiased;
}
*, *::before, *::after { box-sizing: border-box; }
button { font: inherit; color: inherit; cursor: pointer; }
button:disabled { cursor: default; }
:focus-visible { outline: 2px solid var(--accent); outline-offset: 2px; }
.visually-hidden { position: absolute; width: 1px; height: 1px; margin: -1px; padding: 0; overflow: hidden; clip: rect(0 0 0 0); white-space: nowrap; border: 0; }

/* Launcher */
.launcher {
  position: fixed; right: 20px; bottom: 20px; z-index: 2147483000;
  width: 58px; height: 58px; border-radius: 50%; border: none;
  background: var(--accent); color: #fff;
  display: flex; align-items: center; justify-content: center;
  box-shadow: 0 6px 20px rgba(31, 86, 199, 0.38), 0 2px 6px rgba(0, 0, 0, 0.12);
  transition: transform 0.15s ease, background 0.15s ease;
}
.launcher:hover { background: var(--accent-dark); transform: scale(1.05); }
.launcher .unread {
  position: absolute; top: -3px; right: -3px; min-width: 21px; height: 21px; padding: 0 6px;
  border-radius: 11px; background: #e5383b; color: #fff; border: 2px solid #fff;
  font-size: 11px; font-weight: 700; line-height: 17px; text-align: center;
}

/* Panel */
.panel {
  position: fixed; right: 20px; bottom: 90px; z-index: 2147483000;
  width: 380px; height: min(640px, calc(100vh - 110px));
  display: flex; flex-direction: column; overflow: hidden;
  background: #fff; border-radius: 16px;
  box-shadow: 0 18px 50px rgba(17, 24, 39, 0.22), 0 2px 8px rgba(17, 24, 39, 0.08);
  animation: rise 0.18s ease-out;
}
@keyframes rise { from { opacity: 0; transform: translateY(12px); } to { opacity: 1; transform: none; } }
@media (max-width: 480px) {
  .panel { inset: 0; width: 100%; height: 100%; border-radius: 0; animation: none; }
  .launcher.open { display: none; }
}

.head {
  display: flex; align-items: center; gap: 10px; padding: 14px 12px 14px 16px;
  background: linear-gradient(135deg, var(--accent) 0%, var(--accent-dark) 100%); color: #fff;
  flex: none;
}
.avatar {
  width: 38px; height: 38px; border-radius: 50%; flex: none;
  background: rgba(255, 255, 255, 0.2); display: flex; align-items: center; justify-content: center;
  font-weight: 700; font-size: 16px;
}
.head-text { flex: 1; min-width: 0; }
.head-title { font-weight: 650; font-size: 15.5px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.head-sub { font-size: 12.5px; opacity: 0.85; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.head-btn {
  flex: none; height: 32px; min-width: 32px; border-radius: 8px; border: none; padding: 0 6px;
  background: transparent; color: #fff; display: flex; align-items: center; justify-content: center;
}
.head-btn:hover { background: rgba(255, 255, 255, 0.16); }
.head-btn.text { font-size: 12.5px; font-weight: 600; padding: 0 10px; border: 1px solid rgba(255, 255, 255, 0.4); }

.confirm {
  display: flex; align-items: center; gap: 8px; flex-wrap: wrap; padding: 10px 14px;
  background: #fff8ec; border-bottom: 1px solid #f3e2c2; font-size: 13px; flex: none;
}
.confirm > span:first-child { flex: 1; font-weight: 600; }
.confirm .error { color: var(--danger); width: 100%; order: 5; }

/* Buttons */
button.primary, .confirm button, .ended button {
  border-radius: 9px; border: 1px solid var(--line); background: #fff; padding: 7px 14px; font-weight: 600; font-size: 13px;
}
button.primary { background: var(--accent); border-color: var(--accent); color: #fff; }
button.primary:hover:not(:disabled) { background: var(--accent-dark); }
button.primary:disabled { opacity: 0.5; }
button.block { width: 100%; padding: 10px 14px; font-size: 14px; }
button.link { border: none; background: none; padding: 0; color: var(--accent); font-weight: 600; text-decoration: underline; }

/* States */
.state { flex: 1; display: flex; align-items: center; justify-content: center; padding: 24px; color: var(--muted); text-align: center; }
.state.error, .error { color: var(--danger); }
.banner { margin: 0; padding: 8px 14px; font-size: 12.5px; border-bottom: 1px solid var(--line); background: #fdecec; flex: none; }
.scroll { flex: 1; overflow-y: auto; background: var(--bg); }

/* Pre-chat form */
.prechat { display: flex; flex-direction: column; gap: 12px; padding: 18px 18px 20px; }
.welcome { background: #fff; border: 1px solid var(--line); border-radius: 12px; padding: 14px 16px; }
.welcome h2 { margin: 0 0 4px; font-size: 17px; }
.welcome p { margin: 0; color: var(--muted); white-space: pre-wrap; }
.notice { margin: 0; padding: 8px 12px; border-radius: 9px; background: var(--warn-soft); color: var(--warn); font-size: 13px; }
.field { display: flex; flex-direction: column; gap: 5px; font-size: 13px; font-weight: 600; }
.field em { font-style: normal; font-weight: 400; color: var(--muted); font-size: 12px; }
.field input, .field textarea, .csat textarea {
  font: inherit; font-weight: 400; font-size: 14px; color: var(--text);
  border: 1px solid #d5dae1; border-radius: 9px; padding: 9px 11px; background: #fff; width: 100%;
  transition: border-color 0.12s, box-shadow 0.12s;
}
.field textarea, .csat textarea { resize: vertical; min-height: 44px; }
.field input:focus, .field textarea:focus, .csat textarea:focus { outline: none; border-color: var(--accent); box-shadow: 0 0 0 3px rgba(47, 111, 237, 0.15); }
.form-error { margin: 0; color: var(--danger); font-size: 13px; }

/* Ticket card and queue line */
.ticket {
  display: flex; gap: 10px; align-items: flex-start; padding: 10px 14px; flex: none;
  background: #fff; border-bottom: 1px solid var(--line); color: var(--text); font-size: 13px;
}
.ticket svg { color: var(--accent); margin-top: 1px; flex: none; }
.ticket-text { min-width: 0; }
.ticket-subject { color: var(--muted); font-size: 12px; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; }
.tone-info { color: var(--accent); }
.tone-warn { color: var(--warn); }
.tone-ok { color: var(--ok); }
.tone-neutral { color: var(--muted); }
.queue {
  display: flex; align-items: center; gap: 9px; padding: 9px 14px; flex: none;
  background: var(--accent-soft); color: #1c3f8f; font-size: 13px; font-weight: 550;
  border-bottom: 1px solid #d6e3fd;
}
.pulse { width: 8px; height: 8px; border-radius: 50%; background: var(--accent); flex: none; animation: pulse 1.6s infinite; }
@keyframes pulse { 0% { box-shadow: 0 0 0 0 rgba(47, 111, 237, 0.5); } 70% { box-shadow: 0 0 0 8px rgba(47, 111, 237, 0); } 100% { box-shadow: 0 0 0 0 rgba(47, 111, 237, 0); } }

/* Messages */
.messages { flex: 1; overflow-y: auto; padding: 14px 14px 8px; background: var(--bg); display: flex; flex-direction: column; gap: 3px; }
.row { display: flex; flex-direction: column; max-width: 82%; }
.row.first { margin-top: 8px; }
.row.customer { align-self: flex-end; align-items: flex-end; }
.row.agent { align-self: flex-start; align-items: flex-start; }
.who { font-size: 12px; color: var(--muted); font-weight: 600; margin: 0 0 3px 4px; }
.bubble {
  padding: 8px 12px; border-radius: 16px; white-space: pre-wrap; overflow-wrap: anywhere;
  box-shadow: 0 1px 1px rgba(17, 24, 39, 0.04);
}
.customer .bubble { background: var(--accent); color: #fff; border-bottom-right-radius: 5px; }
.agent .bubble { background: #fff; border: 1px solid var(--line); border-bottom-left-radius: 5px; }
.bubble a { color: inherit; text-decoration: underline; }
.meta { font-size: 11px; color: var(--muted); margin: 3px 4px 2px; }
.meta.error { color: var(--danger); }
.pending .bubble { opacity: 0.65; }
.failed .bubble { opacity: 1; background: #fdecec; color: var(--text); border: 1px solid #f2b8b8; }

.line { align-self: center; text-align: center; max-width: 90%; margin: 8px 0 4px; }
.line.system {
  display: inline-flex; align-items: center; gap: 6px; justify-content: center;
  font-size: 12px; color: var(--muted); white-space: pre-wrap; overflow-wrap: anywhere;
}
.line.system.warn { background: var(--warn-soft); color: var(--warn); padding: 5px 11px; border-radius: 12px; }
.line.system.closed { font-weight: 600; }
.line.system.ticket-line svg { color: var(--accent); flex: none; }
.line.system.survey { color: var(--text); font-weight: 600; font-size: 13px; margin-top: 14px; }
.line.system a { color: inherit; }
.line.bot { display: flex; flex-direction: column; align-items: center; gap: 6px; }
.bot-card {
  background: #eef1f6; color: #3b4654; border-radius: 12px; padding: 8px 13px; font-size: 13px;
  white-space: pre-wrap; overflow-wrap: anywhere;
}
.bot-card a { color: var(--accent); }
.menu { display: flex; flex-wrap: wrap; gap: 6px; justify-content: center; }
.menu button {
  border: 1px solid var(--accent); color: var(--accent); background: #fff; border-radius: 16px; padding: 5px 12px; font-size: 13px; font-weight: 600;
}
.menu button:hover:not(:disabled) { background: var(--accent-soft); }
.menu button:disabled { border-color: var(--line); color: var(--muted); }

.files { list-style: none; margin: 6px 0 0; padding: 0; display: flex; flex-direction: column; gap: 4px; }
.bubble > .files:first-child { margin-top: 0; }
.file {
  display: inline-flex; align-items: center; gap: 6px; max-width: 100%;
  padding: 6px 9px; border-radius: 9px; background: rgba(0, 0, 0, 0.06); color: inherit; text-decoration: none;
}
.customer .file { background: rgba(255, 255, 255, 0.18); }
a.file:hover { text-decoration: underline; }
.file-name { font-weight: 600; white-space: nowrap; overflow: hidden; text-overflow: ellipsis; min-width: 0; }
.file-size { opacity: 0.75; font-size: 12px; white-space: nowrap; }

.typing { display: flex; align-items: center; gap: 8px; color: var(--muted); font-size: 12.5px; margin: 8px 4px 2px; }
.dots { display: inline-flex; gap: 3px; padding: 7px 9px; background: #fff; border: 1px solid var(--line); border-radius: 12px; }
.dots i { width: 6px; height: 6px; border-radius: 50%; background: #9aa4b1; animation: blink 1.2s infinite ease-in-out; }
.dots i:nth-child(2) { animation-delay: 0.15s; }
.dots i:nth-child(3) { animation-delay: 0.3s; }
@keyframes blink { 0%, 80%, 100% { opacity: 0.3; transform: translateY(0); } 40% { opacity: 1; transform: translateY(-2px); } }

/* Survey */
.csat {
  align-self: stretch; margin: 10px 6px 6px; padding: 14px 14px 12px; background: #fff;
  border: 1px solid var(--line); border-radius: 14px; display: flex; flex-direction: column; gap: 8px; align-items: center;
}
.csat.done { color: var(--ok); font-weight: 600; padding: 12px; }
.stars { display: flex; gap: 4px; }
.star { border: none; background: none; padding: 3px; color: #c3cad3; border-radius: 8px; }
.star.on { color: #f5a524; }
.star:hover { transform: scale(1.08); }
.csat-meaning { font-size: 12px; color: var(--muted); min-height: 17px; }

/* Composer and the end of a chat */
.composer { flex: none; border-top: 1px solid var(--line); background: #fff; padding: 8px 10px 10px; }
.compose-row { display: flex; align-items: flex-end; gap: 6px; }
.compose-row textarea {
  flex: 1; resize: none; border: 1px solid #d5dae1; border-radius: 18px; padding: 8px 14px; max-height: 120px;
  font: inherit; font-size: 14px; color: var(--text); background: #fff; line-height: 1.4;
}
.compose-row textarea:focus { outline: none; border-color: var(--accent); box-shadow: 0 0 0 3px rgba(47, 111, 237, 0.15); }
.icon {
  flex: none; width: 36px; height: 36px; border-radius: 50%; border: none; background: transparent; color: var(--muted);
  display: flex; align-items: center; justify-content: center; cursor: pointer;
}
.icon:hover { background: #f0f2f5; color: var(--text); }
.attach:focus-within { outline: 2px solid var(--accent); outline-offset: 1px; }
.icon.send { background: var(--accent); color: #fff; }
.icon.send:hover:not(:disabled) { background: var(--accent-dark); color: #fff; }
.icon.send:disabled { background: #c9d6f3; color: #fff; }
.icon.small { width: 20px; height: 20px; }
.composer-error { margin: 0 4px 6px; color: var(--danger); font-size: 12.5px; }
.staged { list-style: none; margin: 0 0 6px; padding: 0; display: flex; flex-wrap: wrap; gap: 6px; }
.staged li {
  display: inline-flex; align-items: center; gap: 5px; max-width: 100%; padding: 3px 4px 3px 9px;
  border-radius: 14px; background: var(--accent-soft); color: #1c3f8f; font-size: 12.5px;
}
.ended {
  flex: none; display: flex; align-items: center; justify-content: space-between; gap: 10px;
  padding: 12px 14px; border-top: 1px solid var(--line); background: #fff; color: var(--muted); font-size: 13px;
}
`;
