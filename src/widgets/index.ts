import { ConfigError, type OriginList } from '../settings.js'
import type { QueueRef } from '../connect/availability.js'
import type { ConnectTarget } from '../connect/input.js'
import type { ProfileContactFields } from '../contact-fields.js'
import type { HumanCheck } from '../trust/human-check.js'
import { createTrustPolicy, createTrustShared, type TrustPolicy, type TrustPolicyOptions, type TrustSettings } from '../trust/index.js'
import { DEFAULT_WIDGET, readWidgetFile, type EnvLookup, type HumanCheckSpec, type WidgetSpec } from './file.js'

export { DEFAULT_WIDGET, MAX_WIDGETS, WIDGET_ID } from './file.js'

/**
 * One widget profile, resolved once per request from the path and kept by that request to the end:
 * a reload changes what later requests get, never a request already under way.
 */
export interface Widget {
  /** `default` for the profile the environment describes. */
  id: string
  /** The id of a profile from WIDGETS_FILE; undefined for the default one (tokens, keys and labels stay as they were). */
  named?: string
  target: ConnectTarget
  isOriginAllowed (origin: string): boolean
  allowedAttributes: ReadonlySet<string>
  /** Attributes the profile always sends; they win over the browser's and a customer token's. */
  attributes: Readonly<Record<string, string>>
  featurePermissions: { MESSAGING_MARKDOWN: boolean; ATTACHMENTS: boolean }
  /** The StartChatContact fields only the operator sets: segment attributes, disconnect, response mode, claims. */
  contactFields: ProfileContactFields
  trust: TrustPolicy
  /** A limit of its own, counted per client and widget; without it the default limit, shared. */
  rateLimit?: { max: number; windowMs: number }
  /** The longest chat this widget opens, in minutes (a larger request is lowered to it). */
  chatDurationInMinutes?: number
  /** The human check asked of this widget's anonymous callers; none when off. */
  humanCheck?: HumanCheck
  /** The queue GET /chat/availability reports on, and whether a closed queue refuses chat starts. */
  availability?: { queue: QueueRef; refuseWhenClosed: boolean }
}

/** One or more DNS labels, as a browser writes them in an Origin header (lower case, no port). */
const SUBDOMAIN = /^[a-z0-9-]+(\.[a-z0-9-]+)*$/

/**
 * `https://*.example.com` as a test: the scheme, one or more labels, then `.example.com` and the
 * port exactly. The labels are checked one by one, so `https://evil.example/x.example.com` and
 * `https://a.example.com.evil.example` do not match.
 */
export function wildcardMatcher (pattern: string): (origin: string) => boolean {
  const star = pattern.indexOf('://*.') + 3
  const head = pattern.slice(0, star)
  const tail = pattern.slice(star + 1)
  return (origin) => origin.length > head.length + tail.length && origin.startsWith(head) && origin.endsWith(tail) &&
    SUBDOMAIN.test(origin.slice(head.length, origin.length - tail.length))
}

function originMatcher ({ exact, wildcards }: Pick<OriginList, 'exact' | 'wildcards'>): (origin: string) => boolean {
  const allowed = new Set(exact)
  const matchers = wildcards.map(wildcardMatcher)
  return (origin) => allowed.has(origin) || matchers.some((matches) => matches(origin))
}

/** What the environment says: the default profile, what named profiles fall back to, and where those are. */
export interface WidgetsSettings {
  /** WIDGETS_FILE, when set. */
  file?: string
  /** The default instance and flow; a named profile's instance falls back to this one. */
  target: { instanceId: string; contactFlowId: string }
  origins: Pick<OriginList, 'exact' | 'wildcards'>
  allowedAttributes: ReadonlySet<string>
  /** The default profile's, and each named profile's for what it leaves out. */
  featurePermissions: Widget['featurePermissions']
  contactFields: ProfileContactFields
  /** The default instance's queue for GET /chat/availability (CONNECT_QUEUE_ID). */
  queueId?: string
  /** The default for every profile with a queue. */
  refuseWhenClosed: boolean
  trust: TrustSettings
}

export interface WidgetsOptions {
  /** Where `secretEnv` names are looked up; the process environment by default. */
  env?: EnvLookup
  trust?: TrustPolicyOptions
  /** Replaces the default profile's trust policy (tests). */
  defaultTrust?: TrustPolicy
  /** Told after each reload attempt; the error text names the file's problem, never a secret. */
  onReload?: (result: ReloadResult) => void
  /** The deployment's human check (HUMAN_CHECK), asked on every profile that names none of its own. */
  humanCheck?: HumanCheck
  /** Builds a profile's own human check (`humanCheck` in WIDGETS_FILE); undefined for `off`. */
  humanCheckFor?: (spec: HumanCheckSpec) => HumanCheck | undefined
}

export type ReloadResult = { ok: true; widgets: string[] } | { ok: false; error: string }

