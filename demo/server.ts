/**
 * The demo page of `npm run dev`: a second, small server on its own origin, so the page calls the
 * gateway cross-origin exactly like a customer's website would (CORS, preflight and all).
 * Development only: it serves amazon-connect-chatjs from node_modules (a dev dependency).
 */
import helmet from '@fastify/helmet'
import fastifyStatic from '@fastify/static'
import Fastify, { type FastifyServerOptions } from 'fastify'
import type { IncomingMessage } from 'node:http'
import type { AddressInfo } from 'node:net'
import { createRequire } from 'node:module'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'

export interface DemoServerOptions {
  port: number
  host: string
  /**
   * The gateway the page calls, given the hostname the page was opened on: `localhost` pairs with
   * `localhost` and `127.0.0.1` with `127.0.0.1`. Read on every request, so it may be known late.
   */
  gatewayUrl: (pageHostname: string) => string
  /**
   * The Participant Service chatjs talks to (the simulator's URL in `npm run dev`), or undefined
   * for Amazon's own endpoint of the region. Read on every request, like gatewayUrl.
   */
  participantUrl?: () => string | undefined
  /** The gateway's widget profiles (`default` first), offered on the page; read on every request, so a reload shows. */
  widgets?: () => string[]
  logger?: FastifyServerOptions['logger']
}

export interface DemoServer {
  /** Origin of the page, on 127.0.0.1 when listening on every interface. */
  readonly url: string
  readonly port: number
  close (): Promise<void>
}

const PAGE_ROOT = fileURLToPath(new URL('./', import.meta.url))
const require = createRequire(import.meta.url)
const CHATJS_FILE = require.resolve('amazon-connect-chatjs')
const CHATJS_SERVED = new Set([`/${basename(CHATJS_FILE)}`, `/${basename(CHATJS_FILE)}.map`])
// The ALTCHA widget (a web component), shown when the gateway asks for a proof-of-work check.
const ALTCHA_FILE = createRequire(import.meta.url).resolve('altcha')
/**
 * Markdown messages are rendered with marked and sanitised with DOMPurify, both as ES modules from
 * node_modules (nothing from a CDN), each folder serving only its one file and its map.
 */
const MODULES = [
  { prefix: '/vendor/dompurify/', root: dirname(require.resolve('dompurify')), file: 'purify.es.mjs' },
  { prefix: '/vendor/marked/', root: join(dirname(require.resolve('marked/package.json')), 'lib'), file: 'marked.esm.js' }
]

function hostnameOf (hostHeader: string | undefined): string {
  try {
    return new URL(`http://${hostHeader ?? 'localhost'}`).hostname
  } catch {
    return 'localhost'
  }
}

const trimSlash = (url: string) => url.replace(/\/+$/, '')

export async function startDemoServer (options: DemoServerOptions): Promise<DemoServer> {
  const app = Fastify({ logger: options.logger ?? false })
  const gatewayFor = (req: IncomingMessage) => trimSlash(options.gatewayUrl(hostnameOf(req.headers.host)))
  const participantUrl = () => {
    const url = options.participantUrl?.()
    return url ? trimSlash(url) : undefined
  }
  // chatjs calls the Participant Service over HTTPS (or the local endpoint) and opens its WebSocket.
  const participantSources = (): string[] => {
    const url = participantUrl()
    if (!url) return ['https://*.amazonaws.com', 'wss://*.amazonaws.com']
    const { origin, host } = new URL(url)
    return [origin, `ws://${host}`]
  }

  await app.register(helmet, {
    // What a site embedding a chat widget must allow: fetches to the gateway, nothing inline.
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ['\'self\''],
        connectSrc: ['\'self\'', (req) => new URL(gatewayFor(req)).origin, () => participantSources().join(' ')],
        imgSrc: ['\'self\'', 'data:'],
        // The ALTCHA widget's one-file bundle starts its proof-of-work workers from blob: URLs and
        // styles itself with a <style> element; its `altcha/external` build needs neither.
        workerSrc: ['\'self\'', 'blob:'],
        styleSrc: ['\'self\'', '\'unsafe-inline\''],
        objectSrc: ['\'none\''],
        baseUri: ['\'none\''],
        formAction: ['\'none\''],
        frameAncestors: ['\'none\'']
      }
    },
    // Served over plain http on a developer's machine.
    strictTransportSecurity: false
  })
  // The page's folder also holds this server's own source (and dev.ts): the page's files only.
  await app.register(fastifyStatic, { root: PAGE_ROOT, index: 'index.html', cacheControl: false, allowedPath: (pathName) => !pathName.endsWith('.ts') })
  await app.register(fastifyStatic, {
    root: dirname(CHATJS_FILE),
    prefix: '/vendor/',
    decorateReply: false,
    allowedPath: (pathName) => CHATJS_SERVED.has(pathName)
  })
  app.get('/vendor/altcha.js', (_request, reply) => reply.type('text/javascript').sendFile('altcha.js', dirname(ALTCHA_FILE)))
  for (const { prefix, root, file } of MODULES) {
    await app.register(fastifyStatic, { root, prefix, decorateReply: false, allowedPath: (pathName) => pathName === `/${file}` || pathName === `/${file}.map` })
  }

  app.get('/config.json', async (request) => ({ gatewayUrl: gatewayFor(request.raw), participantUrl: participantUrl(), ...(options.widgets ? { widgets: options.widgets() } : {}) }))

  // A browser hides why a cross-origin call failed. The page asks here, and this server asks the
  // gateway the same preflight question from outside the browser: unreachable, or origin refused?
  app.get('/gateway-check', async (request) => {
    const origin = `${request.protocol}://${request.host}`
    try {
      const res = await fetch(`${gatewayFor(request.raw)}/chat/start`, {
        method: 'OPTIONS',
        headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'content-type,idempotency-key' },
        signal: AbortSignal.timeout(3_000)
      })
      await res.body?.cancel()
      return { origin, reachable: true, allowed: res.headers.get('access-control-allow-origin') === origin }
    } catch {
      return { origin, reachable: false, allowed: false }
    }
  })

  await app.listen({ port: options.port, host: options.host })
  const { port } = app.server.address() as AddressInfo
  const shownHost = ['0.0.0.0', '::', ''].includes(options.host) ? '127.0.0.1' : options.host
  return { url: `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`, port, close: () => app.close() }
}
