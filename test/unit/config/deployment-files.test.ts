import assert from 'node:assert/strict';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parse } from 'yaml';
import { loadConfig, type Env } from '../../../src/config/config.js';

/**
 * The container files (docker/Dockerfile, docker/compose.yaml) are not run here (no container
 * engine on the CI machine); what can go stale in them without one is checked instead: the
 * variables they set are ones the engine reads, the files they copy and mount exist, the two
 * instances have names and spools of their own, and the configuration they make loads.
 */
const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../../..');
const DOCKER = join(ROOT, 'docker');

interface ComposeService {
  image?: string;
  build?: { context: string; dockerfile: string };
  environment?: Record<string, string>;
  ports?: string[];
  volumes?: string[];
  healthcheck?: { test: string[] | string };
}

/** The `MAILROOM_*` variables the engine's configuration reads (those `loadConfig` asks for). */
function variablesRead(): Set<string> {
  const read = new Set<string>();
  const env = new Proxy<Env>(
    {},
    {
      get: (_target, name) => {
        if (typeof name === 'string') read.add(name);
        return undefined;
      },
    },
  );
  loadConfig(env, '/srv/mailroom');
  return read;
}

/** The Dockerfile's instructions, continuation lines joined, comments dropped. */
function dockerInstructions(): string[] {
  return readFileSync(join(DOCKER, 'Dockerfile'), 'utf8')
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '');
}

/** `ENV` of the image's last stage (what the engine runs with). */
function imageEnv(): Record<string, string> {
  const instructions = dockerInstructions();
  const lastStage = instructions.map((line) => line.startsWith('FROM ')).lastIndexOf(true);
  const env: Record<string, string> = {};
  for (const line of instructions.slice(lastStage)) {
    if (!line.startsWith('ENV ')) continue;
    for (const [, name, value] of line.slice(4).matchAll(/(\w+)=(\S+)/g)) env[name as string] = value as string;
  }
  return env;
}

function compose(): { services: Record<string, ComposeService>; volumes: Record<string, unknown> } {
  return parse(readFileSync(join(DOCKER, 'compose.yaml'), 'utf8'), { merge: true }) as {
    services: Record<string, ComposeService>;
    volumes: Record<string, unknown>;
  };
}

/** The compose services that run the engine (built from the Dockerfile). */
function engineServices(): Array<[string, ComposeService]> {
  return Object.entries(compose().services).filter(([, s]) => s.build !== undefined);
}

/** `${NAME:?message}` and `${NAME}` as compose substitutes them, from `values`. */
function substitute(value: string, values: Record<string, string>): string {
  return value.replace(/\$\{(\w+)(?::\?[^}]*)?\}/g, (_m, name: string) => {
    const given = values[name];
    assert.ok(given !== undefined, `compose.yaml needs ${name} from the environment`);
    return given;
  });
}

