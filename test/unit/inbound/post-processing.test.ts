import assert from 'node:assert/strict';
import { PostProcessing, type StoredMessage } from '../../../src/inbound/post-processing.js';
import type { ImapSession } from '../../../src/inbound/imap-session.js';
import type { EmailServerRow } from '../../../src/store/rows.js';

import type { Store } from '../../../src/store/store.js';
import { capturingLogger } from '../../support/log-capture.js';

/** A session that records the actions asked of it. */
function recordingSession(): { session: ImapSession; actions: string[] } {
  const actions: string[] = [];
  const session = {
    markSeen: async (uids: number[]) => void actions.push(`seen ${uids.join(',')}`),
    delete: async (uids: number[]) => void actions.push(`delete ${uids.join(',')}`),
    move: async (uids: number[], to: string) => void actions.push(`move ${uids.join(',')} ${to}`),
  } as unknown as ImapSession;
  return { session, actions };
}

const rows = [{ uid: 7, status: 'routed' } as StoredMessage];
const server = (postProcess: string, imapFolders: string[] = []): EmailServerRow =>
  ({ id: 's1', postProcess, imapFolders }) as unknown as EmailServerRow;

describe('post-processing', () => {
  const post = new PostProcessing({} as Store);

  it('moves mail to a folder the server does not watch', async () => {
    const { session, actions } = recordingSession();
    assert.equal(await post.run(session, server('move:Archive'), rows, null, capturingLogger().logger), true);
    assert.deepEqual(actions, ['move 7 Archive']);
  });

  it('never moves mail into a watched folder (saved before that was refused): marks it read, and says so', async () => {
    for (const [action, folders] of [
      ['move:inbox', []],
      ['move:Work', ['INBOX', 'Work']],
    ] as const) {
      const { session, actions } = recordingSession();
      const { logger, lines } = capturingLogger();
      assert.equal(await post.run(session, server(action, [...folders]), rows, null, logger), true);
      assert.deepEqual(actions, ['seen 7'], action);
      assert.ok(
        lines.some((l) => /not moving mail into a folder this server watches/.test(l)),
        'a warning names what happened',
      );
    }
  });
});
