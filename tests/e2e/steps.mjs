// What the checks from outside share: numbered steps that print `ok N - …`
// or `not ok N - …` with the reason, the API called from Node, and Chromium
// launched the way these machines can run it.

import { chromium } from 'playwright-core';

export const GATEHOUSE_URL = (process.env.GATEHOUSE_URL || 'http://127.0.0.1:8080').replace(/\/+$/, '');
export const SCREENSHOT_DIR = process.env.SCREENSHOT_DIR || '/tmp/gatehouse-screenshots';
// Argon2 on a busy two-core machine can take a while; nothing else should.
export const ACTION_TIMEOUT_MS = 20_000;

export class Failure extends Error {}

export function fail(message) {
  throw new Failure(message);
}

export function check(condition, message) {
  if (!condition) fail(message);
}

let stepNumber = 0;

export async function step(name, body) {
  stepNumber += 1;
  try {
    await body();
  } catch (e) {
    console.log(`not ok ${stepNumber} - ${name}`);
    const reason = e instanceof Failure ? e.message : e.stack || String(e);
    console.log(reason.replace(/^/gm, '    '));
    throw new Failure(`step ${stepNumber} failed: ${name}`);
  }
  console.log(`ok ${stepNumber} - ${name}`);
}

export const oneLine = (s) => String(s ?? '').replace(/\s+/g, ' ').trim();
export const clip = (s, n = 400) => (s.length > n ? `${s.slice(0, n)}…` : s);

// A call to gatehouse from Node: the witness of what really happened on the
// server, independent of what a page shows.
export async function api(method, pathname, { body, token } = {}) {
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;
  const res = await fetch(GATEHOUSE_URL + pathname, {
    method,
    headers,
    body: body === undefined ? undefined : JSON.stringify(body),
    signal: AbortSignal.timeout(ACTION_TIMEOUT_MS),
  });
  const text = await res.text();
  let json = null;
  try {
    json = text ? JSON.parse(text) : null;
  } catch {
    // not JSON; keep the text for messages
  }
  return { status: res.status, json, text, headers: res.headers };
}

// The first step of every check: the server answers. `howToStart` says how
// to start it as this check needs it.
export function serverAnswers(howToStart) {
  return step(`gatehouse answers at ${GATEHOUSE_URL}`, async () => {
    let res;
    try {
      res = await fetch(`${GATEHOUSE_URL}/health/live`, { signal: AbortSignal.timeout(5000) });
    } catch (e) {
      fail(`gatehouse is not reachable at ${GATEHOUSE_URL} (${e.cause?.code || e.message}). Start it first, e.g.\n` +
        howToStart);
    }
    check(res.status === 200, `GET /health/live answered ${res.status}: ${await res.text()}`);
  });
}

// Debian's Chromium, headless. The machines have no network beyond their
// own services, and without the background-networking flags Chromium keeps
// trying to reach Google's.
export function launchChromium() {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    args: ['--headless', '--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

// Runs `main`, then `cleanup` however it ended (also on Ctrl-C or SIGTERM),
// prints the verdict and exits: 0 only when every step passed.
export async function runChecks(main, cleanup, passedNote) {
  let cleaned = false;
  const cleanOnce = async () => {
    if (cleaned) return;
    cleaned = true;
    await cleanup();
  };
  for (const signal of ['SIGINT', 'SIGTERM']) {
    process.on(signal, async () => {
      console.log(`# interrupted by ${signal}`);
      await cleanOnce();
      process.exit(130);
    });
  }
  let exitCode = 0;
  try {
    await main();
    console.log(`# all ${stepNumber} steps passed; ${passedNote}`);
  } catch (e) {
    exitCode = 1;
    console.log(`# FAILED: ${e instanceof Failure ? e.message : e.stack || e}`);
  } finally {
    await cleanOnce();
  }
  process.exit(exitCode);
}
