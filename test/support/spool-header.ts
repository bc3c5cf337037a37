import type { SpoolHeader } from '../../src/outbound/spool.js';

/** The header of a spooled test message `id` of account `acct` (what `Spool.write` takes). */
export function spoolHeader(id: string): Omit<SpoolHeader, 'v' | 'size' | 'sha256'> {
  return {
    id,
    tenantId: 't',
    accountId: 'acct',
    destinationId: 'd',
    instanceId: 'i',
    envelope: { from: 'a@example.com', to: ['b@example.net'] },
    messageId: `${id}@mailroom.invalid`,
    createdAt: new Date(0).toISOString(),
  };
}
