import type { Command } from 'commander';
import { CredentialService } from '../auth/credentials.js';
import type { Services } from '../main.js';
import type { ActionOutcome } from '../outbound/mail-actions.js';
import { OutboundService } from '../outbound/outbound-service.js';
import { print, printError, type OutputOptions } from './output.js';
import { destinationIdOf, serverIdOf, tenantIdOf, uuidArg, withServices } from './services.js';

/**
 * The outbound side over the spool folder (MAILROOM_SPOOL_DIR) and the database, without starting
 * it: nothing is sent from here. A running engine finds a re-queued message within seconds.
 */
async function withOutbound<T>(fn: (outbound: OutboundService, services: Services) => Promise<T>): Promise<T> {
  return withServices(async (services: Services) => {
    const outbound = new OutboundService({
      store: services.store,
      credentials: new CredentialService(services.sealer),
      logger: services.logger,
      spoolDir: services.config.spoolDir,
      instanceId: services.config.instanceId,
    });
    return fn(outbound, services);
  });
}

/** The same, for one server of a tenant (named, or by id: a deleted one too). */
function withDeadLetters<T>(
  tenantRef: string,
  serverRef: string,
  fn: (outbound: OutboundService, serverId: string, tenantId: string) => Promise<T>,
): Promise<T> {
  return withOutbound(async (outbound, services) => {
    const tenantId = await tenantIdOf(services.accounts, tenantRef);
    // By id, a deleted server's dead letters are reached too; each action checks that the message
    // is of this tenant and this server.
    const serverId = await serverIdOf(services.accounts, tenantId, serverRef);
    return fn(outbound, serverId, tenantId);
  });
}

/** What the CLI prints after an action: done here, or left for the engine instance holding the file. */
function outcomeOf(done: string, outcome: ActionOutcome): Record<string, string> {
  return outcome.state === 'done'
    ? { [done]: outcome.row.id }
    : {
        requested: outcome.requestId,
        instance: outcome.instanceId,
        state: 'requested',
        when: outcome.holderRunning ? 'within seconds' : 'when that instance starts again (it is not running)',
      };
}

/** A command's action: `fn` gets its arguments and its own options. */
function action(fn: (args: string[], options: Record<string, unknown>) => Promise<unknown>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    try {
      const result = await fn(args.slice(0, -2) as string[], command.opts());
      print(result, command.optsWithGlobals<OutputOptions>());
    } catch (err) {
      process.exitCode = printError(err);
    }
  };
}

/** `mailroom dead-letters list|requeue|delete`: messages a server refused for good or that outlived their retries. */
export function addOutboundCommands(program: Command): void {
  const dead = program
    .command('dead-letters')
    .description("an e-mail server's dead letters in the spool (MAILROOM_SPOOL_DIR)");
  dead
    .command('list <tenant> [server]')
    .description(
      'list dead letters (of every instance) with the last SMTP reply, attempts and when they failed; ' +
        'without a server, those of all the tenant’s servers, deleted ones too',
    )
    .action(
      action(([t, s]) =>
        s === undefined
          ? withOutbound(async (o, services) => o.deadLetters(await tenantIdOf(services.accounts, t as string)))
          : withDeadLetters(t as string, s, (o, serverId, tenantId) => o.deadLetters(tenantId, serverId)),
      ),
    );
  const actions = [
    ['requeue', 'put a dead letter back at the end of its queue (attempts start again)', 'requeued'],
    ['delete', 'delete a dead letter for good', 'deleted'],
  ] as const;
  for (const [verb, description, done] of actions) {
    dead
      .command(`${verb} <tenant> <server> <id>`)
      .description(description)
      .action(
        action(async ([t, s, id]) => {
          const messageId = uuidArg(id as string, 'a dead letter id');
          return withDeadLetters(t as string, s as string, async (o, serverId, tenantId) => {
            const target = { tenantId, serverId, id: messageId };
            return outcomeOf(
              done,
              await (verb === 'requeue' ? o.requeueDeadLetter(target) : o.deleteDeadLetter(target)),
            );
          });
        }),
      );
  }

  const outbound = program.command('outbound').description('outgoing messages');
  outbound
    .command('cancel <tenant> <destination> <id>')
    .description(
      'cancel a message still waiting to be sent (queued or deferred): the engine instance holding it ' +
        'sets it aside as a dead letter within seconds (or when it starts), never sent unless re-queued',
    )
    .action(
      action(async ([t, d, id]) => {
        const messageId = uuidArg(id as string, 'an outgoing message id');
        return withOutbound(async (o, services) => {
          const tenantId = await tenantIdOf(services.accounts, t as string);
          const destinationId = await destinationIdOf(services.accounts, tenantId, d as string);
          return outcomeOf('cancelled', await o.cancel(tenantId, destinationId, messageId));
        });
      }),
    );
  outbound
    .command('requests <tenant>')
    .description(
      'requests (cancel, re-queue, delete) left for the engine instances holding the messages, newest first: ' +
        'those still waiting, or with --all also those settled in the last 7 days',
    )
    .option('--all', 'also the settled ones')
    .action(
      action(([t], options) =>
        withOutbound(async (o, services) =>
          o.requests(await tenantIdOf(services.accounts, t as string), { waitingOnly: options['all'] !== true }),
        ),
      ),
    );
  outbound
    .command('withdraw <tenant> <requestId>')
    .description(
      'withdraw a request its engine instance has not taken up yet (an instance that is not coming back): ' +
        'it is never carried out',
    )
    .action(
      action(([t, requestId]) =>
        withOutbound(async (o, services) =>
          o.withdrawRequest(await tenantIdOf(services.accounts, t as string), requestId as string),
        ),
      ),
    );
  program
    .command('instances')
    .description('engine instances sharing the database')
    .command('retire <instanceId>')
    .description(
      'give up the spool of an instance that is gone for good (its machine and disk): its waiting messages ' +
        'become failed, its dead letters are no longer listed, requests waiting for it are withdrawn',
    )
    .action(action(([instanceId]) => withOutbound((o) => o.retireInstance(instanceId as string))));
}
