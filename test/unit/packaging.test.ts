import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../support/processes.js';

const read = (path: string): string => readFileSync(join(PROJECT_ROOT, path), 'utf8');

/** A version as three numbers (missing parts 0). */
function parts(version: string): [number, number, number] {
  const [a = 0, b = 0, c = 0] = version.replace(/^v/, '').split('.').map(Number);
  return [a, b, c];
}

function compare(a: string, b: string): number {
  const [x, y] = [parts(a), parts(b)];
  for (let i = 0; i < 3; i++) if (x[i] !== y[i]) return (x[i] as number) - (y[i] as number);
  return 0;
}

/**
 * Whether `version` satisfies an `engines.node` range of the forms npm packages use here:
 * `>=x`, `>x`, `<x`, `^x.y.z`, a bare major (`20`, `20.x`, `20.*`), and `||` between alternatives (the same rules as semver's).
 */
function satisfies(version: string, range: string): boolean {
  return range.split('||').some((alternative) =>
    alternative
      .trim()
      .replace(/(>=|<=|>|<|\^|~)\s+/g, '$1')
      .split(/\s+/)
      .map((comparator) => comparator.replace(/(\.[x*])+$/, '')) // 10.* and 10.x: 10
      .every((comparator) => {
        if (comparator.startsWith('>=')) return compare(version, comparator.slice(2)) >= 0;
        if (comparator.startsWith('<=')) return compare(version, comparator.slice(2)) <= 0;
        if (comparator.startsWith('>')) return compare(version, comparator.slice(1)) > 0;
        if (comparator.startsWith('<')) return compare(version, comparator.slice(1)) < 0;
        if (comparator.startsWith('^')) {
          const floor = comparator.slice(1);
          return compare(version, floor) >= 0 && parts(version)[0] === parts(floor)[0];
        }
        if (/^\d+$/.test(comparator)) return parts(version)[0] === Number(comparator);
        throw new Error(`engines range not understood: ${range}`);
      }),
  );
}

describe('packaging: one supported Node line for package.json, the lock file and the image', () => {
  const pkg = JSON.parse(read('package.json')) as { engines: { node: string } };
  const floor = /^>=(\d+\.\d+(?:\.\d+)?)$/.exec(pkg.engines.node)?.[1];

  it('the range reader agrees with npm on the forms it meets', () => {
    assert.equal(satisfies('20.19.0', '^20.19.0 || ^22.12.0 || >=23'), true);
    assert.equal(satisfies('20.18.0', '^20.19.0 || ^22.12.0 || >=23'), false);
    assert.equal(satisfies('20.19.0', '>=22'), false);
    assert.equal(satisfies('20.20.0', '18 || 20 || >=22'), true);
  });

  it('every package in the lock file runs on the oldest Node that engines allows (npm ci warns no EBADENGINE)', () => {
    assert.ok(floor, `engines.node is a floor: ${pkg.engines.node}`);
    const lock = JSON.parse(read('package-lock.json')) as {
      packages: Record<string, { engines?: { node?: string } | string[]; version?: string }>;
    };
    const refused = Object.entries(lock.packages)
      .filter(([name, p]) => name !== '' && typeof p.engines === 'object' && !Array.isArray(p.engines))
      .filter(([, p]) => {
        const range = (p.engines as { node?: string }).node;
        return range !== undefined && range !== '*' && !satisfies(floor, range);
      })
      .map(([name, p]) => `${name}@${p.version ?? '?'} needs node ${(p.engines as { node: string }).node}`);
    assert.deepEqual(refused, [], `engines says ${pkg.engines.node}`);
  });

  it('the image uses that Node line', () => {
    const dockerfile = read('docker/Dockerfile');
    const images = [...dockerfile.matchAll(/^FROM node:(\d+)/gm)].map((m) => Number(m[1]));
    assert.ok(images.length > 0);
    for (const major of images) assert.equal(major, parts(floor ?? '0')[0]);
  });

  it('keeps modules, the data folder (secret key) and the spool out of the build context; ships the templates', () => {
    const ignored = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l !== '' && !l.startsWith('#'));
    for (const path of ['node_modules', 'data', 'spool']) assert.ok(ignored.includes(path), path);
    assert.match(read('docker/Dockerfile'), /^COPY templates \/etc\/mailroom\/templates$/m);
  });

  it('tracks nothing in the spool folder: the engine makes it, 0700, at its first start', async () => {
    // A tracked spool/.gitkeep came out of a clone 0644 in a 0755 folder: the first start then
    // logged that spool files were readable by other users, about a file of the repository.
    const { stdout } = await promisify(execFile)('git', ['ls-files', '--', 'spool'], { cwd: PROJECT_ROOT });
    assert.equal(stdout, '');
    assert.match(read('.gitignore'), /^spool\/$/m);
  });

  it('checks health on the port the engine is configured with', async () => {
    const command = /^HEALTHCHECK .* CMD node -e "(.*)"$/m.exec(read('docker/Dockerfile'))?.[1];
    assert.ok(command, 'HEALTHCHECK runs node -e');
    const server = createServer((req, res) => res.writeHead(req.url === '/readyz' ? 200 : 404).end());
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = (server.address() as AddressInfo).port;
    try {
      const env = { ...process.env, MAILROOM_HTTP_PORT: String(port) };
      await promisify(execFile)(process.execPath, ['-e', command], { env, timeout: 10_000 });
    } finally {
      server.close();
    }
    // Nothing listening on the configured port: unhealthy.
    const env = { ...process.env, MAILROOM_HTTP_PORT: String(port) };
    await assert.rejects(promisify(execFile)(process.execPath, ['-e', command], { env, timeout: 10_000 }));
  });
});
