import assert from 'node:assert/strict';
import { jsonShapeFault, nestsDeeperThan } from '../../../src/api/json-body.js';

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

describe('JSON body size in members and elements', () => {
  it('counts commas outside strings, and stops at the limit', () => {
    assert.equal(jsonShapeFault('[1,2,3]', 32, 3), null);
    assert.equal(jsonShapeFault('[1,2,3,4]', 32, 3), 'items');
    assert.equal(jsonShapeFault('{"a":"x,y,z,w,v"}', 32, 3), null);
    assert.equal(jsonShapeFault(`{"attachments":[${'{},'.repeat(1_000_000)}{}]}`, 32, 10_000), 'items');
    assert.equal(jsonShapeFault('['.repeat(40), 32, 10_000), 'depth');
  });
});
