import { isIP } from 'node:net';
import { addressBytes } from './address-policy.js';

/**
 * One spelling per host, for comparing hosts (the account key: one account, one tenant) and for
 * judging an address before connecting. The same machine has many spellings that a resolver
 * (glibc's inet_aton, Node's dns.lookup) takes to one address: `127.1`, `0x7f.0.0.1`,
 * `127.0.0.01` (octal), `2130706433`, `::ffff:127.0.0.1`, `::FFFF:7f00:1`, `localhost`. An outside
 * review registered a tenant's account again under each of them (issue 24).
 *
 * - IPv4 in every inet_aton form (one to four parts, decimal, octal with a leading 0, hex with
 *   0x), parsed as the WHATWG URL host parser does (it follows inet_aton): dotted decimal.
 * - IPv6 lower-cased and compressed (RFC 5952); IPv4-mapped IPv6 (`::ffff:0:0/96`) as its IPv4.
 * - `localhost` and names under it (RFC 6761 section 6.3: loopback whatever a resolver says): 127.0.0.1.
 * - Any other name lower-cased, without surrounding brackets, blanks or a trailing dot.
 */
export function canonicalHost(host: string): string {
  const bare = host
    .trim()
    .replace(/^\[(.*)\]$/, '$1')
    .replace(/\.$/, '')
    .toLowerCase();
  if (/^(?:[^.]+\.)*localhost$/.test(bare)) return '127.0.0.1';
  if (isIP(bare) === 6) return canonicalIpv6(bare);
  if (isIP(bare) === 4) return bare.split('.').map(Number).join('.');
  // Only names made of number-like labels can be IPv4 in another form (the URL parser would also
  // turn a name into punycode, which is not wanted here: host names are ASCII already).
  if (/^[0-9a-fx.]+$/.test(bare)) {
    try {
      const parsed = new URL(`http://${bare}/`).hostname;
      if (isIP(parsed) === 4) return parsed;
    } catch {
      // not an IPv4 address in any form (e.g. 1.2.3.999): a name as it is
    }
  }
  return bare;
}

function canonicalIpv6(address: string): string {
  const zone = address.indexOf('%');
  const plain = zone < 0 ? address : address.slice(0, zone);
  const bytes = addressBytes(plain);
  if (!bytes) return address;
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) && bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return Array.from(bytes.subarray(12)).join('.');
  const words: string[] = [];
  for (let i = 0; i < 16; i += 2) words.push((((bytes[i] as number) << 8) | (bytes[i + 1] as number)).toString(16));
  // RFC 5952 section 4.2: the longest run (the first of equals) of two or more zero words becomes '::'.
  let best = { at: -1, length: 1 };
  for (let i = 0; i < 8;) {
    if (words[i] !== '0') {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && words[j] === '0') j += 1;
    if (j - i > best.length) best = { at: i, length: j - i };
    i = j;
  }
  const text =
    best.at < 0
      ? words.join(':')
      : `${words.slice(0, best.at).join(':')}::${words.slice(best.at + best.length).join(':')}`;
  return zone < 0 ? text : `${text}${address.slice(zone)}`;
}

/**
 * The key of one mail account: its IMAP host (canonical, see {@link canonicalHost}) and user name
 * (trimmed, lower-cased). Unique across tenants: an account belongs to one tenant only.
 */
export function accountKeyOf(imapHost: string, imapUser: string): string {
  return `${canonicalHost(imapHost)}\n${imapUser.trim().toLowerCase()}`;
}
