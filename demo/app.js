// The demo page: how a website starts an Amazon Connect chat through connect-chat-gateway and then
// holds the conversation with Amazon's own amazon-connect-chatjs (loaded before this as `connect`).
// Plain browser JavaScript, no build step.
import { closedText, watchAvailability } from './availability.js'
import DOMPurify from './vendor/dompurify/purify.es.mjs'
import { marked } from './vendor/marked/marked.esm.js'

const STORAGE_KEY = 'connect-chat-gateway-demo:previous-chat'
const CONTENT = {
  typing: 'application/vnd.amazonaws.connect.event.typing',
  joined: 'application/vnd.amazonaws.connect.event.participant.joined',
  left: 'application/vnd.amazonaws.connect.event.participant.left',
  ended: 'application/vnd.amazonaws.connect.event.chat.ended'
}
const $ = (id) => document.getElementById(id)
const ui = {
  form: $('start-form'), name: $('name'), message: $('message'), start: $('start'), resume: $('resume'),
  status: $('status'), error: $('error'), result: $('result'), resultTitle: $('result-title'),
  contactId: $('contact-id'), continuedFrom: $('continued-from'), chatjs: $('chatjs'), gateway: $('gateway-url'),
  transcript: $('transcript'), typing: $('typing'), composer: $('composer'), compose: $('compose'), send: $('send'),
  endChat: $('end-chat'), widget: $('widget'), widgetField: $('widget-field')
}

let gatewayUrl = ''
let inFlight = 0
/** The request being attempted, its Idempotency-Key, and when it succeeded. */
let attempt = null
let countdownTimer = null
/** A double click can outrun a fast gateway: the same request this soon after its answer is the same click. */
const REPEAT_WINDOW_MS = 10_000
/** The open conversation: its chatjs session and every item seen, by Id. */
let chat = null
let typingTimer = null
/** How the open chat is ended at the gateway: its end token and the widget path it came through. */
let ending = null
/** The solved human check, sent once with the next start (each proof opens one chat). */
let humanCheckProof = null

