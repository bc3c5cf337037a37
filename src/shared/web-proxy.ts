import { BlockList, isIP } from 'node:net';

/**
 * The proxy the engine's own HTTP(S) requests go through (MAILROOM_HTTPS_PROXY: the identity
 * provider, webhooks, remote `Src` of response files), with the hosts reached directly instead
 * (MAILROOM_NO_PROXY). IMAP and SMTP have their own proxies (mail-proxies.ts).
 */
export interface WebProxy {
  url: URL;
  bypass?: ProxyBypass | undefined;
}

/** Why a MAILROOM_NO_PROXY entry was refused; the caller names the variable. */
export class ProxyBypassError extends Error {}

/**
 * Hosts reached without the proxy, as curl's and most tools' NO_PROXY: comma-separated entries,
 * each a host name (it and its subdomains; a leading `.` means the same), an IP address, a CIDR
 * range (`10.0.0.0/8`, `fd00::/8`) or `*` (every host). Names are compared without case; a port
 * in an entry is not supported (refused, so that nobody believes it applies).
 */
export class ProxyBypass {
  private constructor(
    private readonly everything: boolean,
    private readonly domains: readonly string[],
    private readonly addresses: BlockList,
  ) {}

  static parse(raw: string): ProxyBypass {
    let everything = false;
    const domains: string[] = [];
    const addresses = new BlockList();
    for (const part of raw.split(',')) {
      const entry = part
        .trim()
        .toLowerCase()
        .replace(/^\[(.*)\]$/, '$1');
      if (entry === '') continue;
      if (entry === '*') {
        everything = true;
        continue;
      }
      const slash = entry.indexOf('/');
      if (slash >= 0) {
        const address = entry.slice(0, slash).replace(/^\[(.*)\]$/, '$1');
        const family = isIP(address);
        const length = entry.slice(slash + 1);
        if (family === 0) throw new ProxyBypassError(`'${part.trim()}' is not a host name, IP address or CIDR range`);
        if (!/^\d{1,3}$/.test(length) || Number(length) > (family === 6 ? 128 : 32)) {
          throw new ProxyBypassError(`'${part.trim()}' is not a CIDR range (its prefix length is wrong)`);
        }
        addresses.addSubnet(address, Number(length), family === 6 ? 'ipv6' : 'ipv4');
        continue;
      }
      const family = isIP(entry);
      if (family !== 0) {
        addresses.addAddress(entry, family === 6 ? 'ipv6' : 'ipv4');
        continue;
      }
      const domain = entry.replace(/^\*?\./, '');
      if (!/^[a-z0-9_-]+(\.[a-z0-9_-]+)*$/.test(domain)) {
        throw new ProxyBypassError(
          `'${part.trim()}' is not a host name, IP address or CIDR range${entry.includes(':') ? ' (ports are not supported)' : ''}`,
        );
      }
      domains.push(domain);
    }
    return new ProxyBypass(everything, domains, addresses);
  }

  /** Whether requests to `hostname` (as in a URL; IPv6 in brackets or not) go directly. */
  matches(hostname: string): boolean {
    if (this.everything) return true;
    const host = hostname
      .toLowerCase()
      .replace(/^\[(.*)\]$/, '$1')
      .replace(/\.$/, '');
    const family = isIP(host);
    if (family !== 0) return this.addresses.check(host, family === 6 ? 'ipv6' : 'ipv4');
    return this.domains.some((d) => host === d || host.endsWith(`.${d}`));
  }
}

/** The proxy a request to `target` goes through: none without a proxy or for a host it bypasses. */
export function webProxyFor(proxy: WebProxy | undefined, target: URL): URL | undefined {
  if (!proxy) return undefined;
  return proxy.bypass?.matches(target.hostname) ? undefined : proxy.url;
}
