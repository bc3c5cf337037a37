import assert from 'node:assert/strict';
import {
  classifyImapError,
  describeImapError,
  ImapCommandError,
  isAuthFailure,
  type ImapErrorKind,
} from '../../../src/inbound/imap-errors.js';
import { MailroomError } from '../../../src/shared/errors.js';

/** Errors as imapflow and Node's sockets make them (their own fields, as documented in imapflow's README). */
const sock = (code: string): Error => Object.assign(new Error(`connect ${code}`), { code });
const said = (responseText: string, serverResponseCode?: string): Error =>
  Object.assign(new Error('Command failed'), { responseText, ...(serverResponseCode && { serverResponseCode }) });

describe('IMAP errors', () => {
  const table: Array<[string, unknown, ImapErrorKind]> = [
    ['authenticationFailed', Object.assign(new Error('Authentication failed'), { authenticationFailed: true }), 'auth'],
    ['AUTHENTICATIONFAILED code', said('Invalid credentials', 'AUTHENTICATIONFAILED'), 'auth'],
    ['refused port', sock('ECONNREFUSED'), 'refused'],
    ['unknown host', sock('ENOTFOUND'), 'unresolved'],
    ['DNS trouble', sock('EAI_AGAIN'), 'unresolved'],
    ['connect timeout', sock('CONNECT_TIMEOUT'), 'timeout'],
    ['greeting timeout', sock('GREETING_TIMEOUT'), 'timeout'],
    ['socket timeout', sock('ETIMEDOUT'), 'timeout'],
    ['NO from the server', said('Mailbox does not exist', 'NONEXISTENT'), 'server'],
    ['a dropped connection', new Error('Connection not available'), 'other'],
    ['not an error at all', 'boom', 'other'],
    ['null', null, 'other'],
  ];
  for (const [name, err, kind] of table) {
    it(`classifies ${name} as ${kind}`, () => assert.equal(classifyImapError(err), kind));
  }

  it('keeps the facts of the error a command failed with, and names the command', () => {
    const wrapped = new ImapCommandError('UID FETCH (BODY.PEEK[])', said('Server in maintenance'));
    assert.equal(wrapped.command, 'UID FETCH (BODY.PEEK[])');
    assert.equal(wrapped.message, 'UID FETCH (BODY.PEEK[]) failed');
    assert.equal(classifyImapError(wrapped), 'server');
    assert.equal(
      describeImapError(wrapped, 'connectError'),
      'UID FETCH (BODY.PEEK[]) failed (the server said: Server in maintenance)',
    );
    assert.equal(isAuthFailure(new ImapCommandError('LOGIN', said('no', 'AUTHENTICATIONFAILED'))), true);
    assert.equal(classifyImapError(new ImapCommandError('NOOP', sock('ETIMEDOUT'))), 'timeout');
    assert.equal(new ImapCommandError('NOOP', sock('ETIMEDOUT')).message, 'NOOP failed: connect ETIMEDOUT');
  });

  it('says what happened in plain words', () => {
    assert.equal(
      describeImapError(said('Invalid credentials (Failure)'), 'authError'),
      'the server refused the login: Invalid credentials (Failure) (check the user name and password)',
    );
    assert.equal(
      describeImapError(sock('ECONNREFUSED'), 'connectError'),
      'the server refused the connection: check the host name and port (ECONNREFUSED)',
    );
    assert.equal(describeImapError(sock('ENOTFOUND'), 'connectError'), 'the host name does not resolve (ENOTFOUND)');
    assert.equal(
      describeImapError(sock('GREETING_TIMEOUT'), 'connectError'),
      'the server did not answer in time (GREETING_TIMEOUT)',
    );
    const own = new MailroomError('CREDENTIALS_UNAVAILABLE', 'the sign-in is not complete');
    assert.equal(describeImapError(own, 'authError'), 'the sign-in is not complete');
    assert.equal(describeImapError(said('x'.repeat(500)), 'connectError').length, 'Command failed'.length + 200 + 20);
  });
});
