// Browser flows through Tessera's hosted pages (/ui), following the contract
// in docs/hosted-pages.md. See README.md beside this file.
//
//   TESSERA_BIN=target/debug/tessera TESSERA_DATABASE_URL='sqlite:///tmp/ui.db?mode=rwc' \
//     node tests/browser/flows.mjs
//   node tests/browser/flows.mjs --self-check   # the harness alone, no server

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHmac, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';
const ARTIFACTS = path.resolve(process.env.ARTIFACTS || path.join(HERE, 'artifacts'));
const LOG_FILE = path.join(ARTIFACTS, 'tessera.log');

// The machine's network is closed: without the background-networking flags
// Chromium stalls trying to reach Google's services.
const CHROMIUM_ARGS = [
  '--headless=new',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
];

const VIEWPORTS = {
  desktop: { viewport: { width: 1280, height: 800 } },
  phone: {
    viewport: { width: 390, height: 844 },
    isMobile: true,
    hasTouch: true,
    deviceScaleFactor: 2,
  },
};

const PASSWORD = 'correct-horse-battery-staple-42';
const NEW_PASSWORD = 'orange-kettle-meadow-lantern-17';
const RESET_SENT =
  'If an account exists for that address, we have sent it a link to reset the password.';
const QR_CODE = 'svg[aria-label="QR code for your authenticator app"]';
const ACTION_TIMEOUT_MS = 20_000; // password hashing in a debug build is slow

// ---------------------------------------------------------------- SMTP catcher

// A server speaking just enough SMTP for lettre: every message is kept with
// its (lower-cased) recipients and raw text.
async function startSmtpCatcher() {
  const messages = [];
  const server = net.createServer((socket) => {
    socket.setEncoding('utf8');
    socket.on('error', () => {});
    const reply = (text) => socket.write(`${text}\r\n`);
    let recipients = [];
    let data = null; // the message's lines while inside DATA
    let pending = '';

    const handle = (line) => {
      if (data) {
        if (line === '.') {
          messages.push({ recipients, raw: data.join('\r\n') });
          recipients = [];
          data = null;
          reply('250 OK');
        } else {
          data.push(line.startsWith('.') ? line.slice(1) : line); // dot-stuffing
        }
        return;
      }
      const verb = line.split(' ')[0].toUpperCase();
      if (verb === 'EHLO' || verb === 'HELO') {
        socket.write('250-catcher\r\n250 8BITMIME\r\n');
      } else if (verb === 'RCPT') {
        const address = /<([^>]*)>/.exec(line)?.[1] ?? line.slice(line.indexOf(':') + 1);
        recipients.push(address.trim().toLowerCase());
        reply('250 OK');
      } else if (verb === 'DATA') {
        data = [];
        reply('354 End data with <CR><LF>.<CR><LF>');
      } else if (verb === 'RSET') {
        recipients = [];
        reply('250 OK');
      } else if (verb === 'QUIT') {
        reply('221 Bye');
        socket.end();
      } else {
        reply('250 OK'); // MAIL FROM, NOOP and anything else
      }
    };

    socket.on('data', (chunk) => {
      pending += chunk;
      let end;
      while ((end = pending.indexOf('\n')) !== -1) {
        handle(pending.slice(0, end).replace(/\r$/, ''));
        pending = pending.slice(end + 1);
      }
    });
    reply('220 catcher ESMTP');
  });
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });

  // Resolves with every message to `address` once there are at least `count`.
  async function waitForMail(address, count) {
    const wanted = address.toLowerCase();
    const deadline = Date.now() + 30_000;
    for (;;) {
      const mine = messages.filter((m) => m.recipients.includes(wanted));
      if (mine.length >= count) return mine;
      if (Date.now() > deadline) {
        const subjects = mine.map((m) => header(m.raw, 'subject'));
        throw new Error(
          `waited 30 s for mail #${count} to ${address}; it has ${mine.length}: ${JSON.stringify(subjects)}`,
        );
      }
      await sleep(200);
    }
  }

  return {
    port: server.address().port,
    messages,
    waitForMail,
    close: () => new Promise((resolve) => server.close(resolve)),
  };
}

