// Test OpenID provider for authgate's integration tests.
//
// A real `oidc-provider` (panva) instance serving HTTPS, with one confidential
// client, in-memory storage, throwaway signing keys made at start-up, and a
// minimal sign-in / consent UI that has stable element ids for WebDriver.
// It makes no outbound network requests (fetch is disabled) and its pages
// load no external resources.
//
// Environment (all read once at start-up):
//   IDP_CERT                       PEM certificate (chain) path; required
//   IDP_KEY                        PEM private key path; required
//   IDP_HOST                       host name in the issuer URL (default localhost)
//   IDP_BIND                       address to listen on (default: 127.0.0.1, and
//                                  also ::1 on the same port when IDP_HOST is
//                                  localhost; otherwise IDP_HOST itself)
//   IDP_PORT                       port; 0 = ephemeral (default 0)
//   IDP_CLIENT_ID                  client_id of the single client; required
//   IDP_CLIENT_SECRET              its secret (client_secret_basic); required
//   IDP_REDIRECT_URIS              comma-separated redirect URIs, matched exactly; required
//   IDP_POST_LOGOUT_REDIRECT_URIS  comma-separated post-logout redirect URIs (default none)
//   IDP_ID_TOKEN_TTL               ID token lifetime in seconds (default 3600)
//   IDP_ACCESS_TOKEN_TTL           access token lifetime in seconds (default IDP_ID_TOKEN_TTL)
//   IDP_REFRESH_TOKEN_TTL          refresh token lifetime in seconds (default 86400)
//   IDP_ID_TOKEN_ALG               ID token signing alg: RS256 (default), PS256, ES256, EdDSA, Ed25519
//   IDP_ROTATE_REFRESH_TOKEN       "1"/"true": every refresh grant consumes the presented
//                                  refresh token and returns a new one (re-use of a consumed
//                                  token revokes the whole grant); default: never rotate
//   IDP_EXTRA_CLAIMS               JSON object of claims added to every ID token,
//                                  e.g. {"scope":"orders:read"}
//   IDP_EXIT_ON_STDIN_CLOSE        "1": exit when stdin reaches EOF (give the process a
//                                  piped stdin and it dies with the test process)
//   IDP_VERBOSE                    "1": log every request (and the expected start-up
//                                  warnings, see below) to stderr
//
// Once listening, prints exactly one line to stdout and nothing else, ever:
//   listening https://HOST:PORT
// HOST:PORT is the issuer's authority (the real bound port). Logs go to stderr.
//
// Accounts: any login name and any non-empty password sign in. The account is
// sub = the login name typed, email = <login>@example.test, email_verified = true,
// plus IDP_EXTRA_CLAIMS; all of them are put in every ID token (whatever scopes
// were requested) and in userinfo.
//
// Test endpoints (JSON, same server):
//   GET    /_test/counts            {"code_grants","refresh_grants","refresh_errors",
//                                    "revocations","refresh_revocations","access_revocations",
//                                    "logouts","fail_refresh"}
//   POST   /_test/fail-refresh      from now on every refresh_token grant answers invalid_grant
//   DELETE /_test/fail-refresh      back to normal
//   POST   /_test/revoke-all?sub=X  revoke every grant (refresh + access tokens) of account X
//   POST   /_test/client            JSON {"redirect_uris":[...],"post_logout_redirect_uris":[...]}
//                                   (either optional): replace the client's registered URIs
//   POST   /_test/reset             zero the counters and clear fail-refresh
// Counting: code_grants / refresh_grants are successful token-endpoint grants by
// grant_type; refresh_errors are failed refresh_token grants; revocations are
// revocation-endpoint requests answered 200 (RFC 7009 answers 200 for unknown
// tokens too); refresh_revocations / access_revocations are those of them whose
// token the IdP still held and was a refresh / access token; logouts are
// completed end_session requests.
//
// oidc-provider behaviour the tests meet:
// - offline_access is dropped from an authorization request without
//   prompt=consent, and a refresh token is issued only when it was kept.
// - Revoking a refresh token or an access token revokes every token of that
//   grant (so revoking the access token first leaves no refresh token to count).
// - RP-initiated logout ends the IdP session but does not revoke grants that
//   include offline_access: their refresh tokens still work afterwards.
// - The logout confirmation page submits itself (logout=yes); #logout-confirm
//   is its button for a browser without JavaScript.

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';

