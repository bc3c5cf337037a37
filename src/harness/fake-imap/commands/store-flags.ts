/** STORE and UID STORE: FLAGS, +FLAGS and -FLAGS, each with an optional .SILENT. */
import { argItems, argText } from '../parser.js';
import { formatFlags } from '../response.js';
import { parseSequenceSet } from '../sequence-set.js';
import { bad, no, ok, SELECTED, type CommandSpec } from './context.js';

const OPERATION = /^([+-]?)FLAGS(\.SILENT)?$/i;

export const storeFlags: CommandSpec = {
  states: SELECTED,
  uid: true,
  run(ctx, { uid, args }) {
    const view = ctx.selected;
    const ranges = parseSequenceSet(argText(args[0]) ?? '');
    const operation = OPERATION.exec(argText(args[1]) ?? '');
    const flags = args.slice(2).flatMap(argItems).map(argText);
    if (!view || !ctx.user || !ranges || !operation || flags.some((flag) => flag === undefined)) {
      return bad('STORE expects a sequence set, an operation and flags');
    }
    if (view.readOnly) {
      return no('Mailbox is read-only', 'READ-ONLY');
    }
    const names = (flags as string[]).filter((flag) => flag.toLowerCase() !== '\\recent');
    const [, sign, silent] = operation;
    let changed = false;
    for (const { seq, message } of view.select(ranges, uid)) {
      const before = formatFlags(message.flags);
      if (sign === '') {
        message.flags = new Set(names);
      }
      for (const flag of names) {
        if (sign === '+') {
          message.flags.add(flag);
        } else if (sign === '-') {
          message.flags.delete(flag);
        }
      }
      changed ||= before !== formatFlags(message.flags);
      if (!silent) {
        ctx.untagged(`${seq} FETCH (${uid ? `UID ${message.uid} ` : ''}FLAGS ${formatFlags(message.flags)})`);
        view.flagsReported(message);
      }
    }
    if (changed) {
      ctx.store.changed(ctx.user, view.mailbox);
    }
    return ok('STORE completed');
  },
};
