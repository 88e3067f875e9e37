import { randomBytes } from 'node:crypto';
import { formatId } from './id-format.js';

/** A new prefixed random id (`run_8f3k…`); workflows use workflowId-safe newWorkflowScopedId instead. */
export function newId(prefix: string): string {
  return formatId(prefix, randomBytes(16));
}
