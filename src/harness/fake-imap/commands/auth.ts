/** LOGIN and AUTHENTICATE (PLAIN and XOAUTH2, with or without an initial response). */
import { argText } from '../parser.js';
import type { UserAccount } from '../store.js';
import { bad, no, NOT_AUTHENTICATED, ok, type CommandContext, type CommandSpec, type Completion } from './context.js';

/** The JSON a Google server sends when an XOAUTH2 token is refused, base64 encoded. */
const XOAUTH2_ERROR = Buffer.from(
  JSON.stringify({ status: '401', schemes: 'bearer', scope: 'https://mail.google.com/' }),
).toString('base64');

function refused(): Completion {
  return no('Authentication failed', 'AUTHENTICATIONFAILED');
}

function loggedIn(ctx: CommandContext, user: UserAccount): Completion {
  ctx.authenticated(user);
  return ok('Logged in', `CAPABILITY ${ctx.capabilities().join(' ')}`);
}

function passwordLogin(ctx: CommandContext, userName: string, password: string): Completion {
  const user = ctx.store.findUser(userName);
  if (ctx.faults.loginsRefused || !user || user.password === undefined || user.password !== password) {
    return refused();
  }
  return loggedIn(ctx, user);
}

export const login: CommandSpec = {
  states: NOT_AUTHENTICATED,
  run(ctx, { args }) {
    const userName = argText(args[0]);
    const password = argText(args[1]);
    if (userName === undefined || password === undefined || args.length !== 2) {
      return bad('LOGIN expects a user name and a password');
    }
    return passwordLogin(ctx, userName, password);
  },
};

/** The client's SASL response: the initial response, or the answer to an empty challenge. */
async function saslResponse(ctx: CommandContext, initial: string | undefined): Promise<string> {
  if (initial !== undefined) {
    return initial === '=' ? '' : initial;
  }
  return ctx.continuation('');
}

function decodeBase64(text: string): string | undefined {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) {
    return undefined;
  }
  return Buffer.from(text, 'base64').toString('utf8');
}

async function plain(ctx: CommandContext, initial: string | undefined): Promise<Completion> {
  const response = await saslResponse(ctx, initial);
  if (response === '*') {
    return bad('AUTHENTICATE cancelled');
  }
  const fields = decodeBase64(response)?.split('\x00');
  if (fields?.length !== 3) {
    return bad('Malformed PLAIN response');
  }
  const [authzid = '', authcid = '', password = ''] = fields;
  if (authzid && authzid !== authcid) {
    return no('Not authorized to act as another user', 'AUTHORIZATIONFAILED');
  }
  return passwordLogin(ctx, authcid, password);
}

async function xoauth2(ctx: CommandContext, initial: string | undefined): Promise<Completion> {
  const response = await saslResponse(ctx, initial);
  if (response === '*') {
    return bad('AUTHENTICATE cancelled');
  }
  const fields = new Map<string, string>();
  for (const field of decodeBase64(response)?.split('\x01') ?? []) {
    const separator = field.indexOf('=');
    if (separator > 0) {
      fields.set(field.slice(0, separator).toLowerCase(), field.slice(separator + 1));
    }
  }
  const userName = fields.get('user');
  const token = /^Bearer (.+)$/i.exec(fields.get('auth') ?? '')?.[1];
  if (userName === undefined || token === undefined) {
    return bad('Malformed XOAUTH2 response');
  }
  const user = ctx.store.findUser(userName);
  const accepted = user?.accessTokens.has(token) === true || ctx.settings.verifyAccessToken?.(userName, token) === true;
  if (ctx.faults.loginsRefused || !user || !accepted) {
    // The error travels in a challenge, and the client answers it with an empty line
    await ctx.continuation(XOAUTH2_ERROR);
    return refused();
  }
  return loggedIn(ctx, user);
}

export const authenticate: CommandSpec = {
  states: NOT_AUTHENTICATED,
  async run(ctx, { args }) {
    const mechanism = argText(args[0])?.toUpperCase();
    const initial = argText(args[1]);
    if (initial !== undefined && !ctx.settings.saslIr) {
      return bad('SASL-IR is not enabled');
    }
    switch (mechanism) {
      case 'PLAIN':
        return plain(ctx, initial);
      case 'XOAUTH2':
        return xoauth2(ctx, initial);
      default:
        return no('Unsupported authentication mechanism');
    }
  },
};
