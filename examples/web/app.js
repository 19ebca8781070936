// gatehouse browser example. Plain JavaScript, no dependencies: read it top to
// bottom. Everything the API answers is put on the page with textContent, never
// innerHTML, so a hostile username or user agent cannot inject markup.
'use strict';

const $ = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------
// Token storage
//
// Tokens live in sessionStorage: they survive a reload of this tab (a demo
// that logs you out on F5 is tiresome), but not the closing of the tab, and
// other tabs do not see them, so two tabs never race to rotate one refresh
// token. Not localStorage: that keeps a 30-day refresh token on disk across
// browser restarts. Any script running in this page can read either, which is
// why the page allows only its own script (see the CSP in index.html). A real
// application might keep the refresh token out of JavaScript entirely, behind
// an httpOnly cookie on its own backend.
//
// Tokens are only ever sent in the Authorization header, never in a URL: URLs
// end up in logs, history and Referer headers.
// ---------------------------------------------------------------------------

const STORAGE_KEY = 'gatehouse-example-session';

function loadSession() {
  try {
    return JSON.parse(sessionStorage.getItem(STORAGE_KEY));
  } catch {
    return null;
  }
}

function saveSession(session) {
  if (session) sessionStorage.setItem(STORAGE_KEY, JSON.stringify(session));
  else sessionStorage.removeItem(STORAGE_KEY);
}

// {apiBase, accessToken, refreshToken, accessExpiresAt, username}. apiBase is
// kept with the tokens so they are never sent to a server that did not issue them.
let session = loadSession();

// The count is per page load: it is there to show refreshes happening.
let refreshCount = 0;

// ---------------------------------------------------------------------------
// API base URL
// ---------------------------------------------------------------------------

// The base URL is only ever typed by the user (or restored with the tokens
// it issued). It is deliberately not taken from the page's URL: a link with
// the API base in it would let anyone send a visitor's password to a server
// of their choosing.
function initApiBase() {
  if (session) $('api-base').value = session.apiBase;
  $('page-origin').textContent = location.origin;
  $('api-base').addEventListener('input', labelSubmitButtons);
  labelSubmitButtons();
}

// The buttons that send a password say where it goes.
function labelSubmitButtons() {
  let host;
  try {
    host = new URL($('api-base').value.trim()).host;
  } catch {
    host = '?';
  }
  $('reg-submit').textContent = `Register at ${host}`;
  $('login-submit').textContent = `Log in at ${host}`;
}

// The base URL without a trailing slash, or an Error the status area can show.
function apiBase() {
  const raw = $('api-base').value.trim();
  let url;
  try {
    url = new URL(raw);
  } catch {
    throw new LocalError(`The API base URL "${raw}" is not a URL.`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new LocalError('The API base URL must start with http:// or https://.');
  }
  return url.origin + url.pathname.replace(/\/+$/, '');
}

// ---------------------------------------------------------------------------
// HTTP
// ---------------------------------------------------------------------------

// An error the API answered with: the RFC 9457 problem body, as sent.
class ApiError extends Error {
  constructor(status, statusText, problem, requestId) {
    super(problem.detail || `HTTP ${status}`);
    this.status = status;
    this.statusText = statusText;
    this.problem = problem;
    this.requestId = problem.request_id || requestId || '';
  }
  get code() {
    return this.problem.code || '';
  }
}

// A problem found before or without an answer from the API.
class LocalError extends Error {}

// One request, no retries. Resolves to the parsed JSON body (null for 204),
// rejects with ApiError for any non-2xx answer, LocalError when there is none.
async function send(method, path, { body, token } = {}) {
  const base = apiBase();
  const headers = {};
  if (body !== undefined) headers['Content-Type'] = 'application/json';
  if (token) headers.Authorization = `Bearer ${token}`;

  let response;
  try {
    response = await fetch(base + path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      // Bearer tokens, not cookies: nothing ambient should ride along.
      credentials: 'omit',
      cache: 'no-store',
    });
  } catch (e) {
    // The browser hides why (by design): refused connection and refused
    // CORS look the same from here. Say both.
    throw new LocalError(
      `Could not reach ${base} (${e.name}: ${e.message}). Is the server running, ` +
        `and does its CORS_ALLOWED_ORIGINS include ${location.origin}?`,
    );
  }

  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const problem = data && typeof data === 'object' ? data : { detail: text.slice(0, 200) };
    throw new ApiError(response.status, response.statusText, problem, response.headers.get('x-request-id'));
  }
  return data;
}