// One header's value (folded lines joined), or '' when absent.
function header(raw, name) {
  const head = raw.split(/\r?\n\r?\n/)[0].replace(/\r?\n[ \t]+/g, ' ');
  const line = head.split(/\r?\n/).find((l) => l.toLowerCase().startsWith(`${name.toLowerCase()}:`));
  return line ? line.slice(name.length + 1).trim() : '';
}

function decodeQuotedPrintable(text) {
  const joined = text.replace(/=\r?\n/g, ''); // soft line breaks
  const bytes = joined.replace(/=([0-9A-Fa-f]{2})/g, (_, hex) => String.fromCharCode(parseInt(hex, 16)));
  return Buffer.from(bytes, 'latin1').toString('utf8');
}

// The message's body as text, undoing its transfer encoding.
function mailBody(raw) {
  const body = raw.slice(raw.search(/\r?\n\r?\n/)).trimStart();
  const encoding = header(raw, 'content-transfer-encoding').toLowerCase();
  if (encoding === 'quoted-printable') return decodeQuotedPrintable(body);
  if (encoding === 'base64') return Buffer.from(body.replace(/\s+/g, ''), 'base64').toString('utf8');
  return body;
}

// The first http(s) link carrying a token, as a URL.
function tokenLink(message) {
  const body = mailBody(message.raw);
  const link = body.match(/https?:\/\/[^\s<>"]+/g)?.find((l) => l.includes('token='));
  if (!link) throw new Error(`no link with a token in this mail:\n${body}`);
  return new URL(link);
}

// ------------------------------------------------------------------------ TOTP

function base32Decode(text) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  const bytes = [];
  let value = 0;
  let bits = 0;
  for (const char of text.toUpperCase().replace(/[\s=-]/g, '')) {
    const index = alphabet.indexOf(char);
    if (index < 0) throw new Error(`not base32: ${JSON.stringify(text)}`);
    value = ((value << 5) | index) & 0xffff;
    bits += 5;
    if (bits >= 8) {
      bits -= 8;
      bytes.push((value >> bits) & 0xff);
    }
  }
  return Buffer.from(bytes);
}

// RFC 6238 with HMAC-SHA1 and 30-second steps.
function totp(secret, unixSeconds, digits = 6) {
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor(unixSeconds / 30)));
  const mac = createHmac('sha1', secret).update(counter).digest();
  const offset = mac[mac.length - 1] & 0x0f;
  const number = mac.readUInt32BE(offset) & 0x7fffffff;
  return String(number % 10 ** digits).padStart(digits, '0');
}

const nowSeconds = () => Date.now() / 1000;

// ---------------------------------------------------------------- the server

async function freePort() {
  const server = net.createServer();
  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', resolve);
  });
  const { port } = server.address();
  await new Promise((resolve) => server.close(resolve));
  return port;
}

async function spawnTessera({ bin, databaseUrl, smtpPort }) {
  const port = await freePort();
  const baseUrl = `http://127.0.0.1:${port}`;
  const env = {
    PATH: process.env.PATH ?? '/usr/bin:/bin',
    TESSERA_LISTEN: `127.0.0.1:${port}`,
    TESSERA_PUBLIC_URL: baseUrl,
    TESSERA_DATABASE_URL: databaseUrl,
    TESSERA_SMTP_URL: `smtp://127.0.0.1:${smtpPort}`,
    TESSERA_MAIL__POLL_SECONDS: '1',
    TESSERA_SECURITY__RATE_LIMIT_PER_MINUTE: '100000',
    TESSERA_LOG_FORMAT: 'json',
    RUST_LOG: 'warn',
  };
  const log = fs.openSync(LOG_FILE, 'w');
  const child = spawn(bin, ['serve'], { env, stdio: ['ignore', log, log] });
  fs.closeSync(log);

  let exit = null;
  child.on('error', (error) => (exit = `could not start: ${error.message}`));
  child.on('exit', (code, signal) => (exit = `exited with ${signal ?? `code ${code}`}`));
  process.on('exit', () => exit || child.kill('SIGKILL'));

  async function stop() {
    if (exit) return;
    child.kill('SIGTERM');
    const deadline = Date.now() + 5_000;
    while (!exit && Date.now() < deadline) await sleep(50);
    if (!exit) child.kill('SIGKILL');
  }

  async function waitUntilHealthy() {
    const deadline = Date.now() + 20_000;
    for (;;) {
      if (exit) throw new Error(`tessera ${exit} before answering GET /health`);
      try {
        const response = await fetch(`${baseUrl}/health`, { signal: AbortSignal.timeout(2_000) });
        if (response.status === 200) return;
      } catch {
        // not listening yet
      }
      if (Date.now() > deadline) throw new Error('tessera did not answer GET /health with 200 within 20 s');
      await sleep(200);
    }
  }

  return { baseUrl, stop, waitUntilHealthy };
}

