import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ServerInput } from '../../src/accounts/schemas.js';
import { CredentialService } from '../../src/auth/credentials.js';
import type { FakeGraph } from '../../src/harness/fake-graph/index.js';
import type { SecretSealer } from '../../src/shared/sealed-secrets.js';
import { addCleanup } from '../../test/support/cleanup.js';

/** The fake Graph's CA in a folder of its own (the benchmark's MAILROOM_CA_DIR), removed at the end. */
export async function graphCaFile(graph: FakeGraph): Promise<{ caDir: string; caFile: string }> {
  const caDir = await mkdtemp(join(tmpdir(), 'mailroom-bench-graph-'));
  addCleanup(() => rm(caDir, { recursive: true, force: true }));
  const caFile = join(caDir, 'graph-ca.pem');
  await writeFile(caFile, graph.ca);
  return { caDir, caFile };
}

/** A `protocol: graph` server of the fake Graph's mailbox `user` (app sign-in; tokens from `graphCredentials`). */
export function graphServerInput(graph: FakeGraph, user: string, caFile: string, enabled = true): ServerInput {
  return {
    name: 'Graph',
    enabled,
    protocol: 'graph',
    imap: {
      host: '127.0.0.1',
      port: graph.port,
      user,
      caFile,
      auth: {
        method: 'oauth2',
        flow: 'client-credentials',
        clientId: 'bench',
        directoryId: 'bench',
        clientSecret: 's',
      },
    },
    smtp: { host: '127.0.0.1', port: graph.port, auth: { mode: 'imap' } },
  };
}

/** Credentials whose tokens come from a stand-in for the identity provider: the fake Graph takes any. */
export function graphCredentials(sealer: SecretSealer, user: string): CredentialService {
  return new CredentialService(sealer, { accessToken: () => Promise.resolve({ user, accessToken: 'bench' }) });
}
