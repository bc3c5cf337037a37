import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { constants } from 'node:fs';
import { mkdtemp, open, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isMailroomError } from '../../src/shared/errors.js';
import { forEachBackend, openApiHarness, type ApiHarness } from '../support/api-harness.js';
import { CANARY_PASSWORD, destinationBody, serverBody } from '../support/fixtures.js';

type Obj = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any -- JSON answers in tests

forEachBackend('accounts API', (kind) => {
  let h: ApiHarness;
  const responses: string[] = [];

  beforeEach(async () => {
    h = await openApiHarness(kind);
  });
  afterEach(async () => {
    await h.close();
  });

  async function call(method: string, url: string, body?: unknown, token?: string) {
    const res = await h.call<Obj>(method, url, body, token);
    responses.push(res.raw);
    return res;
  }

  async function tenant(name: string): Promise<string> {
    const res = await call('POST', '/api/v1/tenants', { name });
    assert.equal(res.status, 201, res.raw);
    return res.body.id as string;
  }

  async function server(tenantId: string, n: number | string, overrides: Record<string, unknown> = {}): Promise<Obj> {
    const res = await call('POST', `/api/v1/tenants/${tenantId}/servers`, serverBody(n, overrides));
    assert.equal(res.status, 201, res.raw);
    return res.body;
  }

  describe('tenants', () => {
    it('creates, lists, renames and deletes; names are unique ignoring case', async () => {
      const id = await tenant('Sales');
      assert.equal((await call('POST', '/api/v1/tenants', { name: 'sales' })).body.error.code, 'DUPLICATE_NAME');
      const list = await call('GET', '/api/v1/tenants');
      assert.deepEqual(
        list.body.tenants.map((t: Obj) => t.name),
        ['Sales'],
      );
      const renamed = await call('PATCH', `/api/v1/tenants/${id}`, { name: 'Sales EMEA' });
      assert.equal(renamed.body.name, 'Sales EMEA');
      assert.equal((await call('DELETE', `/api/v1/tenants/${id}`)).status, 204);
      assert.equal((await call('GET', `/api/v1/tenants/${id}`)).body.error.code, 'TENANT_NOT_FOUND');
    });

    it('refuses to delete a tenant that still has servers', async () => {
      const id = await tenant('Busy');
      await server(id, 1);
      const res = await call('DELETE', `/api/v1/tenants/${id}`);
      assert.equal(res.status, 409);
      assert.equal(res.body.error.code, 'TENANT_NOT_EMPTY');
    });
  });

  describe('e-mail servers', () => {
    it('creates a server with defaults and never returns its password', async () => {
      const id = await tenant('Support');
      const created = await server(id, 1, { postProcess: 'move:Archive' });
      assert.equal(created.imap.port, 993);
      assert.equal(created.imap.secure, true);
      assert.equal(created.imap.maxSessions, 0);
      assert.equal(created.smtp.secure, false);
      assert.equal(created.smtp.rateLimitPerHour, 0);
      assert.equal(created.postProcess, 'move:Archive');
      assert.deepEqual(created.imap.auth, { method: 'password', hasPassword: true, oauth2: null });
      assert.equal(created.enabled, true);
      const fetched = await call('GET', `/api/v1/tenants/${id}/servers/${created.id}`);
      assert.deepEqual(fetched.body, created);
      assert.equal(
        (await h.accounts.servers.credentials(id, created.id as string)).imapPassword,
        CANARY_PASSWORD,
        'the sealed password opens to the original',
      );
    });

    it('refuses a sixth server in a tenant (409)', async () => {
      const id = await tenant('Five');
      for (let n = 1; n <= 5; n++) await server(id, n);
      const sixth = await call('POST', `/api/v1/tenants/${id}/servers`, serverBody(6));
      assert.equal(sixth.status, 409);
      assert.equal(sixth.body.error.code, 'SERVER_LIMIT_REACHED');
      assert.match(sixth.body.error.message, /'Five' already has 5 e-mail servers/);
      assert.equal((await call('GET', `/api/v1/tenants/${id}/servers`)).body.servers.length, 5);
    });

    it('holds the limit under concurrent creates', async () => {
      const id = await tenant('Race');
      const results = await Promise.all(
        Array.from({ length: 9 }, (_, n) => call('POST', `/api/v1/tenants/${id}/servers`, serverBody(n))),
      );
      assert.equal(results.filter((r) => r.status === 201).length, 5);
      assert.ok(results.filter((r) => r.status !== 201).every((r) => r.body.error.code === 'SERVER_LIMIT_REACHED'));
    });

    it('gives the same account to one of two tenants adding it at the same moment, and a 409 to the other', async () => {
      const tenants = [await tenant('Left'), await tenant('Right')];
      for (let round = 0; round < 3; round += 1) {
        const body = serverBody(`race${round}`, {
          imap: {
            host: 'imap.example.com',
            user: `race${round}@example.com`,
            auth: { method: 'password', password: 'p' },
          },
        });
        const results = await Promise.all(tenants.map((t) => call('POST', `/api/v1/tenants/${t}/servers`, body)));
        assert.deepEqual(results.map((r) => r.status).sort(), [201, 409], JSON.stringify(results.map((r) => r.body)));
        const refused = results.find((r) => r.status === 409);
        assert.equal(refused?.body.error.code, 'ACCOUNT_IN_USE');
        assert.equal(refused?.body.error.field, 'imap.user');
      }
    });

    it('refuses the same account in another tenant, naming that tenant', async () => {
      const a = await tenant('Alpha');
      const b = await tenant('Beta');
      await server(a, 1);
      const dup = await call(
        'POST',
        `/api/v1/tenants/${b}/servers`,
        serverBody('x', {
          imap: { host: 'IMAP.Example.com', user: 'AGENT1@example.com', auth: { method: 'password', password: 'p' } },
        }),
      );
      assert.equal(dup.status, 409);
      assert.equal(dup.body.error.code, 'ACCOUNT_IN_USE');
      assert.equal(dup.body.error.field, 'imap.user');
      assert.match(dup.body.error.message, /already configured in tenant 'Alpha'/);
      assert.equal(dup.body.error.details.tenantName, 'Alpha');
    });

    it('names no other tenant to a tenant token (account in use, a taken tenant name)', async () => {
      const a = await tenant('Alpha');
      const b = await tenant('Beta');
      await server(a, 1);
      const token = (await call('POST', `/api/v1/tenants/${b}/tokens`, { name: 'beta' })).body.token as string;
      const dup = await call('POST', `/api/v1/tenants/${b}/servers`, serverBody(1), token);
      assert.equal(dup.status, 409, dup.raw);
      assert.equal(dup.body.error.code, 'ACCOUNT_IN_USE');
      assert.equal(dup.body.error.field, 'imap.user');
      assert.match(dup.body.error.message, /already in use elsewhere/);
      assert.equal(dup.body.error.details, undefined, dup.raw);
      assert.ok(!dup.raw.includes('Alpha') && !dup.raw.includes(a), dup.raw);
      const rename = await call('PATCH', `/api/v1/tenants/${b}`, { name: 'alpha' }, token);
      assert.equal(rename.status, 409, rename.raw);
      assert.equal(rename.body.error.code, 'DUPLICATE_NAME');
      assert.equal(rename.body.error.field, 'name');
      assert.ok(!/alpha/i.test(rename.body.error.message), rename.raw);
      const admin = await call('PATCH', `/api/v1/tenants/${b}`, { name: 'alpha' });
      assert.match(admin.body.error.message, /a tenant named 'alpha' already exists/, 'administrators keep the detail');
    });

    it('allows the same server twice in a tenant with different user names, not with the same one', async () => {
      const id = await tenant('Twice');
      await server(id, 1);
      await server(id, 2);
      const same = await call('POST', `/api/v1/tenants/${id}/servers`, serverBody(1, { name: 'Other name' }));
      assert.equal(same.status, 409);
      assert.equal(same.body.error.code, 'ACCOUNT_IN_USE');
      assert.match(same.body.error.message, /in this tenant as e-mail server 'Server 1'/);
      const sameName = await call('POST', `/api/v1/tenants/${id}/servers`, serverBody(3, { name: 'server 1' }));
      assert.equal(sameName.body.error.code, 'DUPLICATE_NAME');
    });

    it('refuses to delete a server that destinations use, naming them', async () => {
      const id = await tenant('InUse');
      const s = await server(id, 1);
      const d1 = await call('POST', `/api/v1/tenants/${id}/destinations`, destinationBody(1, s.id));
      await call('POST', `/api/v1/tenants/${id}/destinations`, destinationBody(2, s.id));
      const refused = await call('DELETE', `/api/v1/tenants/${id}/servers/${s.id}`);
      assert.equal(refused.status, 409);
      assert.equal(refused.body.error.code, 'SERVER_IN_USE');
      assert.match(refused.body.error.message, /'Destination 1', 'Destination 2'/);
      assert.deepEqual(
        refused.body.error.details.destinations.map((d: Obj) => d.name),
        ['Destination 1', 'Destination 2'],
      );
      await call('PATCH', `/api/v1/tenants/${id}/destinations/${d1.body.id}`, {
        serverId: null,
        monitored: false,
        outgoing: false,
      });
      await call('DELETE', `/api/v1/tenants/${id}/destinations/${refused.body.error.details.destinations[1].id}`);
      assert.equal((await call('DELETE', `/api/v1/tenants/${id}/servers/${s.id}`)).status, 204);
    });

    it('copies a server under a new name with a new account, keeping SMTP credentials', async () => {
      const id = await tenant('Copy');
      const source = await server(id, 1, {
        smtp: {
          host: 'smtp.example.com',
          port: 465,
          auth: { mode: 'custom', user: 'relay', password: 'relay-secret' },
          heartbeatAddress: 'heartbeat@example.com',
          rateLimitPerHour: 30,
        },
      });
      const copy = await call('POST', `/api/v1/tenants/${id}/servers/${source.id}/copy`, {
        name: 'Server 1 copy',
        imap: { user: 'agent9@example.com', auth: { method: 'password', password: 'new-password' } },
      });
      assert.equal(copy.status, 201, copy.raw);
      assert.notEqual(copy.body.id, source.id);
      assert.equal(copy.body.name, 'Server 1 copy');
      assert.equal(copy.body.imap.user, 'agent9@example.com');
      assert.deepEqual(copy.body.smtp, source.smtp);
      const creds = await h.accounts.servers.credentials(id, copy.body.id as string);
      assert.equal(creds.smtpPassword, 'relay-secret');
      assert.equal(creds.imapPassword, 'new-password');
      const sameAccount = await call('POST', `/api/v1/tenants/${id}/servers/${source.id}/copy`, { name: 'Clone' });
      assert.equal(sameAccount.status, 409);
      assert.equal(sameAccount.body.error.code, 'ACCOUNT_IN_USE');
    });

    it('keeps the password on unrelated edits and asks for it again when the account moves', async () => {
      const id = await tenant('Edit');
      const s = await server(id, 1);
      const edited = await call('PATCH', `/api/v1/tenants/${id}/servers/${s.id}`, {
        smtp: { rateLimitPerHour: 50 },
        enabled: false,
      });
      assert.equal(edited.status, 200, edited.raw);
      assert.equal(edited.body.smtp.rateLimitPerHour, 50);
      assert.equal(edited.body.enabled, false);
      assert.equal((await h.accounts.servers.credentials(id, s.id as string)).imapPassword, CANARY_PASSWORD);
      const moved = await call('PATCH', `/api/v1/tenants/${id}/servers/${s.id}`, {
        imap: { host: 'evil.example.net' },
      });
      assert.equal(moved.status, 400);
      assert.equal(moved.body.error.field, 'imap.auth.password');
      const switched = await call('PATCH', `/api/v1/tenants/${id}/servers/${s.id}`, {
        imap: { auth: { method: 'oauth2', clientId: 'c1', directoryId: 'contoso.onmicrosoft.com' } },
      });
      assert.equal(switched.status, 200, switched.raw);
      assert.deepEqual(switched.body.imap.auth, {
        method: 'oauth2',
        hasPassword: false,
        oauth2: {
          clientId: 'c1',
          directoryId: 'contoso.onmicrosoft.com',
          flow: 'device-code',
          authorityHost: 'https://login.microsoftonline.com',
          serverUrl: null,
          hasClientSecret: false,
        },
      });
    });

    it('asks for the IMAP password again when SMTP, logging in with it, points at another host', async () => {
      const id = await tenant('Relay');
      const s = await server(id, 1); // smtp: mode imap, the IMAP password
      const url = `/api/v1/tenants/${id}/servers/${s.id}`;
      for (const smtp of [{ host: 'evil.example.net' }, { host: 'Smtp.Example.com', auth: { mode: 'none' } }]) {
        const res = await call('PATCH', url, { smtp });
        if (smtp.auth) {
          assert.equal(res.status, 200, 'no credentials go anywhere new');
          continue;
        }
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.field, 'imap.auth.password');
        assert.match(res.body.error.message, /SMTP \(auth mode imap\) logs in to evil\.example\.net:587 with the IMAP/);
      }
      // From mode none, SMTP may not start logging in to its (meanwhile changed) host with the IMAP password either.
      assert.equal((await call('PATCH', url, { smtp: { host: 'evil.example.net' } })).status, 200);
      const back = await call('PATCH', url, { smtp: { auth: { mode: 'imap' } } });
      assert.equal(back.status, 400, back.raw);
      assert.equal(back.body.error.field, 'imap.auth.password');
      const given = await call('PATCH', url, {
        imap: { auth: { method: 'password', password: 'new-pass' } },
        smtp: { auth: { mode: 'imap' } },
      });
      assert.equal(given.status, 200, given.raw);
      assert.equal((await h.accounts.servers.credentials(id, s.id as string)).imapPassword, 'new-pass');

      const custom = await server(id, 2, {
        smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'custom', user: 'relay', password: 'relay-pass' } },
      });
      const moved = await call('PATCH', `/api/v1/tenants/${id}/servers/${custom.id}`, {
        smtp: { host: 'evil.example.net' },
      });
      assert.equal(moved.status, 400, moved.raw);
      assert.equal(moved.body.error.field, 'smtp.auth.password');
    });

    it('asks for a stored secret again when the port or TLS setting changes (never clear text to a new port)', async () => {
      const id = await tenant('Endpoints');
      const s = await server(id, 1); // imaps: secure, port 993; SMTP mode imap on 587
      assert.deepEqual([s.imap.port, s.imap.secure], [993, true]);
      const url = `/api/v1/tenants/${id}/servers/${s.id}`;
      const plain = await call('PATCH', url, { imap: { secure: false, port: 10143 } });
      assert.equal(plain.status, 400, plain.raw);
      assert.equal(plain.body.error.code, 'VALIDATION_FAILED');
      assert.equal(plain.body.error.field, 'imap.auth.password');
      assert.match(plain.body.error.message, /IMAP port and TLS setting changed/);
      for (const smtp of [{ port: 2525 }, { secure: true }]) {
        const res = await call('PATCH', url, { smtp });
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.field, 'imap.auth.password', 'SMTP logs in with the IMAP password');
      }
      assert.equal((await h.accounts.servers.credentials(id, s.id as string)).imapPassword, CANARY_PASSWORD);
      const given = await call('PATCH', url, {
        imap: { secure: false, port: 10143, auth: { method: 'password', password: 'entered-for-10143' } },
      });
      assert.equal(given.status, 200, given.raw);
      assert.equal((await h.accounts.servers.credentials(id, s.id as string)).imapPassword, 'entered-for-10143');

      const custom = await server(id, 2, {
        smtp: { host: 'smtp.example.com', port: 465, auth: { mode: 'custom', user: 'relay', password: 'relay-pass' } },
      });
      const starttls = await call('PATCH', `/api/v1/tenants/${id}/servers/${custom.id}`, { smtp: { port: 587 } });
      assert.equal(starttls.status, 400, starttls.raw);
      assert.equal(starttls.body.error.field, 'smtp.auth.password');

      const app = await server(id, 3, {
        imap: {
          host: 'imap.example.com',
          user: 'app@example.com',
          auth: { method: 'oauth2', clientId: 'c', directoryId: 'd', flow: 'client-credentials', clientSecret: 's' },
        },
      });
      const moved = await call('PATCH', `/api/v1/tenants/${id}/servers/${app.id}`, { imap: { port: 1993 } });
      assert.equal(moved.status, 400, moved.raw);
      assert.equal(moved.body.error.field, 'imap.auth.clientSecret');
    });

    it('lets an SMTP secure setting that was only the default follow a new port, as on create', async () => {
      const id = await tenant('Ports');
      const s = await server(id, 1, {
        smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'none' } },
      });
      const url = `/api/v1/tenants/${id}/servers/${s.id}`;
      assert.equal(s.smtp.secure, false);
      const implicit = await call('PATCH', url, { smtp: { port: 465 } });
      assert.equal(implicit.status, 200, implicit.raw);
      assert.equal(implicit.body.smtp.secure, true, 'port 465 is implicit TLS');
      assert.equal((await call('PATCH', url, { smtp: { port: 587 } })).body.smtp.secure, false);
      const chosen = await call('PATCH', url, { smtp: { secure: true } });
      assert.equal(chosen.body.smtp.secure, true, 'STARTTLS required on 587, as chosen');
      assert.equal((await call('PATCH', url, { smtp: { port: 25 } })).body.smtp.secure, true, 'a choice stays');
      const both = await call('PATCH', url, { smtp: { port: 465, secure: false } });
      assert.equal(both.body.smtp.secure, false, 'what the request says wins');
    });

    it('refuses a CA file that is not a regular file (a FIFO) at once, without holding up the tenant', async () => {
      const id = await tenant('Pipes');
      const dir = await mkdtemp(join(tmpdir(), 'mailroom-fifo-'));
      const fifo = join(dir, 'ca.pem');
      execFileSync('mkfifo', [fifo]);
      try {
        const body = serverBody(1, {
          imap: {
            host: 'imap.example.com',
            user: 'a@example.com',
            caFile: fifo,
            auth: { method: 'password', password: 'p' },
          },
        });
        const res = await Promise.race([
          call('POST', `/api/v1/tenants/${id}/servers`, body),
          new Promise<undefined>((resolve) => setTimeout(() => resolve(undefined), 5_000).unref()),
        ]);
        assert.ok(res, 'answered within 5 s');
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.field, 'imap.caFile');
        assert.match(res.body.error.message, /MAILROOM_CA_DIR/);
        assert.ok(
          h.logLines.some((l) => l.includes('is not a regular file')),
          'the operator reads the reason in the log',
        );
        await server(id, 2);
      } finally {
        // A read that blocked on the FIFO (the bug) holds a thread and the tenant's lock: give it a writer.
        await open(fifo, constants.O_WRONLY | constants.O_NONBLOCK).then(
          (handle) => handle.close(),
          () => undefined,
        );
        await rm(dir, { recursive: true, force: true });
      }
    });

    const invalid: Array<[string, Record<string, unknown>, string]> = [
      ['port 0', { imap: { host: 'h', port: 0, user: 'u', auth: { method: 'password', password: 'p' } } }, 'imap.port'],
      [
        'port 65536',
        { imap: { host: 'h', port: 65536, user: 'u', auth: { method: 'password', password: 'p' } } },
        'imap.port',
      ],
      [
        'port as text',
        { imap: { host: 'h', port: '993', user: 'u', auth: { method: 'password', password: 'p' } } },
        'imap.port',
      ],
      ['bad host', { imap: { host: 'bad host', user: 'u', auth: { method: 'password', password: 'p' } } }, 'imap.host'],
      [
        'line break in the user name',
        { imap: { host: 'h', user: 'u@example.com\r\nA1 LOGOUT', auth: { method: 'password', password: 'p' } } },
        'imap.user',
      ],
      [
        'blank at the end of the user name',
        { imap: { host: 'h', user: 'u@example.com ', auth: { method: 'password', password: 'p' } } },
        'imap.user',
      ],
      [
        'tab in the smtp user name',
        { smtp: { host: 's', port: 25, auth: { mode: 'custom', user: 'u\tv', password: 'p' } } },
        'smtp.auth.user',
      ],
      [
        'unknown field',
        { imap: { host: 'h', user: 'u', auth: { method: 'password', password: 'p' }, tls: 1 } },
        'imap.tls',
      ],
      ['unknown method', { imap: { host: 'h', user: 'u', auth: { method: 'kerberos' } } }, 'imap.auth.method'],
      ['missing password', { imap: { host: 'h', user: 'u', auth: { method: 'password' } } }, 'imap.auth.password'],
      [
        'confirm mismatch',
        { imap: { host: 'h', user: 'u', auth: { method: 'password', password: 'a', confirmPassword: 'b' } } },
        'imap.auth.confirmPassword',
      ],
      [
        'oauth without client',
        { imap: { host: 'h', user: 'u', auth: { method: 'oauth2', directoryId: 'd' } } },
        'imap.auth.clientId',
      ],
      [
        'secret with device code',
        {
          imap: {
            host: 'h',
            user: 'u',
            auth: { method: 'oauth2', clientId: 'c', directoryId: 'd', clientSecret: 's' },
          },
        },
        'imap.auth.clientSecret',
      ],
      [
        'client credentials without secret',
        {
          imap: {
            host: 'h',
            user: 'u',
            auth: { method: 'oauth2', clientId: 'c', directoryId: 'd', flow: 'client-credentials' },
          },
        },
        'imap.auth.clientSecret',
      ],
      ['smtp port missing', { smtp: { host: 'smtp.example.com', auth: { mode: 'none' } } }, 'smtp.port'],
      [
        'smtp custom without user',
        { smtp: { host: 's', port: 25, auth: { mode: 'custom', password: 'p' } } },
        'smtp.auth.user',
      ],
      [
        'smtp none with password',
        { smtp: { host: 's', port: 25, auth: { mode: 'none', password: 'p' } } },
        'smtp.auth.password',
      ],
      [
        'bad heartbeat address',
        { smtp: { host: 's', port: 25, auth: { mode: 'none' }, heartbeatAddress: 'not-an-address' } },
        'smtp.heartbeatAddress',
      ],
      [
        'negative rate limit',
        { smtp: { host: 's', port: 25, auth: { mode: 'none' }, rateLimitPerHour: -1 } },
        'smtp.rateLimitPerHour',
      ],
      ['bad post-processing', { postProcess: 'archive' }, 'postProcess'],
      ['empty name', { name: '' }, 'name'],
      ['top-level unknown', { colour: 'blue' }, 'colour'],
    ];
    for (const [what, override, field] of invalid) {
      it(`answers 400 naming the field: ${what}`, async () => {
        const id = await tenant('Valid');
        const res = await call('POST', `/api/v1/tenants/${id}/servers`, serverBody(1, override));
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.code, 'VALIDATION_FAILED');
        assert.equal(res.body.error.field, field, res.body.error.message);
        assert.ok(res.body.error.message.includes(`'${field}'`), res.body.error.message);
      });
    }
  });

  describe('destinations', () => {
    it('creates, edits and copies a destination; addresses and names are unique per tenant', async () => {
      const id = await tenant('Dest');
      const s = await server(id, 1);
      const d = await call('POST', `/api/v1/tenants/${id}/destinations`, destinationBody(1, s.id));
      assert.equal(d.status, 201, d.raw);
      assert.equal(d.body.monitored, true);
      assert.equal(d.body.outgoing, true);
      const dupAddress = await call(
        'POST',
        `/api/v1/tenants/${id}/destinations`,
        destinationBody(2, s.id, { address: 'SUPPORT1@example.com' }),
      );
      assert.equal(dupAddress.body.error.code, 'DUPLICATE_ADDRESS');
      const copy = await call('POST', `/api/v1/tenants/${id}/destinations/${d.body.id}/copy`, {
        name: 'Billing',
        address: 'billing@example.com',
      });
      assert.equal(copy.status, 201, copy.raw);
      assert.equal(copy.body.fromText, 'ACME Support');
      assert.equal(copy.body.serverId, s.id);
      const missingAddress = await call('POST', `/api/v1/tenants/${id}/destinations/${d.body.id}/copy`, { name: 'X' });
      assert.equal(missingAddress.body.error.field, 'address');
      const edited = await call('PATCH', `/api/v1/tenants/${id}/destinations/${d.body.id}`, { description: 'VIP' });
      assert.equal(edited.body.description, 'VIP');
      assert.equal(edited.body.address, 'support1@example.com');
    });

    it('validates address, server and the need for a server', async () => {
      const id = await tenant('DestValid');
      const other = await tenant('Other');
      const foreign = await server(other, 1);
      const cases: Array<[Record<string, unknown>, string]> = [
        [destinationBody(1, null, { address: 'not-an-email' }), 'address'],
        [destinationBody(1, foreign.id as string), 'serverId'],
        [destinationBody(1, null), 'serverId'],
        [destinationBody(1, 'not-a-uuid'), 'serverId'],
        [
          destinationBody(1, null, { fromText: 'Evil\r\nBcc: x@evil.test', monitored: false, outgoing: false }),
          'fromText',
        ],
      ];
      for (const [body, field] of cases) {
        const res = await call('POST', `/api/v1/tenants/${id}/destinations`, body);
        assert.equal(res.status, 400, res.raw);
        assert.equal(res.body.error.field, field, res.raw);
      }
    });
  });

  describe('access', () => {
    it('requires a token', async () => {
      const none = await h.app.inject({ method: 'GET', url: '/api/v1/tenants' });
      assert.equal(none.statusCode, 401);
      assert.equal((await call('GET', '/api/v1/tenants', undefined, 'wrong')).status, 401);
      assert.equal((await h.app.inject({ method: 'GET', url: '/healthz' })).statusCode, 200);
    });

    it('confines a tenant-scoped token to its tenant', async () => {
      const mine = await tenant('Mine');
      const theirs = await tenant('Theirs');
      const theirServer = await server(theirs, 1);
      const issued = await call('POST', `/api/v1/tenants/${mine}/tokens`, { name: 'tenant admin' });
      assert.equal(issued.status, 201);
      const token = issued.body.token as string;
      const list = await call('GET', '/api/v1/tenants', undefined, token);
      assert.deepEqual(
        list.body.tenants.map((t: Obj) => t.id),
        [mine],
      );
      for (const url of [
        `/api/v1/tenants/${theirs}`,
        `/api/v1/tenants/${theirs}/servers`,
        `/api/v1/tenants/${theirs}/servers/${theirServer.id}`,
        `/api/v1/tenants/${theirs}/destinations`,
      ]) {
        const res = await call('GET', url, undefined, token);
        assert.equal(res.status, 404, url);
        assert.equal(res.body.error.code, 'TENANT_NOT_FOUND');
      }
      const del = await call('DELETE', `/api/v1/tenants/${theirs}/servers/${theirServer.id}`, undefined, token);
      assert.equal(del.status, 404);
      assert.equal((await call('POST', '/api/v1/tenants', { name: 'New' }, token)).status, 403);
      const own = await call('POST', `/api/v1/tenants/${mine}/servers`, serverBody(7), token);
      assert.equal(own.status, 201, own.raw);
      await call('DELETE', `/api/v1/tenants/${mine}/tokens/${issued.body.id}`);
      assert.equal((await call('GET', '/api/v1/tenants', undefined, token)).status, 401, 'revoked');
    });

    it('holds a tenant to 50 API tokens (limits are per token: unbounded tokens would be unbounded load)', async () => {
      const mine = await tenant('Many tokens');
      const first = await call('POST', `/api/v1/tenants/${mine}/tokens`, { name: 'token 0' });
      const token = first.body.token as string;
      for (let n = 1; n < 50; n += 1) {
        const res = await call('POST', `/api/v1/tenants/${mine}/tokens`, { name: `token ${n}` }, token);
        assert.equal(res.status, 201, res.raw);
      }
      const refused = await call('POST', `/api/v1/tenants/${mine}/tokens`, { name: 'one too many' }, token);
      assert.equal(refused.status, 409, refused.raw);
      assert.equal(refused.body.error.code, 'TOKEN_LIMIT_REACHED');
      await call('DELETE', `/api/v1/tenants/${mine}/tokens/${first.body.id}`);
      const again = await call('POST', `/api/v1/tenants/${mine}/tokens`, { name: 'after a revocation' });
      assert.equal(again.status, 201, again.raw);
    });

    it('answers 400 naming the field for text PostgreSQL cannot store (NUL, lone surrogate)', async () => {
      const id = await tenant('Text');
      const oauth = serverBody(2);
      (oauth.imap as Obj).auth = { method: 'oauth2', clientId: 'c\u0000', directoryId: 'd' };
      const cases: Array<[string, string, unknown, string]> = [
        ['POST', '/api/v1/tenants', { name: 'a\u0000b' }, 'name'],
        ['POST', '/api/v1/tenants', { name: 'a\ud800b' }, 'name'],
        ['PATCH', `/api/v1/tenants/${id}`, { name: 'b\udc00' }, 'name'],
        ['POST', `/api/v1/tenants/${id}/servers`, serverBody(1, { name: 'x\u0000y' }), 'name'],
        ['POST', `/api/v1/tenants/${id}/servers`, oauth, 'imap.auth.clientId'],
        ['POST', `/api/v1/tenants/${id}/tokens`, { name: 'tok\u0000' }, 'name'],
        [
          'POST',
          `/api/v1/tenants/${id}/destinations`,
          destinationBody(1, null, { description: '\ud83d' }),
          'description',
        ],
      ];
      for (const [method, url, body, field] of cases) {
        const res = await call(method, url, body);
        assert.equal(res.status, 400, `${method} ${url}: ${res.raw}`);
        assert.equal(res.body.error.code, 'VALIDATION_FAILED');
        assert.equal(res.body.error.field, field, res.raw);
        assert.match(res.body.error.message, /must not contain a (NUL character|lone UTF-16 surrogate)/);
      }
      await assert.rejects(h.accounts.tenants.create({ name: 'cli\u0000' }), (err: unknown) =>
        isMailroomError(err, 'VALIDATION_FAILED'),
      );
      assert.equal(
        (await call('POST', '/api/v1/tenants', { name: 'Emoji \ud83d\udce8' })).status,
        201,
        'a pair is fine',
      );
      assert.equal(h.logLines.filter((l) => l.includes('request failed')).length, 0, 'no internal error');
    });

    it('answers unknown routes and malformed bodies in the error shape', async () => {
      const missing = await call('GET', '/api/v1/nothing');
      assert.equal(missing.status, 404);
      assert.equal(missing.body.error.code, 'NOT_FOUND');
      const res = await h.app.inject({
        method: 'POST',
        url: '/api/v1/tenants',
        headers: { authorization: `Bearer ${h.adminToken}`, 'content-type': 'application/json' },
        payload: '{"name": ',
      });
      assert.equal(res.statusCode, 400);
      assert.equal(res.json().error.code, 'VALIDATION_FAILED');
    });
  });

  describe('secrets', () => {
    it('never shows the password in API answers, log lines or database rows', async () => {
      const id = await tenant('Secret');
      const s = await server(id, 1, {
        smtp: {
          host: 'smtp.example.com',
          port: 587,
          auth: { mode: 'custom', user: 'relay', password: CANARY_PASSWORD },
        },
      });
      await call('POST', `/api/v1/tenants/${id}/servers/${s.id}/copy`, {
        name: 'copy',
        imap: { user: 'other@example.com', auth: { method: 'password', password: CANARY_PASSWORD } },
      });
      await call('PATCH', `/api/v1/tenants/${id}/servers/${s.id}`, {
        imap: { auth: { method: 'password', password: CANARY_PASSWORD } },
      });
      await call(
        'POST',
        `/api/v1/tenants/${id}/servers`,
        serverBody(2, {
          imap: { host: 'bad host', user: 'u', auth: { method: 'password', password: CANARY_PASSWORD } },
        }),
      );
      await call('GET', `/api/v1/tenants/${id}/servers`);
      const rows = await h.store.query<{ row: string }>('SELECT row_to_json(s)::text AS row FROM email_servers s');
      assert.ok(rows.length >= 2);
      assert.ok(h.logLines.length > 0, 'logs were captured');
      for (const text of [...responses, ...h.logLines, ...rows.map((r) => r.row)]) {
        assert.ok(!text.includes(CANARY_PASSWORD), `secret leaked in: ${text.slice(0, 200)}`);
      }
    });

    it('rejects a tampered sealed value', async () => {
      const id = await tenant('Tamper');
      const s = await server(id, 1);
      const [row] = await h.store.query<{ sealed: string }>(
        'SELECT imap_password_sealed AS sealed FROM email_servers WHERE id = $1',
        [s.id],
      );
      const parts = (row as { sealed: string }).sealed.split('.');
      const data = Buffer.from(parts[4] as string, 'base64url');
      data[0] = (data[0] as number) ^ 0xff;
      parts[4] = data.toString('base64url');
      await h.store.query('UPDATE email_servers SET imap_password_sealed = $1 WHERE id = $2', [parts.join('.'), s.id]);
      await assert.rejects(h.accounts.servers.credentials(id, s.id as string), (err: unknown) =>
        isMailroomError(err, 'SECRET_UNREADABLE'),
      );
      // A sealed value moved to another row does not open either.
      const other = await server(id, 2);
      await h.store.query(
        'UPDATE email_servers SET imap_password_sealed = (SELECT imap_password_sealed FROM email_servers WHERE id = $1) WHERE id = $2',
        [other.id, s.id],
      );
      await assert.rejects(h.accounts.servers.credentials(id, s.id as string), (err: unknown) =>
        isMailroomError(err, 'SECRET_UNREADABLE'),
      );
    });
  });
});
