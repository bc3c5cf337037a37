/**
 * Runs the benchmarks one after another, each in its own process, and passes their JSON lines
 * through on stdout (anything else they print goes to stderr). The engine is measured as it
 * ships: built first (`npm run build`), and each benchmark loads `dist/` where it imports `src/`
 * (bench/support/shipped-code.ts); `BENCH_CODE=src` measures the sources through tsx instead.
 *
 *   npm run bench                 # every bench/*.bench.ts
 *   npm run bench -- inbound      # only those whose name contains "inbound"
 *
 * Exits 1 when a benchmark fails (non-zero exit, or killed after BENCH_TIMEOUT_MS), 2 when
 * no benchmark matches the filter.
 */
import { spawn, spawnSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const BENCH_DIR = path.dirname(fileURLToPath(import.meta.url));
const SUFFIX = '.bench.ts';
/** [1800000] longest a single benchmark may run, ms. */
const TIMEOUT_MS = Number(process.env.BENCH_TIMEOUT_MS ?? 30 * 60_000);
/** [dist] `src` runs the engine's sources through tsx instead of its build. */
const FROM_SOURCES = process.env.BENCH_CODE === 'src';
const SHIPPED_CODE = path.join(BENCH_DIR, 'support', 'shipped-code.ts');

function discover(filters: string[]): string[] {
  return readdirSync(BENCH_DIR)
    .filter((file) => file.endsWith(SUFFIX))
    .map((file) => file.slice(0, -SUFFIX.length))
    .filter((name) => filters.length === 0 || filters.some((f) => name.includes(f)))
    .sort();
}

function isJsonObject(line: string): boolean {
  try {
    const value: unknown = JSON.parse(line);
    return typeof value === 'object' && value !== null && !Array.isArray(value);
  } catch {
    return false;
  }
}

/** Runs one benchmark file; resolves with a failure reason, or null when it exited 0. */
function runOne(name: string): Promise<string | null> {
  const imports = ['--import', 'tsx', ...(FROM_SOURCES ? [] : ['--import', SHIPPED_CODE])];
  const child = spawn(process.execPath, [...imports, path.join(BENCH_DIR, `${name}${SUFFIX}`)], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  createInterface({ input: child.stdout }).on('line', (line) => {
    if (isJsonObject(line)) process.stdout.write(`${line}\n`);
    else process.stderr.write(`[${name}] ${line}\n`);
  });
  const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
  return new Promise((resolve) => {
    child.once('error', (err) => resolve(`could not start: ${err.message}`));
    child.once('close', (code, signal) => {
      clearTimeout(timer);
      if (signal) resolve(`killed by ${signal}${signal === 'SIGKILL' ? ` (timeout ${TIMEOUT_MS} ms?)` : ''}`);
      else resolve(code === 0 ? null : `exit code ${code}`);
    });
  });
}

async function main(): Promise<number> {
  const names = discover(process.argv.slice(2));
  if (names.length === 0) {
    process.stderr.write(`no benchmark matches ${JSON.stringify(process.argv.slice(2))}\n`);
    return 2;
  }
  if (!FROM_SOURCES) {
    process.stderr.write('building the engine (npm run build): the benchmarks measure dist/, as it ships\n');
    const build = spawnSync('npm', ['run', 'build', '--silent'], { stdio: ['ignore', 'inherit', 'inherit'] });
    if (build.status !== 0) {
      process.stdout.write(`${JSON.stringify({ bench: 'build', failed: `npm run build exited ${build.status}` })}\n`);
      return 1;
    }
  } else {
    process.stderr.write('BENCH_CODE=src: the benchmarks measure the sources through tsx\n');
  }
  let failed = 0;
  for (const name of names) {
    const failure = await runOne(name);
    if (failure) {
      failed += 1;
      process.stdout.write(`${JSON.stringify({ bench: name, failed: failure })}\n`);
    }
  }
  return failed > 0 ? 1 : 0;
}

process.exitCode = await main();
