import type { MigrationInterface, QueryRunner } from 'typeorm';
import { accountKeyOf } from '../../shared/host-key.js';
import { nameKeyOf } from '../../shared/name-key.js';

/**
 * Issue 24 hardening (an outside review holding a tenant's token):
 *
 * - `hosts_by_tenant`: whether a tenant's token chose where the server's IMAP and SMTP connections
 *   go (its hosts, ports or proxy). Those connections then only reach the addresses
 *   MAILROOM_MAIL_ALLOW_PRIVATE allows (public ones by default), checked at each connection; the
 *   operator's own servers (administrator token, CLI) connect anywhere. Existing servers were set
 *   up before anyone could tell: false, as the operator's.
 * - `account_key` in its canonical form (`shared/host-key.ts`): `127.1`, `0x7f.0.0.1` or
 *   `::ffff:127.0.0.1` no longer make another account of `127.0.0.1`. A key two stored servers
 *   would now share is left as it was on the later one (the unique index would refuse it; its
 *   operator sees both in the administrator's list).
 * - `name_key` of tenants, e-mail servers and destinations in its new form (`shared/name-key.ts`:
 *   NFKC, blanks collapsed), so that `Ａｃｍｅ` is `Acme`; a key taken already in its scope is left
 *   as it was, as above.
 */
export class ServerHostsByTenant1764000000034 implements MigrationInterface {
  name = 'ServerHostsByTenant1764000000034';

  async up(q: QueryRunner): Promise<void> {
    await q.query(`ALTER TABLE email_servers ADD COLUMN hosts_by_tenant boolean NOT NULL DEFAULT false`);
    const rows = (await q.query(
      `SELECT id, imap_host, imap_user, account_key FROM email_servers ORDER BY created_at, id`,
    )) as Array<{ id: string; imap_host: string; imap_user: string; account_key: string }>;
    const taken = new Set(rows.map((r) => r.account_key));
    for (const row of rows) {
      const key = accountKeyOf(row.imap_host, row.imap_user);
      if (key === row.account_key || taken.has(key)) continue;
      await q.query(`UPDATE email_servers SET account_key = $1 WHERE id = $2`, [key, row.id]);
      taken.delete(row.account_key);
      taken.add(key);
    }
    for (const [table, scope] of [
      ['tenants', null],
      ['email_servers', 'tenant_id'],
      ['destinations', 'tenant_id'],
    ] as const) {
      const named = (await q.query(
        `SELECT id, name, name_key, ${scope ?? `''`} AS scope FROM ${table} ORDER BY created_at, id`,
      )) as Array<{ id: string; name: string; name_key: string; scope: string }>;
      const keys = new Set(named.map((r) => `${r.scope}\n${r.name_key}`));
      for (const row of named) {
        const key = nameKeyOf(row.name);
        if (key === row.name_key || keys.has(`${row.scope}\n${key}`)) continue;
        await q.query(`UPDATE ${table} SET name_key = $1 WHERE id = $2`, [key, row.id]);
        keys.delete(`${row.scope}\n${row.name_key}`);
        keys.add(`${row.scope}\n${key}`);
      }
    }
  }

  async down(q: QueryRunner): Promise<void> {
    // Canonical keys stay: the earlier version compares them as they are.
    await q.query(`ALTER TABLE email_servers DROP COLUMN hosts_by_tenant`);
  }
}
