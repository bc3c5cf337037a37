import { Command } from 'commander';
import { loadConfig, type Config } from '../config/config.js';
import { Engine } from '../main.js';
import { CredentialService } from '../auth/credentials.js';
import { testImapConnection } from '../inbound/connection-test.js';
import { testSmtpConnection } from '../outbound/connection-test.js';
import { isMailroomError } from '../shared/errors.js';
import { createLogger } from '../shared/logger.js';
import { generateSecretKey } from '../shared/sealed-secrets.js';
import { readBody, withKeyFile, type BodyOptions } from './input.js';
import { print, printError, type OutputOptions } from './output.js';
import { destinationIdOf, serverIdOf, tenantIdOf, withAccounts, withServices } from './services.js';
import { addHarnessCommand } from './harness-command.js';
import { addLifecycleCommands } from './lifecycle-command.js';
import { addOAuthCommands } from './oauth-command.js';
import { addOutboundCommands } from './outbound-command.js';
import { addTemplatesCommands } from './templates-command.js';

type Opts = OutputOptions & BodyOptions & { name?: string; address?: string; tenant?: string; discardQueued?: boolean };

/** Positional arguments; commander has checked that the required ones are there. */
type Args = [string, string, string];

/** Wraps an action: prints its result and turns errors into an exit code. */
function run(action: (args: Args, opts: Opts) => Promise<unknown>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    const opts = command.optsWithGlobals<Opts>();
    try {
      const result = await action(args.slice(0, -2) as Args, opts);
      if (result !== undefined) print(result, opts);
    } catch (err) {
      process.exitCode = printError(err);
    }
  };
}

function withBody(cmd: Command): Command {
  return cmd
    .option('-d, --data <json>', 'settings as a JSON object (the API body)')
    .option('-f, --file <path>', "settings from a JSON file ('-' for standard input)");
}

function withKey(cmd: Command): Command {
  return cmd.option(
    '--key-file <path>',
    "a Google service account's JSON key file: the IMAP side signs in with it (flow service-account, client ID its client_email)",
  );
}