function requireSession() {
  if (!session) throw new LocalError('You are not logged in.');
  const base = apiBase();
  if (session.apiBase !== base) {
    throw new LocalError(
      `You are logged in at ${session.apiBase}, not at ${base}; log in again (the tokens stay with the server that issued them).`,
    );
  }
  return session;
}

// An authenticated request. An expired access token is refreshed once and the
// request retried once; any other 401 means the session is over.
async function authed(method, path, options = {}) {
  const used = requireSession().accessToken;
  try {
    return await send(method, path, { ...options, token: used });
  } catch (e) {
    if (!(e instanceof ApiError) || e.status !== 401) throw e;
    if (e.code !== 'token_expired') {
      endSession(e);
      throw e;
    }
  }
  // Another request may have refreshed while this one was in flight; then
  // there is nothing to refresh, only to retry with the new token.
  if (session && session.accessToken === used) await refreshTokens();
  try {
    return await send(method, path, { ...options, token: requireSession().accessToken });
  } catch (e) {
    if (e instanceof ApiError && e.status === 401) endSession(e);
    throw e;
  }
}

// Requests that fail together must not each spend the refresh token: the
// second would present a spent token. So there is at most one refresh at a time.
let refreshing = null;

function refreshTokens() {
  if (!refreshing) {
    refreshing = doRefresh().finally(() => {
      refreshing = null;
    });
  }
  return refreshing;
}

async function doRefresh() {
  const current = requireSession();
  let answer;
  try {
    answer = await send('POST', '/auth/refresh', { body: { refresh_token: current.refreshToken } });
  } catch (e) {
    // Only a refused refresh token ends the session; a 503 or a network
    // failure is passing, and the tokens may still be good afterwards.
    if (e instanceof ApiError && e.status === 401) endSession(e);
    throw e;
  }
  storeLogin(answer, current.apiBase);
  refreshCount += 1;
  const line = `Access token refreshed at ${new Date().toLocaleTimeString([], { hour12: false })}`;
  const item = document.createElement('li');
  item.textContent = line;
  $('refresh-log').append(item);
  $('refresh-count').textContent = String(refreshCount);
  renderAuthState();
}

// Login and refresh answer with the same shape.
function storeLogin(answer, base) {
  session = {
    apiBase: base,
    accessToken: answer.access_token,
    refreshToken: answer.refresh_token,
    accessExpiresAt: Date.now() + answer.expires_in * 1000,
    expiresIn: answer.expires_in,
    username: answer.user.username,
  };
  saveSession(session);
}

// The server no longer accepts this session: forget the tokens and say so.
function endSession(error) {
  const had = session !== null;
  session = null;
  saveSession(null);
  clearAccountViews();
  renderAuthState(had && error ? `Logged out: the server ended this session (${error.code || error.status}).` : undefined);
}

// ---------------------------------------------------------------------------
// Rendering
// ---------------------------------------------------------------------------

function clock(ms) {
  return new Date(ms).toLocaleTimeString([], { hour12: false });
}

function renderAuthState(loggedOutText) {
  const state = $('auth-state');
  if (session) {
    state.textContent = `Logged in as ${session.username}`;
    state.className = 'auth-state logged-in';
    $('token-info').textContent =
      `Access token valid for ${session.expiresIn} s (until about ${clock(session.accessExpiresAt)}); ` +
      'it is refreshed when the server says it has expired.';
  } else {
    state.textContent = loggedOutText || 'Logged out';
    state.className = 'auth-state logged-out';
    $('token-info').textContent = '';
  }
}

