import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import t from 'tap'
import { ROOT, typescriptArgs } from './service-process.js'

// The test harness itself: how tests start children.

t.test('a child running this checkout\'s TypeScript uses the runner\'s own loader, so tap reads one source map per file', async (t) => {
  // Under tap, the child gets the test process's loader flags; tsx is only the fallback outside it.
  t.same(typescriptArgs('src/server.ts'), [...process.execArgv, 'src/server.ts'])
  t.ok(process.execArgv.some((a) => a.includes('typescript')), 'tap runs this file through its TypeScript loader')
  const spawnsTsx = readdirSync(join(ROOT, 'test'), { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && f !== 'service-process.ts')
    .filter((f) => /['"]--import['"],\s*['"]tsx['"]|--import[= ]tsx/.test(readFileSync(join(ROOT, 'test', f), 'utf8')))
  t.same(spawnsTsx, [], 'no test starts a child with tsx directly')
})
