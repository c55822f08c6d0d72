// Test-side token minting and a local JWKS endpoint: what a customer's own backend would run.
import { createServer, type ServerResponse } from 'node:http'
import type { AddressInfo } from 'node:net'
import type { Test } from 'tap'
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose'

export const CUSTOMER_SECRET = 'customer-backend-shared-secret-0123456789'

export interface SigningKey { kid: string; alg: 'RS256' | 'ES256'; privateKey: CryptoKey; publicKey: CryptoKey; jwk: JWK }

export async function signingKey (alg: 'RS256' | 'ES256', kid: string): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true })
  return { kid, alg, privateKey, publicKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } }
}

export interface MintOptions { exp?: number | string; header?: Record<string, unknown> }

/** A customer token as the site's backend would mint it: 5 minutes by default. */
export function mint (claims: JWTPayload, key: Uint8Array | SigningKey, options: MintOptions = {}): Promise<string> {
  const jwt = new SignJWT(claims).setIssuedAt().setExpirationTime(options.exp ?? '5m')
  if (key instanceof Uint8Array) return jwt.setProtectedHeader({ alg: 'HS256', ...options.header }).sign(key)
  return jwt.setProtectedHeader({ alg: key.alg, kid: key.kid, ...options.header }).sign(key.privateKey)
}

export const secretBytes = (s = CUSTOMER_SECRET) => new TextEncoder().encode(s)

export interface JwksServer {
  url: string
  keys: JWK[]
  fetches: number
  /** 'up' answers, 'down' refuses connections, 'hang' accepts and never answers. */
  mode (mode: 'up' | 'hang'): void
  stop (): Promise<void>
}

export async function startJwksServer (t: Test, keys: JWK[]): Promise<JwksServer> {
  let mode: 'up' | 'hang' = 'up'
  const hanging = new Set<ServerResponse>()
  const server = createServer((req, res) => {
    state.fetches++
    if (mode === 'hang') { hanging.add(res); return }
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ keys: state.keys }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const { port } = server.address() as AddressInfo
  let stopped = false
  const stop = async () => {
    if (stopped) return
    stopped = true
    for (const res of hanging) res.destroy()
    server.closeAllConnections()
    await new Promise<void>((resolve) => server.close(() => resolve()))
  }
  const state: JwksServer = { url: `http://127.0.0.1:${port}/.well-known/jwks.json`, keys, fetches: 0, mode: (m) => { mode = m }, stop }
  t.teardown(stop)
  return state
}
