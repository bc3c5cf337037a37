// Mocha runs the TypeScript sources through tsx (no build step): see README, "Development".
module.exports = {
  'node-option': ['import=tsx'],
  spec: ['test/unit/**/*.test.ts', 'test/integration/**/*.test.ts', 'test/browser/**/*.test.ts'],
  require: ['test/support/root-hooks.ts'],
  timeout: 30000,
  slow: 2000,
  reporter: './test/support/summary-reporter.cjs',
  exit: false,
};
