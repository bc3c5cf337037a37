/**
 * What `mailroom harness` runs for a person trying Mailroom on one machine: the fake IMAP server
 * and the SMTP harness on loopback (mail the SMTP side receives lands in the IMAP mailboxes), and
 * with `oauth` the fake Microsoft identity provider beside them, whose tokens both accept as
 * XOAUTH2, with its sign-in page at the `verificationUri` and its certificates kept in a folder.
 *
 *   const harness = await startLocalHarness({ imapPort: 0, smtpPort: 0, users: ['a@example.com'],
 *     password: 'a', oauth: { port: 0, dir: 'data/harness' } });
 *   process.stdout.write(harness.describe());
 *   await harness.close();
 */
import { resolve } from 'node:path';
import { loadOrMakeCertificates } from './fake-idp/certificate-files.js';
import { startFakeIdp, type FakeIdp } from './fake-idp/index.js';
import { startFakeGraph, type FakeGraph } from './fake-graph/index.js';
import { startFakeImap, type FakeImapServer } from './fake-imap/index.js';
import { startSmtpHarness, type SmtpHarness } from './smtp-harness.js';

/** How often mail received over SMTP is copied into the IMAP mailboxes, ms. */
const RELAY_EVERY_MS = 200;
/** The app (client) id the harness suggests; the fake provider's device-code grant takes any. */
export const HARNESS_CLIENT_ID = 'mailroom-harness';

export interface LocalHarnessOptions {
  /** IMAP port on 127.0.0.1; 0 picks a free one. */
  imapPort: number;
  /** SMTP port on 127.0.0.1; 0 picks a free one. */
  smtpPort: number;
  /** The mailboxes (and, with `oauth`, the people who can sign in); at least one. */
  users: readonly string[];
  /** The password of every mailbox (IMAP LOGIN, SMTP AUTH PLAIN/LOGIN). */
  password: string;
  /** Also the fake identity provider over HTTPS on 127.0.0.1. */
  oauth?: {
    /** Its port; 0 picks a free one. */
    port: number;
    /** Folder its certificates are kept in (made when missing; the CA is `idp-ca.pem`). */
    dir: string;
    /**
     * Also a fake Microsoft Graph (mail) on this HTTPS port (0 picks a free one), with the same
     * certificate, taking the identity provider's tokens: for servers with `protocol: graph`.
     */
    graphPort?: number;
  };
  /** Told what people do on the sign-in page, one line each. */
  report?: (line: string) => void;
}

export interface LocalHarness {
  readonly imap: FakeImapServer;
  readonly smtp: SmtpHarness;
  /** With `oauth`: the identity provider. */
  readonly idp: FakeIdp | undefined;
  /** With `oauth.graphPort`: the fake Microsoft Graph. */
  readonly graph: FakeGraph | undefined;
  /** With `oauth`: the CA file to trust (MAILROOM_OAUTH_CA_FILE), absolute. */
  readonly caFile: string | undefined;
  /** The e-mail server (API body) for the first mailbox signing in at the identity provider. */
  oauthServerBody(): Record<string, unknown> | undefined;
  /** What to tell a person on start: ports, accounts, the engine's settings, a server body. */
  describe(): string;
  /** Stops everything; safe to call twice. */
  close(): Promise<void>;
}

/** Starts the harness; whatever started is stopped again when a later part fails (a port in use). */
export async function startLocalHarness(options: LocalHarnessOptions): Promise<LocalHarness> {
  const [first] = options.users;
  if (first === undefined) throw new Error('the harness needs at least one mailbox user');
  const started: Array<{ close(): Promise<void> }> = [];
  try {
    const certificates = options.oauth ? loadOrMakeCertificates(resolve(options.oauth.dir)) : undefined;
    const holder: { imap?: FakeImapServer; smtp?: SmtpHarness } = {};
    const idp = options.oauth
      ? await startFakeIdp({
          port: options.oauth.port,
          certificates,
          accounts: options.users,
          // A revoked person's (or every) mail connection ends: the engine must log in again and
          // meets the revocation at once, not when its access token would have run out (an hour).
          endSessions: async (user) => {
            await holder.imap?.disconnect(user);
            await holder.smtp?.dropConnections();
          },
          report: options.report,
        })
      : undefined;
    if (idp) started.push(idp);
    const users = options.users.map((user) => ({ user, password: options.password }));
    const imap = await startFakeImap({
      port: options.imapPort,
      users,
      ...(idp && { verifyAccessToken: idp.verifyAccessToken }),
    });
    started.push(imap);
    const smtp = await startSmtpHarness({
      port: options.smtpPort,
      users,
      ...(idp && { verifyAccessToken: idp.verifyAccessToken }),
    });
    started.push(smtp);
    const graph =
      idp && certificates && options.oauth?.graphPort !== undefined
        ? await startFakeGraph({
            port: options.oauth.graphPort,
            certificates,
            users: options.users,
            verifyToken: idp.verifyAccessToken,
          })
        : undefined;
    if (graph) started.push(graph);
    holder.imap = imap;
    holder.smtp = smtp;
    const relay = relayInto(imap, smtp, options.users);
    let closing: Promise<void> | undefined;
    const harness: LocalHarness = {
      imap,
      smtp,
      idp,
      graph,
      caFile: certificates?.caFile,
      oauthServerBody: () => idp && oauthServerBody(first, imap.port, smtp.port, idp.url),
      describe: () => describe(harness, options),
      close() {
        closing ??= (async () => {
          clearInterval(relay);
          await smtp.close();
          await imap.close();
          await graph?.close();
          await idp?.close();
        })();
        return closing;
      },
    };
    return harness;
  } catch (err) {
    for (const part of started.reverse()) await part.close();
    throw err;
  }
}

