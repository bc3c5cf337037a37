import type { Command } from 'commander';
import { startFakeImap, type FakeImapServer } from '../harness/fake-imap/index.js';
import { startSmtpHarness } from '../harness/smtp-harness.js';
import { MailroomError } from '../shared/errors.js';
import { printError } from './output.js';

interface HarnessOptions {
  imapPort: string;
  smtpPort: string;
  user: string;
  password: string;
}

/**
 * `mailroom harness`: a local fake IMAP server and SMTP server in one command, so an administrator
 * can try routing without a real mail server. Mail received over SMTP is appended to the user's
 * INBOX, so a reply sent through Mailroom shows up in the watched mailbox too.
 */
export function addHarnessCommand(program: Command): void {
  program
    .command('harness')
    .description('run a local fake IMAP server and SMTP server for trying routing (Ctrl-C stops)')
    .option('--imap-port <port>', 'IMAP port on 127.0.0.1', '1143')
    .option('--smtp-port <port>', 'SMTP port on 127.0.0.1', '2525')
    .option('--user <user>', 'the mailbox user', 'support@example.com')
    .option('--password <password>', 'its password', 'support')
    .action(async (opts: HarnessOptions) => {
      let imapStarted: FakeImapServer | undefined;
      try {
        const imapPort = portOf(opts.imapPort, '--imap-port');
        const smtpPort = portOf(opts.smtpPort, '--smtp-port');
        const imap = await startFakeImap({ port: imapPort, users: [{ user: opts.user, password: opts.password }] });
        imapStarted = imap;
        const smtp = await startSmtpHarness({ port: smtpPort, users: [{ user: opts.user, password: opts.password }] });
        let delivered = 0;
        const timer = setInterval(() => {
          for (const message of smtp.messages.slice(delivered)) imap.append(opts.user, 'INBOX', message.raw);
          delivered = smtp.messages.length;
        }, 200);
        process.stdout.write(
          [
            'Mailroom test harness running on 127.0.0.1 (plain text, no TLS):',
            `  IMAP  port ${imap.port}   user ${opts.user}   password ${opts.password}`,
            `  SMTP  port ${smtp.port}   same credentials; received mail is appended to the INBOX`,
            'An e-mail server for it: {"imap": {"host": "127.0.0.1", "port": ' +
              `${imap.port}, "secure": false, ...}, "smtp": {"host": "127.0.0.1", "port": ${smtp.port}, ...}}`,
            'Ctrl-C stops.',
            '',
          ].join('\n'),
        );
        const stop = async (): Promise<void> => {
          clearInterval(timer);
          await smtp.close();
          await imap.close();
          process.exit(0);
        };
        process.once('SIGINT', () => void stop());
        process.once('SIGTERM', () => void stop());
      } catch (err) {
        // A server that did start would keep the process up with nothing to show for it.
        await imapStarted?.close();
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
