import { checkHost, resolveAll, type ResolveAll } from '../shared/address-lookup.js';
import type { AddressPolicy } from '../shared/address-policy.js';
import { MailroomError } from '../shared/errors.js';
import type { SecretSealer } from '../shared/sealed-secrets.js';
import type { DestinationRow } from '../store/rows.js';
import { WEBHOOK_SECRET_FIELD } from '../store/webhook-deliveries.js';
import type { DestinationInput } from './schemas.js';

export type WebhookColumns = Pick<DestinationRow, 'webhookUrl' | 'webhookSecretSealed' | 'webhookBatch'>;

const invalid = (field: string, message: string): MailroomError =>
  new MailroomError('VALIDATION_FAILED', message, { field });

/**
 * The webhook columns of a destination after a create, update or copy. The secret is write-only:
 * it is required with the first URL (there is no generated secret to show), kept when a later
 * change omits it, and dropped with the URL (`webhookUrl: null`). A copy starts without a webhook
 * unless the copy request names one (with its secret): the sealed secret is bound to its row.
 * Batched delivery (`webhookBatch`) goes with the URL in the same way: kept when a change omits
 * it, dropped with the URL, refused without one.
 */
export function webhookColumnsOf(
  sealer: SecretSealer,
  target: { tenantId: string; rowId: string },
  input: Pick<DestinationInput, 'webhookUrl' | 'webhookSecret' | 'webhookBatch'>,
  stored: WebhookColumns | null,
): WebhookColumns {
  const url = input.webhookUrl !== undefined ? input.webhookUrl : (stored?.webhookUrl ?? null);
  if (url === null) {
    if (input.webhookSecret !== undefined) {
      throw invalid('webhookSecret', `'webhookSecret' is only accepted together with a 'webhookUrl'`);
    }
    if (input.webhookBatch) {
      throw invalid('webhookBatch', `'webhookBatch' is only accepted together with a 'webhookUrl'`);
    }
    return { webhookUrl: null, webhookSecretSealed: null, webhookBatch: null };
  }
  checkWebhookUrl(url);
  const sealed =
    input.webhookSecret !== undefined
      ? sealer.seal(input.webhookSecret, { ...target, field: WEBHOOK_SECRET_FIELD })
      : (stored?.webhookSecretSealed ?? null);
  if (sealed === null) {
    throw invalid(
      'webhookSecret',
      `'webhookSecret' is required with a 'webhookUrl': every event is signed with it (HMAC-SHA256)`,
    );
  }
  const batch = input.webhookBatch !== undefined ? input.webhookBatch : (stored?.webhookBatch ?? null);
  return {
    webhookUrl: url,
    webhookSecretSealed: sealed,
    webhookBatch: batch && { maxEvents: batch.maxEvents, maxWaitMs: batch.maxWaitMs },
  };
}

/** An absolute http(s) URL without credentials (they would be shown in the API and logs). */
export function checkWebhookUrl(url: string): void {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw invalid('webhookUrl', `'webhookUrl' is not a valid URL`);
  }
  if (parsed.protocol !== 'http:' && parsed.protocol !== 'https:') {
    throw invalid('webhookUrl', `'webhookUrl' must be an http:// or https:// URL`);
  }
  // `https:///x` parses as https://x/ (the URL standard skips the extra slashes): the text itself
  // must name a host, and a port must be one a server can listen on (issue 24 review).
  if (!/^https?:\/\/[^/?#\\]/i.test(url) || parsed.hostname === '') {
    throw invalid('webhookUrl', `'webhookUrl' must name a host after http:// or https://`);
  }
  if (parsed.port === '0') {
    throw invalid('webhookUrl', `'webhookUrl' must not name port 0`);
  }
  if (parsed.username || parsed.password) {
    throw invalid('webhookUrl', `'webhookUrl' must not carry a user name or password; the events are signed instead`);
  }
}

/** [5000] longest wait for the resolution of a webhook's host name at validation, ms. */
const RESOLVE_TIMEOUT_MS = 5_000;

/**
 * A webhook URL given in a request must lead to addresses the policy allows: an IP address is
 * checked as it is, a name by resolving it now (every address it has). A name that does not
 * resolve now (or not within RESOLVE_TIMEOUT_MS) is accepted: the DNS may not know it yet, and
 * every POST checks the addresses it connects to anyway (address-lookup.ts), which is what keeps
 * a name that changes its answers later (DNS rebinding) out.
 */
export async function checkWebhookAddress(
  url: string,
  policy: AddressPolicy,
  resolve: ResolveAll = resolveAll,
): Promise<void> {
  checkWebhookUrl(url);
  const host = new URL(url).hostname;
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<{ refused?: undefined }>((done) => {
    timer = setTimeout(() => done({}), RESOLVE_TIMEOUT_MS);
  });
  try {
    const { refused } = await Promise.race([checkHost(policy, host, resolve), timeout]);
    if (refused) {
      throw invalid(
        'webhookUrl',
        `'webhookUrl' leads to an address webhooks may not be posted to (${refused.kind}); ` +
          `the engine's operator can allow it (MAILROOM_WEBHOOK_ALLOW_PRIVATE)`,
      );
    }
  } finally {
    clearTimeout(timer);
  }
}