function clearAccountViews() {
  $('profile').hidden = true;
  for (const id of ['profile-username', 'profile-email', 'profile-name', 'profile-role', 'profile-id', 'profile-created']) {
    $(id).textContent = '';
  }
  $('sessions-table').hidden = true;
  $('sessions-body').replaceChildren();
  $('sessions-summary').textContent = '';
}

function showOk(message) {
  $('status').className = 'status ok';
  $('status-message').textContent = message;
  $('status-problem').hidden = true;
  $('status-errors').hidden = true;
  $('status-errors').replaceChildren();
}

function showBusy(message) {
  showOk(message);
  $('status').className = 'status busy';
}

// Every field of the problem is shown: the code is what a program would act
// on, the detail and field messages are what a person needs to read.
function showError(action, error) {
  $('status').className = 'status error';
  const errorsList = $('status-errors');
  errorsList.replaceChildren();
  if (error instanceof ApiError) {
    const p = error.problem;
    $('status-message').textContent = `${action} failed: HTTP ${error.status} ${p.code || ''}`.trim();
    $('status-http').textContent = `${error.status} ${p.title || error.statusText || ''}`.trim();
    $('status-code').textContent = p.code || '(none)';
    $('status-detail').textContent = p.detail || '(none)';
    $('status-request-id').textContent = error.requestId || '(none)';
    $('status-problem').hidden = false;
    for (const fieldError of Array.isArray(p.errors) ? p.errors : []) {
      const item = document.createElement('li');
      item.dataset.testid = 'status-field-error';
      item.dataset.field = fieldError.field || '';
      item.textContent = `${fieldError.field || '(body)'}: ${fieldError.message || ''} (${fieldError.code || ''})`;
      errorsList.append(item);
    }
    errorsList.hidden = errorsList.children.length === 0;
  } else {
    $('status-message').textContent = `${action} failed: ${error.message}`;
    $('status-problem').hidden = true;
    errorsList.hidden = true;
  }
}

function renderProfile(user) {
  $('profile-username').textContent = user.username;
  $('profile-email').textContent = user.email ?? '(none)';
  $('profile-name').textContent = user.name ?? '(none)';
  $('profile-role').textContent = user.role;
  $('profile-id').textContent = user.id;
  $('profile-created').textContent = user.created_at;
  $('profile').hidden = false;
}

function renderSessions(sessions) {
  const rows = sessions.map((s) => {
    const row = document.createElement('tr');
    row.dataset.testid = 'session-row';
    row.dataset.sessionId = s.id;
    row.dataset.current = String(s.current);
    const cells = [
      s.current ? `${s.id} (this session)` : s.id,
      // Readable, still exact: "2026-12-01 20:00:03Z".
      (s.created_at ?? '').replace('T', ' '),
      (s.last_used_at ?? '').replace('T', ' '),
      s.user_agent ?? '',
      s.ip ?? '',
    ].map((text) => {
      const cell = document.createElement('td');
      cell.textContent = text;
      return cell;
    });
    cells[3].title = s.user_agent ?? '';
    const action = document.createElement('td');
    if (s.current) {
      // Ending the current session is what "Log out" does.
      action.textContent = 'current';
      action.dataset.testid = 'session-current';
    } else {
      const button = document.createElement('button');
      button.type = 'button';
      button.textContent = 'End session';
      button.dataset.testid = 'session-end';
      button.dataset.sessionId = s.id;
      button.addEventListener('click', () => endOtherSession(s.id));
      action.append(button);
    }
    row.append(...cells, action);
    return row;
  });
  $('sessions-body').replaceChildren(...rows);
  $('sessions-table').hidden = rows.length === 0;
  $('sessions-summary').textContent = `${sessions.length} active session${sessions.length === 1 ? '' : 's'}`;
}

