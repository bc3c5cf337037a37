import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { createLogger } from '../../../src/shared/logger.js';

describe('logger', () => {
  it('puts the instance id on every line and hides secrets', async () => {
    const lines: string[] = [];
    const destination = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = createLogger({ destination, instanceId: 'node-a' });
    logger.child({ tenantId: 't1', serverId: 's1' }).info({ password: 'hunter2' }, 'hello');
    await new Promise((resolve) => setImmediate(resolve));
    const line = JSON.parse(lines[0] as string) as Record<string, unknown>;
    assert.equal(line.instanceId, 'node-a');
    assert.equal(line.tenantId, 't1');
    assert.equal(line.serverId, 's1');
    assert.equal(line.password, '******');
  });
});
