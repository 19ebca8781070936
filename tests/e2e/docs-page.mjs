// End-to-end check of the interactive API docs (GET /docs) in headless Chromium.
//
// It opens gatehouse's own Swagger UI page against an already running
// gatehouse, checks that the OpenAPI document rendered, authorizes with a real
// access token through the "Authorize" dialog, runs "Try it out" on GET /me,
// and judges what the page SHOWS (status code, response body, curl snippet),
// with the wire (the request the browser really sent) as the witness. It also
// checks that the page is fully offline: every request the browser makes must
// go to the gatehouse server's own origin (no CDN, no validator badge, no
// fonts from elsewhere). Any uncaught page error or console error fails it,
// except the one "Failed to load resource ... 401" that the logged-out control
// execution of GET /me causes on purpose.
//
// The server must be running already, with any configuration, e.g.:
//
//   DATABASE_URL=sqlite:///tmp/docs.db BIND_ADDR=127.0.0.1:8080 gatehouse serve
//   node tests/e2e/docs-page.mjs
//
// Environment: GATEHOUSE_URL (http://127.0.0.1:8080),
// SCREENSHOT_DIR (/tmp/gatehouse-screenshots; docs.png is written there).
// The whole run takes a few seconds.

import { mkdir } from 'node:fs/promises';
import { randomInt } from 'node:crypto';
import path from 'node:path';
import { GATEHOUSE_URL, SCREENSHOT_DIR, ACTION_TIMEOUT_MS, fail, check, step, serverAnswers, runChecks, oneLine, clip, api, launchChromium } from './steps.mjs';

const ORIGIN = new URL(GATEHOUSE_URL).origin;
const DOCS_URL = `${GATEHOUSE_URL}/docs`;

// A few words, so that the password is neither common nor built from the username.
const WORDS = ['amber', 'copper', 'meadow', 'lantern', 'harbour', 'thistle', 'orchard', 'pebble', 'juniper',
  'glacier', 'saffron', 'willow', 'cobalt', 'marble', 'heron', 'quartz', 'tundra', 'velvet', 'fennel', 'drizzle'];
const randomWords = (n) => Array.from({ length: n }, () => WORDS[randomInt(WORDS.length)]).join(' ');

// ---------------------------------------------------------------------------
// The page, seen from outside (Swagger UI's markup)
// ---------------------------------------------------------------------------

// The operation block of METHOD PATH, found by what it shows, not by its id.
function operation(page, method, pathname) {
  return page.locator('.opblock')
    .filter({ has: page.locator('.opblock-summary-method', { hasText: new RegExp(`^${method}$`) }) })
    .filter({ has: page.locator(`.opblock-summary-path[data-path="${pathname}"], .opblock-summary-path__deprecated[data-path="${pathname}"]`) });
}

async function visibleOperation(page, method, pathname) {
  const op = operation(page, method, pathname);
  const n = await op.count();
  check(n === 1, `expected one operation "${method} ${pathname}" on the page, found ${n}`);
  check(await op.isVisible(), `the operation "${method} ${pathname}" is on the page but not visible`);
  return op;
}

// What the page says about the last execution of an operation.
async function shownResponse(op) {
  const table = op.locator('.live-responses-table');
  if ((await table.count()) === 0) return null;
  const row = table.locator('tbody tr.response').first();
  const curl = op.locator('.curl-command pre.curl');
  return {
    status: oneLine(await row.locator('.response-col_status').innerText()),
    body: (await row.locator('.response-col_description .highlight-code pre').first().innerText().catch(() => '')).trim(),
    details: oneLine(await row.locator('.response-col_description').innerText()),
    curl: (await curl.count()) ? oneLine(await curl.innerText()) : '',
  };
}