// Everything but the one "listening" line goes to stderr (oidc-provider prints
// its notices with console.info). Two start-up warnings that are expected here
// are dropped unless IDP_VERBOSE is set: the in-memory adapter one, and
// "Unsupported runtime" (oidc-provider 9 is only tested upstream on Node 22+;
// the flows used here work on Node 20, checked with 20.20; it needs URL.parse,
// which Node 20 has from 20.18).
const truthy = (v) => ['1', 'true', 'yes', 'on'].includes(String(v ?? '').toLowerCase());
const VERBOSE = truthy(process.env.IDP_VERBOSE);
const EXPECTED_WARNINGS = [/Unsupported runtime/, /in-memory adapter is used/];
const warn = console.warn.bind(console);
console.warn = (...args) => {
  if (!VERBOSE && EXPECTED_WARNINGS.some((re) => re.test(String(args[0])))) return;
  warn(...args);
};
console.log = console.info = console.debug = (...args) => console.error(...args);

if (typeof URL.parse !== 'function') {
  console.error(`idp: Node ${process.version} is too old for oidc-provider 9 (needs URL.parse: Node >= 20.18)`);
  process.exit(2);
}

// Imported only now so that the filters above apply to its import-time warning.
const { default: Provider, errors } = await import('oidc-provider');

function die(message) {
  console.error(`idp: ${message}`);
  process.exit(2);
}

function env(name, fallback) {
  const value = process.env[name];
  if (value === undefined || value === '') {
    if (fallback === undefined) die(`${name} is required`);
    return fallback;
  }
  return value;
}

function envSeconds(name, fallback) {
  const raw = env(name, String(fallback));
  const n = Number(raw);
  if (!Number.isInteger(n) || n <= 0) die(`${name} must be a positive integer (seconds), got ${JSON.stringify(raw)}`);
  return n;
}

function envList(name, fallback) {
  return env(name, fallback).split(',').map((s) => s.trim()).filter(Boolean);
}

function readPem(name) {
  const path = env(name);
  try {
    return fs.readFileSync(path);
  } catch (err) {
    return die(`${name}: cannot read ${path}: ${err.message}`);
  }
}

const CERT = readPem('IDP_CERT');
const KEY = readPem('IDP_KEY');
const HOST = env('IDP_HOST', 'localhost');
const PORT = Number(env('IDP_PORT', '0'));
if (!Number.isInteger(PORT) || PORT < 0 || PORT > 65535) die('IDP_PORT must be a port number');
const CLIENT_ID = env('IDP_CLIENT_ID');
const CLIENT_SECRET = env('IDP_CLIENT_SECRET');
const REDIRECT_URIS = envList('IDP_REDIRECT_URIS');
if (REDIRECT_URIS.length === 0) die('IDP_REDIRECT_URIS is empty');
const POST_LOGOUT_REDIRECT_URIS = envList('IDP_POST_LOGOUT_REDIRECT_URIS', '');
const ID_TOKEN_TTL = envSeconds('IDP_ID_TOKEN_TTL', 3600);
const ACCESS_TOKEN_TTL = envSeconds('IDP_ACCESS_TOKEN_TTL', ID_TOKEN_TTL);
const REFRESH_TOKEN_TTL = envSeconds('IDP_REFRESH_TOKEN_TTL', 86400);
const ID_TOKEN_ALG = env('IDP_ID_TOKEN_ALG', 'RS256');
if (!['RS256', 'PS256', 'ES256', 'EdDSA', 'Ed25519'].includes(ID_TOKEN_ALG)) die(`IDP_ID_TOKEN_ALG ${ID_TOKEN_ALG} is not supported`);
const ROTATE_REFRESH_TOKEN = truthy(process.env.IDP_ROTATE_REFRESH_TOKEN);

let EXTRA_CLAIMS = {};
if (process.env.IDP_EXTRA_CLAIMS) {
  try {
    EXTRA_CLAIMS = JSON.parse(process.env.IDP_EXTRA_CLAIMS);
  } catch (err) {
    die(`IDP_EXTRA_CLAIMS is not JSON: ${err.message}`);
  }
  if (EXTRA_CLAIMS === null || typeof EXTRA_CLAIMS !== 'object' || Array.isArray(EXTRA_CLAIMS)) {
    die('IDP_EXTRA_CLAIMS must be a JSON object');
  }
  for (const reserved of ['sub', 'iss', 'aud', 'exp', 'iat', 'nbf', 'jti', 'nonce', 'azp', 'at_hash', 'c_hash', 'sid', 'auth_time']) {
    if (reserved in EXTRA_CLAIMS) die(`IDP_EXTRA_CLAIMS must not set ${reserved}`);
  }
}

