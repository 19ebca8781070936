// Writes postman_collection.json (Postman Collection v2.1) at the top of the
// repository; the collection is this script's output, so edit this and run
//   node tests/e2e/postman-collection.cjs
// CI checks that the committed collection is what this script writes.
'use strict';
const fs = require('fs');
const path = require('path');
const OUT = process.argv[2] || path.resolve(__dirname, '../../postman_collection.json');

// ---------------------------------------------------------------- snippets
const R = String.raw;

const RE_LIB = R`var UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
var TIME_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$/;`;
const LIB = RE_LIB + '\n' + `function expectUser(u, label) {
    label = label || "user";
    pm.expect(u, label).to.be.an("object");
    pm.expect(u.id, label + ".id is a UUID").to.match(UUID_RE);
    pm.expect(u.username, label + ".username").to.be.a("string").and.not.empty;
    pm.expect(u, label + " has email and name").to.include.all.keys("email", "name");
    pm.expect(u.role, label + ".role").to.be.oneOf(["user", "admin"]);
    pm.expect(u.created_at, label + ".created_at").to.match(TIME_RE);
    pm.expect(u.updated_at, label + ".updated_at").to.match(TIME_RE);
}`;
const JWT_LIB = R`function jwtPart(token, i) {
    var s = String(token).split(".")[i].replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    return JSON.parse(require("atob")(s));
}`;

const S = {
  status: (n) => `pm.test("status is ${n}", function () { pm.response.to.have.status(${n}); });`,
  json: () => R`pm.test("Content-Type is application/json", function () {
    pm.expect(pm.response.headers.get("Content-Type") || "").to.match(/^application\/json\s*(;|$)/i);
});`,
  noBody: () => `pm.test("no body and no Content-Type", function () {
    pm.expect(pm.response.text()).to.eql("");
    pm.expect(pm.response.headers.has("Content-Type")).to.eql(false);
});`,
  noStore: () => `pm.test("Cache-Control: no-store (token response)", function () {
    pm.expect(pm.response.headers.get("Cache-Control") || "").to.include("no-store");
});`,
  problem: (status, code, extra) => R`pm.test("Content-Type is application/problem+json", function () {
    pm.expect(pm.response.headers.get("Content-Type") || "").to.match(/^application\/problem\+json\s*(;|$)/i);
});
pm.test("problem body: code ${code}, status ${status}, type, title", function () {
    var b = pm.response.json();
    pm.expect(b.code, "code").to.eql("${code}");
    pm.expect(b.status, "status").to.eql(${status});
    pm.expect(b.type, "type").to.be.a("string").and.not.empty;
    pm.expect(b.title, "title").to.be.a("string").and.not.empty;
    pm.expect(b.detail, "detail").to.be.a("string");
    pm.expect(b.request_id, "request_id equals x-request-id").to.eql(pm.response.headers.get("x-request-id"));${extra ? '\n' + extra : ''}
});`,
  // the field error list of a 400
  fieldError: (field, code) => `pm.test("errors[] names ${field}: ${code}", function () {
    var errs = pm.response.json().errors;
    pm.expect(errs, "errors").to.be.an("array").and.not.empty;
    var hit = errs.filter(function (e) { return e.field === "${field}" && e.code === "${code}"; });
    pm.expect(hit.length, JSON.stringify(errs)).to.be.above(0);
    errs.forEach(function (e) { pm.expect(e.message, "errors[].message").to.be.a("string").and.not.empty; });
});`,
  // GET /protected's body for the regular user stored under `key`.
  welcome: (key) => `pm.test("body: Welcome message, username, role", function () {
    var b = pm.response.json(), u = pm.collectionVariables.get("${key}Username");
    pm.expect(b.message).to.eql("Welcome, " + u + "!");
    pm.expect(b.username).to.eql(u);
    pm.expect(b.role).to.eql("user");
});`,
  missingToken: () => `pm.test("WWW-Authenticate: Bearer realm=\\"gatehouse\\"", function () {
    pm.expect(pm.response.headers.get("WWW-Authenticate")).to.eql('Bearer realm="gatehouse"');
});`,
  invalidToken: () => `pm.test("WWW-Authenticate challenge has error=\\"invalid_token\\"", function () {
    var h = pm.response.headers.get("WWW-Authenticate") || "";
    pm.expect(h).to.match(/^Bearer realm="gatehouse"/);
    pm.expect(h).to.include('error="invalid_token"');
});`,
  insufficientScope: () => `pm.test("WWW-Authenticate challenge has error=\\"insufficient_scope\\"", function () {
    var h = pm.response.headers.get("WWW-Authenticate") || "";
    pm.expect(h).to.match(/^Bearer realm="gatehouse"/);
    pm.expect(h).to.include('error="insufficient_scope"');
});`,
};

// 401 invalid_token, as a whole
const invalidTokenTests = () => [S.status(401), S.problem(401, 'invalid_token'), S.invalidToken()].join('\n');
const missingTokenTests = () => [S.status(401), S.problem(401, 'missing_token'), S.missingToken()].join('\n');
const forbiddenRoleTests = () => [S.status(403), S.problem(403, 'insufficient_role'), S.insufficientScope()].join('\n');

// A register 201 for the identity stored under `key`; saves `${key}UserId`.
function registered(key, extra) {
  return [S.status(201), S.json(), LIB, `pm.test("body: message, user (id, username, role user), no password", function () {
    var b = pm.response.json();
    pm.expect(b.message).to.eql("User registered successfully");
    expectUser(b.user);
    pm.expect(b.user.username, "the spelling chosen is kept").to.eql(pm.collectionVariables.get("${key}Username"));
    pm.expect(b.user.role).to.eql("user");
    pm.expect(JSON.stringify(b)).to.not.match(/"password"|"password_hash"/);
});
pm.collectionVariables.set("${key}UserId", pm.response.json().user.id);`, extra || ''].join('\n');
}

// A login/refresh 200; saves `${save}Access`, `${save}Refresh`, `${save}Sid`.
function tokenPair(userIdVar, save, extra) {
  return [S.status(200), S.json(), S.noStore(), LIB, JWT_LIB, `pm.test("body: access_token, token_type Bearer, expires_in, refresh_token, user", function () {
    var b = pm.response.json();
    pm.expect(b.access_token, "access_token is a JWT").to.be.a("string").and.match(/^[\\w-]+\\.[\\w-]+\\.[\\w-]+$/);
    pm.expect(b.token_type).to.eql("Bearer");
    pm.expect(b.expires_in, "expires_in").to.be.a("number").and.above(0);
    pm.expect(b.refresh_token, "refresh_token").to.be.a("string").and.have.length.above(20);
    expectUser(b.user);
    ${userIdVar ? `pm.expect(b.user.id, "user.id").to.eql(pm.collectionVariables.get("${userIdVar}"));` : ''}
});
pm.test("access token: typ at+jwt, kid, claims iss aud sub exp iat nbf jti sid role preferred_username", function () {
    var b = pm.response.json();
    var h = jwtPart(b.access_token, 0), c = jwtPart(b.access_token, 1);
    pm.expect(h.typ, "typ").to.eql("at+jwt");
    pm.expect(h.kid, "kid").to.be.a("string").and.not.empty;
    pm.expect(h.alg, "alg").to.not.eql("none");
    ["iss", "aud", "sub", "exp", "iat", "nbf", "jti", "sid", "role", "preferred_username"].forEach(function (k) {
        pm.expect(c, "claim " + k).to.have.property(k);
    });
    pm.expect(c.sub, "sub is the user id").to.eql(b.user.id);
    pm.expect(c.role, "role claim").to.eql(b.user.role);
    pm.expect(c.exp - c.iat, "exp - iat = expires_in").to.be.within(b.expires_in - 1, b.expires_in + 1);
});
${save ? `(function () {
    var b = pm.response.json();
    pm.collectionVariables.set("${save}Access", b.access_token);
    pm.collectionVariables.set("${save}Refresh", b.refresh_token);
    pm.collectionVariables.set("${save}Sid", jwtPart(b.access_token, 1).sid);
})();` : ''}`, extra || ''].join('\n');
}

// GET /me 200 for the user stored under userIdVar
function meOk(userIdVar, extra) {
  return [S.status(200), S.json(), LIB, `pm.test("body is the user${userIdVar ? ' (' + userIdVar + ')' : ''}", function () {
    var u = pm.response.json();
    expectUser(u);
    ${userIdVar ? `pm.expect(u.id).to.eql(pm.collectionVariables.get("${userIdVar}"));` : ''}
});`, extra || ''].join('\n');
}

// Pre-request: a fresh, valid identity under `key` (Username, Email, Password).
function ident(prefix, key) {
  if (!/^[A-Za-z][A-Za-z0-9]{1,9}$/.test(prefix)) throw new Error('bad prefix ' + prefix);
  return `// A fresh user for every run: ${prefix} + base-36 time + random suffix (always 3-32 chars of [A-Za-z0-9], starting with a letter).
(function () {
    var chars = "abcdefghijklmnopqrstuvwxyz0123456789", suffix = "";
    for (var i = 0; i < 5; i++) { suffix += chars.charAt(Math.floor(Math.random() * chars.length)); }
    var username = "${prefix}" + Date.now().toString(36) + suffix;
    var words = ["amber", "otter", "quill", "harbor", "maple", "cobalt", "lantern", "meadow", "thistle", "granite",
                 "pebble", "saffron", "juniper", "falcon", "orchid", "tundra", "walnut", "beacon", "ember", "willow"];
    function pick() { return words[Math.floor(Math.random() * words.length)]; }
    pm.collectionVariables.set("${key}Username", username);
    pm.collectionVariables.set("${key}Email", username.toLowerCase() + "@example.com");
    // Not a common password, and contains neither the username nor the email's local part.
    pm.collectionVariables.set("${key}Password", "violet staircase " + pick() + " " + pick() + " " + pick());
})();`;
}

