// End-to-end check of the browser example (examples/web) in headless Chromium.
//
// It serves examples/web on its own origin, drives the page through the whole
// flow against an already running gatehouse, and judges what the page SHOWS
// (text of elements), with the API itself (Node's fetch) as the witness of
// what really happened on the server.
//
// The server must be running with the example's origin allowed and one-minute
// access tokens, e.g.:
//
//   DATABASE_URL=sqlite:///tmp/e2e.db BIND_ADDR=127.0.0.1:8080 \
//   CORS_ALLOWED_ORIGINS=http://127.0.0.1:8081 ACCESS_TOKEN_EXPIRE_MINUTES=1 gatehouse serve
//   node tests/e2e/browser-example.mjs
//
// Environment: GATEHOUSE_URL (http://127.0.0.1:8080), EXAMPLE_PORT (8081),
// OTHER_ORIGIN_PORT (8082), SCREENSHOT_DIR (/tmp/gatehouse-screenshots).
// It waits about 67 s for an access token to expire; the whole run takes ~80 s.

import http from 'node:http';
import { mkdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { GATEHOUSE_URL, SCREENSHOT_DIR, ACTION_TIMEOUT_MS, Failure, fail, check, step, serverAnswers, runChecks, api, launchChromium } from './steps.mjs';

const EXAMPLE_PORT = Number(process.env.EXAMPLE_PORT || 8081);
const OTHER_ORIGIN_PORT = Number(process.env.OTHER_ORIGIN_PORT || 8082);
const EXAMPLE_ORIGIN = `http://127.0.0.1:${EXAMPLE_PORT}`;
const OTHER_ORIGIN = `http://127.0.0.1:${OTHER_ORIGIN_PORT}`;
const WEB_DIR = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../examples/web');

// 60 s of token life + the server's 5 s leeway + whole-second rounding of
// exp and of the clock, counted from after the login answer arrived.
const EXPIRY_WAIT_MS = 67_000;
const LOCAL_HOSTS = new Set(['127.0.0.1', 'localhost', '[::1]']);

// ---------------------------------------------------------------------------
// Static servers: the example on the allowed origin, a stub on another one
// ---------------------------------------------------------------------------

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.png': 'image/png',
  '.svg': 'image/svg+xml',
};

function exampleServer() {
  return http.createServer(async (req, res) => {
    const { pathname } = new URL(req.url, EXAMPLE_ORIGIN);
    const file = path.resolve(WEB_DIR, '.' + decodeURIComponent(pathname === '/' ? '/index.html' : pathname));
    const type = TYPES[path.extname(file)];
    // Only files inside examples/web, and only the kinds the page uses.
    if (!file.startsWith(WEB_DIR + path.sep) || !type || (req.method !== 'GET' && req.method !== 'HEAD')) {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
      return;
    }
    try {
      const content = await readFile(file);
      res.writeHead(200, { 'Content-Type': type, 'Cache-Control': 'no-store' });
      res.end(req.method === 'HEAD' ? undefined : content);
    } catch {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found');
    }
  });
}

function otherOriginServer() {
  return http.createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8', 'Cache-Control': 'no-store' });
    res.end('<!doctype html><meta charset="utf-8"><link rel="icon" href="data:,"><title>other origin</title>' +
      '<p>An origin that gatehouse does not list in CORS_ALLOWED_ORIGINS.</p>');
  });
}

function listen(server, port) {
  return new Promise((resolve, reject) => {
    server.once('error', (e) =>
      reject(new Failure(`cannot serve on 127.0.0.1:${port}: ${e.code || e.message} (is the port in use?)`)));
    server.listen(port, '127.0.0.1', resolve);
  });
}

function closeServer(server) {
  if (!server.listening) return Promise.resolve();
  return new Promise((resolve) => {
    server.close(() => resolve());
    server.closeAllConnections();
  });
}

// A JWT's claims, read without verifying anything: the server is the judge.
function jwtClaims(token) {
  return JSON.parse(Buffer.from(token.split('.')[1], 'base64url').toString('utf8'));
}

