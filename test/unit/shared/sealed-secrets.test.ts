import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { isMailroomError } from '../../../src/shared/errors.js';
import { keyIdOf, parseSecretKey, SecretSealer } from '../../../src/shared/sealed-secrets.js';

const ctx = { tenantId: 't1', rowId: 'r1', field: 'imap.password' };

function assertUnreadable(fn: () => unknown): void {
  assert.throws(fn, (err: unknown) => isMailroomError(err, 'SECRET_UNREADABLE'));
}

describe('SecretSealer', () => {
  const key = randomBytes(32);
  const sealer = new SecretSealer(key);

  it('round-trips and never contains the plaintext', () => {
    const sealed = sealer.seal('correct horse battery staple', ctx);
    assert.ok(!sealed.includes('horse'));
    assert.match(sealed, /^mr1\.[0-9a-f]{8}\./);
    assert.equal(sealer.open(sealed, ctx), 'correct horse battery staple');
  });

  it('uses a fresh IV each time', () => {
    assert.notEqual(sealer.seal('x', ctx), sealer.seal('x', ctx));
  });

  it('rejects a tampered ciphertext, tag or IV', () => {
    const sealed = sealer.seal('secret', ctx);
    const parts = sealed.split('.');
    for (const index of [2, 3, 4]) {
      const copy = [...parts];
      const bytes = Buffer.from(copy[index] as string, 'base64url');
      bytes[0] = (bytes[0] as number) ^ 1;
      copy[index] = bytes.toString('base64url');
      assertUnreadable(() => sealer.open(copy.join('.'), ctx));
    }
  });

  it('binds the value to tenant, row and field', () => {
    const sealed = sealer.seal('secret', ctx);
    assertUnreadable(() => sealer.open(sealed, { ...ctx, tenantId: 't2' }));
    assertUnreadable(() => sealer.open(sealed, { ...ctx, rowId: 'r2' }));
    assertUnreadable(() => sealer.open(sealed, { ...ctx, field: 'smtp.password' }));
  });

  it('refuses another key, and opens with a previous key after rotation', () => {
    const sealed = sealer.seal('secret', ctx);
    assertUnreadable(() => new SecretSealer(randomBytes(32)).open(sealed, ctx));
    const rotated = new SecretSealer(randomBytes(32), [key]);
    assert.equal(rotated.open(sealed, ctx), 'secret');
    assert.notEqual(rotated.keyId, keyIdOf(key));
  });

  it('refuses unknown envelopes', () => {
    assertUnreadable(() => sealer.open('plaintext-password', ctx));
    assertUnreadable(() => sealer.open('mr0.a.b.c.d', ctx));
  });

  it('parses only 32-byte base64 keys', () => {
    assert.equal(parseSecretKey(randomBytes(32).toString('base64'), 'K').length, 32);
    assert.throws(() => parseSecretKey(randomBytes(16).toString('base64'), 'K'), /K must be 32 random bytes/);
  });
});
