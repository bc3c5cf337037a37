import assert from 'node:assert/strict';
import { runCli } from '../support/processes.js';
import { makeTemplateDir, responseFile, type TemplateDir } from '../support/template-dir.js';

describe('mailroom templates check', function () {
  this.timeout(60_000);
  let t: TemplateDir;
  before(async () => {
    t = await makeTemplateDir({
      'ok.xml': responseFile('<Response Name="a">Hello $Agent$</Response>'),
    });
  });
  after(() => t.remove());

  it('exits 0 on a clean directory and 1 on errors, naming file, line and reason', async () => {
    const clean = await runCli(['templates', 'check', '--dir', t.dir], {});
    assert.equal(clean.code, 0, clean.stderr);
    assert.match(clean.stdout, /1 response files, 0 errors, 0 warnings/);

    await t.write('bad.xml', responseFile('<Response Name="w" Src="w.htm" />\n<Response>x</Response>'));
    await t.write('split.xml', responseFile('<Response Name="w" Src="w.htm" />'));
    await t.write('w.htm', '<p>$Agent.<span>Name</span>$</p>');
    const broken = await runCli(['templates', 'check', '--dir', t.dir], {});
    assert.equal(broken.code, 1);
    assert.match(broken.stdout, /^bad\.xml:4: error: <Response> needs a Name attribute$/m);
    assert.match(broken.stdout, /^split\.xml:3: error: \$Agent\.Name\$ is split by HTML markup .*\(response 'w'\)$/m);
    assert.match(broken.stdout, /3 response files, 2 errors, 0 warnings/);

    const json = await runCli(['--json', 'templates', 'check'], { MAILROOM_TEMPLATES_DIR: t.dir });
    assert.equal(json.code, 1);
    assert.equal((JSON.parse(json.stdout) as { errors: number }).errors, 2);
  });

  it('warns of files not in the encoding they declare (or UTF-8 by default), the XML and its Src alike', async () => {
    const ansi = await makeTemplateDir({
      // Saved in Windows-1252 (ANSI), read as UTF-8: "Grüße" would silently become "Gr��e".
      'ansi.xml': Buffer.from(responseFile('<Response Name="a">Schöne Grüße</Response>'), 'latin1'),
      'src.xml': responseFile('<Response Name="t" Src="t.txt" />\n<Response Name="h" Src="h.htm" />'),
      't.txt': Buffer.from('Hallo\nSchöne Grüße', 'latin1'),
      'h.htm': Buffer.from('<p>Schöne Grüße</p>', 'latin1'),
    });
    try {
      const checked = await runCli(['templates', 'check', '--dir', ansi.dir], {});
      assert.equal(checked.code, 0, checked.stdout);
      assert.match(checked.stdout, /^ansi\.xml:3: warning: the file is not valid utf-8 at line 3, .*save it as UTF-8/m);
      assert.match(
        checked.stdout,
        /^src\.xml:3: warning: Src 't\.txt' is not valid utf-8 at line 2, .*\(response 't'\)$/m,
      );
      assert.match(
        checked.stdout,
        /^src\.xml:4: warning: Src 'h\.htm' is not valid utf-8 at line 1, .*charset.*\(response 'h'\)$/m,
      );
      assert.match(checked.stdout, /2 response files, 0 errors, 3 warnings/);
    } finally {
      await ansi.remove();
    }
  });
});
