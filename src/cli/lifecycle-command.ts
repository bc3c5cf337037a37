import type { Command } from 'commander';
import type { Accounts } from '../accounts/index.js';
import { exportTenant, MAX_RETENTION_DAYS, POLICY_FIELDS, setRetention } from '../lifecycle/index.js';
import { migrateSources } from '../lifecycle/blob-migration.js';
import { MailroomError } from '../shared/errors.js';
import type { RetentionPolicy } from '../store/lifecycle-repositories.js';
import { print, printError, type OutputOptions } from './output.js';
import { tenantIdOf, withServices } from './services.js';

/** A command's action: `fn` gets its own options; its result is printed. */
function action(fn: (options: Record<string, unknown>) => Promise<unknown>) {
  return async (...args: unknown[]): Promise<void> => {
    const command = args[args.length - 1] as Command;
    try {
      print(await fn(command.opts()), command.optsWithGlobals<OutputOptions>());
    } catch (err) {
      process.exitCode = printError(err);
    }
  };
}

/** The tenant's configuration as the API shows it (secrets only as `has…: true`). */
async function configurationOf(accounts: Accounts, tenantId: string): Promise<Record<string, unknown>> {
  return {
    tenant: await accounts.tenants.get(tenantId),
    servers: await accounts.servers.list(tenantId),
    destinations: await accounts.destinations.list(tenantId),
  };
}

/** The option of each retention field (`rawSourceDays` → `--raw-source-days`). */
function optionOf(field: string): string {
  return `--${field.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
}

/** `30` → 30, `forever` (or `null`) → null; anything else is refused naming the field. */
export function daysArg(value: string, field: string): number | null {
  const text = value.trim().toLowerCase();
  if (text === 'forever' || text === 'null') return null;
  if (!/^\d+$/.test(text) || Number(text) < 1 || Number(text) > MAX_RETENTION_DAYS) {
    throw new MailroomError(
      'VALIDATION_FAILED',
      `${field} must be a whole number of days from 1 to ${MAX_RETENTION_DAYS}, or 'forever' (got '${value}')`,
      { field },
    );
  }
  return Number(text);
}

/** `mailroom export`, `mailroom retention show|set`, `mailroom blobs migrate`: the data lifecycle. */
export function addLifecycleCommands(program: Command): void {
  program
    .command('export')
    .description(
      "write a tenant's configuration (no secrets) and its messages as .eml files with a JSON index " +
        '(index.json) into an empty folder: for a move, or a customer’s access request (--address)',
    )
    .requiredOption('-t, --tenant <tenant>', 'the tenant (id or name)')
    .requiredOption('-o, --out <dir>', 'the folder to write (created; it must be empty)')
    .option('-a, --address <address>', 'only the messages from or to this address')
    .action(
      action((o) =>
        withServices(async ({ accounts, store, logger }) => {
          const tenantId = await tenantIdOf(accounts, o['tenant'] as string);
          return exportTenant(
            { store, logger, configuration: (id) => configurationOf(accounts, id) },
            { tenantId, out: o['out'] as string, address: o['address'] as string | undefined },
          );
        }),
      ),
    );

  const retention = program
    .command('retention')
    .description("a tenant's retention: days each kind of data is kept (forever unless set)");
  retention
    .command('show')
    .description("show a tenant's retention (null: kept forever)")
    .requiredOption('-t, --tenant <tenant>', 'the tenant (id or name)')
    .action(
      action((o) =>
        withServices(async ({ accounts, store }) =>
          store.lifecycle.policy(await tenantIdOf(accounts, o['tenant'] as string)),
        ),
      ),
    );
  const set = retention
    .command('set')
    .description(
      "change a tenant's retention: the fields given change (days, or 'forever'), the others stay; " +
        'the engine applies it at its next retention run',
    )
    .requiredOption('-t, --tenant <tenant>', 'the tenant (id or name)');
  const meaning: Record<(typeof POLICY_FIELDS)[number], string> = {
    rawSourceDays: 'raw sources (the .eml) of inbound messages',
    messageBodyDays: 'text and HTML bodies of inbound messages',
    messageDays: 'inbound messages with their deliveries and webhook rows',
    outboundDays: 'sent and failed outgoing records, and dead letters',
    logDays: 'delivered webhook rows and the send log',
  };
  for (const field of POLICY_FIELDS) set.option(`${optionOf(field)} <days>`, `${meaning[field]}: days or 'forever'`);
  set.action(
    action(async (o) => {
      const patch: Partial<RetentionPolicy> = {};
      for (const field of POLICY_FIELDS) {
        const value = o[field];
        if (typeof value === 'string') patch[field] = daysArg(value, field);
      }
      if (Object.keys(patch).length === 0) {
        throw new MailroomError('VALIDATION_FAILED', `give at least one of ${POLICY_FIELDS.map(optionOf).join(', ')}`, {
          field: 'retention',
        });
      }
      return withServices(async ({ accounts, store, logger }) =>
        setRetention({ store, logger }, await tenantIdOf(accounts, o['tenant'] as string), patch),
      );
    }),
  );

  program
    .command('blobs')
    .description('message sources in their backends (PostgreSQL, MAILROOM_BLOB_DIR, MAILROOM_S3_*)')
    .command('migrate')
    .description(
      'move every message source into one backend, while the engine runs; progress on standard error; ' +
        'stopped or failed, run it again to carry on. Both backends must be configured.',
    )
    .requiredOption('--to <backend>', 'postgres, directory or s3')
    .option('--batch-size <n>', 'sources per batch', '100')
    .action(
      action(async (o) => {
        const size = String(o['batchSize']);
        if (!/^\d+$/.test(size)) {
          throw new MailroomError('VALIDATION_FAILED', `batchSize must be a whole number (got '${size}')`, {
            field: 'batchSize',
          });
        }
        return withServices(({ store, logger }) =>
          migrateSources(
            { store, logger },
            {
              to: o['to'] as string,
              batchSize: Number(size),
              onProgress: (p) => {
                const percent = p.total === 0 ? 100 : Math.round((100 * (p.moved + p.missing + p.skipped)) / p.total);
                process.stderr.write(
                  `moved ${p.moved}/${p.total} sources (${percent}%), ${(p.movedBytes / 1e6).toFixed(1)} MB` +
                    `${p.missing > 0 ? `, ${p.missing} missing` : ''}\n`,
                );
              },
            },
          ),
        );
      }),
    );
}
