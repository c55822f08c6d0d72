import { BlockList, isIPv4, isIPv6 } from 'node:net'

// One spelling per client. Anything that keys on a client (rate limit, connection budget, the
// Idempotency-Key binding) goes through here, so `203.0.113.7:1234`, `::ffff:203.0.113.7` and
// `203.000.113.007` are one client, and garbage in X-Forwarded-For cannot mint fresh budgets.

/** Longer than any address with port, brackets and zone id; beyond it the value is not looked at. */
const MAX_INPUT = 100

/** Dotted quad with optional leading zeros, read as decimal (what a person meant by 203.000.113.007). */
const DOTTED = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/

function ipv4 (s: string): string | undefined {
  const m = DOTTED.exec(s)
  if (!m) return undefined
  const parts = m.slice(1).map(Number)
  return parts.every((p) => p <= 255) ? parts.join('.') : undefined
}

/** The 8 groups of an IPv6 address as numbers; undefined when it is not one. */
function ipv6Groups (s: string): number[] | undefined {
  if (!isIPv6(s)) return undefined
  // A trailing dotted quad (::ffff:1.2.3.4) is two groups written in decimal.
  const text = s.replace(/(\d+)\.(\d+)\.(\d+)\.(\d+)$/, (_m, a: string, b: string, c: string, d: string) =>
    `${((Number(a) << 8) | Number(b)).toString(16)}:${((Number(c) << 8) | Number(d)).toString(16)}`)
  const [head = '', rest] = text.split('::')
  const parse = (part: string) => part === '' ? [] : part.split(':').map((g) => parseInt(g, 16))
  const left = parse(head)
  const right = rest === undefined ? [] : parse(rest)
  const zeros = rest === undefined ? 0 : 8 - left.length - right.length
  const groups = [...left, ...new Array<number>(Math.max(0, zeros)).fill(0), ...right]
  return groups.length === 8 ? groups : undefined
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
  const groups = ipv6Groups(s)
  if (!groups) return undefined
  // ::ffff:a.b.c.d is an IPv4 client that reached a dual-stack socket.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) {
    return [groups[6]! >> 8, groups[6]! & 255, groups[7]! >> 8, groups[7]! & 255].join('.')
  }
  return compress(groups)
}

function compress (groups: number[]): string {
  // The longest run of zero groups (of two or more) becomes '::'.
  let best = -1
  let bestLen = 1
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) { i++; continue }
    let j = i
    while (j < 8 && groups[j] === 0) j++
    if (j - i > bestLen) { best = i; bestLen = j - i }
    i = j
  }
  const hex = groups.map((g) => g.toString(16))
  if (best === -1) return hex.join(':')
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`
}

/**
 * The key a client is counted under: its IPv4 address, or its IPv6 /64 (one subscriber usually holds
 * a whole /64, so counting single IPv6 addresses would hand out 2^64 budgets).
 */
export function clientKey (address: string): string {
  if (isIPv4(address)) return address
  const groups = ipv6Groups(address)
  if (!groups) return address
  return `${compress([...groups.slice(0, 4), 0, 0, 0, 0])}/64`
}

/** An address as a number (IPv4: 32 bits, IPv6: 128 bits), for range arithmetic; undefined when it is not one. */
export function addressNumber (address: string): { family: 4 | 6; value: bigint } | undefined {
  const v4 = ipv4(address)
  if (v4) return { family: 4, value: v4.split('.').reduce((n, part) => (n << 8n) | BigInt(part), 0n) }
  const groups = ipv6Groups(address)
  return groups && { family: 6, value: groups.reduce((n, g) => (n << 16n) | BigInt(g), 0n) }
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
