import js from '@eslint/js';
import tseslint from 'typescript-eslint';

/**
 * Which parts of src/ each folder may import, besides its own files: dependencies point one way
 * (STYLE.md, "The shape we want"). From the top:
 *   composition root  main.ts, engine-metrics.ts, cli/: may import anything (not listed here)
 *   api/              the HTTP routes over the feature modules
 *   features          accounts/, inbound/, outbound/, templates/, cluster/, trace/, lifecycle/: never each other
 *                     (inbound and outbound share what they must through shared/, and are handed
 *                     each other's functions by main.ts)
 *   auth/             credentials the features log in with
 *   store/            the database: the only place TypeORM appears
 *   config/           read by the composition root only; everything else gets typed values
 *   harness/          fake IMAP, SMTP and identity provider: stands alone
 *   shared/           imports nothing of ours
 * A crossing is a lint error naming the folder; a new top-level folder gets its line here
 * (test/unit/import-layers.test.ts fails until it does).
 */
const FEATURE_LAYER = ['auth', 'store', 'shared'];
export const LAYERS = {
  api: ['accounts', 'inbound', 'outbound', 'templates', 'cluster', 'trace', 'lifecycle', ...FEATURE_LAYER],
  accounts: FEATURE_LAYER,
  inbound: FEATURE_LAYER,
  outbound: FEATURE_LAYER,
  templates: FEATURE_LAYER,
  cluster: FEATURE_LAYER,
  trace: FEATURE_LAYER,
  lifecycle: FEATURE_LAYER,
  auth: ['store', 'shared'],
  store: ['shared'],
  config: ['shared'],
  harness: ['shared'],
  shared: [],
};
/** The composition root: a folder and the modules in src/ itself. */
const ROOT_FOLDERS = ['cli'];
const ROOT_MODULES = ['main', 'engine-metrics'];

/**
 * One `no-restricted-imports` block per folder. The patterns match a relative import that climbs
 * (`../`, any number of times) into a forbidden top-level folder, or to a module of src/ itself
 * (`../main.js`); a subfolder or file that took such a name would be reported too (loudly, never
 * silently let through).
 */
function layerRules() {
  const folders = [...Object.keys(LAYERS), ...ROOT_FOLDERS];
  return Object.entries(LAYERS).map(([folder, allowed]) => {
    const forbidden = folders.filter((name) => name !== folder && !allowed.includes(name));
    const message = `src/${folder}/ may import only ${
      allowed.length ? allowed.map((name) => `src/${name}/`).join(', ') : 'its own files'
    } (the layers are listed in eslint.config.js).`;
    return {
      files: [`src/${folder}/**/*.ts`],
      rules: {
        'no-restricted-imports': [
          'error',
          {
            patterns: [
              { regex: `^(?:\\.\\./)+(?:${forbidden.join('|')})/`, message },
              { regex: `^(?:\\.\\./)+(?:${ROOT_MODULES.join('|')})\\.js$`, message },
            ],
          },
        ],
      },
    };
  });
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', 'data/', '.tmp/', 'test-output/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    rules: {
      '@typescript-eslint/no-explicit-any': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'error',
    },
  },
  ...layerRules(),
  {
    files: ['**/*.cjs'],
    languageOptions: {
      sourceType: 'commonjs',
      globals: { module: 'writable', require: 'readonly', process: 'readonly' },
    },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  {
    // The web console: plain ES modules that run in the browser as they are (no build step).
    files: ['console/**/*.js'],
    languageOptions: {
      sourceType: 'module',
      globals: Object.fromEntries(
        [
          'window',
          'document',
          'location',
          'navigator',
          'sessionStorage',
          'fetch',
          'URL',
          'setInterval',
          'clearInterval',
          'Node',
          'HTMLElement',
          'URLSearchParams',
          'AbortController',
          'TextDecoderStream',
          'setTimeout',
          'clearTimeout',
          'CSSStyleSheet',
          'CSSFontFaceRule',
          'DOMParser',
          'NodeFilter',
          'FileReader',
        ].map((name) => [name, 'readonly']),
      ),
    },
  },
);
