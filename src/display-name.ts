// What an agent sees as the customer's name must be a name a person can read: not a right-to-left
// override that flips the text around it, not a string of invisible characters.

/** Bidi embeddings, overrides and isolates, and the LRM/RLM marks. */
const BIDI_CONTROL = /[\u200E\u200F\u202A-\u202E\u2066-\u2069]/u
/** A surrogate half without its partner: not a character at all. */
const LONE_SURROGATE = /\p{Cs}/u
/**
 * Characters that draw nothing: format characters (zero-width space and joiners, word joiner,
 * BOM, …), the Hangul fillers, the braille blank, separators and other whitespace.
 */
const INVISIBLE = /[\p{Cf}\p{Z}\s\u115F\u1160\u3164\uFFA0\u2800]/gu

/** Why `name` cannot be shown to an agent, or undefined when it can. */
export function displayNameProblem (name: string): string | undefined {
  if (LONE_SURROGATE.test(name)) return 'must be valid Unicode text (it holds a lone surrogate)'
  if (BIDI_CONTROL.test(name)) return 'must not contain bidirectional control characters'
  if (name.replace(INVISIBLE, '').length === 0) return 'must contain a visible character'
  return undefined
}
