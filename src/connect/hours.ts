// Opening hours as Connect's GetEffectiveHoursOfOperations gives them (dates and local times in the
// hours' IANA time zone) turned into absolute times, so an answer can be worked out for any moment
// without calling Connect again: across midnight, across a change of daylight saving time.

/** One day's local slices; an end not after its start runs past midnight (equal: the whole day). */
export interface LocalDay {
  date: string
  slices: Array<{ start: { hours: number; minutes: number }; end: { hours: number; minutes: number } }>
}

/** Open from the first epoch millisecond up to (not including) the second. */
export type Interval = [number, number]

const formatters = new Map<string, Intl.DateTimeFormat>()

function formatter (timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone)
  if (!f) {
    // Throws RangeError for a zone this runtime does not know.
    f = new Intl.DateTimeFormat('en-US', {
      timeZone, hourCycle: 'h23', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', second: '2-digit'
    })
    formatters.set(timeZone, f)
  }
  return f
}

/** The zone's offset from UTC at `epochMs`, in milliseconds (east positive). */
export function zoneOffsetMs (epochMs: number, timeZone: string): number {
  const parts: Record<string, number> = {}
  for (const p of formatter(timeZone).formatToParts(new Date(epochMs))) if (p.type !== 'literal') parts[p.type] = Number(p.value)
  const wall = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!)
  return wall - Math.floor(epochMs / 1000) * 1000
}

/**
 * The moment a wall clock in `timeZone` shows `minutes` after midnight of `date`. A time that happens
 * twice when the clocks go back is the first; one skipped when they go forward counts with the offset
 * before the change (02:30 on a spring-forward night is 03:30), as calendars do.
 */
export function zonedEpoch (date: string, minutes: number, timeZone: string): number {
  const [y, m, d] = date.split('-').map(Number) as [number, number, number]
  const naive = Date.UTC(y, m - 1, d, 0, minutes)
  const before = naive - zoneOffsetMs(naive - 43_200_000, timeZone)
  const after = naive - zoneOffsetMs(naive + 43_200_000, timeZone)
  const valid = [before, after].filter((t) => t + zoneOffsetMs(t, timeZone) === naive)
  return valid.length > 0 ? Math.min(...valid) : before
}

/** `epochMs` as ISO 8601 with the zone's offset: 2026-12-07T09:00:00+01:00 (the hour the business publishes). */
export function isoInZone (epochMs: number, timeZone: string): string {
  const offset = zoneOffsetMs(epochMs, timeZone)
  const local = new Date(epochMs + offset).toISOString().slice(0, 19)
  if (offset === 0) return `${local}Z`
  const abs = Math.abs(offset) / 60_000
  return `${local}${offset < 0 ? '-' : '+'}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`
}

/** The days' slices as sorted, merged absolute intervals (a slice ending at midnight meets the next day's). */
export function openIntervals (days: LocalDay[], timeZone: string): Interval[] {
  const raw: Interval[] = []
  for (const day of days) {
    for (const { start, end } of day.slices) {
      const from = start.hours * 60 + start.minutes
      let to = end.hours * 60 + end.minutes
      if (to <= from) to += 24 * 60
      raw.push([zonedEpoch(day.date, from, timeZone), zonedEpoch(day.date, to, timeZone)])
    }
  }
  raw.sort((a, b) => a[0] - b[0])
  const merged: Interval[] = []
  for (const interval of raw) {
    const last = merged[merged.length - 1]
    if (last && interval[0] <= last[1]) last[1] = Math.max(last[1], interval[1])
    else merged.push([interval[0], interval[1]])
  }
  return merged
}

/** The UTC calendar date `days` after the one of `epochMs`: YYYY-MM-DD. */
export function utcDate (epochMs: number, days = 0): string {
  return new Date(epochMs + days * 86_400_000).toISOString().slice(0, 10)
}
