/** IDLE (RFC 2177): pushes mailbox changes until the client sends DONE. */
import { AUTHENTICATED, bad, ok, type CommandSpec } from './context.js';

export const idle: CommandSpec = {
  states: AUTHENTICATED,
  async run(ctx) {
    if (ctx.faults.idleDisabled) {
      return bad('Unknown command IDLE');
    }
    const done = ctx.continuation('idling');
    const updates = ctx.pushUpdates();
    let line: string;
    try {
      line = await done;
    } finally {
      updates.stop();
    }
    return line.trim().toUpperCase() === 'DONE' ? ok('IDLE terminated') : bad('Expected DONE');
  },
};
