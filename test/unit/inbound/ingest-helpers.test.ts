import assert from 'node:assert/strict';
import { planBatches } from '../../../src/inbound/batches.js';
import { uidSet } from '../../../src/inbound/imap-session.js';
import { mapLimited } from '../../../src/shared/map-limited.js';
import { withoutNul } from '../../../src/store/inbound-repositories.js';

describe('ingest helpers', () => {
  describe('uidSet', () => {
    it('writes runs as ranges, in ascending order, each UID once', () => {
      assert.equal(uidSet([1, 2, 3, 4]), '1:4');
      assert.equal(uidSet([7, 1, 2, 3, 5, 9, 10, 10]), '1:3,5,7,9:10');
      assert.equal(uidSet([42]), '42');
      assert.equal(uidSet([]), '');
    });
  });

  describe('mapLimited', () => {
    it('keeps input order and never runs more than the limit at once', async () => {
      let running = 0;
      let most = 0;
      const out = await mapLimited([30, 5, 20, 1, 10, 2], 2, async (ms, i) => {
        running += 1;
        most = Math.max(most, running);
        await new Promise((resolve) => setTimeout(resolve, ms));
        running -= 1;
        return `${i}:${ms}`;
      });
      assert.deepEqual(out, ['0:30', '1:5', '2:20', '3:1', '4:10', '5:2']);
      assert.equal(most, 2);
    });

    it('rejects with the first failure', async () => {
      await assert.rejects(
        mapLimited([1, 2, 3], 2, async (n) => {
          if (n === 2) throw new Error('boom 2');
          return n;
        }),
        /boom 2/,
      );
    });
  });

  describe('withoutNul', () => {
    it('returns a clean value itself, without a copy', () => {
      const row = { subject: 'Hello', to: [{ address: 'a@b.example', name: 'A' }], when: new Date(0) };
      assert.equal(withoutNul(row), row);
    });

    it('removes U+0000 and replaces lone surrogates at any depth, leaving the input as it was', () => {
      const row = {
        subject: 'a\u0000b',
        nested: { list: ['ok', 'x\uD800y'], when: new Date(0) },
        raw: Buffer.from([0, 1]),
      };
      const clean = withoutNul(row);
      assert.equal(clean.subject, 'ab');
      assert.deepEqual(clean.nested.list, ['ok', 'x\uFFFDy']);
      assert.ok(clean.nested.when instanceof Date);
      assert.ok(Buffer.isBuffer(clean.raw));
      assert.equal(row.subject, 'a\u0000b');
    });
  });

  describe('planBatches', () => {
    const limits = { maxCount: 3, maxBytes: 100, maxMessageBytes: 60 };
    it('bounds batches by count and bytes, and sets apart what is over the message limit', () => {
      const messages = [
        { uid: 1, size: 10 },
        { uid: 2, size: 10 },
        { uid: 3, size: 10 },
        { uid: 4, size: 10 },
        { uid: 5, size: 50 },
        { uid: 6, size: 50 },
        { uid: 7, size: 70 },
        { uid: 8, size: 10 },
      ];
      const batches = planBatches(messages, limits).map((b) => ({
        fetch: b.fetch.map((m) => m.uid),
        tooLarge: b.tooLarge.map((m) => m.uid),
      }));
      assert.deepEqual(batches, [
        { fetch: [1, 2, 3], tooLarge: [] },
        { fetch: [4, 5], tooLarge: [] },
        { fetch: [6, 8], tooLarge: [7] },
      ]);
    });
  });
});
