// Getting an agent's attention: a short sound and desktop notifications.

let audio: AudioContext | undefined;

/**
 * Browsers let a page play sound only after the person interacted with it: the audio
 * context is made (or resumed) on the first click or key press.
 */
function unlockAudio() {
  try {
    audio ??= new AudioContext();
    void audio.resume();
  } catch {
    audio = undefined;
  }
}
if (typeof window !== "undefined") {
  window.addEventListener("pointerdown", unlockAudio, { capture: true });
  window.addEventListener("keydown", unlockAudio, { capture: true });
}

/** Two short soft tones. Silent until the page has had a click or key press. */
export function beep() {
  if (!audio || audio.state !== "running") return;
  const t0 = audio.currentTime;
  for (const [i, freq] of [880, 1175].entries()) {
    const osc = audio.createOscillator();
    const gain = audio.createGain();
    osc.type = "sine";
    osc.frequency.value = freq;
    const start = t0 + i * 0.12;
    gain.gain.setValueAtTime(0.0001, start);
    gain.gain.exponentialRampToValueAtTime(0.18, start + 0.015);
    gain.gain.exponentialRampToValueAtTime(0.0001, start + 0.11);
    osc.connect(gain).connect(audio.destination);
    osc.start(start);
    osc.stop(start + 0.12);
  }
}

/** Plays the sound now (from a click: the click itself allows the sound). */
export function testBeep() {
  unlockAudio();
  void audio?.resume().then(beep);
}

/** "granted", "denied", "default", or "unsupported" when the browser has no notifications. */
export function desktopPermission(): NotificationPermission | "unsupported" {
  return typeof Notification === "undefined" ? "unsupported" : Notification.permission;
}

/** Asks for permission to show desktop notifications (call it from a click). */
export async function askDesktopPermission(): Promise<NotificationPermission | "unsupported"> {
  if (typeof Notification === "undefined") return "unsupported";
  return Notification.requestPermission();
}

/** Shows a desktop notification when allowed; a click focuses the workbench and runs `open`. */
export function showDesktop(title: string, body: string, tag: string, open: () => void) {
  if (desktopPermission() !== "granted") return;
  const n = new Notification(title, { body, tag });
  n.onclick = () => {
    window.focus();
    open();
    n.close();
  };
}
