import t from 'tap'
import { clientKey, normalizeAddress } from '../../src/client-address.js'
import { ConfigError, loadConfig } from '../../src/config.js'
import { build, validBody } from '../helper.js'

// One spelling per client: a client that can shape X-Forwarded-For must not get a fresh rate-limit
// budget per spelling, and an oversized value must never reach the log.

t.test('normalizeAddress: one canonical form per address; not an address -> undefined', async (t) => {
  const same: Array<[string, string]> = [
    ['203.0.113.7', '203.0.113.7'],
    ['203.0.113.7:1234', '203.0.113.7'],
    ['203.000.113.007', '203.0.113.7'],
    ['::ffff:203.0.113.7', '203.0.113.7'],
    ['::ffff:cb00:7107', '203.0.113.7'],
    ['[::ffff:203.0.113.7]:443', '203.0.113.7'],
    ['2001:db8::1', '2001:db8::1'],
    ['[2001:DB8::1]', '2001:db8::1'],
    ['[2001:db8:0:0:0:0:0:1]:8080', '2001:db8::1'],
    ['fe80::1%eth0', 'fe80::1'],
    // The deprecated IPv4-compatible form is an IPv6 address, not the IPv4 client a.b.c.d.
    ['::1.2.3.4', '::102:304'],
    [' 198.51.100.4 ', '198.51.100.4']
  ]
  for (const [input, canonical] of same) t.equal(normalizeAddress(input), canonical, input)
  for (const junk of ['garbage', '', '256.1.1.1', '1.2.3', '2001:db8::1::2', `${'1'.repeat(8_000)}`, '[203.0.113.7']) {
    t.equal(normalizeAddress(junk), undefined, junk.slice(0, 30))
  }
  t.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64', 'IPv6 counts per /64')
  t.equal(clientKey('2001:db8:1:2::ffff'), '2001:db8:1:2::/64')
  t.equal(clientKey('203.0.113.7'), '203.0.113.7')
})

t.test('behind TRUST_PROXY, every spelling of one client shares one rate-limit budget', async (t) => {
  const { app } = await build(t, { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_MAX: '3' })
  const from = (xff: string) => app.inject({
    method: 'POST', url: '/chat/start', remoteAddress: '127.0.0.1',
    headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
    payload: JSON.stringify(validBody())
  })
  const spellings = ['203.0.113.7:1234', '203.000.113.007', '::ffff:203.0.113.7', '203.0.113.7']
  const statuses = []
  for (const s of spellings) statuses.push((await from(s)).statusCode)
  t.same(statuses, [200, 200, 200, 429], 'four spellings, one client: the fourth start is over the limit of 3')
  const v6 = []
  for (const s of ['[2001:db8::1]', '2001:DB8::2', '2001:db8::3%eth0', '2001:db8:0:0:1::9']) v6.push((await from(s)).statusCode)
  t.same(v6, [200, 200, 200, 429], 'one IPv6 /64, one budget')
})

t.test('a forwarded value that is not an address counts as the proxy itself and is never logged', async (t) => {
  const { app, logs } = await build(t, { TRUST_PROXY: '127.0.0.1', RATE_LIMIT_MAX: '2' })
  const huge = `evil-${'x'.repeat(8_000)}`
  const statuses = []
  for (const xff of ['garbage-1', 'garbage-2', huge]) {
    statuses.push((await app.inject({
      method: 'POST', url: '/chat/start', remoteAddress: '127.0.0.1',
      headers: { 'content-type': 'application/json', 'x-forwarded-for': xff },
      payload: JSON.stringify(validBody())
    })).statusCode)
  }
  t.same(statuses, [200, 200, 429], 'garbage does not mint budgets: it shares the proxy address\'s')
  t.notMatch(logs(), /garbage|xxxxxxxxxx/, 'no forwarded value reaches the log')
  t.match(logs(), /"remoteAddress":"127\.0\.0\.1"/)
})

t.test('TRUST_PROXY: catch-alls, hop counts and junk stop the start with a message naming it', async (t) => {
  const base = { NODE_ENV: 'development', CONNECT_SIMULATOR: 'true' }
  for (const bad of ['0.0.0.0/0', '::/0', '127.0.0.1,2', '2', '1', 'banana', '10.0.0.0/33', '10.0.0.1/8/9', '10.0.0.0/x']) {
    t.throws(() => loadConfig({ ...base, TRUST_PROXY: bad }), ConfigError, bad)
    t.throws(() => loadConfig({ ...base, TRUST_PROXY: bad }), { message: /^TRUST_PROXY: / }, `${bad}: the message names TRUST_PROXY`)
  }
  for (const good of ['true', 'false', '10.0.0.0/16', '127.0.0.1, 10.0.0.0/8', '2001:db8::/32', '::1']) {
    t.ok(loadConfig({ ...base, TRUST_PROXY: good }), good)
  }
})
