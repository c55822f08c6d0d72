import { once } from 'node:events'
import { connect } from 'node:net'

/** A request whose last bytes are held back: its connection is busy when the drain begins. */
export async function heldRequest (port: number, head: string, host = '127.0.0.1') {
  const socket = connect(port, host)
  await once(socket, 'connect')
  socket.write(head)
  let received = ''
  socket.setEncoding('utf8').on('data', (chunk: string) => { received += chunk })
  return {
    async finish (rest: string) {
      socket.write(rest)
      await once(socket, 'end')
      const [headers = '', body = ''] = received.split('\r\n\r\n')
      return { status: Number(headers.split(' ')[1]), headers: headers.toLowerCase(), body }
    }
  }
}
