/* global process */
// Loaded into every test process by .taprc (node-arg). The AWS SDK warns once per process that its
// releases after January 2027 need Node 22; each test file is a process, so a full run printed it
// dozens of times. Only that exact warning is dropped; every other warning goes to Node's own printer.
const SDK_NODE_VERSION_WARNING = 'NodeVersionSupportWarning: The AWS SDK for JavaScript (v3)\n'

const printers = process.listeners('warning')
process.removeAllListeners('warning')
process.on('warning', (warning) => {
  if (warning.name === 'Warning' && warning.message.startsWith(SDK_NODE_VERSION_WARNING)) return
  for (const print of printers) print(warning)
})
