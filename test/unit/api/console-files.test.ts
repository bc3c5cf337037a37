import assert from 'node:assert/strict';
import { mkdtemp, mkdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { CONSOLE_DIR, readConsoleFile } from '../../../src/api/routes/console.js';

describe('web console files', () => {
  let root: string;
  let outside: string;

  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'mailroom-console-'));
    outside = await mkdtemp(join(tmpdir(), 'mailroom-outside-'));
    await mkdir(join(root, 'lib'));
    await writeFile(join(root, 'index.html'), '<!doctype html>');
    await writeFile(join(root, 'lib', 'api.js'), 'export {};');
    await writeFile(join(root, '.secret.js'), 'no');
    await writeFile(join(outside, 'secret.js'), 'no');
  });
  after(async () => {
    await rm(root, { recursive: true, force: true });
    await rm(outside, { recursive: true, force: true });
  });

  it('serves files of the folder with their content type', async () => {
    assert.equal((await readConsoleFile('index.html', root)).type, 'text/html; charset=utf-8');
    const js = await readConsoleFile('lib/api.js', root);
    assert.equal(js.type, 'text/javascript; charset=utf-8');
    assert.equal(js.body.toString(), 'export {};');
  });

  it('answers NOT_FOUND for anything outside, hidden, unlisted or missing', async () => {
    await symlink(join(outside, 'secret.js'), join(root, 'linked.js')).catch(() => undefined);
    for (const bad of [
      '../package.json',
      'lib/../../x.js',
      '/etc/passwd.js',
      '.secret.js',
      'lib/.hidden.js',
      'lib',
      'lib/',
      'lib\\api.js',
      'missing.js',
      'index.ts',
      'lib/api.js\u0000.html',
      '',
    ]) {
      await assert.rejects(readConsoleFile(bad, root), { code: 'NOT_FOUND' }, bad);
    }
  });

  it('finds the console folder of the repository', async () => {
    assert.match((await readConsoleFile('index.html', CONSOLE_DIR)).body.toString(), /<script type="module"/);
  });
});
