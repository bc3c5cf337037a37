import assert from 'node:assert/strict';
import {
  accountKeyOf,
  checkServerInput,
  formOf,
  keepableSecrets,
  mergeServer,
  rowFieldsOf,
  voidedSignIns,
  withInheritedSmtpApp,
} from '../../../src/accounts/server-form.js';
import type { ServerInput } from '../../../src/accounts/schemas.js';
import type { EmailServerRow } from '../../../src/store/rows.js';

const input: ServerInput = {
  name: 'Main',
  imap: { host: 'imap.example.com', user: 'a@example.com', auth: { method: 'password', password: 'p' } },
  smtp: { host: 'smtp.example.com', port: 465, auth: { mode: 'imap' } },
};

function rowOf(i: ServerInput): EmailServerRow {
  return {
    id: 's1',
    tenantId: 't1',
    ...rowFieldsOf(i),
    imapPasswordSealed: 'sealed',
    imapClientSecretSealed: null,
    smtpPasswordSealed: null,
    smtpClientSecretSealed: null,
    hostsByTenant: false,
    createdAt: new Date(),
    updatedAt: new Date(),
  };
}

describe('server form', () => {
  it('applies the defaults of the reference', () => {
    const f = rowFieldsOf(input);
    assert.equal(f.imapPort, 993);
    assert.equal(f.imapSecure, true);
    assert.equal(f.smtpSecure, true, 'port 465 is implicit TLS');
    assert.equal(f.postProcess, 'seen');
    assert.equal(f.smtpRateLimitPerHour, 0);
    assert.equal(rowFieldsOf({ ...input, imap: { ...input.imap, secure: false } }).imapPort, 143);
  });

  describe('protocol graph', () => {
    const graph: ServerInput = {
      name: 'M365',
      protocol: 'graph',
      imap: {
        host: 'graph.microsoft.com',
        user: 'desk@contoso.example',
        auth: { method: 'oauth2', clientId: 'c', directoryId: 'd', flow: 'device-code' },
      },
      smtp: { host: 'graph.microsoft.com', port: 443, auth: { mode: 'imap' } },
    };

    it('defaults to imap, and a graph server to port 443, and round-trips the protocol', () => {
      assert.equal(rowFieldsOf(input).protocol, 'imap');
      const f = rowFieldsOf(graph);
      assert.equal(f.protocol, 'graph');
      assert.equal(f.imapPort, 443);
      assert.equal(formOf(rowOf(graph)).protocol, 'graph');
      assert.equal(mergeServer(formOf(rowOf(input)), { protocol: 'graph' }).protocol, 'graph');
      checkServerInput(graph);
    });

    it('refuses a password, SMTP credentials of its own, or plain text, naming the field', () => {
      const password: ServerInput = { ...graph, imap: { ...graph.imap, auth: { method: 'password', password: 'p' } } };
      assert.throws(
        () => checkServerInput(password),
        (e: { field?: string }) => e.field === 'imap.auth.method',
      );
      const smtp: ServerInput = { ...graph, smtp: { ...graph.smtp, auth: { mode: 'none' } } };
      assert.throws(
        () => checkServerInput(smtp),
        (e: { field?: string }) => e.field === 'smtp.auth.mode',
      );
      const plain: ServerInput = { ...graph, imap: { ...graph.imap, tls: 'none' } };
      assert.throws(
        () => checkServerInput(plain),
        (e: { field?: string }) => e.field === 'imap.tls',
      );
    });
  });

  it('refuses to move mail into a folder the server watches (it would be read there again, without end)', () => {
    const refused = (i: ServerInput): void =>
      assert.throws(
        () => checkServerInput(i),
        (e: { field?: string; message?: string }) =>
          e.field === 'postProcess' && /a folder this server watches/.test(e.message ?? ''),
      );
    refused({ ...input, postProcess: 'move:inbox' });
    refused({ ...input, postProcess: 'move:INBOX' });
    refused({ ...input, imap: { ...input.imap, folders: ['INBOX', 'Work'] }, postProcess: 'move:Work' });
    checkServerInput({ ...input, imap: { ...input.imap, folders: ['INBOX', 'Work'] }, postProcess: 'move:work' });
    checkServerInput({ ...input, postProcess: 'move:Archive' });
    checkServerInput({ ...input, imap: { ...input.imap, folders: ['Work'] }, postProcess: 'move:INBOX' });
  });

  it('keys an account by host and user, ignoring case and a trailing dot', () => {
    assert.equal(accountKeyOf('IMAP.Example.com.', 'A@Example.com'), accountKeyOf('imap.example.com', 'a@example.com'));
    assert.notEqual(accountKeyOf('imap.example.com', 'a'), accountKeyOf('imap.example.com', 'b'));
  });

  it('round-trips a row to a form', () => {
    const row = rowOf(input);
    const again = rowFieldsOf(formOf(row));
    assert.deepEqual(again, rowFieldsOf(input));
  });

  it('merges a patch deeply, replacing auth when its method changes', () => {
    const form = formOf(rowOf(input));
    const merged = mergeServer(form, { imap: { port: 10993 } });
    assert.equal(merged.imap.port, 10993);
    assert.equal(merged.imap.host, 'imap.example.com');
    const switched = mergeServer(form, { imap: { auth: { method: 'oauth2', clientId: 'c', directoryId: 'd' } } });
    assert.deepEqual(switched.imap.auth, { method: 'oauth2', clientId: 'c', directoryId: 'd' });
    const insecure = mergeServer(form, { imap: { secure: false } });
    assert.equal(insecure.imap.port, 143, 'a default port follows the TLS switch');
  });

  it('keeps a stored password only while host and user stay', () => {
    const row = rowOf(input);
    assert.equal(keepableSecrets(row, rowFieldsOf(input)).imapPassword, true);
    const moved = { ...input, imap: { ...input.imap, host: 'elsewhere.example.net' } };
    assert.equal(keepableSecrets(row, rowFieldsOf(moved)).imapPassword, false);
    const otherUser = { ...input, imap: { ...input.imap, user: 'b@example.com' } };
    assert.equal(keepableSecrets(row, rowFieldsOf(otherUser)).imapPassword, false);
  });

  it('keeps a stored secret only for the exact endpoint and transport security it was entered for', () => {
    const row = rowOf(input); // imaps on 993, SMTP mode imap on 465 with implicit TLS
    const change = (patch: Parameters<typeof mergeServer>[1]) =>
      keepableSecrets(row, rowFieldsOf(mergeServer(formOf(row), patch)));
    assert.equal(change({ name: 'Renamed', enabled: false }).imapPassword, true, 'nothing about the endpoint');
    const cases: [Parameters<typeof mergeServer>[1], RegExp][] = [
      [{ imap: { port: 10993 } }, /the IMAP port changed/],
      [{ imap: { secure: false, port: 993 } }, /the IMAP TLS setting changed/],
      [{ imap: { secure: false } }, /the IMAP port and TLS setting changed/],
      [{ proxy: 'none' }, /the IMAP proxy changed/],
      [{ imap: { caFile: 'other.pem' } }, /the IMAP CA file changed/],
      [{ smtp: { port: 2525 } }, /logs in to smtp\.example\.com:2525 with the IMAP credentials.*its port and TLS/],
      [{ smtp: { secure: false } }, /\(its TLS setting changed\)/],
    ];
    for (const [patch, why] of cases) {
      const kept = change(patch);
      assert.equal(kept.imapPassword, false, JSON.stringify(patch));
      assert.match(kept.imapDropped ?? '', why);
    }
    const custom: ServerInput = {
      ...input,
      smtp: { host: 'smtp.example.com', port: 587, auth: { mode: 'custom', user: 'relay', password: 'r' } },
    };
    const customRow = { ...rowOf(custom), smtpPasswordSealed: 'sealed' };
    const smtpChange = (patch: Parameters<typeof mergeServer>[1]) =>
      keepableSecrets(customRow, rowFieldsOf(mergeServer(formOf(customRow), patch)));
    assert.equal(smtpChange({ smtp: { rateLimitPerHour: 10 } }).smtpPassword, true);
    for (const patch of [{ smtp: { port: 25 } }, { smtp: { secure: true } }, { proxy: 'lab' }]) {
      const kept = smtpChange(patch);
      assert.equal(kept.smtpPassword, false, JSON.stringify(patch));
      assert.match(kept.smtpDropped ?? '', /the SMTP (port|TLS setting|proxy) changed/);
    }
  });

  it('keeps the IMAP password from an SMTP host that logs in with it (mode imap) only while that host stays', () => {
    const row = rowOf(input); // smtp: mode imap
    const moved = { ...input, smtp: { ...input.smtp, host: 'evil.example.net' } };
    const kept = keepableSecrets(row, rowFieldsOf(moved));
    assert.equal(kept.imapPassword, false);
    assert.match(kept.imapDropped ?? '', /logs in to evil\.example\.net:465 with the IMAP credentials/);
    const none: ServerInput = { ...input, smtp: { ...input.smtp, auth: { mode: 'none' } } };
    assert.equal(keepableSecrets(row, rowFieldsOf(none)).imapPassword, true, 'SMTP no longer uses it');
    const sharing = keepableSecrets({ ...row, ...rowFieldsOf(none) }, rowFieldsOf(input));
    assert.equal(sharing.imapPassword, false, 'SMTP starts logging in with it');
  });

  it('voids the OAuth 2.0 sign-ins whose app, user name or endpoints change', () => {
    const oauth: ServerInput = {
      ...input,
      imap: { ...input.imap, auth: { method: 'oauth2', clientId: 'app-1', directoryId: 'dir-1' } },
    };
    const row = rowOf(oauth);
    const change = (patch: Parameters<typeof mergeServer>[1]) =>
      voidedSignIns(row, rowFieldsOf(mergeServer(formOf(row), patch)));
    assert.deepEqual(change({ name: 'Renamed', smtp: { rateLimitPerHour: 5 } }), []);
    assert.deepEqual(change({ imap: { host: 'elsewhere.example.net' } }), ['imap']);
    assert.deepEqual(change({ imap: { port: 1993 } }), ['imap'], 'its tokens would go to another port');
    assert.deepEqual(change({ smtp: { port: 587 } }), ['imap'], 'SMTP presents the IMAP sign-in on another port');
    assert.deepEqual(change({ imap: { user: 'b@example.com' } }), ['imap']);
    assert.deepEqual(change({ smtp: { host: 'evil.example.net' } }), ['imap'], 'SMTP uses the IMAP sign-in');
    assert.deepEqual(change({ imap: { auth: { method: 'oauth2', clientId: 'app-2' } } }), ['imap']);
    assert.deepEqual(change({ imap: { auth: { method: 'password', password: 'p' } } }), ['imap']);
  });

  it('lets an SMTP secure setting that was only the default follow a change of port', () => {
    const plain = formOf(rowOf({ ...input, smtp: { ...input.smtp, port: 587 } }));
    assert.equal(rowFieldsOf(mergeServer(plain, { smtp: { port: 465 } })).smtpSecure, true);
    assert.equal(rowFieldsOf(mergeServer(formOf(rowOf(input)), { smtp: { port: 587 } })).smtpSecure, false);
    const chosen = formOf(rowOf({ ...input, smtp: { ...input.smtp, port: 587, secure: true } }));
    assert.equal(rowFieldsOf(mergeServer(chosen, { smtp: { port: 25 } })).smtpSecure, true, 'a choice stays');
  });

  it('says the TLS mode plainly: today’s behaviour by default, `secure` as of old, `tls` by name (issue 30)', () => {
    const f = rowFieldsOf(input);
    assert.equal(f.imapTls, 'implicit');
    assert.equal(f.smtpTls, 'implicit', 'port 465');
    const on587 = rowFieldsOf({ ...input, smtp: { ...input.smtp, port: 587 } });
    assert.equal(on587.smtpTls, 'starttls-when-offered', 'STARTTLS when offered: what port 587 always did');
    assert.equal(rowFieldsOf({ ...input, imap: { ...input.imap, secure: false } }).imapTls, 'starttls-when-offered');
    const required = rowFieldsOf({
      ...input,
      imap: { ...input.imap, tls: 'starttls-required' },
      smtp: { ...input.smtp, port: 587, tls: 'none' },
    });
    assert.equal(required.imapTls, 'starttls-required');
    assert.equal(required.imapPort, 143, 'the default port of a STARTTLS mode');
    assert.equal(required.imapSecure, false);
    assert.equal(required.smtpTls, 'none');
    assert.throws(
      () => checkServerInput({ ...input, smtp: { ...input.smtp, tls: 'starttls-required', secure: true } }),
      /'smtp.tls' is 'starttls-required' but 'smtp.secure' is true/,
    );
    checkServerInput({ ...input, smtp: { ...input.smtp, tls: 'implicit', secure: true } });

    const form = formOf(rowOf(input));
    assert.equal(form.imap.tls, 'implicit');
    const starttls = mergeServer(form, { imap: { tls: 'starttls-required' } });
    assert.equal(rowFieldsOf(starttls).imapPort, 143, 'a default port follows the mode');
    assert.equal(rowFieldsOf(mergeServer(formOf(rowOf(starttls)), { imap: { secure: true } })).imapTls, 'implicit');
    const none = mergeServer(formOf(rowOf({ ...input, smtp: { ...input.smtp, port: 25 } })), { smtp: { tls: 'none' } });
    assert.equal(rowFieldsOf(none).smtpTls, 'none');
    assert.equal(
      rowFieldsOf(mergeServer(formOf(rowOf(none)), { smtp: { port: 465 } })).smtpTls,
      'none',
      'a choice stays',
    );
  });

  it('lets a kept password satisfy the password rule', () => {
    const noPassword: ServerInput = { ...input, imap: { ...input.imap, auth: { method: 'password' } } };
    assert.throws(() => checkServerInput(noPassword), /imap.auth.password' is required/);
    checkServerInput(noPassword, {
      imapPassword: true,
      imapClientSecret: false,
      smtpPassword: false,
      smtpClientSecret: false,
    });
  });

  it('gives the SMTP side’s own OAuth 2.0 sign-in the IMAP side’s app registration when it names none', () => {
    const oauth: ServerInput = {
      name: 'Office 365',
      imap: {
        host: 'outlook.office365.com',
        user: 'a@contoso.test',
        auth: { method: 'oauth2', clientId: 'app-1', directoryId: 'dir-1', authorityHost: 'https://login.example' },
      },
      smtp: {
        host: 'smtp.office365.com',
        port: 587,
        secure: true,
        auth: { mode: 'custom', method: 'oauth2', user: 'a@contoso.test' },
      },
    };
    assert.throws(() => checkServerInput(oauth), /'smtp.auth.clientId' is required/, 'as the form arrives');
    const filled = withInheritedSmtpApp(oauth);
    checkServerInput(filled);
    assert.deepEqual(rowFieldsOf(filled).smtpOAuth, {
      clientId: 'app-1',
      directoryId: 'dir-1',
      flow: 'device-code',
      authorityHost: 'https://login.example',
    });
    const own = withInheritedSmtpApp({
      ...oauth,
      smtp: { ...oauth.smtp, auth: { ...oauth.smtp.auth, clientId: 'app-2', directoryId: 'dir-2' } },
    });
    assert.equal(rowFieldsOf(own).smtpOAuth?.clientId, 'app-2', 'its own registration when it names one');
    assert.equal(withInheritedSmtpApp(input), input, 'nothing to inherit without OAuth 2.0 on both sides');
  });
});
