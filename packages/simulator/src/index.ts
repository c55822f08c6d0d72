// The simulator's public surface: what `npm run dev`, the gateway's tests and the benchmarks use.
// `main.ts` is the command-line entry (`node dist/main.js` in its image, `tsx src/main.ts` here).
export {
  ERROR_FAULT_TYPES,
  startSimulator,
  type ConnectSimulator,
  type ErrorFaultType,
  type Fault,
  type RecordedRequest,
  type SimulatedContact,
  type SimulatorOptions,
  type SimulatorStats
} from './connect.js'
export {
  DAYS,
  DEFAULT_QUEUE_ID,
  SettingsError,
  parseHours,
  queueSettingsFromEnv,
  type AvailabilityCalls,
  type Day,
  type QueueSettings,
  type SimulatedOverride
} from './availability.js'
export {
  CONTENT_TYPE,
  type ChatItem,
  type ParticipantErrorType,
  type ParticipantFault,
  type ParticipantStats
} from './participant.js'
export { SIMULATED_VERIFY_SECRET } from './human-check-verify.js'
export { systemClock, type Clock, type Timer } from './clock.js'
