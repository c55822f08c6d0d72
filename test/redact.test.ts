import fc from 'fast-check'
import pino from 'pino'
import t from 'tap'
import { REDACT_PATHS, redactLine } from '../src/logger.js'
import { compileRedactor } from '../src/redact.js'

// The compiled redactor must censor exactly what pino's own `redact` option censors with the same
// paths: pino is the oracle, fed the same generated lines.

function capture (options: pino.LoggerOptions) {
  let last = ''
  const logger = pino({ ...options, base: undefined, timestamp: false }, { write (line: string) { last = line } })
  return (obj: object) => { logger.info(obj, 'm'); return JSON.parse(last) as unknown }
}

// Key names the paths use, at any depth, and some they do not.
const KEYS = ['authorization', 'cookie', 'Cookie', 'headers', 'ParticipantToken', 'DisplayName', 'Attributes', 'body', 'input', 'req', 'res',
  'set-cookie', 'idempotency-key', 'data', 'startChatResult', 'resumeToken', 'ContactId', 'route', 'statusCode', 'other', 'x']

const line = fc.letrec((tie) => ({
  value: fc.oneof({ depthSize: 'small' }, fc.string({ maxLength: 5 }), fc.integer(), fc.boolean(), fc.constant(null), tie('object'), fc.array(tie('value'), { maxLength: 3 })),
  object: fc.dictionary(fc.constantFrom(...KEYS), tie('value'), { maxKeys: 5 })
})).object

t.test('censors what pino\'s redact censors, for generated lines', async (t) => {
  const ours = capture({ formatters: { log: redactLine } })
  const theirs = capture({ redact: { paths: REDACT_PATHS, censor: '[redacted]' } })
  fc.assert(fc.property(line, (obj) => {
    const before = JSON.stringify(obj)
    t.same(ours(obj), theirs(obj), before)
    if (JSON.stringify(obj) !== before) throw new Error('the logged object was changed')
  }), { numRuns: 2_000 })
})

t.test('known shapes: nested, quoted and wildcard paths; the object itself when nothing is censored', async (t) => {
  const redact = compileRedactor(['a.b', 'req.headers["set-cookie"]', '*.secret', 'top'], 'X')
  t.same(redact({ a: { b: 1, c: 2 }, top: { deep: 1 } }), { a: { b: 'X', c: 2 }, top: 'X' })
  t.same(redact({ req: { headers: { 'set-cookie': 'k', host: 'h' } } }), { req: { headers: { 'set-cookie': 'X', host: 'h' } } })
  t.same(redact({ a: { secret: 's', b: 1 }, z: { secret: 's' }, list: [{ secret: 's' }] }), { a: { secret: 'X', b: 'X' }, z: { secret: 'X' }, list: [{ secret: 's' }] },
    'a wildcard applies under named keys too, one level deep only')
  const clean = { a: { c: 1 }, n: 2 }
  t.equal(redact(clean), clean, 'no copy when nothing is censored')
  const err = Object.assign(new Error('e'), { secret: 's' })
  t.equal(redact({ err }).err, err, 'errors are left to their allowlist serializer')
  const deep = compileRedactor(['x.y', '*.*.z'], 'X')
  t.same(deep({ x: { q: { z: 1 }, y: 2 }, w: { q: { z: 1, k: 2 } } }), { x: { q: { z: 'X' }, y: 'X' }, w: { q: { z: 'X', k: 2 } } }, 'two wildcards deep, under a named key too')
  t.throws(() => compileRedactor(['.'], 'X'), /names nothing/)
})
