/** APPEND (RFC 3501 section 6.3.11) with optional flags and date, answering with APPENDUID. */
import { argItems, argText } from '../parser.js';
import { parseDateTime } from '../response.js';
import { AUTHENTICATED, bad, no, ok, type CommandSpec } from './context.js';

export const append: CommandSpec = {
  states: AUTHENTICATED,
  run(ctx, { args }) {
    const name = argText(args[0]);
    const content = args[args.length - 1];
    const options = args.slice(1, -1);
    const flagList = options[0]?.kind === 'list' ? options.shift() : undefined;
    const dateText = options.length === 1 ? argText(options[0]) : undefined;
    if (name === undefined || !ctx.user || content?.kind !== 'string' || args.length < 2 || options.length > 1) {
      return bad('APPEND expects a mailbox, optional flags and date, and a literal');
    }
    const date = dateText === undefined ? undefined : parseDateTime(dateText);
    if (dateText !== undefined && !date) {
      return bad('Invalid APPEND date');
    }
    const flags = argItems(flagList).map(argText);
    if (flags.some((flag) => flag === undefined)) {
      return bad('APPEND flags must be atoms');
    }
    const mailbox = ctx.store.findMailbox(ctx.user, name);
    if (!mailbox) {
      return no('Mailbox does not exist', 'TRYCREATE');
    }
    const message = ctx.store.append(ctx.user, mailbox, Buffer.from(content.value), {
      flags: flags as string[],
      date,
    });
    return ok('APPEND completed', `APPENDUID ${mailbox.uidValidity} ${message.uid}`);
  },
};
