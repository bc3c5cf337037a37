import { AddressPolicy } from '../../../src/shared/address-policy.js';
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { rm, symlink, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { TemplateCatalog, type ReloadReport } from '../../../src/templates/catalog.js';
import { renderResponse } from '../../../src/templates/renderer.js';
import { walkResponses } from '../../../src/templates/types.js';
import { FakeClock } from '../../support/fake-clock.js';
import { makeTemplateDir, responseFile, type TemplateDir } from '../../support/template-dir.js';

/** The test servers are plain http on 127.0.0.1: allowed explicitly, as an operator would (MAILROOM_REMOTE_SRC_ALLOW_*). */
const LOCAL_SRC = { remoteAllowHttp: true, remoteAddresses: AddressPolicy.allowPrivate() };

const ctx = { now: new Date(0), locale: 'en-US', timeZone: 'UTC', agent: { name: 'Ann' } };

function render(catalog: TemplateCatalog, file: string, name: string): string | undefined {
  for (const { response } of walkResponses(catalog.get(file)?.items ?? [])) {
    if (response.name === name) return renderResponse(response, ctx).text;
  }
  return undefined;
}

/** Waits on 'reloaded' events (an editor's write may come as several) until the render shows `expected`. */
async function reloadedTo(catalog: TemplateCatalog, file: string, name: string, expected: string): Promise<void> {
  const signal = AbortSignal.timeout(10_000);
  while (render(catalog, file, name) !== expected) {
    await (once(catalog.events, 'reloaded', { signal }) as Promise<[ReloadReport]>);
  }
}

describe('template catalog', () => {
  let t: TemplateDir;
  let catalog: TemplateCatalog;

  beforeEach(async () => {
    t = await makeTemplateDir({
      'a.xml': responseFile('<Response Name="hi">Hello v1 $Agent$</Response>'),
      'team/b.xml': responseFile('<Response Name="ext" Src="ext.txt" />'),
      'team/ext.txt': 'external v1',
      'ignored.txt': 'not a response file',
    });
    catalog = new TemplateCatalog({ dir: t.dir, watch: false, pollIntervalMs: 0 });
  });
  afterEach(async () => {
    await catalog.stop();
    await t.remove();
  });

  it('loads every *.xml below the directory', async () => {
    const report = await catalog.reload();
    assert.deepEqual(report.changed, ['a.xml', 'team/b.xml']);
    assert.deepEqual(catalog.files(), ['a.xml', 'team/b.xml']);
    assert.equal(render(catalog, 'a.xml', 'hi'), 'Hello v1 Ann');
    assert.equal(render(catalog, 'team/b.xml', 'ext'), 'external v1');
    assert.deepEqual((await catalog.reload()).changed, [], 'nothing changed, nothing reloaded');
  });

  it('uses an edited file for the next render', async () => {
    await catalog.reload();
    await t.write('a.xml', responseFile('<Response Name="hi">Hello version 2 $Agent$</Response>'));
    assert.deepEqual((await catalog.reload()).changed, ['a.xml']);
    assert.equal(render(catalog, 'a.xml', 'hi'), 'Hello version 2 Ann');
  });

  it('reloads a response file when a Src file it uses changes', async () => {
    await catalog.reload();
    await t.write('team/ext.txt', 'external version 2');
    assert.deepEqual((await catalog.reload()).changed, ['team/b.xml']);
    assert.equal(render(catalog, 'team/b.xml', 'ext'), 'external version 2');
  });

  it('keeps the last good version of a broken file and reports file, line and reason', async () => {
    await catalog.reload();
    await t.write('a.xml', responseFile('<Response Name="hi">Hello v3\n<Group Name="g">'));
    const report = await catalog.reload();
    assert.equal(render(catalog, 'a.xml', 'hi'), 'Hello v1 Ann', 'the last good version stays in use');
    assert.equal(report.problems.length, 1);
    assert.deepEqual(
      { ...report.problems[0], reason: undefined },
      { file: 'a.xml', line: 5, severity: 'error', reason: undefined },
    );
    assert.match(report.problems[0]?.reason ?? '', /not well-formed/);
    await t.write('a.xml', responseFile('<Response Name="hi">Hello fixed</Response>'));
    assert.deepEqual((await catalog.reload()).problems, [], 'fixing it clears the problem');
    assert.equal(render(catalog, 'a.xml', 'hi'), 'Hello fixed');
  });

  it('reports a broken new file and offers nothing for it', async () => {
    await t.write(
      'new.xml',
      '<?xml version="1.0"?>\n<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<ResponseFile/>',
    );
    const report = await catalog.reload();
    assert.equal(catalog.get('new.xml'), undefined);
    assert.deepEqual(
      report.problems.map((p) => [p.file, p.line]),
      [['new.xml', 2]],
    );
  });

  it('drops removed files and refuses a response file linked from outside', async () => {
    await catalog.reload();
    await rm(join(t.dir, 'a.xml'));
    await writeFile(join(t.parent, 'outside.xml'), responseFile('<Response Name="x">CANARY</Response>'));
    await symlink(join(t.parent, 'outside.xml'), join(t.dir, 'linked.xml'));
    const report = await catalog.reload();
    assert.deepEqual(report.removed, ['a.xml']);
    assert.equal(catalog.get('linked.xml'), undefined);
    assert.match(report.problems.find((p) => p.file === 'linked.xml')?.reason ?? '', /outside the templates directory/);
  });

  it('reports a missing directory instead of failing', async () => {
    const missing = new TemplateCatalog({ dir: join(t.parent, 'nope'), watch: false, pollIntervalMs: 0 });
    const report = await missing.reload();
    assert.match(report.problems[0]?.reason ?? '', /templates directory/);
    assert.deepEqual(missing.files(), []);
  });

  it('reloads by itself on a file system event (waits for the event, no sleeping)', async function () {
    catalog = new TemplateCatalog({ dir: t.dir, watch: true, pollIntervalMs: 0, debounceMs: 20 });
    await catalog.start();
    const reloaded = reloadedTo(catalog, 'a.xml', 'hi', 'Hello watched Ann');
    await t.write('a.xml', responseFile('<Response Name="hi">Hello watched $Agent$</Response>'));
    await reloaded;
  });

  it('notices changes with the periodic check alone', async () => {
    catalog = new TemplateCatalog({ dir: t.dir, watch: false, pollIntervalMs: 25 });
    await catalog.start();
    const reloaded = reloadedTo(catalog, 'team/b.xml', 'ext', 'polled');
    await t.write('team/ext.txt', 'polled');
    await reloaded;
  });

  describe('remote Src', () => {
    let server: Server;
    let base: string;
    let answer: (req: IncomingMessage, res: ServerResponse) => void;
    let requests: number;
    before(async () => {
      server = createServer((req, res) => {
        requests++;
        answer(req, res);
      });
      await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    beforeEach(() => {
      requests = 0;
    });
    after(() => new Promise<void>((resolve) => server.close(() => resolve())));

    it('sees an edit made while the file was loading at the next reload', async () => {
      const xml = (text: string): string =>
        responseFile(`<Response Name="hi">${text}</Response><Response Name="r" Src="${base}/r.txt" />`);
      await t.write('a.xml', xml('Hello v1'));
      // The edit lands while the remote Src is being fetched, after the XML was read.
      answer = (_req, res) => void t.write('a.xml', xml('Hello, edited during the load')).then(() => res.end('remote'));
      catalog = new TemplateCatalog({ dir: t.dir, watch: false, pollIntervalMs: 0, remoteSrc: true, ...LOCAL_SRC });
      await catalog.reload();
      assert.equal(render(catalog, 'a.xml', 'hi'), 'Hello v1');
      answer = (_req, res) => res.end('remote');
      assert.deepEqual((await catalog.reload()).changed, ['a.xml']);
      assert.equal(render(catalog, 'a.xml', 'hi'), 'Hello, edited during the load');
    });

    it('fetches a remote Src that failed again after a backoff, without an edit', async () => {
      await t.write('r.xml', responseFile(`<Response Name="r" Src="${base}/r.txt" />`));
      answer = (_req, res) => res.writeHead(503).end('busy');
      const clock = new FakeClock();
      catalog = new TemplateCatalog({
        dir: t.dir,
        watch: false,
        pollIntervalMs: 0,
        remoteSrc: true, ...LOCAL_SRC,
        remoteRetryMs: 1_000,
        clock,
      });
      await catalog.reload();
      assert.throws(() => render(catalog, 'r.xml', 'r'), /HTTP 503/, 'unavailable while the server is busy');
      assert.equal(requests, 1);
      answer = (_req, res) => res.end('remote $Agent$');
      assert.deepEqual((await catalog.reload()).changed, [], 'not before the backoff');
      assert.equal(requests, 1);
      clock.advance(1_000);
      assert.deepEqual((await catalog.reload()).changed, ['r.xml']);
      assert.equal(render(catalog, 'r.xml', 'r'), 'remote Ann');
      clock.advance(60_000);
      assert.deepEqual((await catalog.reload()).changed, [], 'once fetched, only an edit reloads it');
      assert.equal(requests, 2);
    });
  });
});
