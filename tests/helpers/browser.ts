import { existsSync } from 'node:fs';
import { type Browser, chromium } from 'playwright-core';

/** Debian's Chromium (`npm run setup:system`), never a Playwright browser download. */
export const CHROMIUM = process.env.CHROMIUM_PATH ?? '/usr/bin/chromium';

// Without the background-networking flags Chromium dials Google services, which this closed network refuses.
const CHROMIUM_ARGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

/**
 * Why the browser tests cannot run, or undefined. A missing browser fails every test (it never
 * skips one): the suite must not pass without it.
 */
export const missingChromium = existsSync(CHROMIUM)
  ? undefined
  : `Chromium not found at ${CHROMIUM}: run \`npm run setup:system\` (installs Debian's chromium), or set CHROMIUM_PATH`;

export const launchChromium = (): Promise<Browser> =>
  chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
