import { isIP } from 'node:net';

/**
 * Which IP addresses the engine may connect to on a tenant's behalf (webhooks) or for a remote
 * `Src` of a response file: public addresses only, unless the operator allows more. Pure: the
 * callers resolve names (at validation and, against DNS rebinding, again at connect time) and ask
 * this module about every address they got.
 */

/** Why an address is refused; shown to operators in logs and to tenants as "address not allowed". */
export type RefusedKind =
  | 'cloud metadata'
  | 'loopback'
  | 'private'
  | 'link-local'
  | 'unique-local'
  | 'shared (CGNAT)'
  | 'unspecified'
  | 'multicast'
  | 'reserved';

interface Range {
  bytes: Uint8Array;
  prefix: number;
}

/** An address as 16 bytes (IPv4 as its IPv4-mapped IPv6 form), or undefined when it is no address. */
export function addressBytes(address: string): Uint8Array | undefined {
  const host = address.replace(/^\[(.*)\]$/, '$1').replace(/%.*$/, ''); // brackets, IPv6 zone
  const family = isIP(host);
  if (family === 4) {
    const out = new Uint8Array(16);
    out[10] = 0xff;
    out[11] = 0xff;
    host.split('.').forEach((part, i) => (out[12 + i] = Number(part)));
    return out;
  }
  if (family !== 6) return undefined;
  let text = host;
  const tail: number[] = [];
  const dotted = /(\d+\.\d+\.\d+\.\d+)$/.exec(text);
  if (dotted) {
    const v4 = (dotted[1] as string).split('.').map(Number);
    tail.push(((v4[0] as number) << 8) | (v4[1] as number), ((v4[2] as number) << 8) | (v4[3] as number));
    text = text.slice(0, -(dotted[1] as string).length);
    if (text.endsWith(':') && !text.endsWith('::')) text = text.slice(0, -1);
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const groups = (s: string): number[] => (s === '' ? [] : s.split(':').map((g) => parseInt(g, 16)));
  const left = groups(head);
  const right = [...(rest === undefined ? [] : groups(rest)), ...tail];
  const words =
    rest === undefined
      ? [...left, ...tail]
      : [...left, ...new Array<number>(8 - left.length - right.length).fill(0), ...right];
  const out = new Uint8Array(16);
  words.forEach((w, i) => {
    out[2 * i] = w >> 8;
    out[2 * i + 1] = w & 0xff;
  });
  return out;
}

function range(cidr: string): Range {
  const slash = cidr.indexOf('/');
  const address = slash < 0 ? cidr : cidr.slice(0, slash);
  const bytes = addressBytes(address);
  if (!bytes) throw new AddressPolicyError(`'${cidr}' is not an IP address or CIDR range`);
  const v4 = isIP(address.replace(/^\[(.*)\]$/, '$1')) === 4;
  const length = slash < 0 ? (v4 ? 32 : 128) : cidr.slice(slash + 1);
  if (typeof length === 'string' && (!/^\d{1,3}$/.test(length) || Number(length) > (v4 ? 32 : 128))) {
    throw new AddressPolicyError(`'${cidr}' is not a CIDR range (its prefix length is wrong)`);
  }
  // IPv4 ranges are kept in their IPv4-mapped form, so one comparison serves both families.
  return { bytes, prefix: Number(length) + (v4 ? 96 : 0) };
}

function inRange(bytes: Uint8Array, r: Range): boolean {
  for (let bit = 0; bit < r.prefix; bit += 8) {
    const mask = r.prefix - bit >= 8 ? 0xff : (0xff << (8 - (r.prefix - bit))) & 0xff;
    if (((bytes[bit / 8] as number) & mask) !== ((r.bytes[bit / 8] as number) & mask)) return false;
  }
  return true;
}

/** The refused ranges, most specific first (the metadata addresses sit inside link-local and unique-local). */
const REFUSED: readonly [RefusedKind, Range][] = (
  [
    ['cloud metadata', '169.254.169.254/32'],
    ['cloud metadata', 'fd00:ec2::254/128'],
    ['unspecified', '0.0.0.0/8'], // "this network": 0.0.0.0 reaches the local machine on Linux
    ['unspecified', '::/128'],
    ['loopback', '127.0.0.0/8'],
    ['loopback', '::1/128'],
    ['private', '10.0.0.0/8'],
    ['private', '172.16.0.0/12'],
    ['private', '192.168.0.0/16'],
    ['shared (CGNAT)', '100.64.0.0/10'],
    ['link-local', '169.254.0.0/16'],
    ['link-local', 'fe80::/10'],
    ['unique-local', 'fc00::/7'],
    ['multicast', '224.0.0.0/4'],
    ['multicast', 'ff00::/8'],
    ['reserved', '192.0.0.0/24'], // IETF protocol assignments
    ['reserved', '198.18.0.0/15'], // benchmarking
    ['reserved', '240.0.0.0/4'], // future use and 255.255.255.255
    ['reserved', 'fec0::/10'], // deprecated site-local
    // IPv4 carried where its place depends on a local prefix length (local-use NAT64, RFC 8215)
    // or obfuscated (Teredo, RFC 4380: the client's address XOR-ed): refused unless allowed.
    ['reserved', '64:ff9b:1::/48'],
    ['reserved', '2001::/32'],
  ] as const
).map(([kind, cidr]) => [kind, range(cidr)]);

/**
 * IPv6 forms that carry an IPv4 address the packet ends up at, judged as that IPv4 address:
 * IPv4-mapped (::ffff:0:0/96, which is how IPv4 is kept here), IPv4-compatible (::/96,
 * deprecated), IPv4-translated (::ffff:0:0:0/96, RFC 2765) and the NAT64 well-known prefix
 * (64:ff9b::/96, RFC 6052) carry it in their last four bytes; 6to4 (2002::/16, RFC 3056) in the
 * four after the prefix (2002:7f00:1:: is 127.0.0.1's).
 */
const EMBEDS_IPV4_LAST = ['::/96', '64:ff9b::/96', '::ffff:0:0:0/96'].map(range);
const SIX_TO_FOUR = range('2002::/16');

/** The address's bytes, an IPv4 address carried in an IPv6 form given as IPv4 (mapped). */
function judgedBytes(address: string): Uint8Array | undefined {
  const bytes = addressBytes(address);
  if (!bytes) return undefined;
  const loopbackOrUnspecified = bytes.subarray(0, 15).every((b) => b === 0) && (bytes[15] as number) <= 1;
  if (loopbackOrUnspecified) return bytes;
  const embedded = EMBEDS_IPV4_LAST.some((r) => inRange(bytes, r))
    ? bytes.subarray(12, 16)
    : inRange(bytes, SIX_TO_FOUR)
      ? bytes.subarray(2, 6)
      : undefined;
  if (embedded === undefined) return bytes;
  const mapped = new Uint8Array(16);
  mapped[10] = 0xff;
  mapped[11] = 0xff;
  mapped.set(embedded, 12);
  return mapped;
}

function kindOf(bytes: Uint8Array): RefusedKind | undefined {
  for (const [kind, r] of REFUSED) if (inRange(bytes, r)) return kind;
  return undefined;
}

/** Why `address` is refused by default, or undefined for a public address (or no address). */
export function refusedKind(address: string): RefusedKind | undefined {
  const bytes = judgedBytes(address);
  return bytes && kindOf(bytes);
}

/** [1024] addresses whose judgement a policy keeps. */
const JUDGED_ADDRESSES = 1024;

/** A setting's value that is neither true/false nor a list of CIDR ranges; the caller names the variable. */
export class AddressPolicyError extends Error {}

/**
 * The operator's allowance on top of the default (public addresses only): `all` private ranges
 * (cloud-metadata addresses stay refused unless a range names them: no receiver lives there),
 * or the listed ranges.
 */
export class AddressPolicy {
  /**
   * Judgements already made, by address: a webhook run posts to one address thousands of times
   * a second, and parsing and judging it each time was ~3 % of the run's CPU. Bounded: emptied
   * when full (addresses are few; a flood of distinct ones just judges afresh).
   */
  private readonly judged = new Map<string, RefusedKind | null>();

  private constructor(
    private readonly all: boolean,
    private readonly allowed: readonly Range[],
  ) {}

  /** Public addresses only. */
  static strict(): AddressPolicy {
    return new AddressPolicy(false, []);
  }

  /** Every address but cloud metadata (MAILROOM_WEBHOOK_ALLOW_PRIVATE=true; tests, on-premises receivers). */
  static allowPrivate(): AddressPolicy {
    return new AddressPolicy(true, []);
  }

  /**
   * A setting's value: empty, `false` (strict), `true` (allowPrivate) or comma-separated IP
   * addresses and CIDR ranges (`10.20.0.0/16,fd12::/16`) allowed besides public addresses.
   */
  static parse(raw: string | undefined): AddressPolicy {
    const value = (raw ?? '').trim().toLowerCase();
    if (['', '0', 'false', 'no', 'off'].includes(value)) return AddressPolicy.strict();
    if (['1', 'true', 'yes', 'on'].includes(value)) return AddressPolicy.allowPrivate();
    const ranges = value
      .split(',')
      .map((s) => s.trim())
      .filter((s) => s !== '')
      .map(range);
    return new AddressPolicy(false, ranges);
  }

  /** Why a connection to `address` (an IP address) is refused, or undefined when it is allowed. */
  refuses(address: string): RefusedKind | undefined {
    const known = this.judged.get(address);
    if (known !== undefined) return known ?? undefined;
    const kind = this.judge(address);
    if (this.judged.size >= JUDGED_ADDRESSES) this.judged.clear();
    this.judged.set(address, kind ?? null);
    return kind;
  }

  private judge(address: string): RefusedKind | undefined {
    const bytes = judgedBytes(address);
    const kind = bytes && kindOf(bytes);
    if (bytes === undefined || kind === undefined) return undefined;
    if (this.all && kind !== 'cloud metadata') return undefined;
    if (this.allowed.some((r) => inRange(bytes, r))) return undefined;
    return kind;
  }
}

/** The error of a connection refused by the policy: code EADDRNOTALLOWED, the address and why. */
export class AddressNotAllowedError extends Error {
  readonly code = 'EADDRNOTALLOWED';
  constructor(
    readonly host: string,
    readonly address: string,
    readonly kind: RefusedKind,
  ) {
    super(`${host}${host === address ? '' : ` (${address})`} is not an allowed address (${kind})`);
    this.name = 'AddressNotAllowedError';
  }
}
