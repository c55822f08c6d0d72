import type { Metafile } from 'esbuild'

export interface LambdaBundle {
  outfile: string
  bytes: number
  /** The bundle's inputs (metafile paths), largest first. */
  inputs: Array<{ path: string; bytes: number }>
  metafile: Metafile
}

export function buildLambda (options?: { outdir?: string; sdk?: 'bundled' | 'external' }): Promise<LambdaBundle>
export function byPackage (inputs: LambdaBundle['inputs']): Array<[string, number]>
