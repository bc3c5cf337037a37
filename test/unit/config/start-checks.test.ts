import assert from 'node:assert/strict';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { checkCaDir, listenErrorOf } from '../../../src/config/start-checks.js';
import { isMailroomError } from '../../../src/shared/errors.js';

/** The error a real listen answers (on 127.0.0.1 only). */
async function listenError(host: string, port: number): Promise<unknown> {
  const server = createServer();
  server.listen(port, host);
  const [err] = (await Promise.race([once(server, 'error'), once(server, 'listening').then(() => [null])])) as [
    unknown,
  ];
  server.close();
  return err;
}

describe('start checks', () => {
  let dir: string;
  let taken: Server;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'mailroom-start-checks-'));
    taken = createServer().listen(0, '127.0.0.1');
    await once(taken, 'listening');
  });
  after(async () => {
    taken.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('refuses a MAILROOM_CA_DIR that does not exist or is not a directory, naming it', async () => {
    await checkCaDir(undefined);
    await checkCaDir(dir);
    const file = join(dir, 'ca.pem');
    await writeFile(file, 'x');
    for (const [path, why] of [
      [join(dir, 'nonexistent'), /does not exist/],
      [file, /is not a directory/],
    ] as const) {
      await assert.rejects(
        checkCaDir(path),
        (err: unknown) =>
          isMailroomError(err, 'CONFIG_INVALID') && err.field === 'MAILROOM_CA_DIR' && why.test(err.message),
      );
    }
  });

  it('names MAILROOM_HTTP_PORT for a port in use and MAILROOM_HTTP_HOST for an address not of this machine', async () => {
    const port = (taken.address() as { port: number }).port;
    const inUse = listenErrorOf(await listenError('127.0.0.1', port), '127.0.0.1', port);
    assert.ok(isMailroomError(inUse, 'CONFIG_INVALID'), String(inUse));
    assert.equal(inUse.field, 'MAILROOM_HTTP_PORT');
    assert.match(inUse.message, new RegExp(`port ${port} is already in use`));
    // 192.0.2.1 (TEST-NET-1, RFC 5737) is no address of this machine: the bind is refused locally.
    const foreign = listenErrorOf(await listenError('192.0.2.1', 0), '192.0.2.1', 0);
    assert.ok(isMailroomError(foreign, 'CONFIG_INVALID'), String(foreign));
    assert.equal(foreign.field, 'MAILROOM_HTTP_HOST');
    const other = new Error('something else');
    assert.equal(listenErrorOf(other, '127.0.0.1', 1), other);
  });
});
