import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const ROOT = join(import.meta.dirname, '..', '..', '..');

/** Every `MAILROOM_…` name written in the TypeScript files under `dir` (a prefix such as `MAILROOM_S3_` excluded). */
async function namesIn(dir: string): Promise<Set<string>> {
  const names = new Set<string>();
  for (const entry of await readdir(dir, { recursive: true })) {
    if (!entry.endsWith('.ts')) continue;
    const text = await readFile(join(dir, entry), 'utf8');
    for (const [name] of text.matchAll(/MAILROOM_[A-Z0-9_]+/g)) if (!name.endsWith('_')) names.add(name);
  }
  return names;
}

describe('README configuration table', () => {
  it('has a row for every variable the engine reads', async () => {
    const readme = await readFile(join(ROOT, 'README.md'), 'utf8');
    const section = readme.slice(
      readme.indexOf('## Configuration'),
      readme.indexOf('\n## ', readme.indexOf('## Configuration') + 1),
    );
    const rows = new Set([...section.matchAll(/^\| `(MAILROOM_[A-Z0-9_]+)`/gm)].map((m) => m[1]));
    const read = await namesIn(join(ROOT, 'src'));
    assert.ok(read.size > 30, `found the variables (${read.size})`);
    const missing = [...read].filter((name) => !rows.has(name)).sort();
    assert.deepEqual(missing, [], 'variables read in src/ without a row in the README Configuration table');
  });
});
