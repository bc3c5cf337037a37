import assert from 'node:assert/strict';
import { fileURLToPath } from 'node:url';
import { checkDirectory, formatProblem } from '../../../src/templates/check-directory.js';
import { findSplitIdentifiers } from '../../../src/templates/checker.js';
import { makeTemplateDir, responseFile, type TemplateDir } from '../../support/template-dir.js';

const SHIPPED = fileURLToPath(new URL('../../../templates', import.meta.url));

describe('response file checker', () => {
  it('finds identifiers split by markup, as Word leaves them', () => {
    const html = [
      '<p>Dear $From.Name$,</p>',
      '<p>$Agent.<span class=SpellE>Name</span>$ and $<b>Subject</b>$</p>',
      '<p>$Agent<!-- c -->.FirstName$</p><p>$5 and $10</p>',
    ].join('\n');
    assert.deepEqual(findSplitIdentifiers(html), [
      { identifier: '$Agent.Name$', line: 2 },
      { identifier: '$Subject$', line: 2 },
      { identifier: '$Agent.FirstName$', line: 3 },
    ]);
    assert.deepEqual(findSplitIdentifiers('<p class="$x">$Agent.Name$</p>'), []);
  });

  it('passes the shipped example set without errors or warnings', async () => {
    const result = await checkDirectory(SHIPPED);
    assert.deepEqual(result.problems, []);
    assert.deepEqual(result.files, ['billing.xml', 'support.xml']);
  });

  describe('a directory with problems', () => {
    let t: TemplateDir;
    before(async () => {
      t = await makeTemplateDir({
        'good.xml': responseFile(
          '<Response Name="word" Src="word.htm" />\n<Response Name="typo">Hi $Agent.Nmae$</Response>\n<Response Name="out" Src="../secret.txt" />',
        ),
        'word.htm': '<html>\n<p>Hello $From.<span class=SpellE>Name</span>$</p>\n</html>',
        'broken.xml': responseFile('<Response Name="x">unclosed'),
      });
    });
    after(() => t.remove());

    it('reports every problem with file, line, response and reason, and counts errors', async () => {
      const result = await checkDirectory(t.dir);
      assert.deepEqual(result.problems.map(formatProblem), [
        "broken.xml:4: error: XML is not well-formed: Expected closing tag 'Response' (opened in line 3, col 1) instead of closing tag 'ResponseFile'.",
        "good.xml:3: error: $From.Name$ is split by HTML markup (Src 'word.htm' line 2) and will not be replaced; type it as one continuous string (response 'word')",
        "good.xml:4: warning: $Agent.Nmae$ is not a replaceable identifier; it is left as written (response 'typo')",
        "good.xml:5: error: '..' is refused in Src '../secret.txt': files must stay inside the templates directory (response 'out')",
      ]);
      assert.equal(result.errors, 3);
      assert.equal(result.warnings, 1);
    });
  });

  it('warns of a response no one can choose: a second of the same name in the same group', async () => {
    const t = await makeTemplateDir({
      'twice.xml': responseFile(
        [
          '<Response Name="Greeting">Hello</Response>',
          '<Group Name="German"><Response Name="Greeting">Guten Tag</Response>',
          '<Response Name="Greeting">Grüß Gott</Response></Group>',
        ].join('\n'),
      ),
    });
    try {
      const result = await checkDirectory(t.dir);
      assert.deepEqual(result.problems.map(formatProblem), [
        "twice.xml:5: warning: another response of this group is named 'Greeting' before it: only the first can be chosen; rename one (response 'Greeting')",
      ]);
    } finally {
      await t.remove();
    }
  });
});

