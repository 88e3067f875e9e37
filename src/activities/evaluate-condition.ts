import { ApplicationFailure } from '@temporalio/activity';
import {
  ConditionError,
  describeCondition,
  evaluateCondition,
  parseCondition,
} from '../refresh/condition.js';
import { factsFrom } from '../refresh/facts.js';
import type { ActivityDeps } from './deps.js';
import type { SourceImpact } from './estimate-impact.js';

/**
 * A refresh schedule's `refresh_if` tick: the condition over the ingestion's facts, as
 * `POST /refresh-if` evaluates it. The condition was checked when the schedule was set; a condition
 * that no longer parses (a grammar change) fails the tick, not retried.
 */
export function makeEvaluateCondition({ sql }: ActivityDeps) {
  return async function evaluateScheduledCondition(input: {
    ingestionId: string;
    condition: string;
    source: SourceImpact;
  }) {
    let condition: ReturnType<typeof parseCondition>;
    try {
      condition = parseCondition(input.condition);
    } catch (err) {
      if (err instanceof ConditionError)
        throw ApplicationFailure.nonRetryable(`condition: ${err.message}`, 'ConditionError');
      throw err;
    }
    const facts = await factsFrom(sql, input.ingestionId, input.source);
    return { condition: describeCondition(condition), result: evaluateCondition(condition, facts), facts };
  };
}
