import { AddressPolicy } from '../../../src/shared/address-policy.js';
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import { mkdir, symlink, writeFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ProxyBypass } from '../../../src/shared/web-proxy.js';
import { loadResponseFile, type FileLoad } from '../../../src/templates/loader.js';
import { renderResponse } from '../../../src/templates/renderer.js';
import { walkResponses, type LoadedResponse, type TreeItem } from '../../../src/templates/types.js';
import { startConnectProxy } from '../../support/connect-proxy.js';
import { makeTemplateDir, responseFile, type TemplateDir } from '../../support/template-dir.js';

/** The test servers are plain http on 127.0.0.1: allowed explicitly, as an operator would (MAILROOM_REMOTE_SRC_ALLOW_*). */
const LOCAL_SRC = { remoteAllowHttp: true, remoteAddresses: AddressPolicy.allowPrivate() };

const REFERENCE = fileURLToPath(new URL('../../fixtures/templates/reference', import.meta.url));
const CANARY = 'root:x:0:0:CANARY-outside-the-templates-directory';

/** The shape of a tree without contents: what an agent's response tree shows. */
function shape(items: TreeItem[]): unknown[] {
  return items.map((i) =>
    i.type === 'group'
      ? { group: i.name, expanded: i.expanded, items: shape(i.items) }
      : { response: i.name, description: i.description, kind: i.kind, src: i.src, available: !i.unavailable },
  );
}

function response(load: FileLoad, name: string): LoadedResponse {
  for (const { response: r } of walkResponses(load.loaded?.items ?? [])) if (r.name === name) return r;
  throw new Error(`no response ${name}`);
}

const ctx = { now: new Date('2024-03-05T14:07:00Z'), locale: 'en-US', timeZone: 'UTC', agent: { name: 'Ann Agent' } };

