// The OpenID provider baton's sign-in tests run against: panva's oidc-provider (OpenID
// certified), not a fake written for the tests. It serves HTTPS with the certificate and key it
// is given, on the host and port asked for (port 0: any free one), with its own development
// login and consent forms (any user name signs in), and one client `baton` whose redirect URI
// is the front door's callback; the same client gets bearer tokens (JWT, aud urn:baton) with
// client_credentials.
//
//   node op.mjs --cert cert.pem --key key.pem --host localhost --port 0 \
//     --client-secret SECRET --redirect-uri https://localhost:8443/.baton/auth/callback \
//     [--post-logout-uri URL]...
//
// When it is ready it prints one JSON line on stdout: {"issuer": ..., "jwks": {public keys}}.
// The signing keys are made at start, so every run has its own.

import { createServer } from 'node:https';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import Provider from 'oidc-provider';

function args(argv) {
  const out = { host: 'localhost', port: '0', 'post-logout-uri': [] };
  for (let i = 0; i < argv.length; i += 2) {
    const name = argv[i].replace(/^--/, '');
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`op.mjs: ${argv[i]} needs a value`);
    if (Array.isArray(out[name])) out[name].push(value); else out[name] = value;
  }
  for (const need of ['cert', 'key', 'client-secret', 'redirect-uri']) {
    if (!out[need]) throw new Error(`op.mjs: --${need} is required`);
  }
  return out;
}

const opts = args(process.argv.slice(2));

// The keys ID tokens are signed with: RSA (the default alg, RS256) and P-256 (ES256).
const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 }).privateKey.export({ format: 'jwk' });
const ec = generateKeyPairSync('ec', { namedCurve: 'P-256' }).privateKey.export({ format: 'jwk' });
rsa.kid = 'rsa-1'; rsa.use = 'sig'; rsa.alg = 'RS256';
ec.kid = 'ec-1'; ec.use = 'sig'; ec.alg = 'ES256';
const publicOf = ({ d, p, q, dp, dq, qi, ...pub }) => pub;

const server = createServer({
  cert: readFileSync(opts.cert),
  key: readFileSync(opts.key),
});

server.listen(Number(opts.port), opts.host, () => {
  const { port } = server.address();
  const issuer = `https://${opts.host}:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'baton',
      client_secret: opts['client-secret'],
      redirect_uris: [opts['redirect-uri']],
      post_logout_redirect_uris: opts['post-logout-uri'],
      grant_types: ['authorization_code', 'client_credentials'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_basic',
    }],
    jwks: { keys: [rsa, ec] },
    cookies: { keys: [randomBytes(32).toString('hex')] },
    pkce: { required: () => true, methods: ['S256'] },
    scopes: ['openid', 'email', 'profile', 'groups'],
    claims: {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name'],
      groups: ['groups'],
    },
    // The scope claims go into the ID token too: the front door reads only the ID token.
    conformIdTokenClaims: false,
    features: {
      devInteractions: { enabled: true },
      rpInitiatedLogout: { enabled: true },
      // Bearer tokens for `auth = "oidc"` routes: client_credentials with the resource
      // urn:baton gives an ES256-signed JWT access token whose aud is urn:baton.
      clientCredentials: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => 'urn:baton',
        useGrantedResource: () => true,
        getResourceServerInfo: () => ({
          scope: 'api',
          audience: 'urn:baton',
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        }),
      },
    },
    // Any user name signs in: the account is the name, its mail address is made from it.
    async findAccount(ctx, id) {
      return {
        accountId: id,
        async claims() {
          return {
            sub: id,
            email: `${id}@example.test`,
            email_verified: true,
            name: id,
            groups: ['staff', 'people'],
          };
        },
      };
    },
  });
  // Refused requests are worth a line on stderr when a test fails.
  provider.on('server_error', (ctx, err) => console.error('op: server_error', err));
  provider.on('grant.error', (ctx, err) => console.error('op: grant.error', err.message));
  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, jwks: { keys: [publicOf(rsa), publicOf(ec)] } })}\n`);
});