export interface Widgets {
  readonly default: Widget
  /** The named profile, or undefined: the caller answers 404. */
  get (id: string): Widget | undefined
  /** Ids of the named profiles, in file order. */
  ids (): string[]
  /** WIDGETS_FILE, when set. */
  readonly file?: string
  /** Re-reads WIDGETS_FILE: applies a valid file to later requests; keeps the old profiles otherwise. */
  reload (): ReloadResult
  close (): Promise<void>
}

/** The default profile from the environment and the named ones from WIDGETS_FILE; throws ConfigError on a bad file. */
export function createWidgets (settings: WidgetsSettings, options: WidgetsOptions = {}): Widgets {
  const env = options.env ?? process.env
  const trustOptions = options.trust ?? {}
  const { instanceId } = settings.target
  // One signing key set and one spent-token memory for all profiles, kept across reloads: a
  // reload must neither void the tokens already handed out nor let a spent one be used again.
  const shared = trustOptions.shared ?? createTrustShared(settings.trust, trustOptions)

  const defaultWidget: Widget = {
    id: DEFAULT_WIDGET,
    target: settings.target,
    isOriginAllowed: originMatcher(settings.origins),
    allowedAttributes: settings.allowedAttributes,
    attributes: {},
    featurePermissions: settings.featurePermissions,
    contactFields: settings.contactFields,
    trust: options.defaultTrust ?? createTrustPolicy(settings.trust, { ...trustOptions, shared }),
    ...(options.humanCheck ? { humanCheck: options.humanCheck } : {}),
    ...(settings.queueId !== undefined
      ? { availability: { queue: { instanceId, queueId: settings.queueId }, refuseWhenClosed: settings.refuseWhenClosed } }
      : {})
  }

  /** A widget's queue: its own, else CONNECT_QUEUE_ID when it uses the default instance (a queue id is per instance). */
  const availabilityOf = (spec: WidgetSpec): Widget['availability'] => {
    const queueId = spec.queueId ?? (spec.instanceId === undefined ? settings.queueId : undefined)
    const refuseWhenClosed = spec.refuseWhenClosed ?? settings.refuseWhenClosed
    if (queueId === undefined) {
      if (spec.refuseWhenClosed) throw new ConfigError(`widget ${spec.id}: refuseWhenClosed needs a queueId (or CONNECT_QUEUE_ID with the default instance)`)
      return undefined
    }
    return { queue: { instanceId: spec.instanceId ?? instanceId, queueId }, refuseWhenClosed }
  }

  const build = (spec: WidgetSpec, availability = availabilityOf(spec)): Widget => ({
    id: spec.id,
    named: spec.id,
    target: { instanceId: spec.instanceId ?? instanceId, contactFlowId: spec.contactFlowId, widget: spec.id },
    isOriginAllowed: originMatcher(spec.origins),
    allowedAttributes: new Set(spec.allowedAttributes),
    attributes: spec.attributes,
    featurePermissions: {
      MESSAGING_MARKDOWN: spec.featurePermissions.MESSAGING_MARKDOWN ?? settings.featurePermissions.MESSAGING_MARKDOWN,
      ATTACHMENTS: spec.featurePermissions.ATTACHMENTS ?? settings.featurePermissions.ATTACHMENTS
    },
    contactFields: spec.contactFields,
    trust: createTrustPolicy(settings.trust, { ...trustOptions, shared }, {
      widget: spec.id,
      persistentChat: spec.persistentChat ?? settings.trust.defaultProfile.persistentChat,
      customerToken: spec.customerToken ?? { required: false },
      relatedChats: spec.relatedChats
    }),
    ...(spec.rateLimit ? { rateLimit: spec.rateLimit } : {}),
    ...(spec.chatDurationInMinutes !== undefined ? { chatDurationInMinutes: spec.chatDurationInMinutes } : {}),
    ...humanCheckOf(spec),
    ...(availability ? { availability } : {})
  })
  const humanCheckOf = (spec: WidgetSpec): { humanCheck?: HumanCheck } => {
    const check = spec.humanCheck ? options.humanCheckFor?.(spec.humanCheck) : options.humanCheck
    return check ? { humanCheck: check } : {}
  }

  const load = (): Map<string, Widget> => {
    const specs = settings.file === undefined ? [] : readWidgetFile(settings.file, env)
    return new Map(specs.map((spec) => [spec.id, build(spec)]))
  }

  let named = load()
  return {
    default: defaultWidget,
    get: (id) => named.get(id),
    ids: () => [...named.keys()],
    ...(settings.file !== undefined ? { file: settings.file } : {}),
    reload () {
      let result: ReloadResult
      try {
        named = load()
        result = { ok: true, widgets: [...named.keys()] }
      } catch (err) {
        // Anything but a file problem is a bug of ours, and must still not take the service down.
        result = { ok: false, error: err instanceof ConfigError ? err.message : `unexpected ${(err as Error)?.name ?? 'error'} while loading` }
      }
      options.onReload?.(result)
      return result
    },
    async close () {
      await defaultWidget.trust.close()
      for (const widget of named.values()) await widget.trust.close()
    }
  }
}
