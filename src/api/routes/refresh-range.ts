import { z } from '@hono/zod-openapi';
import { AppError, errors } from '../../domain/errors.js';
import { requireUsableConnection } from '../../services/connections.js';
import { findIngestion } from '../../services/ingestions.js';
import { requestRefresh } from '../../services/refresh.js';
import { IdParam, jsonBody, jsonResponse } from '../openapi.js';
import { type ApiDeps, apiRoute, newRouter } from '../router.js';
import { present, RefreshResponse, refreshErrors } from './refresh.js';

export const RefreshRangeBody = z
  .strictObject({
    start_date: z.iso.date().describe('First day (UTC) of the modification-time range, inclusive'),
    end_date: z.iso.date().describe('Last day (UTC) of the range, inclusive: up to 23:59:59.999Z'),
    operation: z.literal('reprocess').describe('Seed 001: the only operation over a range'),
    confirm: z.boolean().optional().describe('Must be true: the selected rows are removed'),
    dry_run: z.boolean().default(false).describe('Preview what would happen; change nothing'),
    auto_run: z.boolean().default(true).describe('Start a run after the rows are removed'),
  })
  .openapi('RefreshRangeRequest');

const dayMs = 24 * 3600 * 1000;

/**
 * The contract: date-only bounds are whole UTC days, both inclusive. Reprocess's `modified_to` is
 * exclusive, so the end is the midnight after `end_date`.
 */
export function rangeOfDays(
  startDate: string,
  endDate: string,
): { modifiedFrom: string; modifiedTo: string } {
  const from = Date.parse(`${startDate}T00:00:00.000Z`);
  const to = Date.parse(`${endDate}T00:00:00.000Z`) + dayMs;
  if (to <= from) {
    throw new AppError('VALIDATION_ERROR', 'Invalid body: end_date: must not be before start_date', {
      field: 'end_date',
    });
  }
  return { modifiedFrom: new Date(from).toISOString(), modifiedTo: new Date(to).toISOString() };
}

const description = `Seed 001's selective refresh: an alias of \`POST /ingestions/{id}/reprocess\` with \`modified_from\` = \`start_date\`T00:00:00Z and \`modified_to\` = the midnight after \`end_date\` (exclusive), so both dates are whole UTC days, inclusive: \`end_date\` 2025-01-31 takes files modified up to 2025-01-31T23:59:59.999Z. The files are chosen by the modification time recorded in the file history; their rows and history are removed, then a run loads them again.`;

/** Seed 001's `POST /ingestions/{id}/refresh-range`. */
export function refreshRangeRouter(deps: ApiDeps) {
  const router = newRouter();
  router.openapi(
    apiRoute('ingestion:refresh', {
      method: 'post',
      path: '/ingestions/{id}/refresh-range',
      summary: 'Selective refresh over a range of days (alias of reprocess over modified_from/modified_to)',
      description,
      request: { params: IdParam, body: jsonBody(RefreshRangeBody) },
      responses: {
        200: jsonResponse(RefreshResponse, 'Dry run'),
        202: jsonResponse(RefreshResponse, 'Accepted: rows_removed, run_triggered'),
        ...refreshErrors,
      },
    }),
    async (c) => {
      const body = c.req.valid('json');
      const principal = c.get('principal');
      const ingestion = await findIngestion(deps, principal.tenantId, c.req.valid('param').id);
      if (body.confirm !== true) throw errors.confirmationRequired();
      const selection = rangeOfDays(body.start_date, body.end_date);
      await requireUsableConnection(deps, principal.tenantId, ingestion.connectionId);
      const result = await requestRefresh(deps, {
        type: 'reprocess',
        ingestionId: ingestion.id,
        autoRun: body.auto_run,
        dryRun: body.dry_run,
        strategy: 'drop',
        selection,
        principal,
      });
      if (result.kind === 'partial_failure' && result.rawFailure)
        deps.log.warn(
          { operationId: result.operationId, failure: result.rawFailure },
          'refresh step failing',
        );
      const out = present('reprocess', result);
      return c.json(out.body as never, out.status);
    },
  );
  return router;
}
