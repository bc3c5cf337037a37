import assert from 'node:assert/strict';
import { isDatabaseUnreachable, isTransientStoreError } from '../../../src/store/transient-errors.js';

const withCode = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

describe('isTransientStoreError: the database failing, not an answer about the data', () => {
  it('takes connection, rollback, resource and shutdown failures as transient', () => {
    for (const code of ['08006', '08003', '40001', '40P01', '53300', '57P01', '57014', '58030', 'ECONNRESET']) {
      assert.equal(isTransientStoreError(withCode(code)), true, code);
    }
    assert.equal(isTransientStoreError(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isTransientStoreError(new Error('timeout exceeded when trying to connect')), true);
  });

  it('takes refused values, constraints, limits and triggers as answers about the data', () => {
    for (const code of ['22007', '22008', '22P05', '23505', '23514', '54000', 'P0001', '42P01']) {
      assert.equal(isTransientStoreError(withCode(code)), false, code);
    }
    assert.equal(isTransientStoreError(new RangeError('Invalid time value')), false);
    assert.equal(isTransientStoreError(undefined), false);
  });
});

describe('isDatabaseUnreachable: the database cannot be reached now (503 DATABASE_UNAVAILABLE)', () => {
  it('takes a refused or lost connection and a server shutting down or starting as unreachable', () => {
    for (const code of [
      '08006',
      '08001',
      '57P01',
      '57P02',
      '57P03',
      '53300',
      'ECONNREFUSED',
      'ECONNRESET',
      'ETIMEDOUT',
    ]) {
      assert.equal(isDatabaseUnreachable(withCode(code)), true, code);
    }
    assert.equal(isDatabaseUnreachable(new Error('Connection terminated unexpectedly')), true);
    assert.equal(isDatabaseUnreachable(new Error('timeout exceeded when trying to connect')), true);
  });

  it('does not take a rollback, a cancelled statement, an answer about the data or a file error for it', () => {
    for (const code of ['40001', '40P01', '57014', '23505', '22P05', '42P01', 'ENOENT', 'ENOSPC', 'EACCES']) {
      assert.equal(isDatabaseUnreachable(withCode(code)), false, code);
    }
    assert.equal(isDatabaseUnreachable(new Error('boom')), false);
    assert.equal(isDatabaseUnreachable(undefined), false);
  });
});