function randomKey () {
  if (typeof crypto.randomUUID === 'function') return crypto.randomUUID()
  // randomUUID exists only in secure contexts; a page opened over plain http on a LAN address has not got it.
  const b = crypto.getRandomValues(new Uint8Array(16))
  b[6] = (b[6] & 0x0f) | 0x40
  b[8] = (b[8] & 0x3f) | 0x80
  const hex = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('')
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`
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

/** The widget profile picked on the page; `default` is the gateway's own configuration. */
function chosenWidget () {
  return ui.widget.value || 'default'
}

function endPath (widget) {
  return widget === 'default' ? '/chat/end' : `/chat/end/${encodeURIComponent(widget)}`
}

function challengePath (widget) {
  return widget === 'default' ? '/chat/challenge' : `/chat/challenge/${encodeURIComponent(widget)}`
}

function startPath (widget) {
  return widget === 'default' ? '/chat/start' : `/chat/start/${encodeURIComponent(widget)}`
}

function previousChat () {
  try {
    return JSON.parse(localStorage.getItem(STORAGE_KEY) ?? 'null')
  } catch {
    return null
  }
}

/** Every start, resumes included, brings a fresh resume token: the newest one is what resumes next time. */
function rememberChat (data, widget) {
  ending = data.endToken ? { token: data.endToken, widget } : null
  if (data.resumeToken) {
    // A resume token works only on the widget that issued it, so the widget is remembered with it.
    localStorage.setItem(STORAGE_KEY, JSON.stringify({ resumeToken: data.resumeToken, contactId: data.startChatResult.ContactId, widget }))
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
  const widget = resume ? previousChat()?.widget ?? 'default' : chosenWidget()

  clearError()
  inFlight += 1
  setStatus(resume ? 'Resuming your previous chat…' : 'Starting your chat…')
  // The button stays enabled on purpose: a second click sends the same request with the same key,
  // which is what the gateway's Idempotency-Key handling is for.
  try {
    let res
    try {
      const headers = { 'content-type': 'application/json', 'idempotency-key': idempotencyKeyFor(body) }
      if (humanCheckProof) headers['human-check'] = humanCheckProof
      humanCheckProof = null
      res = await fetch(`${gatewayUrl}${startPath(widget)}`, { method: 'POST', headers, body })
    } catch {
      // CORS refusals and network failures look the same from here (a TypeError).
      await explainUnreadableAnswer()
      return
    }
    const payload = await res.json().catch(() => null)
    if (res.ok && payload?.data?.startChatResult) {
      if (attempt?.body === body) attempt.succeededAt ??= Date.now()
      hideHumanCheck()
      showChat(payload.data, widget)
    } else if (payload?.code === 'HUMAN_CHECK_REQUIRED') {
      showHumanCheck(payload.humanCheck, widget, resume)
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
  } else if (code === 'CHAT_CLOSED') {
    // The queue closed since the page last asked (REFUSE_WHEN_CLOSED): no countdown to tomorrow.
    showError('closed', closedText(payload.nextOpen))
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

/**
 * The gateway asks anonymous callers for a human check while it is busy (or always). The ALTCHA
 * widget solves its proof-of-work challenge in the browser; the solved payload goes with the next
 * start in the Human-Check header, which then follows at once.
 */
async function showHumanCheck (kind, widget, resume) {
  if (kind !== 'pow') {
    showError('human-check', `This chat asks for a human check (${kind}) that this demo page does not embed.`)
    return
  }
  setStatus('One moment: checking that you are not a bot…')
  await import('./vendor/altcha.js')
  const box = $('human-check')
  const check = document.createElement('altcha-widget')
  check.setAttribute('challenge', `${gatewayUrl}${challengePath(widget)}`)
  check.setAttribute('auto', 'onload')
  check.addEventListener('statechange', (event) => {
    if (event.detail?.state !== 'verified' || !event.detail.payload) return
    humanCheckProof = event.detail.payload
    void startChat({ resume })
  })
  box.replaceChildren(check)
  box.hidden = false
}

function hideHumanCheck () {
  const box = $('human-check')
  box.hidden = true
  box.replaceChildren()
}

/** Ends the chat at the gateway too, so it stops counting against this site's chat quota at once. */
function endAtGateway (beacon) {
  if (!ending) return
  const url = `${gatewayUrl}${endPath(ending.widget)}`
  // text/plain: no preflight, so it also works from pagehide, where a preflight would never finish.
  const body = JSON.stringify({ EndToken: ending.token })
  ending = null
  if (beacon) navigator.sendBeacon(url, body)
  else fetch(url, { method: 'POST', headers: { 'content-type': 'text/plain' }, body, keepalive: true }).catch(() => {})
}

function showChat (data, widget) {
  const started = data.startChatResult
  // A double click brings the same chat back twice; show and hand it over once.
  if (ui.contactId.textContent === started.ContactId) return
  rememberChat(data, widget)
  setStatus('')
  // The start form folds away while the chat is open, and its first message is spent: a resume
  // later must not send it again.
  showStartForm(false)
  ui.message.value = ''
  ui.result.hidden = false
  ui.resultTitle.textContent = started.ContinuedFromContactId ? 'Previous chat resumed' : 'Chat started'
  ui.contactId.textContent = started.ContactId
  for (const id of ['continued-label', 'continued-value']) $(id).hidden = !started.ContinuedFromContactId
  ui.continuedFrom.textContent = started.ContinuedFromContactId ?? ''
  void openConversation(started, data.featurePermissions?.MESSAGING_MARKDOWN === true)
}

/** Shown while there is no open chat: before the first, after one ended or could not connect. */
function showStartForm (visible) {
  ui.form.hidden = !visible
}

function setChatState (state, text) {
  ui.chatjs.dataset.state = state
  ui.chatjs.textContent = text
}

// --- the conversation, through amazon-connect-chatjs ---------------------------------------------

/**
 * Hands the gateway's answer to chatjs and connects. ChatSession.create does not throw on bad
 * details: it logs and returns a session without a controller, on which getChatDetails() throws; a
 * misnamed field comes back undefined. Both are checked before connecting.
 */
async function openConversation (started, markdown) {
  const previous = chat
  chat = null
  // A new chat replaces an open one on this page; the old session stops updating it.
  previous?.session.cleanUpOnParticipantDisconnect?.()
  ui.transcript.replaceChildren()
  hideTyping()
  setComposerEnabled(false)
  let session
  try {
    session = window.connect.ChatSession.create({
      chatDetails: started,
      type: window.connect.ChatSession.SessionTypes.CUSTOMER,
      // Amazon's client-side telemetry: nothing to report for a simulated chat, and no network for it here.
      disableCSM: true
    })
    const kept = session.getChatDetails()
    if (kept.contactId !== started.ContactId || kept.participantId !== started.ParticipantId || kept.participantToken !== started.ParticipantToken) {
      throw new Error('the details it kept differ from the answer')
    }
  } catch (err) {
    setChatState('refused', `amazon-connect-chatjs refused this chat: ${err instanceof Error ? err.message : String(err)}`)
    showStartForm(true)
    return
  }
  // With MESSAGING_MARKDOWN the customer writes markdown too, as Connect's own widget does.
  const current = { session, contactId: started.ContactId, items: new Map(), ended: false, focused: false, markdown }
  chat = current
  setChatState('created', 'amazon-connect-chatjs accepted this chat; connecting…')

  // Every handler checks it still belongs to the open chat: a replaced session may still call back.
  const mine = (handler) => (event) => { if (chat === current) handler(event) }
  session.onMessage(mine((event) => receive(event.data)))
  session.onTyping(mine((event) => {
    if (event.data?.ParticipantRole !== 'CUSTOMER') showTyping(event.data?.DisplayName)
  }))
  session.onEnded(mine(() => chatEnded()))
  session.onConnectionLost(mine(() => setChatState('reconnecting', 'Connection lost; reconnecting…')))
  session.onConnectionBroken(mine(() => { if (!current.ended) setChatState('failed', 'The connection to the chat broke.') }))
  // Connected, and again after every reconnect: whatever was said meanwhile comes from the transcript.
  session.onConnectionEstablished(mine(() => {
    if (current.ended) return
    setChatState('connected', 'Connected: this conversation runs through amazon-connect-chatjs.')
    setComposerEnabled(true)
    if (!current.focused) {
      current.focused = true
      ui.compose.focus()
    }
    void loadTranscript(current)
  }))

  try {
    const connected = await session.connect()
    if (!connected?.connectSuccess) throw new Error('connect() did not succeed')
  } catch {
    if (chat === current) {
      setChatState('failed', 'Could not connect to the chat. Please try again.')
      showStartForm(true)
    }
  }
}

async function loadTranscript (current) {
  try {
    const res = await current.session.getTranscript({ maxResults: 100, scanDirection: 'BACKWARD', sortOrder: 'ASCENDING' })
    if (chat !== current) return
    for (const item of res?.data?.Transcript ?? []) receive(item)
  } catch { /* the live messages still arrive; the next reconnect tries again */ }
}

function receive (item) {
  if (!chat || !item?.Id || chat.items.has(item.Id)) return
  chat.items.set(item.Id, item)
  if (item.Type === 'MESSAGE' && item.ParticipantRole !== 'CUSTOMER') hideTyping()
  if (item.ContentType === CONTENT.ended && item.ContactId === chat.contactId) chatEnded()
  render()
}

/** Items in time order; those of earlier contacts (a resumed chat's past) come first, under their own heading. */
function render () {
  const items = [...chat.items.values()]
    .filter((item) => item.Type === 'MESSAGE' || [CONTENT.joined, CONTENT.left, CONTENT.ended].includes(item.ContentType))
    .sort((a, b) => (a.AbsoluteTime < b.AbsoluteTime ? -1 : a.AbsoluteTime > b.AbsoluteTime ? 1 : 0))
  const past = items.filter((item) => item.ContactId && item.ContactId !== chat.contactId)
  const present = items.filter((item) => !past.includes(item))
  const rows = []
  if (past.length > 0) {
    rows.push(divider('Previous conversation'), ...past.map((item) => row(item, true)), divider('Resumed today'))
  }
  rows.push(...present.map((item) => row(item, false)))
  ui.transcript.replaceChildren(...rows)
  ui.transcript.lastElementChild?.scrollIntoView({ block: 'nearest' })
}

function divider (text) {
  const li = document.createElement('li')
  li.className = 'divider'
  li.textContent = text
  return li
}

function row (item, past) {
  const li = document.createElement('li')
  li.dataset.id = item.Id
  if (past) li.classList.add('past')
  if (item.Type !== 'MESSAGE') {
    li.classList.add('event')
    const who = item.DisplayName ?? 'Someone'
    li.textContent = item.ContentType === CONTENT.joined
      ? `${who} joined the chat`
      : item.ContentType === CONTENT.left ? `${who} left the chat` : 'Chat ended'
    return li
  }
  const mine = item.ParticipantRole === 'CUSTOMER'
  li.classList.add('bubble', mine ? 'customer' : 'agent')
  const who = document.createElement('span')
  who.className = 'who'
  who.textContent = mine ? 'You' : item.DisplayName ?? 'Agent'
  const text = document.createElement('span')
  text.className = 'text'
  if (item.ContentType === 'text/markdown') {
    // Markdown becomes HTML only through DOMPurify: what the other side writes must not run here.
    text.classList.add('markdown')
    text.innerHTML = DOMPurify.sanitize(marked.parse(item.Content ?? '', { async: false }))
  } else {
    text.textContent = item.Content ?? ''
  }
  li.append(who, text)
  return li
}

function showTyping (name) {
  ui.typing.textContent = `${name ?? 'The agent'} is typing…`
  ui.typing.hidden = false
  clearTimeout(typingTimer)
  // Connect sends typing again while it lasts; without a new one the indicator goes.
  typingTimer = setTimeout(hideTyping, 12_000)
}

function hideTyping () {
  clearTimeout(typingTimer)
  ui.typing.hidden = true
  ui.typing.textContent = ''
}

function setComposerEnabled (enabled) {
  ui.compose.disabled = !enabled
  ui.send.disabled = !enabled
  ui.endChat.hidden = !enabled
}

function chatEnded () {
  if (!chat || chat.ended) return
  chat.ended = true
  // Ended by either side in the chat: the gateway is told too, which costs nothing if it knew.
  endAtGateway(false)
  hideTyping()
  setComposerEnabled(false)
  ui.resultTitle.textContent = 'Chat ended'
  setChatState('ended', 'This chat has ended. You can resume it or start a new one above.')
  showStartForm(true)
  refreshResumeButton()
}

async function sendMessage () {
  const text = ui.compose.value.trim()
  if (!chat || chat.ended || !text) return
  const current = chat
  ui.compose.value = ''
  try {
    const contentType = current.markdown ? 'text/markdown' : 'text/plain'
    const res = await current.session.sendMessage({ contentType, message: text })
    // Connect echoes our own message on the WebSocket as well; whichever comes first is shown once.
    receive({
      Id: res.data.Id, AbsoluteTime: res.data.AbsoluteTime, Type: 'MESSAGE', ContentType: contentType,
      Content: text, ParticipantRole: 'CUSTOMER', ContactId: current.contactId
    })
    if (ui.error.dataset.kind === 'not-sent') clearError()
  } catch {
    if (chat !== current) return
    if (!ui.compose.value) ui.compose.value = text
    showError('not-sent', 'Your message was not sent. Please try again.')
  }
}

ui.form.addEventListener('submit', (event) => {
  event.preventDefault()
  void startChat({ resume: false })
})
ui.resume.addEventListener('click', () => { void startChat({ resume: true }) })
ui.composer.addEventListener('submit', (event) => {
  event.preventDefault()
  void sendMessage()
})
ui.compose.addEventListener('keydown', (event) => {
  if (event.key === 'Enter' && !event.shiftKey && !event.isComposing) {
    event.preventDefault()
    void sendMessage()
  }
})
ui.compose.addEventListener('input', () => {
  // chatjs sends at most one typing event every few seconds, however often this fires.
  if (chat && !chat.ended && ui.compose.value) chat.session.sendEvent({ contentType: CONTENT.typing }).catch(() => {})
})
// A customer who closes the tab or leaves the page ends the chat, instead of leaving an agent with
// nobody for the rest of its duration.
window.addEventListener('pagehide', () => { if (chat && !chat.ended) endAtGateway(true) })
ui.endChat.addEventListener('click', () => {
  if (!chat || chat.ended) return
  ui.endChat.disabled = true
  // Leaving through the chat first, so the transcript says who left; its chat-ended event then tells
  // the gateway (chatEnded). Ending at the gateway at the same time could end the contact first,
  // with no one shown leaving. When leaving fails, the gateway ends the chat instead.
  chat.session.disconnectParticipant()
    .catch(() => endAtGateway(false))
    .finally(() => { ui.endChat.disabled = false })
})

try {
  const config = await (await fetch('config.json')).json()
  gatewayUrl = config.gatewayUrl
  ui.gateway.textContent = gatewayUrl
  // With WIDGETS_FILE the gateway serves several widget profiles; the page can start on any of them.
  for (const id of config.widgets ?? []) ui.widget.append(Object.assign(document.createElement('option'), { value: id, textContent: id === 'default' ? 'default (the environment\'s settings)' : id }))
  ui.widgetField.hidden = (config.widgets ?? []).length < 2
  // A real page sets the region of its Connect instance and no endpoint; `npm run dev` points chatjs
  // at the simulated Participant Service.
  const globalConfig = { region: 'us-east-1' }
  if (config.participantUrl) globalConfig.endpoint = config.participantUrl
  window.connect.ChatSession.setGlobalConfig(globalConfig)
  refreshResumeButton()
  // Asked before the page is ready: a closed queue never shows a start button.
  const availability = watchAvailability({ gatewayUrl, widget: chosenWidget, form: ui.form, notice: $('availability') })
  ui.widget.addEventListener('change', () => { void availability.check() })
  await availability.check()
  document.body.dataset.ready = 'true'
} catch {
  showError('failed', 'This page could not load its settings (config.json).')
}
