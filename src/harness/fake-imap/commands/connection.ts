/** Commands valid in every state: CAPABILITY, NOOP, LOGOUT, ID and ENABLE. */
import { ANY_STATE, AUTHENTICATED, ok, type CommandSpec } from './context.js';

/** Server identification returned by ID (RFC 2971). */
const SERVER_ID = ['"name"', '"Mailroom fake IMAP"', '"vendor"', '"Mailroom"'];

export const capability: CommandSpec = {
  states: ANY_STATE,
  run(ctx) {
    ctx.untagged(`CAPABILITY ${ctx.capabilities().join(' ')}`);
    return ok('CAPABILITY completed');
  },
};

/** Changes to the selected mailbox are reported by the session after every command. */
export const noop: CommandSpec = {
  states: ANY_STATE,
  run: () => ok('NOOP completed'),
};

export const logout: CommandSpec = {
  states: ANY_STATE,
  run(ctx) {
    ctx.untagged('BYE Logging out');
    ctx.endAfterResponse();
    return ok('LOGOUT completed');
  },
};

export const id: CommandSpec = {
  states: ANY_STATE,
  run(ctx) {
    ctx.untagged(`ID (${SERVER_ID.join(' ')})`);
    return ok('ID completed');
  },
};

/** No extension can be enabled: the answer lists none (RFC 5161 says unknown ones are ignored). */
export const enable: CommandSpec = {
  states: AUTHENTICATED,
  run(ctx) {
    ctx.untagged('ENABLED');
    return ok('ENABLE completed');
  },
};
