// Before offering a chat, the page asks the gateway whether anyone can answer
// (GET /chat/availability): closed says when it opens again, no agents says so, and in both cases
// the start button gives way to that line. Any other answer, or none, leaves the button as it is:
// a gateway that cannot tell must not hide the chat.

const RECHECK_MS = 30_000

function availabilityPath (widget) {
  return widget === 'default' ? '/chat/availability' : `/chat/availability/${encodeURIComponent(widget)}`
}

/** "at 09:00" in the customer's own time; "on Monday at 09:00" when it is not within the next day. */
function opensAt (nextOpen, now = new Date()) {
  const at = new Date(nextOpen)
  if (Number.isNaN(at.getTime())) return ''
  const time = `at ${at.toLocaleTimeString([], { hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })}`
  return at.getTime() - now.getTime() < 24 * 3_600_000 ? time : `on ${at.toLocaleDateString([], { weekday: 'long' })} ${time}`
}

/** What the page says for a closed queue, from its `nextOpen` (a CHAT_CLOSED answer carries it too). */
export function closedText (nextOpen) {
  const when = nextOpen ? opensAt(nextOpen) : ''
  return when ? `We're closed, back ${when}.` : 'We\'re closed right now.'
}

function describe (answer) {
  if (answer?.reason === 'closed') return closedText(answer.nextOpen)
  if (answer?.reason === 'no_agents') return 'No agents right now. Please try again a little later.'
  return ''
}

/**
 * Keeps `form.dataset.availability` (open, closed, no_agents, unknown) and the `notice` line in step
 * with the gateway for the widget `widget()` names, now and every 30 s; `check()` asks again at once
 * (after the widget picker changes).
 */
export function watchAvailability ({ gatewayUrl, widget, form, notice }) {
  let asked = 0
  const check = async () => {
    const mine = ++asked
    let answer = null
    try {
      const res = await fetch(`${gatewayUrl}${availabilityPath(widget())}`)
      if (res.ok) answer = await res.json()
    } catch { /* unreachable: the start button explains that itself */ }
    if (mine !== asked) return
    form.dataset.availability = answer?.reason ?? 'unknown'
    const text = describe(answer)
    notice.textContent = text
    notice.hidden = text === ''
  }
  setInterval(() => { void check() }, RECHECK_MS)
  return { check }
}
