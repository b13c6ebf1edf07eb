import { type Browser, chromium } from "playwright-core";

/**
 * Debian's chromium driven by playwright-core (never `playwright install`: no browser
 * downloads). Headless, sandbox off (we run as root in a container), and every
 * background network feature off: nothing may leave the machine.
 */
export const CHROMIUM_PATH = process.env.TANDEM_CHROMIUM ?? "/usr/bin/chromium";

export function launchChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: CHROMIUM_PATH,
    headless: true,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
      "--no-first-run",
      "--disable-dev-shm-usage",
    ],
  });
}
