import { CUSTOMER_AUTHENTICATION, INTERACTIVE_TYPES, isGuide, type SegmentAttributes } from '../contact-fields.js'
import { CustomerTokenInvalid } from '../errors.js'
import type { CustomerClaims } from '../trust/index.js'
import type { Widget } from '../widgets/index.js'

// The StartChatContact fields a chat start takes from its profile and its verified customer token,
// never from the body.

/** A claim as an attribute or CustomerId value: strings as they are, numbers and booleans spelled out. */
function claimText (claims: Readonly<Record<string, unknown>>, claim: string): string | undefined {
  if (!Object.hasOwn(claims, claim)) return undefined
  const value = claims[claim]
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean') return String(value)
  throw new CustomerTokenInvalid(`The customer token's ${claim.slice(0, 60)} claim must be a string or a number`)
}

/**
 * What a verified customer token sets: attributes (its `attributes` claim, then the profile's
 * claimAttributes), CustomerId from the profile's claim, and the authenticated segment attribute.
 * Without a token: none of them, whatever the body says.
 */
export function customerFields (customer: CustomerClaims | undefined, widget: Widget): { attributes: Record<string, string>; customerId?: string; authenticated: boolean } {
  if (!customer) return { attributes: {}, authenticated: false }
  const { claimAttributes, customerIdClaim } = widget.contactFields
  const attributes: Record<string, string> = Object.assign(Object.create(null), customer.attributes)
  for (const [claim, attribute] of Object.entries(claimAttributes)) {
    const value = claimText(customer.claims, claim)
    if (value !== undefined) attributes[attribute] = value
  }
  const customerId = claimText(customer.claims, customerIdClaim)
  if (customerId !== undefined && (customerId.length === 0 || customerId.length > 128)) {
    throw new CustomerTokenInvalid(`The customer token's ${customerIdClaim.slice(0, 60)} claim must be 1 to 128 characters to be the CustomerId`)
  }
  return { attributes, ...(customerId !== undefined ? { customerId } : {}), authenticated: true }
}

/** The profile's segment attributes, and the authenticated status only a verified token brings. */
export function segmentAttributes (widget: Widget, authenticated: boolean): SegmentAttributes | undefined {
  const own = widget.contactFields.segmentAttributes
  if (!authenticated) return own
  return { ...own, [CUSTOMER_AUTHENTICATION]: { ValueString: 'AUTHENTICATED' } }
}

/** A guide's views are interactive messages: Connect refuses connect:Guide unless the chat accepts them. */
export function contentTypes (asked: string[] | undefined, segments: SegmentAttributes | undefined): string[] | undefined {
  if (!isGuide(segments)) return asked
  const types = new Set(asked ?? ['text/plain'])
  for (const type of INTERACTIVE_TYPES) types.add(type)
  return [...types]
}
