// The demo page: how a website starts an Amazon Connect chat through connect-chat-gateway.
// Plain browser JavaScript, no build step; amazon-connect-chatjs is loaded before it as `connect`.

const STORAGE_KEY = 'connect-chat-gateway-demo:previous-chat'
const $ = (id) => document.getElementById(id)
const ui = {
  form: $('start-form'), name: $('name'), message: $('message'), start: $('start'), resume: $('resume'),
  status: $('status'), error: $('error'), result: $('result'), resultTitle: $('result-title'),
  contactId: $('contact-id'), continuedFrom: $('continued-from'), chatjs: $('chatjs'), gateway: $('gateway-url')
}

let gatewayUrl = ''
let inFlight = 0
/** The request being attempted, its Idempotency-Key, and when it succeeded. */
let attempt = null
let countdownTimer = null
/** A double click can outrun a fast gateway: the same request this soon after its answer is the same click. */
const REPEAT_WINDOW_MS = 10_000

function randomKey () {
  // getRandomValues, not randomUUID: it also works when the page is opened over plain http on a LAN address.
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, '0')).join('')
}

/**
 * Sending the same request again (a double click, a retry after a timeout or a 503) reuses its key,
 * so the gateway never opens two chats for it. A refusal, or success longer ago than the repeat
 * window, settles the attempt: the next click is a new attempt with a new key.
 */
function idempotencyKeyFor (body) {
  const settled = attempt?.succeededAt !== undefined && Date.now() - attempt.succeededAt > REPEAT_WINDOW_MS
  if (attempt?.body !== body || settled) attempt = { body, key: randomKey() }
  return attempt.key
}

function previousChat () {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null')
  } catch {
    return null
  }
}

function rememberChat (data) {
  if (data.resumeToken) {
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ resumeToken: data.resumeToken, contactId: data.startChatResult.ContactId }))
  }
  refreshResumeButton()
}

function forgetChat () {
  localStorage.removeItem(STORAGE_KEY)
  refreshResumeButton()
}

function refreshResumeButton () {
  ui.resume.hidden = !previousChat()?.resumeToken
}

function setStatus (text) {
  ui.status.textContent = text
}

function showError (kind, text, retryAfterSeconds) {
  stopCountdown()
  ui.error.hidden = false
  ui.error.dataset.kind = kind
  ui.error.replaceChildren(document.createTextNode(text))
  if (retryAfterSeconds > 0) startCountdown(retryAfterSeconds)
}

function clearError () {
  stopCountdown()
  ui.error.hidden = true
  ui.error.dataset.kind = ''
  ui.error.replaceChildren()
}

/** Honour Retry-After: the buttons wait, and a countdown says for how long. */
function startCountdown (seconds) {
  let left = Math.ceil(seconds)
  const line = document.createElement('span')
  line.className = 'retry'
  const number = document.createElement('strong')
  number.id = 'retry-in'
  ui.error.append(line)
  const render = () => {
    if (left > 0) {
      number.textContent = String(left)
      line.replaceChildren(' You can try again in ', number, ' s.')
    } else {
      line.replaceChildren(' You can try again now.')
    }
  }
  setButtonsEnabled(false)
  render()
  countdownTimer = setInterval(() => {
    left -= 1
    render()
    if (left <= 0) stopCountdown()
  }, 1000)
}

function stopCountdown () {
  if (countdownTimer === null) return
  clearInterval(countdownTimer)
  countdownTimer = null
  setButtonsEnabled(true)
}

function setButtonsEnabled (enabled) {
  ui.start.disabled = !enabled
  ui.resume.disabled = !enabled
}

async function startChat ({ resume }) {
  const name = ui.name.value.trim()
  if (!name) {
    showError('invalid', 'Please enter your name.')
    ui.name.focus()
    return
  }
  const request = { ParticipantDetails: { DisplayName: name } }
  const message = ui.message.value.trim()
  if (message) request.InitialMessage = { ContentType: 'text/plain', Content: message }
  if (resume) request.PersistentChat = { RehydrationType: 'ENTIRE_PAST_SESSION', ResumeToken: previousChat()?.resumeToken }
  const body = JSON.stringify(request)

  clearError()
  inFlight += 1
  setStatus(resume ? 'Resuming your previous chat…' : 'Starting your chat…')
  // The button stays enabled on purpose: a second click sends the same request with the same key,
  // which is what the gateway's Idempotency-Key handling is for.
  try {
    let res
    try {
      res = await fetch(`${gatewayUrl}/chat/start`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'idempotency-key': idempotencyKeyFor(body) },
        body
      })
    } catch {
      // CORS refusals and network failures look the same from here (a TypeError).
      await explainUnreadableAnswer()
      return
    }
    const payload = await res.json().catch(() => null)
    if (res.ok && payload?.data?.startChatResult) {
      if (attempt?.body === body) attempt.succeededAt ??= Date.now()
      showChat(payload.data)
    } else {
      showFailure(res, payload, body)
    }
  } finally {
    inFlight -= 1
    if (inFlight === 0 && ui.status.textContent.endsWith('…')) setStatus('')
  }
}

