import type { Command } from 'commander';
import { loadConfig } from '../config/config.js';
import { resolveSecrets } from '../config/local-secrets.js';
import { MailroomError } from '../shared/errors.js';
import { printError } from './output.js';
import { isUuid } from '../shared/validation.js';

const STATUS_EVERY_MS = 2_000;

interface LoginOptions {
  purpose: string;
  url?: string;
  token?: string;
}

interface Api {
  call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T>;
}

/** The running engine's API: the sign-in runs in the engine, the CLI only shows it. */
async function engineApi(options: LoginOptions): Promise<Api> {
  const config = loadConfig();
  const base =
    options.url ??
    `http://${config.httpHost.includes(':') ? `[${config.httpHost}]` : config.httpHost}:${config.httpPort}`;
  const token = options.token ?? config.apiToken ?? (await resolveSecrets(config)).apiToken;
  return {
    async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
      let res: Response;
      try {
        res = await fetch(new URL(path, base), {
          method,
          headers: {
            authorization: `Bearer ${token}`,
            ...(body !== undefined && { 'content-type': 'application/json' }),
          },
          ...(body !== undefined && { body: JSON.stringify(body) }),
        });
      } catch (err) {
        throw new MailroomError(
          'UNAVAILABLE',
          `the engine does not answer at ${base}: start it with 'mailroom start'`,
          {
            cause: err,
          },
        );
      }
      const answer = (await res.json()) as T & { error?: { code: string; message: string } };
      if (!res.ok) {
        const code = (answer.error?.code ?? 'INTERNAL') as ConstructorParameters<typeof MailroomError>[0];
        throw new MailroomError(code, answer.error?.message ?? `HTTP ${res.status}`);
      }
      return answer;
    },
  };
}

async function idOf(api: Api, path: string, key: string, ref: string, what: string): Promise<string> {
  if (isUuid(ref)) return ref;
  const list = await api.call<Record<string, Array<{ id: string; name: string }>>>('GET', path);
  const match = (list[key] ?? []).find((item) => item.name.toLowerCase() === ref.toLowerCase());
  if (!match)
    throw new MailroomError(
      key === 'tenants' ? 'TENANT_NOT_FOUND' : 'SERVER_NOT_FOUND',
      `no ${what} is named '${ref}'`,
    );
  return match.id;
}

function countdown(seconds: number): string {
  const s = Math.max(0, Math.round(seconds));
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, '0')}`;
}

interface PurposeStatus {
  status: string;
  account: string | null;
  expiresAt: string | null;
  error: string | null;
}

async function login(tenantRef: string, serverRef: string, options: LoginOptions): Promise<number> {
  if (options.purpose !== 'imap' && options.purpose !== 'smtp') {
    throw new MailroomError('VALIDATION_FAILED', "--purpose must be 'imap' or 'smtp'", { field: 'purpose' });
  }
  const purpose = options.purpose;
  const api = await engineApi(options);
  const tenantId = await idOf(api, '/api/v1/tenants', 'tenants', tenantRef, 'tenant');
  const serverId = await idOf(api, `/api/v1/tenants/${tenantId}/servers`, 'servers', serverRef, 'e-mail server');
  const base = `/api/v1/tenants/${tenantId}/servers/${serverId}/oauth`;
  const code = await api.call<{ userCode: string; verificationUri: string; expiresIn: number; message: string }>(
    'POST',
    `${base}/device-code`,
    { purpose },
  );
  process.stdout.write(`${code.message}\n\n  Code: ${code.userCode}\n  Open: ${code.verificationUri}\n\n`);
  const deadline = Date.now() + code.expiresIn * 1000;
  const tty = process.stderr.isTTY === true;
  for (;;) {
    await new Promise((resolve) => setTimeout(resolve, STATUS_EVERY_MS));
    const state = (await api.call<Record<'imap' | 'smtp', PurposeStatus | null>>('GET', base))[purpose];
    if (!state) throw new MailroomError('OAUTH_NOT_CONFIGURED', `${purpose} no longer uses OAuth 2.0`);
    if (state.status !== 'PENDING') {
      if (tty) process.stderr.write('\n');
      const who = state.account ? ` as ${state.account}` : '';
      process.stdout.write(
        `${purpose.toUpperCase()} sign-in: ${state.status}${who}${state.error ? ` (${state.error})` : ''}\n`,
      );
      return state.status === 'COMPLETE' ? 0 : 1;
    }
    const left = countdown((deadline - Date.now()) / 1000);
    if (tty) process.stderr.write(`\rwaiting for the sign-in… ${left} left `);
    else if (Math.round((deadline - Date.now()) / 1000) % 60 < STATUS_EVERY_MS / 1000) {
      process.stderr.write(`waiting for the sign-in… ${left} left\n`);
    }
  }
}

/** `mailroom oauth login <tenant> <server> --purpose imap|smtp`. */
export function addOAuthCommands(program: Command): void {
  const oauth = program
    .command('oauth')
    .description('OAuth 2.0 sign-in of e-mail servers (the engine must be running)');
  oauth
    .command('login <tenant> <server>')
    .description('request a device code, print it with the sign-in URL, and wait for the sign-in (with a countdown)')
    .option('--purpose <purpose>', "'imap' or 'smtp'", 'imap')
    .option('--url <url>', 'the engine API [http://MAILROOM_HTTP_HOST:MAILROOM_HTTP_PORT]')
    .option('--token <token>', 'an API token [MAILROOM_API_TOKEN or the local administrator token]')
    .action(async (tenant: string, server: string, options: LoginOptions) => {
      try {
        process.exitCode = await login(tenant, server, options);
      } catch (err) {
        process.exitCode = printError(err);
      }
    });
}
