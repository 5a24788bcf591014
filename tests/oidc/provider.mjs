// An OpenID Connect provider on loopback for Tessera's social-login tests:
// oauth2-mock-server (discovery, JWKS, authorize with PKCE, token endpoint,
// RS256 ID tokens carrying the nonce), plus a small control port through
// which a test chooses the user who "signs in" and makes the provider
// misbehave. Prints one JSON line {issuer, control} once both listen.
import http from 'node:http';
import { OAuth2Server } from 'oauth2-mock-server';

const server = new OAuth2Server();
await server.issuer.keys.generate('RS256');
await server.start(0, '127.0.0.1');
server.issuer.url = `http://127.0.0.1:${server.address().port}`;

// Claims of whoever signs in next (kept until changed).
let user = { sub: 'user-1', email: 'user@example.test', email_verified: true };
// One-shot changes to the next ID token's claims.
let tamper = null;
let failNext = null;

server.service.on('beforeTokenSigning', (token) => {
  Object.assign(token.payload, user);
  if (tamper && token.payload.nonce !== undefined) {
    Object.assign(token.payload, tamper);
    tamper = null;
  }
});
server.service.on('beforeResponse', (response) => {
  if (failNext) {
    response.body = failNext;
    response.statusCode = 400;
    failNext = null;
  }
});

const control = http.createServer((req, res) => {
  let raw = '';
  req.on('data', (chunk) => (raw += chunk));
  req.on('end', async () => {
    const body = raw ? JSON.parse(raw) : {};
    switch (req.url) {
      case '/user':
        user = body;
        break;
      case '/tamper':
        tamper = body;
        break;
      case '/fail-next-token':
        failNext = { error: 'invalid_grant', error_description: 'code expired' };
        break;
      case '/rotate':
        await server.issuer.keys.generate('RS256');
        break;
      default:
        res.writeHead(404).end();
        return;
    }
    res.writeHead(204).end();
  });
});
control.listen(0, '127.0.0.1', () => {
  console.log(JSON.stringify({ issuer: server.issuer.url, control: `http://127.0.0.1:${control.address().port}` }));
});

process.stdin.on('end', () => process.exit(0));
process.stdin.resume();