async function explainUnreadableAnswer () {
  let check = null
  try {
    check = await (await fetch('gateway-check')).json()
  } catch { /* the page's own server is gone too */ }
  if (check?.reachable && !check.allowed) {
    showError('not-allowed', `Not allowed: the chat service does not accept chats from this page (${check.origin} is not in its ALLOWED_ORIGINS).`)
  } else if (check && !check.reachable) {
    showError('unreachable', `Cannot reach the chat service at ${gatewayUrl}. Is it running?`)
  } else {
    showError('network', 'The chat service could not be reached or its answer was blocked. Please try again.')
  }
}

function showFailure (res, payload, body) {
  const code = payload?.code
  const retryAfter = Number(res.headers.get('retry-after'))
  // Refusals that settle the attempt; anything else may be retried with the same key.
  if (res.status >= 400 && res.status < 500 && res.status !== 429 && attempt?.body === body) attempt = null

  if (res.status === 429) {
    showError('rate-limited', 'Too many chat requests from this device for now (rate limited).', retryAfter)
  } else if (res.status === 503) {
    showError('busy', 'The chat service is busy right now.', retryAfter)
  } else if (res.status === 409) {
    showError('still-open', 'Your previous chat is still open, so it cannot be resumed yet. Finish it first, or start a new chat.')
  } else if (code === 'ORIGIN_NOT_ALLOWED') {
    showError('not-allowed', 'Not allowed: the chat service does not accept chats from this page.')
  } else if (code === 'RESUME_TOKEN_REFUSED' || code === 'PERSISTENT_CHAT_DISABLED') {
    forgetChat()
    showError('cannot-resume', 'Your previous chat can no longer be resumed. Please start a new chat.')
  } else if (res.status === 401) {
    showError('sign-in', 'Please sign in before starting a chat.')
  } else if (res.status === 400 || res.status === 413) {
    const problems = (payload?.details ?? []).map((d) => `${d.path} ${d.message}`).join('; ')
    showError('invalid', `Please check what you entered${problems ? `: ${problems}` : '.'}`)
  } else {
    showError('failed', `We could not start a chat right now (HTTP ${res.status}). Please try again in a moment.`)
  }
}

function showChat (data) {
  const chat = data.startChatResult
  // A double click brings the same chat back twice; show and hand it over once.
  if (ui.contactId.textContent === chat.ContactId) return
  rememberChat(data)
  setStatus('')
  ui.result.hidden = false
  ui.resultTitle.textContent = chat.ContinuedFromContactId ? 'Previous chat resumed' : 'Chat started'
  ui.contactId.textContent = chat.ContactId
  for (const id of ['continued-label', 'continued-value']) $(id).hidden = !chat.ContinuedFromContactId
  ui.continuedFrom.textContent = chat.ContinuedFromContactId ?? ''
  handToChatjs(chat)
}

/**
 * Proves the gateway's answer is what Amazon's own client library expects. ChatSession.create does
 * not throw on bad details: it logs and returns a session without a controller, on which
 * getChatDetails() throws; a misnamed field comes back undefined. Both are checked.
 */
function handToChatjs (chat) {
  try {
    const session = window.connect.ChatSession.create({
      chatDetails: chat,
      type: window.connect.ChatSession.SessionTypes.CUSTOMER,
      // A real page uses the region of its Connect instance.
      options: { region: 'us-east-1' },
      // Amazon's client-side telemetry: nothing to report for a simulated chat, and no network here.
      disableCSM: true
    })
    const kept = session.getChatDetails()
    if (kept.contactId !== chat.ContactId || kept.participantId !== chat.ParticipantId || kept.participantToken !== chat.ParticipantToken) {
      throw new Error('the details it kept differ from the answer')
    }
    ui.chatjs.dataset.state = 'created'
    ui.chatjs.textContent = 'amazon-connect-chatjs accepted this chat: a CUSTOMER ChatSession was created for it. ' +
      'With the simulator there is no Amazon Connect Participant Service to connect to, so the page stops here; ' +
      'a real deployment would now call session.connect() to open the chat.'
  } catch (err) {
    ui.chatjs.dataset.state = 'refused'
    ui.chatjs.textContent = `amazon-connect-chatjs refused this chat: ${err instanceof Error ? err.message : String(err)}`
  }
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault()
  void startChat({ resume: false })
})
ui.resume.addEventListener('click', () => { void startChat({ resume: true }) })

try {
  gatewayUrl = (await (await fetch('config.json')).json()).gatewayUrl
  ui.gateway.textContent = gatewayUrl
  refreshResumeButton()
  document.body.dataset.ready = 'true'
} catch {
  showError('failed', 'This page could not load its settings (config.json).')
}
