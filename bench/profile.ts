import { readFileSync } from 'node:fs'

interface ProfileNode { id: number; callFrame: { functionName: string; url: string; lineNumber: number }; hitCount?: number }

/** Where a frame's code lives: a package, node itself, or our own source. */
function owner (url: string): string {
  if (url === '') return '(native/V8)'
  if (url.startsWith('node:')) return 'node core'
  const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)\/(?!.*node_modules)/.exec(url)
  if (pkg?.[1] && !pkg[1].startsWith('.cache')) return pkg[1]
  const own = /\/(src|bench)\/(.+)$/.exec(url)
  return own ? `${own[1]}/${own[2]}` : url
}

/** Self time of a .cpuprofile by package and by function: where a request's CPU goes. */
export function summarizeProfile (file: string, top = 20): string {
  const profile = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[] }
  const total = profile.nodes.reduce((n, node) => n + (node.hitCount ?? 0), 0)
  const byOwner = new Map<string, number>()
  const byFunction = new Map<string, number>()
  for (const node of profile.nodes) {
    const hits = node.hitCount ?? 0
    if (hits === 0) continue
    const o = node.callFrame.functionName === '(idle)' ? '(idle)' : node.callFrame.functionName === '(garbage collector)' ? '(gc)' : owner(node.callFrame.url)
    byOwner.set(o, (byOwner.get(o) ?? 0) + hits)
    const where = node.callFrame.url.startsWith('node:') ? node.callFrame.url : owner(node.callFrame.url)
    const f = `${node.callFrame.functionName || '(anonymous)'} ${where}:${node.callFrame.lineNumber + 1}`
    byFunction.set(f, (byFunction.get(f) ?? 0) + hits)
  }
  const pct = (n: number) => `${((n / total) * 100).toFixed(1).padStart(5)}%`
  const list = (m: Map<string, number>) => [...m].sort((a, b) => b[1] - a[1]).slice(0, top).map(([k, v]) => `  ${pct(v)}  ${k}`).join('\n')
  return `Self time by owner:\n${list(byOwner)}\n\nSelf time by function:\n${list(byFunction)}`
}

if (process.argv[1] && import.meta.url.endsWith(process.argv[1].split('/').pop() ?? '')) {
  process.stdout.write(`${summarizeProfile(process.argv[2] ?? '', Number(process.argv[3] ?? 30))}\n`)
}