const ADMIN_MODE = `var adminMode = Boolean(pm.variables.get("adminUsername")) && Boolean(pm.variables.get("adminPassword"));`;

// Admin-route tests: in regular mode 403 insufficient_role, else `adminCode`.
function adminTests(adminCode) {
  return `${ADMIN_MODE}
if (!adminMode) {
    // No admin configured: the request was made with a regular user's token.
${indent(forbiddenRoleTests(), 4)}
} else {
${indent(adminCode, 4)}
}`;
}
function indent(s, n) { const p = ' '.repeat(n); return s.split('\n').map((l) => (l ? p + l : l)).join('\n'); }

// ---------------------------------------------------------------- requests
const JSON_HDR = { key: 'Content-Type', value: 'application/json' };
const bearer = (v) => ({ key: 'Authorization', value: `Bearer {{${v}}}` });

function req(name, o) {
  const [pathPart, queryPart] = o.url.split('?');
  if (!pathPart.startsWith('/')) throw new Error('path must start with /: ' + o.url);
  const url = {
    raw: '{{baseUrl}}' + o.url,
    host: ['{{baseUrl}}'],
    // Empty segments are kept: "/docs/" is not "/docs".
    path: pathPart.split('/').slice(1),
  };
  if (queryPart) {
    url.query = queryPart.split('&').map((kv) => {
      const i = kv.indexOf('=');
      return i < 0 ? { key: kv, value: null } : { key: kv.slice(0, i), value: kv.slice(i + 1) };
    });
  }
  const header = [];
  let body;
  if (o.body !== undefined) {
    header.push(o.contentType ? { key: 'Content-Type', value: o.contentType } : JSON_HDR);
    const raw = typeof o.body === 'string' ? o.body : JSON.stringify(o.body, null, 2);
    body = { mode: 'raw', raw, options: { raw: { language: o.contentType ? 'text' : 'json' } } };
  }
  if (o.auth) header.push(bearer(o.auth));
  (o.headers || []).forEach((h) => header.push(h));
  const event = [];
  if (o.pre) event.push({ listen: 'prerequest', script: { type: 'text/javascript', exec: o.pre.split('\n') } });
  if (!o.test) throw new Error('every request needs a test: ' + name);
  event.push({ listen: 'test', script: { type: 'text/javascript', exec: o.test.split('\n') } });
  const r = { method: o.method, header, url };
  if (body) r.body = body;
  if (o.desc) r.description = o.desc;
  const item = { name, event, request: r };
  if (o.noRedirect) item.protocolProfileBehavior = { followRedirects: false };
  return item;
}
const folder = (name, description, item, extra) => Object.assign({ name, description, item }, extra || {});

const creds = (k) => ({ username: `{{${k}Username}}`, password: `{{${k}Password}}` });

// ================================================================ Health & discovery
const CANONICAL_OPENAPI_PATHS = ['/auth/register', '/auth/login', '/auth/refresh', '/auth/logout', '/protected', '/me',
  '/me/password', '/me/sessions', '/me/sessions/{id}', '/admin/users', '/admin/users/{id}', '/admin/audit',
  '/health/live', '/health/ready', '/metrics', '/.well-known/jwks.json'];
const ALIAS_OPENAPI = [['/register', 'post'], ['/signup', 'post'], ['/api/auth/register', 'post'], ['/login', 'post'],
  ['/api/auth/login', 'post'], ['/api/auth/protected', 'get'], ['/user/update', 'patch']];

const health = folder('Health & discovery',
  'Unauthenticated endpoints: liveness, readiness, Prometheus metrics, the JWKS, the OpenAPI document and the interactive docs. ' +
  'Also the `x-request-id` rules (a valid client id is echoed, an invalid one replaced).', [
  req('GET /health/live', { method: 'GET', url: '/health/live', test: [S.status(200), S.json(),
    `pm.test("body is {status: ok}", function () { pm.expect(pm.response.json()).to.eql({ status: "ok" }); });`].join('\n') }),
  req('GET /health/ready', { method: 'GET', url: '/health/ready', test: [S.status(200), S.json(),
    `pm.test("body is {status: ok} (the database answers)", function () { pm.expect(pm.response.json()).to.eql({ status: "ok" }); });`].join('\n') }),
  req('GET /metrics (Prometheus text)', { method: 'GET', url: '/metrics', test: [S.status(200),
    R`pm.test("Content-Type is text/plain", function () {
    pm.expect(pm.response.headers.get("Content-Type") || "").to.match(/^text\/plain/i);
});
pm.test("Prometheus exposition with the documented metrics", function () {
    var t = pm.response.text();
    pm.expect(t).to.match(/^# TYPE /m);
    pm.expect(t).to.include("http_requests_total");
    pm.expect(t).to.include("gatehouse_db_pool_connections");
    pm.expect(t, "route label is a template, never a raw path").to.not.match(/route="\/admin\/users\/[0-9a-f]{8}-/);
});`].join('\n') }),
  req('GET /.well-known/jwks.json', { method: 'GET', url: '/.well-known/jwks.json', test: [S.status(200), S.json(),
    `pm.test("JWKS: keys array of public keys only (empty with HS256)", function () {
    var b = pm.response.json();
    pm.expect(b.keys).to.be.an("array");
    b.keys.forEach(function (k) {
        pm.expect(k.kty, "kty").to.be.a("string");
        pm.expect(k.kid, "kid").to.be.a("string");
        pm.expect(k, "no private part").to.not.have.any.keys("d", "k", "p", "q");
    });
});`].join('\n') }),
  req('GET /openapi.json', { method: 'GET', url: '/openapi.json', test: [S.status(200),
    R`pm.test("Content-Type is JSON", function () {
    pm.expect(pm.response.headers.get("Content-Type") || "").to.match(/^application\/(vnd\.oai\.openapi\+)?json\s*(;|$)/i);
});
pm.test("an OpenAPI 3.1 document with paths containing /auth/login", function () {
    var b = pm.response.json();
    pm.expect(String(b.openapi)).to.match(/^3\.1/);
    pm.expect(b.paths).to.be.an("object");
    pm.expect(b.paths).to.have.property("/auth/login");
});
pm.test("every canonical route is documented", function () {
    var paths = pm.response.json().paths || {};
    ${JSON.stringify(CANONICAL_OPENAPI_PATHS)}.forEach(function (p) { pm.expect(paths, p).to.have.property(p); });
});
pm.test("aliases are listed as deprecated", function () {
    var paths = pm.response.json().paths || {};
    ${JSON.stringify(ALIAS_OPENAPI)}.forEach(function (pm_) {
        pm.expect(paths, pm_[0]).to.have.property(pm_[0]);
        pm.expect(paths[pm_[0]][pm_[1]], pm_[1] + " " + pm_[0]).to.be.an("object");
        pm.expect(paths[pm_[0]][pm_[1]].deprecated, pm_[0] + " deprecated").to.eql(true);
    });
});`].join('\n') }),
  req('GET /docs (interactive docs, offline)', { method: 'GET', url: '/docs', test: [S.status(200),
    R`pm.test("Content-Type is text/html", function () {
    pm.expect(pm.response.headers.get("Content-Type") || "").to.match(/^text\/html/i);
});
pm.test("an HTML page that loads no scripts or styles from elsewhere (works offline)", function () {
    var t = pm.response.text();
    pm.expect(t).to.match(/<html/i);
    pm.expect(t).to.not.match(/<script[^>]+src=["']?(https?:)?\/\//i);
    pm.expect(t).to.not.match(/<link[^>]+href=["']?(https?:)?\/\//i);
});`].join('\n') }),
  req('GET /docs/ (redirects to /docs)', { method: 'GET', url: '/docs/', noRedirect: true, test: [S.status(308),
    `pm.test("Location is /docs", function () { pm.expect(pm.response.headers.get("Location")).to.eql("/docs"); });`].join('\n') }),
  req('GET /docs/{file} (a file of the docs page)', { method: 'GET', url: '/docs/swagger-ui.css', test: [S.status(200),
    R`pm.test("Content-Type is text/css", function () {
    pm.expect(pm.response.headers.get("Content-Type") || "").to.match(/^text\/css/i);
});
pm.test("a stylesheet", function () { pm.expect(pm.response.text()).to.include(".swagger-ui"); });`].join('\n') }),
  req('GET /health/live with a client X-Request-Id (echoed)', { method: 'GET', url: '/health/live',
    headers: [{ key: 'X-Request-Id', value: '{{clientRequestId}}' }],
    pre: `pm.collectionVariables.set("clientRequestId", "pm-" + Date.now() + ":check_1." + Math.floor(Math.random() * 1e6));`,
    test: [S.status(200), S.json(), `pm.test("x-request-id is the client's value", function () {
    pm.expect(pm.response.headers.get("x-request-id")).to.eql(pm.collectionVariables.get("clientRequestId"));
});
pm.test("body is {status: ok}", function () { pm.expect(pm.response.json().status).to.eql("ok"); });`].join('\n') }),
  req('GET /health/live with an invalid X-Request-Id (replaced)', { method: 'GET', url: '/health/live',
    headers: [{ key: 'X-Request-Id', value: 'not valid!{{$randomInt}}' }],
    test: [S.status(200), S.json(), `pm.test("x-request-id is a fresh id, not the invalid client value", function () {
    var rid = pm.response.headers.get("x-request-id") || "";
    pm.expect(rid).to.not.include("not valid");
    pm.expect(rid).to.match(/^[A-Za-z0-9._:-]{1,128}$/);
});
pm.test("body is {status: ok}", function () { pm.expect(pm.response.json().status).to.eql("ok"); });`].join('\n') }),
]);

