import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOptions } from 'node:dns';
import { isIP, type LookupFunction } from 'node:net';
import { AddressNotAllowedError, type AddressPolicy } from './address-policy.js';

/** Resolves a name to every address it has (dns.lookup: /etc/hosts, then DNS); injectable for tests. */
export type ResolveAll = (hostname: string) => Promise<LookupAddress[]>;

export const resolveAll: ResolveAll = (hostname) =>
  new Promise((resolve, reject) =>
    dnsLookup(hostname, { all: true, verbatim: true } satisfies LookupAllOptions, (err, addresses) =>
      err ? reject(err) : resolve(addresses),
    ),
  );

/** The first refused address of `addresses`, as an error naming `host`; undefined when all are allowed. */
export function firstRefused(
  policy: AddressPolicy,
  host: string,
  addresses: readonly string[],
): AddressNotAllowedError | undefined {
  for (const address of addresses) {
    const kind = policy.refuses(address);
    if (kind !== undefined) return new AddressNotAllowedError(host, address, kind);
  }
  return undefined;
}

/**
 * A socket's `lookup` that resolves the name and refuses it unless every address it has is
 * allowed: the check happens on the addresses the socket then connects to, so a name cannot
 * answer a public address to a check made earlier and a private one to the connection (DNS
 * rebinding). Every address, not only the one used: a name that also resolves to an internal
 * address is not a receiver anyone needs to reach.
 */
export function policyLookup(policy: AddressPolicy, resolve: ResolveAll = resolveAll): LookupFunction {
  return (hostname: string, options: LookupOptions, callback: (...args: never[]) => void): void => {
    const done = callback as unknown as (
      err: NodeJS.ErrnoException | null,
      address: string | LookupAddress[],
      family?: number,
    ) => void;
    resolve(hostname).then(
      (found) => {
        const addresses = found.filter((a) => !options.family || a.family === options.family);
        const refused = firstRefused(
          policy,
          hostname,
          found.map((a) => a.address),
        );
        if (refused) return done(refused, '');
        const first = addresses[0];
        if (!first) {
          const err: NodeJS.ErrnoException = new Error(`getaddrinfo ENOTFOUND ${hostname}`);
          err.code = 'ENOTFOUND';
          return done(err, '');
        }
        if (options.all) return done(null, addresses);
        return done(null, first.address, first.family);
      },
      (err: NodeJS.ErrnoException) => done(err, ''),
    );
  };
}

/**
 * Checks a host before anything is sent to it: an IP address against the policy, a name by
 * resolving it here. Resolves with the refusal, or undefined when the host is allowed or the name
 * does not resolve here (`unresolved`: the caller decides; the connection checks it again).
 */
export async function checkHost(
  policy: AddressPolicy,
  host: string,
  resolve: ResolveAll = resolveAll,
): Promise<{ refused?: AddressNotAllowedError; unresolved?: NodeJS.ErrnoException }> {
  const bare = host.replace(/^\[(.*)\]$/, '$1');
  if (isIP(bare) !== 0) {
    const refused = firstRefused(policy, bare, [bare]);
    return refused ? { refused } : {};
  }
  // RFC 6761 section 6.3: "localhost" and names under it are loopback, whatever a resolver
  // answers (or fails to answer: "localhost." is often not resolved at all).
  if (/^(?:[^.]+\.)*localhost\.?$/i.test(bare)) {
    const refused = firstRefused(policy, bare, ['127.0.0.1', '::1']);
    return refused ? { refused } : {};
  }
  try {
    const refused = firstRefused(
      policy,
      bare,
      (await resolve(bare)).map((a) => a.address),
    );
    return refused ? { refused } : {};
  } catch (err) {
    return { unresolved: err as NodeJS.ErrnoException };
  }
}
