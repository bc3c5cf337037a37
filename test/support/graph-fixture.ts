import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startFakeGraph, type FakeGraph } from '../../src/harness/fake-graph/index.js';
import { startFakeIdp, type FakeIdp } from '../../src/harness/fake-idp/index.js';

/** A fake identity provider with one app (client credentials) and a fake Graph taking its tokens. */
export interface GraphFixture {
  idp: FakeIdp;
  graph: FakeGraph;
  /** The fake Graph's CA, written in a folder of the temporary directory (the tests' MAILROOM_CA_DIR). */
  caFile: string;
  /** An API body of a `protocol: graph` server signing in with the app; `extra` merged at the top. */
  serverBody(name: string, extra?: Record<string, unknown>, smtp?: Record<string, unknown>): Record<string, unknown>;
  close(): Promise<void>;
}

export async function openGraphFixture(mailbox: string, app: string, secret: string): Promise<GraphFixture> {
  const idp = await startFakeIdp({ apps: [{ clientId: app, clientSecret: secret, mailboxes: [mailbox] }] });
  const graph = await startFakeGraph({ users: [mailbox], verifyToken: (u, t) => idp.verifyAccessToken(u, t) });
  const caDir = await mkdtemp(join(tmpdir(), 'mailroom-graph-ca-'));
  const caFile = join(caDir, 'graph-ca.pem');
  await writeFile(caFile, graph.ca);
  return {
    idp,
    graph,
    caFile,
    serverBody: (name, extra = {}, smtp = {}) => ({
      name,
      protocol: 'graph',
      imap: {
        host: '127.0.0.1',
        port: graph.port,
        user: mailbox,
        caFile,
        auth: {
          method: 'oauth2',
          flow: 'client-credentials',
          clientId: app,
          directoryId: 'contoso-directory',
          authorityHost: idp.url,
          clientSecret: secret,
        },
      },
      smtp: { host: '127.0.0.1', port: graph.port, auth: { mode: 'imap' }, ...smtp },
      ...extra,
    }),
    async close() {
      await graph.close();
      await idp.close();
      await rm(caDir, { recursive: true, force: true });
    },
  };
}