async function startEngine(): Promise<void> {
  let config: Config;
  try {
    config = loadConfig();
  } catch (err) {
    process.exitCode = printError(err); // no logger yet: its level is part of the configuration
    return;
  }
  const logger = createLogger({ level: config.logLevel, pretty: config.logPretty, instanceId: config.instanceId });
  const engine = new Engine(config, logger);
  let signals = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    signals += 1;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: exiting at once');
      process.exit(1);
    }
    logger.info({ signal }, 'signal received: stopping gracefully (send it again to force)');
    engine.stop().then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  try {
    await engine.start();
  } catch (err) {
    // Said once: a known cause (a setting, the database, a port) as one line on standard error;
    // anything else in the log with its stack, and its message on standard error.
    if (isMailroomError(err)) {
      process.exitCode = printError(err);
    } else {
      logger.error({ err }, 'mailroom could not start');
      process.stderr.write(`error: mailroom could not start: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exitCode = 1;
    }
    process.exit();
  }
}

export function buildProgram(): Command {
  const program = new Command('mailroom')
    .description('Mailroom: the e-mail channel engine of a contact center')
    .option('--json', 'print results as JSON')
    .showHelpAfterError();

  program
    .command('start')
    .description('run the engine (HTTP API on MAILROOM_HTTP_HOST:MAILROOM_HTTP_PORT)')
    .action(startEngine);

  program
    .command('keygen')
    .description('print a new secret key for MAILROOM_SECRET_KEY')
    .action(() => {
      process.stdout.write(`${generateSecretKey()}\n`);
    });

  // ---- tenants
  const tenants = program.command('tenants').description('tenants (business units)');
  tenants
    .command('list')
    .description('list tenants')
    .action(run(() => withAccounts((a) => a.tenants.list())));
  tenants
    .command('show <tenant>')
    .description('show a tenant (id or name)')
    .action(run(([t]) => withAccounts(async (a) => a.tenants.get(await tenantIdOf(a, t)))));
  tenants
    .command('create <name>')
    .description('create a tenant')
    .action(run(([name]) => withAccounts((a) => a.tenants.create({ name }))));
  tenants
    .command('rename <tenant> <name>')
    .description('rename a tenant')
    .action(run(([t, name]) => withAccounts(async (a) => a.tenants.update(await tenantIdOf(a, t), { name }))));
  tenants
    .command('delete <tenant>')
    .description('delete an empty tenant')
    .action(
      run(([t]) =>
        withAccounts(async (a) => {
          await a.tenants.delete(await tenantIdOf(a, t));
          return { deleted: t };
        }),
      ),
    );

  // ---- servers
  const servers = program.command('servers').description("a tenant's e-mail servers (IMAP + SMTP accounts)");
  servers
    .command('list <tenant>')
    .description("list a tenant's e-mail servers")
    .action(run(([t]) => withAccounts(async (a) => a.servers.list(await tenantIdOf(a, t)))));
  servers
    .command('show <tenant> <server>')
    .description('show an e-mail server (id or name)')
    .action(
      run(([t, s]) =>
        withAccounts(async (a) => {
          const tenantId = await tenantIdOf(a, t);
          return a.servers.get(tenantId, await serverIdOf(a, tenantId, s));
        }),
      ),
    );
  withKey(
    withBody(servers.command('create <tenant>').description('add an e-mail server (settings as in the API)')),
  ).action(
    run(([t], opts) =>
      withAccounts(async (a) =>
        a.servers.create(await tenantIdOf(a, t), await withKeyFile(await readBody(opts), opts.keyFile)),
      ),
    ),
  );
  withKey(
    withBody(servers.command('update <tenant> <server>').description('change settings of an e-mail server')),
  ).action(
    run(([t, s], opts) =>
      withAccounts(async (a) => {
        const tenantId = await tenantIdOf(a, t);
        const body = await withKeyFile(await readBody(opts, opts.keyFile === undefined), opts.keyFile);
        return a.servers.update(tenantId, await serverIdOf(a, tenantId, s), body);
      }),
    ),
  );
  withBody(
    servers
      .command('copy <tenant> <server>')
      .description('copy an e-mail server under a new name (and changes, usually imap.user and password)')
      .requiredOption('-n, --name <name>', 'name of the copy'),
  ).action(
    run(([t, s], opts) =>
      withAccounts(async (a) => {
        const tenantId = await tenantIdOf(a, t);
        const body = { ...(await readBody(opts, false)), name: opts.name };
        return a.servers.copy(tenantId, await serverIdOf(a, tenantId, s), body);
      }),
    ),
  );
  servers
    .command('test <tenant> <server>')
    .description('"Test connection": log in to the IMAP and the SMTP server as stored, reading and sending nothing')
    .action(
      run(([t, s]) =>
        withServices(async ({ accounts, store, sealer, logger, config }) => {
          const tenantId = await tenantIdOf(accounts, t);
          const serverId = await serverIdOf(accounts, tenantId, s);
          const server = await store.servers.require(tenantId, serverId, s);
          const credentials = new CredentialService(sealer);
          const [imap, smtp] = await Promise.all([
            testImapConnection(server, { credentials, logger, proxies: config.mailProxies }),
            testSmtpConnection(server, { credentials, proxies: config.mailProxies }),
          ]);
          if (!imap.ok || !smtp.ok) process.exitCode = 1;
          return { imap, smtp };
        }),
      ),
    );
  servers
    .command('delete <tenant> <server>')
    .description('delete an e-mail server no destination uses')
    .option('--discard-queued', 'give up outgoing mail still waiting to be sent through it (each marked failed)')
    .action(
      run(([t, s], opts) =>
        withAccounts(async (a) => {
          const tenantId = await tenantIdOf(a, t);
          const discardQueued = opts.discardQueued === true;
          await a.servers.delete(tenantId, await serverIdOf(a, tenantId, s), { discardQueued });
          return { deleted: s };
        }),
      ),
    );

  // ---- destinations
  const destinations = program.command('destinations').description("a tenant's destinations (monitored addresses)");
  destinations
    .command('list <tenant>')
    .description("list a tenant's destinations")
    .action(run(([t]) => withAccounts(async (a) => a.destinations.list(await tenantIdOf(a, t)))));
  destinations
    .command('show <tenant> <destination>')
    .description('show a destination (id or name)')
    .action(
      run(([t, d]) =>
        withAccounts(async (a) => {
          const tenantId = await tenantIdOf(a, t);
          return a.destinations.get(tenantId, await destinationIdOf(a, tenantId, d));
        }),
      ),
    );
  withBody(destinations.command('create <tenant>').description('add a destination (settings as in the API)')).action(
    run(([t], opts) => withAccounts(async (a) => a.destinations.create(await tenantIdOf(a, t), await readBody(opts)))),
  );
  withBody(destinations.command('update <tenant> <destination>').description('change a destination')).action(
    run(([t, d], opts) =>
      withAccounts(async (a) => {
        const tenantId = await tenantIdOf(a, t);
        return a.destinations.update(tenantId, await destinationIdOf(a, tenantId, d), await readBody(opts));
      }),
    ),
  );
  destinations
    .command('copy <tenant> <destination>')
    .description('copy a destination under a new name and address')
    .requiredOption('-n, --name <name>', 'name of the copy')
    .requiredOption('-a, --address <address>', 'e-mail address of the copy')
    .action(
      run(([t, d], opts) =>
        withAccounts(async (a) => {
          const tenantId = await tenantIdOf(a, t);
          return a.destinations.copy(tenantId, await destinationIdOf(a, tenantId, d), {
            name: opts.name,
            address: opts.address,
          });
        }),
      ),
    );
  destinations
    .command('delete <tenant> <destination>')
    .description('delete a destination')
    .action(
      run(([t, d]) =>
        withAccounts(async (a) => {
          const tenantId = await tenantIdOf(a, t);
          await a.destinations.delete(tenantId, await destinationIdOf(a, tenantId, d));
          return { deleted: d };
        }),
      ),
    );

  // ---- tokens
  const tokens = program.command('tokens').description('API tokens');
  tokens
    .command('create')
    .description('create an API token (scoped to one tenant with --tenant); it is printed once')
    .requiredOption('-n, --name <name>', 'what the token is for')
    .option('-t, --tenant <tenant>', 'scope the token to this tenant')
    .action(
      run((_args, opts) =>
        withAccounts(async (a) => {
          return a.apiTokens.create(opts.tenant ? await tenantIdOf(a, opts.tenant) : null, { name: opts.name });
        }),
      ),
    );
  tokens
    .command('list')
    .description('list stored API tokens')
    .option('-t, --tenant <tenant>', "only this tenant's tokens")
    .action(
      run((_args, opts) =>
        withAccounts(async (a) => {
          return a.apiTokens.list(opts.tenant ? await tenantIdOf(a, opts.tenant) : undefined);
        }),
      ),
    );
  tokens
    .command('revoke <tokenId>')
    .description('revoke a stored API token')
    .action(
      run(([id]) =>
        withAccounts(async (a) => {
          await a.apiTokens.revoke(id);
          return { revoked: id };
        }),
      ),
    );
  addTemplatesCommands(program);
  addHarnessCommand(program);
  addOAuthCommands(program);
  addOutboundCommands(program);
  addLifecycleCommands(program);
  return program;
}
