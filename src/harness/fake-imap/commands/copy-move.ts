/** COPY and MOVE with their UID forms, answering with COPYUID (RFC 4315, RFC 6851). */
import { argText } from '../parser.js';
import { formatSequenceSet, parseSequenceSet } from '../sequence-set.js';
import { bad, no, ok, SELECTED, type CommandSpec } from './context.js';

function transfer(kind: 'COPY' | 'MOVE'): CommandSpec {
  return {
    states: SELECTED,
    uid: true,
    run(ctx, { uid, args }) {
      const view = ctx.selected;
      const user = ctx.user;
      const ranges = parseSequenceSet(argText(args[0]) ?? '');
      const destinationName = argText(args[1]);
      if (!view || !user || !ranges || destinationName === undefined) {
        return bad(`${kind} expects a sequence set and a mailbox name`);
      }
      if (kind === 'MOVE' && view.readOnly) {
        return no('Mailbox is read-only', 'READ-ONLY');
      }
      const destination = ctx.store.findMailbox(user, destinationName);
      if (!destination) {
        return no('Destination mailbox does not exist', 'TRYCREATE');
      }
      const current = new Set(view.mailbox.messages);
      const sources = view.select(ranges, uid).filter((entry) => current.has(entry.message));
      if (!sources.length) {
        return ok(`${kind} completed, nothing to do`);
      }
      const copies = sources.map(({ message }) =>
        ctx.store.append(user, destination, message.raw, {
          flags: [...message.flags],
          date: message.internalDate,
          // Gmail: a copy is the message with one more label, the same X-GM-MSGID.
          ...(message.gmMsgId !== undefined && { gmMsgId: message.gmMsgId }),
        }),
      );
      const code = [
        'COPYUID',
        destination.uidValidity,
        formatSequenceSet(sources.map((entry) => entry.message.uid)),
        formatSequenceSet(copies.map((copy) => copy.uid)),
      ].join(' ');
      if (kind === 'COPY') {
        return ok('COPY completed', code);
      }
      ctx.untagged(`OK [${code}] Moved`);
      ctx.store.remove(view.mailbox, new Set(sources.map((entry) => entry.message)));
      ctx.store.changed(user, view.mailbox);
      return ok('MOVE completed');
    },
  };
}

export const copy = transfer('COPY');
export const move = transfer('MOVE');
