import { createHash } from 'node:crypto';
import type { Directory } from './directory.js';

/**
 * The fake identity provider's `verification_uri` (`/devicelogin`): the page where a person
 * finishes a device-code sign-in, as Microsoft's https://microsoft.com/devicelogin does in the
 * device authorization grant ("Microsoft identity platform and the OAuth 2.0 device authorization
 * grant flow", https://learn.microsoft.com/entra/identity-platform/v2-oauth2-device-code): the
 * app shows a `user_code` and the `verification_uri`; the person opens it in a browser, enters
 * the code and signs in; meanwhile the app polls the token endpoint, which answers
 * `authorization_pending` until then, the tokens after, `authorization_declined` when the person
 * cancels, and `expired_token` once `expires_in` (15 minutes) has passed. Microsoft's page asks
 * for the code first, then the account, then a confirmation; this one takes the code and an
 * account (the harness's mailboxes) in one form.
 *
 * Besides, what a person cannot do on Microsoft's page but needs to try the engine's answers:
 * revoke a person's grant (as an administrator's "Revoke sessions" or a password change does:
 * the refresh tokens stop working, the next refresh gets `invalid_grant`, "Refresh tokens in the
 * Microsoft identity platform", https://learn.microsoft.com/entra/identity-platform/refresh-tokens,
 * "Token revocation"), end a code's lifetime now, and end every access token (as if their hour
 * had passed). Each is a form on the page and a plain POST for curl, answered in HTML to a browser
 * (an `accept` naming text/html) and in JSON otherwise.
 *
 * No script at all, no resource from anywhere: the Content-Security-Policy allows only the page's
 * one inline style (by its hash) and forms posting to this origin, and a POST from another
 * site's page is refused (a page elsewhere cannot approve codes through a person's browser).
 */

export interface SignInPageOptions {
  directory: Directory;
  /** The people who can sign in (the harness's mailboxes); empty: any address typed in. */
  accounts: readonly string[];
  /** Called after a revocation (with the user) or the end of every access token (without one). */
  endSessions?: ((user: string | undefined) => void | Promise<void>) | undefined;
  /** Told of each sign-in, cancellation, revocation and expiry in a line a person reads (no secret). */
  report?: ((line: string) => void) | undefined;
}

export interface PageRequest {
  method: string;
  /** The path without the query. */
  path: string;
  /** The posted form (empty for GET). */
  form: URLSearchParams;
  headers: Record<string, string | string[] | undefined>;
}

