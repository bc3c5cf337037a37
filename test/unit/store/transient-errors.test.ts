import assert from 'node:assert/strict';
import { isTransientStoreError } from '../../../src/store/transient-errors.js';

describe('isTransientStoreError: the database failing, not an answer about the data', () => {
  const withCode = (code: string, message = 'x'): Error => Object.assign(new Error(message), { code });

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