describe('response file loader', () => {
  it('loads the example of the reference into the expected tree', async () => {
    const load = await loadResponseFile(REFERENCE, 'ResponseFile.xml');
    const plain = (name: string, description: string) => ({
      response: name,
      description,
      kind: 'text',
      src: null,
      available: true,
    });
    assert.deepEqual(shape(load.loaded?.items ?? []), [
      plain('Simple Response with Description', 'This is a plain text response with a description'),
      plain('Simple Response without Description', 'This is the\nresponse'),
      plain('Response with a replacement', 'This is a plain text response with replaceable identifier'),
      plain('Simple Response without Description', 'This is the\nresponse'),
      plain('Multiline Response', 'This is a multiline response with encoded CRLFs'),
      {
        response: 'Image Response',
        description: 'This is an image response using a relative URI',
        kind: 'image',
        src: 'Images/image1.jpg',
        available: true,
      },
      {
        response: 'HTML Response',
        description: 'This is a HTML response using a relative URI',
        kind: 'html',
        src: 'HtmlFiles/HtmlResponse.htm',
        available: true,
      },
      {
        response: 'Image Response with Absolute URI',
        description: 'This is an image response using an absolute URI',
        kind: 'image',
        src: 'www.mitel.com/Images/logo.jpg',
        available: false,
      },
      {
        response: 'External Text Response',
        description: 'This is a text response using an external source',
        kind: 'text',
        src: 'TextFiles/TextResponse.txt',
        available: true,
      },
      {
        group: 'Group 1',
        expanded: false,
        items: [
          plain('Response in Group 1', 'This is the response'),
          {
            group: 'Group 2 Inside Group 1',
            expanded: false,
            items: [plain('Response in Group 2', 'This is the response')],
          },
        ],
      },
      {
        group: 'Group 3',
        expanded: true,
        items: [plain('Response in Group 3', 'This response is in a group that is expanded by default')],
      },
    ]);
    assert.deepEqual(load.problems, [
      {
        file: 'ResponseFile.xml',
        line: 18,
        response: 'Image Response with Absolute URI',
        severity: 'warning',
        reason:
          'remote Src https://www.mitel.com/Images/logo.jpg is not fetched (MAILROOM_TEMPLATES_REMOTE_SRC is off)',
      },
    ]);
    assert.deepEqual(load.dependencies.sort(), [
      'HtmlFiles/HtmlResponse.htm',
      'Images/image1.jpg',
      'TextFiles/TextResponse.txt',
    ]);
  });

  it('renders each kind of the reference example: inner text, CR/LF, identifiers, HTML, image, external text', async () => {
    const load = await loadResponseFile(REFERENCE, 'ResponseFile.xml');
    assert.equal(renderResponse(response(load, 'Multiline Response'), ctx).text, 'Response Line 1\r\nResponse Line 2');
    assert.equal(
      renderResponse(response(load, 'Response with a replacement'), ctx).text,
      'This is the agent name:\nAnn Agent',
    );
    assert.equal(renderResponse(response(load, 'External Text Response'), ctx).text, 'External text for \n');
    const html = renderResponse(response(load, 'HTML Response'), ctx);
    assert.equal(html.html, '<html><body><p>Hello , this is <b>Ann Agent</b>.</p></body></html>\n');
    assert.equal(html.text, undefined);
    const image = renderResponse(response(load, 'Image Response'), ctx);
    assert.equal(image.attachments.length, 1);
    const [attachment] = image.attachments;
    assert.equal(attachment?.contentType, 'image/jpeg');
    assert.equal(attachment?.filename, 'image1.jpg');
    assert.equal(image.html, `<img src="cid:${attachment?.cid}" alt="Image Response">`);
    assert.throws(() => renderResponse(response(load, 'Image Response with Absolute URI'), ctx), /cannot be used/);
  });

  describe('with a scratch directory', () => {
    let t: TemplateDir;
    beforeEach(async () => {
      t = await makeTemplateDir();
      await writeFile(join(t.parent, 'passwd'), CANARY);
    });
    afterEach(() => t.remove());

    async function loadOne(src: string): Promise<FileLoad> {
      await t.write('sub/r.xml', responseFile(`<Response Name="r" Src="${src}" />`));
      return loadResponseFile(t.dir, 'sub/r.xml');
    }

    function assertRefused(load: FileLoad, reason: RegExp): void {
      const r = response(load, 'r');
      assert.ok(r.unavailable, 'the response is unavailable');
      assert.match(r.unavailable, reason);
      assert.equal(r.template, undefined);
      assert.ok(!JSON.stringify(load).includes('CANARY'), 'nothing of the outside file was read');
      assert.equal(load.problems[0]?.severity, 'error');
      assert.equal(load.problems[0]?.line, 3);
    }

    it('refuses ../ traversal, absolute paths, file:// and other schemes', async () => {
      assertRefused(await loadOne('../../etc/passwd'), /'\.\.' is refused/);
      assertRefused(await loadOne('../../passwd'), /'\.\.' is refused/);
      assertRefused(await loadOne('..%2F..%2Fpasswd'), /'\.\.' is refused/);
      assertRefused(await loadOne('..\\..\\passwd'), /'\.\.' is refused/);
      assertRefused(await loadOne(join(t.parent, 'passwd')), /absolute paths are refused/);
      assertRefused(await loadOne('C:\\Windows\\win.ini'), /absolute paths are refused/);
      assertRefused(await loadOne(`file://${join(t.parent, 'passwd')}`), /file: URIs are refused/);
      assertRefused(await loadOne('ftp://example.com/x.txt'), /ftp: URIs are refused/);
      assertRefused(await loadOne('data:text/plain,hello'), /data: URIs are refused/);
    });

    it('refuses a symbolic link (file or folder) that points outside, follows one that stays inside', async () => {
      await symlink(join(t.parent, 'passwd'), join(t.dir, 'sub-link.txt'));
      await mkdir(join(t.dir, 'sub'), { recursive: true });
      await symlink(join(t.parent, 'passwd'), join(t.dir, 'sub', 'out.txt'));
      await symlink(t.parent, join(t.dir, 'sub', 'outdir'));
      assertRefused(await loadOne('out.txt'), /link to a file outside/);
      assertRefused(await loadOne('outdir/passwd'), /link to a file outside/);
      await t.write('inside.txt', 'inside $Agent$');
      await symlink(join(t.dir, 'inside.txt'), join(t.dir, 'sub', 'in.txt'));
      assert.equal(renderResponse(response(await loadOne('in.txt'), 'r'), ctx).text, 'inside Ann Agent');
    });

    it('reads files in the encoding they declare: a byte-order mark, the XML declaration, Word’s <meta charset>', async () => {
      const body = '<ResponseFile>\n<Response Name="Grüße">Grüße, $Agent.Name$</Response>\n' +
        '<Response Name="Word" Src="word.htm" /><Response Name="Text" Src="text.txt" />\n</ResponseFile>\n';
      const utf16 = `<?xml version="1.0" encoding="UTF-16"?>\n${body}`;
      const files: Array<[string, Buffer]> = [
        ['latin.xml', Buffer.from(`<?xml version="1.0" encoding="windows-1252"?>\n${body}`, 'latin1')],
        ['utf16le.xml', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from(utf16, 'utf16le')])],
        ['utf16-unmarked.xml', Buffer.from(utf16, 'utf16le')],
        ['utf8.xml', Buffer.from(`<?xml version="1.0" encoding="utf-8"?>\n${body}`, 'utf8')],
      ];
      await t.write(
        'word.htm',
        Buffer.from(
          '<html><head><meta http-equiv=Content-Type content="text/html; charset=windows-1252"></head><body><p>Schöne Grüße</p></body></html>',
          'latin1',
        ),
      );
      await t.write('text.txt', Buffer.concat([Buffer.from([0xff, 0xfe]), Buffer.from('Tschüß', 'utf16le')]));
      for (const [name, bytes] of files) {
        await t.write(name, bytes);
        const load = await loadResponseFile(t.dir, name);
        assert.deepEqual(load.problems, [], name);
        const greeting = response(load, 'Grüße');
        assert.equal(renderResponse(greeting, ctx).text, 'Grüße, Ann Agent', name);
        assert.match(renderResponse(response(load, 'Word'), ctx).html ?? '', /Schöne Grüße/, name);
        assert.equal(renderResponse(response(load, 'Text'), ctx).text, 'Tschüß', name);
      }
      await t.write('unknown.xml', Buffer.from(`<?xml version="1.0" encoding="x-klingon"?>\n${body}`));
      const unknown = await loadResponseFile(t.dir, 'unknown.xml');
      assert.match(unknown.problems[0]?.reason ?? '', /encoding that cannot be read: 'x-klingon'/);
      assert.equal(unknown.problems[0]?.line, 1);
    });

    it('reports bytes not of the encoding instead of replacing them silently (a warning: the file still loads)', async () => {
      await t.write('ansi.xml', Buffer.from(responseFile('<Response Name="a">\nGrüße</Response>'), 'latin1'));
      const xml = await loadResponseFile(t.dir, 'ansi.xml');
      assert.deepEqual(
        xml.problems.map((p) => [p.line, p.severity]),
        [[4, 'warning']],
      );
      assert.match(xml.problems[0]?.reason ?? '', /not valid utf-8 at line 4, read with replacement characters/);
      assert.equal(renderResponse(response(xml, 'a'), ctx).text, 'Gr\uFFFD\uFFFDe', 'its responses stay usable');
      await t.write('sub/ansi.txt', Buffer.from('Grüße $Agent$', 'latin1'));
      const src = await loadOne('ansi.txt');
      assert.deepEqual(
        src.problems.map((p) => [p.file, p.line, p.response, p.severity]),
        [['sub/r.xml', 3, 'r', 'warning']],
      );
      assert.match(src.problems[0]?.reason ?? '', /Src 'ansi\.txt' is not valid utf-8 at line 1/);
      assert.equal(renderResponse(response(src, 'r'), ctx).text, 'Gr\uFFFD\uFFFDe Ann Agent', 'still usable');
    });

    it('reports a missing Src file with file, line and response', async () => {
      const load = await loadOne('nothing-here.txt');
      assert.deepEqual(load.problems, [
        {
          file: 'sub/r.xml',
          line: 3,
          response: 'r',
          severity: 'error',
          reason: "Src 'nothing-here.txt': 'sub/nothing-here.txt' does not exist",
        },
      ]);
    });

    it('types Src by extension: htm/html, txt/text, the image types, anything else text', async () => {
      const png = Buffer.from('89504e470d0a1a0a', 'hex');
      const files: Record<string, [string | Buffer, string]> = {
        'a.htm': ['<p>$Agent$</p>', 'html'],
        'a.HTML': ['<p>x</p>', 'html'],
        'a.txt': ['t', 'text'],
        'a.text': ['t', 'text'],
        'a.csv': ['x;y', 'text'],
        'a.bmp': [png, 'image/bmp'],
        'a.dib': [png, 'image/bmp'],
        'a.jpg': [png, 'image/jpeg'],
        'a.jpeg': [png, 'image/jpeg'],
        'a.gif': [png, 'image/gif'],
        'a.tif': [png, 'image/tiff'],
        'a.tiff': [png, 'image/tiff'],
        'a.png': [png, 'image/png'],
      };
      for (const [name, [content]] of Object.entries(files)) await t.write(`sub/${name}`, content);
      for (const [name, [, expected]] of Object.entries(files)) {
        const r = response(await loadOne(name), 'r');
        if (expected.startsWith('image/')) {
          assert.equal(r.kind, 'image', name);
          assert.equal(r.images[0]?.contentType, expected, name);
        } else assert.equal(r.kind, expected, name);
      }
    });

    it('turns images referenced by an HTML Src into inline attachments with cid references', async () => {
      const png = Buffer.from('89504e470d0a1a0a0000', 'hex');
      await t.write('sub/html/pic/dot.png', png);
      await t.write(
        'sub/html/page.htm',
        '<p><img alt="a" src="pic/dot.png"> <img src=\'pic/dot.png\'> <img src="https://example.com/x.png"></p>',
      );
      const rendered = renderResponse(response(await loadOne('html/page.htm'), 'r'), ctx);
      const [image] = rendered.attachments;
      assert.equal(rendered.attachments.length, 1, 'the same image is attached once');
      assert.deepEqual(image?.content, png);
      assert.equal(image?.contentType, 'image/png');
      assert.match(image?.cid ?? '', /^[0-9a-f]{24}@mailroom$/);
      assert.equal(
        rendered.html,
        `<p><img alt="a" src="cid:${image?.cid}"> <img src="cid:${image?.cid}"> <img src="https://example.com/x.png"></p>`,
      );
      await t.write('sub/html/page.htm', '<img src="../../../passwd">');
      assertRefused(await loadOne('html/page.htm'), /image '\.\.' is refused/);
    });

    describe('remote Src', () => {
      let server: Server;
      let base: string;
      const requests: string[] = [];
      before(async () => {
        server = createServer((req, res) => {
          requests.push(req.url ?? '');
          const port = (server.address() as AddressInfo).port;
          if (req.url === '/to-metadata.txt') res.writeHead(302, { location: 'http://169.254.169.254/latest/meta-data/' }).end();
          else if (req.url === '/to-inside.txt') res.writeHead(302, { location: `http://127.0.0.2:${port}/hello.txt` }).end();
          else if (req.url === '/big.txt') res.end('x'.repeat(2000));
          else if (req.url === '/hello.txt') res.end('remote hello $Agent.Name$');
          else if (req.url === '/moved.txt') res.writeHead(302, { location: '/hello.txt' }).end();
          else if (req.url === '/loop.txt') res.writeHead(301, { location: '/loop.txt' }).end();
          else if (req.url === '/to-file.txt') res.writeHead(302, { location: 'file:///etc/passwd' }).end();
          else res.writeHead(404).end();
        });
        await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
        base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
      });
      after(() => new Promise<void>((resolve) => server.close(() => resolve())));

      it('is off by default: the response is unavailable with a warning, nothing fetched', async () => {
        const load = await loadOne(`${base}/hello.txt`);
        assert.equal(load.problems[0]?.severity, 'warning');
        assert.match(response(load, 'r').unavailable ?? '', /MAILROOM_TEMPLATES_REMOTE_SRC is off/);
      });

      it('fetches http(s) when enabled, bounded in size, and reports HTTP errors', async () => {
        await t.write(
          'r.xml',
          responseFile(
            `<Response Name="r" Src="${base}/hello.txt" /><Response Name="big" Src="${base}/big.txt" /><Response Name="gone" Src="${base}/gone.txt" />`,
          ),
        );
        const load = await loadResponseFile(t.dir, 'r.xml', { remoteSrc: true, ...LOCAL_SRC, maxSrcBytes: 1000 });
        assert.equal(renderResponse(response(load, 'r'), ctx).text, 'remote hello Ann Agent');
        assert.match(response(load, 'big').unavailable ?? '', /larger than 1000 bytes/);
        assert.match(response(load, 'gone').unavailable ?? '', /HTTP 404/);
      });

      it('follows up to five redirects, only to http(s)', async () => {
        await t.write(
          'r.xml',
          responseFile(
            `<Response Name="moved" Src="${base}/moved.txt" /><Response Name="loop" Src="${base}/loop.txt" /><Response Name="file" Src="${base}/to-file.txt" />`,
          ),
        );
        const load = await loadResponseFile(t.dir, 'r.xml', { remoteSrc: true, ...LOCAL_SRC });
        assert.equal(renderResponse(response(load, 'moved'), ctx).text, 'remote hello Ann Agent');
        assert.match(response(load, 'loop').unavailable ?? '', /more than 5 redirects/);
        assert.match(response(load, 'file').unavailable ?? '', /file: URLs are refused \(redirected from /);
      });

      it('fetches https only and public addresses only unless the operator allows more, every redirect included', async () => {
        await t.write(
          'r.xml',
          responseFile(
            `<Response Name="r" Src="${base}/hello.txt" /><Response Name="meta" Src="${base}/to-metadata.txt" />` +
              `<Response Name="inside" Src="${base}/to-inside.txt" />`,
          ),
        );
        const before = requests.length;
        const strict = await loadResponseFile(t.dir, 'r.xml', { remoteSrc: true });
        assert.match(response(strict, 'r').unavailable ?? '', /https only .*MAILROOM_REMOTE_SRC_ALLOW_HTTP/);
        const httpOnly = await loadResponseFile(t.dir, 'r.xml', { remoteSrc: true, remoteAllowHttp: true });
        assert.match(
          response(httpOnly, 'r').unavailable ?? '',
          /127\.0\.0\.1 is not an allowed address \(loopback\) \(MAILROOM_REMOTE_SRC_ALLOW_PRIVATE allows it\)/,
        );
        assert.equal(requests.length, before, 'nothing was fetched');
        // The server itself is allowed; where it redirects to is checked again, hop by hop.
        const one = await loadResponseFile(t.dir, 'r.xml', {
          remoteSrc: true,
          remoteAllowHttp: true,
          remoteAddresses: AddressPolicy.parse('127.0.0.1'),
        });
        assert.equal(renderResponse(response(one, 'r'), ctx).text, 'remote hello Ann Agent');
        assert.match(response(one, 'meta').unavailable ?? '', /redirected from .*not an allowed address \(cloud metadata\)/);
        assert.match(response(one, 'inside').unavailable ?? '', /127\.0\.0\.2 is not an allowed address \(loopback\)/);
        assert.deepEqual(
          requests.slice(before),
          ['/hello.txt', '/to-metadata.txt', '/to-inside.txt'],
          'no redirect was followed to a refused address',
        );
      });

      it('fetches through MAILROOM_HTTPS_PROXY unless MAILROOM_NO_PROXY names the host', async () => {
        const proxy = await startConnectProxy();
        try {
          await t.write('r.xml', responseFile(`<Response Name="r" Src="${base}/hello.txt" />`));
          const load = await loadResponseFile(t.dir, 'r.xml', { remoteSrc: true, ...LOCAL_SRC, proxy: { url: proxy.url } });
          assert.equal(renderResponse(response(load, 'r'), ctx).text, 'remote hello Ann Agent');
          assert.deepEqual(proxy.forwarded.map((u) => new URL(u).host), [new URL(base).host]);
          const direct = await loadResponseFile(t.dir, 'r.xml', {
            remoteSrc: true, ...LOCAL_SRC,
            proxy: { url: proxy.url, bypass: ProxyBypass.parse('127.0.0.1') },
          });
          assert.equal(renderResponse(response(direct, 'r'), ctx).text, 'remote hello Ann Agent');
          assert.equal(proxy.forwarded.length, 1, 'the bypassed host was fetched directly');
        } finally {
          await proxy.close();
        }
        const unreachable = await loadResponseFile(t.dir, 'r.xml', {
          remoteSrc: true, ...LOCAL_SRC,
          proxy: { url: new URL('http://127.0.0.1:1') },
        });
        assert.match(response(unreachable, 'r').unavailable ?? '', /the proxy 127\.0\.0\.1:1 cannot be reached/);
      });
    });
  });
});
