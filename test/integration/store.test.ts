import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createAccounts } from '../../src/accounts/index.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import type { NewInboundMessage } from '../../src/store/inbound-repositories.js';
import { forEachBackend } from '../support/api-harness.js';
import { quietLogger, resetStore, sharedStore } from '../support/database.js';
import { serverBody } from '../support/fixtures.js';
import type { QueryRunner } from 'typeorm';
import { oauthTarget, appKeyOf } from '../../src/auth/oauth/settings.js';
import { grantKeyOf } from '../../src/auth/oauth/token-provider.js';
import { GrantAccountPlace1764000000015 } from '../../src/store/migrations/0015-grant-account-place.js';
import { MIGRATIONS } from '../../src/store/migrations/index.js';
import { ServerHostsByTenant1764000000034 } from '../../src/store/migrations/0034-server-hosts-by-tenant.js';
import { newId, uniqueViolationOf, type Store } from '../../src/store/store.js';

forEachBackend('store', (kind) => {
  let store: Store;
  beforeEach(async () => {
    store = await sharedStore(kind);
    await resetStore(store);
  });

  it('has a schema exactly as the entities describe it (migrations and entities agree)', async () => {
    assert.deepEqual(await store.pendingSchemaChanges(), []);
  });

  it('records applied migrations', async () => {
    const rows = await store.query<{ name: string }>('SELECT name FROM mailroom_migrations ORDER BY id');
    assert.deepEqual(
      rows.map((r) => r.name),
      MIGRATIONS.map((M) => new M().name),
    );
  });

  it('keeps sign-ins made before the upgrade: migration 0015 gives their keys the place grantKeyOf names', async () => {
    const accounts = createAccounts(store, new SecretSealer(randomBytes(32)), quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Upgrade' });
    const oauth = {
      method: 'oauth2',
      clientId: 'app',
      directoryId: 'contoso',
      authorityHost: 'https://login.example.test',
    };
    const server = await accounts.servers.create(
      tenant.id,
      serverBody(1, {
        imap: { host: 'IMAP.Example.com', user: 'Agent@example.com', auth: oauth },
        smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'imap' } },
      }),
    );
    const row = await store.servers.require(tenant.id, server.id);
    const target = oauthTarget(row, 'imap');
    assert.ok(target);
    // As saved before 0015: the app alone.
    const old = { serverId: row.id, tenantId: tenant.id, purpose: 'imap' as const, appKey: appKeyOf(target.settings) };
    await store.oauthGrants.saveCache(old, 'sealed-cache');
    await new GrantAccountPlace1764000000015().up({
      query: (sql: string) => store.query(sql),
    } as unknown as QueryRunner);
    assert.equal((await store.oauthGrants.get(row.id, 'imap'))?.appKey, grantKeyOf(row, target).appKey);
  });

  it('gives stored account keys their canonical host: migration 0034 (one account, one tenant)', async () => {
    const accounts = createAccounts(store, new SecretSealer(randomBytes(32)), quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Upgrade' });
    const make = async (n: number, host: string, user: string): Promise<string> =>
      (
        await accounts.servers.create(
          tenant.id,
          serverBody(n, { imap: { host, user, auth: { method: 'password', password: 'pw' } } }),
        )
      ).id;
    const first = await make(1, '127.0.0.1', 'a@example.com');
    const alias = await make(2, '127.0.0.2', 'a@example.com');
    const other = await make(3, '127.0.0.3', 'b@example.com');
    // As an earlier version stored them: the host as typed, lower-cased.
    await store.query(`UPDATE email_servers SET imap_host = '127.1', account_key = $1 WHERE id = $2`, [
      '127.1\na@example.com',
      alias,
    ]);
    await store.query(`UPDATE email_servers SET imap_host = '0x7F.0.0.1', account_key = $1 WHERE id = $2`, [
      '0x7f.0.0.1\nb@example.com',
      other,
    ]);
    // Names keyed as before: fullwidth letters were another name.
    const wide = await accounts.tenants.create({ name: 'Ｗｉｄｅ  Co' });
    await store.query(`UPDATE tenants SET name_key = $1 WHERE id = $2`, ['ｗｉｄｅ  co', wide.id]);
    await store.query(`UPDATE email_servers SET name = 'Ｍａｉｎ', name_key = 'ｍａｉｎ' WHERE id = $1`, [other]);
    await store.query(`ALTER TABLE email_servers DROP COLUMN hosts_by_tenant`);
    await new ServerHostsByTenant1764000000034().up({
      query: (sql: string, params?: unknown[]) => store.query(sql, params),
    } as unknown as QueryRunner);
    const keys = Object.fromEntries(
      (
        await store.query<{ id: string; account_key: string; hosts_by_tenant: boolean }>(
          'SELECT id, account_key, hosts_by_tenant FROM email_servers',
        )
      ).map((r) => [r.id, [r.account_key, r.hosts_by_tenant]]),
    );
    assert.deepEqual(keys[first], ['127.0.0.1\na@example.com', false]);
    assert.deepEqual(keys[other], ['127.0.0.1\nb@example.com', false]);
    // The same account twice already: the later keeps its key (the unique index allows one).
    assert.deepEqual(keys[alias], ['127.1\na@example.com', false]);
    const [tenantKey] = await store.query<{ name_key: string }>('SELECT name_key FROM tenants WHERE id = $1', [
      wide.id,
    ]);
    assert.equal(tenantKey?.name_key, 'wide co');
    const [serverKey] = await store.query<{ name_key: string }>('SELECT name_key FROM email_servers WHERE id = $1', [
      other,
    ]);
    assert.equal(serverKey?.name_key, 'main');
  });

  it('reports unique-index collisions by index name', async () => {
    await store.tenants.insert({ id: newId(), name: 'A', nameKey: 'a' });
    await assert.rejects(store.tenants.insert({ id: newId(), name: 'A', nameKey: 'a' }), (err: unknown) => {
      assert.equal(uniqueViolationOf(err), 'tenants_name_key_uq');
      return true;
    });
  });

  it('rolls a failed transaction back entirely', async () => {
    await assert.rejects(
      store.transaction(async (tx) => {
        await tx.tenants.insert({ id: newId(), name: 'Gone', nameKey: 'gone' });
        throw new Error('boom');
      }),
      /boom/,
    );
    assert.equal((await store.tenants.list()).length, 0);
  });

  it('keeps a transaction apart from work running beside it', async () => {
    // On PGlite every query shares one session: without exclusive hand-out, the insert running
    // beside the transaction would be rolled back with it.
    let release!: () => void;
    let inserted!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const insideDone = new Promise<void>((resolve) => (inserted = resolve));
    const tx = store
      .transaction(async (t) => {
        await t.tenants.insert({ id: newId(), name: 'Inside', nameKey: 'inside' });
        inserted();
        await held;
        throw new Error('rollback');
      })
      .catch(() => undefined);
    await insideDone;
    const beside = store.tenants.insert({ id: newId(), name: 'Beside', nameKey: 'beside' });
    setTimeout(release, 50);
    await Promise.all([tx, beside]);
    assert.deepEqual(
      (await store.tenants.list()).map((t) => t.name),
      ['Beside'],
    );
  });

  it('stores message rows holding U+0000 and lone surrogates, cleaned, beside clean rows of the same batch', async () => {
    const accounts = createAccounts(store, new SecretSealer(randomBytes(32)), quietLogger);
    const tenant = await accounts.tenants.create({ name: 'Hostile' });
    const server = await accounts.servers.create(tenant.id, serverBody(1));
    const row = (uid: number, subject: string, name: string, bodyText: string): NewInboundMessage => ({
      id: newId(),
      tenantId: tenant.id,
      serverId: server.id,
      mailbox: 'INBOX',
      uidValidity: 1,
      uid,
      status: 'routed',
      quarantineReason: null,
      messageIdHeader: `m${uid}@example.net`,
      dedupeKey: `mid:m${uid}@example.net`,
      conversationId: newId(),
      subject,
      fromAddress: 'jane@example.net',
      fromName: null,
      recipients: { to: [{ address: 'support@example.com', name }], cc: [], deliveredTo: [], xOriginalTo: [] },
      sentAt: null,
      receivedAt: new Date('2026-03-04T10:00:00Z'),
      size: 100,
      classification: { autoReply: false, bounce: false, loop: false, reasons: [] },
      inReplyTo: null,
      references: [],
      bodyText,
      bodyHtml: null,
      attachments: [],
    });
    const rows = [
      row(1, 'Clean', 'Support', 'A path: C:\\users\\u0000 is text, not a NUL'),
      row(2, 'Nul\u0000byte', 'Lone \ud800 high', 'body\u0000'),
      row(3, 'Pair \ud83d\ude00 kept', 'Lone \udc00 low', 'fine'),
    ];
    const inserted = await store.messages.insertBatch(rows.map((r) => ({ row: r, raw: Buffer.from('x') })));
    assert.equal(inserted.size, 3);
    const stored = await Promise.all(rows.map((r) => store.messages.get(tenant.id, r.id)));
    assert.deepEqual(
      stored.map((m) => [m?.subject, m?.recipients.to[0]?.name, m?.bodyText]),
      [
        ['Clean', 'Support', 'A path: C:\\users\\u0000 is text, not a NUL'],
        ['Nulbyte', 'Lone \ufffd high', 'body'],
        ['Pair \ud83d\ude00 kept', 'Lone \ufffd low', 'fine'],
      ],
    );
  });
});
