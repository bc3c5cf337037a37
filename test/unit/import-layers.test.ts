import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ESLint } from 'eslint';

/**
 * The one-way dependencies between the folders of src/ are a lint rule (eslint.config.js, LAYERS):
 * these snippets are linted as if they were files of the repository, to show that a crossing fails
 * `npm run lint` and that the imports the layers allow pass.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const RULE = 'no-restricted-imports';

describe('import layers (eslint.config.js)', function () {
  this.timeout(30_000);
  const eslint = new ESLint({ cwd: ROOT });

  /** The layer messages ESLint reports for `code` placed at `file` (relative to the repository). */
  async function crossings(file: string, code: string): Promise<string[]> {
    const [result] = await eslint.lintText(code, { filePath: join(ROOT, file) });
    assert.ok(result, file);
    return result.messages.filter((m) => m.ruleId === RULE).map((m) => m.message);
  }

  const refused: Array<[file: string, code: string, names: string]> = [
    ['src/outbound/x.ts', "import { classifyMessage } from '../inbound/message/classify.js';", 'src/outbound/'],
    [
      'src/inbound/message/x.ts',
      "import type { OutboundService } from '../../outbound/outbound-service.js';",
      'src/inbound/',
    ],
    ['src/inbound/x.ts', "export { createTemplates } from '../templates/index.js';", 'src/inbound/'],
    ['src/outbound/x.ts', "import { loadConfig } from '../config/config.js';", 'src/outbound/'],
    ['src/store/x.ts', "import { createAccounts } from '../accounts/index.js';", 'src/store/'],
    ['src/shared/x.ts', "import { Store } from '../store/store.js';", 'src/shared/'],
    ['src/accounts/x.ts', "import { Engine } from '../main.js';", 'src/accounts/'],
    ['src/api/routes/x.ts', "import { program } from '../../cli/program.js';", 'src/api/'],
    ['src/harness/fake-imap/x.ts', "import { LOOP_HEADER } from '../../inbound/x.js';", 'src/harness/'],
  ];
  for (const [file, code, names] of refused) {
    it(`refuses ${code.replace(/^.*from /, '')} in ${file}`, async () => {
      const messages = await crossings(file, code);
      assert.equal(messages.length, 1, `a crossing in ${file} passed the lint`);
      assert.match(messages[0] ?? '', new RegExp(`^'.*' import is restricted .*${names} may import only`));
    });
  }

  const allowed: Array<[file: string, code: string]> = [
    ['src/outbound/x.ts', "import { LOOP_HEADER } from '../shared/mail-headers.js';"],
    [
      'src/inbound/webhooks/x.ts',
      "import { newId } from '../../store/store.js';\nimport { views } from '../views.js';",
    ],
    ['src/inbound/x.ts', "import { CredentialService } from '../auth/credentials.js';"],
    ['src/harness/fake-imap/commands/x.ts', "import { MailStore } from '../store.js';"],
    ['src/api/x.ts', "import { OutboundService } from '../outbound/outbound-service.js';"],
    ['src/main.ts', "import { createInbound } from './inbound/index.js';"],
    ['src/cli/x.ts', "import { Engine } from '../main.js';"],
  ];
  for (const [file, code] of allowed) {
    it(`allows ${code.replace(/^.*from /, '').split('\n')[0]} in ${file}`, async () => {
      assert.deepEqual(await crossings(file, code), []);
    });
  }

  it('gives every folder of src/ but the composition root (cli/) its layer', async () => {
    const folders = readdirSync(join(ROOT, 'src'), { withFileTypes: true })
      .filter((entry) => entry.isDirectory())
      .map((entry) => entry.name);
    for (const folder of folders) {
      const config = (await eslint.calculateConfigForFile(join(ROOT, 'src', folder, 'x.ts'))) as {
        rules?: Record<string, unknown>;
      };
      assert.equal(config.rules?.[RULE] !== undefined, folder !== 'cli', `src/${folder}/: a layer in eslint.config.js`);
    }
  });
});
