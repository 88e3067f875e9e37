import { z } from '@hono/zod-openapi';
import { AppError, errors } from '../../domain/errors.js';
import { conditionFacts, conditionLimits, type FactName, factNames } from '../../refresh/condition.js';
import { refreshModes, refreshStrategies } from '../../refresh/modes.js';
import { parseConditionField, requestConditionalRefresh } from '../../services/conditional-refresh.js';
import { requireUsableConnection } from '../../services/connections.js';
import { findIngestion } from '../../services/ingestions.js';
import { IdParam, jsonBody, jsonResponse } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';
import { present, RefreshPartialFailure, RefreshResponse, refreshErrors } from './refresh.js';

/** The operations a condition may gate. */
export const conditionalOperations = ['full_refresh', 'fresh_start'] as const;

export const RefreshIfBody = z
  .strictObject({
    condition: z
      .string()
      .describe(
        `An expression over the facts below, at most ${conditionLimits.maxLength} characters, e.g. "new_file_count > 100 and not schema_changed"`,
      ),
    operation: z.enum(conditionalOperations).describe('What to run when the condition holds'),
    confirm: z.boolean().optional().describe('Must be true, as for the refresh itself'),
    dry_run: z
      .boolean()
      .default(false)
      .describe('Evaluate the condition and preview the refresh; change nothing'),
    auto_run: z.boolean().default(true).describe('Start a run after the table is dropped'),
    strategy: z
      .enum(refreshStrategies)
      .default('drop')
      .describe('full_refresh only: "swap" builds the new table aside and swaps it in'),
  })
  .openapi('RefreshIfRequest');

/** A fact's schema, with its type and description from the parser's own list. */
function fact(name: FactName) {
  const spec: { type: string; nullable: boolean; description: string } = conditionFacts[name];
  const base = spec.type === 'number' ? z.number() : z.boolean();
  return (spec.nullable ? base.nullable() : base).describe(spec.description);
}
const FactsSchema = z
  .object({
    file_count: fact('file_count'),
    new_file_count: fact('new_file_count'),
    new_bytes: fact('new_bytes'),
    failed_file_count: fact('failed_file_count'),
    hours_since_last_success: fact('hours_since_last_success'),
    table_row_count: fact('table_row_count'),
    schema_changed: fact('schema_changed'),
  } satisfies Record<FactName, z.ZodType>)
  .openapi('ConditionFacts');

const RefreshIfAnswer = (operation: z.ZodType) =>
  z.object({
    condition: z.string().describe('The condition in canonical form'),
    result: z.boolean().describe('Whether the condition held'),
    facts: FactsSchema,
    started: z.boolean().describe('Whether an operation was started'),
    operation: operation
      .optional()
      .describe("The refresh's answer: the started operation, or the dry run's preview"),
  });
const RefreshIfResponse = RefreshIfAnswer(RefreshResponse).openapi('RefreshIfResponse');
const RefreshIfPartialFailure = RefreshIfAnswer(RefreshPartialFailure).openapi('RefreshIfPartialFailure');

const factTable = [
  '| Fact | Type | Meaning |',
  '| --- | --- | --- |',
  ...factNames.map((name) => {
    const spec = conditionFacts[name];
    return `| \`${name}\` | ${spec.type}${spec.nullable ? ' or null' : ''} | ${spec.description} |`;
  }),
].join('\n');

const description = `Evaluates \`condition\` over facts about the ingestion, and runs \`operation\` (through the same use case as \`/full-refresh\` and \`/fresh-start\`: confirmation, rate limit, large-operation rule, 409 while busy) only when it holds.

${factTable}

\`file_count\`, \`new_file_count\` and \`new_bytes\` come from a listing of the source compared with the file history (as a dry run's impact); \`schema_changed\` is true when a new set of columns was loaded since the last finished full refresh or fresh start (with none yet: since the first load).

Grammar: comparisons \`<\`, \`<=\`, \`>\`, \`>=\`, \`==\`, \`!=\` between a fact and a number (booleans and \`null\` with \`==\`/\`!=\` only), joined by \`and\`/\`&&\`, \`or\`/\`||\`, \`not\`/\`!\` and parentheses; a boolean fact stands alone. A comparison with a null fact is false (except \`== null\`). A mistake is 400 \`VALIDATION_ERROR\` with \`field: "condition"\` and the 0-based \`position\`.

When the condition is false the answer is 200 with \`started: false\` and nothing changes; with \`dry_run\` the refresh is previewed (200, \`started: false\`). While an operation runs on the ingestion the answer is 409 \`RUN_IN_PROGRESS\` before the condition is evaluated (a dry run still evaluates it).`;

/** Seed 001's conditional refresh: `POST /ingestions/{id}/refresh-if`. */
export function refreshIfRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'post',
      path: '/ingestions/{id}/refresh-if',
      summary: 'Conditional refresh: a full refresh or fresh start only if a condition over the facts holds',
      description,
      request: { params: IdParam, body: jsonBody(RefreshIfBody) },
      responses: {
        200: jsonResponse(RefreshIfResponse, 'Condition false (nothing done), or a dry run'),
        202: jsonResponse(RefreshIfResponse, 'Condition true: the refresh was accepted'),
        ...refreshErrors,
        500: jsonResponse(RefreshIfPartialFailure, 'Condition true, and a refresh step failed part-way'),
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const principal = c.get('principal');
      const ingestion = await findIngestion(deps, principal.tenantId, c.req.valid('param').id);
      if (body.confirm !== true) throw errors.confirmationRequired();
      const condition = parseConditionField(body.condition);
      await requireUsableConnection(deps, principal.tenantId, ingestion.connectionId);
      const mode = refreshModes[body.operation];
      if (!mode.strategies.includes(body.strategy) || (body.strategy === 'swap' && !body.auto_run)) {
        throw new AppError(
          'VALIDATION_ERROR',
          'Invalid body: strategy: "swap" applies to a full refresh with auto_run',
          { field: 'strategy' },
        );
      }
      const out = await requestConditionalRefresh(deps, {
        condition,
        type: body.operation,
        ingestionId: ingestion.id,
        autoRun: body.auto_run,
        dryRun: body.dry_run,
        strategy: body.strategy,
        principal,
      });
      const refresh = out.refresh ? present(body.operation, out.refresh) : undefined;
      if (out.refresh?.kind === 'partial_failure' && out.refresh.rawFailure)
        deps.log.warn(
          { operationId: out.refresh.operationId, failure: out.refresh.rawFailure },
          'refresh step failing',
        );
      const answer = {
        condition: out.condition,
        result: out.result,
        facts: out.facts,
        started: out.refresh !== undefined && out.refresh.kind !== 'dry_run',
        ...(refresh ? { operation: refresh.body } : {}),
      };
      return c.json(answer as never, refresh?.status ?? 200);
    },
  );
  return router;
}
