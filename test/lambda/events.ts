import { randomUUID } from 'node:crypto'
import type { HttpApiEvent } from '../../src/lambda-handler.js'

/**
 * A browser's POST /chat/start as API Gateway's HTTP API (payload format 2.0, $default stage and
 * route) hands it to the function, written after the format's documented example with a current
 * browser's headers (not captured from a live API). Header names arrive lower-case, cookies apart
 * from the headers, no content-length, and API Gateway's own x-forwarded-for / x-forwarded-port /
 * x-forwarded-proto / x-amzn-trace-id added.
 */
export const recordedChatStart: HttpApiEvent = {
  version: '2.0',
  routeKey: '$default',
  rawPath: '/chat/start',
  rawQueryString: '',
  cookies: ['_ga=GA1.1.1234567890.1764979200', 'consent=analytics'],
  headers: {
    accept: 'application/json',
    'accept-encoding': 'gzip, deflate, br, zstd',
    'accept-language': 'en-GB,en;q=0.9',
    'content-type': 'application/json',
    host: 'chat-api.example.com',
    origin: 'https://shop.example.com',
    referer: 'https://shop.example.com/help',
    'sec-fetch-dest': 'empty',
    'sec-fetch-mode': 'cors',
    'sec-fetch-site': 'same-site',
    'user-agent': 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36',
    'x-amzn-trace-id': 'Root=1-6752f3a0-0f1e2d3c4b5a697887766554',
    'x-forwarded-for': '198.51.100.23',
    'x-forwarded-port': '443',
    'x-forwarded-proto': 'https'
  },
  requestContext: {
    accountId: '123456789012',
    apiId: 'a1b2c3d4e5',
    domainName: 'chat-api.example.com',
    domainPrefix: 'chat-api',
    http: {
      method: 'POST',
      path: '/chat/start',
      protocol: 'HTTP/1.1',
      sourceIp: '198.51.100.23',
      userAgent: 'Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36'
    },
    requestId: 'CtVd5hQwoAMEbZw=',
    routeKey: '$default',
    stage: '$default',
    time: '06/Dec/2026:07:45:12 +0000',
    timeEpoch: 1796543112000
  },
  body: '{"ParticipantDetails":{"DisplayName":"Ann"}}',
  isBase64Encoded: false
}

export interface EventOptions {
  method?: string
  path?: string
  /** The query string as sent, without `?`. */
  query?: string
  /** The address API Gateway saw: the only one the app may count the caller under. */
  sourceIp?: string
  /** Added to (or, when undefined, removed from) the recorded headers. */
  headers?: Record<string, string | undefined>
  body?: string | null
  /** Sent base64-encoded, as API Gateway does for bodies it does not take for text. */
  base64?: boolean
}

/** The recorded event, changed where a test says: the rest (and x-forwarded-for = sourceIp) as API Gateway writes it. */
export function httpApiEvent (options: EventOptions = {}): HttpApiEvent {
  const method = options.method ?? 'POST'
  const path = options.path ?? '/chat/start'
  const sourceIp = options.sourceIp ?? recordedChatStart.requestContext.http.sourceIp
  const headers: Record<string, string> = { ...recordedChatStart.headers, 'x-forwarded-for': sourceIp }
  for (const [name, value] of Object.entries(options.headers ?? {})) {
    if (value === undefined) delete headers[name]
    else headers[name] = value
  }
  const body = options.body === undefined ? recordedChatStart.body ?? null : options.body
  if (body === null) delete headers['content-type']
  const query = options.query ?? ''
  const event: HttpApiEvent = {
    ...recordedChatStart,
    rawPath: path,
    rawQueryString: query,
    headers,
    requestContext: {
      ...recordedChatStart.requestContext,
      http: { ...recordedChatStart.requestContext.http, method, path, sourceIp },
      requestId: randomUUID().slice(0, 16)
    },
    isBase64Encoded: options.base64 === true
  }
  if (query !== '') event.queryStringParameters = Object.fromEntries(new URLSearchParams(query))
  if (body === null) delete event.body
  else event.body = options.base64 ? Buffer.from(body).toString('base64') : body
  return event
}

/** A chat-start body as the widget sends it. */
export const chatStartBody = (extra: Record<string, unknown> = {}) => JSON.stringify({ ParticipantDetails: { DisplayName: 'Ann' }, ...extra })
