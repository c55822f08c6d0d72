import t from 'tap'
import { build, startChat, validBody } from './helper.js'

// DisplayName is what the agent reads: any script, accents and emoji; nothing that hides or flips it.

const named = (DisplayName: string) => validBody({ ParticipantDetails: { DisplayName } })

t.test('names a person can read are welcome, in many scripts', async (t) => {
  const { app, sim } = await build(t)
  const names = [
    'José Álvarez', 'Zoë Ångström', '山田 太郎', 'Мария Иванова', 'محمد عبد الله', 'שרה כהן', 'अनीता शर्मा', '김민준',
    'Nguyễn Văn An', 'Σωκράτης', 'Ẹniọlá Adébáyọ̀', 'O\'Brien-Smith', '👩‍💻 Ann', 'ธนพล', 'Łukasz Żółć'
  ]
  for (const name of names) {
    const res = await startChat(app, named(name))
    t.equal(res.statusCode, 200, name)
  }
  t.same(sim.requests.map((r) => (r.input.ParticipantDetails as { DisplayName: string }).DisplayName), names, 'sent to Connect unchanged')
})

t.test('invisible, reversed and broken names -> 400 naming the field; Connect not called', async (t) => {
  const { app, sim } = await build(t)
  const cases: Array<[string, string, RegExp]> = [
    ['right-to-left override', 'Ann\u202etnegA', /bidirectional/],
    ['isolate', 'Ann\u2066x\u2069', /bidirectional/],
    ['left-to-right mark', '\u200eAnn', /bidirectional/],
    ['zero-width only', '\u200b\u200b', /visible/],
    ['Hangul filler only', '\u3164', /visible/],
    ['Hangul choseong filler', '\u115f\u1160', /visible/],
    ['halfwidth filler', '\uffa0', /visible/],
    ['word joiner and BOM', '\u2060\ufeff', /visible/],
    ['braille blank', '\u2800', /visible/]
  ]
  for (const [what, name, message] of cases) {
    const res = await startChat(app, named(name))
    t.equal(res.statusCode, 400, what)
    t.match(res.json().details, [{ path: 'ParticipantDetails.DisplayName', message }], what)
  }
  // A lone surrogate can only arrive as a JSON escape.
  const lone = await startChat(app, '{"ParticipantDetails":{"DisplayName":"A\\ud800B"}}')
  t.equal(lone.statusCode, 400, 'lone surrogate')
  t.match(lone.json().details, [{ path: 'ParticipantDetails.DisplayName', message: /lone surrogate/ }])
  t.equal(sim.requests.length, 0)
})