// ================================================================ Register & login
const registerLogin = folder('Register & login',
  'Registration (201 with the user, never a password) and login by username or e-mail, either in any case. ' +
  'The first request makes a fresh user for every run.', [
  req('POST /auth/register (username, password, email, name)', { method: 'POST', url: '/auth/register',
    pre: ident('PmReg', 'reg'),
    body: { username: '{{regUsername}}', password: '{{regPassword}}', email: '{{regEmail}}', name: 'Violet Tester' },
    test: registered('reg', `pm.test("email and name are stored", function () {
    var u = pm.response.json().user;
    pm.expect(u.email).to.eql(pm.collectionVariables.get("regEmail"));
    pm.expect(u.name).to.eql("Violet Tester");
});`) }),
  req('POST /auth/register (only username and password)', { method: 'POST', url: '/auth/register',
    pre: ident('PmMin', 'min'),
    body: creds('min'),
    test: registered('min', `pm.test("email and name are null", function () {
    var u = pm.response.json().user;
    pm.expect(u.email).to.eql(null);
    pm.expect(u.name).to.eql(null);
});`) }),
  req('POST /auth/login (by username)', { method: 'POST', url: '/auth/login', body: creds('reg'),
    test: tokenPair('regUserId', 'reg') }),
  req('POST /auth/login (by email, other case: a second session)', { method: 'POST', url: '/auth/login',
    body: { email: '{{regEmailUpper}}', password: '{{regPassword}}' },
    pre: `pm.collectionVariables.set("regEmailUpper", pm.collectionVariables.get("regEmail").toUpperCase());`,
    test: tokenPair('regUserId', 'regByEmail', `pm.test("each login is its own session (new sid)", function () {
    pm.expect(pm.collectionVariables.get("regByEmailSid")).to.not.eql(pm.collectionVariables.get("regSid"));
});`) }),
  req('POST /auth/login (username in another case)', { method: 'POST', url: '/auth/login',
    body: { username: '{{regUsernameLower}}', password: '{{regPassword}}' },
    pre: `pm.collectionVariables.set("regUsernameLower", pm.collectionVariables.get("regUsername").toLowerCase());`,
    test: tokenPair('regUserId', null, `pm.test("the displayed username keeps the registered spelling", function () {
    pm.expect(pm.response.json().user.username).to.eql(pm.collectionVariables.get("regUsername"));
});`) }),
  req('GET /me with the login\'s access token', { method: 'GET', url: '/me', auth: 'regAccess',
    test: meOk('regUserId') }),
]);

// ================================================================ Tokens & sessions
const loginAs = (name, key, save, ua) => req(name, { method: 'POST', url: '/auth/login', body: creds(key),
  headers: ua ? [{ key: 'User-Agent', value: ua }] : [], test: tokenPair(key + 'UserId', save) });
const meDead = (name, v) => req(name, { method: 'GET', url: '/me', auth: v, test: invalidTokenTests() });
const refreshDead = (name, v) => req(name, { method: 'POST', url: '/auth/refresh', body: { refresh_token: `{{${v}}}` },
  test: [S.status(401), S.problem(401, 'invalid_refresh_token')].join('\n') });

const tokens = folder('Tokens & sessions',
  'Refresh rotation (login → refresh → the new access token works), the session list, ending one session by id, ' +
  'and the three logout scopes (`others`, `global`, `local`/default), each followed by a check that the affected ' +
  'tokens get 401. A spent refresh token is re-presented only in ways whose answer does not depend on ' +
  '`REFRESH_REUSE_GRACE_SECONDS`.', [
  req('POST /auth/register (session test user)', { method: 'POST', url: '/auth/register', pre: ident('PmTok', 'tok'),
    body: creds('tok'), test: registered('tok') }),
  loginAs('POST /auth/login (session A)', 'tok', 'tokA', 'gatehouse-postman/session-a'),
  loginAs('POST /auth/login (session B, another device)', 'tok', 'tokB', 'gatehouse-postman/session-b'),
  req('POST /auth/refresh (session A: a new pair)', { method: 'POST', url: '/auth/refresh',
    body: { refresh_token: '{{tokARefresh}}' },
    pre: `// Keep the pair being replaced, to compare and to re-present later.
pm.collectionVariables.set("tokAOldAccess", pm.collectionVariables.get("tokAAccess"));
pm.collectionVariables.set("tokASpentRefresh", pm.collectionVariables.get("tokARefresh"));
pm.collectionVariables.set("tokAOldSid", pm.collectionVariables.get("tokASid"));`,
    test: tokenPair('tokUserId', 'tokA', `pm.test("both tokens differ from the old pair; same session", function () {
    var b = pm.response.json();
    pm.expect(b.access_token, "access_token").to.not.eql(pm.collectionVariables.get("tokAOldAccess"));
    pm.expect(b.refresh_token, "refresh_token").to.not.eql(pm.collectionVariables.get("tokASpentRefresh"));
    pm.expect(jwtPart(b.access_token, 1).sid, "sid").to.eql(pm.collectionVariables.get("tokAOldSid"));
});`) }),
  req('GET /me with the refreshed access token', { method: 'GET', url: '/me', auth: 'tokAAccess', test: meOk('tokUserId') }),
  req('GET /me/sessions', { method: 'GET', url: '/me/sessions', auth: 'tokAAccess', test: [S.status(200), S.json(), RE_LIB,
    `pm.test("sessions: id, created_at, last_used_at, user_agent, ip, current", function () {
    var s = pm.response.json().sessions;
    pm.expect(s).to.be.an("array").with.length.at.least(2);
    s.forEach(function (x) {
        pm.expect(x.id, "id").to.match(UUID_RE);
        pm.expect(x.created_at, "created_at").to.match(TIME_RE);
        pm.expect(x.last_used_at, "last_used_at").to.match(TIME_RE);
        pm.expect(x, "user_agent").to.have.property("user_agent");
        pm.expect(x, "ip").to.have.property("ip");
        pm.expect(x.current, "current").to.be.a("boolean");
    });
});
pm.test("session A is the current one, session B is listed and not current", function () {
    var s = pm.response.json().sessions;
    var cur = s.filter(function (x) { return x.current; });
    pm.expect(cur.length, "exactly one current").to.eql(1);
    pm.expect(cur[0].id).to.eql(pm.collectionVariables.get("tokASid"));
    pm.expect(cur[0].user_agent).to.eql("gatehouse-postman/session-a");
    var b = s.filter(function (x) { return x.id === pm.collectionVariables.get("tokBSid"); });
    pm.expect(b.length, "session B listed").to.eql(1);
    pm.expect(b[0].current).to.eql(false);
    pm.expect(b[0].user_agent).to.eql("gatehouse-postman/session-b");
});
pm.test("newest first", function () {
    var s = pm.response.json().sessions;
    for (var i = 1; i < s.length; i++) { pm.expect(s[i - 1].created_at >= s[i].created_at, "order at " + i).to.eql(true); }
});`].join('\n') }),
  req('DELETE /me/sessions/{id} (end session B)', { method: 'DELETE', url: '/me/sessions/{{tokBSid}}', auth: 'tokAAccess',
    test: [S.status(204), S.noBody()].join('\n') }),
  meDead('GET /me with session B\'s access token → 401 invalid_token', 'tokBAccess'),
  refreshDead('POST /auth/refresh with session B\'s refresh token → 401 invalid_refresh_token', 'tokBRefresh'),
  req('DELETE /me/sessions/{id} again → 404', { method: 'DELETE', url: '/me/sessions/{{tokBSid}}', auth: 'tokAAccess',
    test: [S.status(404), S.problem(404, 'not_found')].join('\n') }),
  req('DELETE /me/sessions/{id} with an unknown id → 404', { method: 'DELETE', url: '/me/sessions/{{randomSessionId}}', auth: 'tokAAccess',
    pre: `pm.collectionVariables.set("randomSessionId", pm.variables.replaceIn("{{$guid}}"));`,
    test: [S.status(404), S.problem(404, 'not_found')].join('\n') }),
  loginAs('POST /auth/login (session C)', 'tok', 'tokC'),
  req('POST /auth/logout {"scope":"others"} (from session A)', { method: 'POST', url: '/auth/logout', auth: 'tokAAccess',
    body: { scope: 'others' }, test: [S.status(204), S.noBody()].join('\n') }),
  meDead('GET /me with session C\'s token → 401 (ended by scope others)', 'tokCAccess'),
  req('GET /me/sessions: only session A is left', { method: 'GET', url: '/me/sessions', auth: 'tokAAccess',
    test: [S.status(200), S.json(), `pm.test("one session, the current one", function () {
    var s = pm.response.json().sessions;
    pm.expect(s.length).to.eql(1);
    pm.expect(s[0].id).to.eql(pm.collectionVariables.get("tokASid"));
    pm.expect(s[0].current).to.eql(true);
});`].join('\n') }),
  loginAs('POST /auth/login (session D)', 'tok', 'tokD'),
  req('POST /auth/logout {"scope":"global"} (from session D)', { method: 'POST', url: '/auth/logout', auth: 'tokDAccess',
    body: { scope: 'global' }, test: [S.status(204), S.noBody()].join('\n') }),
  meDead('GET /me with session A\'s token → 401 (ended by scope global)', 'tokAAccess'),
  meDead('GET /me with session D\'s token → 401 (ended by scope global)', 'tokDAccess'),
  refreshDead('POST /auth/refresh with session A\'s current refresh token → 401', 'tokARefresh'),
  refreshDead('POST /auth/refresh re-using session A\'s spent refresh token → 401', 'tokASpentRefresh'),
  loginAs('POST /auth/login (session E)', 'tok', 'tokE'),
  req('POST /auth/logout (no body: scope local)', { method: 'POST', url: '/auth/logout', auth: 'tokEAccess',
    test: [S.status(204), S.noBody()].join('\n') }),
  meDead('GET /me after logout → 401 invalid_token', 'tokEAccess'),
  refreshDead('POST /auth/refresh after logout → 401 invalid_refresh_token', 'tokERefresh'),
  loginAs('POST /auth/login (session F)', 'tok', 'tokF'),
  req('POST /auth/refresh (session F)', { method: 'POST', url: '/auth/refresh', body: { refresh_token: '{{tokFRefresh}}' },
    pre: `pm.collectionVariables.set("tokFSpentRefresh", pm.collectionVariables.get("tokFRefresh"));`,
    test: tokenPair('tokUserId', 'tokF') }),
  req('POST /auth/refresh re-presenting F\'s spent token (grace: same pair; later: 401)', { method: 'POST', url: '/auth/refresh',
    body: { refresh_token: '{{tokFSpentRefresh}}' },
    desc: 'Within REFRESH_REUSE_GRACE_SECONDS of the rotation the same new pair comes back (two tabs, a retry); ' +
      'after it, the reuse is taken as theft: 401 invalid_refresh_token and the session ends. Both answers are ' +
      'accepted here, so the result does not depend on how fast the run is; the next request checks the consequence.',
    test: `var code = pm.response.code;
pm.test("status is 200 (within the grace window) or 401 (after it)", function () { pm.expect(code).to.be.oneOf([200, 401]); });
if (code === 200) {
${indent([S.json(), S.noStore(), `pm.test("the same pair as the rotation returned", function () {
    var b = pm.response.json();
    pm.expect(b.access_token).to.eql(pm.collectionVariables.get("tokFAccess"));
    pm.expect(b.refresh_token).to.eql(pm.collectionVariables.get("tokFRefresh"));
    pm.expect(b.token_type).to.eql("Bearer");
});
pm.collectionVariables.set("tokFReuse", "grace");`].join('\n'), 4)}
} else {
${indent([S.problem(401, 'invalid_refresh_token'), `pm.collectionVariables.set("tokFReuse", "revoked");`].join('\n'), 4)}
}` }),
  req('GET /me with F\'s new access token (alive after grace reuse, 401 after theft)', { method: 'GET', url: '/me', auth: 'tokFAccess',
    test: `if (pm.collectionVariables.get("tokFReuse") === "grace") {
${indent(meOk('tokUserId'), 4)}
} else {
${indent(invalidTokenTests(), 4)}
}` }),
  req('POST /auth/logout {"scope":"local"} (session F)', { method: 'POST', url: '/auth/logout', auth: 'tokFAccess',
    body: { scope: 'local' },
    test: `if (pm.collectionVariables.get("tokFReuse") === "grace") {
${indent([S.status(204), S.noBody()].join('\n'), 4)}
} else {
${indent(invalidTokenTests(), 4)}
}` }),
  meDead('GET /me after logout local → 401 invalid_token', 'tokFAccess'),
]);