// ---------------------------------------------------------------------------
// Actions
// ---------------------------------------------------------------------------

// Runs one user action with its status messages, and keeps its button from
// being clicked again while the request is out.
async function run(button, action, busyText, task) {
  button.disabled = true;
  showBusy(busyText);
  try {
    await task();
  } catch (e) {
    showError(action, e);
  } finally {
    button.disabled = false;
  }
}

// Optional fields are left out when empty: "" is not a valid email.
function optional(body, key, value) {
  if (value.trim() !== '') body[key] = value.trim();
}

async function register(event) {
  event.preventDefault();
  await run($('reg-submit'), 'Registration', 'Registering…', async () => {
    // Passwords are sent as typed: spaces are allowed and meaningful.
    const body = { username: $('reg-username').value.trim(), password: $('reg-password').value };
    optional(body, 'email', $('reg-email').value);
    optional(body, 'name', $('reg-name').value);
    const answer = await send('POST', '/auth/register', { body });
    $('reg-password').value = '';
    $('login-identifier').value = answer.user.username;
    showOk(`Registered ${answer.user.username}${answer.user.email ? ` <${answer.user.email}>` : ''}. You can log in now.`);
  });
}

async function login(event) {
  event.preventDefault();
  await run($('login-submit'), 'Login', 'Logging in…', async () => {
    const identifier = $('login-identifier').value.trim();
    // A username can never contain "@", so this choice is unambiguous.
    const body = identifier.includes('@')
      ? { email: identifier, password: $('login-password').value }
      : { username: identifier, password: $('login-password').value };
    const base = apiBase();
    const answer = await send('POST', '/auth/login', { body });
    $('login-password').value = '';
    clearAccountViews();
    storeLogin(answer, base);
    renderAuthState();
    showOk(`Logged in as ${answer.user.username}.`);
  });
}

async function showProfile() {
  await run($('profile-show'), 'Loading the profile', 'Loading the profile…', async () => {
    const user = await authed('GET', '/me');
    renderProfile(user);
    showOk(`Profile of ${user.username} loaded.`);
  });
}

async function listSessions() {
  await run($('sessions-list'), 'Listing sessions', 'Listing sessions…', async () => {
    const answer = await authed('GET', '/me/sessions');
    renderSessions(answer.sessions);
    showOk(`${answer.sessions.length} session${answer.sessions.length === 1 ? '' : 's'} listed.`);
  });
}

async function endOtherSession(id) {
  await run($('sessions-list'), 'Ending the session', 'Ending the session…', async () => {
    await authed('DELETE', `/me/sessions/${encodeURIComponent(id)}`);
    const answer = await authed('GET', '/me/sessions');
    renderSessions(answer.sessions);
    showOk(`Session ${id} ended.`);
  });
}

async function logout() {
  const scope = $('logout-scope').value;
  await run($('logout-submit'), 'Logout', 'Logging out…', async () => {
    try {
      await authed('POST', '/auth/logout', { body: { scope } });
    } catch (e) {
      // A session the server has already ended is as logged out as can be
      // (authed has forgotten its tokens); anything else may be passing.
      if (!(e instanceof ApiError && e.status === 401)) throw e;
      showOk('Logged out: the server had already ended this session.');
      return;
    }
    if (scope === 'others') {
      const answer = await authed('GET', '/me/sessions');
      renderSessions(answer.sessions);
      showOk('Logged out every other session; this one stays.');
      return;
    }
    session = null;
    saveSession(null);
    clearAccountViews();
    renderAuthState();
    showOk(scope === 'global' ? 'Logged out of every session.' : 'Logged out of this session.');
  });
}

// ---------------------------------------------------------------------------

initApiBase();
renderAuthState();
$('register-form').addEventListener('submit', register);
$('login-form').addEventListener('submit', login);
$('profile-show').addEventListener('click', showProfile);
$('sessions-list').addEventListener('click', listSessions);
$('logout-submit').addEventListener('click', logout);
