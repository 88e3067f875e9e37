import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { Duplex } from 'node:stream';
import ipaddr from 'ipaddr.js';

/**
 * The one policy for every host a tenant names (S3/GCS/Azure endpoints, database, SFTP/FTP and
 * webhook hosts), enforced on the resolved address of every outbound connection: a name that
 * resolves to a refused address is refused when the socket is made, so changing DNS after the
 * check (rebinding) does not get around it.
 *
 * - link-local and cloud metadata addresses are always refused;
 * - private, loopback and other non-public addresses are refused unless the operator allows them
 *   (AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS=true; `npm start` and the tests do, since every part runs
 *   on 127.0.0.1);
 * - when the operator names an allow-list (AUTOLOADER_ENDPOINT_ALLOWLIST: host names, `*.suffix`
 *   patterns, CIDRs), only what matches it is allowed.
 */
export interface AddressPolicy {
  allowPrivate: boolean;
  allowList: string[];
}

/** Metadata services: AWS/GCP/Azure/OpenStack (169.254.169.254), AWS IPv6, ECS, Alibaba, Oracle. */
const metadataAddresses = new Set([
  '169.254.169.254',
  'fd00:ec2::254',
  '169.254.170.2',
  '100.100.100.200',
  '192.0.0.192',
]);
const alwaysRefused = new Set(['linkLocal', 'unspecified', 'multicast', 'broadcast']);

export class AddressNotAllowedError extends Error {
  override name = 'AddressNotAllowedError';
  readonly code = 'ENDPOINT_NOT_ALLOWED';
}

function normalise(address: string): ipaddr.IPv4 | ipaddr.IPv6 {
  const parsed = ipaddr.parse(address);
  if (parsed.kind() === 'ipv6' && (parsed as ipaddr.IPv6).isIPv4MappedAddress()) {
    return (parsed as ipaddr.IPv6).toIPv4Address();
  }
  return parsed;
}

function matchesAllowList(host: string, ip: ipaddr.IPv4 | ipaddr.IPv6, list: string[]): boolean {
  const name = host.toLowerCase().replace(/\.$/, '');
  return list.some((entry) => {
    const e = entry.trim().toLowerCase();
    if (e.includes('/')) {
      try {
        const [range, bits] = ipaddr.parseCIDR(e);
        return range.kind() === ip.kind() && ip.match([range, bits] as never);
      } catch (err) {
        if (err instanceof Error) return false; // not a CIDR: the entry is a host name
        throw err;
      }
    }
    if (e.startsWith('*.')) return name.endsWith(e.slice(1));
    return name === e || (net.isIP(e) !== 0 && normalise(e).toString() === ip.toString());
  });
}

/** Why this resolved address may not be used for `host`, or undefined when it may. */
export function refusal(host: string, address: string, policy: AddressPolicy): string | undefined {
  let ip: ipaddr.IPv4 | ipaddr.IPv6;
  try {
    ip = normalise(address);
  } catch (err) {
    if (err instanceof Error) return `${address} is not an IP address`;
    throw err;
  }
  const text = ip.toString();
  const range = ip.range();
  if (metadataAddresses.has(text) || metadataAddresses.has(ipaddr.parse(address).toString()))
    return `${host} resolves to ${text}, a cloud metadata address`;
  if (alwaysRefused.has(range)) return `${host} resolves to ${text}, a ${range} address`;
  if (range !== 'unicast' && !policy.allowPrivate)
    return `${host} resolves to ${text}, a ${range} address (the operator allows private addresses with AUTOLOADER_ALLOW_PRIVATE_ENDPOINTS=true)`;
  if (policy.allowList.length > 0 && !matchesAllowList(host, ip, policy.allowList))
    return `${host} is not on the operator's endpoint allow-list (AUTOLOADER_ENDPOINT_ALLOWLIST)`;
  return undefined;
}