// ================================================================ Profile
const profile = folder('Profile',
  '`/protected`, reading and editing your profile, changing the password (every other session ends) and deleting the account.', [
  req('POST /auth/register (profile test user)', { method: 'POST', url: '/auth/register', pre: ident('PmPro', 'pro'),
    body: { username: '{{proUsername}}', password: '{{proPassword}}', email: '{{proEmail}}', name: 'Profile Tester' },
    test: registered('pro') }),
  loginAs('POST /auth/login (profile user)', 'pro', 'pro'),
  loginAs('POST /auth/login (profile user, second session)', 'pro', 'pro2'),
  req('GET /protected', { method: 'GET', url: '/protected', auth: 'proAccess', test: [S.status(200), S.json(),
    S.welcome('pro')].join('\n') }),
  req('GET /protected with a lower-case "bearer" scheme', { method: 'GET', url: '/protected',
    headers: [{ key: 'Authorization', value: 'bearer {{proAccess}}' }], test: [S.status(200), S.json(),
    `pm.test("the scheme is case-insensitive", function () { pm.expect(pm.response.json().username).to.eql(pm.collectionVariables.get("proUsername")); });`].join('\n') }),
  req('GET /me', { method: 'GET', url: '/me', auth: 'proAccess', test: meOk('proUserId', `pm.test("email, name, role as registered; no password", function () {
    var u = pm.response.json();
    pm.expect(u.username).to.eql(pm.collectionVariables.get("proUsername"));
    pm.expect(u.email).to.eql(pm.collectionVariables.get("proEmail"));
    pm.expect(u.name).to.eql("Profile Tester");
    pm.expect(u.role).to.eql("user");
    pm.expect(u).to.not.have.any.keys("password", "password_hash");
});`) }),
  req('PATCH /me (name and email)', { method: 'PATCH', url: '/me', auth: 'proAccess',
    pre: `pm.collectionVariables.set("proNewEmail", "new." + pm.collectionVariables.get("proEmail"));`,
    body: { name: 'Profile Tester Renamed', email: '{{proNewEmail}}' },
    test: meOk('proUserId', `pm.test("name and email changed", function () {
    var u = pm.response.json();
    pm.expect(u.name).to.eql("Profile Tester Renamed");
    pm.expect(u.email).to.eql(pm.collectionVariables.get("proNewEmail"));
    pm.expect(u.updated_at >= u.created_at).to.eql(true);
});`) }),
  req('PATCH /me {} (changes nothing)', { method: 'PATCH', url: '/me', auth: 'proAccess', body: {},
    test: meOk('proUserId', `pm.test("unchanged", function () {
    var u = pm.response.json();
    pm.expect(u.name).to.eql("Profile Tester Renamed");
    pm.expect(u.email).to.eql(pm.collectionVariables.get("proNewEmail"));
});`) }),
  req('PATCH /me {"name":null} (clears the name)', { method: 'PATCH', url: '/me', auth: 'proAccess', body: { name: null },
    test: meOk('proUserId', `pm.test("name is null, email kept", function () {
    var u = pm.response.json();
    pm.expect(u.name).to.eql(null);
    pm.expect(u.email).to.eql(pm.collectionVariables.get("proNewEmail"));
});`) }),
  req('PATCH /me (new username)', { method: 'PATCH', url: '/me', auth: 'proAccess',
    pre: `pm.collectionVariables.set("proNewUsername", pm.collectionVariables.get("proUsername") + "R");`,
    body: { username: '{{proNewUsername}}' },
    test: meOk('proUserId', `pm.test("username changed", function () {
    pm.expect(pm.response.json().username).to.eql(pm.collectionVariables.get("proNewUsername"));
});
pm.collectionVariables.set("proOldUsername", pm.collectionVariables.get("proUsername"));
pm.collectionVariables.set("proUsername", pm.collectionVariables.get("proNewUsername"));`) }),
  req('PUT /me/password', { method: 'PUT', url: '/me/password', auth: 'proAccess',
    pre: `pm.collectionVariables.set("proOldPassword", pm.collectionVariables.get("proPassword"));
pm.collectionVariables.set("proNewPassword", "violet staircase renewed " + ["harbor", "ember", "walnut", "orchid"][Math.floor(Math.random() * 4)] + " " + Math.floor(Math.random() * 1e6));`,
    body: { current_password: '{{proOldPassword}}', new_password: '{{proNewPassword}}' },
    test: [S.status(204), S.noBody(), `pm.collectionVariables.set("proPassword", pm.collectionVariables.get("proNewPassword"));`].join('\n') }),
  meDead('GET /me with the second session → 401 (ended by the password change)', 'pro2Access'),
  req('GET /me with this session (kept by the password change)', { method: 'GET', url: '/me', auth: 'proAccess',
    test: meOk('proUserId', `pm.test("shows the new username", function () {
    pm.expect(pm.response.json().username).to.eql(pm.collectionVariables.get("proUsername"));
});`) }),
  req('POST /auth/login with the old password → 401 invalid_credentials', { method: 'POST', url: '/auth/login',
    body: { username: '{{proUsername}}', password: '{{proOldPassword}}' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('POST /auth/login with the old username → 401 invalid_credentials', { method: 'POST', url: '/auth/login',
    body: { username: '{{proOldUsername}}', password: '{{proPassword}}' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  loginAs('POST /auth/login with the new username and password', 'pro', 'pro3'),
  req('PUT /me/password with a wrong current password → 401 invalid_credentials', { method: 'PUT', url: '/me/password', auth: 'proAccess',
    body: { current_password: 'violet staircase not mine', new_password: 'violet staircase never set' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('DELETE /me with a wrong password → 401 invalid_credentials', { method: 'DELETE', url: '/me', auth: 'proAccess',
    body: { password: 'violet staircase not mine' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('DELETE /me', { method: 'DELETE', url: '/me', auth: 'proAccess', body: { password: '{{proPassword}}' },
    test: [S.status(204), S.noBody()].join('\n') }),
  meDead('GET /me after deleting the account → 401 invalid_token', 'proAccess'),
  meDead('GET /me with the other session of the deleted account → 401', 'pro3Access'),
  req('POST /auth/login as the deleted user → 401 invalid_credentials', { method: 'POST', url: '/auth/login', body: creds('pro'),
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('POST /auth/register the deleted username again (it is free)', { method: 'POST', url: '/auth/register',
    body: { username: '{{proUsername}}', password: '{{proPassword}}', email: '{{proNewEmail}}' },
    pre: `pm.collectionVariables.set("proDeletedUserId", pm.collectionVariables.get("proUserId"));`,
    test: registered('pro', `pm.test("a new account with a new id", function () {
    pm.expect(pm.response.json().user.id).to.not.eql(pm.collectionVariables.get("proDeletedUserId"));
    pm.expect(pm.response.json().user.email).to.eql(pm.collectionVariables.get("proNewEmail"));
});`) }),
]);

// ================================================================ Admin
const adminUserChecks = (idVar, extra) => `${S.status(200)}
${S.json()}
${LIB}
pm.test("user with disabled and last_login_at", function () {
    var u = pm.response.json();
    expectUser(u);
    pm.expect(u.id).to.eql(pm.collectionVariables.get("${idVar}"));
    pm.expect(u.disabled, "disabled").to.be.a("boolean");
    pm.expect(u, "last_login_at").to.have.property("last_login_at");
    pm.expect(u).to.not.have.any.keys("password", "password_hash");
});${extra ? '\n' + extra : ''}`;

const admin = folder('Admin',
  'Two modes, chosen by the collection (or environment) variables `adminUsername` and `adminPassword`.\n\n' +
  '* Both empty (the default): every admin request is made with a REGULAR user\'s token and must get 403 ' +
  '`insufficient_role` with `WWW-Authenticate: …error="insufficient_scope"`; the follow-up checks confirm that nothing changed.\n' +
  '* Both set: the folder logs in as that admin and runs the admin flow on users made in this run: list (limit, cursor, q), ' +
  'get one, disable (login → 403 `account_disabled`), enable, role change (the user\'s sessions end), register an admin with ' +
  'an admin token, delete it (then 404), and the audit log. The configured admin itself is never demoted, disabled or deleted.', [
  req('POST /auth/register (admin-folder target user)', { method: 'POST', url: '/auth/register', pre: ident('PmAdm', 'adm'),
    body: { username: '{{admUsername}}', password: '{{admPassword}}', email: '{{admEmail}}' }, test: registered('adm') }),
  req('POST /auth/login (target user: the regular caller)', { method: 'POST', url: '/auth/login', body: creds('adm'),
    test: tokenPair('admUserId', 'adm', `// Without an admin, the admin requests below are made with this regular token.
pm.collectionVariables.set("adminCallerToken", pm.response.json().access_token);`) }),
  req('POST /auth/login (configured admin; skipped without one)', { method: 'POST', url: '/auth/login',
    body: { username: '{{adminUsername}}', password: '{{adminPassword}}' },
    pre: `${ADMIN_MODE}
if (!adminMode) {
    console.log("adminUsername/adminPassword not set: admin requests run with a regular user's token and expect 403");
    pm.execution.skipRequest();
}`,
    test: tokenPair(null, 'admin', `pm.test("the configured account is an admin", function () {
    pm.expect(pm.response.json().user.role, "set adminUsername to an account with role admin").to.eql("admin");
});
pm.collectionVariables.set("adminUserId", pm.response.json().user.id);
pm.collectionVariables.set("adminCallerToken", pm.response.json().access_token);`) }),
  req('GET /admin/users?limit=1', { method: 'GET', url: '/admin/users?limit=1', auth: 'adminCallerToken',
    pre: `pm.collectionVariables.set("admCursor", "");`,
    test: adminTests(`${S.status(200)}
${S.json()}
${LIB}
pm.test("users (at most limit) and a next_cursor", function () {
    var b = pm.response.json();
    pm.expect(b.users).to.be.an("array").with.length(1);
    b.users.forEach(function (u) { expectUser(u); pm.expect(u).to.not.have.any.keys("password", "password_hash"); });
    pm.expect(b.next_cursor, "next_cursor (there are at least two users)").to.be.a("string").and.not.empty;
});
pm.collectionVariables.set("admCursor", pm.response.json().next_cursor);
pm.collectionVariables.set("admFirstListedId", pm.response.json().users[0].id);`) }),
  req('GET /admin/users?limit=1&cursor= (next page)', { method: 'GET', url: '/admin/users?limit=1&cursor={{admCursor}}', auth: 'adminCallerToken',
    test: adminTests(`${S.status(200)}
${S.json()}
${LIB}
pm.test("the next page holds another user", function () {
    var b = pm.response.json();
    pm.expect(b.users).to.be.an("array").with.length(1);
    expectUser(b.users[0]);
    pm.expect(b.users[0].id).to.not.eql(pm.collectionVariables.get("admFirstListedId"));
    pm.expect(b, "next_cursor").to.have.property("next_cursor");
    pm.expect(b.next_cursor === null || typeof b.next_cursor === "string").to.eql(true);
});`) }),
  req('GET /admin/users?q= (case-insensitive prefix finds this run\'s user)', { method: 'GET', url: '/admin/users?q={{admQuery}}', auth: 'adminCallerToken',
    pre: `// Nearly the whole name, in upper case: unique to this run, and the match must ignore case.
pm.collectionVariables.set("admQuery", pm.collectionVariables.get("admUsername").slice(0, -1).toUpperCase());`,
    test: adminTests(`${S.status(200)}
${S.json()}
pm.test("the target user is found; every hit starts with q", function () {
    var b = pm.response.json(), q = pm.collectionVariables.get("admQuery").toLowerCase();
    var ids = b.users.map(function (u) { return u.id; });
    pm.expect(ids).to.include(pm.collectionVariables.get("admUserId"));
    b.users.forEach(function (u) {
        var hit = u.username.toLowerCase().indexOf(q) === 0 || String(u.email || "").toLowerCase().indexOf(q) === 0;
        pm.expect(hit, u.username + " matches " + q).to.eql(true);
    });
    pm.expect(b, "next_cursor").to.have.property("next_cursor");
});`) }),
  req('GET /admin/users?limit=101 → 400 invalid_limit', { method: 'GET', url: '/admin/users?limit=101', auth: 'adminCallerToken',
    test: adminTests([S.status(400), S.problem(400, 'invalid_limit')].join('\n')) }),
  req('GET /admin/users?cursor=garbage → 400 invalid_cursor', { method: 'GET', url: '/admin/users?cursor=not-a-cursor', auth: 'adminCallerToken',
    test: adminTests([S.status(400), S.problem(400, 'invalid_cursor')].join('\n')) }),
  req('GET /admin/users/{id}', { method: 'GET', url: '/admin/users/{{admUserId}}', auth: 'adminCallerToken',
    test: adminTests(adminUserChecks('admUserId', `pm.test("enabled, role user, logged in", function () {
    var u = pm.response.json();
    pm.expect(u.disabled).to.eql(false);
    pm.expect(u.role).to.eql("user");
    pm.expect(u.last_login_at, "last_login_at").to.match(TIME_RE);
});`)) }),
  req('GET /admin/users/{id} with an unknown id → 404', { method: 'GET', url: '/admin/users/{{admUnknownId}}', auth: 'adminCallerToken',
    pre: `pm.collectionVariables.set("admUnknownId", pm.variables.replaceIn("{{$guid}}"));`,
    test: adminTests([S.status(404), S.problem(404, 'not_found')].join('\n')) }),
  req('PATCH /admin/users/{id} {"disabled":true}', { method: 'PATCH', url: '/admin/users/{{admUserId}}', auth: 'adminCallerToken',
    body: { disabled: true },
    test: adminTests(adminUserChecks('admUserId', `pm.test("disabled", function () { pm.expect(pm.response.json().disabled).to.eql(true); });`)) }),
  req('GET /me with the target\'s token (admin: 401 disabled; regular: unchanged, 200)', { method: 'GET', url: '/me', auth: 'admAccess',
    test: `${ADMIN_MODE}
if (adminMode) {
${indent(invalidTokenTests(), 4)}
} else {
${indent(meOk('admUserId'), 4)}
}` }),
  req('POST /auth/login as the target (admin: 403 account_disabled; regular: 200)', { method: 'POST', url: '/auth/login', body: creds('adm'),
    test: `${ADMIN_MODE}
if (adminMode) {
${indent([S.status(403), S.problem(403, 'account_disabled')].join('\n'), 4)}
} else {
${indent(tokenPair('admUserId', null), 4)}
}` }),
  req('POST /auth/login as the target, wrong password → 401 (disabled or not)', { method: 'POST', url: '/auth/login',
    body: { username: '{{admUsername}}', password: 'violet staircase wrong one' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('PATCH /admin/users/{id} {"disabled":false}', { method: 'PATCH', url: '/admin/users/{{admUserId}}', auth: 'adminCallerToken',
    body: { disabled: false },
    test: adminTests(adminUserChecks('admUserId', `pm.test("enabled again", function () { pm.expect(pm.response.json().disabled).to.eql(false); });`)) }),
  loginAs('POST /auth/login as the target (enabled: 200)', 'adm', 'admT2'),
  req('PATCH /admin/users/{id} {"role":"admin"}', { method: 'PATCH', url: '/admin/users/{{admUserId}}', auth: 'adminCallerToken',
    body: { role: 'admin' },
    test: adminTests(adminUserChecks('admUserId', `pm.test("role is admin", function () { pm.expect(pm.response.json().role).to.eql("admin"); });`)) }),
  req('GET /me with the target\'s token (admin: 401 after the role change; regular: 200)', { method: 'GET', url: '/me', auth: 'admT2Access',
    test: `${ADMIN_MODE}
if (adminMode) {
${indent(invalidTokenTests(), 4)}
} else {
${indent(meOk('admUserId', `pm.test("role unchanged", function () { pm.expect(pm.response.json().role).to.eql("user"); });`), 4)}
}` }),
  req('PATCH /admin/users/{id} {"role":"user"}', { method: 'PATCH', url: '/admin/users/{{admUserId}}', auth: 'adminCallerToken',
    body: { role: 'user' },
    test: adminTests(adminUserChecks('admUserId', `pm.test("role is user again", function () { pm.expect(pm.response.json().role).to.eql("user"); });`)) }),
  req('PATCH /admin/users/{id} {"role":"root"} → 400', { method: 'PATCH', url: '/admin/users/{{admUserId}}', auth: 'adminCallerToken',
    body: { role: 'root' },
    test: adminTests([S.status(400), S.problem(400, 'validation_failed'), S.fieldError('role', 'invalid_role')].join('\n')) }),
  req('POST /auth/register {"role":"admin"} with the caller\'s token (admin: 201; regular: 403 role_forbidden)', { method: 'POST', url: '/auth/register',
    auth: 'adminCallerToken', pre: ident('PmDep', 'dep'),
    body: { username: '{{depUsername}}', password: '{{depPassword}}', role: 'admin' },
    test: `${ADMIN_MODE}
if (adminMode) {
${indent([S.status(201), S.json(), LIB, `pm.test("an admin was registered", function () {
    var b = pm.response.json();
    pm.expect(b.message).to.eql("User registered successfully");
    expectUser(b.user);
    pm.expect(b.user.username).to.eql(pm.collectionVariables.get("depUsername"));
    pm.expect(b.user.role).to.eql("admin");
});
pm.collectionVariables.set("depUserId", pm.response.json().user.id);
// The user this run deletes: the admin it just made (never the configured admin).
pm.collectionVariables.set("admDeleteId", pm.response.json().user.id);`].join('\n'), 4)}
} else {
${indent([S.status(403), S.problem(403, 'role_forbidden'), `// Nothing was made; the DELETE below is tried (and refused) on the target user.
pm.collectionVariables.set("admDeleteId", pm.collectionVariables.get("admUserId"));`].join('\n'), 4)}
}` }),
  req('DELETE /admin/users/{id} (the admin made in this run)', { method: 'DELETE', url: '/admin/users/{{admDeleteId}}', auth: 'adminCallerToken',
    pre: `if (pm.collectionVariables.get("admDeleteId") === pm.collectionVariables.get("adminUserId")) {
    throw new Error("refusing to delete the configured admin");
}`,
    test: adminTests([S.status(204), S.noBody(), `pm.collectionVariables.set("admDeleteRequestId", pm.response.headers.get("x-request-id"));`].join('\n')) }),
  req('GET /admin/users/{id} of the deleted user → 404', { method: 'GET', url: '/admin/users/{{admDeleteId}}', auth: 'adminCallerToken',
    test: adminTests([S.status(404), S.problem(404, 'not_found')].join('\n')) }),
  req('DELETE /admin/users/{id} of the deleted user again → 404', { method: 'DELETE', url: '/admin/users/{{admDeleteId}}', auth: 'adminCallerToken',
    test: adminTests([S.status(404), S.problem(404, 'not_found')].join('\n')) }),
  req('GET /admin/audit', { method: 'GET', url: '/admin/audit?limit=50', auth: 'adminCallerToken',
    test: adminTests(`${S.status(200)}
${S.json()}
${LIB}
var KINDS = ["register", "login_succeeded", "login_failed", "lockout", "refresh_reuse", "logout", "session_revoked",
             "password_changed", "role_changed", "user_disabled", "user_enabled", "user_deleted", "key_rotated",
             "reauth_failed", "profile_changed", "password_upgraded", "users_imported"];
pm.test("events with id, at, kind, user_id, actor_id, ip, user_agent, request_id, detail", function () {
    var b = pm.response.json();
    pm.expect(b.events).to.be.an("array").and.not.empty;
    pm.expect(b, "next_cursor").to.have.property("next_cursor");
    b.events.forEach(function (e) {
        ["id", "at", "kind", "user_id", "actor_id", "ip", "user_agent", "request_id", "detail"].forEach(function (k) {
            pm.expect(e, k).to.have.property(k);
        });
        pm.expect(e.id).to.match(UUID_RE);
        pm.expect(e.at).to.match(TIME_RE);
        pm.expect(KINDS).to.include(e.kind);
    });
});
pm.test("newest first", function () {
    var ev = pm.response.json().events;
    for (var i = 1; i < ev.length; i++) {
        pm.expect(ev[i - 1].at >= ev[i].at, "at, position " + i).to.eql(true);
        pm.expect(ev[i - 1].id > ev[i].id, "id (UUIDv7), position " + i).to.eql(true);
    }
});
pm.test("the deletion made in this run is logged, by the admin, with its request id", function () {
    var ev = pm.response.json().events.filter(function (e) {
        return e.kind === "user_deleted" && e.request_id === pm.collectionVariables.get("admDeleteRequestId");
    });
    pm.expect(ev.length, "user_deleted event of request " + pm.collectionVariables.get("admDeleteRequestId")).to.eql(1);
    pm.expect(ev[0].actor_id).to.eql(pm.collectionVariables.get("adminUserId"));
});`) }),
  req('GET /admin/audit?kind=register', { method: 'GET', url: '/admin/audit?kind=register&limit=20', auth: 'adminCallerToken',
    test: adminTests(`${S.status(200)}
${S.json()}
pm.test("only register events, newest first", function () {
    var ev = pm.response.json().events;
    pm.expect(ev).to.be.an("array").and.not.empty;
    ev.forEach(function (e) { pm.expect(e.kind).to.eql("register"); });
    for (var i = 1; i < ev.length; i++) { pm.expect(ev[i - 1].id > ev[i].id, "order at " + i).to.eql(true); }
});`) }),
  req('GET /admin/audit?user_id= (the target\'s history)', { method: 'GET', url: '/admin/audit?user_id={{admUserId}}', auth: 'adminCallerToken',
    test: adminTests(`${S.status(200)}
${S.json()}
pm.test("only the target's events, including this run's admin actions", function () {
    var ev = pm.response.json().events, id = pm.collectionVariables.get("admUserId");
    ev.forEach(function (e) { pm.expect(e.user_id).to.eql(id); });
    var kinds = ev.map(function (e) { return e.kind; });
    ["register", "login_succeeded", "user_disabled", "user_enabled", "role_changed"].forEach(function (k) {
        pm.expect(kinds, k).to.include(k);
    });
    var rc = ev.filter(function (e) { return e.kind === "role_changed"; });
    rc.forEach(function (e) { pm.expect(e.actor_id, "role_changed by the admin").to.eql(pm.collectionVariables.get("adminUserId")); });
});
pm.test("no password, hash or token in any event", function () {
    var t = pm.response.text();
    pm.expect(t).to.not.include(pm.collectionVariables.get("admPassword"));
    pm.expect(t).to.not.include(pm.collectionVariables.get("admAccess"));
    pm.expect(t).to.not.include(pm.collectionVariables.get("admRefresh"));
    pm.expect(t).to.not.match(/\\$argon2/);
});`) }),
  req('GET /admin/audit?kind=nope → 400 invalid_kind', { method: 'GET', url: '/admin/audit?kind=nope', auth: 'adminCallerToken',
    test: adminTests([S.status(400), S.problem(400, 'invalid_kind')].join('\n')) }),
]);

// ================================================================ Aliases
const aliases = folder('Aliases',
  'The paths of older Flask/FastAPI auth backends. Each behaves exactly like its canonical route, status codes included.', [
  req('POST /register', { method: 'POST', url: '/register', pre: ident('PmAla', 'ala'), body: creds('ala'), test: registered('ala') }),
  req('POST /signup', { method: 'POST', url: '/signup', pre: ident('PmAlb', 'alb'),
    body: { username: '{{albUsername}}', password: '{{albPassword}}', email: '{{albEmail}}' }, test: registered('alb') }),
  req('POST /api/auth/register', { method: 'POST', url: '/api/auth/register', pre: ident('PmAlc', 'alc'), body: creds('alc'), test: registered('alc') }),
  req('POST /signup with a taken name in another case → 409 username_taken', { method: 'POST', url: '/signup',
    body: { username: '{{alaUsernameUpper}}', password: 'violet staircase another one' },
    pre: `pm.collectionVariables.set("alaUsernameUpper", pm.collectionVariables.get("alaUsername").toUpperCase());`,
    test: [S.status(409), S.problem(409, 'username_taken')].join('\n') }),
  req('POST /api/auth/register {"role":"admin"} anonymously → 403 role_forbidden', { method: 'POST', url: '/api/auth/register',
    pre: ident('PmAld', 'ald'), body: { username: '{{aldUsername}}', password: '{{aldPassword}}', role: 'admin' },
    test: [S.status(403), S.problem(403, 'role_forbidden')].join('\n') }),
  req('POST /register as text/plain → 415', { method: 'POST', url: '/register', contentType: 'text/plain',
    body: '{"username":"{{aldUsername}}","password":"{{aldPassword}}"}',
    test: [S.status(415), S.problem(415, 'unsupported_media_type')].join('\n') }),
  req('POST /login', { method: 'POST', url: '/login', body: creds('ala'), test: tokenPair('alaUserId', 'ala') }),
  req('POST /api/auth/login (by email)', { method: 'POST', url: '/api/auth/login',
    body: { email: '{{albEmail}}', password: '{{albPassword}}' }, test: tokenPair('albUserId', 'alb') }),
  req('POST /login with a wrong password → 401 invalid_credentials', { method: 'POST', url: '/login',
    body: { username: '{{alaUsername}}', password: 'violet staircase wrong one' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('POST /api/auth/login with an unknown user → 401 invalid_credentials', { method: 'POST', url: '/api/auth/login',
    body: { username: '{{aldUsername}}', password: '{{aldPassword}}' },
    test: [S.status(401), S.problem(401, 'invalid_credentials')].join('\n') }),
  req('GET /api/auth/protected', { method: 'GET', url: '/api/auth/protected', auth: 'alaAccess', test: [S.status(200), S.json(),
    S.welcome('ala')].join('\n') }),
  req('GET /api/auth/protected without a token → 401 missing_token', { method: 'GET', url: '/api/auth/protected', test: missingTokenTests() }),
  req('PATCH /user/update', { method: 'PATCH', url: '/user/update', auth: 'albAccess', body: { name: 'Alias Tester' },
    test: meOk('albUserId', `pm.test("name changed", function () { pm.expect(pm.response.json().name).to.eql("Alias Tester"); });`) }),
  req('PATCH /user/update {"role":"admin"} → 400 unknown_field', { method: 'PATCH', url: '/user/update', auth: 'albAccess',
    body: { role: 'admin' }, test: [S.status(400), S.problem(400, 'unknown_field'), S.fieldError('role', 'unknown_field')].join('\n') }),
  req('PATCH /user/update without a token → 401 missing_token', { method: 'PATCH', url: '/user/update', body: { name: 'Nobody' },
    test: missingTokenTests() }),
]);

// ================================================================ Errors
const errors = folder('Errors',
  'Every error is application/problem+json with a stable `code`, `status`, `type`, `title`, `detail` and `request_id`.', [
  req('POST /auth/register (error test user)', { method: 'POST', url: '/auth/register', pre: ident('PmErr', 'err'),
    body: { username: '{{errUsername}}', password: '{{errPassword}}', email: '{{errEmail}}' }, test: registered('err') }),
  req('POST /auth/register with the same username → 409 username_taken', { method: 'POST', url: '/auth/register',
    body: { username: '{{errUsername}}', password: 'violet staircase another one' },
    test: [S.status(409), S.problem(409, 'username_taken')].join('\n') }),
  req('POST /auth/register with the username in another case → 409 username_taken', { method: 'POST', url: '/auth/register',
    pre: `var u = pm.collectionVariables.get("errUsername");
// Swap the case of every letter: Pm… becomes pM…
pm.collectionVariables.set("errUsernameOtherCase", u.split("").map(function (c) {
    return c === c.toUpperCase() ? c.toLowerCase() : c.toUpperCase();
}).join(""));`,
    body: { username: '{{errUsernameOtherCase}}', password: 'violet staircase another one' },
    test: [S.status(409), S.problem(409, 'username_taken')].join('\n') }),
  req('POST /auth/register with the email in another case → 409 email_taken', { method: 'POST', url: '/auth/register',
    pre: ident('PmErb', 'erb') + `\npm.collectionVariables.set("errEmailUpper", pm.collectionVariables.get("errEmail").toUpperCase());`,
    body: { username: '{{erbUsername}}', password: '{{erbPassword}}', email: '{{errEmailUpper}}' },
    test: [S.status(409), S.problem(409, 'email_taken')].join('\n') }),
  req('POST /auth/register {"role":"admin"} anonymously → 403 role_forbidden', { method: 'POST', url: '/auth/register',
    body: { username: '{{erbUsername}}', password: '{{erbPassword}}', role: 'admin' },
    test: [S.status(403), S.problem(403, 'role_forbidden')].join('\n') }),
  req('POST /auth/register with invalid fields → 400 validation_failed (all listed)', { method: 'POST', url: '/auth/register',
    body: { username: 'ab', password: 'password' },
    test: [S.status(400), S.problem(400, 'validation_failed'), S.fieldError('username', 'too_short'), S.fieldError('password', 'common_password')].join('\n') }),
  req('POST /auth/register with a password containing the username → 400', { method: 'POST', url: '/auth/register',
    pre: `pm.collectionVariables.set("errWeakPassword", "my " + pm.collectionVariables.get("erbUsername").toLowerCase() + " secret");`,
    body: { username: '{{erbUsername}}', password: '{{errWeakPassword}}' },
    test: [S.status(400), S.problem(400, 'validation_failed'), S.fieldError('password', 'contains_username')].join('\n') }),
  req('POST /auth/register with an unknown field → 400 unknown_field', { method: 'POST', url: '/auth/register',
    body: { username: '{{erbUsername}}', password: '{{erbPassword}}', is_admin: true },
    test: [S.status(400), S.problem(400, 'unknown_field'), S.fieldError('is_admin', 'unknown_field')].join('\n') }),
  req('POST /auth/register with a key given twice → 400 duplicate_field', { method: 'POST', url: '/auth/register',
    body: '{"username": "{{erbUsername}}", "username": "{{erbUsername}}x", "password": "{{erbPassword}}"}',
    test: [S.status(400), S.problem(400, 'duplicate_field'), S.fieldError('username', 'duplicate_field')].join('\n') }),
  req('POST /auth/register with a wrong JSON type → 400 invalid_type', { method: 'POST', url: '/auth/register',
    body: '{"username": 12345, "password": "{{erbPassword}}"}',
    test: [S.status(400), S.problem(400, 'invalid_type'), S.fieldError('username', 'invalid_type')].join('\n') }),
  req('POST /auth/register with a JSON array → 400 not_an_object', { method: 'POST', url: '/auth/register', body: '[]',
    test: [S.status(400), S.problem(400, 'not_an_object')].join('\n') }),
  req('POST /auth/register with malformed JSON → 400 malformed_json', { method: 'POST', url: '/auth/register',
    body: '{"username": "{{erbUsername}}", "password": ',
    test: [S.status(400), S.problem(400, 'malformed_json'), `pm.test("no parser internals in the answer", function () {
    pm.expect(pm.response.text()).to.not.match(/serde|line \\d+ column|panicked/i);
});`].join('\n') }),
  req('POST /auth/register as text/plain → 415', { method: 'POST', url: '/auth/register', contentType: 'text/plain',
    body: '{"username":"{{erbUsername}}","password":"{{erbPassword}}"}',
    test: [S.status(415), S.problem(415, 'unsupported_media_type')].join('\n') }),
  req('POST /auth/login with a body over 64 KiB → 413', { method: 'POST', url: '/auth/login', body: '{{errBigBody}}',
    pre: `pm.collectionVariables.set("errBigBody", JSON.stringify({ username: "someone", password: new Array(70 * 1024).join("x") }));`,
    test: [S.status(413), S.problem(413, 'payload_too_large')].join('\n') }),
  req('POST /auth/login with a wrong password → 401 invalid_credentials', { method: 'POST', url: '/auth/login',
    body: { username: '{{errUsername}}', password: 'violet staircase wrong one' },
    test: [S.status(401), S.problem(401, 'invalid_credentials'), `pm.collectionVariables.set("errWrongPwBody", JSON.stringify(pm.response.json()));`].join('\n') }),
  req('POST /auth/login with an unknown user → 401 invalid_credentials (same body)', { method: 'POST', url: '/auth/login',
    body: { username: '{{erbUsername}}', password: 'violet staircase wrong one' },
    test: [S.status(401), S.problem(401, 'invalid_credentials'), `pm.test("same body as a wrong password (apart from request_id)", function () {
    var a = JSON.parse(pm.collectionVariables.get("errWrongPwBody")), b = pm.response.json();
    delete a.request_id; delete b.request_id;
    pm.expect(b).to.eql(a);
});`].join('\n') }),
  req('POST /auth/login with both username and email → 400 ambiguous', { method: 'POST', url: '/auth/login',
    body: { username: '{{errUsername}}', email: '{{errEmail}}', password: '{{errPassword}}' },
    test: [S.status(400), S.problem(400, 'validation_failed'), `pm.test("errors[] code ambiguous", function () {
    var errs = pm.response.json().errors || [];
    pm.expect(errs.map(function (e) { return e.code; })).to.include("ambiguous");
});`].join('\n') }),
  loginAs('POST /auth/login (error test user)', 'err', 'err'),
  req('GET /me without a token → 401 missing_token', { method: 'GET', url: '/me', test: missingTokenTests() }),
  req('GET /me with the token in the query string (ignored) → 401 missing_token', { method: 'GET', url: '/me?access_token={{errAccess}}',
    test: missingTokenTests() }),
  req('GET /me with a garbage bearer token → 401 invalid_token', { method: 'GET', url: '/me',
    headers: [{ key: 'Authorization', value: 'Bearer not-a-jwt-{{$randomInt}}' }], test: invalidTokenTests() }),
  req('GET /me with a tampered signature → 401 invalid_token', { method: 'GET', url: '/me', auth: 'errTampered',
    pre: `var p = pm.collectionVariables.get("errAccess").split(".");
p[2] = (p[2].charAt(0) === "A" ? "B" : "A") + p[2].slice(1);
pm.collectionVariables.set("errTampered", p.join("."));`, test: invalidTokenTests() }),
  req('GET /me with an alg "none" token → 401 invalid_token', { method: 'GET', url: '/me', auth: 'errNone',
    pre: `var p = pm.collectionVariables.get("errAccess").split(".");
var h = require("btoa")(JSON.stringify({ alg: "none", typ: "at+jwt" })).replace(/=+$/, "").replace(/\\+/g, "-").replace(/\\//g, "_");
pm.collectionVariables.set("errNone", h + "." + p[1] + ".");`, test: invalidTokenTests() }),
  req('GET /me with a refresh token as the bearer → 401 invalid_token', { method: 'GET', url: '/me', auth: 'errRefresh', test: invalidTokenTests() }),
  req('GET /me with two Authorization headers → 401 invalid_token', { method: 'GET', url: '/me',
    headers: [bearer('errAccess'), bearer('errAccess')], test: invalidTokenTests() }),
  req('POST /auth/register with a bad token → 401 invalid_token', { method: 'POST', url: '/auth/register',
    headers: [{ key: 'Authorization', value: 'Bearer not-a-jwt' }], body: creds('erb'), test: invalidTokenTests() }),
  req('PATCH /me {"role":"admin"} → 400 unknown_field', { method: 'PATCH', url: '/me', auth: 'errAccess', body: { role: 'admin' },
    test: [S.status(400), S.problem(400, 'unknown_field'), S.fieldError('role', 'unknown_field')].join('\n') }),
  req('GET /me: the role is still user', { method: 'GET', url: '/me', auth: 'errAccess',
    test: meOk('errUserId', `pm.test("role unchanged", function () { pm.expect(pm.response.json().role).to.eql("user"); });`) }),
  req('PATCH /me as text/plain → 415', { method: 'PATCH', url: '/me', auth: 'errAccess', contentType: 'text/plain',
    body: '{"name":"Plain Text"}', test: [S.status(415), S.problem(415, 'unsupported_media_type')].join('\n') }),
  req('PATCH /me with a control character → 400', { method: 'PATCH', url: '/me', auth: 'errAccess',
    body: '{"name": "bell\\u0007here"}',
    test: [S.status(400), S.problem(400, 'validation_failed'), S.fieldError('name', 'control_character')].join('\n') }),
  req('POST /auth/register (a second error test user)', { method: 'POST', url: '/auth/register', pre: ident('PmErc', 'erc'),
    body: { username: '{{ercUsername}}', password: '{{ercPassword}}', email: '{{ercEmail}}' }, test: registered('erc') }),
  req('PATCH /me {"username": another user\'s, in another case} → 409 username_taken', { method: 'PATCH', url: '/me', auth: 'errAccess',
    pre: `pm.collectionVariables.set("ercUsernameLower", pm.collectionVariables.get("ercUsername").toLowerCase());`,
    body: { username: '{{ercUsernameLower}}' }, test: [S.status(409), S.problem(409, 'username_taken')].join('\n') }),
  req('PATCH /me {"email": another user\'s, in another case} → 409 email_taken', { method: 'PATCH', url: '/me', auth: 'errAccess',
    pre: `pm.collectionVariables.set("ercEmailUpper", pm.collectionVariables.get("ercEmail").toUpperCase());`,
    body: { email: '{{ercEmailUpper}}' }, test: [S.status(409), S.problem(409, 'email_taken')].join('\n') }),
  req('POST /auth/refresh with an invalid refresh token → 401 invalid_refresh_token', { method: 'POST', url: '/auth/refresh',
    body: { refresh_token: 'not-a-refresh-token-{{$randomInt}}' },
    test: [S.status(401), S.problem(401, 'invalid_refresh_token')].join('\n') }),
  req('POST /auth/refresh with an access token → 401 invalid_refresh_token', { method: 'POST', url: '/auth/refresh',
    body: { refresh_token: '{{errAccess}}' },
    test: [S.status(401), S.problem(401, 'invalid_refresh_token')].join('\n') }),
  req('POST /auth/refresh without refresh_token → 400', { method: 'POST', url: '/auth/refresh', body: {},
    test: [S.status(400), S.problem(400, 'validation_failed'), S.fieldError('refresh_token', 'required')].join('\n') }),
  req('POST /auth/logout {"scope":"everywhere"} → 400 invalid_scope', { method: 'POST', url: '/auth/logout', auth: 'errAccess',
    body: { scope: 'everywhere' },
    test: [S.status(400), S.problem(400, 'validation_failed'), S.fieldError('scope', 'invalid_scope')].join('\n') }),
  req('POST /auth/logout without a token → 401 missing_token', { method: 'POST', url: '/auth/logout', test: missingTokenTests() }),
  req('DELETE /me/sessions/{id} with a non-UUID id → 404', { method: 'DELETE', url: '/me/sessions/{{errNonUuidId}}', auth: 'errAccess',
    pre: `pm.collectionVariables.set("errNonUuidId", "not-a-uuid");`,
    test: [S.status(404), S.problem(404, 'not_found')].join('\n') }),
  req('DELETE /me/sessions/{id} of another user\'s session → 404', { method: 'DELETE', url: '/me/sessions/{{regSidOrRandom}}', auth: 'errAccess',
    pre: `pm.collectionVariables.set("regSidOrRandom", pm.collectionVariables.get("regSid") || pm.variables.replaceIn("{{$guid}}"));`,
    test: [S.status(404), S.problem(404, 'not_found')].join('\n') }),
  req('GET /admin/users with a regular token → 403 insufficient_role', { method: 'GET', url: '/admin/users', auth: 'errAccess',
    test: forbiddenRoleTests() }),
  req('GET /admin/users without a token → 401 missing_token', { method: 'GET', url: '/admin/users', test: missingTokenTests() }),
  req('POST /auth/logout', { method: 'POST', url: '/auth/logout', auth: 'errAccess', test: [S.status(204), S.noBody()].join('\n') }),
  meDead('GET /me with the logged-out token → 401 invalid_token', 'errAccess'),
]);

// ================================================================ collection
const COMMON_TEST = `// Runs after every request.
pm.test("[all] x-request-id is present", function () {
    pm.expect(pm.response.headers.get("x-request-id") || "").to.match(/^[A-Za-z0-9._:-]{1,128}$/);
});
pm.test("[all] X-Content-Type-Options: nosniff", function () {
    pm.expect(pm.response.headers.get("X-Content-Type-Options")).to.eql("nosniff");
});
pm.test("[all] no password, hash or secret in the response", function () {
    var text = pm.response.text();
    var ct = pm.response.headers.get("Content-Type") || "";
    // (The OpenAPI document describes password fields, so its keys are not scanned.)
    if (/json/i.test(ct) && text && pm.request.url.getPath() !== "/openapi.json") {
        var seen = [];
        (function walk(v) {
            if (v && typeof v === "object") {
                Object.keys(v).forEach(function (k) { seen.push(k); walk(v[k]); });
            }
        })(JSON.parse(text));
        seen.forEach(function (k) { pm.expect(k, "key " + k).to.not.match(/password|hash|secret/i); });
    }
    pm.expect(text).to.not.match(/\\$argon2/);
    var vars = pm.collectionVariables.toObject();
    Object.keys(vars).forEach(function (k) {
        if (/Password$/.test(k) && typeof vars[k] === "string" && vars[k].length >= 8) {
            pm.expect(text.indexOf(vars[k]), "the value of " + k + " is not echoed").to.eql(-1);
        }
    });
    var ap = pm.variables.get("adminPassword");
    if (ap) { pm.expect(text.indexOf(ap), "adminPassword is not echoed").to.eql(-1); }
});
if (pm.response.code >= 400 || /problem\\+json/i.test(pm.response.headers.get("Content-Type") || "")) {
    pm.test("[all] error answers carry no SQL, driver text or stack trace", function () {
        pm.expect(pm.response.text()).to.not.match(/sqlx|sqlite|mysql|syntax error|SELECT |INSERT |panicked|backtrace/i);
    });
}`;

const collection = {
  info: {
    name: 'gatehouse',
    description: [
      'The HTTP API of gatehouse, the user-authentication server, with tests for every route and alias.',
      '',
      'Run it with newman against a running server:',
      '',
      '    newman run postman_collection.json --env-var baseUrl=http://127.0.0.1:8080',
      '',
      'Admin mode: create an admin with the CLI (`GATEHOUSE_PASSWORD=… gatehouse user create --username U --role admin`) and add',
      '`--env-var adminUsername=U --env-var adminPassword=…` (or set the two collection variables). Without them the Admin folder',
      'checks that a regular user gets 403 `insufficient_role` on every admin route.',
      '',
      'Every run registers new users (names from the time and a random suffix), so it can run again and again against the same',
      'database. Tokens, session ids and user ids are carried between requests in collection variables.',
    ].join('\n'),
    schema: 'https://schema.getpostman.com/json/collection/v2.1.0/collection.json',
  },
  auth: { type: 'noauth' },
  event: [
    { listen: 'test', script: { type: 'text/javascript', exec: COMMON_TEST.split('\n') } },
  ],
  variable: [
    { key: 'baseUrl', value: 'http://127.0.0.1:8080', type: 'string' },
    { key: 'adminUsername', value: '', type: 'string' },
    { key: 'adminPassword', value: '', type: 'string' },
  ],
  item: [health, registerLogin, tokens, profile, admin, aliases, errors],
};

fs.writeFileSync(OUT, JSON.stringify(collection, null, '\t') + '\n');
let n = 0; collection.item.forEach((f) => { n += f.item.length; });
console.log('wrote', OUT, 'requests:', n);
