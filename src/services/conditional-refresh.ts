import { AppError } from '../domain/errors.js';
import {
  type Condition,
  ConditionError,
  describeCondition,
  evaluateCondition,
  type Facts,
  parseCondition,
} from '../refresh/condition.js';
import { factsFrom } from '../refresh/facts.js';
import { refreshModes } from '../refresh/modes.js';
import type { ServiceDeps } from './deps.js';
import { refuseIfBusy } from './operations.js';
import { estimateSource, type RefreshRequest, type RefreshResult, requestRefresh } from './refresh.js';

/** A condition the caller wrote wrongly: 400 VALIDATION_ERROR naming the field and the position. */
export function parseConditionField(text: string): Condition {
  try {
    return parseCondition(text);
  } catch (err) {
    if (!(err instanceof ConditionError)) throw err;
    throw new AppError('VALIDATION_ERROR', `Invalid body: condition: ${err.message}`, {
      field: 'condition',
      position: err.position,
      help: 'See the facts and the grammar in the description of POST /ingestions/{id}/refresh-if',
    });
  }
}

/**
 * The facts a condition is evaluated against, from our own state: the source listing compared with
 * the file history (the same discovery a dry run uses, in a worker), the file history, the runs, the
 * destination table and the schema history.
 */
export async function gatherFacts(
  deps: Pick<ServiceDeps, 'sql' | 'temporal' | 'taskQueue'>,
  ingestionId: string,
): Promise<Facts> {
  return factsFrom(deps.sql, ingestionId, await estimateSource(deps, ingestionId));
}

export interface ConditionalRefreshResult {
  /** The condition in canonical form. */
  condition: string;
  result: boolean;
  facts: Facts;
  /** The refresh's own answer when the condition held (a dry run's preview, or the started operation). */
  refresh?: RefreshResult;
}

/** Seed 001's conditional refresh: the refresh runs, through the same use case, only if the condition holds. */
export async function requestConditionalRefresh(
  deps: ServiceDeps,
  req: RefreshRequest & { condition: Condition },
): Promise<ConditionalRefreshResult> {
  const { condition, ...refresh } = req;
  // A busy ingestion could not be refreshed whatever the facts say, and they are in flux while an
  // operation runs: refused first, as a single refresh is (a dry run still evaluates).
  if (!req.dryRun) {
    const title = refreshModes[req.type].title.toLowerCase();
    await refuseIfBusy(
      deps.temporal,
      req.ingestionId,
      `Cannot ${title} while an operation runs on this ingestion`,
    );
  }
  const facts = await gatherFacts(deps, req.ingestionId);
  const result = evaluateCondition(condition, facts);
  return {
    condition: describeCondition(condition),
    result,
    facts,
    ...(result ? { refresh: await requestRefresh(deps, refresh) } : {}),
  };
}