// No outbound requests, ever: oidc-provider only fetches for features that are
// off here (client jwks_uri, request_uri, sector identifiers, back-channel
// logout), and this makes sure of it.
globalThis.fetch = async (input) => {
  console.error(`idp: refused outbound fetch of ${String(input?.url ?? input)}`);
  throw new Error('outbound network requests are disabled in the test IdP');
};

// ---------------------------------------------------------------- keys

function signingKeys() {
  const jwk = (pair, kid) => ({ ...pair.privateKey.export({ format: 'jwk' }), kid, use: 'sig' });
  const rsa = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  const ec = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const ed = crypto.generateKeyPairSync('ed25519');
  return [
    jwk(rsa, `rsa-${crypto.randomBytes(4).toString('hex')}`),
    jwk(ec, `ec-${crypto.randomBytes(4).toString('hex')}`),
    jwk(ed, `ed-${crypto.randomBytes(4).toString('hex')}`),
  ];
}

// ---------------------------------------------------------------- test state

const counts = {
  code_grants: 0,
  refresh_grants: 0,
  refresh_errors: 0,
  revocations: 0,
  refresh_revocations: 0,
  access_revocations: 0,
  logouts: 0,
};
let failRefresh = false;
const grantsByAccount = new Map(); // accountId -> Set(grantId)

// ---------------------------------------------------------------- html

const escapeHtml = (value) => String(value).replace(/[&<>"']/g, (c) => ({
  '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;',
}[c]));

