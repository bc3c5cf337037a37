/**
 * Runs the fault runs one after another, each in its own process, and passes their JSON lines
 * through on stdout (anything else they print goes to stderr). See faults/README.md.
 *
 *   npm run faults                  # every faults/*.fault.ts
 *   npm run faults -- sigkill       # only those whose name contains "sigkill"
 *
 * The engine processes run the build (`npm run build` first, as `npm start` does); FAULTS_CODE=src
 * runs them from the sources through tsx. The SMTP fault table runs its engine in its own process
 * (from the sources, see smtp-faults.fault.ts).
 *
 * Exits 1 when a run reports a loss or fails any of its promises (`pass: false`), errs, exits
 * non-zero or is killed after FAULTS_TIMEOUT_MS; 2 when no run matches the filter.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const FAULTS_DIR = path.dirname(fileURLToPath(import.meta.url));
const SUFFIX = '.fault.ts';
/** [600000] longest a single run may take, ms. */
const TIMEOUT_MS = Number(process.env.FAULTS_TIMEOUT_MS ?? 10 * 60_000);
/** [dist] `src` runs the engine processes from the sources through tsx instead of the build. */
const FROM_SOURCES = process.env.FAULTS_CODE === 'src';

function discover(filters: string[]): string[] {
  return readdirSync(FAULTS_DIR)
    .filter((file) => file.endsWith(SUFFIX))
    .map((file) => file.slice(0, -SUFFIX.length))
    .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
    .sort();
}

function parseObject(line: string): Record<string, unknown> | null {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value)
      ? (value as Record<string, unknown>)
      : null;
  } catch {
    return null;
  }
}

/** Runs one file; resolves with why it failed (a loss, a broken promise, an error), or null. */
function runOne(name: string): Promise<string | null> {
  const child = spawn(process.execPath, ['--import', 'tsx', path.join(FAULTS_DIR, `${name}${SUFFIX}`)], {
    stdio: ['ignore', 'pipe', 'inherit'],
    env: { ...process.env, FAULTS_ENGINE_CODE: FROM_SOURCES ? 'src' : 'dist' },
  });
  let verdict: string | null = null;
  let reported = false;
  createInterface({ input: child.stdout }).on('line', (line) => {
    const result = parseObject(line);
    if (!result) {
      process.stderr.write(`[${name}] ${line}\n`);
      return;
    }
    process.stdout.write(`${line}\n`);
    reported = true;
    if (typeof result.lost === 'number' && result.lost > 0) verdict ??= `lost ${result.lost}`;
    if (result.pass === false) verdict ??= 'a promise of the run did not hold (pass: false)';
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('error', (err) => resolve(`could not start: ${err.message}`));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (verdict) resolve(verdict);
      else if (signal) resolve(`killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${TIMEOUT_MS} ms?)` : ''}`);
      else if (code !== 0) resolve(`exit code ${code}`);
      else resolve(reported ? null : 'printed no result');
    });
  });
}

async function main(): Promise<number> {
  const names = discover(process.argv.slice(2));
  if (names.length === 0) {
    process.stderr.write(`no fault run matches ${JSON.stringify(process.argv.slice(2))}\n`);
    return 2;
  }
  if (!FROM_SOURCES) {
    // An engine process started from the sources compiles them first (tsx): tens of seconds on a
    // busy machine, at each of the kill loops' restarts. The build starts in about a second.
    process.stderr.write('[faults] building the engine (npm run build): the engine processes run dist/\n');
    const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (build.status !== 0) {
      process.stdout.write(`${JSON.stringify({ fault: 'build', failed: `npm run build exited ${build.status}` })}\n`);
      return 1;
    }
  }
  const started = Date.now();
  let failed = 0;
  for (const name of names) {
    const runStarted = Date.now();
    process.stderr.write(`[faults] ${name}\n`);
    const failure = await runOne(name);
    process.stderr.write(`[faults] ${name}: ${failure ?? 'ok'} (${Math.round((Date.now() - runStarted) / 1000)} s)\n`);
    if (failure) {
      failed += 1;
      process.stdout.write(`${JSON.stringify({ fault: name, failed: failure })}\n`);
    }
  }
  process.stderr.write(
    `[faults] ${names.length - failed}/${names.length} runs held, ${Math.round((Date.now() - started) / 1000)} s\n`,
  );
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