function logTail(lines = 40) {
  try {
    return fs.readFileSync(LOG_FILE, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

// A JSON call to the API; answers { status, body, text }.
async function api(baseUrl, method, route, { token, json } = {}) {
  const headers = {};
  if (token) headers.authorization = `Bearer ${token}`;
  if (json) headers['content-type'] = 'application/json';
  const response = await fetch(baseUrl + route, {
    method,
    headers,
    body: json && JSON.stringify(json),
  });
  const text = await response.text();
  let body = null;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return { status: response.status, body, text };
}

async function expectStatus(call, expected, what) {
  const { status, body, text } = await call;
  assert.equal(status, expected, `${what} answered ${status}: ${text}`);
  return body;
}

// ------------------------------------------------------------ page helpers

const h1 = (page, name) => page.getByRole('heading', { level: 1, name, exact: true });
const field = (page, label) => page.getByLabel(label, { exact: true });
const button = (page, name) => page.getByRole('button', { name, exact: true });
const link = (page, name) => page.getByRole('link', { name, exact: true });

// Opens `url`, which must answer with a success.
async function visit(page, url) {
  const response = await page.goto(url);
  assert.ok(response?.ok(), `GET ${url} answered ${response?.status()}`);
}

async function launchBrowser() {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

async function newPage(browser, viewportName) {
  const context = await browser.newContext(VIEWPORTS[viewportName]);
  context.setDefaultTimeout(ACTION_TIMEOUT_MS);
  return context.newPage();
}

// Saves `<viewport>-<NN>-<what>.png` of the current page.
async function shot(run, what) {
  run.shots += 1;
  const name = `${run.name}-${String(run.shots).padStart(2, '0')}-${what}.png`;
  await run.page.screenshot({ path: path.join(ARTIFACTS, name), fullPage: true });
}

// Waits for the page whose h1 is `heading`, checks what every page must
// have, and takes its screenshot.
async function expectPage(run, heading, what) {
  const { page } = run;
  try {
    await h1(page, heading).waitFor();
  } catch {
    const seen = await page.locator('h1').allInnerTexts().catch(() => []);
    const alerts = await page.getByRole('alert').allInnerTexts().catch(() => []);
    throw new Error(
      `expected h1 "${heading}" at ${page.url()}; the page has h1 ${JSON.stringify(seen)}` +
        (alerts.length ? ` and alerts ${JSON.stringify(alerts)}` : ''),
    );
  }
  await assertInputsLabelled(page);
  if (run.name === 'phone') await assertFitsPhone(page);
  await shot(run, what);
}

// The contract: every field has a <label>.
async function assertInputsLabelled(page) {
  const unlabelled = await page.evaluate(() =>
    [...document.querySelectorAll('input')]
      .filter((input) => !['hidden', 'submit', 'button', 'reset', 'image'].includes(input.type))
      .filter((input) => input.checkVisibility())
      .filter((input) => input.labels.length === 0)
      .map((input) => input.outerHTML),
  );
  assert.deepEqual(unlabelled, [], `inputs without a <label> at ${page.url()}`);
}

// The contract: a layout that fits a narrow screen (which needs
// <meta name="viewport" content="width=device-width">).
async function assertFitsPhone(page) {
  const { inner, scroll } = await page.evaluate(() => ({
    inner: window.innerWidth,
    scroll: document.documentElement.scrollWidth,
  }));
  assert.ok(
    inner <= 390 && scroll <= inner,
    `${page.url()} does not fit a 390 px screen: layout width ${inner}, content width ${scroll}`,
  );
}

async function assertAutocomplete(locator, expected) {
  assert.equal(await locator.getAttribute('autocomplete'), expected, `autocomplete of ${locator}`);
}

// The text of the account page's section headed `heading` (its <section>,
// else the heading's parent).
async function sectionText(page, heading) {
  const h2 = page.getByRole('heading', { level: 2, name: heading, exact: true });
  return h2.evaluate((el) => (el.closest('section') ?? el.parentElement).innerText);
}

async function assertProfileShows(page, text) {
  const profile = await sectionText(page, 'Profile');
  assert.ok(profile.includes(text), `the Profile section does not show "${text}":\n${profile}`);
}

async function signIn(page, email, password) {
  await field(page, 'Email').fill(email);
  await field(page, 'Password').fill(password);
  await button(page, 'Sign in').click();
}

async function signOut(run) {
  await button(run.page, 'Sign out').click();
  await expectPage(run, 'Sign in', 'signed-out');
}

// --------------------------------------------------------------- the flow

async function step(run, label, body) {
  run.step = label;
  await body();
  console.log(`${run.name}: ${label} ok`);
}

async function runFlows(run, browser) {
  const { mail, baseUrl } = run;
  const suffix = randomBytes(4).toString('hex');
  const user = { name: 'Ada Lovelace', email: `ada-${suffix}@example.test`, password: PASSWORD };
  const invitee = { name: 'Grace Hopper', email: `grace-${suffix}@example.test`, password: PASSWORD };
  let page = (run.page = await newPage(browser, run.name));
  let totpSecret;
  let backupCode;
  let inviterToken;

  await step(run, 'a. sign up', async () => {
    await visit(page, `${baseUrl}/ui/sign-up`);
    await expectPage(run, 'Create your account', 'sign-up');
    await field(page, 'Name').fill(user.name);
    await field(page, 'Email').fill(user.email);
    await field(page, 'Password').fill(user.password);
    await button(page, 'Create account').click();
    await expectPage(run, 'Your account', 'account');
    assert.equal(new URL(page.url()).pathname, '/ui/account');
    await assertProfileShows(page, user.email);
  });

  await step(run, 'b. verify email', async () => {
    const [verification] = await mail.waitForMail(user.email, 1);
    const verifyLink = tokenLink(verification);
    assert.equal(verifyLink.pathname, '/ui/verify-email', `verification link ${verifyLink}`);
    await visit(page, verifyLink.href);
    // Opening the link verifies nothing; the button does.
    await expectPage(run, 'Confirm your email address', 'verify-confirm');
    await button(page, 'Confirm my address').click();
    await expectPage(run, 'Email verified', 'email-verified');
    await link(page, 'Continue').click();
    await expectPage(run, 'Your account', 'account-verified');
  });

  await step(run, 'c. sign out', async () => {
    await signOut(run);
  });

  await step(run, 'd. keyboard sign-in', async () => {
    const email = field(page, 'Email');
    const password = field(page, 'Password');
    await assertInputsLabelled(page);
    await assertAutocomplete(email, 'username');
    await assertAutocomplete(password, 'current-password');
    await email.focus();
    await page.keyboard.type(user.email);
    await page.keyboard.press('Tab');
    assert.ok(
      await password.evaluate((el) => el === document.activeElement),
      'Tab from "Email" does not reach "Password"',
    );
    await page.keyboard.type(user.password);
    await page.keyboard.press('Enter');
    await expectPage(run, 'Your account', 'signed-in-with-keyboard');
  });

  await step(run, 'e. password reset', async () => {
    await signOut(run);
    await link(page, 'Forgot your password?').click();
    await expectPage(run, 'Reset your password', 'forgot-password');
    await field(page, 'Email').fill(user.email);
    await button(page, 'Send reset link').click();
    await page.getByRole('status').filter({ hasText: RESET_SENT }).waitFor();
    await shot(run, 'reset-link-sent');

    const mails = await mail.waitForMail(user.email, 2);
    const resetLink = tokenLink(mails[1]);
    assert.equal(resetLink.pathname, '/ui/reset-password', `reset link ${resetLink}`);
    await visit(page, resetLink.href);
    await expectPage(run, 'Choose a new password', 'reset-password');
    await assertAutocomplete(field(page, 'New password'), 'new-password');
    await field(page, 'New password').fill(NEW_PASSWORD);
    await button(page, 'Set new password').click();
    await expectPage(run, 'Password changed', 'password-changed');
    await link(page, 'Sign in').click();
    await expectPage(run, 'Sign in', 'sign-in');
    await signIn(page, user.email, NEW_PASSWORD);
    await expectPage(run, 'Your account', 'signed-in-with-new-password');

    // The old password no longer works.
    await signOut(run);
    await signIn(page, user.email, user.password);
    await page.getByRole('alert').first().waitFor();
    await expectPage(run, 'Sign in', 'old-password-refused');
    user.password = NEW_PASSWORD;
    await signIn(page, user.email, user.password);
    await expectPage(run, 'Your account', 'signed-in-again');
  });

  await step(run, 'f. turn on two-step verification', async () => {
    await page.locator('#totp-password').fill(user.password);
    await button(page, 'Set up two-step verification').click();
    const secret = page.locator('#totp-secret');
    await secret.waitFor();
    await page.locator(QR_CODE).waitFor();
    totpSecret = base32Decode(await secret.innerText());
    assert.ok(totpSecret.length >= 10, `the secret in #totp-secret is too short: ${await secret.innerText()}`);
    await shot(run, 'totp-setup');
    await field(page, 'Authentication code').fill(totp(totpSecret, nowSeconds()));
    await button(page, 'Turn on').click();
    const codes = page.locator('#backup-codes li');
    await codes.first().waitFor();
    assert.equal(await codes.count(), 10, 'backup codes listed in #backup-codes');
    backupCode = (await codes.first().innerText()).trim();
    await shot(run, 'backup-codes');
  });

  await step(run, 'g. sign in with two-step verification', async () => {
    await signOut(run);
    await signIn(page, user.email, user.password);
    await expectPage(run, 'Two-step verification', 'two-step');
    await assertAutocomplete(field(page, 'Authentication code'), 'one-time-code');
    if (run.name === 'phone') {
      await page.getByText('Use a backup code instead', { exact: true }).click();
      await field(page, 'Backup code').fill(backupCode);
      await shot(run, 'two-step-backup-code');
    } else {
      // The code of step f is spent: use the next step's (one step of skew is allowed).
      await field(page, 'Authentication code').fill(totp(totpSecret, nowSeconds() + 30));
    }
    await button(page, 'Verify').click();
    await expectPage(run, 'Your account', 'signed-in-two-step');
  });

  await step(run, 'h. personal access tokens', async () => {
    const me = (token) => api(baseUrl, 'GET', '/api/v1/auth/me', { token });
    const ciToken = await createToken(run, 'ci', ['Read']);
    await expectStatus(me(ciToken), 200, 'GET /api/v1/auth/me with the new token');
    const revoke = page.getByRole('button', { name: /^Revoke\b.*\bci$/ });
    await revoke.click();
    await revoke.waitFor({ state: 'detached' }).catch(() => {
      throw new Error('the token "ci" is still listed after clicking its "Revoke" button');
    });
    await shot(run, 'token-revoked');
    await expectStatus(me(ciToken), 401, 'GET /api/v1/auth/me with the revoked token');
    inviterToken = await createToken(run, 'inviter', ['Read', 'Write']);
    assert.notEqual(inviterToken, ciToken, '#new-token still shows the first token');
  });

  await step(run, 'i. accept invitation', async () => {
    const tenants = await expectStatus(
      api(baseUrl, 'GET', '/api/v1/tenants', { token: inviterToken }),
      200,
      'GET /api/v1/tenants',
    );
    const tenant = tenants[0];
    assert.ok(tenant?.id && tenant?.name, `no tenant in ${JSON.stringify(tenants)}`);
    if (run.name === 'phone') {
      // The invitee has an account already (and so a verification mail too).
      await expectStatus(
        api(baseUrl, 'POST', '/api/v1/auth/signup', {
          json: { email: invitee.email, password: invitee.password },
        }),
        201,
        'POST /api/v1/auth/signup',
      );
    }
    await expectStatus(
      api(baseUrl, 'POST', `/api/v1/tenants/${tenant.id}/invites`, {
        token: inviterToken,
        json: { email: invitee.email, role: 'member' },
      }),
      201,
      `POST /api/v1/tenants/${tenant.id}/invites`,
    );
    const mails = await mail.waitForMail(invitee.email, run.name === 'phone' ? 2 : 1);
    const inviteLink = mails.map(tokenLink).find((l) => l.pathname === '/ui/accept-invite');
    assert.ok(inviteLink, `no /ui/accept-invite link in the mail to ${invitee.email}`);

    // A new, signed-out browser context.
    await page.context().close();
    page = run.page = await newPage(browser, run.name);
    await visit(page, inviteLink.href);
    await expectPage(run, `Join ${tenant.name}`, 'invitation');

    if (run.name === 'phone') {
      await link(page, 'Sign in to accept').click();
      await expectPage(run, 'Sign in', 'sign-in-to-accept');
      await signIn(page, invitee.email, invitee.password);
      await expectPage(run, `Join ${tenant.name}`, 'invitation-signed-in');
      await button(page, 'Accept invitation').click();
      await expectPage(run, `You joined ${tenant.name}`, 'invitation-accepted');
      await link(page, 'Continue').click();
    } else {
      await link(page, 'Create an account to accept').click();
      await expectPage(run, 'Create your account', 'sign-up-to-accept');
      assert.equal(await field(page, 'Email').inputValue(), invitee.email, 'Email prefilled with the invitee');
      await field(page, 'Name').fill(invitee.name);
      await field(page, 'Password').fill(invitee.password);
      await button(page, 'Create account').click();
    }
    await expectPage(run, 'Your account', 'invitee-account');
    await assertProfileShows(page, tenant.name);
    await page.context().close();
  });
}

// Creates a personal access token on the account page; answers its secret.
async function createToken(run, name, scopes) {
  const { page } = run;
  await field(page, 'Token name').fill(name);
  for (const scope of scopes) await field(page, scope).check();
  await button(page, 'Create token').click();
  const token = (await page.locator('#new-token').innerText()).trim();
  assert.ok(token.startsWith('tsr_pat_'), `#new-token shows "${token}"`);
  await shot(run, `token-${name}`);
  return token;
}

// ------------------------------------------------------------------- main

function clearScreenshots() {
  fs.mkdirSync(ARTIFACTS, { recursive: true });
  for (const file of fs.readdirSync(ARTIFACTS)) {
    if (file.endsWith('.png')) fs.rmSync(path.join(ARTIFACTS, file));
  }
}

async function reportFailure(run, error) {
  console.error(`\n${run.name}: FAILED at step "${run.step}"`);
  console.error(`page: ${run.page?.url() ?? '(none)'}`);
  console.error(error?.stack ?? error);
  if (run.page && !run.page.isClosed()) {
    const file = path.join(ARTIFACTS, `${run.name}-failure.png`);
    await run.page
      .screenshot({ path: file, fullPage: true })
      .then(() => console.error(`screenshot: ${file}`))
      .catch((e) => console.error(`no screenshot: ${e.message}`));
  }
  console.error(`\nlast 40 lines of ${LOG_FILE}:\n${logTail(40)}`);
}

async function main() {
  const bin = process.env.TESSERA_BIN;
  const databaseUrl = process.env.TESSERA_DATABASE_URL;
  if (!bin || !databaseUrl) {
    console.error('TESSERA_BIN and TESSERA_DATABASE_URL are required (see tests/browser/README.md)');
    return 2;
  }
  clearScreenshots();
  const mail = await startSmtpCatcher();
  const tessera = await spawnTessera({ bin, databaseUrl, smtpPort: mail.port });
  let browser;
  const run = { name: 'setup', step: 'start tessera', page: null, shots: 0 };
  try {
    await tessera.waitUntilHealthy();
    run.step = 'launch chromium';
    browser = await launchBrowser();
    for (const name of Object.keys(VIEWPORTS)) {
      Object.assign(run, { name, step: '', page: null, shots: 0, mail, baseUrl: tessera.baseUrl });
      await runFlows(run, browser);
    }
    console.log('every flow passed');
    return 0;
  } catch (error) {
    await reportFailure(run, error);
    return 1;
  } finally {
    await browser?.close().catch(() => {});
    await tessera.stop();
    await mail.close();
  }
}

// ------------------------------------------------------------- self-check

// Checks the harness without a server: TOTP against RFC 6238's vectors, the
// SMTP catcher with a quoted-printable message, and the browser.
async function selfCheck() {
  const secret = base32Decode('GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ');
  assert.equal(secret.toString(), '12345678901234567890');
  const vectors = { 59: '94287082', 1111111109: '07081804', 1111111111: '14050471', 1234567890: '89005924', 2000000000: '69279037', 20000000000: '65353130' };
  for (const [time, code] of Object.entries(vectors)) assert.equal(totp(secret, Number(time), 8), code, `T=${time}`);
  assert.equal(totp(secret, 59), '287082');
  console.log('self-check: TOTP ok');

  const mail = await startSmtpCatcher();
  const link = 'http://127.0.0.1:1/ui/reset-password?token=abc_DEF-123';
  const body = `Open this link:\r\n\r\n${link.slice(0, 30)}=\r\n${link.slice(30).replace('=', '=3D')}\r\n\r\nCaf=C3=A9\r\n..dot\r\n`;
  await sendMail(mail.port, 'Someone@Example.TEST', `Subject: Reset\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${body}`);
  const [message] = await mail.waitForMail('someone@example.test', 1);
  assert.equal(tokenLink(message).href, link);
  assert.match(mailBody(message.raw), /Café\r\n\.dot/);
  await mail.close();
  console.log('self-check: SMTP catcher ok');

  fs.mkdirSync(ARTIFACTS, { recursive: true });
  const browser = await launchBrowser();
  try {
    const run = { name: 'phone', shots: 0, page: await newPage(browser, 'phone') };
    const html = `<!doctype html><html lang="en"><meta name="viewport" content="width=device-width">
      <h1>Sign in</h1><form><label for="e">Email</label><input id="e" autocomplete="username">
      <details><summary>Use a backup code instead</summary><label>Backup code <input name="b"></label></details></form>`;
    await run.page.goto(`data:text/html,${encodeURIComponent(html)}`);
    await expectPage(run, 'Sign in', 'self-check');
    await assertAutocomplete(field(run.page, 'Email'), 'username');
    await run.page.getByText('Use a backup code instead', { exact: true }).click();
    await field(run.page, 'Backup code').fill('abcd-efgh');
    const file = path.join(ARTIFACTS, 'phone-01-self-check.png');
    assert.equal(fs.readFileSync(file).subarray(1, 4).toString(), 'PNG');
    fs.rmSync(file);
  } finally {
    await browser.close();
  }
  console.log('self-check: browser ok');
  return 0;
}

// A minimal SMTP client for the self-check: sends one message.
async function sendMail(port, recipient, message) {
  const socket = net.connect(port, '127.0.0.1');
  socket.setEncoding('utf8');
  const lines = [];
  socket.on('data', (chunk) => lines.push(...chunk.split('\r\n').filter(Boolean)));
  const expectReply = async (code) => {
    const deadline = Date.now() + 5_000;
    while (!lines.some((l) => l.startsWith(`${code} `))) {
      if (Date.now() > deadline) throw new Error(`no ${code} reply; got ${JSON.stringify(lines)}`);
      await sleep(10);
    }
    lines.length = 0;
  };
  const send = async (text, code) => {
    socket.write(`${text}\r\n`);
    await expectReply(code);
  };
  await expectReply(220);
  await send('EHLO test', 250);
  await send('MAIL FROM:<sender@example.test>', 250);
  await send(`RCPT TO:<${recipient}>`, 250);
  await send('DATA', 354);
  await send(`${message}\r\n.`, 250);
  await send('QUIT', 221);
  socket.end();
}

const selfChecking = process.argv.includes('--self-check');
process.on('SIGINT', () => process.exit(130));
process.on('SIGTERM', () => process.exit(143));
process.exit(await (selfChecking ? selfCheck() : main()));