function page(prompt, title, body) {
  return `<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title>
<style>body{font-family:sans-serif;max-width:24em;margin:2em auto}input,button{display:block;width:100%;margin:.4em 0;padding:.4em;box-sizing:border-box}</style>
</head>
<body data-prompt="${escapeHtml(prompt)}">
<h1 id="title">${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

// ---------------------------------------------------------------- start

const servers = [];

function listen(server, port, host) {
  return new Promise((resolve, reject) => {
    const onError = (err) => reject(err);
    server.once('error', onError);
    server.listen({ port, host, ipv6Only: host.includes(':') }, () => {
      server.off('error', onError);
      resolve(server.address().port);
    });
  });
}

function httpsServer() {
  let server;
  try {
    server = https.createServer({ cert: CERT, key: KEY });
  } catch (err) {
    die(`IDP_CERT / IDP_KEY: ${err.message}`);
  }
  server.keepAliveTimeout = 5000;
  servers.push(server);
  return server;
}

const explicitBind = process.env.IDP_BIND;
const primaryBind = explicitBind || (HOST === 'localhost' ? '127.0.0.1' : HOST.replace(/^\[|\]$/g, ''));

const primary = httpsServer();
const port = await listen(primary, PORT, primaryBind).catch((err) => die(`cannot listen on ${primaryBind}:${PORT}: ${err.message}`));

if (!explicitBind && HOST === 'localhost') {
  // "localhost" may resolve to ::1 first; answer there too when we can.
  const v6 = httpsServer();
  await listen(v6, port, '::1').catch((err) => {
    servers.pop();
    if (VERBOSE) console.error(`idp: not listening on [::1]:${port} (${err.code || err.message})`);
  });
}

const hostForUrl = net.isIPv6(HOST) ? `[${HOST}]` : HOST;
const ISSUER = `https://${hostForUrl}:${port}`;

const claimNames = ['sub', 'email', 'email_verified', ...Object.keys(EXTRA_CLAIMS)];

const provider = new Provider(ISSUER, {
  clients: [{
    client_id: CLIENT_ID,
    client_secret: CLIENT_SECRET,
    redirect_uris: REDIRECT_URIS,
    post_logout_redirect_uris: POST_LOGOUT_REDIRECT_URIS,
    response_types: ['code'],
    grant_types: ['authorization_code', 'refresh_token'],
    token_endpoint_auth_method: 'client_secret_basic',
    id_token_signed_response_alg: ID_TOKEN_ALG,
  }],
  clientAuthMethods: ['client_secret_basic'],
  responseTypes: ['code'],
  jwks: { keys: signingKeys() },
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },

  // Every claim is released under "openid", and conformIdTokenClaims: false
  // puts scope-released claims in the ID token even when an access token for
  // userinfo is issued alongside it.
  claims: {
    openid: claimNames,
    email: ['email', 'email_verified'],
  },
  scopes: ['openid', 'offline_access', 'email'],
  conformIdTokenClaims: false,

  async findAccount(ctx, id) {
    return {
      accountId: id,
      async claims() {
        return {
          ...EXTRA_CLAIMS,
          sub: id,
          email: `${id}@example.test`,
          email_verified: true,
        };
      },
    };
  },

  pkce: { required: () => true },

  // A refresh token is issued when the grant includes offline_access (which
  // oidc-provider only keeps when the authorization request has prompt=consent).
  async issueRefreshToken(ctx, client, code) {
    return client.grantTypeAllowed('refresh_token') && code.scopes.has('offline_access');
  },
  rotateRefreshToken() {
    if (failRefresh) {
      throw new errors.InvalidGrant('refresh refused by POST /_test/fail-refresh');
    }
    return ROTATE_REFRESH_TOKEN;
  },

  ttl: {
    AccessToken: ACCESS_TOKEN_TTL,
    AuthorizationCode: 60,
    IdToken: ID_TOKEN_TTL,
    RefreshToken: REFRESH_TOKEN_TTL,
    Grant: Math.max(REFRESH_TOKEN_TTL, 86400),
    Interaction: 600,
    Session: 86400,
  },

  interactions: {
    url(ctx, interaction) {
      return `/interaction/${interaction.uid}`;
    },
  },

  features: {
    devInteractions: { enabled: false },
    revocation: {
      enabled: true,
      // The client may revoke its own tokens only (oidc-provider's default, stated
      // here so it does not log a notice about the default being used).
      async allowedPolicy(ctx, client, token) {
        if (token.clientId !== client.clientId) {
          throw new errors.InvalidRequest('client is not authorized to revoke the presented token');
        }
        return true;
      },
    },
    introspection: {
      enabled: true,
      // Only the client's own tokens are introspectable.
      async allowedPolicy(ctx, client, token) {
        return token.clientId === client.clientId;
      },
    },
    userinfo: { enabled: true },
    rpInitiatedLogout: {
      enabled: true,
      // Auto-confirms (signs the user out of the IdP entirely) so no click is
      // needed; #logout-confirm is there for browsers without JavaScript.
      async logoutSource(ctx, form) {
        const autoForm = form.replace('</form>', '<input type="hidden" name="logout" value="yes"/></form>');
        ctx.body = page('logout', 'Signing out', `${autoForm}
<button id="logout-confirm" type="submit" form="op.logoutForm">Sign out</button>
<script>document.getElementById('op.logoutForm').submit();</script>`);
      },
      async postLogoutSuccessSource(ctx) {
        ctx.body = page('logged-out', 'Signed out', '<p id="logged-out">You are signed out.</p>');
      },
    },
  },

  async renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = page('error', 'Error', `<pre id="error">${escapeHtml(JSON.stringify(out, null, 2))}</pre>`);
  },
});

// ---------------------------------------------------------------- events

const describe = (err) => [err.message, err.error_description, err.error_detail].filter(Boolean).join(': ');

provider.on('grant.success', (ctx) => {
  const gty = ctx.oidc.params?.grant_type;
  if (gty === 'authorization_code') counts.code_grants += 1;
  if (gty === 'refresh_token') counts.refresh_grants += 1;
});
provider.on('grant.error', (ctx, err) => {
  if (ctx.oidc?.params?.grant_type === 'refresh_token') counts.refresh_errors += 1;
  console.error(`idp: token endpoint (${ctx.oidc?.params?.grant_type}): ${describe(err)}`);
});
provider.on('end_session.success', () => { counts.logouts += 1; });
provider.on('grant.saved', (grant) => {
  if (!grant.accountId) return;
  if (!grantsByAccount.has(grant.accountId)) grantsByAccount.set(grant.accountId, new Set());
  grantsByAccount.get(grant.accountId).add(grant.jti);
});
for (const event of ['authorization.error', 'revocation.error', 'introspection.error', 'end_session.error', 'userinfo.error', 'jwks.error', 'discovery.error', 'server_error']) {
  provider.on(event, (ctx, err) => {
    console.error(`idp: ${event}: ${describe(err)}`);
    if (event === 'server_error') console.error(err.stack);
  });
}

