import assert from 'node:assert/strict';
import { once } from 'node:events';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createAccounts } from '../../src/accounts/index.js';
import { startSmtpHarness, type SmtpHarness } from '../../src/harness/smtp-harness.js';
import { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { Store } from '../../src/store/store.js';
import { createTestDatabase, quietLogger } from '../support/database.js';
import { eventually } from '../support/mail.js';
import { createSendingAccount } from '../support/outbound-fixture.js';
import { freePort, startEngineProcess, waitForHttp } from '../support/processes.js';
import { postgresMissing, skipWithout } from '../support/requirements.js';

const MESSAGES = 500;
const KILLS = 20;

/**
 * Outbound crash safety: the engine is SIGKILLed at random moments while 500 messages are being
 * accepted and delivered, 20 times. Every message that got a 202 arrives; duplicates are at most
 * one per kill; nothing that got an error answer is sent.
 */
describe('outbound crash safety (SIGKILL while accepting and delivering)', function () {
  this.timeout(300_000);
  let smtp: SmtpHarness;
  let store: Store;
  let dir: string;
  let env: Record<string, string>;
  let path: string;

  before(async function () {
    skipWithout(this, await postgresMissing());
    smtp = await startSmtpHarness({});
    const key = randomBytes(32);
    env = {
      MAILROOM_DATABASE_URL: await createTestDatabase(),
      MAILROOM_SECRET_KEY: key.toString('base64'),
      MAILROOM_API_TOKEN: 'crash-token',
      MAILROOM_LOG_LEVEL: 'warn',
    };
    store = await Store.open({ databaseUrl: env.MAILROOM_DATABASE_URL }, quietLogger);
    const accounts = createAccounts(store, new SecretSealer(key), quietLogger);
    const { tenantId, destinationId } = await createSendingAccount(accounts, {
      tenant: 'Crash out',
      address: 'out@example.com',
      relayPort: smtp.port,
    });
    path = `/api/v1/tenants/${tenantId}/destinations/${destinationId}/outbound`;
    dir = await mkdtemp(join(tmpdir(), 'mailroom-crash-out-'));
  });

  after(async () => {
    await store?.close();
    await smtp?.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it(`delivers every accepted message across ${KILLS} kills`, async () => {
    const accepted = new Set<string>();
    const refused = new Set<string>();
    let next = 0;
    const sendSome = async (base: string, stopAt: () => boolean): Promise<void> => {
      while (next < MESSAGES && !stopAt()) {
        const n = next;
        try {
          const res = await fetch(`${base}${path}`, {
            method: 'POST',
            headers: { authorization: 'Bearer crash-token', 'content-type': 'application/json' },
            body: JSON.stringify({ to: ['c@example.net'], subject: `crash ${n}`, text: `n=${n}` }),
          });
          const body = (await res.json()) as { id?: string };
          if (res.status === 202 && body.id) {
            accepted.add(body.id);
            next += 1;
          } else {
            refused.add(`crash ${n}`);
            process.stdout.write(`refused ${res.status} ${JSON.stringify(body)}\n`);
            next += 1;
          }
        } catch {
          return; // the engine was killed mid-request: that message may or may not have been kept
        }
      }
    };
    for (let kill = 0; kill < KILLS; kill++) {
      const port = await freePort();
      const { child } = startEngineProcess({ ...env, MAILROOM_HTTP_PORT: String(port) }, dir);
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, child);
      let killed = false;
      const sending = sendSome(`http://127.0.0.1:${port}`, () => killed);
      await new Promise((resolve) => setTimeout(resolve, 50 + Math.random() * 400));
      killed = true;
      child.kill('SIGKILL');
      await once(child, 'exit');
      await sending;
    }
    const port = await freePort();
    const { child, output } = startEngineProcess({ ...env, MAILROOM_HTTP_PORT: String(port) }, dir);
    try {
      await waitForHttp(`http://127.0.0.1:${port}/healthz`, 60_000, child);
      await sendSome(`http://127.0.0.1:${port}`, () => false);
      await eventually(
        async () => {
          const ids = new Set(smtp.messages.map((m) => idOf(m.raw)));
          return [...accepted].every((id) => ids.has(id)) ? true : undefined;
        },
        120_000,
        200,
      );
      // Every accepted message ends on record as sent: one delivered just before a kill (its file
      // already out of the queue, in sent/) is recorded when the engine starts again.
      await eventually(
        async () => {
          const rows = await store.query<{ n: string }>(
            `SELECT count(*) AS n FROM outbound_messages WHERE id = ANY($1::uuid[]) AND status <> 'sent'`,
            [[...accepted]],
          );
          return Number(rows[0]?.n) === 0 ? true : undefined;
        },
        30_000,
        200,
      );
    } finally {
      child.kill('SIGTERM');
      await once(child, 'exit');
    }
    const received = smtp.messages.map((m) => idOf(m.raw));
    const duplicates = received.length - new Set(received).size;
    process.stdout.write(
      `      accepted ${accepted.size}, received ${received.length}, duplicates ${duplicates}, refused ${refused.size}\n`,
    );
    assert.ok(accepted.size >= MESSAGES - KILLS, `most messages were accepted: ${accepted.size}`);
    assert.ok(duplicates <= KILLS, `at most one duplicate per kill: ${duplicates}\n${output()}`);
    for (const subject of refused) {
      assert.ok(
        !smtp.messages.some((m) => m.raw.toString().includes(`Subject: ${subject}\r\n`)),
        `${subject} was refused yet sent`,
      );
    }
  });
});

function idOf(raw: Buffer): string {
  return raw.toString('utf8').match(/^Message-ID: <(?:mailroom\.)?([^@>]+)@/im)?.[1] ?? '';
}