export interface PageReply {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export const SIGN_IN_PATH = '/devicelogin';

const STYLE =
  'body{font-family:system-ui,sans-serif;max-width:40rem;margin:2rem auto;padding:0 1rem;line-height:1.4}' +
  'label{display:block;margin:.5rem 0}input[type=text]{font-size:1.2rem;letter-spacing:.1em}' +
  'fieldset{margin:.5rem 0}.error{color:#a00}.ok{color:#060}table{border-collapse:collapse}' +
  'td,th{padding:.25rem .5rem;text-align:left}form.inline{display:inline}';
const STYLE_HASH = createHash('sha256').update(STYLE).digest('base64');

/** The headers of every answer: a strict policy, nothing cached, framed or sniffed. */
const SECURITY_HEADERS: Record<string, string> = {
  'content-security-policy': [
    "default-src 'none'",
    `style-src 'sha256-${STYLE_HASH}'`,
    "form-action 'self'",
    "frame-ancestors 'none'",
    "base-uri 'none'",
  ].join('; '),
  'cache-control': 'no-store',
  'x-content-type-options': 'nosniff',
  'x-frame-options': 'DENY',
  // Not no-referrer: with it, Chromium sends `Origin: null` on the page's own form posts.
  'referrer-policy': 'same-origin',
};

const ACTIONS = ['', '/revoke', '/expire', '/expire-tokens'] as const;

/** Longest value a field may have, characters. */
const FIELD_LIMIT = 320;

interface Outcome {
  status: number;
  ok: boolean;
  message: string;
  field?: string;
}

function escapeHtml(text: string): string {
  return text.replace(
    /[&<>"']/g,
    (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c] as string,
  );
}

function header(req: PageRequest, name: string): string | undefined {
  const value = req.headers[name];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Whether a POST may act: a browser says where the form was with `Sec-Fetch-Site` (which a page
 * cannot set), and it must be this origin (`same-origin`; `same-site` would let any other
 * service on 127.0.0.1 in) or the person's own doing (`none`). Without that header (curl, older
 * browsers) an `Origin` sent must be this one.
 */
function fromThisPage(req: PageRequest): boolean {
  const site = header(req, 'sec-fetch-site');
  if (site !== undefined) return site === 'same-origin' || site === 'none';
  const origin = header(req, 'origin');
  return origin === undefined || origin === `https://${header(req, 'host') ?? ''}`;
}

export class SignInPage {
  constructor(private readonly options: SignInPageOptions) {}

  /** Whether `path` is one of this page's. */
  handles(path: string): boolean {
    return ACTIONS.some((action) => path === `${SIGN_IN_PATH}${action}`);
  }

  async answer(req: PageRequest): Promise<PageReply> {
    const html = (header(req, 'accept') ?? '').includes('text/html');
    if (req.method === 'GET' || req.method === 'HEAD') {
      if (req.path !== SIGN_IN_PATH) return this.reply(html, { status: 405, ok: false, message: 'use POST' });
      return this.reply(true, undefined);
    }
    if (req.method !== 'POST') return this.reply(html, { status: 405, ok: false, message: 'use GET or POST' });
    if (!fromThisPage(req)) {
      return this.reply(html, { status: 403, ok: false, message: 'a form of another site cannot post here' });
    }
    for (const [name, value] of req.form) {
      if (value.length > FIELD_LIMIT) {
        return this.reply(html, { status: 400, ok: false, field: name, message: `${name} is too long` });
      }
    }
    return this.reply(html, await this.act(req.path, req.form));
  }

  private async act(path: string, form: URLSearchParams): Promise<Outcome> {
    const { directory } = this.options;
    const report = (line: string): void => this.options.report?.(line);
    switch (path) {
      case SIGN_IN_PATH:
        return this.signIn(form);
      case `${SIGN_IN_PATH}/revoke`: {
        const account = (form.get('account') ?? '').trim();
        if (account === '') return { status: 400, ok: false, field: 'account', message: 'Name the account to revoke.' };
        const grant = directory.signedIn().find((s) => s.user.toLowerCase() === account.toLowerCase());
        const user = grant?.user ?? account;
        directory.revoke(user);
        await this.options.endSessions?.(user);
        report(`revoked the sign-in of ${user}: its refresh tokens now get invalid_grant`);
        return {
          status: 200,
          ok: true,
          message: grant
            ? `Revoked ${user}'s sign-in: the app's next refresh is refused (invalid_grant), and its mail connections were ended.`
            : `${user} had no sign-in to revoke; its mail connections were ended anyway.`,
        };
      }
      case `${SIGN_IN_PATH}/expire`: {
        const typed = form.get('code') ?? '';
        const code = directory.codeAsTyped(typed);
        if (!code) return { status: 400, ok: false, field: 'code', message: 'That code is not known.' };
        directory.expireDeviceCode(code.userCode);
        report(`expired code ${code.userCode}: the app's next poll gets expired_token`);
        return { status: 200, ok: true, message: `Code ${code.userCode} has expired: the app's next poll is told so.` };
      }
      default: {
        directory.expireAccessTokens();
        await this.options.endSessions?.(undefined);
        report('ended every access token: the app must refresh them');
        return {
          status: 200,
          ok: true,
          message: 'Every access token has ended, and the mail connections with them: the app refreshes its tokens.',
        };
      }
    }
  }

  private signIn(form: URLSearchParams): Outcome {
    const { directory, accounts } = this.options;
    const typed = (form.get('code') ?? '').trim();
    if (typed === '') return { status: 400, ok: false, field: 'code', message: 'Enter the code the app shows.' };
    const code = directory.codeAsTyped(typed);
    if (!code) {
      return { status: 400, ok: false, field: 'code', message: 'That code is not known: check it and try again.' };
    }
    if (code.state !== 'pending') {
      return {
        status: 400,
        ok: false,
        field: 'code',
        message: 'That code was used already: get a new one in the app.',
      };
    }
    if (directory.isExpired(code)) {
      return { status: 400, ok: false, field: 'code', message: 'That code has expired: get a new one in the app.' };
    }
    if (form.get('action') === 'cancel') {
      directory.deny(code.userCode);
      this.options.report?.(`sign-in with code ${code.userCode} cancelled: the app is told authorization_declined`);
      return { status: 200, ok: true, message: 'Sign-in cancelled: the app is told you declined.' };
    }
    const wanted = (form.get('account') ?? '').trim();
    const account =
      accounts.length === 0
        ? /^[^\s@]+@[^\s@]+$/.test(wanted)
          ? wanted
          : undefined
        : accounts.find((a) => a.toLowerCase() === wanted.toLowerCase());
    if (account === undefined) {
      return {
        status: 400,
        ok: false,
        field: 'account',
        message: accounts.length === 0 ? 'Enter an e-mail address.' : `Pick one of: ${accounts.join(', ')}.`,
      };
    }
    directory.approve(code.userCode, account);
    this.options.report?.(`${account} signed in to app ${code.clientId} with code ${code.userCode}`);
    return {
      status: 200,
      ok: true,
      message: `You have signed in to app ${code.clientId} as ${account}. The app gets its tokens at its next poll; you may close this window.`,
    };
  }

  private reply(html: boolean, outcome: Outcome | undefined): PageReply {
    const status = outcome?.status ?? 200;
    if (!html && outcome) {
      const body = outcome.ok
        ? { ok: true, message: outcome.message }
        : { error: { ...(outcome.field !== undefined && { field: outcome.field }), message: outcome.message } };
      return {
        status,
        headers: { ...SECURITY_HEADERS, 'content-type': 'application/json; charset=utf-8' },
        body: JSON.stringify(body),
      };
    }
    return {
      status,
      headers: { ...SECURITY_HEADERS, 'content-type': 'text/html; charset=utf-8' },
      body: this.page(outcome),
    };
  }

  private page(outcome: Outcome | undefined): string {
    const { directory, accounts } = this.options;
    const waiting = directory.pendingCodes().filter((c) => c.state === 'pending' && !directory.isExpired(c)).length;
    const accountField =
      accounts.length === 0
        ? '<label>Account <input type="email" name="account" autocomplete="off" required></label>'
        : `<fieldset><legend>Account</legend>${accounts
            .map(
              (a, i) =>
                `<label><input type="radio" name="account" value="${escapeHtml(a)}"${i === 0 ? ' checked' : ''}> ${escapeHtml(a)}</label>`,
            )
            .join('')}</fieldset>`;
    const signedIn = directory.signedIn();
    const grants =
      signedIn.length === 0
        ? '<p>Nobody is signed in.</p>'
        : `<table><tr><th>Account</th><th>App</th><th></th></tr>${signedIn
            .map(
              (s) =>
                `<tr><td>${escapeHtml(s.user)}</td><td>${escapeHtml(s.clientIds.join(', '))}</td><td>` +
                `<form class="inline" method="post" action="${SIGN_IN_PATH}/revoke">` +
                `<input type="hidden" name="account" value="${escapeHtml(s.user)}">` +
                '<button type="submit">Revoke</button></form></td></tr>',
            )
            .join('')}</table>`;
    const notice = outcome
      ? `<p class="${outcome.ok ? 'ok' : 'error'}" role="status">${escapeHtml(outcome.message)}</p>`
      : '';
    return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sign in: Mailroom harness identity provider</title><style>${STYLE}</style></head>
<body>
<h1>Enter code</h1>
${notice}
<p>Enter the code the app shows (Mailroom's console or <code>mailroom oauth login</code>) and pick the account to sign in as.</p>
<form method="post" action="${SIGN_IN_PATH}">
<label>Code <input type="text" name="code" autocomplete="off" autocapitalize="characters" maxlength="20" required autofocus></label>
${accountField}
<button type="submit" name="action" value="sign-in">Sign in</button>
<button type="submit" name="action" value="cancel">Cancel the sign-in</button>
</form>
<h2>Harness controls</h2>
<p>${waiting === 1 ? '1 code is' : `${waiting} codes are`} waiting for a person.</p>
<form method="post" action="${SIGN_IN_PATH}/expire">
<label>Code <input type="text" name="code" autocomplete="off" maxlength="20" required></label>
<button type="submit">Expire the code now</button>
</form>
<h3>Signed in</h3>
${grants}
<form method="post" action="${SIGN_IN_PATH}/expire-tokens"><button type="submit">End every access token</button></form>
<p>This is Mailroom's fake identity provider for local tries: no password, no real account.</p>
</body></html>
`;
  }
}