// ---------------------------------------------------------------- middleware

async function readBody(ctx) {
  const chunks = [];
  let size = 0;
  for await (const chunk of ctx.req) {
    size += chunk.length;
    if (size > 16 * 1024) ctx.throw(413);
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

const readForm = async (ctx) => new URLSearchParams((await readBody(ctx)).toString('utf8'));

function json(ctx, body, status = 200) {
  ctx.status = status;
  ctx.set('cache-control', 'no-store');
  ctx.type = 'application/json';
  ctx.body = JSON.stringify(body);
}

async function revokeGrant(grantId) {
  await Promise.all([
    provider.AccessToken.revokeByGrantId(grantId),
    provider.RefreshToken.revokeByGrantId(grantId),
    provider.AuthorizationCode.revokeByGrantId(grantId),
    provider.Grant.adapter.destroy(grantId),
  ]);
}

// Request log, and the revocation counters (which need the response status).
provider.use(async (ctx, next) => {
  const started = Date.now();
  await next();
  if (ctx.method === 'POST' && ctx.path === '/token/revocation' && ctx.status === 200) {
    counts.revocations += 1;
    if (ctx.oidc.entities.RefreshToken) counts.refresh_revocations += 1;
    else if (ctx.oidc.entities.AccessToken) counts.access_revocations += 1;
  }
  if (VERBOSE) console.error(`idp: ${ctx.method} ${ctx.path} -> ${ctx.status} (${Date.now() - started} ms)`);
});

// /_test/* endpoints.
provider.use(async (ctx, next) => {
  if (!ctx.path.startsWith('/_test/')) return next();
  const route = `${ctx.method} ${ctx.path}`;
  switch (route) {
    case 'GET /_test/counts':
      return json(ctx, { ...counts, fail_refresh: failRefresh });
    case 'POST /_test/fail-refresh':
      failRefresh = true;
      return json(ctx, { fail_refresh: true });
    case 'DELETE /_test/fail-refresh':
      failRefresh = false;
      return json(ctx, { fail_refresh: false });
    case 'POST /_test/reset':
      for (const k of Object.keys(counts)) counts[k] = 0;
      failRefresh = false;
      return json(ctx, { ...counts, fail_refresh: failRefresh });
    case 'POST /_test/client': {
      // {"redirect_uris": [...], "post_logout_redirect_uris": [...]} (either may be
      // left out): replaces the client's registered URIs, for a harness that
      // learns the relying party's port only after the IdP is up.
      let body;
      try {
        body = JSON.parse((await readBody(ctx)).toString('utf8') || '{}');
      } catch (err) {
        return json(ctx, { error: `body is not JSON: ${err.message}` }, 400);
      }
      const client = await provider.Client.find(CLIENT_ID);
      const metadata = {
        ...client.metadata(),
        ...(body.redirect_uris ? { redirect_uris: body.redirect_uris } : {}),
        ...(body.post_logout_redirect_uris ? { post_logout_redirect_uris: body.post_logout_redirect_uris } : {}),
      };
      try {
        await provider.Client.validate(metadata);
      } catch (err) {
        return json(ctx, { error: describe(err) }, 400);
      }
      client.redirectUris = metadata.redirect_uris;
      client.postLogoutRedirectUris = metadata.post_logout_redirect_uris ?? [];
      return json(ctx, { redirect_uris: client.redirectUris, post_logout_redirect_uris: client.postLogoutRedirectUris });
    }
    case 'POST /_test/revoke-all': {
      const sub = ctx.query.sub;
      if (!sub) return json(ctx, { error: 'sub query parameter required' }, 400);
      const ids = [...(grantsByAccount.get(sub) ?? [])];
      await Promise.all(ids.map(revokeGrant));
      grantsByAccount.delete(sub);
      return json(ctx, { sub, revoked_grants: ids.length });
    }
    default:
      return json(ctx, { error: `no test endpoint ${route}` }, 404);
  }
});

// Sign-in and consent pages.
provider.use(async (ctx, next) => {
  const m = /^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|confirm|abort))?$/.exec(ctx.path);
  if (!m) return next();
  const [, uid, action] = m;
  ctx.set('cache-control', 'no-store');

  let details;
  try {
    details = await provider.interactionDetails(ctx.req, ctx.res);
  } catch (err) {
    if (err instanceof errors.SessionNotFound) {
      ctx.status = 400;
      ctx.type = 'html';
      ctx.body = page('error', 'Error', `<pre id="error">${escapeHtml(err.message)}: ${escapeHtml(err.error_description ?? '')}</pre>`);
      return undefined;
    }
    throw err;
  }
  if (details.uid !== uid) ctx.throw(400, 'interaction mismatch');
  const { prompt, params } = details;

  const finish = async (result, mergeWithLastSubmission) => {
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, result, { mergeWithLastSubmission });
    ctx.status = 303;
    ctx.redirect(returnTo);
  };

  if (ctx.method === 'GET' && !action) {
    ctx.type = 'html';
    if (prompt.name === 'login') {
      ctx.body = page('login', 'Sign in', `
<form id="login-form" method="post" action="/interaction/${escapeHtml(uid)}/login" autocomplete="off">
  <input id="login" name="login" type="text" required placeholder="user name" value="${escapeHtml(params.login_hint ?? '')}">
  <input id="password" name="password" type="password" required placeholder="any password">
  <button id="login-submit" type="submit">Sign in</button>
</form>
<a id="abort" href="/interaction/${escapeHtml(uid)}/abort">Cancel</a>`);
      return undefined;
    }
    if (prompt.name === 'consent') {
      const scopes = (params.scope ?? '').split(' ').filter(Boolean);
      ctx.body = page('consent', 'Authorize', `
<p>Client <code id="client-id">${escapeHtml(params.client_id)}</code> asks for:</p>
<ul id="scopes">${scopes.map((s) => `<li>${escapeHtml(s)}</li>`).join('')}</ul>
<form id="consent-form" method="post" action="/interaction/${escapeHtml(uid)}/confirm">
  <button id="consent-submit" type="submit">Allow</button>
</form>
<a id="abort" href="/interaction/${escapeHtml(uid)}/abort">Cancel</a>`);
      return undefined;
    }
    ctx.throw(400, `unexpected prompt ${prompt.name}`);
  }

  if (ctx.method === 'POST' && action === 'login') {
    if (prompt.name !== 'login') ctx.throw(400, 'not at the login prompt');
    const form = await readForm(ctx);
    const login = (form.get('login') ?? '').trim();
    if (!login || !form.get('password')) ctx.throw(400, 'login and password are required');
    return finish({ login: { accountId: login } }, false);
  }

  if (ctx.method === 'POST' && action === 'confirm') {
    if (prompt.name !== 'consent') ctx.throw(400, 'not at the consent prompt');
    await readForm(ctx);
    const { details: missing } = prompt;
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: params.client_id });
    if (missing.missingOIDCScope) grant.addOIDCScope(missing.missingOIDCScope.join(' '));
    if (missing.missingOIDCClaims) grant.addOIDCClaims(missing.missingOIDCClaims);
    if (missing.missingResourceScopes) {
      for (const [indicator, scope] of Object.entries(missing.missingResourceScopes)) {
        grant.addResourceScope(indicator, scope.join(' '));
      }
    }
    const grantId = await grant.save();
    return finish({ consent: details.grantId ? {} : { grantId } }, true);
  }

  if (ctx.method === 'GET' && action === 'abort') {
    return finish({ error: 'access_denied', error_description: 'End-User aborted interaction' }, false);
  }

  return next();
});

const callback = provider.callback();
for (const server of servers) server.on('request', callback);

function shutdown(signal) {
  if (VERBOSE) console.error(`idp: ${signal}, exiting`);
  for (const server of servers) {
    server.close();
    server.closeAllConnections();
  }
  process.exit(0);
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
if (truthy(process.env.IDP_EXIT_ON_STDIN_CLOSE)) {
  process.stdin.on('end', () => shutdown('stdin closed'));
  process.stdin.on('error', () => shutdown('stdin error'));
  process.stdin.resume();
}

process.stdout.write(`listening ${ISSUER}\n`);
