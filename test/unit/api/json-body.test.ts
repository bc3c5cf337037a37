import assert from 'node:assert/strict';
import { nestsDeeperThan } from '../../../src/api/json-body.js';

describe('JSON body depth', () => {
  const table: [string, number, boolean][] = [
    ['{}', 1, false],
    ['{"a":{}}', 1, true],
    ['{"a":[1,{"b":[]}]}', 4, false],
    ['{"a":[1,{"b":[]}]}', 3, true],
    ['[[],[],[],[]]', 2, false],
    ['{"a":"[[[[[[[[[[{{{{{{{{"}', 1, false],
    ['{"a":"\\\\"}', 1, false],
    ['{"a":"\\"[[[[["}', 1, false],
    ['"just a string"', 0, false],
    ['[' + '['.repeat(31) + ']'.repeat(32), 32, false],
    ['['.repeat(33) + ']'.repeat(33), 32, true],
    ['['.repeat(400_000), 32, true],
    ['not json at all {{', 1, true],
  ];
  for (const [text, max, deeper] of table) {
    it(`${text.length > 40 ? `${text.slice(0, 20)}… (${text.length} chars)` : text} deeper than ${max}: ${deeper}`, () =>
      assert.equal(nestsDeeperThan(text, max), deeper));
  }
});
