/**
 * EXPUNGE and UID EXPUNGE (RFC 4315): removes the \Deleted messages, all of them or those in a
 * UID set. The session reports the removals as `* n EXPUNGE` before the tagged answer.
 */
import { argText } from '../parser.js';
import { parseSequenceSet } from '../sequence-set.js';
import { bad, no, ok, SELECTED, type CommandSpec } from './context.js';

export const expunge: CommandSpec = {
  states: SELECTED,
  uid: true,
  run(ctx, { uid, args }) {
    const view = ctx.selected;
    const ranges = uid ? parseSequenceSet(argText(args[0]) ?? '') : undefined;
    if (!view || !ctx.user || (uid && !ranges) || (!uid && args.length)) {
      return bad(uid ? 'UID EXPUNGE expects a UID set' : 'EXPUNGE takes no arguments');
    }
    if (view.readOnly) {
      return no('Mailbox is read-only', 'READ-ONLY');
    }
    const candidates = ranges ? view.select(ranges, true).map((entry) => entry.message) : view.mailbox.messages;
    const deleted = new Set(candidates.filter((message) => message.flags.has('\\Deleted')));
    if (deleted.size) {
      ctx.store.remove(view.mailbox, deleted);
      ctx.store.changed(ctx.user, view.mailbox);
    }
    return ok('EXPUNGE completed');
  },
};