// Clicks Execute on an (expanded) operation, waits for the browser's request
// and for the page to show the answer to it. Returns what went over the wire
// and what the page shows.
async function execute(page, op, method, pathname) {
  const execute = op.locator('button.execute');
  check(await execute.isVisible(), `no visible "Execute" button in ${method} ${pathname}`);
  // Clear an earlier answer first, so that what is judged is this one's.
  const clear = op.locator('button.btn-clear');
  if ((await clear.count()) && (await clear.isVisible())) {
    await clear.click();
    await op.locator('.live-responses-table').waitFor({ state: 'detached' }).catch(() =>
      fail(`"Clear" in ${method} ${pathname} did not remove the earlier server response`));
  }
  const wired = page.waitForResponse((r) => {
    const u = new URL(r.url());
    return u.origin === ORIGIN && u.pathname === pathname && r.request().method() === method;
  }, { timeout: ACTION_TIMEOUT_MS });
  await execute.click();
  const response = await wired.catch(() => fail(`clicking "Execute" in ${method} ${pathname} sent no ${method} ${pathname} ` +
    `to ${ORIGIN} within ${ACTION_TIMEOUT_MS} ms`));
  const authorization = (await response.request().allHeaders()).authorization ?? null;
  const deadline = Date.now() + ACTION_TIMEOUT_MS;
  let shown = null;
  for (;;) {
    shown = await shownResponse(op);
    if (shown && shown.status === String(response.status())) break;
    if (Date.now() > deadline) {
      fail(`the server answered ${response.status()}, but after ${ACTION_TIMEOUT_MS} ms the page shows ` +
        `${shown ? `code ${JSON.stringify(shown.status)}: ${clip(shown.details)}` : 'no server response at all'}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { wireStatus: response.status(), authorization, shown };
}

async function openAuthorizeDialog(page) {
  const button = page.locator('.scheme-container button.btn.authorize');
  check((await button.count()) === 1 && (await button.isVisible()),
    'no visible "Authorize" button: does the document declare a security scheme?');
  await button.click();
  const dialog = page.locator('.modal-ux');
  await dialog.waitFor({ state: 'visible', timeout: ACTION_TIMEOUT_MS });
  const scheme = dialog.locator('.auth-container').filter({ has: page.locator('h4 code', { hasText: /^bearer$/ }) });
  check((await scheme.count()) === 1,
    `the Authorize dialog has no "bearer" scheme; it shows: ${clip(oneLine(await dialog.innerText()))}`);
  return { button, dialog, scheme };
}

async function closeAuthorizeDialog(dialog) {
  await dialog.locator('button.btn-done').click();
  await dialog.waitFor({ state: 'detached', timeout: ACTION_TIMEOUT_MS });
}

// ---------------------------------------------------------------------------

let browser = null;

async function cleanup() {
  if (browser) await browser.close().catch(() => {});
}

async function main() {
  const stamp = Date.now();
  const username = `docs${stamp}${randomInt(1000)}`;
  // Not common, and contains neither the username nor a part of it.
  const password = `violet staircase ${randomWords(3)}`;
  const requests = [];
  const pageErrors = [];
  const consoleErrors = [];
  // The console error the logged-out control execution causes on purpose.
  let allowedConsoleError = null;

  console.log(`# gatehouse at ${GATEHOUSE_URL}, docs at ${DOCS_URL}`);

  await serverAnswers(`BIND_ADDR=${new URL(GATEHOUSE_URL).host} gatehouse serve\nor set GATEHOUSE_URL to where it runs.`);

  await step('GET /openapi.json is an OpenAPI 3.1 document titled "gatehouse" with GET /me and the deprecated POST /signup', async () => {
    const r = await api('GET', '/openapi.json');
    check(r.status === 200 && r.json, `GET /openapi.json answered ${r.status}: ${clip(r.text)}`);
    check(/^3\.1\./.test(r.json.openapi ?? ''), `"openapi" is ${JSON.stringify(r.json.openapi)}, not 3.1.x`);
    check(r.json.info?.title === 'gatehouse', `info.title is ${JSON.stringify(r.json.info?.title)}`);
    check(r.json.paths?.['/me']?.get, 'the document has no GET /me');
    check(r.json.paths?.['/signup']?.post?.deprecated === true, 'POST /signup is missing or not marked deprecated');
    check(r.json.components?.securitySchemes?.bearer, 'the document has no security scheme named "bearer"');
  });

  let accessToken = '';
  await step(`register ${username} and log in (Node fetch)`, async () => {
    const reg = await api('POST', '/auth/register', { body: { username, password } });
    check(reg.status === 201, `POST /auth/register answered ${reg.status}: ${reg.text}`);
    const login = await api('POST', '/auth/login', { body: { username, password } });
    check(login.status === 200 && typeof login.json?.access_token === 'string',
      `POST /auth/login answered ${login.status}: ${login.text}`);
    accessToken = login.json.access_token;
    const me = await api('GET', '/me', { token: accessToken });
    check(me.status === 200 && me.json?.username === username, `GET /me with the new token answered ${me.status}: ${me.text}`);
  });

  await step('Chromium starts', async () => {
    await mkdir(SCREENSHOT_DIR, { recursive: true });
    browser = await launchChromium();
  });

  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  context.on('request', (request) => requests.push(request.url()));
  // Recorded above, then refused: the page must not reach the outside world
  // (and a test run must not hang on DNS for it).
  await context.route((url) => url.origin !== ORIGIN && ['http:', 'https:', 'ws:', 'wss:'].includes(url.protocol),
    (route) => route.abort('blockedbyclient'));
  const page = await context.newPage();
  page.on('pageerror', (e) => pageErrors.push(`${page.url()}: ${e.message}`));
  page.on('console', (m) => {
    if (m.type() !== 'error') return;
    const where = m.location()?.url || '';
    if (allowedConsoleError && allowedConsoleError.test(m.text()) && where === `${ORIGIN}/me`) {
      allowedConsoleError = null; // only once
      return;
    }
    consoleErrors.push(`${m.text()}${where ? ` (at ${where})` : ''}`);
  });
  page.setDefaultTimeout(ACTION_TIMEOUT_MS);

  const foreignRequests = () => requests.filter((u) => {
    const url = new URL(u);
    if (url.protocol === 'data:' || url.protocol === 'about:') return false;
    if (url.protocol === 'blob:') return new URL(u.slice(5)).origin !== ORIGIN;
    return url.origin !== ORIGIN;
  });

  await step('/docs loads and Swagger UI renders the document: title "gatehouse", version, OAS 3.1', async () => {
    const res = await page.goto(DOCS_URL, { waitUntil: 'load' });
    check(res && res.status() === 200, `GET ${DOCS_URL} answered ${res && res.status()}`);
    const title = page.locator('.information-container .info h1.title, .info .title').first();
    await title.waitFor({ state: 'visible' }).catch(async () => fail(
      `Swagger UI did not render the document's title within ${ACTION_TIMEOUT_MS} ms; the page shows: ` +
      `${clip(oneLine(await page.locator('body').innerText()))}` +
      (pageErrors.length ? `\npage errors: ${pageErrors.join('; ')}` : '') +
      (consoleErrors.length ? `\nconsole errors: ${consoleErrors.join('; ')}` : '')));
    const text = oneLine(await title.innerText());
    check(/^gatehouse\b/.test(text), `the document title shows ${JSON.stringify(text)}, expected it to start with "gatehouse"`);
    check(/OAS 3\.1/.test(text), `the title does not show the "OAS 3.1" badge: ${JSON.stringify(text)}`);
    const loadErrors = page.locator('.errors-wrapper').or(page.getByText('Failed to load API definition'));
    check((await loadErrors.count()) === 0 || !(await loadErrors.first().isVisible()),
      `Swagger UI shows errors: ${clip(oneLine(await loadErrors.first().innerText().catch(() => '')))}`);
    // No "valid/invalid" badge from validator.swagger.io either.
    check((await page.locator('img[src*="validator"], .validator-badge, a[href*="validator.swagger.io"]').count()) === 0,
      'the page shows a validator badge (it would load from validator.swagger.io)');
  });

  await step('so far every browser request went to the gatehouse origin', async () => {
    const foreign = foreignRequests();
    check(foreign.length === 0, `the docs page made requests outside ${ORIGIN}:\n${foreign.join('\n')}`);
    check(requests.includes(`${ORIGIN}/openapi.json`), `the page never fetched ${ORIGIN}/openapi.json; requests: ${requests.join(', ')}`);
  });

  await step('POST /auth/login, GET /me and POST /signup are listed; /signup is shown deprecated (struck through), the others not', async () => {
    const login = await visibleOperation(page, 'POST', '/auth/login');
    const me = await visibleOperation(page, 'GET', '/me');
    const signup = await visibleOperation(page, 'POST', '/signup');
    for (const [op, name] of [[login, 'POST /auth/login'], [me, 'GET /me']]) {
      const cls = await op.getAttribute('class');
      check(!/\bopblock-deprecated\b/.test(cls), `${name} is shown as deprecated (class "${cls}")`);
    }
    const cls = await signup.getAttribute('class');
    check(/\bopblock-deprecated\b/.test(cls), `POST /signup is not shown as deprecated: its block has class "${cls}"`);
    const signupPath = signup.locator('.opblock-summary-path__deprecated');
    check((await signupPath.count()) === 1, 'the path of POST /signup is not marked opblock-summary-path__deprecated');
    const decoration = await signupPath.evaluate((e) => getComputedStyle(e).textDecorationLine);
    check(decoration.includes('line-through'), `the path of POST /signup is not struck through (text-decoration-line: ${decoration})`);
    const loginDecoration = await login.locator('.opblock-summary-path').evaluate((e) => getComputedStyle(e).textDecorationLine);
    check(!loginDecoration.includes('line-through'), `the path of POST /auth/login is struck through (${loginDecoration})`);
  });

  await step('"Authorize": the access token goes into the bearer field, the dialog says Authorized, and closes', async () => {
    const { button, dialog, scheme } = await openAuthorizeDialog(page);
    const input = scheme.locator('input#auth-bearer-value, input[type=text]').first();
    check(await input.isVisible(), 'the bearer scheme has no visible value field');
    await input.fill(accessToken);
    await scheme.locator('button.authorize').click();
    const authorized = scheme.locator('h6', { hasText: /^Authorized$/ });
    await authorized.waitFor({ state: 'visible' }).catch(async () =>
      fail(`the bearer scheme does not say "Authorized"; the dialog shows: ${clip(oneLine(await dialog.innerText()))}`));
    check((await scheme.locator('button', { hasText: /^Logout$/ }).count()) === 1, 'no "Logout" button after authorizing');
    await closeAuthorizeDialog(dialog);
    check(/\blocked\b/.test(await button.getAttribute('class')),
      `the Authorize button does not show a closed lock after authorizing (class "${await button.getAttribute('class')}")`);
  });

  const me = await visibleOperation(page, 'GET', '/me');
  await step('GET /me expands and is ready to execute ("Try it out" if needed)', async () => {
    await me.locator('.opblock-summary-control').click();
    await me.locator('.opblock-body').waitFor({ state: 'visible' });
    const tryOut = me.locator('button.try-out__btn');
    if ((await tryOut.count()) && /^Try it out$/i.test(oneLine(await tryOut.innerText()))) await tryOut.click();
    check(await me.locator('button.execute').isVisible(),
      `no "Execute" button in GET /me; the block shows: ${clip(oneLine(await me.innerText()))}`);
    const lock = (await me.locator('.authorization__btn').getAttribute('aria-label')) ?? '';
    check(/\blocked\b/.test(lock), `the lock on GET /me does not show locked after authorizing (aria-label "${lock}")`);
  });

  await step('Execute GET /me shows 200 with the username, and curl with the Authorization: Bearer token that was sent', async () => {
    const r = await execute(page, me, 'GET', '/me');
    check(r.shown.status === '200',
      `expected the page to show code 200 for GET /me, it shows ${r.shown.status}: ${clip(r.shown.body)} ` +
      `(the browser sent Authorization: ${r.authorization ?? '(none)'})`);
    let body = null;
    try {
      body = JSON.parse(r.shown.body);
    } catch {
      fail(`the response body shown is not JSON: ${clip(r.shown.body)}`);
    }
    check(body.username === username, `the response body shown has username ${JSON.stringify(body.username)}, not ${username}`);
    check(r.shown.body.includes(username), 'the username is not visible in the response body');
    check(!/password|hash/i.test(r.shown.body), `the response body shows a password or hash field: ${clip(r.shown.body)}`);
    check(r.shown.curl.includes(`Authorization: Bearer ${accessToken}`),
      `the curl snippet does not carry "Authorization: Bearer <the token typed in>": ${clip(r.shown.curl, 600)}`);
    check(r.authorization === `Bearer ${accessToken}`,
      `the browser sent Authorization: ${r.authorization === null ? '(none)' : clip(r.authorization, 60)}, not the token typed in`);
  });

  await step('screenshot docs.png', async () => {
    await page.screenshot({ path: path.join(SCREENSHOT_DIR, 'docs.png'), fullPage: true });
  });

  await step('"Logout" in the Authorize dialog forgets the token', async () => {
    const { button, dialog, scheme } = await openAuthorizeDialog(page);
    await scheme.locator('button', { hasText: /^Logout$/ }).click();
    await scheme.locator('input#auth-bearer-value, input[type=text]').first().waitFor({ state: 'visible' }).catch(async () =>
      fail(`after "Logout" the bearer field is not back; the dialog shows: ${clip(oneLine(await dialog.innerText()))}`));
    await closeAuthorizeDialog(dialog);
    check(/\bunlocked\b/.test(await button.getAttribute('class')),
      `the Authorize button still shows a closed lock after logout (class "${await button.getAttribute('class')}")`);
  });

  await step('control: Execute GET /me again shows 401 missing_token, and curl without Authorization', async () => {
    allowedConsoleError = /^Failed to load resource: the server responded with a status of 401\b/;
    const r = await execute(page, me, 'GET', '/me');
    check(r.shown.status === '401', `expected the page to show code 401 after logout, it shows ${r.shown.status}: ${clip(r.shown.body)}`);
    check(r.shown.body.includes('missing_token'), `the 401 body shown does not contain missing_token: ${clip(r.shown.body)}`);
    check(/www-authenticate: Bearer realm="gatehouse"/i.test(r.shown.details),
      `the response headers shown lack WWW-Authenticate: Bearer realm="gatehouse": ${clip(r.shown.details, 800)}`);
    check(!/Authorization:/i.test(r.shown.curl), `the curl snippet still carries an Authorization header: ${clip(r.shown.curl, 600)}`);
    check(r.authorization === null, `the browser still sent Authorization: ${clip(r.authorization ?? '', 60)}`);
  });

  await step(`every request the browser made went to ${ORIGIN}`, async () => {
    const foreign = foreignRequests();
    check(requests.length > 0, 'no requests were recorded at all');
    check(foreign.length === 0, `requests outside ${ORIGIN} (the docs page must work offline):\n${foreign.join('\n')}`);
    console.log(`# ${requests.length} browser requests, all to ${ORIGIN}`);
  });

  await step('no uncaught page errors and no console errors', async () => {
    const problems = [
      ...pageErrors.map((e) => `uncaught page error: ${e}`),
      ...consoleErrors.map((e) => `console error: ${e}`),
    ];
    check(problems.length === 0, problems.join('\n'));
  });
}

await runChecks(main, cleanup, `screenshot in ${path.join(SCREENSHOT_DIR, 'docs.png')}`);