describe('container files (docker/)', () => {
  it('set only variables the engine reads', () => {
    const known = variablesRead();
    const set = [
      ...Object.keys(imageEnv()),
      ...engineServices().flatMap(([, s]) => Object.keys(s.environment ?? {})),
    ].filter((name) => name.startsWith('MAILROOM_'));
    assert.ok(set.length >= 6, `found ${set.length} MAILROOM_ variables`);
    assert.deepEqual(
      set.filter((name) => !known.has(name)),
      [],
      'variables the engine never reads (misspelt or removed)',
    );
  });

  it('copy files that exist and run what the build makes', () => {
    const copies = dockerInstructions().filter((line) => line.startsWith('COPY ') && !line.includes('--from='));
    assert.ok(copies.length >= 3);
    for (const line of copies) {
      const sources = line.split(/\s+/).slice(1, -1);
      for (const source of sources) assert.ok(existsSync(join(ROOT, source)), `COPY ${source}: no such file`);
    }
    const cmd = dockerInstructions().find((line) => line.startsWith('CMD '));
    const args = JSON.parse((cmd as string).slice(4)) as string[];
    const script = args.find((a) => a.startsWith('dist/')) as string;
    const build = JSON.parse(readFileSync(join(ROOT, 'tsconfig.build.json'), 'utf8')) as {
      compilerOptions?: { outDir?: string; rootDir?: string };
    };
    assert.equal(build.compilerOptions?.outDir, 'dist');
    const sourceFile = join(ROOT, build.compilerOptions?.rootDir ?? 'src', script.slice('dist/'.length)).replace(
      /\.js$/,
      '.ts',
    );
    assert.ok(existsSync(sourceFile), `CMD runs ${script}, but ${sourceFile} does not exist`);
  });

  it('give each engine instance its own name and its own spool, and mount what exists', () => {
    const engines = engineServices();
    assert.ok(engines.length >= 2, 'the compose file runs several instances');
    const spoolDir = imageEnv()['MAILROOM_SPOOL_DIR'];
    assert.ok(spoolDir, 'the image sets MAILROOM_SPOOL_DIR');
    const names = engines.map(([, s]) => s.environment?.['MAILROOM_INSTANCE_ID']);
    assert.equal(new Set(names).size, engines.length, `instance names: ${names.join(', ')}`);
    const spools = engines.map(([name, s]) => {
      const spool = (s.volumes ?? []).find((v) => v.split(':')[1] === spoolDir);
      assert.ok(spool, `${name} keeps its spool (${spoolDir}) on a volume`);
      return spool.split(':')[0] as string;
    });
    // Two processes never drain the same folder: a shared spool would keep the second one from starting.
    assert.equal(new Set(spools).size, engines.length, `spool volumes: ${spools.join(', ')}`);
    const declared = Object.keys(compose().volumes ?? {});
    for (const [name, s] of engines) {
      assert.ok(existsSync(join(DOCKER, s.build?.context ?? '.', s.build?.dockerfile ?? 'Dockerfile')), name);
      for (const volume of s.volumes ?? []) {
        const source = volume.split(':')[0] as string;
        if (source.startsWith('.') || source.startsWith('/')) {
          assert.ok(existsSync(join(DOCKER, source)), `${name} mounts ${source}: no such folder`);
        } else {
          assert.ok(declared.includes(source), `${name} uses volume ${source}, not declared`);
        }
      }
    }
  });

  it('make a configuration that loads, on the port they publish and probe', () => {
    const postgres = compose().services['postgres'];
    const pgEnv = postgres?.environment ?? {};
    for (const [name, s] of engineServices()) {
      const env: Env = {
        ...imageEnv(),
        ...Object.fromEntries(
          Object.entries(s.environment ?? {}).map(([k, v]) => [
            k,
            substitute(String(v), { MAILROOM_SECRET_KEY: 'a'.repeat(44), MAILROOM_API_TOKEN: 'b'.repeat(48) }),
          ]),
        ),
      };
      const config = loadConfig(env, '/app');
      assert.equal(config.httpHost, '0.0.0.0', `${name} listens beyond the container's loopback`);
      const published = (s.ports ?? []).map((p) => Number(p.split(':').at(-1)));
      assert.deepEqual(published, [config.httpPort], `${name} publishes the port it listens on`);
      const probe = JSON.stringify(s.healthcheck?.test ?? '');
      // The port written out, or read in the container from MAILROOM_HTTP_PORT (the engine's own
      // setting, so the same port) with the engine's default as the fallback.
      const byVariable = /127\.0\.0\.1:'\+\(process\.env\.MAILROOM_HTTP_PORT\|\|(\d+)\)\+'\/readyz/.exec(probe);
      if (byVariable) {
        const port = env.MAILROOM_HTTP_PORT === undefined ? Number(byVariable[1]) : Number(env.MAILROOM_HTTP_PORT);
        assert.equal(port, config.httpPort, `${name} probes the port it listens on`);
      } else {
        assert.match(probe, new RegExp(`127\\.0\\.0\\.1:${config.httpPort}/readyz`), `${name} probes /readyz`);
      }
      const url = new URL(config.databaseUrl ?? '');
      assert.deepEqual(
        [url.hostname, url.username, url.password, url.pathname.slice(1)],
        ['postgres', pgEnv['POSTGRES_USER'], pgEnv['POSTGRES_PASSWORD'], pgEnv['POSTGRES_DB']],
        `${name} reaches the compose file's PostgreSQL`,
      );
    }
  });
});