/** Resolves `host` and returns its addresses if every one is allowed; throws AddressNotAllowedError otherwise. */
export async function resolveAllowed(host: string, policy: AddressPolicy): Promise<LookupAddress[]> {
  const bare = host.replace(/^\[|\]$/g, '');
  const addresses = await new Promise<LookupAddress[]>((resolve, reject) =>
    dnsLookup(bare, { all: true }, (err, list) => (err ? reject(err) : resolve(list))),
  );
  for (const a of addresses) {
    const why = refusal(bare, a.address, policy);
    if (why) throw new AddressNotAllowedError(why);
  }
  return addresses;
}

/**
 * A `lookup` for net.connect / http agents that resolves through the policy: a refused address
 * fails the lookup, so no socket is ever opened to it.
 */
export function guardedLookup(policy: AddressPolicy): net.LookupFunction {
  return (hostname, options, callback) => {
    resolveAllowed(hostname, policy).then(
      (list) => {
        const family = typeof options === 'object' ? options.family : undefined;
        const wanted = family === 4 || family === 6 ? list.filter((a) => a.family === family) : list;
        const usable = wanted.length > 0 ? wanted : list;
        if ((options as { all?: boolean }).all) {
          (callback as (err: null, addresses: LookupAddress[]) => void)(null, usable);
        } else {
          callback(null, usable[0]!.address, usable[0]!.family);
        }
      },
      (err: NodeJS.ErrnoException) => callback(err, '', 0),
    );
  };
}

/**
 * Node resolves names through `lookup`, but connects to an IP literal without calling it: a literal
 * is checked here, before any socket exists. Returns a socket already failing with the refusal, so
 * callers (agents, clients) see an ordinary connection error.
 */
function refusedLiteral(policy: AddressPolicy, host: string | undefined | null): net.Socket | undefined {
  const bare = (host ?? '').replace(/^\[|\]$/g, '');
  if (net.isIP(bare) === 0) return undefined;
  const why = refusal(bare, bare, policy);
  if (!why) return undefined;
  const socket = new net.Socket();
  let failed = false;
  const fail = () => {
    if (failed) return;
    failed = true;
    socket.destroy(new AddressNotAllowedError(why));
  };
  // The refusal is an 'error' event, and an 'error' nobody listens to crashes the process. Clients
  // attach their listener after an await of their own (postgres.js does), so the socket fails once
  // one is there; if none comes, it fails quietly after a while rather than hang.
  socket.on('newListener', (event) => {
    if (event === 'error') process.nextTick(fail);
  });
  setTimeout(() => {
    if (socket.listenerCount('error') === 0) socket.on('error', () => undefined);
    fail();
  }, 5_000).unref();
  return socket;
}

/** HTTP(S) agents whose every connection goes through the policy (keep-alive, like the SDKs' own). */
export function guardedAgents(policy: AddressPolicy): { http: http.Agent; https: https.Agent } {
  const lookup = guardedLookup(policy);
  class GuardedHttpAgent extends http.Agent {
    override createConnection(
      options: net.NetConnectOpts & { host?: string },
      callback?: (err: Error | null, stream: Duplex) => void,
    ) {
      return refusedLiteral(policy, options.host) ?? super.createConnection({ ...options, lookup }, callback);
    }
  }
  class GuardedHttpsAgent extends https.Agent {
    override createConnection(
      options: net.NetConnectOpts & { host?: string },
      callback?: (err: Error | null, stream: Duplex) => void,
    ) {
      return refusedLiteral(policy, options.host) ?? super.createConnection({ ...options, lookup }, callback);
    }
  }
  return {
    http: new GuardedHttpAgent({ keepAlive: true, lookup }),
    https: new GuardedHttpsAgent({ keepAlive: true, lookup }),
  };
}

/** A TCP connection through the policy (database, SFTP and FTP clients that accept a socket). */
export function guardedConnect(policy: AddressPolicy, host: string, port: number): net.Socket {
  return refusedLiteral(policy, host) ?? net.connect({ host, port, lookup: guardedLookup(policy) });
}

/** The host of an endpoint URL, for checks at the API. */
export function hostOf(endpoint: string): string {
  return new URL(endpoint).hostname.replace(/^\[|\]$/g, '');
}
