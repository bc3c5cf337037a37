import type { Command } from 'commander';
import { startLocalHarness, type LocalHarness } from '../harness/local-harness.js';
import { MailroomError } from '../shared/errors.js';
import { printError } from './output.js';

interface HarnessOptions {
  imapPort: string;
  smtpPort: string;
  /** Absent unless given: the help shows the real default, not an empty list. */
  user?: string[];
  password: string;
  oauth?: boolean;
  idpPort: string;
  graph?: boolean;
  graphPort: string;
  dir: string;
}

const DEFAULT_USER = 'support@example.com';

/**
 * `mailroom harness`: a local fake IMAP server and SMTP server in one command, so an administrator
 * can try routing without a real mail server. Mail received over SMTP is appended to the
 * recipient's INBOX, so a reply sent through Mailroom shows up in the watched mailbox too. With
 * `--oauth`, the fake Microsoft identity provider runs beside them (see `harness/local-harness.ts`).
 */
export function addHarnessCommand(program: Command): void {
  program
    .command('harness')
    .description('run a local fake IMAP server and SMTP server for trying routing (Ctrl-C stops)')
    .option('--imap-port <port>', 'IMAP port on 127.0.0.1', '1143')
    .option('--smtp-port <port>', 'SMTP port on 127.0.0.1', '2525')
    .option(
      '--user <user>',
      `a mailbox user; repeat for more (with --oauth, the accounts of the sign-in page) (default: "${DEFAULT_USER}")`,
      (value: string, previous: string[] | undefined) => [...(previous ?? []), value],
    )
    .option('--password <password>', 'the password of every mailbox', 'support')
    .option('--oauth', 'also run a fake Microsoft identity provider (device code, XOAUTH2) with a sign-in page')
    .option('--idp-port <port>', 'with --oauth: HTTPS port of the identity provider on 127.0.0.1', '8443')
    .option('--graph', 'with --oauth: also run a fake Microsoft Graph (mail) taking its tokens')
    .option('--graph-port <port>', 'with --graph: its HTTPS port on 127.0.0.1', '8444')
    .option('--dir <path>', "with --oauth: folder of the identity provider's certificates", 'data/harness')
    .action(async (opts: HarnessOptions) => {
      let harness: LocalHarness | undefined;
      try {
        const users = opts.user ?? [DEFAULT_USER];
        for (const user of users) {
          if (!/^[^\s@]+@[^\s@]+$/.test(user)) {
            throw new MailroomError('VALIDATION_FAILED', `--user must be an e-mail address (got '${user}')`, {
              field: '--user',
            });
          }
        }
        harness = await startLocalHarness({
          imapPort: portOf(opts.imapPort, '--imap-port'),
          smtpPort: portOf(opts.smtpPort, '--smtp-port'),
          users,
          password: opts.password,
          ...(opts.oauth && {
            oauth: {
              port: portOf(opts.idpPort, '--idp-port'),
              dir: opts.dir,
              ...(opts.graph && { graphPort: portOf(opts.graphPort, '--graph-port') }),
            },
          }),
          report: (line) => process.stdout.write(`${new Date().toISOString()}  ${line}\n`),
        });
        process.stdout.write(harness.describe());
        const running = harness;
        const stop = async (): Promise<void> => {
          await running.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void stop());
        process.once('SIGTERM', () => void stop());
      } catch (err) {
        // startLocalHarness stops what it started before a failure.
        process.exitCode = printError(err);
      }
    });
}

/** A port number option (0: any free port). */
function portOf(value: string, option: string): number {
  const port = /^\d{1,5}$/.test(value) ? Number(value) : NaN;
  if (port >= 0 && port <= 65535) return port;
  throw new MailroomError('VALIDATION_FAILED', `${option} must be a port number from 0 to 65535 (got '${value}')`, {
    field: option,
  });
}
