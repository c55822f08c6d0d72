import { isIP } from 'node:net'

// Parsers shared by the two places settings come from: the environment (config.ts) and the widget
// profiles of WIDGETS_FILE (widgets/file.ts). Each throws ConfigError naming the setting it refuses.

/** A setting that stops start-up (or a widget file reload) with a message naming it. */
export class ConfigError extends Error {
  override name = 'ConfigError'
}

export interface OriginList { exact: string[]; wildcards: string[]; none: boolean }

const ORIGIN_EXAMPLES = 'such as https://www.example.com, https://*.example.com (any subdomain) or none (no browser)'

/**
 * ALLOWED_ORIGINS: exact origins, normalised as a browser sends them (lower case, no default port),
 * and `https://*.example.com` for any subdomain (one or more labels; the apex is listed on its own).
 * `none` says that no browser may call (a mobile-only deployment). Anything else stops start-up.
 */
export function parseOrigins (entries: string[], name = 'ALLOWED_ORIGINS'): OriginList {
  if (entries.some((e) => e.toLowerCase() === 'none')) {
    if (entries.length > 1) throw new ConfigError(`${name}: none cannot be combined with origins`)
    return { exact: [], wildcards: [], none: true }
  }
  const exact: string[] = []
  const wildcards: string[] = []
  for (const entry of entries) {
    const wildcard = /^([a-z][a-z0-9+.-]*:\/\/)\*\.(.+)$/i.exec(entry)
    // The rest of a wildcard must be an origin of its own, with at least two labels (not *.com).
    const origin = exactOrigin(wildcard ? `${wildcard[1]}${wildcard[2]}` : entry, entry, name)
    if (!wildcard) { exact.push(origin); continue }
    const { hostname } = new URL(origin)
    if (!hostname.includes('.') || hostname.startsWith('[') || isIP(hostname) !== 0) {
      throw new ConfigError(`${name}: "${entry}" would match too much; name a domain, such as https://*.example.com`)
    }
    wildcards.push(origin.replace('://', '://*.'))
  }
  return { exact: [...new Set(exact)], wildcards: [...new Set(wildcards)], none: false }
}

/** One origin, as a browser would send it in the Origin header. */
function exactOrigin (text: string, entry: string, name: string): string {
  const refuse = (why: string): never => {
    throw new ConfigError(`${name}: "${entry.slice(0, 100)}" ${why}; use origins ${ORIGIN_EXAMPLES}`)
  }
  if (text.includes('*')) refuse('is not a pattern we accept (a * only as the first label after the scheme)')
  if (!/^[a-z][a-z0-9+.-]*:\/\/[^/?#@\\]+\/?$/i.test(text)) refuse('has more than scheme://host[:port] (no path, query or credentials)')
  let url: URL
  try { url = new URL(text) } catch { return refuse('is not an origin') }
  if (url.origin === 'null') refuse('is not an http(s) origin')
  // new URL() drops a default port (https://x:443 is https://x) and lowers the case, as browsers do.
  return url.origin
}

const UNIT_MS: Record<string, number> = {
  ms: 1, s: 1_000, sec: 1_000, second: 1_000, seconds: 1_000, m: 60_000, min: 60_000, minute: 60_000, minutes: 60_000,
  h: 3_600_000, hour: 3_600_000, hours: 3_600_000, d: 86_400_000, day: 86_400_000, days: 86_400_000
}

/**
 * A duration setting to milliseconds: a whole number with an optional unit, `defaultUnit` without
 * one. A typo must stop start-up: an unparsed rate-limit window, say, would never reset.
 */
export function parseDurationMs (name: string, raw: string, defaultUnit: 'ms' | 's', examples: string): number {
  const m = /^\s*(\d+)\s*([a-z]*)\s*$/i.exec(raw)
  const unit = m ? UNIT_MS[(m[2] || defaultUnit).toLowerCase()] : undefined
  const ms = m && unit ? Number(m[1]) * unit : NaN
  if (!Number.isSafeInteger(ms) || ms <= 0) throw new ConfigError(`${name}: "${raw}" is not a duration such as ${examples}`)
  return ms
}