// ---------------------------------------------------------------------------
// The page, seen from outside
// ---------------------------------------------------------------------------

const byId = (page, testid) => page.getByTestId(testid);

async function text(page, testid) {
  return ((await byId(page, testid).textContent()) ?? '').trim();
}

// What the status area shows, for failure messages.
async function statusText(page) {
  return ((await byId(page, 'status').innerText()) ?? '').replace(/\s+/g, ' ').trim();
}

// Waits until the action a click started has finished (the page marks the
// status area busy meanwhile), then returns the status message.
async function settle(page) {
  const deadline = Date.now() + ACTION_TIMEOUT_MS;
  while ((await byId(page, 'status').getAttribute('class')).includes('busy')) {
    if (Date.now() > deadline) fail(`the page is still busy after ${ACTION_TIMEOUT_MS} ms: ${await statusText(page)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return text(page, 'status-message');
}

async function expectStatus(page, pattern, what) {
  const message = await settle(page);
  check(pattern.test(message), `${what}: expected the status to match ${pattern}, the page shows: ${await statusText(page)}`);
}

async function expectText(page, testid, expected, what) {
  const actual = await text(page, testid);
  const ok = expected instanceof RegExp ? expected.test(actual) : actual === expected;
  check(ok, `${what}: expected [data-testid=${testid}] to ${expected instanceof RegExp ? 'match' : 'be'} ` +
    `${expected instanceof RegExp ? expected : JSON.stringify(expected)}, it shows ${JSON.stringify(actual)}; ` +
    `status: ${await statusText(page)}`);
}

// The problem the status area shows: HTTP status, code, and field messages.
async function expectProblem(page, status, code, what) {
  await settle(page);
  const shown = `status: ${await statusText(page)}`;
  check((await text(page, 'status-http')).startsWith(String(status)), `${what}: expected HTTP ${status}; ${shown}`);
  check((await text(page, 'status-code')) === code, `${what}: expected code ${code}; ${shown}`);
  check((await text(page, 'status-detail')) !== '', `${what}: the detail is empty; ${shown}`);
  check(await byId(page, 'status-problem').isVisible(), `${what}: the problem is not visible; ${shown}`);
}

async function sessionRows(page) {
  const rows = byId(page, 'session-row');
  const out = [];
  for (let i = 0; i < (await rows.count()); i += 1) {
    const row = rows.nth(i);
    out.push({
      text: (await row.innerText()).replace(/\s+/g, ' '),
      id: (await row.locator('td').first().innerText()).replace(' (this session)', '').trim(),
      endButtons: await row.getByTestId('session-end').count(),
    });
  }
  return out;
}

// Every call a page makes to the API, as "METHOD /path STATUS", and the
// bodies of login and refresh answers (the tokens, as they went over the wire).
function watchApi(page) {
  const calls = [];
  const tokenAnswers = [];
  page.on('response', (response) => {
    const request = response.request();
    const url = new URL(response.url());
    if (url.origin !== new URL(GATEHOUSE_URL).origin || request.method() === 'OPTIONS') return;
    calls.push(`${request.method()} ${url.pathname} ${response.status()}`);
    if (response.status() === 200 && ['/auth/login', '/auth/refresh'].includes(url.pathname)) {
      tokenAnswers.push(response.json().catch(() => null));
    }
  });
  page.on('requestfailed', (request) => {
    const url = new URL(request.url());
    if (url.origin === new URL(GATEHOUSE_URL).origin) calls.push(`${request.method()} ${url.pathname} FAILED`);
  });
  return {
    calls,
    async lastTokens() {
      check(tokenAnswers.length > 0, 'no login or refresh answer was seen on the wire');
      return tokenAnswers[tokenAnswers.length - 1];
    },
  };
}

async function login(page, identifier, password) {
  await byId(page, 'login-identifier').fill(identifier);
  await byId(page, 'login-password').fill(password);
  await byId(page, 'login-submit').click();
}

// ---------------------------------------------------------------------------

const servers = [exampleServer(), otherOriginServer()];
let browser = null;

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
  await Promise.all(servers.map(closeServer));
}

async function main() {
  const stamp = Date.now();
  const username = `web${stamp}`;
  const email = `${username}@example.com`;
  const name = 'Web Example';
  // Not common, and contains neither the username nor the email's local part.
  const password = `amber lantern ${String(stamp).slice(-5)} over quiet water`;
  const requests = [];
  const pageErrors = [];

  console.log(`# gatehouse at ${GATEHOUSE_URL}, example at ${EXAMPLE_ORIGIN}, other origin ${OTHER_ORIGIN}`);

  await serverAnswers(`CORS_ALLOWED_ORIGINS=${EXAMPLE_ORIGIN} ACCESS_TOKEN_EXPIRE_MINUTES=1 BIND_ADDR=${new URL(GATEHOUSE_URL).host} gatehouse serve`);

  await step(`the server allows the example's origin ${EXAMPLE_ORIGIN} (CORS preflight)`, async () => {
    const res = await fetch(`${GATEHOUSE_URL}/auth/login`, {
      method: 'OPTIONS',
      headers: {
        Origin: EXAMPLE_ORIGIN,
        'Access-Control-Request-Method': 'POST',
        'Access-Control-Request-Headers': 'content-type,authorization',
      },
      signal: AbortSignal.timeout(5000),
    });
    const allowed = res.headers.get('access-control-allow-origin');
    check(allowed === EXAMPLE_ORIGIN,
      `the preflight answered ${res.status} with Access-Control-Allow-Origin: ${allowed ?? '(absent)'}; ` +
      `the server must be started with CORS_ALLOWED_ORIGINS=${EXAMPLE_ORIGIN} (and not "*", so that another origin is refused)`);
  });

  await step(`static servers on ${EXAMPLE_ORIGIN} and ${OTHER_ORIGIN}, and Chromium, start`, async () => {
    await listen(servers[0], EXAMPLE_PORT);
    await listen(servers[1], OTHER_ORIGIN_PORT);
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    browser = await launchChromium();
  });
  const newContext = async () => {
    const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
    context.on('request', (request) => requests.push(request.url()));
    context.on('page', (p) => p.on('pageerror', (e) => pageErrors.push(`${p.url()}: ${e.message}`)));
    return context;
  };
  const context = await newContext();
  const page = await context.newPage();
  const wire = watchApi(page);
  const exampleUrl = `${EXAMPLE_ORIGIN}/`;
  // Opens the example and types the API base URL into it, as a user does.
  const openExample = async (p) => {
    const res = await p.goto(exampleUrl);
    check(res && res.status() === 200, `GET ${exampleUrl} answered ${res && res.status()}`);
    await byId(p, 'api-base').fill(GATEHOUSE_URL);
  };

  await step('the example page loads on its own origin and ignores an API base URL in its own URL', async () => {
    const lure = `${exampleUrl}?api=${encodeURIComponent('http://127.0.0.1:9')}`;
    const res = await page.goto(lure);
    check(res && res.status() === 200, `GET ${lure} answered ${res && res.status()}`);
    const base = await byId(page, 'api-base').inputValue();
    check(!base.includes(':9'), `the API base URL was taken from the page's URL: ${JSON.stringify(base)}`);
    await openExample(page);
    await expectText(page, 'login-submit', `Log in at ${new URL(GATEHOUSE_URL).host}`, 'the login button names the server');
    await expectText(page, 'page-origin', EXAMPLE_ORIGIN, 'the page names its origin');
    await expectText(page, 'auth-state', 'Logged out', 'a fresh page is logged out');
  });

  const fetchFromPage = (p) => p.evaluate(async (url) => {
    try {
      const r = await fetch(url);
      return { resolved: true, status: r.status, body: await r.text() };
    } catch (e) {
      return { resolved: false, name: e.name, message: e.message };
    }
  }, `${GATEHOUSE_URL}/health/live`);

  await step('control: fetch(/health/live) from the example origin succeeds', async () => {
    const r = await fetchFromPage(page);
    check(r.resolved && r.status === 200, `expected 200, got ${JSON.stringify(r)}`);
  });

  await step(`fetch(/health/live) from ${OTHER_ORIGIN} is refused by CORS (TypeError)`, async () => {
    const other = await context.newPage();
    await other.goto(`${OTHER_ORIGIN}/`);
    const r = await fetchFromPage(other);
    check(!r.resolved && r.name === 'TypeError',
      `expected the fetch to reject with a TypeError, got ${JSON.stringify(r)}; is CORS_ALLOWED_ORIGINS "*" or does it list ${OTHER_ORIGIN}?`);
    await other.close();
  });

  await step('registering with bad input shows 400 validation_failed and a message per field', async () => {
    await byId(page, 'reg-username').fill('x!');
    await byId(page, 'reg-password').fill('password');
    await byId(page, 'reg-email').fill('not-an-email');
    await byId(page, 'reg-submit').click();
    await expectProblem(page, 400, 'validation_failed', 'bad registration');
    for (const field of ['username', 'password', 'email']) {
      const item = page.locator(`[data-testid=status-field-error][data-field=${field}]`).first();
      check((await item.count()) === 1 && (await item.isVisible()),
        `no visible message for the field ${field}; status: ${await statusText(page)}`);
      check(/^\w+: .+ \(\w+\)$/.test((await item.innerText()).trim()),
        `the ${field} message does not show the message and code: ${await item.innerText()}`);
    }
  });

  await step('register shows the new user', async () => {
    await byId(page, 'reg-username').fill(username);
    await byId(page, 'reg-password').fill(password);
    await byId(page, 'reg-email').fill(email);
    await byId(page, 'reg-name').fill(name);
    await byId(page, 'reg-submit').click();
    await expectStatus(page, new RegExp(`^Registered ${username} <${email}>`), 'registration');
    check(!(await byId(page, 'status-problem').isVisible()), 'an old problem is still shown after a success');
  });

  await step('registering the same username again shows 409 username_taken', async () => {
    await byId(page, 'reg-username').fill(username.toUpperCase());
    await byId(page, 'reg-password').fill(password);
    await byId(page, 'reg-email').fill('');
    await byId(page, 'reg-submit').click();
    await expectProblem(page, 409, 'username_taken', 'duplicate registration');
  });

  await step('a wrong password shows 401 invalid_credentials', async () => {
    await login(page, username, 'not the right one at all');
    await expectProblem(page, 401, 'invalid_credentials', 'wrong password');
    await expectText(page, 'auth-state', 'Logged out', 'still logged out');
  });

  let loggedInAt = 0;
  await step('log in by email shows the user logged in, with a 60 s access token', async () => {
    await login(page, email, password);
    await expectStatus(page, new RegExp(`^Logged in as ${username}\\.$`), 'login');
    loggedInAt = Date.now();
    await expectText(page, 'auth-state', `Logged in as ${username}`, 'login');
    const info = await text(page, 'token-info');
    check(/valid for 60 s/.test(info),
      `the page shows "${info}"; the server must run with ACCESS_TOKEN_EXPIRE_MINUTES=1 for this test`);
  });
  const firstTokens = await wire.lastTokens();

  await step('show profile shows the username, email and name', async () => {
    await byId(page, 'profile-show').click();
    await expectStatus(page, new RegExp(`^Profile of ${username} loaded\\.$`), 'profile');
    await expectText(page, 'profile-username', username, 'profile');
    await expectText(page, 'profile-email', email, 'profile');
    await expectText(page, 'profile-name', name, 'profile');
    await expectText(page, 'profile-role', 'user', 'profile');
  });

  // A second browser of the same user, whose refresh token will have been
  // spent by someone else by the time its access token expires.
  const contextB = await newContext();
  const pageB = await contextB.newPage();
  const wireB = watchApi(pageB);
  let secondLoggedInAt = 0;
  await step('a second browser logs in as the same user', async () => {
    await openExample(pageB);
    await login(pageB, username, password);
    await expectStatus(pageB, new RegExp(`^Logged in as ${username}\\.$`), 'second browser login');
    secondLoggedInAt = Date.now();
  });
  const tokensB = await wireB.lastTokens();

  await step("someone else spends the second browser's refresh token (Node fetch)", async () => {
    const r = await api('POST', '/auth/refresh', { body: { refresh_token: tokensB.refresh_token } });
    check(r.status === 200, `POST /auth/refresh answered ${r.status}: ${r.text}`);
  });

  const waitMs = Math.max(loggedInAt, secondLoggedInAt) + EXPIRY_WAIT_MS - Date.now();
  console.log(`# waiting ${Math.round(waitMs / 1000)} s for the access tokens to expire`);
  await new Promise((r) => setTimeout(r, waitMs));

  await step('the first access token has expired on the server (401 token_expired)', async () => {
    const r = await api('GET', '/me', { token: firstTokens.access_token });
    check(r.status === 401 && r.json?.code === 'token_expired',
      `GET /me with the login's access token ${Math.round((Date.now() - loggedInAt) / 1000)} s after login ` +
      `answered ${r.status} ${r.text}; is ACCESS_TOKEN_EXPIRE_MINUTES=1?`);
  });

  let currentTokens = firstTokens;
  await step('show profile again: the profile shows and the page reports the refresh', async () => {
    const mark = wire.calls.length;
    await byId(page, 'profile-show').click();
    await expectStatus(page, new RegExp(`^Profile of ${username} loaded\\.$`), 'profile after expiry');
    await expectText(page, 'profile-username', username, 'profile after expiry');
    await expectText(page, 'refresh-count', '1', 'the refresh counter');
    const lines = await byId(page, 'refresh-log').locator('li').allInnerTexts();
    check(lines.length === 1 && /^Access token refreshed at \d{2}:\d{2}:\d{2}$/.test(lines[0]),
      `the refresh log shows ${JSON.stringify(lines)}`);
    await expectText(page, 'auth-state', `Logged in as ${username}`, 'still logged in');
    const calls = wire.calls.slice(mark);
    check(JSON.stringify(calls) === JSON.stringify(['GET /me 401', 'POST /auth/refresh 200', 'GET /me 200']),
      `expected GET /me 401, POST /auth/refresh 200, GET /me 200 on the wire, saw ${JSON.stringify(calls)}`);
    currentTokens = await wire.lastTokens();
    check(currentTokens.access_token !== firstTokens.access_token, 'the refresh did not bring a new access token');
  });

  await step('screenshot example-profile.png', async () => {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'example-profile.png'), fullPage: true });
  });

  await step('the second browser, whose refresh token was spent, shows that it is logged out', async () => {
    await byId(pageB, 'profile-show').click();
    await expectProblem(pageB, 401, 'invalid_refresh_token', 'refresh with a spent token');
    await expectText(pageB, 'auth-state', /^Logged out.*invalid_refresh_token/, 'second browser');
    await expectText(pageB, 'refresh-count', '0', 'no refresh counted');
    check(!(await byId(pageB, 'profile').isVisible()), 'the second browser still shows a profile');
  });
  await contextB.close();

  let otherToken = '';
  await step('a second session logs in (Node fetch)', async () => {
    const r = await api('POST', '/auth/login', { body: { username, password } });
    check(r.status === 200, `POST /auth/login answered ${r.status}: ${r.text}`);
    otherToken = r.json.access_token;
  });

  await step('the sessions list shows two sessions, the current one marked', async () => {
    await byId(page, 'sessions-list').click();
    await expectStatus(page, /^2 sessions listed\.$/, 'sessions');
    const rows = await sessionRows(page);
    check(rows.length === 2, `expected 2 sessions, the page shows ${rows.length}: ${JSON.stringify(rows)}`);
    const marked = rows.filter((r) => r.text.includes('(this session)'));
    check(marked.length === 1, `expected one session marked "(this session)", got ${JSON.stringify(rows)}`);
    const sid = jwtClaims(currentTokens.access_token).sid;
    check(marked[0].id === sid, `the marked session is ${marked[0].id}, but this page's token is for ${sid}`);
    check(marked[0].endButtons === 0 && rows.filter((r) => r !== marked[0])[0].endButtons === 1,
      `expected an "End session" button on the other session only: ${JSON.stringify(rows)}`);
    await expectText(page, 'sessions-summary', '2 active sessions', 'sessions summary');
  });

  await step('screenshot example-sessions.png', async () => {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'example-sessions.png'), fullPage: true });
  });

  await step('ending the other session from the page leaves one, and its token stops working', async () => {
    const otherId = (await sessionRows(page)).find((r) => r.endButtons === 1).id;
    await byId(page, 'session-end').click();
    await expectStatus(page, new RegExp(`^Session ${otherId} ended\\.$`), 'end session');
    const rows = await sessionRows(page);
    check(rows.length === 1 && rows[0].text.includes('(this session)'),
      `expected only the current session left, the page shows ${JSON.stringify(rows)}`);
    const r = await api('GET', '/me', { token: otherToken });
    check(r.status === 401, `the ended session's token still gets ${r.status} on GET /me`);
  });

  await step('log out with scope "others" keeps this session and ends the rest', async () => {
    const r = await api('POST', '/auth/login', { body: { username, password } });
    check(r.status === 200, `POST /auth/login answered ${r.status}: ${r.text}`);
    await byId(page, 'logout-scope').selectOption('others');
    await byId(page, 'logout-submit').click();
    await expectStatus(page, /^Logged out every other session; this one stays\.$/, 'logout others');
    await expectText(page, 'auth-state', `Logged in as ${username}`, 'still logged in');
    await expectText(page, 'sessions-summary', '1 active session', 'sessions after logout others');
    const other = await api('GET', '/me', { token: r.json.access_token });
    check(other.status === 401, `the other session's token still gets ${other.status}`);
    const mine = await api('GET', '/me', { token: currentTokens.access_token });
    check(mine.status === 200, `this page's token gets ${mine.status} ${mine.text}`);
  });

  await step('log out (scope local) shows the logged-out state', async () => {
    await byId(page, 'logout-scope').selectOption('local');
    await byId(page, 'logout-submit').click();
    await expectStatus(page, /^Logged out of this session\.$/, 'logout');
    await expectText(page, 'auth-state', 'Logged out', 'after logout');
    check(!(await byId(page, 'profile').isVisible()), 'the profile is still shown after logout');
    check((await byId(page, 'session-row').count()) === 0, 'sessions are still listed after logout');
  });

  await step('the old access token now gets 401 from the API', async () => {
    const r = await api('GET', '/me', { token: currentTokens.access_token });
    check(r.status === 401 && r.json?.code === 'invalid_token', `GET /me answered ${r.status} ${r.text}`);
  });

  await step('show profile while logged out says so, without calling the API', async () => {
    const mark = wire.calls.length;
    await byId(page, 'profile-show').click();
    await expectStatus(page, /^Loading the profile failed: You are not logged in\.$/, 'logged out');
    check(wire.calls.length === mark, `the page called the API: ${wire.calls.slice(mark)}`);
  });

  await step('no uncaught errors in the pages', async () => {
    check(pageErrors.length === 0, pageErrors.join('\n'));
  });

  await step('every request the browser made went to 127.0.0.1 or localhost', async () => {
    const foreign = requests.filter((u) => {
      const url = new URL(u);
      return ['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol) && !LOCAL_HOSTS.has(url.hostname);
    });
    check(requests.length > 0, 'no requests were recorded at all');
    check(foreign.length === 0, `requests to other hosts:\n${foreign.join('\n')}`);
    console.log(`# ${requests.length} browser requests, all local`);
  });
}

await runChecks(main, cleanup, `screenshots in ${SCREENSHOT_DIR}`);
