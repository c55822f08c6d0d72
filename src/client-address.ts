import ipaddr from 'ipaddr.js'
import { BlockList, isIPv4, isIPv6 } from 'node:net'

// One spelling per client. Anything that keys on a client (rate limit, connection budget, the
// Idempotency-Key binding) goes through here, so `203.0.113.7:1234`, `::ffff:203.0.113.7` and
// `203.000.113.007` are one client, and garbage in X-Forwarded-For cannot mint fresh budgets.

/** Longer than any address with port, brackets and zone id; beyond it the value is not looked at. */
const MAX_INPUT = 100

/**
 * Dotted quad with optional leading zeros, read as decimal (what a person meant by 203.000.113.007);
 * ipaddr.js reads a leading zero as octal (010 as 8).
 */
const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

function ipv4 (s: string): string | undefined {
  const m = DOTTED.exec(s)
  if (!m) return undefined
  const parts = m.slice(1).map(Number)
  return parts.every((p) => p <= 255) ? parts.join('.') : undefined
}

const IPV4_COMPATIBLE = /^::\d+\.\d+\.\d+\.\d+$/

/**
 * An IPv6 address; undefined when it is not one. Node's own check decides what counts as one: the
 * library alone would also take hexadecimal and octal in an embedded IPv4 part (::ffff:0x7f.0.0.1).
 */
function ipv6 (s: string): ipaddr.IPv6 | undefined {
  if (!isIPv6(s)) return undefined
  const address = ipaddr.IPv6.parse(s)
  // The library reads the deprecated IPv4-compatible ::a.b.c.d as IPv4-mapped (::ffff:a.b.c.d): it is not.
  if (IPV4_COMPATIBLE.test(s)) address.parts[5] = 0
  return address
}

/**
 * The canonical form of an address as a client, proxy or balancer may write it: port, brackets and
 * zone id stripped, IPv4-mapped IPv6 as IPv4, IPv6 lower-case and compressed. Undefined when it is
 * not an IP address at all (the caller then uses the socket's own address).
 */
export function normalizeAddress (raw: string | undefined): string | undefined {
  if (raw === undefined || raw.length === 0 || raw.length > MAX_INPUT) return undefined
  let s = raw.trim()
  const bracketed = /^\[([^\]]+)\](?::\d{1,5})?$/.exec(s)
  if (bracketed) s = bracketed[1]!
  else if (/^[\d.]+:\d{1,5}$/.test(s)) s = s.slice(0, s.lastIndexOf(':'))
  const zone = s.indexOf('%')
  if (zone !== -1) s = s.slice(0, zone)
  const v4 = ipv4(s)
  if (v4) return v4
  const v6 = ipv6(s)
  if (!v6) return undefined
  // ::ffff:a.b.c.d is an IPv4 client that reached a dual-stack socket.
  return v6.isIPv4MappedAddress() ? v6.toIPv4Address().toString() : v6.toRFC5952String()
}

/**
 * The key a client is counted under: its IPv4 address, or its IPv6 /64 (one subscriber usually holds
 * a whole /64, so counting single IPv6 addresses would hand out 2^64 budgets).
 */
export function clientKey (address: string): string {
  if (isIPv4(address)) return address
  const v6 = ipv6(address)
  if (!v6) return address
  return `${new ipaddr.IPv6([...v6.parts.slice(0, 4), 0, 0, 0, 0]).toRFC5952String()}/64`
}

/** An address as a number (IPv4: 32 bits, IPv6: 128 bits), for range arithmetic; undefined when it is not one. */
export function addressNumber (address: string): { family: 4 | 6; value: bigint } | undefined {
  const v4 = ipv4(address)
  if (v4) return { family: 4, value: v4.split('.').reduce((n, part) => (n << 8n) | BigInt(part), 0n) }
  const v6 = ipv6(address)
  return v6 && { family: 6, value: v6.parts.reduce((n, g) => (n << 16n) | BigInt(g), 0n) }
}

/**
 * Whether the TCP peer of a connection is one of TRUST_PROXY's balancers: only they may name the
 * request id (X-Request-Id), as only they may name the client (X-Forwarded-For).
 */
export function trustedPeer (trustProxy: boolean | string[]): (peer: string | undefined) => boolean {
  if (trustProxy === true) return () => true
  if (trustProxy === false || trustProxy.length === 0) return () => false
  const list = new BlockList()
  for (const entry of trustProxy) {
    const [address = '', prefix] = entry.split('/')
    const type = isIPv4(address) ? 'ipv4' : 'ipv6'
    if (prefix === undefined) list.addAddress(address, type)
    else list.addSubnet(address, Number(prefix), type)
  }
  return (peer) => {
    const address = normalizeAddress(peer)
    return address !== undefined && list.check(address, isIPv4(address) ? 'ipv4' : 'ipv6')
  }
}
