import type { RolledBack } from '../activities/rollback-swap.js';
import type { Principal } from '../auth/tokens.js';
import { AppError } from '../domain/errors.js';
import { newId } from '../lib/ids.js';
import { spoken } from '../temporal/search-attributes.js';
import { rollbackWorkflow } from '../workflows/rollback.js';
import type { ServiceDeps } from './deps.js';
import { startExclusive } from './operations.js';
import { getOperation } from './records.js';

/**
 * POST /operations/{id}/rollback: swaps the version a swap full refresh replaced back in, while its
 * grace period lasts. Another tenant's operation is not found; the rollback runs as a workflow
 * under the ingestion's id (RUN_IN_PROGRESS while a run or refresh holds it), which decides under
 * the table's and the pending deletion's locks whether it may go ahead — ROLLBACK_EXPIRED,
 * NOT_ROLLBACKABLE — and audits the outcome. Answers once the rollback is done.
 */
export async function rollbackOperation(
  deps: ServiceDeps,
  principal: Principal,
  operationId: string,
  graceSeconds?: number,
): Promise<RolledBack> {
  const op = await getOperation(deps, principal.tenantId, operationId);
  if (!op.ingestionId)
    throw new AppError(
      'NOT_ROLLBACKABLE',
      `operation ${op.id} is a ${spoken(op.type)} of a connection: only a swap full refresh of an ingestion can be rolled back`,
    );
  const ingestionId = op.ingestionId;
  const handle = await startExclusive(deps, ingestionId, rollbackWorkflow, {
    args: [
      {
        rollbackId: newId('rbk'),
        operationId,
        ingestionId,
        graceSeconds: graceSeconds ?? deps.refresh.swapGraceSeconds,
        subject: principal.subject,
      },
    ],
    memo: { operation: 'rollback', operationId },
    describe: (table) => `rollback of ${spoken(op.type)} ${operationId} on ${table}`,
    conflictDetail: 'Cannot roll back while an operation runs on this ingestion',
  });
  const outcome = await handle.result();
  if (!outcome.done)
    throw new AppError(outcome.code, outcome.reason, {
      operation_id: operationId,
      help:
        outcome.code === 'ROLLBACK_EXPIRED'
          ? 'A swap can be rolled back until its previous version is deleted (grace_period_seconds of the refresh)'
          : `See GET /api/v1/operations/${operationId}`,
    });
  return outcome.result;
}