/**
 * Copies each message the SMTP side receives into the INBOX of every harness mailbox among its
 * recipients, or of the first mailbox when none is (so that any test mail shows up somewhere).
 */
function relayInto(imap: FakeImapServer, smtp: SmtpHarness, users: readonly string[]): NodeJS.Timeout {
  let delivered = 0;
  return setInterval(() => {
    for (const message of smtp.messages.slice(delivered)) {
      const recipients = users.filter((u) => message.envelope.to.some((to) => to.toLowerCase() === u.toLowerCase()));
      for (const user of recipients.length > 0 ? recipients : users.slice(0, 1)) {
        imap.append(user, 'INBOX', message.raw);
      }
    }
    delivered = smtp.messages.length;
  }, RELAY_EVERY_MS);
}

/** The directory (tenant) id the harness suggests: the mailbox's domain, as Entra accepts a verified domain. */
function directoryIdOf(user: string): string {
  return user.slice(user.lastIndexOf('@') + 1) || 'example.com';
}

function oauthServerBody(user: string, imapPort: number, smtpPort: number, authorityHost: string) {
  return {
    name: 'OAuth mailbox',
    imap: {
      host: '127.0.0.1',
      port: imapPort,
      secure: false,
      user,
      auth: { method: 'oauth2', clientId: HARNESS_CLIENT_ID, directoryId: directoryIdOf(user), authorityHost },
    },
    smtp: { host: '127.0.0.1', port: smtpPort, auth: { mode: 'imap' } },
  };
}

function describe(harness: LocalHarness, options: LocalHarnessOptions): string {
  const { imap, smtp, idp, caFile } = harness;
  const users = options.users.join(', ');
  const lines = [
    'Mailroom test harness running on 127.0.0.1 (plain text, no TLS):',
    `  IMAP  port ${imap.port}   user ${users}   password ${options.password}`,
    `  SMTP  port ${smtp.port}   same credentials; received mail is appended to the recipient's INBOX`,
    'An e-mail server for it: {"imap": {"host": "127.0.0.1", "port": ' +
      `${imap.port}, "secure": false, ...}, "smtp": {"host": "127.0.0.1", "port": ${smtp.port}, ...}}`,
  ];
  if (idp && caFile) {
    const ca = shellQuote(caFile);
    lines.push(
      '',
      `Fake Microsoft identity provider on ${idp.url} (OAuth 2.0 device code; IMAP and SMTP above take its tokens as XOAUTH2):`,
      `  sign-in page (verificationUri)  ${idp.verificationUri}   accounts: ${users}`,
      `  its CA certificate              ${caFile}`,
      '  Your browser does not know that CA: import the file as an authority, or accept the warning for this page.',
      'Start the engine trusting that CA for the identity provider and allowing its loopback address:',
      `  MAILROOM_OAUTH_CA_FILE=${ca} MAILROOM_OAUTH_ALLOW_PRIVATE=127.0.0.1/32 npm start`,
      'An e-mail server that signs in there with a device code (authority = authorityHost/directoryId, clientId any):',
      `  ${JSON.stringify(harness.oauthServerBody())}`,
      'Revoke a sign-in (refresh refused, mail connections ended), expire a code, end every access token:',
      `  on the sign-in page, or: curl --cacert ${ca} -d account=${options.users[0] ?? ''} ${idp.verificationUri}/revoke`,
      `                           curl --cacert ${ca} -d code=<CODE> ${idp.verificationUri}/expire`,
      `                           curl --cacert ${ca} -X POST ${idp.verificationUri}/expire-tokens`,
      'Sign-ins live in this process: stopping the harness forgets them (the engine then asks for a new one).',
    );
  }
  if (harness.graph && idp && caFile) {
    const [first = ''] = options.users;
    lines.push(
      '',
      `Fake Microsoft Graph on ${harness.graph.url} (delta queries, $value, sendMail; same CA, takes the provider's tokens):`,
      '  a server with "protocol": "graph" (put the CA file in MAILROOM_CA_DIR, or trust it with NODE_EXTRA_CA_CERTS):',
      `  ${JSON.stringify({
        name: `Graph ${first}`,
        protocol: 'graph',
        imap: {
          host: '127.0.0.1',
          port: harness.graph.port,
          user: first,
          caFile,
          auth: {
            method: 'oauth2',
            clientId: HARNESS_CLIENT_ID,
            directoryId: directoryIdOf(first),
            authorityHost: idp.url,
          },
        },
        smtp: { host: '127.0.0.1', port: harness.graph.port, auth: { mode: 'imap' } },
      })}`,
      '  mail sent to a harness mailbox through Graph lands in its Graph Inbox.',
    );
  }
  lines.push('Ctrl-C stops.', '');
  return lines.join('\n');
}

/** A path as one shell word (single quotes when it holds anything but safe characters). */
function shellQuote(text: string): string {
  return /^[\w./@:+-]+$/.test(text) ? text : `'${text.replaceAll("'", "'\\''")}'`;
}
