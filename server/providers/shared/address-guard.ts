import { lookup as dnsLookup, type LookupAddress, type LookupAllOptions, type LookupOneOptions } from "node:dns";
import { BlockList, isIP } from "node:net";

/**
 * Addresses no provider call may connect to: link-local ranges
 * (169.254.0.0/16, fe80::/10, where AWS, Azure, GCP and Oracle serve
 * instance metadata and credentials), AWS's IPv6 metadata address and
 * Alibaba's 100.100.100.200. Loopback and private ranges stay allowed: a
 * model server on 127.0.0.1 or the LAN is the normal self-hosted case.
 *
 * Base URLs are checked when an admin sets them (server/admin/base-url.ts),
 * but a name can resolve anywhere, and again differently later; so the
 * outbound client checks every address it is about to connect to as well.
 */
const blocked = new BlockList();
blocked.addSubnet("169.254.0.0", 16, "ipv4");
blocked.addSubnet("fe80::", 10, "ipv6");
blocked.addAddress("fd00:ec2::254", "ipv6");
blocked.addAddress("100.100.100.200", "ipv4");

/** True for an IP address no provider call may reach (see above); IPv4-mapped IPv6 is checked as IPv4. */
export function isForbiddenAddress(ip: string): boolean {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const address = mapped ?? ip;
  const family = isIP(address);
  return family !== 0 && blocked.check(address, family === 6 ? "ipv6" : "ipv4");
}

type Callback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;
type Resolver = (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: Callback) => void;

/**
 * A `lookup` for net/tls connect options (undici passes it through) that
 * fails with EADDRNOTALLOWED when a name resolves to a forbidden address.
 * `resolve` is dns.lookup; tests pass their own.
 */
export function guardedLookup(resolve: Resolver = dnsLookup as unknown as Resolver) {
  return (hostname: string, options: LookupOneOptions | LookupAllOptions, callback: Callback): void => {
    resolve(hostname, options, (err, address, family) => {
      if (err) return callback(err, address, family);
      const list = Array.isArray(address) ? address.map((a) => a.address) : [address];
      const bad = list.find(isForbiddenAddress);
      if (bad !== undefined) {
        const refused: NodeJS.ErrnoException = new Error(`${hostname} resolves to ${bad}, a link-local or cloud metadata address`);
        refused.code = "EADDRNOTALLOWED";
        return callback(refused, address, family);
      }
      callback(null, address, family);
    });
  };
}
